/**
 * CAdES baseline B detached (ETSI EN 319 122-1) for any file, in two steps like PAdES: the server hashes
 * the file and prepares the signed attributes (content-type, message-digest, signing-certificate-v2,
 * signing-time), the card signs their SHA-256, the server finishes the `.p7s` (DER) to keep beside the file.
 */
import { createHash } from 'node:crypto';
import { signatureMatches, signedAttributes, signedData } from './cms.js';
import { DocumentSignatureError } from './errors.js';
import { b64, certificatesOf, derOf, fromB64, signatureBytes, stateObject, toSign, type SignerOptions, type ToSign } from './state.js';

export const CADES_STATE_FORMAT = 'cpsd-cades/1';

export interface CadesSignOptions extends SignerOptions {
  /** The signing-time attribute (default now); `false` leaves it out. */
  signingTime?: Date | false;
}

/** The content: its bytes, its SHA-256, or a stream of it (hashed as it comes: a large file is never held). */
export type CadesContent = Uint8Array | { sha256: Uint8Array } | AsyncIterable<Uint8Array>;

export interface CadesSigningState {
  format: typeof CADES_STATE_FORMAT;
  signedAttributes: string;
  certificates: string[];
}

export interface PreparedCades extends ToSign {
  state: CadesSigningState;
}

/** SHA-256 of a content given as bytes, a digest, or a stream (a `fs.createReadStream(file)`). */
export async function contentDigest(content: CadesContent): Promise<Uint8Array> {
  if (content instanceof Uint8Array) return new Uint8Array(createHash('sha256').update(content).digest());
  if ('sha256' in content) {
    if (!(content.sha256 instanceof Uint8Array) || content.sha256.length !== 32) throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'a SHA-256 is 32 bytes');
    return content.sha256;
  }
  const hash = createHash('sha256');
  for await (const chunk of content) hash.update(chunk);
  return new Uint8Array(hash.digest());
}

export async function prepareCades(content: CadesContent, options: CadesSignOptions): Promise<PreparedCades> {
  const certificates = [derOf(options.signerCertificate, 'the signer certificate'), ...(options.chain ?? []).map((c, i) => derOf(c, `chain certificate ${i}`))];
  const signingTime = options.signingTime === false ? undefined : (options.signingTime ?? new Date());
  const attributes = signedAttributes({ digest: await contentDigest(content), certificate: certificates[0] as Uint8Array, ...(signingTime ? { signingTime } : {}) });
  return { ...toSign(attributes), state: { format: CADES_STATE_FORMAT, signedAttributes: b64(attributes), certificates: certificates.map(b64) } };
}

/** The detached signature (`.p7s`, DER ContentInfo { SignedData }) with the card's signature. */
export function finishCades(state: CadesSigningState | string, signature: Uint8Array | string): Uint8Array {
  const s = stateObject(state, CADES_STATE_FORMAT);
  const attributes = fromB64(s.signedAttributes, 'signed attributes');
  const certificates = certificatesOf(s);
  const sig = signatureBytes(signature);
  if (!signatureMatches(attributes, sig, certificates[0] as Uint8Array)) {
    throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'the signature does not match the signer certificate of the state (another key or another card?)');
  }
  return signedData(attributes, sig, certificates);
}
