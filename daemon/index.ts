export { CpsdServer } from './server.js';
export { InProcessBackend, PcscBackend } from '../cards/backends.js';
export { CardSessions, type CardBackend, type CardEvent, type ReaderView } from '../cards/session.js';
export { ConfigError, DEFAULTS, DEFAULT_PORT, SYSTEM_CONFIG, USER_CONFIG, loadConfig, normaliseOrigin, validateConfig, type DaemonConfig } from './config.js';
export { Logger, type Level } from './log.js';
export { PROTOCOL, ProtocolError, toRpcError, type ErrorCode, type RpcError } from './protocol.js';
