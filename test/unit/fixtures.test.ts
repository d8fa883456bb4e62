/** The card profiles and the test PKI are consistent: ids, codes, chains, key pairs, validity, CRL. */
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturesDir, loadMaterial, loadProfile, profileNames } from '../../sim/cps/fixtures.js';

const dir = fixturesDir();
const root = new X509Certificate(readFileSync(join(dir, 'pki', 'root.der')));
const intermediate = new X509Certificate(readFileSync(join(dir, 'pki', 'intermediate.der')));

function luhn(digits: string): boolean {
  let sum = 0;
  [...digits].reverse().forEach((c, i) => {
    let d = Number(c);
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  });
  return sum % 10 === 0;
}

describe('fixtures', () => {
  it('has a root and the FORT PERSONNES intermediate it issued', () => {
    expect(root.subject).toContain('CN=TEST AC RACINE IGC-SANTE FORT');
    expect(intermediate.subject).toContain('CN=TEST AC IGC-SANTE FORT PERSONNES');
    expect(intermediate.checkIssued(root)).toBe(true);
    expect(intermediate.verify(root.publicKey)).toBe(true);
    expect(intermediate.ca).toBe(true);
  });

  for (const name of profileNames()) {
    it(`profile ${name}: valid fields, certificates chained to the intermediate, keys matching`, () => {
      const p = loadProfile(name);
      expect(p.name).toBe(name);
      expect(p.pin).toMatch(/^\d{4}$/);
      expect(p.puk).toMatch(/^\d{8}$/);
      expect(p.serial).toMatch(/^[0-9A-F]{10}$/);
      if (p.holder.idNat.startsWith('8')) {
        expect(p.holder.idNat).toMatch(/^8\d{11}$/);
        expect(luhn(p.holder.idNat.slice(1))).toBe(true); // RPPS key
      }
      const indexes = p.situations.map((s) => s.index);
      expect(new Set(indexes).size).toBe(indexes.length);
      for (const i of indexes) expect(i >= 1 && i <= 16).toBe(true);

      const m = loadMaterial(name);
      for (const [der, key, usage] of [
        [m.authCert, m.authKey, 'clientAuth'],
        [m.signCert, m.signKey, undefined],
        [m.techCert, m.techKey, 'clientAuth'],
      ] as const) {
        const cert = new X509Certificate(der);
        expect(cert.checkIssued(intermediate)).toBe(true);
        expect(cert.verify(intermediate.publicKey)).toBe(true);
        expect(cert.publicKey.equals(createPublicKey(key))).toBe(true);
        // One multi-valued RDN: Node prints it as CN=…+SN=…+GN=… in some order, on one line.
        const rdn = cert.subject.split('\n').find((l) => l.includes(`CN=${p.holder.idNat}`)) ?? '';
        expect(rdn).toContain(`SN=${p.holder.lastName}`);
        expect(rdn).toContain(`GN=${p.holder.firstName}`);
        expect(cert.subject).toContain(`title=${p.holder.profession.label}`);
        if (usage) expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.2');
        const years = p.pki?.expired ? 3 : p.generation === 'CPS4' ? 6 : 3;
        const from = new Date(cert.validFrom).getUTCFullYear();
        expect(new Date(cert.validTo).getUTCFullYear() - from).toBe(years);
        if (p.pki?.expired) expect(new Date(cert.validTo).getTime()).toBeLessThan(Date.now());
      }
    });
  }

  it('revokes exactly the authentication and signature certificates of profile "revoked"', () => {
    const serials = JSON.parse(readFileSync(join(dir, 'pki', 'serials.json'), 'utf8')) as Record<string, string[]>;
    const crl = readFileSync(join(dir, 'pki', 'fort-personnes.crl')).toString('hex');
    for (const [name, list] of Object.entries(serials)) {
      list.forEach((serial, i) => {
        const listed = crl.includes(serial);
        expect(listed, `${name} #${i}`).toBe(name === 'revoked' && i < 2);
      });
    }
  });
});
