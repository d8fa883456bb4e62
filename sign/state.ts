/** What prepare… and finish… share: certificate inputs, the signing states (plain JSON) and their checks. */
import { createHash } from 'node:crypto';
import { DocumentSignatureError } from './errors.js';

/** DER bytes, PEM text, or base64 DER (as `card.certificates` and `sign.hash` give it). */
export type CertificateBytes = Uint8Array | string;

export function derOf(input: CertificateBytes, what: string): Uint8Array {
  if (input instanceof Uint8Array) return input;
  const pem = /-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/.exec(input);
  const text = (pem ? (pem[1] as string) : input).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) throw new DocumentSignatureError('SIGNING_STATE_INVALID', `${what} is neither DER, PEM nor base64`);
  return new Uint8Array(Buffer.from(text, /[-_]/.test(text) ? 'base64url' : 'base64'));
}

export interface SignerOptions {
  /** The card's signing (non-repudiation) certificate: `card.certificates` → `signing`. */
  signerCertificate: CertificateBytes;
  /** The CA certificates to embed (IGC-Santé intermediate, and the root if wanted). */
  chain?: readonly CertificateBytes[];
}

/** What the card must sign: `sign.hash` with `hashAlgorithm: 'SHA-256'` and this hash. */
export interface ToSign {
  /** SHA-256 of the DER signed attributes (32 bytes). */
  hash: Uint8Array;
  /** The same, base64url, as `sign.hash` takes it. */
  hashBase64url: string;
  hashAlgorithm: 'SHA-256';
}

export function toSign(attributesDer: Uint8Array): ToSign {
  const hash = new Uint8Array(createHash('sha256').update(attributesDer).digest());
  return { hash, hashBase64url: Buffer.from(hash).toString('base64url'), hashAlgorithm: 'SHA-256' };
}

export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

export function fromB64(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new DocumentSignatureError('SIGNING_STATE_INVALID', `the state's ${what} is not base64`);
  return new Uint8Array(Buffer.from(value, 'base64'));
}

/** The card's answer: bytes, or base64 / base64url as `sign.hash` returns it. */
export function signatureBytes(signature: Uint8Array | string): Uint8Array {
  if (signature instanceof Uint8Array) return signature;
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(signature)) throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'the signature is not base64');
  return new Uint8Array(Buffer.from(signature, /[-_]/.test(signature) ? 'base64url' : 'base64'));
}

export function stateObject(state: unknown, format: string): Record<string, unknown> {
  const s = typeof state === 'string' ? safeParse(state) : state;
  if (typeof s !== 'object' || s === null || (s as { format?: unknown }).format !== format) {
    throw new DocumentSignatureError('SIGNING_STATE_INVALID', `not a ${format} signing state`);
  }
  return s as Record<string, unknown>;
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'the signing state is not JSON');
  }
}

export function certificatesOf(s: Record<string, unknown>): Uint8Array[] {
  const list = s.certificates;
  if (!Array.isArray(list) || list.length === 0) throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'the state has no certificates');
  return list.map((c, i) => fromB64(c, `certificate ${i}`));
}
