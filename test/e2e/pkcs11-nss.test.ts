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

/**
 * Runs tstclnt until selfserv says whether it validated the client's certificate (tstclnt itself may
 * wait on after a TLS 1.3 handshake), or tstclnt exits. `validated`: selfserv logged the holder's
 * subject and "Certificate Validated" for this connection.
 */
async function tstclnt(db: string, nick: string, versions: string): Promise<{ validated: boolean; out: string; server: string }> {
  const from = serverOut.length;
  const child = spawn('tstclnt', ['-h', '127.0.0.1', '-p', String(port), '-d', db, '-n', nick, '-w', PIN, '-V', versions, '-o', '-Q', '-v'], { env: daemon.env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let done = false;
  void exited.then(() => (done = true));
  const until = Date.now() + 20_000;
  // selfserv may log the validation before tstclnt prints the negotiated version: wait for both.
  const finished = (): boolean => serverOut.slice(from).includes('Certificate Validated') && /SSL version \d/.test(out);
  while (!done && Date.now() < until && !finished()) await new Promise((r) => setTimeout(r, 50));
  child.kill();
  await exited;
  const server = serverOut.slice(from);
  return { validated: /Subject: .*CN=899700012349/.test(server) && server.includes('Certificate Validated'), out, server };
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
      expect(r.validated, `${r.out}\n${r.server}`).toBe(true);
      expect(r.out).toMatch(/SSL version 3\.3/);
      expect(daemon.log).toMatch(/"pkcs11-sign","app":"tstclnt"[^\n]*"key":"auth","mechanism":1\}/);
    });
  }

  it('CPS4: tstclnt authenticates at TLS 1.3 (RSA-PSS by the card)', async () => {
    await vr.insert({ profile: 'doctor', personality: 'cps4' });
    const db = clientDb('tls13-cps4');
    const r = await tstclnt(db, authNickname(db), 'tls1.3:tls1.3');
    expect(r.validated, `${r.out}\n${r.server}`).toBe(true);
    expect(r.out).toMatch(/SSL version 3\.4/);
    // CertificateVerify in TLS 1.3: RSA-PSS (CKM_RSA_PKCS_PSS, 0xd) by the card's authentication key.
    expect(daemon.log).toMatch(/"pkcs11-sign","app":"tstclnt"[^\n]*"key":"auth","mechanism":13\}/);
  });

  it('CPS3 at TLS 1.3: NSS sends no certificate (the card has no PSS) and the server refuses; nothing reaches the card', async () => {
    await vr.insert({ profile: 'doctor' });
    const db = clientDb('tls13-cps3');
    const before = daemon.log.length;
    const r = await tstclnt(db, authNickname(db), 'tls1.3:tls1.3');
    expect(r.validated).toBe(false);
    expect(`${r.out}\n${r.server}`).toMatch(/CERTIFICATE_REQUIRED|certificate required|NO_CERTIFICATE|SSL_ERROR/i);
    expect(daemon.log.slice(before)).not.toMatch(/pkcs11-sign/);
  });
});
