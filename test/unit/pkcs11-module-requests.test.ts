/**
 * What reaches the daemon, and the card, through the real libcpsd-pkcs11.so: a plain C application
 * (bench/c/p11sign.c, dlopen + Cryptoki calls) against the daemon's socket with the in-process virtual
 * card. Requests are counted from the daemon's own request log, APDUs by the card.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessBackend } from '../../cards/backends.js';
import { MemoryCardCache } from '../../cards/public-data.js';
import { CardSessions } from '../../cards/session.js';
import { Logger } from '../../daemon/log.js';
import { OP, Pkcs11Server } from '../../pkcs11/server.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cpsd-module-requests-'));
const card = fixtureCard('doctor');
const requests: number[] = [];
let sessions: CardSessions;
let server: Pkcs11Server;
const socketPath = join(dir, 'run', 'cpsd', 'pkcs11.sock');
const client = join(dir, 'p11sign');
const module = join(dir, 'module', 'libcpsd-pkcs11.so');

beforeAll(async () => {
  // A copy of the module's source, so that parallel builds never race on the tree's own outputs.
  cpSync(join(ROOT, 'pkcs11/module'), join(dir, 'module'), { recursive: true, filter: (p) => !/\.(so|dll|dylib|o)$/.test(p) });
  const built = spawnSync('make', ['-s', '-C', join(dir, 'module'), 'all'], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(built.stderr);
  execFileSync('cc', ['-std=c99', '-Wall', '-Wextra', '-Werror', '-I', join(ROOT, 'pkcs11/module'), '-o', client, join(ROOT, 'bench/c/p11sign.c'), '-ldl']);
  sessions = new CardSessions(new InProcessBackend(card));
  const log = new Logger('debug', (line) => {
    const op = /"pkcs11-request".*"op":(\d+)/.exec(line)?.[1];
    if (op) requests.push(Number(op));
  });
  server = new Pkcs11Server({ sessions, cache: new MemoryCardCache(), log, socketPath });
  await server.listen();
}, 60_000);

afterAll(async () => {
  await server?.close();
  await sessions?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the application; at each of its phases, the daemon requests and card APDUs since the last one. */
async function phases(signatures: number, passes: number): Promise<Map<string, { ops: number[]; apdus: number }>> {
  const child = spawn(client, [module, '1234', String(signatures), String(passes)], { env: { ...process.env, CPSD_PKCS11_SOCKET: socketPath }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const out = new Map<string, { ops: number[]; apdus: number }>();
  let apdus = card.commands;
  requests.length = 0;
  for await (const line of createInterface({ input: child.stdout })) {
    const [word, name] = line.split(' ');
    if (word !== 'phase' || !name) continue;
    out.set(name, { ops: requests.splice(0), apdus: card.commands - apdus });
    apdus = card.commands;
    child.stdin.write('\n');
  }
  const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', r)));
  expect(code, stderr).toBe(0);
  return out;
}

describe('libcpsd-pkcs11.so ↔ daemon', () => {
  it('reads every attribute of every object without a request to the daemon once the token is known', async () => {
    const p = await phases(1, 5);
    expect(p.get('snapshot')?.ops).toContain(OP.TOKEN);
    expect(p.get('attributes')).toEqual({ ops: [], apdus: 0 });
  });

  it('signs with one SIGN request and 3 APDUs per signature: no token snapshot asked again between signatures', async () => {
    const p = await phases(10, 0);
    const signed = p.get('signed');
    expect(signed?.ops.filter((op) => op === OP.SIGN)).toHaveLength(10);
    // One TOKEN after C_Login (the PIN counter flags may have changed), none per signature.
    expect(signed?.ops.filter((op) => op === OP.TOKEN).length).toBeLessThanOrEqual(1);
    expect(signed?.apdus).toBe(30);
  });
});
