export { VpcdConnector, VpcdError, type VirtualCard, type VpcdOptions, type VpcdStats } from './vpcd.js';
export { TestCard } from './test-card.js';
export * from './cps/index.js';
export { FaultyCard, CPS3_TIMING, type FaultOptions, type TimingModel } from './cps/faults.js';
