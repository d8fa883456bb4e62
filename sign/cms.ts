/**
 * The CMS (RFC 5652) of a CAdES baseline B signature (ETSI EN 319 122-1), built and read with pkijs/asn1js:
 * the signed attributes whose SHA-256 the card signs, the SignedData around the card's signature, and
 * the checks of a SignedData a verifier makes before the trust layer judges the certificate.
 */
import { createHash, constants, verify as verifySignature, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { DocumentSignatureError } from './errors.js';

export const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  signingCertificate: '1.2.840.113549.1.9.16.2.12',
  signingCertificateV2: '1.2.840.113549.1.9.16.2.47',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
} as const;

export type DigestName = 'sha256' | 'sha384' | 'sha512';
const DIGESTS: Readonly<Record<string, DigestName>> = { [OID.sha256]: 'sha256', [OID.sha384]: 'sha384', [OID.sha512]: 'sha512' };
/** RSA PKCS#1 v1.5 signature algorithms a signer info may name (rsaEncryption: the digest algorithm's). */
const RSA_SIGNATURES: Readonly<Record<string, DigestName | undefined>> = {
  [OID.rsaEncryption]: undefined,
  [OID.sha256WithRsa]: 'sha256',
  [OID.sha384WithRsa]: 'sha384',
  [OID.sha512WithRsa]: 'sha512',
};

const sha256 = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(bytes).digest());
const ber = (node: { toBER(): ArrayBuffer }): Uint8Array => new Uint8Array(node.toBER());

function parseDer(bytes: Uint8Array, what: string): asn1js.AsnType {
  const parsed = asn1js.fromBER(bytes);
  if (parsed.offset === -1) throw new DocumentSignatureError('SIGNATURE_INVALID', `${what} is not DER`);
  return parsed.result;
}

/** DER order of a SET OF: by the encodings, as octet strings (X.690 §11.6); verifiers re-encode it so. */
function derSetOrder(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

/**
 * signing-certificate-v2 (RFC 5035): one ESSCertIDv2, SHA-256 of the signer's certificate (SHA-256 is the
 * DEFAULT hash algorithm, so DER leaves it out) with the issuer and serial number.
 */
function signingCertificateV2(certificate: Uint8Array): asn1js.Sequence {
  const cert = pkijs.Certificate.fromBER(new Uint8Array(certificate));
  const issuerSerial = new asn1js.Sequence({
    value: [
      new pkijs.GeneralNames({ names: [new pkijs.GeneralName({ type: 4, value: cert.issuer })] }).toSchema(),
      new asn1js.Integer({ valueHex: cert.serialNumber.valueBlock.valueHexView }),
    ],
  });
  const essCertIdV2 = new asn1js.Sequence({ value: [new asn1js.OctetString({ valueHex: sha256(certificate) }), issuerSerial] });
  return new asn1js.Sequence({ value: [new asn1js.Sequence({ value: [essCertIdV2] })] });
}

export interface SignedAttributesInput {
  /** Digest of the signed content (detached: the document, or the PDF's byte ranges). */
  digest: Uint8Array;
  certificate: Uint8Array;
  /** CAdES only: PAdES keeps the time in the signature dictionary (ETSI EN 319 142-1 §5.2.3). */
  signingTime?: Date;
}

/** The DER of the signed attributes as a SET (what is hashed and signed), in DER order. */
export function signedAttributes(input: SignedAttributesInput): Uint8Array {
  if (input.digest.length !== 32) throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'the content digest is a SHA-256 (32 bytes)');
  const attributes = [
    new pkijs.Attribute({ type: OID.contentType, values: [new asn1js.ObjectIdentifier({ value: OID.data })] }),
    new pkijs.Attribute({ type: OID.messageDigest, values: [new asn1js.OctetString({ valueHex: input.digest })] }),
    new pkijs.Attribute({ type: OID.signingCertificateV2, values: [signingCertificateV2(input.certificate)] }),
  ];
  if (input.signingTime) attributes.push(new pkijs.Attribute({ type: OID.signingTime, values: [new asn1js.UTCTime({ valueDate: input.signingTime })] }));
  const encoded = attributes.map((a) => ber(a.toSchema())).sort(derSetOrder);
  return ber(new asn1js.Set({ value: encoded.map((e) => parseDer(e, 'an attribute')) }));
}

function algorithm(oid: string, params?: asn1js.AsnType): pkijs.AlgorithmIdentifier {
  return new pkijs.AlgorithmIdentifier(params ? { algorithmId: oid, algorithmParams: params } : { algorithmId: oid });
}

function certificateOf(der: Uint8Array): pkijs.Certificate {
  try {
    return pkijs.Certificate.fromBER(new Uint8Array(der));
  } catch (error) {
    throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'a certificate given is not DER X.509', { cause: error });
  }
}

/**
 * ContentInfo { SignedData } (detached: no eContent): SHA-256, sha256WithRSAEncryption (the card's
 * PKCS#1 v1.5 signature), the signed attributes as they were hashed, the signer's certificate and the chain.
 */
export function signedData(attributesDer: Uint8Array, signature: Uint8Array, certificates: readonly Uint8Array[]): Uint8Array {
  const [signerDer] = certificates;
  if (!signerDer) throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'no signer certificate');
  const signer = certificateOf(signerDer);
  const set = parseDer(attributesDer, 'the signed attributes') as asn1js.Set;
  const attributes = set.valueBlock.value.map((schema) => new pkijs.Attribute({ schema }));
  const signerInfo = new pkijs.SignerInfo({
    version: 1,
    sid: new pkijs.IssuerAndSerialNumber({ issuer: signer.issuer, serialNumber: signer.serialNumber }),
    digestAlgorithm: algorithm(OID.sha256),
    signedAttrs: new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes }),
    signatureAlgorithm: algorithm(OID.sha256WithRsa, new asn1js.Null()),
    signature: new asn1js.OctetString({ valueHex: signature }),
  });
  const content = new pkijs.SignedData({
    version: 1,
    digestAlgorithms: [algorithm(OID.sha256)],
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID.data }),
    certificates: certificates.map(certificateOf),
    signerInfos: [signerInfo],
  });
  const der = ber(new pkijs.ContentInfo({ contentType: OID.signedData, content: content.toSchema(true) }).toSchema());
  // What is embedded must be what was hashed: a re-encoding that changed a byte would void the signature.
  const back = readSignedData(der);
  if (Buffer.compare(back.signedAttributes, attributesDer) !== 0) throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'the signed attributes changed when encoded');
  return der;
}

/** Whether `signature` is the PKCS#1 v1.5 SHA-256 signature of the signed attributes by this certificate's key. */
export function signatureMatches(attributesDer: Uint8Array, signature: Uint8Array, certificate: Uint8Array, digest: DigestName = 'sha256'): boolean {
  try {
    return verifySignature(digest, attributesDer, { key: new X509Certificate(certificate).publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
  } catch {
    return false;
  }
}

export interface ReadSignedData {
  signedData: pkijs.SignedData;
  signerInfo: pkijs.SignerInfo;
  /** DER of the signed attributes with the SET tag: what was signed. */
  signedAttributes: Uint8Array;
  certificates: Uint8Array[];
}

/** Parses a ContentInfo { SignedData } with one signer (trailing bytes, e.g. a PDF placeholder's zeros, are ignored). */
export function readSignedData(der: Uint8Array): ReadSignedData {
  let signed: pkijs.SignedData;
  try {
    const info = new pkijs.ContentInfo({ schema: parseDer(der, 'the signature') });
    if (info.contentType !== OID.signedData) throw new Error(`content type ${info.contentType}`);
    signed = new pkijs.SignedData({ schema: info.content });
  } catch (error) {
    if (error instanceof DocumentSignatureError) throw error;
    throw new DocumentSignatureError('SIGNATURE_INVALID', 'the signature is not a CMS SignedData', { cause: error });
  }
  if (signed.signerInfos.length === 0) throw new DocumentSignatureError('DOCUMENT_NOT_SIGNED', 'the SignedData has no signer');
  if (signed.signerInfos.length > 1) throw new DocumentSignatureError('SIGNATURE_INVALID', `the SignedData has ${signed.signerInfos.length} signers (one expected)`);
  const signerInfo = signed.signerInfos[0] as pkijs.SignerInfo;
  if (!signerInfo.signedAttrs) throw new DocumentSignatureError('SIGNATURE_INVALID', 'no signed attributes: not a CAdES signature');
  const certificates = (signed.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate).map((c) => ber(c.toSchema()));
  return { signedData: signed, signerInfo, signedAttributes: new Uint8Array(signerInfo.signedAttrs.encodedValue), certificates };
}

export interface CheckedSignature {
  /** DER of the signer's certificate (found in the SignedData by the signer's issuer and serial number). */
  certificate: Uint8Array;
  /** The other certificates the SignedData carries (the chain, for path building: never trusted as such). */
  certificates: Uint8Array[];
  /** The signing-time attribute (CAdES), a claim of the signer. */
  signingTime: Date | undefined;
}

function attributeValues(signerInfo: pkijs.SignerInfo, oid: string): asn1js.AsnType[] | undefined {
  const found = (signerInfo.signedAttrs?.attributes ?? []).filter((a) => a.type === oid);
  if (found.length > 1) throw new DocumentSignatureError('SIGNATURE_INVALID', `the signed attribute ${oid} is present ${found.length} times`);
  return found[0]?.values;
}

const invalid = (message: string): DocumentSignatureError => new DocumentSignatureError('SIGNATURE_INVALID', message);

/**
 * The CAdES baseline B checks of one signer: digest algorithm, content-type = id-data, message-digest =
 * the digest of the content, signing-certificate-v2 naming the signer's certificate, and the signature
 * of the signed attributes by that certificate's RSA key. `digestOf` hashes the content with the
 * algorithm the signer used. For PAdES, `pades` refuses a signing-time attribute.
 */
export async function checkSignedData(read: ReadSignedData, digestOf: (algorithm: DigestName) => Promise<Uint8Array> | Uint8Array, options: { pades?: boolean } = {}): Promise<CheckedSignature> {
  const { signerInfo, signedAttributes: attributesDer } = read;
  const digest = DIGESTS[signerInfo.digestAlgorithm.algorithmId];
  if (!digest) throw invalid(`digest algorithm ${signerInfo.digestAlgorithm.algorithmId} is not accepted`);
  const sid = signerInfo.sid;
  if (!(sid instanceof pkijs.IssuerAndSerialNumber)) throw invalid('the signer is named by key identifier: cpsd verifies issuer and serial number');
  const signerDer = read.certificates.find((der) => {
    const c = pkijs.Certificate.fromBER(new Uint8Array(der));
    return c.issuer.isEqual(sid.issuer) && c.serialNumber.isEqual(sid.serialNumber);
  });
  if (!signerDer) throw invalid('the signer\'s certificate is not in the signature');

  const contentType = attributeValues(signerInfo, OID.contentType);
  if (!contentType || !(contentType[0] instanceof asn1js.ObjectIdentifier) || contentType[0].valueBlock.toString() !== OID.data) {
    throw invalid('the content-type attribute is missing or not id-data');
  }
  const messageDigest = attributeValues(signerInfo, OID.messageDigest)?.[0];
  if (!(messageDigest instanceof asn1js.OctetString)) throw invalid('the message-digest attribute is missing');
  const actual = await digestOf(digest);
  if (Buffer.compare(Buffer.from(messageDigest.valueBlock.valueHexView), Buffer.from(actual)) !== 0) {
    throw invalid('the document does not match the signature (message digest differs): it was changed after signing');
  }

  const essCert = attributeValues(signerInfo, OID.signingCertificateV2)?.[0];
  if (!essCert) throw invalid('no signing-certificate-v2 attribute: not a CAdES baseline B signature');
  try {
    const first = ((essCert as asn1js.Sequence).valueBlock.value[0] as asn1js.Sequence).valueBlock.value[0] as asn1js.Sequence;
    const parts = first.valueBlock.value;
    let hash: DigestName = 'sha256';
    let index = 0;
    if (parts[0] instanceof asn1js.Sequence) {
      const named = DIGESTS[new pkijs.AlgorithmIdentifier({ schema: parts[0] }).algorithmId];
      if (!named) throw invalid('signing-certificate-v2 uses a hash cpsd does not accept');
      hash = named;
      index = 1;
    }
    const certHash = parts[index];
    if (!(certHash instanceof asn1js.OctetString)) throw new Error('no certHash');
    const expected = createHash(hash).update(signerDer).digest();
    if (Buffer.compare(Buffer.from(certHash.valueBlock.valueHexView), expected) !== 0) throw invalid('signing-certificate-v2 names another certificate than the signer\'s');
  } catch (error) {
    if (error instanceof DocumentSignatureError) throw error;
    throw invalid('the signing-certificate-v2 attribute does not parse');
  }

  const signingTimeValue = attributeValues(signerInfo, OID.signingTime)?.[0];
  if (options.pades && signingTimeValue) throw invalid('a PAdES signature has no signing-time attribute (the time is in the signature dictionary)');
  let signingTime: Date | undefined;
  if (signingTimeValue instanceof asn1js.UTCTime || signingTimeValue instanceof asn1js.GeneralizedTime) signingTime = signingTimeValue.toDate();

  const algorithmId = signerInfo.signatureAlgorithm.algorithmId;
  if (!(algorithmId in RSA_SIGNATURES)) throw invalid(`signature algorithm ${algorithmId} is not accepted (RSA PKCS#1 v1.5)`);
  const signatureDigest = RSA_SIGNATURES[algorithmId] ?? digest;
  if (!signatureMatches(attributesDer, signerInfo.signature.valueBlock.valueHexView, signerDer, signatureDigest)) {
    throw invalid('the signature of the signed attributes does not verify with the signer\'s certificate');
  }
  return { certificate: signerDer, certificates: read.certificates.filter((c) => c !== signerDer), signingTime };
}
