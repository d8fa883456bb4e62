/**
 * The `cpsd` command for IT staff, through the real pcscd + vpcd with the virtual card of every
 * profile: JSON contracts, identity equal to the fixture, PIN handling, certificates, exit codes.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadProfile, profileNames } from '../../sim/cps/fixtures.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';
import { VPCD_READER } from '../helpers/pcscd.js';

const CLI = fileURLToPath(new URL('../../dist/cli/cpsd.js', import.meta.url));
const PKI = fileURLToPath(new URL('../../fixtures/pki/', import.meta.url));
const cacheHome = mkdtempSync(join(tmpdir(), 'cpsd-cli-cache-'));
const vr = useVirtualReader();

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function cpsd(args: string[], input?: string, env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args, '--reader', VPCD_READER],
      { env: { ...process.env, XDG_CACHE_HOME: cacheHome, LANG: 'C', ...env } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input ?? '');
  });
}

const insert = (profile: string, personality?: 'cps3' | 'cps3-cl' | 'cps4'): Promise<void> =>
  vr.insert(personality ? { profile, personality } : { profile });




describe('cpsd identity / status', () => {
  for (const name of profileNames()) {
    it(`identifies profile ${name} exactly as the fixture`, async () => {
      const p = loadProfile(name);
      await insert(name);
      const r = await cpsd(['identity', '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({
        nationalId: p.holder.idNat,
        surname: p.holder.lastName,
        givenName: p.holder.firstName,
        profession: { label: p.holder.profession.label },
        specialty: p.holder.specialty?.code ?? null,
        cardType: p.cardType,
        serial: p.serial,
      });
    });
  }

  it('lists the practice situations after the PIN, with gaps in the indexes', async () => {
    await insert('doctor-gaps');
    const r = await cpsd(['identity', '--situations', '--json'], '1234\n');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { situations: unknown[] }).situations).toEqual(
      loadProfile('doctor-gaps').situations.map((s) => ({
        index: s.index,
        structureName: s.companyName,
        structureId: s.structureId,
        structureIdKind: s.structureId.startsWith('1') ? 'FINESS' : 'RPPS_CABINET',
        sector: s.sector,
      })),
    );
  });

  it('reports status with the documented JSON shape on a CPS4, and the PIN counter', async () => {
    await insert('nurse');
    const r = await cpsd(['status', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      reader: VPCD_READER,
      atr: '3B9B188001001225006480040100009044',
      cardType: 'CPS',
      generation: 'CPS4',
      interface: 'contact',
      serial: loadProfile('nurse').serial,
      pin: { triesLeft: 3, max: 3, blocked: false },
      sameCardAs: [],
    });
  });

  it('reads a contactless CPS3 through its technical certificate', async () => {
    await insert('pharmacist', 'cps3-cl');
    const status = JSON.parse((await cpsd(['status', '--json'])).stdout) as { interface: string };
    expect(status.interface).toBe('contactless');
    const id = JSON.parse((await cpsd(['identity', '--json'])).stdout) as { nationalId: string };
    expect(id.nationalId).toBe('899700075122');
  });

  it('speaks French when LANG says so', async () => {
    await insert('doctor');
    const r = await cpsd(['status'], undefined, { LANG: 'fr_FR.UTF-8' });
    expect(r.stdout).toContain('Lecteur: ');
    expect(r.stdout).toContain('essais restants');
  });

  it('exits 6 with the ATR for a card that is not a CPx', async () => {
    await vr.insert();
    const r = await cpsd(['status']);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('ATR 3B086370736454455354');
    expect(r.stderr).toContain('[UNSUPPORTED_CARD]');
  });
});

describe('cpsd in French and English', () => {
  it('shows an error on stderr in French from its code, the technical detail kept', async () => {
    await insert('doctor');
    const r = await cpsd(['pin', 'verify'], '9999\n', { LANG: 'fr_FR.UTF-8' });
    expect(r.stderr).toBe('cpsd: code porteur erroné : 2 essais restants [PIN_INCORRECT]\n  détail : wrong PIN, 2 tries left (63C2)\n');
  });

  it('lets --lang en win over LANG=fr', async () => {
    await insert('doctor');
    const r = await cpsd(['--lang', 'en', 'status'], undefined, { LANG: 'fr_FR.UTF-8' });
    expect(r.stdout).toContain('PIN: 3/3 tries left');
  });

  it('prints the help of a command and of its options in French', async () => {
    const r = await cpsd(['pin', 'verify', '--help'], undefined, { LANG: 'fr_FR.UTF-8' });
    expect(r.stdout).toContain('essayer même s’il ne reste qu’un essai');
  });

  it('says a usage error in French, with exit 2', async () => {
    const r = await cpsd(['status', '--bogus'], undefined, { LANG: 'fr_FR.UTF-8' });
    expect([r.code, r.stderr.split('\n')[0]]).toEqual([2, 'cpsd: option inconnue --bogus']);
  });

  it('lists the readers in French', async () => {
    await insert('doctor');
    const r = await cpsd(['readers'], undefined, { LANG: 'fr_FR.UTF-8' });
    expect(r.stdout).toContain(`${VPCD_READER}\tcarte 3BAC00402A001225006480000310009000 (contact)`);
  });
});

describe('cpsd pin', () => {
  it('names --allow-last-try when one try is left', async () => {
    await insert('doctor');
    await cpsd(['pin', 'verify'], '9999\n');
    await cpsd(['pin', 'verify'], '9999\n');
    const last = await cpsd(['pin', 'verify'], '1234\n');
    expect(last.stderr).toContain('run the command again with --allow-last-try');
  });


  it('verifies a PIN read from stdin, refuses a wrong one with the tries left, never prints it', async () => {
    await insert('doctor');
    const ok = await cpsd(['pin', 'verify', '--json'], '1234\n');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ ok: true, pin: { triesLeft: 3, max: 3, blocked: false } });
    const wrong = await cpsd(['pin', 'verify'], '9999\n');
    expect(wrong.code).toBe(8);
    expect(wrong.stderr).toContain('2 tries left');
    expect(wrong.stderr + wrong.stdout).not.toContain('9999');
    await cpsd(['pin', 'verify'], '9999\n');
    const last = await cpsd(['pin', 'verify'], '1234\n');
    expect(last.code).toBe(8);
    expect(last.stderr).toContain('[PIN_LAST_TRY]');
    const consent = await cpsd(['pin', 'verify', '--allow-last-try'], '1234\n');
    expect(consent.code).toBe(0);
  });

  it('reports a blocked PIN with exit 7, and unblocks it with the unblocking code', async () => {
    await insert('pin-blocked');
    const status = await cpsd(['status', '--json']);
    expect(status.code).toBe(7);
    expect(JSON.parse(status.stdout).pin).toEqual({ triesLeft: 0, max: 3, blocked: true });
    expect((await cpsd(['pin', 'verify'], '1234\n')).code).toBe(7);
    const unblock = await cpsd(['pin', 'unblock'], '12345678\n4321\n4321\n');
    expect(unblock.code).toBe(0);
    expect((await cpsd(['pin', 'verify'], '4321\n')).code).toBe(0);
  });

  it('changes the PIN and refuses two different new PINs', async () => {
    await insert('doctor');
    expect((await cpsd(['pin', 'change'], '1234\n5678\n8765\n')).code).toBe(8);
    expect((await cpsd(['pin', 'change'], '1234\n5678\n5678\n')).code).toBe(0);
    expect((await cpsd(['pin', 'verify'], '5678\n')).code).toBe(0);
  });
});

describe('cpsd certs and doctor', () => {
  const trust = ['--trust', join(PKI, 'root.der'), '--trust', join(PKI, 'intermediate.der'), '--crl', join(PKI, 'fort-personnes.crl'), '--crl', join(PKI, 'racine.crl')];

  it('validates good certificates, and exits 9 for expired and revoked ones', async () => {
    for (const [profile, code, status] of [
      ['doctor', 0, 'valid'],
      ['expired', 9, 'expired'],
      ['revoked', 9, 'revoked'],
    ] as const) {
      await insert(profile);
      const r = await cpsd(['certs', '--verify', '--json', ...trust]);
      expect(r.code, profile).toBe(code);
      const checks = JSON.parse(r.stdout) as { which: string; status: string }[];
      expect(checks.map((c) => c.status)).toEqual([status, status]);
      await vr.remove();
    }
  });

  it('certs --verify without --trust says to pass it', async () => {
    await insert('doctor');
    const r = await cpsd(['certs', '--verify']);
    expect(r.stderr).toContain('Pass --trust FILE with the root and the intermediate certificates');
  });

  it('prints PEM certificates', async () => {
    await insert('doctor');
    const r = await cpsd(['certs', '--pem']);
    expect(r.stdout.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2);
  });

  it('doctor: all green on a good card, plain advice and exit 7 on a blocked PIN', async () => {
    await insert('doctor');
    const good = await cpsd(['doctor', '--json', ...trust]);
    expect(good.code).toBe(0);
    const checks = (JSON.parse(good.stdout) as { checks: { id: string; status: string }[] }).checks;
    expect(checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(checks.map((c) => c.id)).toEqual(['pcsc-service', 'readers', 'card', 'pin', 'certificate-auth', 'certificate-sign', 'config', 'daemon', 'pkcs11']);
    await vr.remove();
    await insert('pin-blocked');
    const blocked = await cpsd(['doctor']);
    expect(blocked.code).toBe(7);
    expect(blocked.stdout).toContain('cpsd pin unblock');
  });

  it('doctor: one PIN try left is a warning with advice', async () => {
    await insert('doctor');
    await cpsd(['pin', 'verify'], '9999\n');
    await cpsd(['pin', 'verify'], '9999\n');
    const r = await cpsd(['doctor']);
    expect(r.stdout).toMatch(/\[warn\] PIN: 1 of 3 try left\n +→ one try left: do not guess; unblock with cpsd pin unblock if unsure/);
  });

  it('doctor: without a card, every check is still listed, the PIN and certificates skipped', async () => {
    const r = await cpsd(['doctor', '--json']);
    const checks = (JSON.parse(r.stdout) as { checks: { id: string; status: string; detail: string }[] }).checks;
    expect(checks.map((c) => `${c.id}:${c.status}`).slice(2, 6)).toEqual(['card:fail', 'pin:skip', 'certificate-auth:skip', 'certificate-sign:skip']);
  });

  it('doctor --json is the same whatever the language', async () => {
    await insert('doctor');
    const strip = (text: string): unknown => (JSON.parse(text) as { checks: unknown }).checks;
    expect(strip((await cpsd(['doctor', '--json'], undefined, { LANG: 'fr_FR.UTF-8' })).stdout)).toEqual(strip((await cpsd(['doctor', '--json'])).stdout));
  });

  it('doctor --bundle carries versions, readers and ATRs, and no serial or identity', async () => {
    await insert('doctor');
    const file = join(mkdtempSync(join(tmpdir(), 'cpsd-bundle-')), 'bundle.json');
    await cpsd(['doctor', '--bundle', file, ...trust]);
    const text = readFileSync(file, 'utf8');
    const p = loadProfile('doctor');
    expect({ versions: Object.keys((JSON.parse(text) as { versions: object }).versions), atr: text.includes('3BAC00402A001225006480000310009000'), serial: text.includes(p.serial), id: text.includes(p.holder.idNat), name: text.includes(p.holder.lastName) }).toEqual({
      versions: ['cpsd', 'node', 'os', 'pcscd'],
      atr: true,
      serial: false,
      id: false,
      name: false,
    });
  });
});
