/**
 * OpenSC's pkcs11-tool, unmodified, judges libcpsd-pkcs11.so: the virtual CPS3 and CPS4 in vpcd inside
 * the real pcscd, `cpsd serve` as a process, the module loaded by pkcs11-tool. Its own test suites
 * (--test, --test-threads, --test-fork) sign with every mechanism and verify with the public key.
 * CPSD_PKCS11_ASAN=1 runs the same tests against the AddressSanitizer + UBSan build.
 */
import { X509Certificate, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMaterial, loadProfile } from '../../sim/cps/fixtures.js';
import { Pkcs11Daemon } from '../helpers/pkcs11-daemon.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const PIN = '1234';
const vr = useVirtualReader();
let daemon: Pkcs11Daemon;

beforeAll(async () => {
  daemon = new Pkcs11Daemon();
  await daemon.start();
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  daemon?.cleanup();
});

/** No sanitizer report and no crash, whatever the tool said. */
function clean(r: { stderr: string; code: number }): void {
  expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error:|LeakSanitizer/);
  expect(r.code).not.toBe(86);
}

for (const personality of ['cps3', 'cps4'] as const) {
  describe(`pkcs11-tool with the virtual ${personality.toUpperCase()}`, () => {
    const insert = (): Promise<void> => vr.insert({ profile: 'doctor', personality });

    it('-L lists the slot with a token labelled with the card type and the holder', async () => {
      await insert();
      const r = await daemon.pkcs11Tool(['-L']);
      clean(r);
      expect(r.code).toBe(0);
      const holder = loadProfile('doctor').holder;
      expect(r.stdout).toContain('Virtual PCD 00 00');
      expect(r.stdout).toMatch(new RegExp(`token label\\s*:\\s*${personality.toUpperCase()} ${holder.firstName}`, 'i'));
    });

    it('-T shows the token: login required, PIN initialised, read-only', async () => {
      await insert();
      const r = await daemon.pkcs11Tool(['-T']);
      clean(r);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/token flags\s*:.*login required/);
      expect(r.stdout).toMatch(/PIN initialized/);
      expect(r.stdout).toMatch(/serial num\s*:\s*\S+/);
    });

    it('-M lists the mechanisms the card does: PKCS#1 v1.5, and PSS only on a CPS4', async () => {
      await insert();
      const r = await daemon.pkcs11Tool(['-M']);
      clean(r);
      expect(r.stdout).toContain('SHA256-RSA-PKCS');
      expect(r.stdout).toMatch(/RSA-PKCS\b/);
      if (personality === 'cps4') expect(r.stdout).toContain('RSA-PKCS-PSS');
      else expect(r.stdout).not.toContain('PSS');
    });

    it('-O lists both certificates, byte for byte the card\'s, and their public keys before login', async () => {
      await insert();
      const r = await daemon.pkcs11Tool(['-O']);
      clean(r);
      expect(r.stdout.match(/Certificate Object/g)).toHaveLength(2);
      expect(r.stdout.match(/Public Key Object/g)).toHaveLength(2);
      expect(r.stdout).not.toContain('Private Key Object');
      const material = loadMaterial('doctor');
      const out = join(daemon.dir, `auth-${personality}.der`);
      const ids = [...r.stdout.matchAll(/Certificate Object[\s\S]*?ID:\s*([0-9a-f]+)/g)].map((m) => m[1] as string);
      const read = await daemon.pkcs11Tool(['--read-object', '--type', 'cert', '--id', ids[0] as string, '-o', out]);
      clean(read);
      const der = readFileSync(out);
      expect([Buffer.from(material.authCert), Buffer.from(material.signCert)].some((c) => c.equals(der))).toBe(true);
    });

    it('-O --login lists the private keys too', async () => {
      await insert();
      const r = await daemon.pkcs11Tool(['-O', '--login', '--pin', PIN]);
      clean(r);
      expect(r.stdout.match(/Private Key Object/g)).toHaveLength(2);
      expect(daemon.log).not.toContain(PIN);
    });

    it('signs with the authentication key, a signature openssl-independent node:crypto verifies with the certificate', async () => {
      await insert();
      const input = join(daemon.dir, 'data.txt');
      const sig = join(daemon.dir, 'data.sig');
      writeFileSync(input, 'bonjour');
      const objects = await daemon.pkcs11Tool(['-O']);
      const id = /Certificate Object[\s\S]*?ID:\s*([0-9a-f]+)/.exec(objects.stdout)?.[1] as string;
      const r = await daemon.pkcs11Tool(['--sign', '--login', '--pin', PIN, '--id', id, '-m', 'SHA256-RSA-PKCS', '-i', input, '-o', sig]);
      clean(r);
      expect(r.code).toBe(0);
      const cert = new X509Certificate(loadMaterial('doctor').authCert);
      const other = new X509Certificate(loadMaterial('doctor').signCert);
      const ok = [cert, other].some((c) => verify('sha256', Buffer.from('bonjour'), c.publicKey, readFileSync(sig)));
      expect(ok).toBe(true);
    });

    it('--test --login passes OpenSC\'s own signature and verification tests', async () => {
      await insert();
      const r = await daemon.pkcs11Tool(['--test', '--login', '--pin', PIN], { timeoutMs: 120_000 });
      clean(r);
      expect(`${r.stdout}\n${r.stderr}`).toMatch(/No errors/);
      expect(r.code).toBe(0);
    });

    it('--test-threads: several threads initialise, list slots and read the token at once', async () => {
      await insert();
      // OpenSC's own test script runs ILGISLT0: C_Initialize with locking, C_GetInfo, C_GetSlotList, C_GetTokenInfo.
      const r = await daemon.pkcs11Tool(['--test-threads', 'ILGISLT0', '--test-threads', 'ILGISLT0', '--test-threads', 'ILGISLT0', '-L'], { timeoutMs: 120_000 });
      clean(r);
      expect(r.code).toBe(0);
      const out = `${r.stdout}\n${r.stderr}`;
      expect(out.match(/Test thread \d returning rv = 0/g)).toHaveLength(3);
      expect(out).not.toContain('some errors');
      // pkcs11-tool waits 30 s when a thread has not finished by its cleanup (a thread that lost the race for the module's lock).
    }, 90_000);

    it('--test-fork: a child after fork() initialises again and works', async () => {
      await insert();
      const r = await daemon.pkcs11Tool(['--test-fork'], { timeoutMs: 60_000 });
      clean(r);
      expect(r.code).toBe(0);
      expect(`${r.stdout}${r.stderr}`).not.toMatch(/failed|error/i);
    });
  });
}

describe('pkcs11-tool: PIN and card state', () => {
  it('a wrong PIN is CKR_PIN_INCORRECT and costs exactly one try; the token then says the count is low', async () => {
    await vr.insert({ profile: 'doctor' });
    const r = await daemon.pkcs11Tool(['--login', '--pin', '9999', '-O']);
    clean(r);
    expect(r.stderr).toContain('CKR_PIN_INCORRECT');
    const t = await daemon.pkcs11Tool(['-T']);
    expect(t.stdout).toMatch(/user PIN count low/);
    expect(daemon.log).not.toContain('9999');
  });

  it('no card: the slot has no token', async () => {
    await vr.remove();
    const r = await daemon.pkcs11Tool(['-L']);
    clean(r);
    expect(r.stdout).toMatch(/\(empty\)|token state:\s*uninitialized|Slot 0[^\n]*\n\s*(?!token)/);
    expect(r.stdout).not.toMatch(/token label/);
  });
});
