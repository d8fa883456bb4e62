/** `cpsd sign` / `verify-signature` without a card: output names, format choice, trust folders. */
import { mkdirSync, mkdtempSync, copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openCard, type CardObjects } from '../../cards/index.js';
import { InProcessBackend } from '../../cards/backends.js';
import { Pin } from '../../cards/pin.js';
import { MemoryCardCache } from '../../cards/public-data.js';
import { CardSessions } from '../../cards/session.js';
import { fromHex, toHex } from '../../core/bytes.js';
import { defaultOutput, formatOf, signHashOnCard, signerOf, trustFrom, type Signer } from '../../cli/commands/sign.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import type { VirtualCpsCard } from '../../sim/cps/card.js';
import { exitCodeOf } from '../../cli/exit-codes.js';
import { script, type ScriptStep } from '../helpers/script.js';

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
    await expect(signHashOnCard(cardOf('pharmacist', apdus), signer, new Uint8Array(32), pin, false)).rejects.toMatchObject({ code: 'CARD_CHANGED' });
    expect(apdus.filter((c) => c[1] === 0x20)).toHaveLength(0);
  });

  it('the typed PIN is dropped when it goes to the VERIFY, and the card signs the hash', async () => {
    const cache = new MemoryCardCache();
    const signer = await signerOf(cardOf('nurse'), cache);
    const pin = { value: new Pin('1234') as Pin | undefined };
    const signature = await signHashOnCard(cardOf('nurse'), signer, new Uint8Array(32).fill(1), pin, false);
    expect(pin.value).toBeUndefined();
    expect(signature).toHaveLength(256);
  });

  it('a wrong PIN is dropped too, and the error says the tries left', async () => {
    const cache = new MemoryCardCache();
    const signer = await signerOf(cardOf('doctor'), cache);
    const pin = { value: new Pin('9999') as Pin | undefined };
    await expect(signHashOnCard(cardOf('doctor'), signer, new Uint8Array(32), pin, false)).rejects.toMatchObject({ code: 'PIN_INCORRECT', triesLeft: 2 });
    expect(pin.value).toBeUndefined();
  });
});

describe('cpsd sign: the signature job, APDU by APDU (card seen by the certificate job)', () => {
  /** The directories as the certificate job found them (contact application 3F00/0001, signing key 0x81, CHV 1 [V]). */
  const objects: CardObjects = {
    application: fromHex('3F00 0001'),
    auth: { certificate: undefined, keyReference: 0x82 },
    sign: { certificate: { label: 'CPS_SIGN_CERT', id: undefined, path: fromHex('3F00 0001 3002') }, keyReference: 0x81 },
    pin: { label: 'PIN', reference: 0x01, minLength: 4, maxLength: 4, storedLength: 4 },
    dataObjects: [],
  };
  const signer: Signer = { serial: '992138450F', certificate: fromHex('30 03 02 01 00'), objects };
  const hash = 'BA 78 16 BF 8F 01 CF EA 41 41 40 DE 5D AE 22 23 B0 03 61 A3 96 17 7A 9C B4 10 FF 61 F2 00 15 AD';
  const SIGNATURE = 'A5'.repeat(256);
  /** EF.SN.ICC of OpenSC issue #2275 (cps-cards.md §2.2). */
  const SN = '5A 0A 80 25 00 00 01 99 21 38 45 0F';

  it('CPS3: EF.SN.ICC only (no EF_ACTUA, no directory), the PIN, then SELECT + MSE + PSO: 6 APDUs', async () => {
    const card = script([
      { step: 'READ BINARY EF.SN.ICC by SFI 1C: the same chip serial', command: '00 B0 9C 00 0C', response: `${SN} 90 00` },
      { step: 'VERIFY CHV 1 without data: tries left', command: '00 20 00 01', response: '63 C3' },
      { step: 'VERIFY CHV 1 with "1234"', command: '00 20 00 01 04 31 32 33 34', response: '90 00' },
      { step: 'SELECT the application 3F00/0001', command: '00 A4 09 0C 04 3F 00 00 01', response: '90 00' },
      { step: 'MSE SET DST: SHA-256 PKCS#1, key 81', command: '00 22 41 B6 06 80 01 42 84 01 81', response: '90 00' },
      { step: 'PSO CDS of the hash, Le 00', command: `00 2A 9E 9A 20 ${hash} 00`, response: `${SIGNATURE} 90 00` },
    ]);
    const pin = { value: new Pin('1234') as Pin | undefined };
    const signature = await signHashOnCard(openCard(card, fromHex('3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00')), signer, fromHex(hash), pin, false);
    expect(toHex(signature)).toBe(SIGNATURE);
    expect(pin.value).toBeUndefined();
    card.done();
  });

  it('CPS4: ChipDoc opened inside the job, EF.SN.ICC, the PIN, then SELECT + MSE + PSO: 9 APDUs', async () => {
    const card = script([
      // Opened by this job itself, inside its exclusive hold: the VERIFY can only reach ChipDoc.
      { step: 'channel 1: SELECT the issuer security domain', command: '01 A4 04 0C 07 A0 00 00 01 51 00 00', response: '90 00' },
      { step: 'channel 0: SELECT the CPS2ter emulation', command: '00 A4 04 0C 08 80 25 00 00 01 FF 00 02', response: '90 00' },
      { step: 'channel 1: SELECT ChipDoc', command: '01 A4 04 0C 08 80 25 00 00 01 FF 01 00', response: '90 00' },
      { step: 'READ BINARY EF.SN.ICC by SFI 1C on channel 1', command: '01 B0 9C 00 0C', response: `${SN} 90 00` },
      { step: 'VERIFY 81 without data', command: '01 20 00 81', response: '63 C3' },
      { step: 'VERIFY 81 with "1234"', command: '01 20 00 81 04 31 32 33 34', response: '90 00' },
      { step: 'SELECT the application 3F00/0001', command: '01 A4 09 0C 04 3F 00 00 01', response: '90 00' },
      { step: 'MSE SET DST, tag 91: SHA-256 PKCS#1 (28), key 90', command: '01 22 81 B6 04 91 02 28 90', response: '90 00' },
      { step: 'PSO CDS of the hash, Le 00', command: `01 2A 9E 9A 20 ${hash} 00`, response: `${SIGNATURE} 90 00` },
    ]);
    const pin = { value: new Pin('1234') as Pin | undefined };
    const signature = await signHashOnCard(openCard(card, fromHex('3B 9B 18 80 01 00 12 25 00 64 80 04 01 00 00 90 44')), signer, fromHex(hash), pin, false);
    expect(toHex(signature)).toBe(SIGNATURE);
    card.done();
  });

  it('another chip serial: CARD_CHANGED after that one READ BINARY, no VERIFY, and the typed PIN dropped all the same', async () => {
    const steps: ScriptStep[] = [
      { step: 'READ BINARY EF.SN.ICC by SFI 1C: another serial', command: '00 B0 9C 00 0C', response: '5A 0A 80 25 00 00 01 99 21 38 45 10 90 00' },
    ];
    const card = script(steps);
    const pin = { value: new Pin('1234') as Pin | undefined };
    await expect(signHashOnCard(openCard(card, fromHex('3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00')), signer, fromHex(hash), pin, false)).rejects.toMatchObject({
      code: 'CARD_CHANGED',
    });
    expect(pin.value).toBeUndefined();
    card.done();
    expect(card.sent).toHaveLength(1);
  });
});

describe('cpsd sign: the two card jobs through the card session', () => {
  /** A virtual card whose APDUs are recorded (hex), reset as a reader resets it. */
  const recorded = (v: VirtualCpsCard): { atr: Uint8Array; sent: string[]; transmit(c: Uint8Array): Uint8Array | Promise<Uint8Array>; reset(): void } => {
    const sent: string[] = [];
    return { atr: v.atr, sent, transmit: (c) => (sent.push(toHex(c)), v.transmit(c)), reset: () => v.reset() };
  };

  /** The command's two jobs as cli/commands/sign.ts runs them, with `between` done while the PIN is typed. */
  async function twoJobs(first: ReturnType<typeof recorded>, between: (backend: InProcessBackend<ReturnType<typeof recorded>>) => void): Promise<Uint8Array> {
    const backend = new InProcessBackend(first);
    const sessions = new CardSessions(backend);
    try {
      const cache = new MemoryCardCache();
      const signer = await sessions.run((card) => signerOf(card, cache), { after: 'leave', retryOnReset: true });
      between(backend);
      const pin = { value: new Pin('1234') as Pin | undefined };
      return await sessions.run((card) => signHashOnCard(card, signer, new Uint8Array(32).fill(7), pin, false), { after: 'reset', exclusive: true, retryOnReset: false });
    } finally {
      await sessions.close();
    }
  }

  for (const [from, to] of [['doctor', 'pharmacist'], ['doctor', 'nurse'], ['nurse', 'doctor']] as const) {
    it(`${from}'s card swapped for ${to}'s while the PIN is typed: CARD_CHANGED, no VERIFY nor signature reaches either card`, async () => {
      const a = recorded(fixtureCard(from));
      const b = recorded(fixtureCard(to));
      await expect(
        twoJobs(a, (backend) => {
          backend.remove();
          backend.insert(b);
        }),
      ).rejects.toMatchObject({ code: 'CARD_CHANGED' });
      const keyCommands = (sent: string[]): string[] => sent.filter((c) => ['20', '22', '2A'].includes(c.slice(2, 4)));
      expect(keyCommands(b.sent)).toEqual([]);
      expect(keyCommands(a.sent)).toEqual([]);
      // The new card was asked its serial and nothing that needs its PIN or its keys.
      expect(b.sent.some((c) => c.slice(2, 8) === 'B09C00')).toBe(true);
    });
  }

  it('the same card left in the reader: the signature job sends 6 APDUs to a CPS3 and 9 to a CPS4, and both sign', async () => {
    for (const [profile, count] of [['doctor', 6], ['nurse', 9]] as const) {
      const a = recorded(fixtureCard(profile));
      let before = 0;
      const signature = await twoJobs(a, () => (before = a.sent.length));
      expect(signature).toHaveLength(256);
      expect(a.sent.length - before).toBe(count);
    }
  });
});
