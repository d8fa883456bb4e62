/**
 * An application that loads the module the moment the card goes in (issue #21: the doctor inserts the
 * card and opens the portal at once) gets the complete token, through the real pcscd + vpcd and
 * `cpsd serve` as a process. The card's first read is made slow on purpose (its 2nd APDU answered after
 * 12 s, longer than the module's 10 s limit for SLOTS and the old one for TOKEN), so that the
 * application asks while the daemon is still reading the card, every time.
 *
 * Before the fix the module gave up on TOKEN after 10 s (CKR_DEVICE_ERROR), and closing its connection
 * cancelled the daemon's read: the application never saw a certificate while the read took longer.
 * Now the daemon reads the card at insertion, SLOTS shows the token present once it is read (waiting up
 * to 8 s), and TOKEN waits for the rest of the read (up to 20 s, the module 25 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nss, nssDb } from '../helpers/nss.js';
import { Pkcs11Daemon } from '../helpers/pkcs11-daemon.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const CLIENT = fileURLToPath(new URL('python/p11client.py', import.meta.url));
/** The card's 2nd APDU (its first read's) answered after 12 s. */
const SLOW_FIRST_READ = { stallAt: { apdu: 2, ms: 12_000 } };
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

interface Answer {
  ok: boolean;
  error?: string;
  slots?: number;
  certs?: string[];
}

/** test/e2e/python/p11client.py (python3-pykcs11) run with `commands`: its answers, one per command. */
function app(commands: string[]): Promise<Answer[]> {
  const child: ChildProcess = spawn('/usr/bin/python3', [CLIENT, daemon.module], { env: daemon.env(), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin?.end(`${commands.join('\n')}\nquit\n`);
  return new Promise((resolve, reject) => {
    child.once('exit', () => {
      try {
        resolve(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Answer));
      } catch {
        reject(new Error(`p11client: ${out}${err}`));
      }
    });
  });
}

describe('a card just inserted', () => {
  it('an application loaded the moment the card goes in lists both certificates, while the daemon still reads the card', async () => {
    await vr.insert({ profile: 'doctor', faults: SLOW_FIRST_READ });
    const started = Date.now();
    const answers = await app(['wait-token 30', 'certs']);
    expect(answers[0]).toEqual({ ok: true, slots: 1 });
    expect(answers[1]).toEqual({ ok: true, certs: ['CPS_AUT_CERT', 'CPS_SIG_CERT'] });
    // It did ask during the read (it took the read's 12 s), and the card was read once, for everyone.
    expect(Date.now() - started).toBeGreaterThan(10_000);
    expect(daemon.log).not.toMatch(/pkcs11-request-failed/);
  }, 60_000);

  it('NSS (certutil, as Firefox and Chromium load the module) started during the first read lists both certificates', async () => {
    const db = nssDb(join(daemon.dir, 'nssdb'));
    nss(['modutil', '-dbdir', db, '-add', 'cpsd', '-libfile', daemon.module, '-force'], { env: daemon.env() });
    await vr.insert({ profile: 'doctor', faults: SLOW_FIRST_READ });
    const r = await daemon.tool('certutil', ['-L', '-h', 'all', '-d', db]);
    expect(r.stdout).toContain('CPS3 JEANNE MEDECIN-TEST:CPS_AUT_CERT');
    expect(r.stdout).toContain('CPS3 JEANNE MEDECIN-TEST:CPS_SIG_CERT');
  }, 60_000);
});
