export * from './errors.js';
export * from './types.js';
export { PcscService, type PcscServiceOptions } from './service.js';
export { pcscliteContextFactory } from './pcsclite.js';
export { PcscTransport, scardCtlCode } from './transport.js';
export { FEATURE, GET_FEATURE_REQUEST, pinVerifyStructure, readerFeatures, verifyOnPinPad, type PinPadVerify } from './pinpad.js';
