/**
 * Certificates and CRLs as the trust layer handles them: parsed once by pkijs/asn1js (the structures)
 * and by node:crypto (PEM, public keys), with the few facts the rules need read from the parsed form.
 */
import { X509Certificate as NodeCertificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { Memo, digest } from './memo.js';
import { TrustError, type CertificateInput } from './trust-types.js';

export interface ParsedCertificate {
  der: Uint8Array;
  node: NodeCertificate;
  cert: pkijs.Certificate;
  /** SHA-256 of the DER (base64): the memo key. */
  id: string;
  /** Subject DN as an RFC 4514 string (most specific RDN first, as `openssl -nameopt RFC2253`). */
  name: string;
}

export const OID = {
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  certificatePolicies: '2.5.29.32',
  crlDistributionPoints: '2.5.29.31',
  freshestCrl: '2.5.29.46',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  issuingDistributionPoint: '2.5.29.28',
  deltaCrlIndicator: '2.5.29.27',
  crlNumber: '2.5.29.20',
  ocsp: '1.3.6.1.5.5.7.48.1',
  ocspNonce: '1.3.6.1.5.5.7.48.1.2',
  ocspBasic: '1.3.6.1.5.5.7.48.1.1',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  anyExtendedKeyUsage: '2.5.29.37.0',
} as const;

/**
 * Extensions this validator understands (RFC 5280 §4.2 and the IGC-Santé profile). A critical extension
 * outside this list makes the certificate unusable (RFC 5280 §4.2: "MUST reject").
 */
export const KNOWN_EXTENSIONS: ReadonlySet<string> = new Set([
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.35', // authorityKeyIdentifier
  OID.keyUsage,
  OID.basicConstraints,
  OID.extKeyUsage,
  OID.certificatePolicies,
  '2.5.29.17', // subjectAltName
  '2.5.29.18', // issuerAltName
  '2.5.29.30', // nameConstraints (pkijs applies them)
  '2.5.29.33', // policyMappings (pkijs)
  '2.5.29.36', // policyConstraints (pkijs)
  '2.5.29.54', // inhibitAnyPolicy (pkijs)
  OID.crlDistributionPoints,
  OID.freshestCrl,
  OID.authorityInfoAccess,
  '1.3.6.1.5.5.7.48.1.5', // id-pkix-ocsp-nocheck
]);

/** node:crypto prints a DN one RDN per line, least specific first, multi-valued ones joined by " + ". */
function rfc4514(subject: string): string {
  return subject
    .split('\n')
    .reverse()
    .map((rdn) => rdn.replace(/ \+ /g, '+'))
    .join(',');
}

function derOf(input: CertificateInput): Uint8Array {
  if (input instanceof NodeCertificate) return new Uint8Array(input.raw);
  if (typeof input === 'string') {
    try {
      return new Uint8Array(new NodeCertificate(input).raw);
    } catch (error) {
      throw new TrustError('CERT_MALFORMED', 'encoding', 'not a PEM certificate', undefined, { cause: error });
    }
  }
  return input;
}

const parsed = new Memo<ParsedCertificate>();

/** Parses (once per distinct certificate: anchors and intermediates come with every call). */
export function parseCertificate(input: CertificateInput): ParsedCertificate {
  const der = derOf(input);
  const key = digest(der);
  const hit = parsed.get(key);
  if (hit) return hit;
  try {
    // One ASN.1 object and nothing after it: pkijs and node:crypto both stop at the end of the first one.
    const decoded = asn1js.fromBER(new Uint8Array(der));
    if (decoded.offset !== der.byteLength) throw new Error(decoded.offset === -1 ? decoded.result.error : `${der.byteLength - decoded.offset} bytes after the certificate`);
    const node = new NodeCertificate(der);
    const cert = new pkijs.Certificate({ schema: decoded.result });
    return parsed.set(key, { der, node, cert, name: rfc4514(node.subject), id: key });
  } catch (error) {
    throw new TrustError('CERT_MALFORMED', 'encoding', 'not a DER X.509 certificate', undefined, { cause: error });
  }
}

export function extension(cert: pkijs.Certificate | pkijs.CertificateRevocationList, oid: string): pkijs.Extension | undefined {
  const list = cert instanceof pkijs.Certificate ? cert.extensions : cert.crlExtensions?.extensions;
  return list?.find((e) => e.extnID === oid);
}

/** keyUsage bits as names, or undefined when the extension is absent. */
export function keyUsage(cert: pkijs.Certificate): Set<string> | undefined {
  const ext = extension(cert, OID.keyUsage);
  if (!ext) return undefined;
  const names = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'];
  const bits = new Uint8Array((ext.parsedValue as { valueBlock: { valueHexView: Uint8Array } }).valueBlock.valueHexView);
  const out = new Set<string>();
  names.forEach((name, i) => {
    if (((bits[i >> 3] ?? 0) >> (7 - (i & 7))) & 1) out.add(name);
  });
  return out;
}

export function basicConstraints(cert: pkijs.Certificate): { ca: boolean; pathLen: number | undefined } {
  const value = extension(cert, OID.basicConstraints)?.parsedValue as pkijs.BasicConstraints | undefined;
  const pathLen = value?.pathLenConstraint;
  return { ca: value?.cA === true, pathLen: typeof pathLen === 'number' ? pathLen : undefined };
}

export function extendedKeyUsage(cert: pkijs.Certificate): string[] | undefined {
  return (extension(cert, OID.extKeyUsage)?.parsedValue as pkijs.ExtKeyUsage | undefined)?.keyPurposes;
}

export function policies(cert: pkijs.Certificate): string[] {
  return (extension(cert, OID.certificatePolicies)?.parsedValue as pkijs.CertificatePolicies | undefined)?.certificatePolicies.map((p) => p.policyIdentifier) ?? [];
}

/** http(s) URIs of a GeneralName list. */
function uris(names: readonly pkijs.GeneralName[] | undefined): string[] {
  return (names ?? []).filter((n) => n.type === 6 && typeof n.value === 'string').map((n) => String(n.value));
}

/** CRL distribution points' http URLs (ldap ones are not fetched). */
export function crlUrls(cert: pkijs.Certificate, oid: string = OID.crlDistributionPoints): string[] {
  const value = extension(cert, oid)?.parsedValue as pkijs.CRLDistributionPoints | undefined;
  return (value?.distributionPoints ?? [])
    .flatMap((dp) => (Array.isArray(dp.distributionPoint) ? uris(dp.distributionPoint) : []))
    .filter((u) => u.startsWith('http://') || u.startsWith('https://'));
}

export function ocspUrls(cert: pkijs.Certificate): string[] {
  const value = extension(cert, OID.authorityInfoAccess)?.parsedValue as pkijs.InfoAccess | undefined;
  return (value?.accessDescriptions ?? [])
    .filter((d) => d.accessMethod === OID.ocsp)
    .flatMap((d) => uris([d.accessLocation]))
    .filter((u) => u.startsWith('http://') || u.startsWith('https://'));
}

/** The signature algorithm's hash, by OID (RSA PKCS#1, RSA-PSS via its parameters, ECDSA). */
export function signatureHash(algorithm: pkijs.AlgorithmIdentifier): string {
  const oid = algorithm.algorithmId;
  const table: Record<string, string> = {
    '1.2.840.113549.1.1.4': 'MD5',
    '1.2.840.113549.1.1.2': 'MD2',
    '1.2.840.113549.1.1.5': 'SHA-1',
    '1.2.840.10045.4.1': 'SHA-1',
    '1.2.840.113549.1.1.11': 'SHA-256',
    '1.2.840.113549.1.1.12': 'SHA-384',
    '1.2.840.113549.1.1.13': 'SHA-512',
    '1.2.840.10045.4.3.2': 'SHA-256',
    '1.2.840.10045.4.3.3': 'SHA-384',
    '1.2.840.10045.4.3.4': 'SHA-512',
  };
  if (oid === '1.2.840.113549.1.1.10') {
    try {
      const params = new pkijs.RSASSAPSSParams({ schema: algorithm.algorithmParams });
      return table[`${params.hashAlgorithm.algorithmId}`] ?? { '2.16.840.1.101.3.4.2.1': 'SHA-256', '2.16.840.1.101.3.4.2.2': 'SHA-384', '2.16.840.1.101.3.4.2.3': 'SHA-512', '1.3.14.3.2.26': 'SHA-1' }[params.hashAlgorithm.algorithmId] ?? 'unknown';
    } catch {
      return 'unknown';
    }
  }
  return table[oid] ?? 'unknown';
}

/** Key type and size of the certificate's public key. */
export function publicKeyOf(p: ParsedCertificate): { type: string; bits: number | undefined; curve: string | undefined } {
  const key = p.node.publicKey;
  const details = key.asymmetricKeyDetails;
  return { type: key.asymmetricKeyType ?? 'unknown', bits: details?.modulusLength, curve: details?.namedCurve };
}

export function isSelfIssued(cert: pkijs.Certificate): boolean {
  return cert.subject.isEqual(cert.issuer);
}
