/** Types of the cpsd browser SDK (client/cpsd.js). */

export declare const DEFAULT_PORT: 24821;

export type CpsdErrorCode =
  | 'DAEMON_UNREACHABLE'
  | 'LOCAL_NETWORK_DENIED'
  | 'ORIGIN_NOT_ALLOWED'
  | 'USER_CANCELLED'
  | 'PIN_BLOCKED'
  | 'PIN_INCORRECT'
  | 'PIN_LAST_TRY'
  | 'PIN_FORMAT'
  | 'PIN_NOT_ALLOWED'
  | 'CONTACTLESS_NOT_ALLOWED'
  | 'CARD_ABSENT'
  | 'CARD_UNSUPPORTED'
  | 'CARD_ERROR'
  | 'READER_NOT_FOUND'
  | 'PCSC_UNAVAILABLE'
  | 'TIMEOUT'
  | 'BUSY'
  | 'RATE_LIMITED'
  | 'INVALID_REQUEST'
  | 'METHOD_NOT_FOUND'
  | 'INTERNAL'
  | (string & {});

export declare class CpsdError extends Error {
  readonly code: CpsdErrorCode;
  /** With PIN_INCORRECT: tries left before the PIN blocks. */
  readonly triesLeft?: number;
  /** With CARD_UNSUPPORTED: the card's ATR. */
  readonly atr?: string;
}

/** The Web eID authentication token the server verifies (cpsd/verify). */
export interface AuthToken {
  unverifiedCertificate: string;
  algorithm: 'RS256' | 'PS256';
  signature: string;
  format: 'web-eid:1.0';
  appVersion: string;
}

export interface ConnectOptions {
  /** The daemon's port on this workstation (default 24821: `port` in its configuration, `cpsd serve --port`). */
  port?: number;
  /** How long to wait for the connection (default 5000 ms). */
  timeoutMs?: number;
}

/** One reader as `readers.list` gives it. */
export interface ReaderInfo {
  name: string;
  cardPresent: boolean;
  atr: string | null;
  /** The card is a CPx card cpsd drives. */
  supported: boolean;
  interface: 'contact' | 'contactless' | null;
  /** Another application holds the card exclusively. */
  busy: boolean;
  /** The other readers that show this same card (a dual-interface reader). */
  sameCardAs: string[];
}

export interface Notifications {
  'readers.changed': { readers: { name: string; cardPresent: boolean; atr: string | null }[] };
  'card.inserted': { reader: string; atr: string };
  'card.removed': { reader: string };
  'pin.required': { requestId: string | number; url?: string; pinPad?: true; purpose: string; triesLeft: number };
}

export declare class CpsdClient {
  on<E extends keyof Notifications>(event: E, fn: (params: Notifications[E]) => void): () => void;
  call(method: string, params?: Record<string, unknown>, options?: { timeoutMs?: number }): Promise<unknown>;
  readers(): Promise<ReaderInfo[]>;
  /** `reader`: the one the holder chose when several hold a CPS card (default: the daemon's choice). */
  authenticate(nonce: string, options?: { popup?: Window; reader?: string }): Promise<AuthToken>;
  close(): void;
}

export declare function connect(options?: ConnectOptions): Promise<CpsdClient>;
export declare function openPinWindow(): Window | undefined;
/** From a click handler: opens the PIN window, connects (to `options.port`), authenticates, closes. */
export declare function authenticate(nonce: string, options?: ConnectOptions & { reader?: string }): Promise<AuthToken>;
