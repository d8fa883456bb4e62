/**
 * Verifies PAdES and CAdES signatures on the trust layer: the CMS checks (cms.ts), then the signer's
 * certificate through `validateCertificate` (path to the trust anchors, IGC-Santé policy, revocation of
 * every certificate of the path), which must be a signing certificate (keyUsage nonRepudiation): a
 * signature made with the authentication key is refused (CERT_WRONG_PURPOSE).
 */
import { createHash } from 'node:crypto';
import { EncryptedPDFError, PDFArray, PDFDict, PDFDocument, PDFHexString, PDFName, PDFNumber, PDFSignature, PDFString } from 'pdf-lib';
import { TrustError, type ValidatedHolder, type ValidationOptions } from '../pkcs/trust-types.js';
import { validateCertificate } from '../pkcs/validate.js';
import { keyUsage, parseCertificate } from '../pkcs/x509.js';
import { checkSignedData, readSignedData, type CheckedSignature, type DigestName } from './cms.js';
import { contentDigest, type CadesContent } from './cades.js';
import { DocumentSignatureError } from './errors.js';

/** The trust layer's options (anchors, intermediates, CRLs, revocation, time…); `purpose` is the signature's. */
export type SignatureVerifyOptions = Omit<ValidationOptions, 'purpose'>;

export interface VerifiedSignature {
  holder: ValidatedHolder;
  /** The signer's certificate (base64 DER). */
  certificate: string;
  /** The time the signer claims: /M of a PDF signature, the signing-time attribute of a CAdES one. */
  claimedSigningTime: Date | undefined;
}

export interface VerifiedPdfSignature extends VerifiedSignature {
  /** The signature field's name (e.g. "Signature1"). */
  field: string;
  /** /Name of the signature dictionary, if any. */
  name: string | undefined;
  /** Whether the signature covers the whole file (false for an earlier signature followed by updates). */
  coversWholeDocument: boolean;
}

async function trusted(checked: CheckedSignature, options: SignatureVerifyOptions): Promise<VerifiedSignature> {
  const result = await validateCertificate(checked.certificate, {
    ...options,
    purpose: 'any',
    intermediates: [...(options.intermediates ?? []), ...checked.certificates],
  });
  const leaf = parseCertificate(checked.certificate);
  if (!keyUsage(leaf.cert)?.has('nonRepudiation')) {
    throw new TrustError('CERT_WRONG_PURPOSE', 'keyUsage', 'not a signing certificate (keyUsage without nonRepudiation): was the document signed with the authentication key?', leaf.name);
  }
  return { holder: result.holder, certificate: Buffer.from(checked.certificate).toString('base64'), claimedSigningTime: checked.signingTime };
}

/** Verifies a detached CAdES signature (`.p7s`, DER or PEM/base64 text) of a content. */
export async function verifyCades(p7s: Uint8Array | string, content: CadesContent, options: SignatureVerifyOptions): Promise<VerifiedSignature> {
  const der = typeof p7s === 'string' ? new Uint8Array(Buffer.from(p7s.replace(/-----[^-]+-----|\s+/g, ''), 'base64')) : p7s;
  const read = readSignedData(der);
  let digests: Map<DigestName, Uint8Array> | undefined;
  const checked = await checkSignedData(read, async (algorithm) => {
    if (algorithm === 'sha256') return contentDigest(content);
    if (!(content instanceof Uint8Array)) throw new DocumentSignatureError('SIGNATURE_INVALID', `the signature uses ${algorithm}: give the content's bytes`);
    digests ??= new Map();
    return digests.get(algorithm) ?? new Uint8Array(createHash(algorithm).update(content).digest());
  });
  return trusted(checked, options);
}

interface PdfSignatureField {
  field: string;
  dict: PDFDict;
}

async function signatureFields(pdf: Uint8Array): Promise<PdfSignatureField[]> {
  let doc: PDFDocument;
  try {
    doc = await PDFDocument.load(pdf, { updateMetadata: false });
  } catch (error) {
    if (error instanceof EncryptedPDFError) throw new DocumentSignatureError('PDF_ENCRYPTED', 'the PDF is encrypted', { cause: error });
    throw new DocumentSignatureError('PDF_INVALID', `the PDF does not parse: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const out: PdfSignatureField[] = [];
  for (const field of doc.getForm().getFields()) {
    if (!(field instanceof PDFSignature)) continue;
    const value = field.acroField.dict.lookup(PDFName.of('V'));
    if (value instanceof PDFDict) out.push({ field: field.getName(), dict: value });
  }
  return out;
}

function text(dict: PDFDict, key: string): string | undefined {
  const value = dict.lookup(PDFName.of(key));
  return value instanceof PDFString || value instanceof PDFHexString ? value.decodeText() : undefined;
}

async function verifyPdfSignature(pdf: Buffer, { field, dict }: PdfSignatureField, options: SignatureVerifyOptions): Promise<VerifiedPdfSignature> {
  const subFilter = dict.lookup(PDFName.of('SubFilter'));
  if (!(subFilter instanceof PDFName) || subFilter.decodeText() !== 'ETSI.CAdES.detached') {
    throw new DocumentSignatureError('SIGNATURE_INVALID', `${field}: SubFilter ${subFilter instanceof PDFName ? subFilter.decodeText() : '?'} is not a PAdES signature (ETSI.CAdES.detached)`);
  }
  const range = dict.lookup(PDFName.of('ByteRange'));
  const numbers = range instanceof PDFArray ? range.asArray().map((n) => (n instanceof PDFNumber ? n.asNumber() : Number.NaN)) : [];
  const [start, first, second, last] = numbers;
  if (numbers.length !== 4 || start !== 0 || !numbers.every((n) => Number.isSafeInteger(n) && n >= 0)) throw new DocumentSignatureError('SIGNATURE_INVALID', `${field}: the ByteRange is not [0 a b c]`);
  const a = first as number;
  const b = second as number;
  const c = last as number;
  // The gap must be exactly the /Contents hex string, and the ranges inside the file.
  if (!(a < b) || b + c > pdf.length || pdf[a] !== 0x3c || pdf[b - 1] !== 0x3e) throw new DocumentSignatureError('SIGNATURE_INVALID', `${field}: the ByteRange does not frame the signature's /Contents`);
  const hex = pdf.subarray(a + 1, b - 1).toString('latin1').replace(/\s+/g, '');
  if (!/^[0-9A-Fa-f]*$/.test(hex) || hex.length % 2 !== 0) throw new DocumentSignatureError('SIGNATURE_INVALID', `${field}: /Contents is not a hex string`);
  const read = readSignedData(new Uint8Array(Buffer.from(hex, 'hex')));
  const checked = await checkSignedData(read, (algorithm) => new Uint8Array(createHash(algorithm).update(pdf.subarray(0, a)).update(pdf.subarray(b, b + c)).digest()), { pades: true });
  const verified = await trusted(checked, options);
  const m = dict.lookup(PDFName.of('M'));
  const claimed = m instanceof PDFString || m instanceof PDFHexString ? safeDate(m) : undefined;
  return { ...verified, claimedSigningTime: claimed, field, name: text(dict, 'Name') || undefined, coversWholeDocument: b + c === pdf.length };
}

function safeDate(value: PDFString | PDFHexString): Date | undefined {
  try {
    return value.decodeDate();
  } catch {
    return undefined;
  }
}

/**
 * Verifies every signature of a PDF (each on its own revision, as incremental updates keep them) and
 * returns them in file order; the first that fails throws its code. A PDF without one: DOCUMENT_NOT_SIGNED.
 */
export async function verifyPdf(pdf: Uint8Array, options: SignatureVerifyOptions): Promise<VerifiedPdfSignature[]> {
  const bytes = Buffer.isBuffer(pdf) ? pdf : Buffer.from(pdf.buffer, pdf.byteOffset, pdf.byteLength);
  const fields = await signatureFields(bytes);
  if (fields.length === 0) throw new DocumentSignatureError('DOCUMENT_NOT_SIGNED', 'the PDF has no signature');
  const out: VerifiedPdfSignature[] = [];
  for (const field of fields) out.push(await verifyPdfSignature(bytes, field, options));
  return out;
}
