/** What every layer may use: the error base class, byte helpers, BER-TLV. */
export * from './errors.js';
export * from './bytes.js';
export * from './tlv.js';
export * from './own.js';
export type { AnyCpsdError } from './any-error.js';
