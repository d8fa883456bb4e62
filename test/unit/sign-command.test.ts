/** `cpsd sign` / `verify-signature` without a card: output names, format choice, trust folders. */
import { mkdirSync, mkdtempSync, copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openCard } from '../../cards/index.js';
import { Pin } from '../../cards/pin.js';
import { MemoryCardCache } from '../../cards/public-data.js';
import { defaultOutput, formatOf, signHashOnCard, signerOf, trustFrom } from '../../cli/commands/sign.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { exitCodeOf } from '../../cli/exit-codes.js';

const PKI = fileURLToPath(new URL('../../fixtures/pki/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cpsd-sign-command-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cpsd sign: outputs and formats', () => {
  it('NAME.pdf → NAME-signed.pdf, in the same folder', () => {
    expect(defaultOutput('/data/ordonnance.pdf', 'pades')).toBe('/data/ordonnance-signed.pdf');
    expect(defaultOutput('Rapport.PDF', 'pades')).toBe('Rapport-signed.PDF');
    expect(defaultOutput('scan', 'pades')).toBe('scan-signed.pdf');
  });

  it('any file signed in CAdES → FILE.p7s beside it', () => {
    expect(defaultOutput('/data/cr.txt', 'cades')).toBe('/data/cr.txt.p7s');
    expect(defaultOutput('/data/ordonnance.pdf', 'cades')).toBe('/data/ordonnance.pdf.p7s');
  });

  it('PAdES for a PDF by its header or its .pdf name, CAdES otherwise, --format first', () => {
    const pdfNoExt = join(dir, 'document');
    writeFileSync(pdfNoExt, '%PDF-1.7\n%…');
    const text = join(dir, 'note.txt');
    writeFileSync(text, 'bonjour');
    const fakePdf = join(dir, 'faux.pdf');
    writeFileSync(fakePdf, 'bonjour');
    expect(formatOf(pdfNoExt, undefined)).toBe('pades');
    expect(formatOf(fakePdf, undefined)).toBe('pades'); // then refused as PDF_INVALID, never signed as CAdES
    expect(formatOf(text, undefined)).toBe('cades');
    expect(formatOf(pdfNoExt, 'cades')).toBe('cades');
  });

  it('a missing file is Node\'s ENOENT (the CLI names the file)', () => {
    expect(() => formatOf(join(dir, 'absent.pdf'), undefined)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('the new codes have their exit codes: no signing key 6, output exists 2, content missing 2, card changed 1', () => {
    expect([exitCodeOf('NO_SIGNING_KEY'), exitCodeOf('OUTPUT_EXISTS'), exitCodeOf('CONTENT_MISSING'), exitCodeOf('CARD_CHANGED')]).toEqual([6, 2, 2, 1]);
  });
});

describe('cpsd verify-signature --trust', () => {
  it('a flat folder: the self-signed CA is the anchor, other certificates intermediates, *.crl the CRLs (offline), keys and notes skipped', () => {
    const t = trustFrom([PKI]);
    expect(t.trustAnchors).toHaveLength(1);
    expect(t.intermediates?.length).toBe(2); // the intermediate and the OCSP responder's certificate
    expect(t.crls).toHaveLength(3);
    expect(t).toMatchObject({ revocation: 'crl', crl: { fetch: false } });
  });

  it('a folder laid out as anchors/, intermediates/, crls/ is read that way', () => {
    const laid = join(dir, 'trust');
    for (const sub of ['anchors', 'intermediates', 'crls']) mkdirSync(join(laid, sub), { recursive: true });
    copyFileSync(join(PKI, 'root.der'), join(laid, 'anchors', 'racine.cer'));
    copyFileSync(join(PKI, 'intermediate.der'), join(laid, 'intermediates', 'fort.cer'));
    copyFileSync(join(PKI, 'fort-personnes.crl'), join(laid, 'crls', 'fort'));
    const t = trustFrom([laid]);
    expect([t.trustAnchors.length, t.intermediates?.length, t.crls?.length]).toEqual([1, 1, 1]);
  });

  it('without CRLs, revocation is left to the default (OCSP, then the CRL distribution point)', () => {
    const t = trustFrom([join(PKI, 'root.der'), join(PKI, 'intermediate.der')]);
    expect(t.revocation).toBeUndefined();
    expect([t.trustAnchors.length, t.intermediates?.length]).toEqual([1, 1]);
  });

  it('a file in anchors/ that is no certificate is refused, not skipped', () => {
    const laid = join(dir, 'bad-trust');
    mkdirSync(join(laid, 'anchors'), { recursive: true });
    writeFileSync(join(laid, 'anchors', 'root.der'), 'not a certificate');
    expect(() => trustFrom([laid])).toThrow(expect.objectContaining({ code: 'CERT_MALFORMED' }));
  });
});

describe('cpsd sign: the card jobs', () => {
  const cardOf = (profile: string, apdus: Uint8Array[] = []): ReturnType<typeof openCard> => {
    const v = fixtureCard(profile);
    return openCard({ transmit: async (c) => (apdus.push(c), v.transmit(c)) }, v.atr);
  };

  it('another card in the reader at the PIN job: CARD_CHANGED, and no VERIFY is sent', async () => {
    const cache = new MemoryCardCache();
    const signer = await signerOf(cardOf('doctor'), cache);
    const apdus: Uint8Array[] = [];
    const pin = { value: new Pin('1234') as Pin | undefined };
    await expect(signHashOnCard(cardOf('pharmacist', apdus), cache, signer, new Uint8Array(32), pin, false)).rejects.toMatchObject({ code: 'CARD_CHANGED' });
    expect(apdus.filter((c) => c[1] === 0x20)).toHaveLength(0);
  });

  it('the typed PIN is dropped when it goes to the VERIFY, and the card signs the hash', async () => {
    const cache = new MemoryCardCache();
    const signer = await signerOf(cardOf('nurse'), cache);
    const pin = { value: new Pin('1234') as Pin | undefined };
    const signature = await signHashOnCard(cardOf('nurse'), cache, signer, new Uint8Array(32).fill(1), pin, false);
    expect(pin.value).toBeUndefined();
    expect(signature).toHaveLength(256);
  });

  it('a wrong PIN is dropped too, and the error says the tries left', async () => {
    const cache = new MemoryCardCache();
    const signer = await signerOf(cardOf('doctor'), cache);
    const pin = { value: new Pin('9999') as Pin | undefined };
    await expect(signHashOnCard(cardOf('doctor'), cache, signer, new Uint8Array(32), pin, false)).rejects.toMatchObject({ code: 'PIN_INCORRECT', triesLeft: 2 });
    expect(pin.value).toBeUndefined();
  });
});
