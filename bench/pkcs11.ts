/**
 * The PKCS#11 module (docs/pkcs11.md) measured three ways:
 *
 * 1. Overhead of C_Sign beyond the card, with the in-process virtual CPS3 (its own time measured per
 *    APDU and subtracted): the daemon's share (a raw socket client in this process) and end to end
 *    through libcpsd-pkcs11.so, from a C application (bench/c/p11sign.c) timing C_SignInit + C_Sign.
 * 2. Requests that reach the daemon while the application reads every attribute of every object
 *    (C_FindObjects + C_GetAttributeValue), counted from the daemon's own request log.
 * 3. Through the real pcscd + vpcd (skipped with BENCH_PCSC=0): APDUs, bytes and modelled card time of
 *    loading the token (pkcs11-tool -O, NSS certutil -L -h all) and of a TLS 1.2 client-authentication
 *    handshake (NSS tstclnt against selfserv -r -r), libcpsd-pkcs11.so beside OpenSC's opensc-pkcs11.so
 *    (with and without its file cache) on the same virtual CPS3, counted by the card itself.
 *
 *   npm run bench:pkcs11                       # BENCH_SIGNATURES=2000; BENCH_PROFILE=updated: a card with EF_ACTUA
 *   flock -o /tmp/cpsd-pcscd.lock bash -c 'bash scripts/start-pcscd.sh >/dev/null; VPCD_HOST=127.0.0.2 npm run bench:pkcs11'
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { InProcessBackend } from '../cards/backends.js';
import { MemoryCardCache } from '../cards/public-data.js';
import { CardSessions } from '../cards/session.js';
import { Logger } from '../daemon/log.js';
import { CKM, CKO, CKA, CKU_USER } from '../pkcs11/constants.js';
import { OP, PROTOCOL_VERSION, Pkcs11Server } from '../pkcs11/server.js';
import { Fields, FrameReader, TAG, field, frame, u32, type Field } from '../pkcs11/wire.js';
import { fixtureCard } from '../sim/cps/fixtures.js';
import { CPS3_TIMING } from '../sim/cps/faults.js';
import { PcscService, type PcscEvent } from '../apdu/pcsc/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODULE = join(ROOT, 'pkcs11/module/libcpsd-pkcs11.so');
const CLI = join(ROOT, 'dist/cli/cpsd.js');
const ICC = join(ROOT, 'dist/sim/icc-process.js');
const SIGNATURES = Number(process.env.BENCH_SIGNATURES ?? 2000);
const PIN = '1234';
/** The virtual card's fixture profile for the pcscd part (`updated` has an EF_ACTUA, `doctor` none). */
const PROFILE = process.env.BENCH_PROFILE ?? 'doctor';
const READER = 'Virtual PCD 00 00';
const HOST = process.env.VPCD_HOST ?? '127.0.0.2';
const OPENSC = ['/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so', '/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so', '/usr/lib/opensc-pkcs11.so'].find((p) => existsSync(p));
const work = mkdtempSync(join(tmpdir(), 'cpsd-bench-p11-'));

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const ms = (x: number): string => `${x.toFixed(3)} ms`;

// ------------------------------------------------------------------ 1 + 2: in-process card

/** A minimal client of the module ↔ daemon protocol (docs/pkcs11-protocol.md), one request at a time. */
class Wire {
  readonly #reader = new FrameReader();
  readonly #waiting: Array<(f: Fields) => void> = [];
  #id = 0;
  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const body of this.#reader.push(chunk)) this.#waiting.shift()?.(Fields.of(body));
    });
  }
  static async open(path: string): Promise<Wire> {
    const socket = createConnection(path);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const w = new Wire(socket);
    await w.call(OP.HELLO, [field(TAG.VERSION, u32(PROTOCOL_VERSION)), field(TAG.APP, { utf8: 'bench' })]);
    return w;
  }
  async call(op: number, fields: Field[] = []): Promise<Fields> {
    const answer = new Promise<Fields>((resolve) => this.#waiting.push(resolve));
    this.socket.write(frame([field(TAG.OP, u32(op)), field(TAG.ID, u32(++this.#id)), ...fields]));
    const a = await answer;
    if (a.needU32(TAG.RV) !== 0) throw new Error(`operation ${op}: CKR 0x${a.needU32(TAG.RV).toString(16)} ${a.utf8(TAG.MESSAGE) ?? ''}`);
    return a;
  }
}

interface InProcess {
  socketPath: string;
  /** Card time of each signature (the APDUs since the previous one, up to its INTERNAL AUTHENTICATE), ms. */
  cardPerSignature: number[];
  /** Daemon requests by operation since the last reset. */
  requests: Map<number, number>;
  resetCard(): void;
  close(): Promise<void>;
}

async function inProcessDaemon(): Promise<InProcess> {
  const card = fixtureCard('doctor');
  const cardPerSignature: number[] = [];
  let cardNs = 0n;
  const transmit = card.transmit.bind(card);
  // The card's own time, APDU by APDU: what is subtracted from the signature times.
  card.transmit = (apdu: Uint8Array): Uint8Array => {
    const t = process.hrtime.bigint();
    const r = transmit(apdu);
    cardNs += process.hrtime.bigint() - t;
    if (apdu[1] === 0x88) {
      cardPerSignature.push(Number(cardNs) / 1e6);
      cardNs = 0n;
    }
    return r;
  };
  const requests = new Map<number, number>();
  const log = new Logger('debug', (line) => {
    if (!line.includes('pkcs11-request')) return;
    const op = Number(/"op":(\d+)/.exec(line)?.[1] ?? -1);
    requests.set(op, (requests.get(op) ?? 0) + 1);
  });
  const sessions = new CardSessions(new InProcessBackend(card));
  const socketPath = join(work, 'run', 'cpsd', 'pkcs11.sock');
  const server = new Pkcs11Server({ sessions, cache: new MemoryCardCache(), log, socketPath });
  await server.listen();
  return {
    socketPath,
    cardPerSignature,
    requests,
    resetCard: () => void (cardNs = 0n),
    close: async () => {
      await server.close();
      await sessions.close();
    },
  };
}

/** The daemon's share: a raw protocol client in this process, card time subtracted. */
async function daemonShare(d: InProcess): Promise<number[]> {
  const w = await Wire.open(d.socketPath);
  const slots = await w.call(OP.SLOTS);
  const slot = Fields.of(slots.all(TAG.SLOT)[0] as Buffer);
  const target = [field(TAG.READER, { utf8: slot.needUtf8(TAG.READER) }), field(TAG.GENERATION, u32(slot.needU32(TAG.GENERATION)))];
  const token = Fields.of((await w.call(OP.TOKEN, target)).bytes(TAG.TOKEN) as Buffer);
  const handle = token
    .all(TAG.OBJECT)
    .map((o) => Fields.of(o))
    .map((o) => ({ handle: o.needU32(TAG.HANDLE), attrs: new Map(o.all(TAG.ATTR).map((a) => Fields.of(a)).map((a) => [a.needU32(TAG.ATTR_TYPE), a.bytes(TAG.ATTR_VALUE) as Buffer])) }))
    .find((o) => o.attrs.get(CKA.CLASS)?.readUInt32BE(0) === CKO.PRIVATE_KEY && o.attrs.get(CKA.ALWAYS_AUTHENTICATE)?.[0] === 0)?.handle;
  if (handle === undefined) throw new Error('no authentication key in the token');
  await w.call(OP.LOGIN, [...target, field(TAG.USER_TYPE, u32(CKU_USER)), field(TAG.PIN, Buffer.from(PIN))]);
  const sign = [...target, field(TAG.HANDLE, u32(handle)), field(TAG.MECH_TYPE, u32(CKM.SHA256_RSA_PKCS))];
  for (let i = 0; i < 50; i++) await w.call(OP.SIGN, [...sign, field(TAG.DATA, Buffer.alloc(64, i))]); // warm-up
  d.resetCard();
  d.cardPerSignature.length = 0;
  const times: number[] = [];
  for (let i = 0; i < SIGNATURES; i++) {
    const t = process.hrtime.bigint();
    await w.call(OP.SIGN, [...sign, field(TAG.DATA, Buffer.alloc(64, i))]);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  w.socket.destroy();
  return times.map((t, i) => t - (d.cardPerSignature[i] ?? NaN));
}

function buildClient(): string {
  const binary = join(work, 'p11sign');
  execFileSync('cc', ['-O2', '-std=c99', '-Wall', '-Wextra', '-I', join(ROOT, 'pkcs11/module'), '-o', binary, join(ROOT, 'bench/c/p11sign.c'), '-ldl']);
  return binary;
}

interface ClientRun {
  /** Requests reaching the daemon per phase (snapshot, attributes, login, signed). */
  phases: Map<string, Map<number, number>>;
  values: number[];
  sign: number[];
}

/** Runs bench/c/p11sign against the module, snapshotting the daemon's request counts at each phase. */
async function runClient(binary: string, d: InProcess, signatures: number, passes: number): Promise<ClientRun> {
  const child = spawn(binary, [MODULE, PIN, String(signatures), String(passes)], { env: { ...process.env, CPSD_PKCS11_SOCKET: d.socketPath }, stdio: ['pipe', 'pipe', 'inherit'] });
  const run: ClientRun = { phases: new Map(), values: [], sign: [] };
  d.requests.clear();
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const [word, ...rest] = line.split(' ');
    if (word === 'values') run.values.push(Number(rest[0]));
    if (word === 'sign_ns') run.sign = rest.map((x) => Number(x) / 1e6);
    if (word === 'phase') {
      run.phases.set(rest[0] ?? '', new Map(d.requests));
      d.requests.clear();
      if (rest[0] === 'login') {
        d.resetCard();
        d.cardPerSignature.length = 0;
      }
      child.stdin.write('\n');
    }
  }
  const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', r)));
  if (code !== 0) throw new Error(`p11sign exited with ${code}`);
  return run;
}

const OP_NAMES = new Map<number, string>(Object.entries(OP).map(([k, v]) => [v, k]));
const describe = (m: Map<number, number> | undefined): string =>
  [...(m ?? new Map<number, number>()).entries()].map(([op, n]) => `${OP_NAMES.get(op) ?? op}×${n}`).join(' ') || 'none';

async function inProcessPart(): Promise<void> {
  const d = await inProcessDaemon();
  try {
    const share = (await daemonShare(d)).sort((a, b) => a - b);
    const binary = buildClient();
    // Warm-up run (JIT, module, snapshot), then the measured one.
    await runClient(binary, d, 50, 1);
    const passes = 100;
    const run = await runClient(binary, d, SIGNATURES, passes);
    const card = d.cardPerSignature.slice(0, run.sign.length);
    if (card.length !== run.sign.length) throw new Error(`${card.length} card signatures for ${run.sign.length} C_Sign`);
    const e2e = run.sign.map((t, i) => t - (card[i] ?? NaN)).sort((a, b) => a - b);
    const cardSorted = [...card].sort((a, b) => a - b);
    console.log(`PKCS#11: C_Sign overhead beyond the card (in-process virtual CPS3, RSA-2048 in software; ${SIGNATURES} signatures, CKM_SHA256_RSA_PKCS)`);
    // Tails depend on what else the machine runs: say how busy it was.
    console.log(`${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    const row = (name: string, t: readonly number[]): string[] => [name, ...[50, 90, 99].map((p) => ms(percentile(t, p)))];
    const rows = [
      row('card time per signature (3 APDUs; subtracted below)', cardSorted),
      row("daemon's share (socket client in the daemon's process, minus card)", share),
      row('end to end: C application → libcpsd-pkcs11.so → daemon, minus card', e2e),
    ];
    console.log(`${'measure'.padEnd(72)}${'p50'.padStart(12)}${'p90'.padStart(12)}${'p99'.padStart(12)}`);
    for (const [name, ...p] of rows) console.log(`${(name ?? '').padEnd(72)}${p.map((x) => x.padStart(12)).join('')}`);
    console.log('\nPKCS#11: requests reaching the daemon (frames on the socket), by phase of the C application');
    console.log(`${'phase'.padEnd(72)}requests`);
    console.log(`${'C_Initialize … C_OpenSession + first read of every attribute (snapshot)'.padEnd(72)}${describe(run.phases.get('snapshot'))}`);
    console.log(`${`${passes} × (C_FindObjects on all + C_GetAttributeValue ×2 on ${(run.values[1] ?? 0) / passes} attributes)`.padEnd(72)}${describe(run.phases.get('attributes'))}`);
    console.log(`${'C_Login'.padEnd(72)}${describe(run.phases.get('login'))}`);
    console.log(`${`${SIGNATURES} × (C_SignInit + C_Sign)`.padEnd(72)}${describe(run.phases.get('signed'))}`);
  } finally {
    await d.close();
  }
}

// ------------------------------------------------------------------ 3: through pcscd + vpcd

interface Stats {
  cardApdus: number;
  cardBytes: number;
  cardRsa: number;
}

const modelled = (x: Stats): number => (x.cardBytes * CPS3_TIMING.microsPerByte) / 1e6 + (x.cardRsa * CPS3_TIMING.rsaMillis) / 1000;

class Icc {
  readonly #child: ChildProcess = fork(ICC, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  #next = 0;
  call(message: object): Promise<{ stats?: Stats }> {
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      const onMessage = (reply: { id: number; ok: boolean; error?: string; stats?: Stats }): void => {
        if (reply.id !== id) return;
        this.#child.off('message', onMessage);
        if (reply.ok) resolve(reply);
        else reject(new Error(reply.error));
      };
      this.#child.on('message', onMessage);
      this.#child.send({ id, ...message });
    });
  }
  close(): void {
    this.#child.disconnect();
    this.#child.kill();
  }
}

function waitEvent(service: PcscService, type: PcscEvent['type']): Promise<void> {
  return new Promise((resolve) => {
    const off = service.subscribe((e) => {
      if (e.type === type && 'reader' in e && e.reader === READER) {
        off();
        resolve();
      }
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function sh(args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(args[0] as string, args.slice(1), { env, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
}

/** Runs a command to its end, whatever its exit code (pkcs11-tool -O may warn), and returns its output. */
function tool(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(args[0] as string, args.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill(), 60_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

function nssDb(dir: string): string {
  mkdirSync(dir, { recursive: true });
  sh(['certutil', '-N', '-d', `sql:${dir}`, '--empty-password']);
  return `sql:${dir}`;
}

/** selfserv's database: its own certificate, the test IGC-Santé CAs trusted for client certificates. */
function serverDb(dir: string): string {
  const db = nssDb(join(dir, 'db'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  sh(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-keyout', key, '-out', cert]);
  sh(['openssl', 'pkcs12', '-export', '-inkey', key, '-in', cert, '-name', 'server', '-passout', 'pass:', '-out', join(dir, 's.p12')]);
  sh(['pk12util', '-i', join(dir, 's.p12'), '-d', db, '-W', '']);
  sh(['certutil', '-A', '-d', db, '-n', 'root', '-t', 'CT,,', '-i', join(ROOT, 'fixtures/pki/root.der')]);
  sh(['certutil', '-A', '-d', db, '-n', 'intermediate', '-t', ',,', '-i', join(ROOT, 'fixtures/pki/intermediate.der')]);
  return db;
}

interface Peer {
  name: string;
  module: string;
  env: NodeJS.ProcessEnv;
  db: string;
}

async function pcscPart(): Promise<void> {
  if (!existsSync(ICC)) throw new Error(`${ICC} missing: npm run build`);
  const service = new PcscService();
  await service.settled(5000);
  if (!service.readers().some((r) => r.name === READER)) {
    await service.close();
    throw new Error(`no reader "${READER}": start pcscd with vpcd (bash scripts/start-pcscd.sh), or BENCH_PCSC=0`);
  }
  const icc = new Icc();
  const rows: [string, string, string, Stats][] = [];
  const insert = async (): Promise<void> => {
    const inserted = waitEvent(service, 'card-inserted');
    await icc.call({ op: 'insert', host: HOST, port: 35963, profile: PROFILE });
    await inserted;
  };
  const remove = async (): Promise<void> => {
    const removed = waitEvent(service, 'card-removed');
    await icc.call({ op: 'remove' });
    await removed;
  };
  /** Everything the card saw from its insertion to the end of `body` (a daemon's own reads included). */
  const measure = async (job: string, who: string, state: string, body: () => Promise<void>): Promise<void> => {
    await insert();
    await body();
    await new Promise((r) => setTimeout(r, 300));
    const s = (await icc.call({ op: 'stats' })).stats;
    if (!s) throw new Error('no stats');
    rows.push([job, who, state, s]);
    await remove();
  };

  const serverPort = await freePort();
  const selfserv = spawn('selfserv', ['-d', serverDb(join(work, 'server')), '-n', 'server', '-p', String(serverPort), '-r', '-r', '-V', 'tls1.2:tls1.2', '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let serverOut = '';
  selfserv.stdout?.on('data', (d: Buffer) => (serverOut += d.toString()));
  selfserv.stderr?.on('data', (d: Buffer) => (serverOut += d.toString()));
  await new Promise((r) => setTimeout(r, 1000));

  /** tstclnt until selfserv validated the client certificate (or tstclnt ended); throws if it did not. */
  const handshake = async (peer: Peer, nick: string): Promise<void> => {
    const from = serverOut.length;
    const child = spawn('tstclnt', ['-h', '127.0.0.1', '-p', String(serverPort), '-d', peer.db, '-n', nick, '-w', PIN, '-V', 'tls1.2:tls1.2', '-o', '-Q', '-v'], { env: peer.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    let done = false;
    child.once('exit', () => (done = true));
    const until = Date.now() + 30_000;
    while (!done && Date.now() < until && !serverOut.slice(from).includes('Certificate Validated')) await new Promise((r) => setTimeout(r, 50));
    child.kill();
    if (!serverOut.slice(from).includes('Certificate Validated')) throw new Error(`${peer.name}: no client authentication\n${out}\n${serverOut.slice(from)}`);
  };

  const nickname = (peer: Peer): string => {
    const list = sh(['certutil', '-L', '-h', 'all', '-d', peer.db], peer.env);
    const line = list.split('\n').find((l) => /AUT/i.test(l) && l.includes(':'));
    if (!line) throw new Error(`${peer.name}: no authentication certificate in\n${list}`);
    return (line.match(/^(.*?)\s+[uCcTPp,]*$/)?.[1] ?? line).trim();
  };

  const JOBS = ['token load (pkcs11-tool -O)', 'token load (certutil -L -h all)', 'TLS 1.2 client authentication (tstclnt)'] as const;
  /** Runs a listing; a count of APDUs means nothing unless the tool really saw the certificates. */
  const listing = async (peer: Peer, args: string[], expected: RegExp): Promise<void> => {
    const out = await tool(args, peer.env);
    if (!expected.test(out)) throw new Error(`${peer.name}: ${args[0]} did not list the certificates:\n${out}`);
  };
  const job = (peer: Peer, which: (typeof JOBS)[number], nick: string): Promise<void> =>
    which === JOBS[0]
      ? listing(peer, ['pkcs11-tool', '--module', peer.module, '-O'], /Certificate Object[\s\S]*Certificate Object/)
      : which === JOBS[1]
        ? listing(peer, ['certutil', '-L', '-h', 'all', '-d', peer.db], /:.*u,u,u[\s\S]*:.*u,u,u/)
        : handshake(peer, nick);
  /** The certificate's nickname, from a run that also makes the card "seen before" for a cache. */
  const warm = async (peer: Peer): Promise<string> => {
    await insert();
    const nick = nickname(peer);
    await remove();
    return nick;
  };

  // cpsd: the daemon as a process on pcscd; its cache (what makes a card "seen before") in a folder of its own.
  const socket = join(work, 'cpsd', 'run', 'cpsd', 'pkcs11.sock');
  const cpsdEnv = { ...process.env, CPSD_PKCS11_SOCKET: socket };
  const cpsdDb = nssDb(join(work, 'nss-cpsd'));
  sh(['modutil', '-dbdir', cpsdDb, '-add', 'cpsd', '-libfile', MODULE, '-force'], cpsdEnv);
  const cpsd: Peer = { name: 'cpsd libcpsd-pkcs11.so', module: MODULE, env: cpsdEnv, db: cpsdDb };
  let caches = 0;
  const withDaemon = async (body: () => Promise<void>): Promise<void> => {
    const daemon = spawn(process.execPath, [CLI, 'serve', '--port', String(await freePort()), '--config', join(work, 'none.json')], {
      env: { ...cpsdEnv, CPSD_CACHE_DIR: join(work, 'cpsd', `cache-${++caches}`) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    daemon.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    daemon.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    try {
      for (let i = 0; i < 300 && !log.includes('pkcs11-listening'); i++) await new Promise((r) => setTimeout(r, 50));
      if (!log.includes('pkcs11-listening')) throw new Error(`cpsd serve did not start:\n${log}`);
      await body();
    } finally {
      daemon.kill('SIGTERM');
      if (daemon.exitCode === null) await new Promise((r) => daemon.once('exit', r));
    }
  };
  let cpsdNick = '';
  await withDaemon(async () => {
    cpsdNick = await warm(cpsd);
    for (const which of JOBS) await measure(which, cpsd.name, 'seen before', () => job(cpsd, which, cpsdNick));
  });
  // A never-seen card: a daemon with an empty cache for each job.
  for (const which of JOBS) await withDaemon(() => measure(which, cpsd.name, 'never seen', () => job(cpsd, which, cpsdNick)));

  if (OPENSC) {
    // OpenSC without a daemon in between: cpsd is stopped, nothing else touches the card.
    for (const caching of ['no', 'public'] as const) {
      const conf = join(work, `opensc-${caching}.conf`);
      const cacheDir = join(work, `opensc-cache-${caching}`);
      writeFileSync(conf, `app default {\n  framework pkcs15 {\n    use_file_caching = ${caching};\n    file_cache_dir = ${cacheDir};\n  }\n}\n`);
      const env = { ...process.env, OPENSC_CONF: conf };
      const db = nssDb(join(work, `nss-opensc-${caching}`));
      sh(['modutil', '-dbdir', db, '-add', 'opensc', '-libfile', OPENSC, '-force'], env);
      const peer: Peer = { name: `OpenSC opensc-pkcs11.so, use_file_caching = ${caching}`, module: OPENSC, env, db };
      const nick = await warm(peer);
      for (const which of JOBS) await measure(which, peer.name, caching === 'no' ? 'any (no cache)' : 'seen before', () => job(peer, which, nick));
    }
  }
  selfserv.kill();
  icc.close();
  await service.close();

  console.log(`\nPKCS#11: APDUs, bytes and modelled card time at the virtual CPS3 (profile ${PROFILE}), through pcscd + vpcd, counted by the card from its insertion`);
  console.log(`card time model: ${CPS3_TIMING.microsPerByte} µs per byte on the T=0 link + ${CPS3_TIMING.rsaMillis} ms per RSA-2048 operation`);
  console.log(`${'job'.padEnd(42)}${'by'.padEnd(52)}${'card'.padEnd(16)}${'APDUs'.padStart(6)}${'bytes'.padStart(7)}${'RSA'.padStart(4)}${'card s'.padStart(8)}${'÷ seen'.padStart(8)}${'÷ never'.padStart(8)}`);
  const cpsdTime = (which: string, state: string): number | undefined => {
    const r = rows.find(([j, w, st]) => j === which && w === cpsd.name && st === state);
    return r ? modelled(r[3]) : undefined;
  };
  for (const [which, who, state, x] of rows) {
    const ratio = (st: string): string => {
      const b = cpsdTime(which, st);
      return who !== cpsd.name && b ? (modelled(x) / b).toFixed(1) : '';
    };
    console.log(`${which.padEnd(42)}${who.padEnd(52)}${state.padEnd(16)}${String(x.cardApdus).padStart(6)}${String(x.cardBytes).padStart(7)}${String(x.cardRsa).padStart(4)}${modelled(x).toFixed(2).padStart(8)}${ratio('seen before').padStart(8)}${ratio('never seen').padStart(8)}`);
  }
  console.log('(÷ seen / ÷ never: card time ÷ cpsd\'s for the same job on a card seen before / never seen)');
}

try {
  await inProcessPart();
  if (process.env.BENCH_PCSC === '0') console.log('\n(pcscd part skipped: BENCH_PCSC=0)');
  else await pcscPart();
} finally {
  rmSync(work, { recursive: true, force: true });
}
