/**
 * Real OS users for the terminal-server tests (root only): created with useradd, removed with userdel -r,
 * and processes run as them with runuser. A client program they run is plain JavaScript (the users run
 * `node`, not vitest): CLIENT_SCRIPT, written to a file the test gives them.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface OsUser {
  name: string;
  uid: number;
}

export function createUser(name: string): OsUser {
  execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', name], { stdio: 'pipe' });
  return { name, uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim()) };
}

/** Removes the user (and a home, had one been made); true when the account is gone. */
export function removeUser(name: string): boolean {
  try {
    execFileSync('userdel', ['-r', name], { stdio: 'pipe' });
  } catch {
    // no home to remove (exit 12) still removes the account; checked below
  }
  try {
    execFileSync('id', ['-u', name], { stdio: 'pipe' });
    return false;
  } catch {
    return true;
  }
}

/** A long-running process as `user` (its own process group, so that it and runuser end together). */
export function spawnAs(user: OsUser | 'root', args: string[], env: Record<string, string> = {}, cwd?: string): ChildProcess {
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const cmd = user === 'root' ? ['env', ...envArgs, ...args] : ['runuser', '-u', user.name, '--', 'env', ...envArgs, ...args];
  return spawn(cmd[0] ?? 'env', cmd.slice(1), { cwd, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs a program as `user` to its end; its stdout. */
export function runAs(user: OsUser | 'root', args: string[], timeoutMs = 15_000): Promise<string> {
  const child = spawnAs(user, args);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin?.end();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop(child);
      reject(new Error(`timed out: ${args.join(' ')}\n${err}`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`exit ${code}: ${args.join(' ')}\n${err}${out}`));
    });
  });
}

/** SIGTERM to the process group we started; resolves when it has exited. */
export function stop(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (child.exitCode !== null || child.signalCode !== null || pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('close', () => resolve());
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      resolve();
    }
    setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }, 3000).unref();
  });
}

/**
 * The client a user runs: `node client.mjs '<json spec>'`, one JSON line per outcome on stdout.
 * - `{ "rpc": { "port", "host"?, "origin"?, "calls": [{ "method", "params" }] } }`: the WebSocket API;
 *   `{ "answers": [...] }`, or `{ "status", "body" }` when the handshake is refused.
 * - `{ "raw": { "port", "host"?, "preamble"?, "upgrade"?, "path"?, "hostHeader"? } }`: one HTTP request
 *   written by hand (after an optional first line), `{ "status", "body" }`.
 * - `{ "pin": { "port", "origin", "nonce" } }`: auth.authenticate from a page, `{ "url" }` of the PIN
 *   page once asked, then waits until stdin closes.
 */
export const CLIENT_SCRIPT = `
import { createRequire } from 'node:module';
import net from 'node:net';
const require = createRequire(process.env.CPSD_ROOT + '/package.json');
const WebSocket = require('ws');
const spec = JSON.parse(process.argv[2]);
const print = (o) => process.stdout.write(JSON.stringify(o) + '\\n');

function open(port, host, origin) {
  const ws = new WebSocket('ws://' + (host || '127.0.0.1') + ':' + port, origin ? { origin } : {});
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.once('error', (e) => resolve({ error: String(e.code || e.message) }));
  });
}

function call(ws, id, method, params) {
  return new Promise((resolve) => {
    const onMessage = (data) => {
      const m = JSON.parse(String(data));
      if (m.id === id) { ws.off('message', onMessage); resolve(m); }
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params: params || {} }));
  });
}

if (spec.rpc) {
  const r = await open(spec.rpc.port, spec.rpc.host, spec.rpc.origin);
  if (!r.ws) { print(r); process.exit(0); }
  const answers = [];
  let id = 0;
  for (const c of spec.rpc.calls) answers.push(await call(r.ws, ++id, c.method, c.params));
  print({ answers });
  r.ws.close();
} else if (spec.raw) {
  const s = spec.raw;
  const sock = net.connect(s.port, s.host || '127.0.0.1', () => {
    const host = s.hostHeader || '127.0.0.1:' + s.port;
    const head = s.upgrade
      ? 'GET / HTTP/1.1\\r\\nHost: ' + host + '\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'
      : 'GET ' + (s.path || '/') + ' HTTP/1.1\\r\\nHost: ' + host + '\\r\\nConnection: close\\r\\n\\r\\n';
    sock.write((s.preamble || '') + head);
  });
  let text = '';
  sock.on('data', (d) => {
    text += d;
    if (s.upgrade && /^HTTP\\/1.1 101/.test(text)) sock.destroy();
  });
  const done = () => {
    const status = Number(/^HTTP\\/1.1 (\\d+)/.exec(text)?.[1] || 0);
    print({ status, body: text.split('\\r\\n\\r\\n').slice(1).join('\\r\\n\\r\\n') });
  };
  sock.on('close', done);
  sock.on('error', (e) => print({ error: String(e.code) }));
} else if (spec.pin) {
  const r = await open(spec.pin.port, '127.0.0.1', spec.pin.origin);
  if (!r.ws) { print(r); process.exit(0); }
  r.ws.on('message', (data) => {
    const m = JSON.parse(String(data));
    if (m.method === 'pin.required') print({ url: m.params.url });
  });
  r.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'auth.authenticate', params: { nonce: spec.pin.nonce } }));
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}
`;

/**
 * Lets other users reach `dir` (the checkout, wherever CI cloned it: often under a 0700 temporary or home
 * directory) by adding search permission (o+x, not read) to each ancestor that lacks it; returns the undo.
 */
export function traversable(dir: string): () => void {
  const changed: { path: string; mode: number }[] = [];
  for (let path = resolve(dir); ; path = dirname(path)) {
    const mode = statSync(path).mode & 0o7777;
    if ((mode & 0o001) === 0) {
      chmodSync(path, mode | 0o001);
      changed.push({ path, mode });
    }
    if (path === dirname(path)) break;
  }
  return () => {
    for (const { path, mode } of changed.reverse()) chmodSync(path, mode);
  };
}
