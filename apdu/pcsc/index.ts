export * from './errors.js';
export * from './types.js';
export { PcscService, type PcscServiceOptions } from './service.js';
export { pcscliteContextFactory } from './pcsclite.js';
export { PcscTransport, scardCtlCode } from './transport.js';
