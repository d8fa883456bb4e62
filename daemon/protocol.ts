/**
 * Protocol v1: JSON-RPC 2.0 over WebSocket (docs/protocol.md). Every request is validated here before
 * anything touches a card; every error leaves as a JSON-RPC error whose `data.code` is one of the stable
 * codes below, mapped 1:1 from the typed errors of the lower layers.
 */
import { CpsdError, type CpsdErrorCode } from '../core/errors.js';
import { hasOwn, own } from '../core/own.js';
import { PcscError, isServiceFailure } from '../apdu/pcsc/errors.js';

export const PROTOCOL = 'cpsd/1';

/** Every code a client can see in `error.data.code` (docs/protocol.md, client/cpsd.d.ts: checked by a test). */
export const ERROR_CODES = [
  'INVALID_REQUEST',
  'METHOD_NOT_FOUND',
  'ORIGIN_NOT_ALLOWED',
  'RATE_LIMITED',
  'BUSY',
  'TIMEOUT',
  'USER_CANCELLED',
  'PCSC_UNAVAILABLE',
  'READER_NOT_FOUND',
  'CARD_ABSENT',
  'CARD_UNSUPPORTED',
  'CARD_ERROR',
  'PIN_INCORRECT',
  'PIN_BLOCKED',
  'PIN_LAST_TRY',
  'PIN_FORMAT',
  'PIN_NOT_ALLOWED',
  'CONTACTLESS_NOT_ALLOWED',
  'INTERNAL',
] as const satisfies readonly CpsdErrorCode[];

export type ErrorCode = (typeof ERROR_CODES)[number];

/** JSON-RPC numeric codes: the standard ones, then -32000 for everything card- or policy-related. */
const RPC_CODE: Readonly<Partial<Record<ErrorCode, number>>> = {
  INVALID_REQUEST: -32602,
  METHOD_NOT_FOUND: -32601,
  INTERNAL: -32603,
};

export class ProtocolError extends CpsdError {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

const same = <C extends ErrorCode>(code: C): C => code;

/**
 * Every error code → the protocol code a client sees: the same code where the meaning is the same;
 * what only a relying party's verifier or the CLI can raise is INTERNAL if it ever reaches here.
 */
const TO_PROTOCOL = {
  APDU_INVALID: 'CARD_ERROR', // a response that is not an APDU: the card misbehaved
  TLV_INVALID: 'CARD_ERROR',
  ATR_INVALID: 'CARD_UNSUPPORTED',
  CARD_PROTOCOL: 'CARD_ERROR',
  CARD_ERROR: same('CARD_ERROR'),
  PIN_INCORRECT: same('PIN_INCORRECT'),
  PIN_BLOCKED: same('PIN_BLOCKED'),
  SECURITY_STATUS_NOT_SATISFIED: 'CARD_ERROR',
  REFERENCE_DATA_NOT_USABLE: 'CARD_ERROR',
  CONDITIONS_NOT_SATISFIED: 'CARD_ERROR',
  FILE_NOT_FOUND: 'CARD_ERROR',
  REFERENCED_DATA_NOT_FOUND: 'CARD_ERROR',
  WRONG_P1P2: 'CARD_ERROR',
  WRONG_LENGTH: 'CARD_ERROR',
  WRONG_DATA: 'CARD_ERROR',
  FUNCTION_NOT_SUPPORTED: 'CARD_ERROR',
  INS_NOT_SUPPORTED: 'CARD_ERROR',
  CLA_NOT_SUPPORTED: 'CARD_ERROR',
  CARD_MEMORY: 'CARD_ERROR',
  PCSC_ERROR: 'CARD_ERROR',
  PCSC_UNAVAILABLE: same('PCSC_UNAVAILABLE'),
  READER_NOT_FOUND: same('READER_NOT_FOUND'),
  CARD_ABSENT: same('CARD_ABSENT'),
  CARD_RESET: 'CARD_ERROR',
  CARD_UNRESPONSIVE: 'CARD_ERROR',
  CARD_BUSY: 'BUSY',
  PROTOCOL_MISMATCH: 'CARD_ERROR',
  UNSUPPORTED_FEATURE: 'CARD_ERROR',
  TIMEOUT: same('TIMEOUT'),
  CANCELLED: 'USER_CANCELLED',
  UNSUPPORTED_CARD: 'CARD_UNSUPPORTED',
  MIDSTATE_INVALID: 'INTERNAL',
  PIN_FORMAT: same('PIN_FORMAT'),
  PIN_LAST_TRY: same('PIN_LAST_TRY'),
  CARD_TIMEOUT: 'TIMEOUT',
  OBJECT_NOT_FOUND: 'CARD_ERROR',
  USER_CANCELLED: same('USER_CANCELLED'),
  BUSY: same('BUSY'),
  CERTIFICATE_INVALID: 'CARD_ERROR', // the card's own certificate does not parse
  TOKEN_MALFORMED: 'INTERNAL',
  ORIGIN_INVALID: 'INTERNAL',
  NONCE_INVALID: 'INTERNAL',
  NONCE_EXPIRED: 'INTERNAL',
  SIGNATURE_INVALID: 'INTERNAL',
  CERT_MALFORMED: 'INTERNAL',
  CERT_UNTRUSTED: 'INTERNAL',
  CERT_EXPIRED: 'INTERNAL',
  CERT_NOT_YET_VALID: 'INTERNAL',
  CERT_REVOKED: 'INTERNAL',
  CERT_WRONG_PURPOSE: 'INTERNAL',
  CERT_POLICY: 'INTERNAL',
  CERT_ALGORITHM: 'INTERNAL',
  CRL_INVALID: 'INTERNAL',
  REVOCATION_UNKNOWN: 'INTERNAL',
  NONCE_STORE_UNAVAILABLE: 'INTERNAL',
  NONCE_STORE_CONFLICT: 'INTERNAL',
  STORE_UNAVAILABLE: 'INTERNAL',
  STORE_NOT_REPLICATED: 'INTERNAL',
  UPSTREAM_STATE: 'INTERNAL',
  UPSTREAM_REFUSED: 'INTERNAL',
  UPSTREAM_INVALID: 'INTERNAL',
  UPSTREAM_CLAIMS: 'INTERNAL',
  UPSTREAM_UNAVAILABLE: 'INTERNAL',
  LOGOUT_DELIVERY_FAILED: 'INTERNAL',
  CIBA_UNKNOWN_HOLDER: 'INTERNAL',
  CIBA_NO_WORKSTATION: 'INTERNAL',
  CIBA_REFUSED: 'INTERNAL',
  CIBA_FAILED: 'INTERNAL',
  CIBA_REGISTRATION_INVALID: 'INTERNAL',
  CONFIG_INVALID: 'INTERNAL',
  INVALID_REQUEST: same('INVALID_REQUEST'),
  METHOD_NOT_FOUND: same('METHOD_NOT_FOUND'),
  ORIGIN_NOT_ALLOWED: same('ORIGIN_NOT_ALLOWED'),
  RATE_LIMITED: same('RATE_LIMITED'),
  CARD_UNSUPPORTED: same('CARD_UNSUPPORTED'),
  PIN_NOT_ALLOWED: same('PIN_NOT_ALLOWED'),
  CONTACTLESS_NOT_ALLOWED: same('CONTACTLESS_NOT_ALLOWED'),
  INTERNAL: same('INTERNAL'),
  VPCD_UNAVAILABLE: 'INTERNAL',
  PROFILE_NOT_FOUND: 'INTERNAL',
  NO_INPUT: 'INTERNAL',
  PIN_MISMATCH: 'INTERNAL',
  CARD_DATA_INVALID: 'CARD_ERROR',
  PKCS11_MODULE_NOT_FOUND: 'INTERNAL',
  NO_SIGNING_KEY: 'INTERNAL',
  CARD_CHANGED: 'INTERNAL',
  OUTPUT_EXISTS: 'INTERNAL',
  CONTENT_MISSING: 'INTERNAL',
  PKCS11_VERSION: 'INTERNAL',
  PKCS11_NOT_INITIALIZED: 'INTERNAL',
  NO_TOKEN: 'INTERNAL',
  NOT_LOGGED_IN: 'INTERNAL',
  ALREADY_LOGGED_IN: 'INTERNAL',
  USER_TYPE_INVALID: 'INTERNAL',
  KEY_NOT_FOUND: 'INTERNAL',
  MECHANISM_INVALID: 'INTERNAL',
  MECHANISM_PARAM_INVALID: 'INTERNAL',
  DATA_INVALID: 'INTERNAL',
  DATA_LENGTH: 'INTERNAL',
  PDF_INVALID: 'INTERNAL',
  PDF_ENCRYPTED: 'INTERNAL',
  DOCUMENT_NOT_SIGNED: 'INTERNAL',
  SIGNING_STATE_INVALID: 'INTERNAL',
} as const satisfies Record<CpsdErrorCode, ErrorCode>;

/** The protocol code of any error code. */
export function protocolCode(code: CpsdErrorCode): ErrorCode {
  return TO_PROTOCOL[code];
}

export interface RpcError {
  code: number;
  message: string;
  data: { code: ErrorCode } & Record<string, unknown>;
}

export function toRpcError(error: unknown): RpcError {
  if (error instanceof ProtocolError) {
    return { code: RPC_CODE[error.code] ?? -32000, message: error.message, data: { code: error.code, ...error.details } };
  }
  if (error instanceof CpsdError) {
    // Every PC/SC failure is typed: the service gone, or a card/reader failure (e.g. the security
    // violation pcscd reports while it shuts down), never an internal error.
    const code = error instanceof PcscError && isServiceFailure(error) ? 'PCSC_UNAVAILABLE' : protocolCode(error.code);
    const data: RpcError['data'] = { code };
    if ('triesLeft' in error && typeof error.triesLeft === 'number') data.triesLeft = error.triesLeft;
    if ('atr' in error && typeof error.atr === 'string') data.atr = error.atr;
    return { code: RPC_CODE[code] ?? -32000, message: error.message, data };
  }
  return { code: -32603, message: 'internal error', data: { code: 'INTERNAL' } };
}

export interface Request {
  id: string | number;
  method: string;
  params: Record<string, unknown>;
}

/** Parses and validates one message: a JSON-RPC 2.0 request with an id and object params. */
export function parseRequest(text: string): Request {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    throw new ProtocolError('INVALID_REQUEST', 'not JSON');
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw new ProtocolError('INVALID_REQUEST', 'a request is a JSON object');
  const m = msg as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') throw new ProtocolError('INVALID_REQUEST', 'jsonrpc must be "2.0"');
  if (!(typeof m.id === 'string' && m.id.length <= 64) && !(typeof m.id === 'number' && Number.isSafeInteger(m.id))) {
    throw new ProtocolError('INVALID_REQUEST', 'id must be a string (≤ 64) or an integer');
  }
  if (typeof m.method !== 'string' || m.method.length > 64) throw new ProtocolError('INVALID_REQUEST', 'method must be a string');
  const params = m.params ?? {};
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new ProtocolError('INVALID_REQUEST', 'params must be an object');
  for (const key of Object.keys(m)) if (!['jsonrpc', 'id', 'method', 'params'].includes(key)) throw new ProtocolError('INVALID_REQUEST', `unknown member "${key}"`);
  return { id: m.id, method: m.method, params: params as Record<string, unknown> };
}

export type Field = 'string?' | 'reader?' | 'base64url' | 'pin?' | 'hashAlgorithm' | 'nonce' | 'document?' | 'boolean?';

/** Checks params against a flat schema; unknown params are refused (own names only: `constructor` is unknown). */
export function checkParams(params: Record<string, unknown>, schema: Readonly<Record<string, Field>>): void {
  for (const key of Object.keys(params)) if (!hasOwn(schema, key)) throw new ProtocolError('INVALID_REQUEST', `unknown parameter "${key}"`);
  for (const [key, type] of Object.entries(schema)) {
    const v = own(params, key);
    const optional = type.endsWith('?');
    if (v === undefined) {
      if (!optional) throw new ProtocolError('INVALID_REQUEST', `missing parameter "${key}"`);
      continue;
    }
    if (type === 'boolean?') {
      if (typeof v !== 'boolean') throw new ProtocolError('INVALID_REQUEST', `"${key}" must be true or false`);
      continue;
    }
    if (typeof v !== 'string') throw new ProtocolError('INVALID_REQUEST', `"${key}" must be a string`);
    if (type === 'reader?' && (v.length === 0 || v.length > 128)) throw new ProtocolError('INVALID_REQUEST', '"reader" must be 1..128 characters');
    if (type === 'base64url' && (!/^[A-Za-z0-9_-]+={0,2}$/.test(v) || v.length > 512)) {
      throw new ProtocolError('INVALID_REQUEST', `"${key}" must be base64url (≤ 512 characters)`);
    }
    if (type === 'nonce' && (v.length < 44 || v.length > 128 || !/^[\x21-\x7e]+$/.test(v))) {
      throw new ProtocolError('INVALID_REQUEST', '"nonce" must be 44 to 128 printable characters (256-bit base64)');
    }
    // The PIN's format is the card's rule (AODF): checked against the card, PIN_FORMAT when it fails.
    if (type === 'pin?' && v.length > 32) throw new ProtocolError('PIN_FORMAT', '"pin" is too long');
    if (type === 'document?' && (v.length === 0 || v.length > 128 || /\p{Cc}/u.test(v))) {
      throw new ProtocolError('INVALID_REQUEST', '"document" must be 1..128 characters without control characters');
    }
    if (type === 'hashAlgorithm' && v !== 'SHA-256' && v !== 'SHA-1') throw new ProtocolError('INVALID_REQUEST', '"hashAlgorithm" must be SHA-256 or SHA-1');
  }
}
