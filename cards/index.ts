/** The CPx card drivers (one file per card family), the ATR table that picks them, PKCS#15 directories, public data. */
export * from './atr-table.js';
export * from './card.js';
export * from './cps3.js';
export * from './cps4.js';
export * from './pkcs15.js';
export * from './sha-midstate.js';
export * from './public-data.js';
export * from './pin.js';
export * from './session.js';
export * from './backends.js';
export * from './twins.js';
