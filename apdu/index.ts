/** The ISO 7816 wire layer: no I/O here except through an ApduTransport handed in by the caller. */
export * from './errors.js';
export * from './command.js';
export * from './response.js';
export * from './status.js';
export * from '../core/index.js';
export * from './atr.js';
export { CardChannel, type ApduTransport, type CardChannelOptions } from './channel.js';
