export { VpcdConnector, VpcdError, type VirtualCard, type VpcdOptions, type VpcdStats } from './vpcd.js';
export { TestCard } from './test-card.js';
