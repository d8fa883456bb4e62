/**
 * What the PKCS#11 path guarantees when things go wrong, through the real pcscd + vpcd and `cpsd serve`
 * as a process, with applications scripted in Python (python3-pykcs11) that live through the event:
 * another OS user, an application that did not log in, the daemon killed in the middle of C_Sign, the
 * card pulled. The signatures are checked with node:crypto against the card's certificate.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, verify } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMaterial } from '../../sim/cps/fixtures.js';
import { createUser, removeUser, type OsUser } from '../helpers/os-users.js';
import { Pkcs11Daemon } from '../helpers/pkcs11-daemon.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const PIN = '1234';
const CLIENT = fileURLToPath(new URL('python/p11client.py', import.meta.url));
const vr = useVirtualReader();
let daemon: Pkcs11Daemon;

interface Answer {
  ok: boolean;
  error?: string;
  signature?: string;
  slots?: number;
  label?: string;
}

/** A scripted application: send() one command, get its JSON answer. */
class App {
  readonly #child: ChildProcess;
  readonly #answers: Answer[] = [];
  readonly #waiting: Array<(a: Answer) => void> = [];
  stderr = '';

  constructor(module: string, env: NodeJS.ProcessEnv) {
    this.#child = spawn('/usr/bin/python3', [CLIENT, module], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let buffer = '';
    this.#child.stdout?.on('data', (d: Buffer) => {
      buffer += d.toString();
      for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
        const answer = JSON.parse(buffer.slice(0, i)) as Answer;
        buffer = buffer.slice(i + 1);
        const w = this.#waiting.shift();
        if (w) w(answer);
        else this.#answers.push(answer);
      }
    });
    this.#child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  send(command: string): Promise<Answer> {
    this.#child.stdin?.write(`${command}\n`);
    const ready = this.#answers.shift();
    return ready ? Promise.resolve(ready) : new Promise((r) => this.#waiting.push(r));
  }

  quit(): void {
    this.#child.stdin?.end('quit\n');
  }
}

const authCert = (): X509Certificate => new X509Certificate(loadMaterial('doctor').authCert);
const valid = (a: Answer): boolean => a.ok && verify('sha256', Buffer.from('bonjour'), authCert().publicKey, Buffer.from(a.signature ?? '', 'hex'));

beforeAll(async () => {
  daemon = new Pkcs11Daemon();
  await daemon.start();
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  daemon?.cleanup();
});

describe('PKCS#11 security', () => {
  it('an application that did not log in cannot sign while another is logged in on the same card', async () => {
    await vr.insert({ profile: 'doctor' });
    const a = new App(daemon.module, daemon.env());
    const b = new App(daemon.module, daemon.env());
    try {
      // The daemon sees the card through its own PC/SC context: an application polls for it, as NSS does.
      expect(await a.send('wait-token 10')).toEqual({ ok: true, slots: 1 });
      expect(await a.send(`login ${PIN}`)).toEqual({ ok: true });
      expect(valid(await a.send('sign'))).toBe(true);
      // b sees no private key before its own login, and the daemon refuses its signature anyway.
      const refused = await b.send('sign');
      expect(refused.ok).toBe(false);
    } finally {
      a.quit();
      b.quit();
    }
  });

  it('the daemon killed during C_Sign: an error code, then the module reconnects to the new daemon and signs after a new login', async () => {
    // A slow card (2 s per RSA operation) so that the daemon dies with the signature at the card.
    await vr.insert({ profile: 'doctor', faults: { timing: { microsPerByte: 0, rsaMillis: 2000 } } });
    const app = new App(daemon.module, daemon.env());
    try {
      expect(await app.send('wait-token 10')).toEqual({ ok: true, slots: 1 });
      expect(await app.send(`login ${PIN}`)).toEqual({ ok: true });
      const signing = app.send('sign');
      const before = daemon.log.length;
      while (!daemon.log.slice(before).includes('pkcs11-sign')) await new Promise((r) => setTimeout(r, 20));
      daemon.kill();
      const failed = await signing;
      expect(failed.ok).toBe(false);
      expect(failed.error).toMatch(/CKR_DEVICE_ERROR|CKR_TOKEN_NOT_PRESENT|CKR_DEVICE_REMOVED|CKR_SESSION_HANDLE_INVALID/);
      expect((await app.send('slots')).slots).toBe(0);
      await daemon.start();
      expect(await app.send('wait-token 10')).toEqual({ ok: true, slots: 1 });
      const relogin = await app.send(`login ${PIN}`);
      // The daemon's log says why, should the new daemon refuse (its lines carry no PIN).
      expect(relogin, daemon.log).toEqual({ ok: true });
      expect(valid(await app.send('sign'))).toBe(true);
    } finally {
      app.quit();
    }
  }, 60_000);

  it('the card pulled: the application gets CKR_DEVICE_REMOVED or CKR_TOKEN_NOT_PRESENT, and no token until a card is back', async () => {
    await vr.insert({ profile: 'doctor' });
    const app = new App(daemon.module, daemon.env());
    try {
      expect(await app.send('wait-token 10')).toEqual({ ok: true, slots: 1 });
      expect(await app.send(`login ${PIN}`)).toEqual({ ok: true });
      await vr.remove();
      const refused = await app.send('sign');
      expect(refused.ok).toBe(false);
      expect(refused.error).toMatch(/CKR_DEVICE_REMOVED|CKR_TOKEN_NOT_PRESENT|CKR_SESSION_HANDLE_INVALID/);
      expect((await app.send('slots')).slots).toBe(0);
      await vr.insert({ profile: 'doctor' });
      expect(await app.send('wait-token 10')).toEqual({ ok: true, slots: 1 });
      // The new insertion is another token: the old login is gone.
      const again = await app.send('sign');
      expect(again.ok).toBe(false);
    } finally {
      app.quit();
    }
  }, 30_000);

  it('no PIN in the daemon\'s log after logins, wrong PINs and signatures', async () => {
    await vr.insert({ profile: 'doctor' });
    const app = new App(daemon.module, daemon.env());
    try {
      expect(await app.send('wait-token 10')).toEqual({ ok: true, slots: 1 });
      expect((await app.send('login 9862')).error).toBe('CKR_PIN_INCORRECT');
      expect(await app.send(`login ${PIN}`)).toEqual({ ok: true });
      expect(valid(await app.send('sign'))).toBe(true);
    } finally {
      app.quit();
    }
    expect(daemon.log).toContain('pkcs11-login');
    expect(daemon.log).not.toContain('9862');
    expect(daemon.log).not.toMatch(/"pin"\s*:/i);
  });
});

describe('PKCS#11: another OS user', () => {
  let user: OsUser | undefined;

  beforeAll(() => {
    if (process.getuid?.() !== 0) throw new Error('this test creates an OS user: run it as root (bash .ci/run does)');
    user = createUser(`cpsdp11${process.pid % 10000}`);
    // The other user may reach the module and the client script (not the socket: that is the point).
    for (let d = dirname(CLIENT); d !== '/'; d = dirname(d)) chmodSync(d, 0o755);
  });

  afterAll(() => {
    if (user) removeUser(user.name);
  });

  /** Runs the scripted application as the other user; everything it printed. */
  function asOther(args: string[], input: string): Promise<string> {
    return new Promise<string>((resolve) => {
      const child = spawn('runuser', ['-u', (user as OsUser).name, '--', 'env', `CPSD_PKCS11_SOCKET=${daemon.socket}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      child.once('close', () => resolve(text));
      child.stdin.end(input);
    });
  }

  it('as installed, a process of another OS user cannot reach the socket: its module sees no slot at all', async () => {
    await vr.insert({ profile: 'doctor' });
    const other = await asOther(['/usr/bin/python3', CLIENT, daemon.module], `slots\nlogin ${PIN}\nquit\n`);
    expect(other).toContain('{"ok": true, "slots": 0}');
    expect(other).toContain('"ok": false');
  });

  it('with the socket opened to everyone by hand, the daemon itself refuses the other user (the kernel names the peer)', async () => {
    // Every folder from the test's own down to the socket opened, then closed again.
    const opened: string[] = [];
    for (let d = dirname(daemon.socket); d.startsWith(daemon.dir); d = dirname(d)) opened.push(d);
    for (const d of opened) chmodSync(d, 0o755);
    chmodSync(daemon.socket, 0o777);
    try {
      const before = daemon.log.length;
      // A raw client: HELLO, then whatever comes back (nothing: the daemon closes the connection).
      const script = `import socket,struct,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
body=struct.pack('>HI',1,4)+struct.pack('>I',1)+struct.pack('>HI',2,4)+struct.pack('>I',1)+struct.pack('>HI',0x10,4)+struct.pack('>I',1)
s.sendall(struct.pack('>I',len(body))+body)
s.settimeout(5); print('answer', len(s.recv(100)))`;
      const other = await asOther(['/usr/bin/python3', '-c', script, daemon.socket], '');
      expect(other).toMatch(/answer 0|Connection reset/);
      expect(daemon.log.slice(before)).toContain('"pkcs11-peer-refused","reason":"another-user"');
    } finally {
      chmodSync(daemon.socket, 0o600);
      for (const d of opened) chmodSync(d, 0o700);
    }
  });
});
