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
  /** With INVALID_REQUEST from `signDocument`'s own checks: the option that is wrong (nothing was sent). */
  readonly field?: 'hash' | 'hashAlgorithm' | 'document';
}

/** The Web eID authentication token the server verifies (cpsd/verify). */
export interface AuthToken {
  unverifiedCertificate: string;
  algorithm: 'RS256' | 'PS256';
  signature: string;
  format: 'web-eid:1.0';
  appVersion: string;
}

/** The holder as the card names it (`card.identity`): certificate subject and card data (the specialty is only there). */
export interface CardIdentity {
  nationalId: string;
  idKind: 'RPPS' | 'ADELI' | 'ADELI_CABINET' | 'FINESS' | 'SIREN' | 'SIRET' | 'RPPS_CABINET' | 'UNKNOWN';
  /** The 11-digit RPPS number when the national id is RPPS-based. */
  rpps: string | null;
  surname: string;
  givenName: string;
  /** TRE_G15 code (null when the card data has none) and label. */
  profession: { code: string | null; label: string } | null;
  /** e.g. "SM26" (the end of CPS_INFO_PS). */
  specialty: string | null;
  cardType: string | null;
  serial: string;
  notBefore: string;
  notAfter: string;
}

/** One practice situation (CPS_ACTIVITY_nn_PS) as the card holds it. */
export interface PracticeSituation {
  /** nn of CPS_ACTIVITY_nn_PS (1..16; there may be gaps). */
  index: number;
  /** Raison sociale. */
  structureName: string;
  /** As on the card: the TRE_G07 type digit, then the identifier (e.g. "10B0307377": FINESS 0B0307377). */
  structureId: string;
  structureIdKind: 'ADELI_CABINET' | 'FINESS' | 'SIREN' | 'SIRET' | 'RPPS_CABINET' | 'FINESS_EJ' | 'UNKNOWN';
  /** Secteur d'activité, e.g. "SA07" (OID 1.2.250.1.71.4.2.4). */
  sector: string;
}

/**
 * `authenticate(nonce, { situations: true })`: the token (unchanged, for the server's verifier) and what
 * the card says of its holder, read with the same PIN entry. NOT covered by the card's signature.
 * `situations` is null, with `situationsError`, when they could not be read after the signature
 * (the login itself succeeded).
 */
export type AuthenticationWithSituations = { token: AuthToken; identity: CardIdentity } & (
  | { situations: PracticeSituation[] }
  | { situations: null; situationsError: { code: CpsdErrorCode; message: string } }
);

export interface AuthenticateOptions {
  /** The reader the holder chose when several hold a CPS card (default: the daemon's choice). */
  reader?: string;
  /** Also return the card identity and practice situations (PIN-protected on the card). */
  situations?: boolean;
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

/** The algorithms `sign.hash` takes: SHA-256 (32 bytes), SHA-1 (20 bytes). cpsd/sign prepares SHA-256. */
export type HashAlgorithm = 'SHA-256' | 'SHA-1';

/** What the holder is shown of the document in the PIN window: "name (type, size)", 128 characters at most. */
export interface DocumentShown {
  name: string;
  /** e.g. "application/pdf". */
  type?: string;
  /** In bytes; shown in the browser's language ("48 kB", "48 ko"). */
  size?: number;
}

export interface SignDocumentOptions {
  /**
   * What the editor's server got from cpsd/sign's prepare step: `hashBase64url` (base64 and bytes are taken
   * too), of `hashAlgorithm`'s length. Or a function given the card's signing certificate (base64 DER, what
   * prepare's `signerCertificate` takes) that asks the server to prepare and returns that hash.
   */
  hash: string | Uint8Array | ((signerCertificate: string) => Promise<string | Uint8Array>);
  /** What is signed, as the PIN window shows it. */
  document: string | DocumentShown;
  /** Default SHA-256. */
  hashAlgorithm?: HashAlgorithm;
  /** The reader the holder chose when several hold a CPS card (default: the daemon's choice). */
  reader?: string;
}

/** The card's answer, in the shapes cpsd/sign takes: `finishPdf(state, signature, pdf)`, `preparePdf(pdf, { signerCertificate })`. */
export interface DocumentSignature {
  /** RSA PKCS#1 v1.5 over the hash, base64. */
  signature: string;
  /** The signing (non-repudiation) certificate of the card that signed, base64 DER. */
  signerCertificate: string;
}

export declare class CpsdClient {
  /** Over an open WebSocket to the daemon (`connect()` opens it and makes the client). */
  constructor(ws: WebSocket);
  on<E extends keyof Notifications>(event: E, fn: (params: Notifications[E]) => void): () => void;
  call(method: string, params?: Record<string, unknown>, options?: { timeoutMs?: number }): Promise<unknown>;
  readers(): Promise<ReaderInfo[]>;
  /** `reader`: the one the holder chose when several hold a CPS card (default: the daemon's choice). */
  authenticate(nonce: string, options: AuthenticateOptions & { popup?: Window; situations: true }): Promise<AuthenticationWithSituations>;
  authenticate(nonce: string, options?: AuthenticateOptions & { popup?: Window; situations?: false }): Promise<AuthToken>;
  authenticate(nonce: string, options?: AuthenticateOptions & { popup?: Window }): Promise<AuthToken | AuthenticationWithSituations>;
  /** The card's signing (non-repudiation) certificate, base64 DER (`card.certificates`: no PIN). */
  signingCertificate(options?: { reader?: string }): Promise<string>;
  /** `sign.hash` with the PIN typed in the daemon's window (opened in `popup`, or a new window). */
  signDocument(options: SignDocumentOptions & { popup?: Window }): Promise<DocumentSignature>;
  close(): void;
}

export declare function connect(options?: ConnectOptions): Promise<CpsdClient>;
export declare function openPinWindow(): Window | undefined;
/** From a click handler: opens the PIN window, connects (to `options.port`), authenticates, closes. */
export declare function authenticate(nonce: string, options: ConnectOptions & AuthenticateOptions & { situations: true }): Promise<AuthenticationWithSituations>;
export declare function authenticate(nonce: string, options?: ConnectOptions & AuthenticateOptions & { situations?: false }): Promise<AuthToken>;
export declare function authenticate(nonce: string, options?: ConnectOptions & AuthenticateOptions): Promise<AuthToken | AuthenticationWithSituations>;
/**
 * From a click handler: opens the PIN window, connects (to `options.port`), has the card sign the hash the
 * editor's server prepared, closes. Bad input rejects with INVALID_REQUEST (and `field`) before any window opens.
 */
export declare function signDocument(options: ConnectOptions & SignDocumentOptions): Promise<DocumentSignature>;
