/**
 * NSS, the crypto of Firefox and of Chromium on Linux, judges the module with its own tools: certutil
 * lists the card's certificates from an NSS database where modutil registered the module, and NSS's
 * TLS client (tstclnt) authenticates to NSS's TLS server (selfserv -r -r: a client certificate from the
 * test IGC-Santé CA required) with the card's authentication key, through the real pcscd + vpcd.
 *
 * TLS 1.3 signs CertificateVerify with RSA-PSS only (RFC 8446 §4.4.3): a CPS4 does it; a CPS3 cannot,
 * and NSS then sends no certificate (no fallback to TLS 1.2): the server refuses the handshake.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nss, nssDb, serverDb } from '../helpers/nss.js';
import { Pkcs11Daemon, freePort } from '../helpers/pkcs11-daemon.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const PIN = '1234';
const vr = useVirtualReader();
let daemon: Pkcs11Daemon;
let server: ChildProcess;
let serverOut = '';
let port: number;

async function listening(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(p, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

beforeAll(async () => {
  daemon = new Pkcs11Daemon();
  await daemon.start();
  const db = serverDb(join(daemon.dir, 'server'));
  port = await freePort();
  server = spawn('selfserv', ['-d', db, '-n', 'server', '-p', String(port), '-r', '-r', '-V', 'tls1.2:tls1.3', '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout?.on('data', (d: Buffer) => (serverOut += d.toString()));
  server.stderr?.on('data', (d: Buffer) => (serverOut += d.toString()));
  for (let i = 0; i < 100 && !(await listening(port)); i++) await new Promise((r) => setTimeout(r, 100));
}, 60_000);

afterAll(async () => {
  server?.kill();
  await daemon?.stop();
  daemon?.cleanup();
});

/** A client NSS database with the module registered as an IT installer (or Chromium's user) does it. */
function clientDb(name: string): string {
  const db = nssDb(join(daemon.dir, name));
  nss(['modutil', '-dbdir', db, '-add', 'cpsd', '-libfile', daemon.module, '-force'], { env: daemon.env() });
  return db;
}

/** The nickname NSS gives the authentication certificate: token label, colon, certificate label. */
function authNickname(db: string): string {
  const list = nss(['certutil', '-L', '-h', 'all', '-d', db], { env: daemon.env() });
  const line = list.split('\n').find((l) => /AUT/i.test(l) && l.includes(':'));
  if (!line) throw new Error(`no authentication certificate in:\n${list}`);
  return (line.match(/^(.*?)\s+[uCcTPp,]*$/)?.[1] ?? line).trim();
}

function tstclnt(db: string, nick: string, versions: string): Promise<{ code: number; out: string }> {
  return daemon
    .tool('tstclnt', ['-h', '127.0.0.1', '-p', String(port), '-d', db, '-n', nick, '-w', PIN, '-V', versions, '-o', '-Q', '-v'], { timeoutMs: 60_000 })
    .then((r) => ({ code: r.code, out: `${r.stdout}\n${r.stderr}` }));
}

describe('NSS with libcpsd-pkcs11.so', () => {
  it('certutil -L -h all lists both certificates of the card, as user certificates', async () => {
    await vr.insert({ profile: 'doctor' });
    const db = clientDb('list');
    const list = nss(['certutil', '-L', '-h', 'all', '-d', db], { env: daemon.env() });
    const lines = list.split('\n').filter((l) => l.startsWith('CPS3 JEANNE MEDECIN-TEST:'));
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatch(/u,u,u\s*$/);
  });

  for (const personality of ['cps3', 'cps4'] as const) {
    it(`${personality.toUpperCase()}: tstclnt authenticates to selfserv -r -r at TLS 1.2 with the card`, async () => {
      await vr.insert({ profile: 'doctor', personality });
      const db = clientDb(`tls12-${personality}`);
      const r = await tstclnt(db, authNickname(db), 'tls1.2:tls1.2');
      expect(r.out).not.toMatch(/AddressSanitizer|runtime error:/);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(/TLS 1\.2|TLSv1\.2|version 3\.3/i);
    });
  }

  it('CPS4: tstclnt authenticates at TLS 1.3 (RSA-PSS by the card)', async () => {
    await vr.insert({ profile: 'doctor', personality: 'cps4' });
    const db = clientDb('tls13-cps4');
    const r = await tstclnt(db, authNickname(db), 'tls1.3:tls1.3');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/TLS 1\.3|version 3\.4/i);
  });

  it('CPS3 at TLS 1.3: NSS sends no certificate (the card has no PSS) and the server refuses; nothing reaches the card', async () => {
    await vr.insert({ profile: 'doctor' });
    const db = clientDb('tls13-cps3');
    const before = daemon.log.length;
    const r = await tstclnt(db, authNickname(db), 'tls1.3:tls1.3');
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/CERTIFICATE_REQUIRED|certificate required|SSL_ERROR/i);
    expect(daemon.log.slice(before)).not.toMatch(/pkcs11-sign/);
  });
});
