/**
 * APDUs and bytes at the card for the jobs that matter on a slow T=0 CPS3 (about 1.1 ms per byte),
 * cpsd against OpenSC's tools doing the same job on the same virtual card, counted by the card itself
 * (sim/icc-process.ts), through the real pcscd + vpcd. Needs pcscd with a vpcd reader
 * (`bash scripts/start-pcscd.sh`) and OpenSC. The first login on a never-seen card is also printed
 * step by step, to show what bounds it.
 *
 *   npm run bench:apdus                      # BENCH_PROFILE=doctor-16 for a card with 16 situations
 */
import { execFile, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Pin } from '../cards/pin.js';
import { openCard } from '../cards/atr-table.js';
import { CpsCard } from '../cards/card.js';
import { MemoryCardCache, readPublicData } from '../cards/public-data.js';
import { holderIdentity } from '../pkcs/holder.js';
import { PcscService, PcscTransport, type PcscEvent } from '../apdu/pcsc/index.js';
import { CPS3_TIMING } from '../sim/cps/faults.js';

const run = promisify(execFile);
const READER = 'Virtual PCD 00 00';
const HOST = process.env.VPCD_HOST ?? '127.0.0.2';
/** doctor-16 has 16 practice situations: a DODF three times as long. */
const PROFILE = process.env.BENCH_PROFILE ?? 'doctor';
const ICC = fileURLToPath(new URL('../sim/icc-process.js', import.meta.url));
const AUTH_ID = 'e828bd080f8025000001ff001002';
const PKCS11 = ['/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so', '/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so', '/usr/lib/opensc-pkcs11.so'].find((p) => existsSync(p)) ?? 'opensc-pkcs11.so';

interface Stats {
  cardApdus: number;
  cardBytes: number;
  cardRsa: number;
}

const child = fork(ICC, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
let nextId = 0;
function call(message: object): Promise<{ stats?: Stats }> {
  const id = ++nextId;
  return new Promise((resolve, reject) => {
    const onMessage = (reply: { id: number; ok: boolean; error?: string; stats?: Stats }): void => {
      if (reply.id !== id) return;
      child.off('message', onMessage);
      if (reply.ok) resolve(reply);
      else reject(new Error(reply.error));
    };
    child.on('message', onMessage);
    child.send({ id, ...message });
  });
}

async function stats(): Promise<Stats> {
  const s = (await call({ op: 'stats' })).stats;
  if (!s) throw new Error('no stats');
  return s;
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

const rows: [string, string, Stats][] = [];

async function measure(service: PcscService, job: string, who: string, body: () => Promise<void>): Promise<void> {
  const inserted = waitEvent(service, 'card-inserted');
  await call({ op: 'insert', host: HOST, port: 35963, profile: PROFILE });
  await inserted;
  const before = await stats();
  await body();
  const after = await stats();
  rows.push([job, who, { cardApdus: after.cardApdus - before.cardApdus, cardBytes: after.cardBytes - before.cardBytes, cardRsa: after.cardRsa - before.cardRsa }]);
  const removed = waitEvent(service, 'card-removed');
  await call({ op: 'remove' });
  await removed;
}

async function withDriver(service: PcscService, fn: (card: CpsCard) => Promise<void>, tap?: (command: Uint8Array, response: Uint8Array) => void): Promise<void> {
  const connection = await service.connect(READER, { share: 'shared', protocols: ['T0', 'T1'] });
  try {
    const atr = service.readers().find((r) => r.name === READER)?.atr ?? new Uint8Array(0);
    const transport = new PcscTransport(connection);
    const tapped = tap
      ? {
          transmit: async (c: Uint8Array): Promise<Uint8Array> => {
            const r = await transport.transmit(c);
            tap(c, r);
            return r;
          },
        }
      : transport;
    await fn(openCard(tapped, atr));
  } finally {
    await connection.disconnect('leave');
  }
}

/** What the cold login does, in the order the daemon does it: identity, then the token. */
async function login(card: CpsCard, cache: MemoryCardCache, digestInfo: Uint8Array): Promise<void> {
  const data = await readPublicData(card, cache, { signCertificate: false });
  holderIdentity({ certificate: data.authCertificate ?? new Uint8Array(0), serial: data.serial, data: data.data });
  await card.verifyPin(new Pin('1234'));
  await card.authenticate(digestInfo);
}

async function main(): Promise<void> {
  const service = new PcscService();
  await service.settled(5000);
  const cache = new MemoryCardCache();
  const loginCache = new MemoryCardCache();
  const work = mkdtempSync(join(tmpdir(), 'cpsd-bench-'));
  const input = join(work, 'digest-info.bin');
  const digestInfo = CpsCard.digestInfo('sha256', createHash('sha256').update('challenge').digest());
  writeFileSync(input, digestInfo);

  await measure(service, 'identity, first read (serial, directories, auth certificate, identity objects)', 'cpsd', () =>
    withDriver(service, async (card) => void (await readPublicData(card, cache, { signCertificate: false }))),
  );
  await measure(service, 'identity, card seen before (cache checked by EF_ACTUA)', 'cpsd', () =>
    withDriver(service, async (card) => void (await readPublicData(card, cache, { signCertificate: false }))),
  );
  await measure(service, 'signing certificate on demand, card seen before (then in its cache entry)', 'cpsd', () =>
    withDriver(service, async (card) => void (await readPublicData(card, cache))),
  );
  await measure(service, 'authentication certificate only', 'cpsd', () =>
    withDriver(service, async (card) => void (await card.certificate('auth'))),
  );
  await measure(service, 'authentication certificate only', 'OpenSC pkcs15-tool --read-certificate', async () => {
    await run('pkcs15-tool', ['--reader', '0', '--read-certificate', AUTH_ID]);
  });
  await measure(service, 'list both certificates', 'cpsd', () =>
    withDriver(service, async (card) => void (await readPublicData(card, new MemoryCardCache(), { labels: [] }))),
  );
  await measure(service, 'list both certificates', 'OpenSC pkcs15-tool --list-certificates', async () => {
    await run('pkcs15-tool', ['--reader', '0', '--list-certificates']);
  });
  await measure(service, 'PIN + authentication signature (DigestInfo)', 'cpsd', () =>
    withDriver(service, async (card) => {
      await card.verifyPin(new Pin('1234'));
      await card.authenticate(digestInfo);
    }),
  );
  await measure(service, 'first login on a never-seen card (identity + token)', 'cpsd', () => withDriver(service, (card) => login(card, loginCache, digestInfo)));
  await measure(service, 'login, card seen before (identity + token)', 'cpsd', () => withDriver(service, (card) => login(card, loginCache, digestInfo)));
  await measure(service, 'PIN + signature with the signing key (1 KiB document, SHA-256 finished on card)', 'cpsd', () =>
    withDriver(service, async (card) => {
      await readPublicData(card, cache);
      await card.verifyPin(new Pin('1234'));
      await card.sign('sha256', { message: new Uint8Array(1024).fill(7) });
    }),
  );
  await measure(service, 'PIN + authentication signature (DigestInfo)', 'OpenSC pkcs11-tool --sign -m RSA-PKCS', async () => {
    await run('pkcs11-tool', ['--module', PKCS11, '--slot-index', '0', '--login', '--pin', '1234', '--sign', '-m', 'RSA-PKCS', '--id', AUTH_ID, '-i', input, '-o', join(work, 'sig11')]);
  });
  await measure(service, 'PIN + authentication signature (DigestInfo)', 'OpenSC pkcs15-crypt --sign', async () => {
    await run('pkcs15-crypt', ['--reader', '0', '--sign', '--pkcs1', '--key', AUTH_ID, '--pin', '1234', '--input', input, '--output', join(work, 'sig')]);
  });

  const modelled = (x: Stats): number => x.cardBytes * (CPS3_TIMING.microsPerByte / 1000) + x.cardRsa * CPS3_TIMING.rsaMillis;
  console.log(`APDUs, bytes and modelled card time at the virtual CPS3 (profile ${PROFILE}), through pcscd + vpcd`);
  console.log(`card time model: ${CPS3_TIMING.microsPerByte} µs per byte on the T=0 link + ${CPS3_TIMING.rsaMillis} ms per RSA-2048 operation`);
  console.log(`${'job'.padEnd(88)}${'by'.padEnd(40)}${'APDUs'.padStart(6)}${'bytes'.padStart(7)}${'RSA'.padStart(4)}${'card ms'.padStart(9)}${'× cpsd'.padStart(8)}`);
  const cpsdTime = new Map<string, number>();
  for (const [job, who, x] of rows) if (who === 'cpsd' && !cpsdTime.has(job.replace(/, card (never seen|seen before).*$/, ''))) cpsdTime.set(job.replace(/, card (never seen|seen before).*$/, ''), modelled(x));
  for (const [job, who, x] of rows) {
    const base = cpsdTime.get(job);
    const ratio = who !== 'cpsd' && base ? `${(modelled(x) / base).toFixed(2)}` : '';
    console.log(`${job.padEnd(88)}${who.padEnd(40)}${String(x.cardApdus).padStart(6)}${String(x.cardBytes).padStart(7)}${String(x.cardRsa).padStart(4)}${Math.round(modelled(x)).toString().padStart(9)}${ratio.padStart(8)}`);
  }
  console.log('(× cpsd: OpenSC modelled card time / cpsd card time for the same job, card never seen before)');

  // What the first login spends its card time on: the same calls readPublicData makes, step by step.
  const steps: [string, Stats][] = [];
  let step: Stats = { cardApdus: 0, cardBytes: 0, cardRsa: 0 };
  const next = (name: string): void => void steps.push([name, (step = { cardApdus: 0, cardBytes: 0, cardRsa: 0 })]);
  const inserted = waitEvent(service, 'card-inserted');
  await call({ op: 'insert', host: HOST, port: 35963, profile: PROFILE });
  await inserted;
  await withDriver(
    service,
    async (card) => {
      next('serial + EF_ACTUA');
      await card.serial();
      await card.actua();
      next('directories (EF.DIR, ODF, CDF, PrKDF, AODF)');
      await card.objects();
      next('authentication certificate');
      await card.certificate('auth');
      next('DODF, as far as the identity objects');
      await card.findDataObjects(['CPS_ID_CARD', 'CPS_INFO_PS']);
      next('identity objects (CPS_ID_CARD, CPS_INFO_PS)');
      for (const label of ['CPS_ID_CARD', 'CPS_INFO_PS']) await card.dataObject(label);
      next('PIN status + VERIFY');
      await card.verifyPin(new Pin('1234'));
      next('SELECT application + MSE + INTERNAL AUTHENTICATE');
      await card.authenticate(digestInfo);
    },
    (c, r) => {
      step.cardApdus++;
      step.cardBytes += c.length + r.length;
      if ((c[1] === 0x88 || c[1] === 0x2a) && r.length > 200) step.cardRsa++; // as the card counts them
    },
  );
  const removed = waitEvent(service, 'card-removed');
  await call({ op: 'remove' });
  await removed;
  console.log('\nfirst login on a never-seen card, step by step (bytes counted at the driver)');
  for (const [name, x] of steps) {
    console.log(`${name.padEnd(88)}${String(x.cardApdus).padStart(6)}${String(x.cardBytes).padStart(7)}${String(x.cardRsa).padStart(4)}${Math.round(modelled(x)).toString().padStart(9)}`);
  }
  await service.close();
  child.disconnect();
  child.kill();
}

await main();
