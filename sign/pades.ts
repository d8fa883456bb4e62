/**
 * PAdES baseline B-B (ETSI EN 319 142-1) in two steps, so that the PDF never leaves the editor's server:
 *
 *   const { hash, state } = await preparePdf(pdf, { signerCertificate, chain, name });   // server
 *   const { signature } = await cpsd.signDocument / sign.hash(hash)                      // workstation, card
 *   const signed = finishPdf(state, signature, pdf);                                     // server, later
 *
 * The signature field, its dictionary (SubFilter ETSI.CAdES.detached, the time in /M) and the /Contents
 * placeholder are added as an incremental update appended to the PDF, every byte of it kept, so the
 * signatures already there stay valid: cpsd's own (increment.ts: cross-reference table or stream), or for
 * an unsigned PDF it cannot read, @signpdf/placeholder-plain's after a rewrite by pdf-lib. The state keeps only that update (a few kB plus the
 * placeholder) and the SHA-256 of the original: it is plain JSON, and finishing needs the original again.
 */
import { createHash } from 'node:crypto';
import placeholderPlain from '@signpdf/placeholder-plain';
import { SUBFILTER_ETSI_CADES_DETACHED, findByteRange, removeTrailingNewLine } from '@signpdf/utils';
import { EncryptedPDFError, PDFDocument } from 'pdf-lib';
import { signatureMatches, signedAttributes, signedData } from './cms.js';
import { incrementalUpdate } from './increment.js';
import { DocumentSignatureError } from './errors.js';
import { b64, certificatesOf, derOf, fromB64, signatureBytes, stateObject, toSign, type SignerOptions, type ToSign } from './state.js';

export const PADES_STATE_FORMAT = 'cpsd-pades/1';

export interface PdfSignOptions extends SignerOptions {
  /** The signer's name in the signature dictionary (/Name); default: none given (empty). */
  name?: string;
  reason?: string;
  location?: string;
  contactInfo?: string;
  /** The signing time written in /M (default now): PAdES has no signing-time attribute. */
  signingTime?: Date;
  /** The application named in /Prop_Build (default "cpsd"). */
  appName?: string;
}

/** The state between prepare and finish: plain JSON (strings and numbers), a few kB. */
export interface PdfSigningState {
  format: typeof PADES_STATE_FORMAT;
  /** Bytes of the original PDF the signed one starts with (without its final end-of-line). */
  documentLength: number;
  /** SHA-256 (base64) of those bytes: finishing checks it is given the same document. */
  documentSha256: string;
  /** The incremental update (base64), ByteRange filled, /Contents a placeholder of zeros. */
  update: string;
  /** Where the /Contents hex string starts ('<') and ends (after '>') in the update. */
  contents: [number, number];
  /** The DER signed attributes (base64): their SHA-256 is what the card signs. */
  signedAttributes: string;
  /** Signer's certificate first, then the chain (base64 DER). */
  certificates: string[];
  /**
   * Only when the PDF had to be rewritten first (its cross-references are streams, which the incremental
   * placeholder cannot extend; never for a PDF already signed): the rewritten PDF, base64.
   */
  document?: string;
}

export interface PreparedPdf extends ToSign {
  state: PdfSigningState;
}

const asBuffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

const HEADER = Buffer.from('%PDF-');

/** A quick look before the placeholder library (whose errors are not typed): header, end, encryption. */
function checkPdf(pdf: Buffer): void {
  const header = pdf.subarray(0, 1024).indexOf(HEADER);
  if (header === -1) throw new DocumentSignatureError('PDF_INVALID', 'not a PDF (no %PDF- header)');
  const tail = pdf.subarray(Math.max(0, pdf.length - 1024));
  if (tail.lastIndexOf('%%EOF') === -1) throw new DocumentSignatureError('PDF_INVALID', 'the PDF is damaged or truncated (no %%EOF at its end)');
  const startxref = /startxref\s+(\d+)/.exec(tail.toString('latin1'));
  if (!startxref) throw new DocumentSignatureError('PDF_INVALID', 'the PDF is damaged or truncated (no startxref)');
  const xref = Number(startxref[1]);
  if (xref >= pdf.length) throw new DocumentSignatureError('PDF_INVALID', 'the PDF is damaged or truncated (startxref beyond its end)');
  // The last trailer: after "trailer" (classic table) or in the xref stream's dictionary at startxref.
  const trailerAt = pdf.lastIndexOf('trailer');
  const trailer = Buffer.concat([trailerAt === -1 ? Buffer.alloc(0) : pdf.subarray(trailerAt), pdf.subarray(xref, Math.min(pdf.length, xref + 4096))]);
  if (trailer.indexOf('/Encrypt') !== -1) throw new DocumentSignatureError('PDF_ENCRYPTED', 'the PDF is encrypted: decrypt it before signing');
}

const isSigned = (pdf: Buffer): boolean => pdf.indexOf('/ByteRange') !== -1;

/** pdf-lib rewrites a PDF whose cross-references the plain placeholder cannot read (streams, damage it can repair). */
async function rewritten(pdf: Buffer): Promise<Buffer> {
  try {
    const doc = await PDFDocument.load(pdf, { updateMetadata: false });
    return Buffer.from(await doc.save({ useObjectStreams: false }));
  } catch (error) {
    if (error instanceof EncryptedPDFError) throw new DocumentSignatureError('PDF_ENCRYPTED', 'the PDF is encrypted: decrypt it before signing', { cause: error });
    throw new DocumentSignatureError('PDF_INVALID', `the PDF does not parse: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** DER size of the finished CMS, with a signature as long as the key's modulus: the placeholder's size. */
function cmsSize(certificates: readonly Uint8Array[]): number {
  const attributes = signedAttributes({ digest: new Uint8Array(32), certificate: certificates[0] as Uint8Array });
  const modulus = 1024; // bytes: RSA up to 8192 bits; the hex of unused bytes stays zeros
  return signedData(attributes, new Uint8Array(modulus), certificates).length;
}

function addPlaceholder(pdf: Buffer, options: PdfSignOptions, signatureLength: number): Buffer {
  return placeholderPlain.plainAddPlaceholder({
    pdfBuffer: pdf,
    reason: options.reason ?? '',
    contactInfo: options.contactInfo ?? '',
    name: options.name ?? '',
    location: options.location ?? '',
    signingTime: options.signingTime ?? new Date(),
    signatureLength,
    subFilter: SUBFILTER_ETSI_CADES_DETACHED,
    appName: options.appName ?? 'cpsd',
  });
}

/**
 * The incremental update the placeholder library appends (signature dictionary, field, widget, page,
 * AcroForm, xref): the prepared PDF is the original's first `base` bytes followed by `update`. Only the
 * update is copied out of the library's result, which is dropped on return.
 */
async function placeholderUpdate(pdf: Buffer, options: PdfSignOptions, signatureLength: number): Promise<{ original: Buffer; base: number; update: Buffer; document: Buffer | undefined }> {
  checkPdf(pdf);
  // cpsd's own incremental update (increment.ts), cross-reference table or stream: every byte of the PDF is
  // kept, its final end-of-line included, which an earlier signature may cover (poppler ends with CR LF).
  try {
    const update = await incrementalUpdate(pdf, pdf.length, { ...options, signingTime: options.signingTime ?? new Date(), appName: options.appName ?? 'cpsd', signatureLength });
    return { original: pdf, base: pdf.length, update, document: undefined };
  } catch (error) {
    // An earlier signature must not be rewritten away: only an unsigned PDF goes on to the placeholder library.
    if (isSigned(pdf)) {
      throw new DocumentSignatureError('PDF_INVALID', `cannot add a signature to this signed PDF by an incremental update: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
  let original = pdf;
  let document: Buffer | undefined;
  let prepared: Buffer;
  try {
    prepared = addPlaceholder(original, options, signatureLength);
  } catch (error) {
    // An earlier signature must not be rewritten away: only an unsigned PDF may be normalised by pdf-lib.
    if (isSigned(original)) {
      throw new DocumentSignatureError('PDF_INVALID', `cannot add a signature to this signed PDF by an incremental update: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    document = await rewritten(original);
    original = document;
    try {
      prepared = addPlaceholder(original, options, signatureLength);
    } catch (again) {
      throw new DocumentSignatureError('PDF_INVALID', `the PDF does not parse: ${again instanceof Error ? again.message : String(again)}`, { cause: again });
    }
  }
  const base = removeTrailingNewLine(original).length; // the library drops the final end-of-line
  if (prepared.length <= base || Buffer.compare(prepared.subarray(0, base), original.subarray(0, base)) !== 0) {
    throw new DocumentSignatureError('PDF_INVALID', 'the signature placeholder was not added as an incremental update');
  }
  return { original, base, update: Buffer.from(prepared.subarray(base)), document };
}

/**
 * Adds a signature field and placeholder to the PDF (an incremental update) and returns the hash the
 * card must sign (`sign.hash`, SHA-256) with the state `finishPdf` needs. The PDF is hashed once; only
 * the update is kept.
 */
export async function preparePdf(pdf: Uint8Array, options: PdfSignOptions): Promise<PreparedPdf> {
  const certificates = [derOf(options.signerCertificate, 'the signer certificate'), ...(options.chain ?? []).map((c, i) => derOf(c, `chain certificate ${i}`))];
  const signatureLength = cmsSize(certificates);
  const { original, base, update, document } = await placeholderUpdate(asBuffer(pdf), options, signatureLength);

  const { byteRangePlaceholder, byteRangePlaceholderPosition } = findByteRange(update);
  if (byteRangePlaceholder === undefined || byteRangePlaceholderPosition === undefined) throw new DocumentSignatureError('PDF_INVALID', 'no ByteRange placeholder in the update');
  const open = update.indexOf('/Contents <') + '/Contents '.length; // the signature dictionary's: the first object of the update
  const close = update.indexOf('>', open) + 1;
  if (open < '/Contents '.length || close !== open + 2 * signatureLength + 2) throw new DocumentSignatureError('PDF_INVALID', 'no /Contents placeholder in the update');
  const byteRange = [0, base + open, base + close, update.length - close];
  const filled = `/ByteRange [${byteRange.join(' ')}]`;
  if (filled.length > byteRangePlaceholder.length) throw new DocumentSignatureError('PDF_INVALID', 'the PDF is too large for the ByteRange placeholder');
  update.write(filled.padEnd(byteRangePlaceholder.length, ' '), byteRangePlaceholderPosition, 'latin1');

  const hash = createHash('sha256').update(original.subarray(0, base));
  const documentSha256 = hash.copy().digest();
  const digest = hash.update(update.subarray(0, open)).update(update.subarray(close)).digest();
  const attributes = signedAttributes({ digest, certificate: certificates[0] as Uint8Array });
  const state: PdfSigningState = {
    format: PADES_STATE_FORMAT,
    documentLength: base,
    documentSha256: documentSha256.toString('base64'),
    update: update.toString('base64'),
    contents: [open, close],
    signedAttributes: b64(attributes),
    certificates: certificates.map(b64),
    ...(document ? { document: document.toString('base64') } : {}),
  };
  return { ...toSign(attributes), state };
}

export interface PdfIncrement {
  /** Keep this many bytes of the original PDF (drop its final end-of-line, if any)… */
  keep: number;
  /** …and append these: the update with the signature in its /Contents. */
  append: Uint8Array;
  /** Set only when the PDF was rewritten at prepare: the whole signed PDF is `document` + `append`. */
  document?: Uint8Array;
}

function readState(state: unknown): { s: PdfSigningState; update: Buffer; attributes: Uint8Array; certificates: Uint8Array[] } {
  const s = stateObject(state, PADES_STATE_FORMAT);
  const update = Buffer.from(fromB64(s.update, 'update'));
  const contents = s.contents;
  const [open, close] = Array.isArray(contents) && contents.length === 2 ? (contents as unknown[]) : [];
  if (!Number.isSafeInteger(open) || !Number.isSafeInteger(close) || !((open as number) < (close as number) && (close as number) <= update.length)) {
    throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'the state\'s contents offsets are wrong');
  }
  if (!Number.isSafeInteger(s.documentLength) || typeof s.documentSha256 !== 'string') throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'the state does not name the document');
  return { s: s as unknown as PdfSigningState, update, attributes: fromB64(s.signedAttributes, 'signed attributes'), certificates: certificatesOf(s) };
}

/**
 * The signature embedded, as the bytes to append to the original (for a server that appends to its
 * stored file instead of holding the PDF twice). Checks that the card's signature matches the signer's
 * certificate. `pdf` (the original) is checked against the state when given.
 */
export function finishPdfIncrement(state: PdfSigningState | string, signature: Uint8Array | string, pdf?: Uint8Array): PdfIncrement {
  const { s, update, attributes, certificates } = readState(state);
  const sig = signatureBytes(signature);
  if (!signatureMatches(attributes, sig, certificates[0] as Uint8Array)) {
    throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'the signature does not match the signer certificate of the state (another key or another card?)');
  }
  const document = s.document === undefined ? undefined : fromB64(s.document, 'document');
  const original = document ?? pdf;
  if (original) {
    const sha = createHash('sha256').update(original.subarray(0, s.documentLength)).digest('base64');
    if (original.length < s.documentLength || sha !== s.documentSha256) throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'this is not the PDF that was prepared');
  }
  const cms = signedData(attributes, sig, certificates);
  const [open, close] = s.contents;
  const room = (close - open - 2) / 2;
  if (cms.length > room) throw new DocumentSignatureError('SIGNING_STATE_INVALID', `the signature (${cms.length} bytes) does not fit its placeholder (${room})`);
  update.write(Buffer.from(cms).toString('hex'), open + 1, 'latin1');
  return { keep: s.documentLength, append: update, ...(document ? { document: document.subarray(0, s.documentLength) } : {}) };
}

/** The signed PDF: the original (as given to preparePdf) with the signature's incremental update. */
export function finishPdf(state: PdfSigningState | string, signature: Uint8Array | string, pdf?: Uint8Array): Uint8Array {
  const increment = finishPdfIncrement(state, signature, pdf);
  const original = increment.document ?? pdf;
  if (!original) throw new DocumentSignatureError('SIGNING_STATE_INVALID', 'finishPdf needs the PDF that was prepared');
  return Buffer.concat([original.subarray(0, increment.keep), increment.append]);
}
