export * from './atr-table.js';
export * from './card.js';
export * from './directory.js';
export * from './sha-midstate.js';
export * from './public-data.js';
