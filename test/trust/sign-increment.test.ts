/**
 * cpsd's own incremental update for PDFs whose cross-references are streams (sign/increment.ts), on the
 * shapes a producer may give the objects it has to change: a form already there (indirect, its /Fields
 * direct or indirect), a page whose /Annots is an indirect array, a form held in the catalogue itself;
 * each signed twice. Judged by pdfsig (-nocert: the signatures themselves), qpdf --check and cpsd's
 * verifier; the PDF's bytes must be kept.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PDFDocument, PDFName, PDFRef, StandardFonts, type PDFDict } from 'pdf-lib';
import { afterAll, describe, expect, it } from 'vitest';
import { finishPdf, preparePdf, verifyPdf } from '../../sign/index.js';
import { lastXref } from '../../sign/increment.js';
import { INTERMEDIATE, ROOT_CA, pdfsigSignatures, virtualSigner } from '../helpers/sign.js';

const dir = mkdtempSync(join(tmpdir(), 'cpsd-increment-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const trust = { trustAnchors: [ROOT_CA], intermediates: [INTERMEDIATE], revocation: 'off' as const };

async function signPdf(pdf: Uint8Array): Promise<Uint8Array> {
  const card = await virtualSigner('doctor');
  const { hash, state } = await preparePdf(pdf, { signerCertificate: card.signCertificate, chain: [INTERMEDIATE], name: 'Jeanne Médecin', reason: 'Ordonnance' });
  return finishPdf(state, await card.sign(hash), pdf);
}

type Shape = 'form with a text field' | 'indirect /Annots and /Fields' | 'form in the catalogue';

/** A PDF saved by pdf-lib with object streams (its cross-references a stream), in one of the shapes. */
async function shaped(shape: Shape): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  const page = doc.addPage([595, 842]);
  page.drawText(shape, { x: 50, y: 780, size: 14, font: await doc.embedFont(StandardFonts.Helvetica) });
  if (shape === 'form with a text field') doc.getForm().createTextField('patient').addToPage(page, { x: 50, y: 700 });
  if (shape === 'indirect /Annots and /Fields') {
    const form = doc.getForm();
    form.createTextField('patient').addToPage(page, { x: 50, y: 700 });
    const annots = page.node.get(PDFName.of('Annots'));
    if (!(annots instanceof PDFRef)) page.node.set(PDFName.of('Annots'), doc.context.register(page.node.lookup(PDFName.of('Annots')) as never));
    const acro = form.acroForm.dict;
    acro.set(PDFName.of('Fields'), doc.context.register(acro.lookup(PDFName.of('Fields')) as never));
  }
  if (shape === 'form in the catalogue') doc.catalog.set(PDFName.of('AcroForm'), doc.context.obj({ Fields: [] }));
  return doc.save({ useObjectStreams: true });
}

describe.each<Shape>(['form with a text field', 'indirect /Annots and /Fields', 'form in the catalogue'])('a PDF with cross-reference streams, %s, signed twice', (shape) => {
  let original: Uint8Array;
  let once: Uint8Array;
  let twice: Uint8Array;

  it('is signed by an incremental update ending with a cross-reference stream, its bytes kept', async () => {
    original = await shaped(shape);
    expect(lastXref(Buffer.from(original)).stream).toBe(true);
    // The shape is really there: which objects are indirect.
    const doc = await PDFDocument.load(original);
    const form = doc.catalog.get(PDFName.of('AcroForm'));
    expect(form instanceof PDFRef).toBe(shape !== 'form in the catalogue');
    expect(doc.getPage(0).node.get(PDFName.of('Annots')) instanceof PDFRef).toBe(shape === 'indirect /Annots and /Fields');
    expect((doc.context.lookup(form) as PDFDict).get(PDFName.of('Fields')) instanceof PDFRef).toBe(shape === 'indirect /Annots and /Fields');
    once = await signPdf(original);
    twice = await signPdf(once);
    expect(Buffer.from(once.subarray(0, original.length)).equals(Buffer.from(original))).toBe(true);
    expect(Buffer.from(twice.subarray(0, once.length)).equals(Buffer.from(once))).toBe(true);
    expect(lastXref(Buffer.from(twice)).stream).toBe(true);
  });

  it('pdfsig: both signatures valid, the first no longer covering the whole file', () => {
    const file = join(dir, `${shape.replace(/\W+/g, '-')}.pdf`);
    writeFileSync(file, twice);
    const r = spawnSync('pdfsig', ['-nocert', file], { encoding: 'utf8' });
    const [first, second] = pdfsigSignatures(`${r.stdout}${r.stderr}`);
    expect(first).toContain('Signature Validation: Signature is Valid.');
    expect(first).toContain('Not total document signed');
    expect(second).toContain('Signature Validation: Signature is Valid.');
    expect(second).toContain('Total document signed');
    expect(execFileSync('qpdf', ['--check', file], { encoding: 'utf8' })).toContain('No syntax or stream encoding errors found');
  });

  it('cpsd verifies both, with the fields they were given, and the form keeps its other fields', async () => {
    const signatures = await verifyPdf(twice, trust);
    expect(signatures.map((s) => [s.field, s.name, s.coversWholeDocument])).toEqual([
      ['Signature1', 'Jeanne Médecin', false],
      ['Signature2', 'Jeanne Médecin', true],
    ]);
    const names = (await PDFDocument.load(twice)).getForm().getFields().map((f) => f.getName());
    expect(names).toEqual(shape === 'form in the catalogue' ? ['Signature1', 'Signature2'] : ['patient', 'Signature1', 'Signature2']);
  });
});

it('a PDF linearized by qpdf with object streams (its last startxref points to the first-page section): signed twice, both valid', async () => {
  const plain = join(dir, 'plain.pdf');
  writeFileSync(plain, await shaped('form with a text field'));
  const linearized = join(dir, 'linearized.pdf');
  execFileSync('qpdf', ['--linearize', '--object-streams=generate', plain, linearized]);
  const original = new Uint8Array(readFileSync(linearized));
  expect(Buffer.from(original).toString('latin1')).toContain('/Linearized');
  const twice = await signPdf(await signPdf(original));
  expect(Buffer.from(twice.subarray(0, original.length)).equals(Buffer.from(original))).toBe(true);
  const file = join(dir, 'linearized-signed.pdf');
  writeFileSync(file, twice);
  const r = spawnSync('pdfsig', ['-nocert', file], { encoding: 'utf8' });
  expect(pdfsigSignatures(`${r.stdout}${r.stderr}`).map((s) => /Signature Validation: (.*)/.exec(s)?.[1])).toEqual(['Signature is Valid.', 'Signature is Valid.']);
  expect(execFileSync('qpdf', ['--check', file], { encoding: 'utf8' })).toContain('No syntax or stream encoding errors found');
  expect((await verifyPdf(twice, trust)).map((s) => s.field)).toEqual(['Signature1', 'Signature2']);
});
