/**
 * Reliability and hostile input: the card pulled at every APDU boundary of authentication and
 * signature, fuzzed card responses into the driver, hostile WebSocket traffic against the daemon.
 * Counts are bounded for CI; CPSD_FUZZ_RUNS raises them.
 */
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Pin } from '../../cards/pin.js';
import { openCard } from '../../cards/atr-table.js';
import { CpsCard } from '../../cards/card.js';
import { CpsdError } from '../../core/errors.js';
import { CardAbsentError } from '../../apdu/pcsc/index.js';
import { InProcessBackend } from '../../cards/backends.js';
import { DEFAULTS } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import type { VirtualCpsCard } from '../../sim/cps/card.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';

const RUNS = Number(process.env.CPSD_FUZZ_RUNS ?? 300);
const digestInfo = CpsCard.digestInfo('sha256', createHash('sha256').update('x').digest());

/** A transport to `card` that is pulled out after `limit` APDUs (then every APDU fails like PC/SC). */
function pulledAfter(card: VirtualCpsCard, limit: number): { transmit: (c: Uint8Array) => Promise<Uint8Array>; sent: () => number } {
  let n = 0;
  return {
    transmit: async (c) => {
      if (++n > limit) throw new CardAbsentError('the card was removed');
      return card.transmit(c);
    },
    sent: () => n,
  };
}

describe('card pulled at every APDU boundary', () => {
  for (const job of ['authentication', 'signature'] as const) {
    it(`${job}: a typed error every time, the next attempt succeeds, no PIN try lost`, async () => {
      const run = async (card: CpsCard): Promise<void> => {
        await card.verifyPin(new Pin('1234'));
        if (job === 'authentication') await card.authenticate(digestInfo);
        else await card.sign('sha256', { message: new Uint8Array(100).fill(1) });
      };
      // How many APDUs the whole job takes on a fresh card.
      const probe = fixtureCard('doctor');
      const counting = pulledAfter(probe, Number.MAX_SAFE_INTEGER);
      await run(openCard(counting, probe.atr));
      const total = counting.sent();
      expect(total).toBeGreaterThan(10);
      const card = fixtureCard('doctor');
      for (let limit = 0; limit < total; limit++) {
        const error = await run(openCard(pulledAfter(card, limit), card.atr)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, `pulled after ${limit} APDUs`).toBeInstanceOf(CpsdError);
        expect(card.image.pin.triesLeft).toBe(3);
        card.reset(); // re-insertion: power cycle
      }
      await run(openCard(pulledAfter(card, Number.MAX_SAFE_INTEGER), card.atr));
      expect(card.image.pin.triesLeft).toBe(3);
    });
  }
});

describe('fuzzed card responses', () => {
  const response = fc.oneof(
    fc.uint8Array({ maxLength: 3 }),
    fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 0xffff })).map(([d, sw]) => Uint8Array.from([...d, sw >> 8, sw & 0xff])),
    fc.constantFrom(Uint8Array.of(0x61, 0x10), Uint8Array.of(0x6c, 0x00), Uint8Array.of(0x90, 0x00), Uint8Array.of(0x62, 0x82), Uint8Array.of(0x63, 0xc1)),
  );

  it('gives typed errors (or values) only, never an uncaught exception', async () => {
    const atr = fixtureCard('doctor').atr;
    await fc.assert(
      fc.asyncProperty(fc.array(response, { minLength: 1, maxLength: 40 }), fc.integer({ min: 0, max: 5 }), async (answers, op) => {
        let i = 0;
        const card = openCard({ transmit: async () => answers[i++ % answers.length] ?? Uint8Array.of(0x6f, 0x00) }, atr, { timeoutMs: 2000 });
        const jobs = [
          () => card.serial(),
          () => card.objects(),
          () => card.pinStatus(),
          () => card.certificate('auth'),
          () => card.verifyPin(new Pin('1234'), { allowLastTry: true }),
          () => card.authenticate(digestInfo),
        ];
        try {
          await jobs[op]?.();
        } catch (error) {
          expect(error, String(error)).toBeInstanceOf(CpsdError);
        }
      }),
      { numRuns: RUNS },
    );
  }, 120_000);
});

describe('hostile WebSocket input', () => {
  let server: CpsdServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('survives random frames, malformed JSON-RPC, floods and slow clients, and still serves', async () => {
    const sim = new InProcessBackend(fixtureCard('doctor'));
    server = new CpsdServer({ ...DEFAULTS, port: 0, maxMessageBytes: 4096, ratePerSecond: 50 }, sim, new Logger('error', () => undefined));
    await server.listen();
    const url = `ws://127.0.0.1:${server.port}`;
    const open = (): Promise<WebSocket> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      });
    const samples = fc.sample(
      fc.oneof(
        fc.string({ maxLength: 200 }),
        fc.json(),
        fc.record({ jsonrpc: fc.constantFrom('2.0', '1.0', 2), id: fc.oneof(fc.integer(), fc.string(), fc.constant(null)), method: fc.string(), params: fc.anything() }).map((o) => JSON.stringify(o)),
        fc.constantFrom('{"jsonrpc":"2.0","id":1,"method":"hello","params":[]}', '[]', 'null', '{"__proto__":{"x":1}}', '{"jsonrpc":"2.0","id":1,"method":"card.status","params":{"reader":{"$gt":""}}}'),
      ),
      RUNS,
    );
    const before = process.memoryUsage().heapUsed;
    const ws = await open();
    const replies: string[] = [];
    ws.on('message', (d) => replies.push(d.toString()));
    for (const s of samples) ws.send(s);
    ws.send(Buffer.from([0xff, 0x00, 0x13])); // binary
    await new Promise((r) => setTimeout(r, 300));
    for (const r of replies) {
      const m = JSON.parse(r) as { result?: unknown; error?: { data: { code: string } } };
      if (m.error) expect(typeof m.error.data.code).toBe('string');
    }
    expect(replies.length).toBeGreaterThan(0);
    // A flood of connections that send a huge frame or nothing at all (slow clients): local
    // applications get their own slots (32 by default, one of them taken above), the rest are refused.
    const attempts = await Promise.allSettled(Array.from({ length: 40 }, () => open()));
    const flood = attempts.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
    expect(flood).toHaveLength(DEFAULTS.maxLocalConnections - 1);
    flood.slice(0, 20).forEach((c) => c.send('x'.repeat(10_000)));
    await new Promise((r) => setTimeout(r, 200));
    await Promise.all([...flood, ws].map((c) => (c.readyState === c.CLOSED ? undefined : new Promise((r) => (c.once('close', r), c.terminate())))));
    // Still up and serving.
    const again = await open();
    const answer = await new Promise<string>((resolve) => {
      again.once('message', (d) => resolve(d.toString()));
      again.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'card.identity', params: {} }));
    });
    expect(JSON.parse(answer).result.nationalId).toBe('899700012349');
    again.close();
    // Memory does not keep what the storm sent (generous bound: GC timing varies).
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(64 * 1024 * 1024);
  }, 60_000);
});

describe('invariant: no PIN try without a PIN given by a person', () => {
  it('reading, identifying and checking the PIN status never send VERIFY with data', async () => {
    for (const name of ['doctor', 'nurse', 'pin-blocked']) {
      const card = fixtureCard(name);
      const verifies: Uint8Array[] = [];
      const driver = openCard(
        {
          transmit: async (c) => {
            if (c[1] === 0x20 && c.length > 5) verifies.push(c);
            return card.transmit(c);
          },
        },
        card.atr,
      );
      const before = card.image.pin.triesLeft;
      await driver.serial();
      await driver.actua();
      await driver.objects();
      await driver.certificate('auth');
      await driver.pinStatus();
      await driver.pinStatus();
      await driver.situationLabels();
      await driver.dataObject('CPS_INFO_PS');
      await driver.dataObject('CPS_ACTIVITY_01_PS').catch(() => undefined); // needs the PIN: refused, not tried
      expect(verifies, name).toEqual([]);
      expect(card.image.pin.triesLeft).toBe(before);
    }
  });
});

describe('mute card', () => {
  it('a card that stops answering gives CARD_TIMEOUT, and the next operation is not stuck behind it', async () => {
    const { FaultyCard } = await import('../../sim/cps/faults.js');
    const inner = fixtureCard('doctor');
    const mute = new FaultyCard(inner, { muteAfter: 2 });
    const driver = openCard({ transmit: (c) => Promise.resolve(mute.transmit(c)) }, inner.atr, { timeoutMs: 100 });
    await expect(driver.objects()).rejects.toMatchObject({ code: 'CARD_TIMEOUT' });
    const fresh = openCard({ transmit: async (c) => inner.transmit(c) }, inner.atr, { timeoutMs: 1000 });
    expect(await fresh.serial()).toBe('9921384501');
  });
});
