export * from './holder.js';
export * from './token.js';
export * from './verify.js';
export * from './nonce.js';
