/** Certificate revocation lists (RFC 5280 §5), parsed and checked against the certificate that issued them. */
import { verify, type X509Certificate } from 'node:crypto';
import { CpsdError, toHex } from '../apdu/errors.js';
import { encodeTlv, parseTlv } from '../apdu/tlv.js';

export class CrlError extends CpsdError {
  readonly code = 'CRL_INVALID';
}

const SIGNATURE_HASH: Readonly<Record<string, string>> = {
  '2A864886F70D01010B': 'sha256', // sha256WithRSAEncryption
  '2A864886F70D01010C': 'sha384',
  '2A864886F70D01010D': 'sha512',
  '2A864886F70D010105': 'sha1',
};

/**
 * Serial numbers (upper-case hex, no leading 00) revoked by a DER CRL whose signature verifies with one
 * of the given issuer certificates. A CRL nobody trusted signed is an error, not an empty list.
 */
export function revokedSerials(der: Uint8Array, issuers: readonly X509Certificate[]): Set<string> {
  let list;
  try {
    list = parseTlv(der)[0];
  } catch (error) {
    throw new CrlError('not a DER CRL', { cause: error });
  }
  const [tbs, algorithm, signature] = list?.children ?? [];
  if (!tbs || !algorithm || !signature) throw new CrlError('incomplete CRL');
  const hash = SIGNATURE_HASH[toHex(algorithm.children?.[0]?.value ?? new Uint8Array(0))];
  if (!hash) throw new CrlError('unsupported CRL signature algorithm');
  const tbsBytes = encodeTlv(tbs);
  const sig = signature.value.subarray(1);
  if (!issuers.some((c) => verify(hash, tbsBytes, c.publicKey, sig))) throw new CrlError('CRL signature does not verify with any trusted certificate');
  const fields = tbs.children ?? [];
  let i = fields[0]?.tag === 0x02 ? 1 : 0; // version
  i += 3; // signature algorithm, issuer, thisUpdate
  if (fields[i]?.tag === 0x17 || fields[i]?.tag === 0x18) i++; // nextUpdate
  const out = new Set<string>();
  const entries = fields[i]?.tag === 0x30 ? (fields[i]?.children ?? []) : [];
  for (const entry of entries) {
    const serial = entry.children?.[0];
    if (serial?.tag === 0x02) out.add(toHex(serial.value).replace(/^00/, ''));
  }
  return out;
}
