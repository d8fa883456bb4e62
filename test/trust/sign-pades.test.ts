/**
 * PAdES baseline B-B made with the in-process virtual card (CPS3 and CPS4 profiles), judged by poppler's
 * pdfsig (NSS: the test IGC-Santé root in its database, the OCSP responder at the certificates' AIA) and
 * openssl (the CMS's signed attributes), then by cpsd's own verifier on the trust layer.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PDFDocument, PDFString } from 'pdf-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../sim/cps/fixtures.js';
import { DocumentSignatureError, finishPdf, finishPdfIncrement, preparePdf, verifyPdf, type PdfSigningState } from '../../sign/index.js';
import { TrustError } from '../../pkcs/trust-types.js';
import { INTERMEDIATE, PKI, ROOT_CA, pdfsigSignatures, pdfsigWithOcsp, samplePdf, trustingDb, virtualSigner } from '../helpers/sign.js';

let dir: string;
let db: string;
const trust = { trustAnchors: [ROOT_CA], intermediates: [INTERMEDIATE], revocation: 'off' as const };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cpsd-pades-'));
  db = trustingDb(join(dir, 'nssdb'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** prepare (the editor's server) → the card signs the hash (the workstation) → finish (the server). */
async function signPdf(profile: string, pdf: Uint8Array, name = 'Ordonnance'): Promise<Uint8Array> {
  const card = await virtualSigner(profile);
  const { hash, state } = await preparePdf(pdf, { signerCertificate: card.signCertificate, chain: [INTERMEDIATE, ROOT_CA], name: `${loadProfile(profile).holder.lastName}`, reason: name, location: 'Paris' });
  // The state travels as JSON between the two requests of the editor's server.
  const stored = JSON.stringify(state);
  return finishPdf(JSON.parse(stored) as PdfSigningState, await card.sign(hash), pdf);
}

function write(name: string, bytes: Uint8Array): string {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

/** One byte of the signed range changed: in the PDF's binary comment (line 2), which no parser reads. */
function tampered(pdf: Uint8Array): Uint8Array {
  const copy = new Uint8Array(pdf);
  const at = copy.indexOf(0x0a) + 2;
  copy[at] = (copy[at] as number) ^ 0x01;
  return copy;
}

describe.each([
  ['doctor', 'CPS3'],
  ['nurse', 'CPS4'],
])('PAdES B-B signed by the %s card (%s)', (profile, generation) => {
  const holder = loadProfile(profile).holder;
  let signed: Uint8Array;
  let cosigned: Uint8Array;
  let reports: string[];

  beforeAll(async () => {
    expect(loadProfile(profile).generation).toBe(generation);
    signed = await signPdf(profile, await samplePdf({ pages: 2 }));
    cosigned = await signPdf('doctor', signed, 'Contre-signature');
    reports = pdfsigWithOcsp([write(`${profile}.pdf`, signed), write(`${profile}-tampered.pdf`, tampered(signed)), write(`${profile}-cosigned.pdf`, cosigned)], db, dir);
  });

  it('pdfsig: valid, ETSI.CAdES.detached, the holder as signer, certificate trusted, whole document', () => {
    const [one, ...more] = pdfsigSignatures(reports[0] as string);
    expect(more).toHaveLength(0);
    expect(one).toContain('Signature Validation: Signature is Valid.');
    expect(one).toContain('Signature Type: ETSI.CAdES.detached');
    expect(one).toContain(`SN=${holder.lastName}`);
    expect(one).toContain(`givenName=${holder.firstName}`);
    expect(one).toContain('Signing Hash Algorithm: SHA-256');
    expect(one).toContain('Certificate Validation: Certificate is Trusted.');
    expect(one).toContain('Total document signed');
  });

  it('pdfsig: one byte changed makes the signature invalid', () => {
    const [one] = pdfsigSignatures(reports[1] as string);
    expect(one).toContain('Signature Validation: Digest Mismatch.');
    expect(one).not.toContain('Signature is Valid.');
  });

  it('pdfsig: a second signature by incremental update leaves both valid', () => {
    const both = pdfsigSignatures(reports[2] as string);
    expect(both).toHaveLength(2);
    for (const s of both) {
      expect(s).toContain('Signature Validation: Signature is Valid.');
      expect(s).toContain('Certificate Validation: Certificate is Trusted.');
    }
    expect(both[0]).toContain('Not total document signed');
    expect(both[1]).toContain('Total document signed');
    // The first revision is kept byte for byte.
    expect(Buffer.compare(Buffer.from(cosigned.subarray(0, signed.length - 1)), Buffer.from(signed.subarray(0, signed.length - 1)))).toBe(0);
  });

  it('openssl: the CMS has content-type, message-digest and signing-certificate-v2, no signing-time', () => {
    const sub = mkdtempSync(join(dir, 'dump-'));
    execFileSync('pdfsig', ['-nocert', '-dump', write(`${profile}-dump.pdf`, signed)], { cwd: sub, stdio: 'pipe' });
    const [sig] = readdirSync(sub).filter((f) => f.endsWith('.sig0'));
    const printed = execFileSync('openssl', ['cms', '-cmsout', '-print', '-inform', 'DER', '-in', join(sub, sig as string)], { encoding: 'utf8' });
    expect(printed).toContain('object: contentType');
    expect(printed).toContain('object: messageDigest');
    expect(printed).toContain('object: id-smime-aa-signingCertificateV2');
    expect(printed).not.toContain('signingTime');
    expect(printed).toContain('eContent: <ABSENT>'); // detached
  });

  it('cpsd verifies both signatures on the trust layer and names the holder', async () => {
    const [first, second] = await verifyPdf(cosigned, trust);
    expect(first).toMatchObject({ field: 'Signature1', coversWholeDocument: false, holder: { surname: holder.lastName, givenName: holder.firstName } });
    expect(second).toMatchObject({ field: 'Signature2', coversWholeDocument: true, holder: { surname: 'MEDECIN-TEST' } });
    await expect(verifyPdf(tampered(signed), trust)).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
  });
});

describe('PAdES: the documents and states refused', () => {
  it('signs a PDF whose cross-references are streams by an incremental update (its bytes kept)', async () => {
    const pdf = await samplePdf({ xrefStreams: true });
    const signed = await signPdf('doctor', pdf);
    expect(Buffer.compare(Buffer.from(signed.subarray(0, pdf.length)), Buffer.from(pdf))).toBe(0);
    const [report] = pdfsigWithOcsp([write('xref-stream.pdf', signed)], db, dir);
    expect(report).toContain('Signature is Valid.');
    expect(report).toContain('Certificate is Trusted.');
  });

  it('a damaged PDF: PDF_INVALID', async () => {
    const card = await virtualSigner('doctor');
    const pdf = await samplePdf();
    for (const bad of [pdf.subarray(0, pdf.length - 200), new TextEncoder().encode('not a pdf at all'), pdf.subarray(0, 100)]) {
      const error = await preparePdf(bad, { signerCertificate: card.signCertificate }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DocumentSignatureError);
      expect(error).toMatchObject({ code: 'PDF_INVALID' });
    }
  });

  it('an encrypted PDF: PDF_ENCRYPTED', async () => {
    // A standard security handler dictionary in the trailer, written by pdf-lib.
    const doc = await PDFDocument.load(await samplePdf());
    const encrypt = doc.context.obj({ Filter: 'Standard', V: 1, R: 2, O: PDFString.of('x'.repeat(32)), U: PDFString.of('y'.repeat(32)), P: -44 });
    doc.context.trailerInfo.Encrypt = doc.context.register(encrypt);
    for (const xrefStreams of [false, true]) {
      const pdf = await doc.save({ useObjectStreams: xrefStreams });
      const card = await virtualSigner('doctor');
      await expect(preparePdf(pdf, { signerCertificate: card.signCertificate })).rejects.toMatchObject({ code: 'PDF_ENCRYPTED' });
    }
  });

  it('finishing with another card\'s signature, or for another PDF: SIGNING_STATE_INVALID', async () => {
    const card = await virtualSigner('doctor');
    const other = await virtualSigner('nurse');
    const pdf = await samplePdf();
    const { hash, state } = await preparePdf(pdf, { signerCertificate: card.signCertificate });
    await expect(Promise.resolve().then(async () => finishPdf(state, await other.sign(hash), pdf))).rejects.toMatchObject({ code: 'SIGNING_STATE_INVALID' });
    const signature = await card.sign(hash);
    expect(() => finishPdf(state, signature, tampered(pdf))).toThrow(expect.objectContaining({ code: 'SIGNING_STATE_INVALID' }));
    expect(() => finishPdf({ ...state, format: 'other' } as unknown as PdfSigningState, signature, pdf)).toThrow(expect.objectContaining({ code: 'SIGNING_STATE_INVALID' }));
    // The increment alone, appended to the original's first `keep` bytes, is the same signed PDF.
    const { keep, append } = finishPdfIncrement(state, signature);
    expect(Buffer.compare(Buffer.concat([pdf.subarray(0, keep), append]), Buffer.from(finishPdf(state, signature, pdf)))).toBe(0);
  });
});

describe('PAdES: the verifier refuses what is not a valid signature of a signing certificate', () => {
  it('a PDF without signature: DOCUMENT_NOT_SIGNED', async () => {
    await expect(verifyPdf(await samplePdf(), trust)).rejects.toMatchObject({ code: 'DOCUMENT_NOT_SIGNED' });
  });

  it('made with the authentication key: CERT_WRONG_PURPOSE', async () => {
    const card = await virtualSigner('doctor');
    const pdf = await samplePdf();
    const { hash, state } = await preparePdf(pdf, { signerCertificate: card.authCertificate, chain: [INTERMEDIATE] });
    const signed = finishPdf(state, await card.signWithAuthenticationKey(hash), pdf);
    const error = await verifyPdf(signed, trust).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrustError);
    expect(error).toMatchObject({ code: 'CERT_WRONG_PURPOSE', rule: 'keyUsage' });
  });

  it('an expired signing certificate: CERT_EXPIRED', async () => {
    const signed = await signPdf('expired', await samplePdf());
    await expect(verifyPdf(signed, trust)).rejects.toMatchObject({ code: 'CERT_EXPIRED' });
    const [report] = pdfsigWithOcsp([write('expired.pdf', signed)], db, dir);
    expect(report).toContain('Signature is Valid.');
    expect(report).toContain('Certificate has Expired');
  });

  it('a revoked signing certificate: CERT_REVOKED (by the CRL), and pdfsig sees it revoked (by OCSP)', async () => {
    const signed = await signPdf('revoked', await samplePdf());
    const crl = readFileSync(join(PKI, 'fort-personnes.crl'));
    await expect(verifyPdf(signed, { ...trust, revocation: 'crl', crls: [crl] })).rejects.toMatchObject({ code: 'CERT_REVOKED' });
    const [report] = pdfsigWithOcsp([write('revoked.pdf', signed)], db, dir);
    expect(report).toContain('Certificate has been Revoked.');
  });
});
