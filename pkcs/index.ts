export * from './holder.js';
export * from './crl.js';
