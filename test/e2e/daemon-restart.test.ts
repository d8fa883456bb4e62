/** pcscd killed and restarted repeatedly while clients poll the daemon: it recovers every time. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PcscBackend } from '../../cards/backends.js';
import { DEFAULTS } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { nextEvent } from '../helpers/events.js';
import { rpcClient, type RpcAnswer } from '../helpers/rpc.js';
import { killPcscd, startAgain, VPCD_READER } from '../helpers/pcscd.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const ROUNDS = Number(process.env.CPSD_RESTARTS ?? 2);
const vr = useVirtualReader();
let source: PcscBackend;
let server: CpsdServer;

beforeAll(async () => {
  source = new PcscBackend();
  await source.settled();
  server = new CpsdServer({ ...DEFAULTS, port: 0, ratePerSecond: 1000 }, source, new Logger('error', () => undefined));
  await server.listen();
});

afterAll(async () => {
  await server?.close();
  await source?.close();
});

describe('daemon across pcscd restarts', () => {
  it(`answers every poll with a result or a typed error through ${ROUNDS} restarts, then works again`, async () => {
    const rpc = await rpcClient(server.port);
    const codes = new Map<string, number>();
    const messages = new Map<string, string>();
    // One request outstanding at a time, as a real client polls (a client that does not wait for its
    // answers fills its share of the reader's queue and gets BUSY by design: test/unit/session.test.ts covers that).
    let waiting = false;
    const record = (m: RpcAnswer): void => {
      waiting = false;
      const key = m.error ? m.error.data.code : 'ok';
      if (m.error) messages.set(key, m.error.message);
      codes.set(key, (codes.get(key) ?? 0) + 1);
    };
    const poll = setInterval(() => {
      if (waiting) return;
      waiting = true;
      void rpc.call('card.status', { reader: VPCD_READER }).then(record);
    }, 20);
    try {
      for (let round = 0; round < ROUNDS; round++) {
        await vr.insert({ profile: 'doctor' });
        await new Promise((r) => setTimeout(r, 200));
        await killPcscd();
        await vr.icc.remove();
        await new Promise((r) => setTimeout(r, 200));
        const up = nextEvent(vr.service, 'reader-added', (e) => e.reader === VPCD_READER, 10_000);
        await startAgain();
        await up;
        await vr.service.settled(5000);
        await source.settled();
      }
      await vr.insert({ profile: 'doctor' });
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      clearInterval(poll);
    }
    const last = await rpc.call('card.status', { reader: VPCD_READER });
    expect(last.result).toMatchObject({ generation: 'CPS3' });
    expect(codes.get('ok') ?? 0).toBeGreaterThan(0);
    for (const code of codes.keys()) expect(['ok', 'PCSC_UNAVAILABLE', 'READER_NOT_FOUND', 'CARD_ABSENT', 'CARD_ERROR', 'RATE_LIMITED'], `${code}: ${messages.get(code) ?? ''}`).toContain(code);
    await rpc.close();
  }, 120_000);
});
