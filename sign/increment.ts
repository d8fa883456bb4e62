/**
 * The signature's incremental update, written by cpsd (ISO 32000-1 §7.5.6) for any PDF it can read with
 * pdf-lib: a cross-reference table or a cross-reference stream (PDF 1.5 object streams: what qpdf, pdf-lib,
 * poppler's own signing and most producers write today, which @signpdf/placeholder-plain cannot read).
 * The PDF is read but never re-saved: its bytes stay as they are, its final end-of-line included (an
 * earlier signature may cover it: poppler ends with CR LF), so the signatures already in it stay valid.
 * Appended:
 *
 *   - the signature dictionary (first): /Type /Sig, /SubFilter /ETSI.CAdES.detached, a /ByteRange
 *     placeholder and /Contents of zeros, /M, /Name, /Reason, /Location as UTF-16 text strings;
 *   - the signature field merged with its widget annotation (invisible: /Rect [0 0 0 0]) on page 1;
 *   - the objects that change, again under their own numbers: the page (its /Annots) or its /Annots
 *     array, the interactive form (/Fields, /SigFlags 3) or its /Fields array, or the catalogue when the
 *     form is new or held in the catalogue itself;
 *   - a cross-reference section of the same kind as the last one (a table and its trailer, or an
 *     uncompressed stream, /W [1 4 2]) for these objects, /Prev the previous section.
 */
import { PDFArray, PDFDict, PDFDocument, PDFHexString, PDFName, PDFNumber, PDFRef, PDFString, type PDFObject } from 'pdf-lib';
import { DocumentSignatureError } from './errors.js';

export interface IncrementOptions {
  name?: string | undefined;
  reason?: string | undefined;
  location?: string | undefined;
  contactInfo?: string | undefined;
  signingTime: Date;
  appName: string;
  /** Bytes of the CMS the /Contents placeholder must hold. */
  signatureLength: number;
}

/** Where the last cross-reference section starts (the last startxref), and whether it is a stream. */
export function lastXref(pdf: Buffer): { offset: number; stream: boolean } {
  const tail = pdf.subarray(Math.max(0, pdf.length - 1024)).toString('latin1');
  const found = [...tail.matchAll(/startxref\s+(\d+)/g)].pop();
  const offset = found ? Number(found[1]) : Number.NaN;
  if (!Number.isSafeInteger(offset) || offset >= pdf.length) throw new DocumentSignatureError('PDF_INVALID', 'the PDF is damaged or truncated (no startxref)');
  const at = pdf.subarray(offset, offset + 64).toString('latin1');
  return { offset, stream: /^\s*\d+\s+\d+\s+obj\b/.test(at) };
}

/** PDF date (ISO 32000-1 §7.9.4), UTC. */
function pdfDate(date: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `D:${p(date.getUTCFullYear(), 4)}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}Z`;
}

/** A text string: UTF-16BE with its byte order mark, in hex (any language, nothing to escape). */
const text = (value: string): string => PDFHexString.fromText(value).toString();

/** The /Size of the last cross-reference section (its stream's dictionary, or its trailer): new objects are numbered from there. */
function lastSize(pdf: Buffer, offset: number, stream: boolean): number {
  const start = stream ? offset : pdf.indexOf('trailer', offset);
  const end = stream ? pdf.indexOf('stream', offset) : -1;
  const dict = start === -1 ? '' : pdf.subarray(start, end === -1 ? Math.min(pdf.length, start + 4096) : end).toString('latin1');
  const size = /\/Size\s+(\d+)/.exec(dict);
  if (!size) throw new DocumentSignatureError('PDF_INVALID', 'the last cross-reference section has no /Size');
  return Number(size[1]);
}

/** The names of the form's top-level fields, and how many fields (at any depth) are signatures. */
function formFields(doc: PDFDocument): { names: Set<string>; signatures: number } {
  const names = new Set<string>();
  let signatures = 0;
  const form = doc.catalog.lookup(PDFName.of('AcroForm'));
  const top = form instanceof PDFDict ? form.lookup(PDFName.of('Fields')) : undefined;
  const seen = new Set<PDFDict>();
  const walk = (array: unknown, depth: number): void => {
    if (!(array instanceof PDFArray) || depth > 32) return;
    for (let i = 0; i < array.size(); i++) {
      const field = array.lookup(i);
      if (!(field instanceof PDFDict) || seen.has(field)) continue;
      seen.add(field);
      const name = field.lookup(PDFName.of('T'));
      if (depth === 0 && (name instanceof PDFString || name instanceof PDFHexString)) names.add(name.decodeText());
      if (field.lookup(PDFName.of('FT')) === PDFName.of('Sig')) signatures++;
      walk(field.lookup(PDFName.of('Kids')), depth + 1);
    }
  };
  walk(top, 0);
  return { names, signatures };
}

/** The update to append to the first `base` bytes of `pdf` (all of them: an end-of-line first if it has none). */
export async function incrementalUpdate(pdf: Buffer, base: number, options: IncrementOptions): Promise<Buffer> {
  const { offset: prev, stream } = lastXref(pdf);
  const doc = await PDFDocument.load(pdf, { updateMetadata: false, throwOnInvalidObject: false });
  const context = doc.context;
  const size = Math.max(lastSize(pdf, prev, stream), context.largestObjectNumber + 1);
  const page = doc.getPages()[0];
  if (!page) throw new DocumentSignatureError('PDF_INVALID', 'the PDF has no page');
  const root = context.trailerInfo.Root;
  if (!(root instanceof PDFRef)) throw new DocumentSignatureError('PDF_INVALID', 'the PDF has no catalogue');

  // Not doc.getForm(): it would register a new form object when there is none, under a number taken here.
  const { names, signatures } = formFields(doc);
  let n = signatures + 1;
  while (names.has(`Signature${n}`)) n++;

  const sigRef = PDFRef.of(size);
  const fieldRef = PDFRef.of(size + 1);
  const xrefRef = PDFRef.of(size + 2);
  /** Objects written again under their own number (the page, the form…): number → new body. */
  const changed = new Map<PDFRef, PDFObject>();

  // The page's annotations, with the new widget.
  const annots = page.node.get(PDFName.of('Annots'));
  if (annots instanceof PDFRef) {
    const array = context.lookup(annots);
    if (!(array instanceof PDFArray)) throw new DocumentSignatureError('PDF_INVALID', 'the page\'s /Annots is not an array');
    array.push(fieldRef);
    changed.set(annots, array);
  } else {
    const array = annots instanceof PDFArray ? annots : context.obj([]);
    array.push(fieldRef);
    page.node.set(PDFName.of('Annots'), array);
    changed.set(page.ref, page.node);
  }

  // The interactive form: the new field, and SigFlags 3 (signatures exist, append only).
  const catalog = context.lookup(root);
  if (!(catalog instanceof PDFDict)) throw new DocumentSignatureError('PDF_INVALID', 'the PDF\'s catalogue is not a dictionary');
  const formEntry = catalog.get(PDFName.of('AcroForm'));
  let form: PDFDict;
  if (formEntry instanceof PDFRef) {
    const found = context.lookup(formEntry);
    if (!(found instanceof PDFDict)) throw new DocumentSignatureError('PDF_INVALID', 'the PDF\'s /AcroForm is not a dictionary');
    form = found;
    changed.set(formEntry, form);
  } else {
    form = formEntry instanceof PDFDict ? formEntry : context.obj({});
    catalog.set(PDFName.of('AcroForm'), form);
    changed.set(root, catalog);
  }
  const fields = form.get(PDFName.of('Fields'));
  if (fields instanceof PDFRef) {
    const array = context.lookup(fields);
    if (!(array instanceof PDFArray)) throw new DocumentSignatureError('PDF_INVALID', 'the form\'s /Fields is not an array');
    array.push(fieldRef);
    changed.set(fields, array);
  } else {
    const array = fields instanceof PDFArray ? fields : context.obj([]);
    array.push(fieldRef);
    form.set(PDFName.of('Fields'), array);
  }
  form.set(PDFName.of('SigFlags'), PDFNumber.of(3));

  const placeholder = '/**********';
  const signature = [
    '<<',
    '/Type /Sig',
    '/Filter /Adobe.PPKLite',
    '/SubFilter /ETSI.CAdES.detached',
    `/ByteRange [0 ${placeholder} ${placeholder} ${placeholder}]`,
    `/Contents <${'0'.repeat(options.signatureLength * 2)}>`,
    `/M (${pdfDate(options.signingTime)})`,
    ...(options.name ? [`/Name ${text(options.name)}`] : []),
    ...(options.reason ? [`/Reason ${text(options.reason)}`] : []),
    ...(options.location ? [`/Location ${text(options.location)}`] : []),
    ...(options.contactInfo ? [`/ContactInfo ${text(options.contactInfo)}`] : []),
    `/Prop_Build << /App << /Name /${options.appName.replace(/[^A-Za-z0-9._-]/g, '_')} >> >>`,
    '>>',
  ].join('\n');
  const field = `<<\n/Type /Annot\n/Subtype /Widget\n/FT /Sig\n/T ${text(`Signature${n}`)}\n/F 132\n/Rect [0 0 0 0]\n/V ${sigRef.toString()}\n/P ${page.ref.toString()}\n>>`;

  const eol = pdf[base - 1] === 0x0a || pdf[base - 1] === 0x0d ? '' : '\n';
  const parts: string[] = [eol];
  let length = eol.length;
  const offsets = new Map<number, { offset: number; generation: number }>();
  const write = (ref: PDFRef, body: string): void => {
    offsets.set(ref.objectNumber, { offset: base + length, generation: ref.generationNumber });
    const chunk = `${ref.objectNumber} ${ref.generationNumber} obj\n${body}\nendobj\n`;
    parts.push(chunk);
    length += Buffer.byteLength(chunk, 'latin1');
  };
  write(sigRef, signature);
  write(fieldRef, field);
  for (const [ref, body] of changed) write(ref, body.toString());

  const trailer = context.trailerInfo;
  const common = [`/Root ${root.toString()}`, ...(trailer.Info ? [`/Info ${trailer.Info.toString()}`] : []), ...(trailer.ID ? [`/ID ${trailer.ID.toString()}`] : []), `/Prev ${prev}`];
  if (!stream) {
    // A cross-reference table (ISO 32000-1 §7.5.4), one subsection per run of numbers, and its trailer.
    const numbers = [...offsets.keys()].sort((a, b) => a - b);
    const lines: string[] = ['xref'];
    for (let i = 0; i < numbers.length; ) {
      let j = i;
      while (j + 1 < numbers.length && numbers[j + 1] === (numbers[j] as number) + 1) j++;
      lines.push(`${numbers[i]} ${j - i + 1}`);
      for (let k = i; k <= j; k++) {
        const entry = offsets.get(numbers[k] as number) as { offset: number; generation: number };
        lines.push(`${String(entry.offset).padStart(10, '0')} ${String(entry.generation).padStart(5, '0')} n\r`);
      }
      i = j + 1;
    }
    const table = `${lines.join('\n')}\ntrailer\n<<\n/Size ${size + 2}\n${common.join('\n')}\n>>\nstartxref\n${base + length}\n%%EOF\n`;
    return Buffer.from(parts.join('') + table, 'latin1');
  }

  // The cross-reference stream: type 1 entries (offset, generation) for every object written, itself included.
  offsets.set(xrefRef.objectNumber, { offset: base + length, generation: 0 });
  const numbers = [...offsets.keys()].sort((a, b) => a - b);
  const index: number[] = [];
  for (const num of numbers) {
    const last = index.length - 2;
    if (last >= 0 && (index[last] as number) + (index[last + 1] as number) === num) index[last + 1] = (index[last + 1] as number) + 1;
    else index.push(num, 1);
  }
  const rows = Buffer.alloc(numbers.length * 7);
  numbers.forEach((num, i) => {
    const entry = offsets.get(num) as { offset: number; generation: number };
    rows.writeUInt8(1, i * 7);
    rows.writeUInt32BE(entry.offset, i * 7 + 1);
    rows.writeUInt16BE(entry.generation, i * 7 + 5);
  });
  const dict = ['<<', '/Type /XRef', `/Size ${size + 3}`, `/Index [${index.join(' ')}]`, '/W [1 4 2]', ...common, `/Length ${rows.length}`, '>>'].join('\n');
  const head = `${xrefRef.objectNumber} 0 obj\n${dict}\nstream\n`;
  const tail = `\nendstream\nendobj\nstartxref\n${base + length}\n%%EOF\n`;
  if (base + length > 0xffffffff) throw new DocumentSignatureError('PDF_INVALID', 'the PDF is too large (4 GB) for this cross-reference stream');
  return Buffer.concat([Buffer.from(parts.join(''), 'latin1'), Buffer.from(head, 'latin1'), rows, Buffer.from(tail, 'latin1')]);
}
