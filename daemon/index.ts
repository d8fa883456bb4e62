export { CpsdServer } from './server.js';
export { PcscCardSource, SimCardSource, type CardEvent, type CardSource, type ReaderView } from './cards.js';
export { ConfigError, DEFAULTS, DEFAULT_PORT, SYSTEM_CONFIG, USER_CONFIG, loadConfig, normaliseOrigin, validateConfig, type DaemonConfig } from './config.js';
export { Logger, type Level } from './log.js';
export { PROTOCOL, ProtocolError, toRpcError, type ErrorCode, type RpcError } from './protocol.js';
