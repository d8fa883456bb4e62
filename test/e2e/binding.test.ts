/**
 * The native PC/SC binding under stress, whichever one runs (CPSD_PCSC_BINDING; vitest runs this file
 * once per binding): the card pulled while APDUs stream, pcscd killed while APDUs stream, every
 * disposition; every call settles with a result or a typed error, the event loop never stops turning
 * (a native deadlock would), and the longest event-loop stall is printed for docs/performance.md.
 * CPSD_PULLS and CPSD_RESTARTS raise the rounds (2 each by default).
 */
import { execFile } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CommandApdu } from '../../apdu/command.js';
import { toHex } from '../../core/bytes.js';
import { DEFAULT_PCSC_BINDING, PcscError, PcscService, bindingFromEnvironment, bindingVersion, type PcscConnection } from '../../apdu/pcsc/index.js';
import { TestCard } from '../../sim/test-card.js';
import { nextEvent } from '../helpers/events.js';
import { IccProcess } from '../helpers/icc.js';
import { VPCD_READER, ensurePcscd, killPcscd, startAgain } from '../helpers/pcscd.js';

const PULLS = Number(process.env.CPSD_PULLS ?? 2);
const RESTARTS = Number(process.env.CPSD_RESTARTS ?? 2);
const CLI = fileURLToPath(new URL('../../dist/cli/cpsd.js', import.meta.url));
const BINDING = bindingFromEnvironment() ?? DEFAULT_PCSC_BINDING;
const select = new CommandApdu({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data: TestCard.AID }).encode();

let service: PcscService;
let icc: IccProcess;
const stalls: Record<string, number> = {};

/** Runs `fn` and records the longest event-loop stall during it (ms); fails if the loop stops for 5 s. */
async function watched<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  let last = Date.now();
  let gap = 0;
  const beat = setInterval(() => {
    gap = Math.max(gap, Date.now() - last);
    last = Date.now();
  }, 10);
  try {
    return await fn();
  } finally {
    clearInterval(beat);
    histogram.disable();
    stalls[label] = Math.max(stalls[label] ?? 0, histogram.max / 1e6);
    expect(gap, `event loop stopped for ${gap} ms during ${label}`).toBeLessThan(5000);
  }
}

/**
 * Sends APDUs back to back until one fails; returns how many passed, how many came back without a
 * status word (vpcd answers an APDU the card dropped by leaving with an empty response), and the failure.
 */
async function stream(connection: PcscConnection): Promise<{ ok: number; empty: number; error: unknown }> {
  let ok = 0;
  let empty = 0;
  for (;;) {
    try {
      const response = toHex(await connection.transmit(select));
      if (response === '9000') ok++;
      else if (response === '') empty++;
      else throw new Error(`unexpected response ${response}`);
    } catch (error) {
      return { ok, empty, error };
    }
  }
}

const open = new Set<PcscConnection>();
async function connect(share: 'shared' | 'exclusive' = 'shared'): Promise<PcscConnection> {
  const connection = await service.connect(VPCD_READER, { share });
  open.add(connection);
  return connection;
}

async function insert(): Promise<void> {
  const inserted = nextEvent(service, 'card-inserted', (e) => e.reader === VPCD_READER);
  await icc.insert();
  await inserted;
}

beforeAll(async () => {
  await ensurePcscd();
  service = new PcscService({ initialRetryMs: 50, maxRetryMs: 500 });
  await service.settled(5000);
  icc = new IccProcess();
});

afterEach(async () => {
  // After a failure: nothing held, no card, pcscd up, for the next test.
  for (const connection of open) await connection.disconnect();
  open.clear();
  await ensurePcscd();
  await icc.remove();
  await service.settled(5000).catch(() => undefined);
});

afterAll(async () => {
  console.log(`[${BINDING}] longest event-loop stall (ms): ${JSON.stringify(Object.fromEntries(Object.entries(stalls).map(([k, v]) => [k, Math.round(v)])))}`);
  icc?.close();
  await service?.close();
  await ensurePcscd();
});

describe(`the ${BINDING} binding`, () => {
  it('is the one CPSD_PCSC_BINDING names, and cpsd doctor says so', async () => {
    expect(service.binding).toBe(BINDING);
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'doctor', '--json'], { env: { ...process.env, LANG: 'C' } }).catch(
      (e: { stdout: string }) => e, // doctor exits non-zero when a check fails (no card here)
    );
    expect((JSON.parse(stdout) as { pcscBinding: unknown }).pcscBinding).toEqual({ name: BINDING, version: bindingVersion(BINDING) });
    const { stdout: screen } = await promisify(execFile)(process.execPath, [CLI, 'doctor'], { env: { ...process.env, LANG: 'C' } }).catch((e: { stdout: string }) => e);
    expect(screen).toMatch(new RegExp(`PC/SC binding +${BINDING} \\d+\\.\\d+\\.\\d+`));
  });

  it(`survives ${PULLS} card pulls in the middle of streaming APDUs`, async () => {
    for (let round = 0; round < PULLS; round++) {
      await insert();
      const connection = await connect();
      const removed = nextEvent(service, 'card-removed', (e) => e.reader === VPCD_READER);
      const result = await watched('pull', async () => {
        const traffic = stream(connection);
        await new Promise((resolve) => setTimeout(resolve, 50 + 37 * round));
        await icc.remove();
        const outcome = await traffic;
        await removed;
        return outcome;
      });
      expect(result.ok).toBeGreaterThan(0);
      expect(result.empty).toBeLessThanOrEqual(1);
      expect(result.error).toBeInstanceOf(PcscError);
      // Pulled between two APDUs: the card is gone. Pulled during one: pcscd says the transfer failed
      // (SCARD_E_NOT_TRANSACTED, both bindings alike), and the next APDU says the card is gone.
      const { code, pcscName } = result.error as PcscError;
      expect(code === 'CARD_ABSENT' || pcscName === 'SCARD_E_NOT_TRANSACTED', `${code} ${pcscName}`).toBe(true);
      if (code !== 'CARD_ABSENT') await expect(connection.transmit(select)).rejects.toMatchObject({ code: 'CARD_ABSENT' });
      await watched('disconnect after pull', () => connection.disconnect('reset'));
      await insert();
      const again = await connect();
      expect(toHex(await again.transmit(select))).toBe('9000');
      await again.disconnect();
      const gone = nextEvent(service, 'card-removed', (e) => e.reader === VPCD_READER);
      await icc.remove();
      await gone;
    }
  }, 30_000 + 3000 * PULLS);

  it('disconnects with every disposition without stalling the event loop', async () => {
    await insert();
    for (const disposition of ['leave', 'reset', 'unpower', 'leave'] as const) {
      const connection = await connect('exclusive');
      expect(toHex(await connection.transmit(select))).toBe('9000');
      await watched(`disconnect ${disposition}`, () => connection.disconnect(disposition));
    }
    const gone = nextEvent(service, 'card-removed', (e) => e.reader === VPCD_READER);
    await icc.remove();
    await gone;
  });

  it(`survives ${RESTARTS} kills of pcscd in the middle of streaming APDUs`, async () => {
    for (let round = 0; round < RESTARTS; round++) {
      await insert();
      const connection = await connect();
      const down = nextEvent(service, 'service-down');
      const result = await watched('pcscd killed', async () => {
        const traffic = stream(connection);
        await new Promise((resolve) => setTimeout(resolve, 50));
        await killPcscd();
        const outcome = await traffic;
        await down;
        return outcome;
      });
      expect(result.ok).toBeGreaterThan(0);
      expect(result.error).toBeInstanceOf(PcscError);
      await expect(connection.transmit(select)).rejects.toBeInstanceOf(PcscError);
      await connection.disconnect();
      await icc.remove();

      const readerBack = nextEvent(service, 'reader-added', (e) => e.reader === VPCD_READER, 10_000);
      await watched('pcscd back', async () => {
        await startAgain();
        await readerBack;
        await service.settled(5000);
      });
      await insert();
      const fresh = await connect();
      expect(toHex(await fresh.transmit(select))).toBe('9000');
      await fresh.disconnect();
      const gone = nextEvent(service, 'card-removed', (e) => e.reader === VPCD_READER);
      await icc.remove();
      await gone;
    }
  }, 30_000 + 3000 * RESTARTS);
});
