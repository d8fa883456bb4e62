/**
 * Protocol v1: JSON-RPC 2.0 over WebSocket (docs/protocol.md). Every request is validated here before
 * anything touches a card; every error leaves as a JSON-RPC error whose `data.code` is one of the stable
 * codes below, mapped 1:1 from the typed errors of the lower layers.
 */
import { CpsdError } from '../core/errors.js';
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
] as const;

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

/** Lower-layer codes → protocol codes (1:1 where the meaning is the same). */
const FROM_LOWER: Readonly<Record<string, ErrorCode>> = {
  PCSC_UNAVAILABLE: 'PCSC_UNAVAILABLE',
  READER_NOT_FOUND: 'READER_NOT_FOUND',
  CARD_ABSENT: 'CARD_ABSENT',
  CARD_RESET: 'CARD_ERROR',
  CARD_UNRESPONSIVE: 'CARD_ERROR',
  CARD_BUSY: 'BUSY',
  BUSY: 'BUSY',
  USER_CANCELLED: 'USER_CANCELLED',
  UNSUPPORTED_CARD: 'CARD_UNSUPPORTED',
  PIN_INCORRECT: 'PIN_INCORRECT',
  PIN_BLOCKED: 'PIN_BLOCKED',
  PIN_LAST_TRY: 'PIN_LAST_TRY',
  PIN_FORMAT: 'PIN_FORMAT',
  CARD_TIMEOUT: 'TIMEOUT',
  TIMEOUT: 'TIMEOUT',
  CARD_PROTOCOL: 'CARD_ERROR',
  OBJECT_NOT_FOUND: 'CARD_ERROR',
};

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
    const pcsc = error instanceof PcscError ? (isServiceFailure(error) ? 'PCSC_UNAVAILABLE' : 'CARD_ERROR') : undefined;
    const code = FROM_LOWER[error.code] ?? pcsc ?? ('sw' in error ? 'CARD_ERROR' : 'INTERNAL');
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

export type Field = 'string?' | 'reader?' | 'base64url' | 'pin?' | 'hashAlgorithm' | 'nonce' | 'document?';

/** Checks params against a flat schema; unknown params are refused. */
export function checkParams(params: Record<string, unknown>, schema: Readonly<Record<string, Field>>): void {
  for (const key of Object.keys(params)) if (!(key in schema)) throw new ProtocolError('INVALID_REQUEST', `unknown parameter "${key}"`);
  for (const [key, type] of Object.entries(schema)) {
    const v = params[key];
    const optional = type.endsWith('?');
    if (v === undefined) {
      if (!optional) throw new ProtocolError('INVALID_REQUEST', `missing parameter "${key}"`);
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
