/** Holder identity and the public-data cache, over every fixture profile through the driver. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Pin } from '../../cards/pin.js';
import { openCard, FileCardCache, MemoryCardCache, readPublicData, type CpsCard } from '../../cards/index.js';
import { certificateInfo, holderIdentity, practiceSituation } from '../../pkcs/holder.js';
import { fixtureCard, loadMaterial, loadProfile, profileNames } from '../../sim/cps/fixtures.js';
import type { VirtualCpsCard } from '../../sim/cps/card.js';
import { actua } from '../../sim/cps/data-objects.js';
import { Ef } from '../../sim/cps/fs.js';

function counted(card: VirtualCpsCard): { driver: CpsCard; stats: { apdus: number; bytes: number } } {
  const stats = { apdus: 0, bytes: 0 };
  const driver = openCard(
    {
      transmit: async (c) => {
        const r = card.transmit(c);
        stats.apdus++;
        stats.bytes += c.length + r.length;
        return r;
      },
    },
    card.atr,
  );
  return { driver, stats };
}

describe('holder identity', () => {
  for (const name of profileNames()) {
    it(`${name}: every identity field equals the fixture`, async () => {
      const p = loadProfile(name);
      const { driver } = counted(fixtureCard(name));
      const data = await readPublicData(driver);
      const auth = data.authCertificate;
      expect(auth).toBeDefined();
      const id = holderIdentity({ certificate: auth ?? new Uint8Array(0), serial: data.serial, data: data.data });
      expect(id.nationalId).toBe(p.holder.idNat);
      expect(id.surname).toBe(p.holder.lastName);
      expect(id.givenName).toBe(p.holder.firstName);
      expect(id.profession?.label).toBe(p.holder.profession.label);
      expect(id.profession?.code ?? '').toBe(p.holder.profession.code);
      expect(id.specialty).toBe(p.holder.specialty?.code ?? null);
      expect(id.cardType).toBe(p.cardType);
      expect(id.serial).toBe(p.serial);
      expect(id.idKind).toBe(p.holder.idNat.startsWith('8') ? 'RPPS' : 'FINESS');
      expect(id.rpps).toBe(p.holder.idNat.startsWith('8') ? p.holder.idNat.slice(1) : null);
      // openssl reads the certificate's end date: not our parser checking itself.
      const enddate = execFileSync('openssl', ['x509', '-inform', 'DER', '-noout', '-enddate'], { input: loadMaterial(name).authCert }).toString();
      expect(new Date(id.notAfter).getTime()).toBe(new Date(enddate.trim().replace(/^notAfter=/, '')).getTime());
      // The serial as an integer, as openssl prints it (half the serials have the high bit: no 00 then).
      const serial = execFileSync('openssl', ['x509', '-inform', 'DER', '-noout', '-serial'], { input: loadMaterial(name).authCert }).toString();
      expect(certificateInfo(loadMaterial(name).authCert).serialNumber).toBe(serial.trim().replace(/^serial=/, ''));

      // Situations after the PIN (a blocked card has none to show).
      if (p.state?.pinTriesLeft === 0) return;
      await driver.verifyPin(new Pin(p.pin));
      const situations = [];
      for (const label of await driver.situationLabels()) {
        const s = practiceSituation(label, (await driver.dataObject(label)) ?? new Uint8Array(0));
        if (s) situations.push(s);
      }
      expect(situations.map((s) => [s.index, s.structureName, s.structureId, s.sector])).toEqual(
        p.situations.map((s) => [s.index, s.companyName, s.structureId, s.sector]),
      );
    });
  }

  it('reads the structure-id kind of a situation', () => {
    const s = practiceSituation('CPS_ACTIVITY_02_PS', Uint8Array.of(0xee, 0x06, 0x84, 0x01, 0x41, 0x85, 0x01, 0x31));
    expect(s).toMatchObject({ index: 2, structureName: 'A', structureId: '1', structureIdKind: 'FINESS', sector: '' });
  });
});

describe('public-data cache', () => {
  it('identifies a known card in 2 APDUs and re-reads when EF_ACTUA changes', async () => {
    const cache = new MemoryCardCache();
    const first = counted(fixtureCard('doctor'));
    const a = await readPublicData(first.driver, cache);
    expect(a.fromCache).toBe(false);
    const second = counted(fixtureCard('doctor'));
    const b = await readPublicData(second.driver, cache);
    expect(b.fromCache).toBe(true);
    expect(second.stats.apdus).toBe(2); // READ EF.SN.ICC by SFI, SELECT EF_ACTUA (absent)
    expect(Buffer.from(b.authCertificate ?? []).equals(Buffer.from(a.authCertificate ?? []))).toBe(true);
    expect(first.stats.apdus).toBeGreaterThan(10);

    // Same card, updated since: EF_ACTUA appears, so everything is read again.
    const updated = fixtureCard('doctor');
    updated.image.mf.add(new Ef({ fid: 0xd010, name: 'EF_ACTUA', data: actua('20260101000000', '20290101000000'), read: { contact: 'always', contactless: 'always' } }));
    const third = counted(updated);
    const c = await readPublicData(third.driver, cache);
    expect(c.serial).toBe(a.serial);
    expect(c.fromCache).toBe(false);
  });

  it('writes files readable by the user only, and never the PIN-protected objects', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cpsd-cache-'));
    const cache = new FileCardCache(dir);
    const { driver } = counted(fixtureCard('doctor'));
    await driver.verifyPin(new Pin('1234'));
    // Even asked for by label with the PIN verified, a PIN-protected object is listed, never read.
    const data = await readPublicData(driver, cache, { labels: ['CPS_ID_CARD', 'CPS_INFO_PS', 'CPS_ACTIVITY_01_PS', 'CPS_SIT_FACT'] });
    expect(Object.keys(data.data).sort()).toEqual(['CPS_ID_CARD', 'CPS_INFO_PS']);
    const [file] = readdirSync(dir);
    expect(file).toBe(`${data.serial}-contact.json`);
    const path = join(dir, file ?? '');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const content = readFileSync(path, 'utf8');
    expect(content).not.toContain('CPS_ACTIVITY_01_PS":"'); // labels only, no content
    expect(content).not.toContain(Buffer.from('HOPITAL').toString('hex').toUpperCase());
    expect(JSON.parse(content).privateLabels).toContain('CPS_SIT_FACT');
  });
});
