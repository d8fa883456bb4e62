/**
 * What a login reads from a card: the authentication certificate, the serial and the identity objects;
 * the signing certificate only when asked for (then cached). APDUs are counted at a transport wrapper
 * around the in-process virtual card; no timing is asserted.
 */
import { createHash, verify, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { concatBytes, toHex } from '../../core/bytes.js';
import { CpsCard, FileCardCache, MemoryCardCache, openCard, readPublicData, type CardCache } from '../../cards/index.js';
import { Pin } from '../../cards/pin.js';
import { holderIdentity } from '../../pkcs/holder.js';
import type { VirtualCpsCard } from '../../sim/cps/card.js';
import { fixtureCard, loadMaterial, loadProfile } from '../../sim/cps/fixtures.js';
import type { Df, Ef } from '../../sim/cps/fs.js';
import { FID } from '../../sim/cps/layout.js';

const CHALLENGE = Buffer.from('origin hash ‖ nonce hash');

/** The driver over `card`, every command it sends kept in order. */
function counted(card: VirtualCpsCard, answer?: (command: Uint8Array) => Uint8Array | undefined): { driver: CpsCard; sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  const driver = openCard(
    {
      transmit: async (c) => {
        sent.push(c);
        return answer?.(c) ?? card.transmit(c);
      },
    },
    card.atr,
  );
  return { driver, sent };
}

/** Paths of the SELECTs sent, in order (hex). */
const selected = (sent: Uint8Array[]): string[] => sent.filter((c) => c[1] === 0xa4).map((c) => toHex(c.subarray(5, 5 + (c[4] ?? 0))));

/** READ BINARY offsets sent after each SELECT, keyed by the selected path. */
function readsByFile(sent: Uint8Array[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  let current = '';
  for (const c of sent) {
    if (c[1] === 0xa4) current = toHex(c.subarray(5, 5 + (c[4] ?? 0)));
    else if (c[1] === 0xb0 && ((c[2] ?? 0) & 0x80) === 0) out.set(current, [...(out.get(current) ?? []), ((c[2] ?? 0) << 8) | (c[3] ?? 0)]);
  }
  return out;
}

/** The identity then the token, as a login does it; the signature is checked with the certificate. */
async function login(driver: CpsCard, cache: CardCache): Promise<Awaited<ReturnType<typeof readPublicData>>> {
  const data = await readPublicData(driver, cache, { signCertificate: false });
  const certificate = data.authCertificate ?? new Uint8Array(0);
  expect(holderIdentity({ certificate, serial: data.serial, data: data.data }).nationalId).toBe(loadProfile('doctor').holder.idNat);
  await driver.verifyPin(new Pin('1234'));
  const signature = await driver.authenticate(CpsCard.digestInfo('sha256', createHash('sha256').update(CHALLENGE).digest()));
  expect(verify('sha256', CHALLENGE, new X509Certificate(certificate).publicKey, signature)).toBe(true);
  return data;
}

async function certificatePaths(driver: CpsCard): Promise<{ auth: string; sign: string }> {
  const objects = await driver.objects(); // known by now: no APDU
  return { auth: toHex(objects.auth.certificate?.path ?? new Uint8Array(0)), sign: toHex(objects.sign.certificate?.path ?? new Uint8Array(0)) };
}

describe('first login on a never-seen card', () => {
  it('reads the authentication certificate and not the signing one, and no file twice', async () => {
    const { driver, sent } = counted(fixtureCard('doctor'));
    const data = await login(driver, new MemoryCardCache());
    expect(data.fromCache).toBe(false);
    expect(data.signCertificate).toBeUndefined();
    expect(toHex(data.authCertificate ?? new Uint8Array(0))).toBe(toHex(loadMaterial('doctor').authCert));
    expect(Object.keys(data.data).sort()).toEqual(['CPS_ID_CARD', 'CPS_INFO_PS']);
    const paths = await certificatePaths(driver);
    const selects = selected(sent);
    expect(selects).toContain(paths.auth);
    expect(selects).not.toContain(paths.sign);
    expect(new Set(selects).size).toBe(selects.length);
    for (const [file, offsets] of readsByFile(sent)) expect(new Set(offsets).size, file).toBe(offsets.length);
  });

  it('reads a data object longer than one READ BINARY once, from where the first READ stopped', async () => {
    const card = fixtureCard('doctor');
    const app = card.image.mf.child(0x0001) as Df;
    const idCard = app.child(FID.idCard) as Ef;
    // E0 { 81 "CPS", 8F <400 bytes> }: longer than a 256-byte READ BINARY.
    const filler = new Uint8Array(400).fill(0x41);
    idCard.data = concatBytes([Uint8Array.of(0xe0, 0x82, 0x01, 0x99, 0x81, 0x03), new TextEncoder().encode('CPS'), Uint8Array.of(0x8f, 0x82, 0x01, 0x90), filler]);
    const { driver, sent } = counted(card);
    const data = await readPublicData(driver, undefined, { signCertificate: false });
    expect(toHex(data.data.CPS_ID_CARD ?? new Uint8Array(0))).toBe(toHex(idCard.data));
    const path = toHex((await driver.objects()).dataObjects.find((d) => d.label === 'CPS_ID_CARD')?.path ?? new Uint8Array(0));
    expect(readsByFile(sent).get(path)).toEqual([0, 256]);
    expect(holderIdentity({ certificate: data.authCertificate ?? new Uint8Array(0), serial: data.serial, data: data.data }).cardType).toBe('CPS');
  });

  it('does not read a padded directory file to its end', async () => {
    const plain = counted(fixtureCard('doctor'));
    await readPublicData(plain.driver, undefined, { signCertificate: false });
    const card = fixtureCard('doctor');
    const app = card.image.mf.child(0x0001) as Df;
    for (const fid of [FID.odf, FID.cdf, FID.prkdf, FID.aodf, FID.dodf]) {
      const ef = app.child(fid) as Ef;
      ef.data = concatBytes([ef.data, new Uint8Array(2048 - ef.data.length).fill(fid === FID.dodf ? 0x00 : 0xff)]);
    }
    const padded = counted(card);
    const data = await readPublicData(padded.driver, undefined, { signCertificate: false });
    expect(padded.sent.length).toBe(plain.sent.length);
    expect(holderIdentity({ certificate: data.authCertificate ?? new Uint8Array(0), serial: data.serial, data: data.data }).specialty).toBe(
      loadProfile('doctor').holder.specialty?.code ?? null,
    );
  });

  it('falls back to SELECT by path on a card that resolves no short EF identifier from where it is', async () => {
    const noSfi = (c: Uint8Array): Uint8Array | undefined => (c[1] === 0xb0 && ((c[2] ?? 0) & 0x80) !== 0 ? Uint8Array.of(0x6a, 0x82) : undefined);
    const { driver, sent } = counted(fixtureCard('doctor'), noSfi);
    const data = await login(driver, new MemoryCardCache());
    expect(data.serial).toBe(loadProfile('doctor').serial);
    expect(selected(sent)).toEqual(expect.arrayContaining(['3F00D003', '3F002F00']));
  });

  it('reads the DODF only as far as the identity objects; the practice situations read on from there', async () => {
    const cache = new MemoryCardCache();
    const first = counted(fixtureCard('doctor-16'));
    const data = await readPublicData(first.driver, cache, { signCertificate: false });
    expect(Object.keys(data.data).sort()).toEqual(['CPS_ID_CARD', 'CPS_INFO_PS']);
    const dodf = toHex((await first.driver.objects()).dataObjectsRest?.path ?? new Uint8Array(0));
    expect(readsByFile(first.sent).get(dodf)).toEqual([0]); // 1 chunk of a 1021-byte DODF

    // The card again, known: its situations after the PIN, the DODF read on from where the login stopped.
    const second = counted(fixtureCard('doctor-16'));
    await readPublicData(second.driver, cache, { signCertificate: false });
    await second.driver.verifyPin(new Pin('1234'));
    const labels = await second.driver.situationLabels();
    expect(labels).toHaveLength(16);
    expect(readsByFile(second.sent).get(dodf)).toEqual([256, 512, 768]);
    expect(selected(second.sent)).not.toContain('3F0000015031'); // no directory walk
    expect((await second.driver.dataObject('CPS_ACTIVITY_16_PS'))?.length).toBeGreaterThan(0);
  });

  it('shares one directory walk between callers asking at the same time', async () => {
    const { driver, sent } = counted(fixtureCard('doctor'));
    await Promise.all([driver.objects(), driver.certificate('auth'), driver.dataObject('CPS_INFO_PS'), driver.objects()]);
    const odf = toHex((await driver.objects()).application) + '5031';
    expect(selected(sent).filter((p) => p === odf)).toHaveLength(1);
  });
});

describe('signing certificate on demand', () => {
  it('is read when asked for, alone, then served from the cache file (0600)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cpsd-lazy-'));
    const cache = new FileCardCache(dir);
    await login(counted(fixtureCard('doctor')).driver, cache);
    const [file] = readdirSync(dir);
    const path = join(dir, file ?? '');
    expect(JSON.parse(readFileSync(path, 'utf8')).sign).toBeUndefined();

    // The same card again, now asked for its signing certificate: only that certificate is read.
    const second = counted(fixtureCard('doctor'));
    const data = await readPublicData(second.driver, cache, { signCertificate: true });
    expect(data.fromCache).toBe(true);
    expect(toHex(data.signCertificate ?? new Uint8Array(0))).toBe(toHex(loadMaterial('doctor').signCert));
    const paths = await certificatePaths(second.driver);
    expect(selected(second.sent)).toEqual(['3F00D010', paths.sign]); // EF.SN.ICC by SFI, EF_ACTUA, the certificate
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const content = readFileSync(path, 'utf8');
    expect(JSON.parse(content).sign).toBe(toHex(loadMaterial('doctor').signCert));
    expect(content).not.toContain(Buffer.from('HOPITAL').toString('hex').toUpperCase()); // no PIN-protected object

    // And then from the cache: serial and EF_ACTUA only.
    const third = counted(fixtureCard('doctor'));
    const again = await readPublicData(third.driver, cache);
    expect(toHex(again.signCertificate ?? new Uint8Array(0))).toBe(toHex(loadMaterial('doctor').signCert));
    expect(toHex(again.authCertificate ?? new Uint8Array(0))).toBe(toHex(loadMaterial('doctor').authCert));
    expect(third.sent).toHaveLength(2);
  });

  it('is read by default, as before, for callers that did not choose', async () => {
    const { driver } = counted(fixtureCard('doctor'));
    const data = await readPublicData(driver, new MemoryCardCache());
    expect(toHex(data.signCertificate ?? new Uint8Array(0))).toBe(toHex(loadMaterial('doctor').signCert));
  });
});

describe('login on a card seen before', () => {
  it('costs at most 8 APDUs, signing certificate never read', async () => {
    const cache = new MemoryCardCache();
    await login(counted(fixtureCard('doctor')).driver, cache);
    const { driver, sent } = counted(fixtureCard('doctor'));
    const data = await login(driver, cache);
    expect(data.fromCache).toBe(true);
    expect(sent.length).toBeLessThanOrEqual(8);
    expect(selected(sent)).not.toContain((await certificatePaths(driver)).sign);
  });
});
