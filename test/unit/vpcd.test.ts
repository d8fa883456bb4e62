/** The vpcd connector against a fake vpcd (a loopback TCP server speaking vpcd's framing). */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { VpcdConnector, VpcdError, type VirtualCard } from '../../sim/vpcd.js';

interface FakeVpcd {
  server: Server;
  port: number;
  socket: Promise<Socket>;
  chunks: Buffer[];
}

async function fakeVpcd(): Promise<FakeVpcd> {
  const chunks: Buffer[] = [];
  let accept: (s: Socket) => void = () => undefined;
  const socket = new Promise<Socket>((r) => (accept = r));
  const server = createServer((s) => {
    s.on('data', (d) => chunks.push(d));
    accept(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port, socket, chunks };
}

function frame(payload: number[]): Buffer {
  const b = Buffer.alloc(2 + payload.length);
  b.writeUInt16BE(payload.length);
  Buffer.from(payload).copy(b, 2);
  return b;
}

/** Reads `count` framed messages from what the card sent. */
async function framesFrom(vpcd: FakeVpcd, count: number): Promise<number[][]> {
  for (let i = 0; i < 200; i++) {
    const all = Buffer.concat(vpcd.chunks);
    const out: number[][] = [];
    let at = 0;
    while (at + 2 <= all.length) {
      const n = all.readUInt16BE(at);
      if (at + 2 + n > all.length) break;
      out.push([...all.subarray(at + 2, at + 2 + n)]);
      at += 2 + n;
    }
    if (out.length >= count) return out;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`fewer than ${count} frames`);
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function echoCard(log: string[] = []): VirtualCard {
  return {
    atr: Uint8Array.of(0x3b, 0x02, 0x14, 0x50),
    transmit: (apdu) => Uint8Array.of(...apdu.subarray(0, 2), 0x90, 0x00),
    reset: () => log.push('reset'),
    powerOff: () => log.push('off'),
  };
}

describe('VpcdConnector', () => {
  it('answers GET ATR, stays silent on power controls, answers APDUs, all framed', async () => {
    const vpcd = await fakeVpcd();
    servers.push(vpcd.server);
    const log: string[] = [];
    const connector = await VpcdConnector.insert(echoCard(log), { port: vpcd.port });
    const s = await vpcd.socket;
    s.write(Buffer.concat([frame([0x04]), frame([0x01]), frame([0x02]), frame([0x00])]));
    // A command split across two TCP segments, and an empty frame, must both be handled.
    const apdu = frame([0x00, 0xa4, 0x04, 0x00]);
    s.write(apdu.subarray(0, 3));
    await new Promise((r) => setTimeout(r, 10));
    s.write(Buffer.concat([apdu.subarray(3), frame([])]));
    const frames = await framesFrom(vpcd, 2);
    expect(frames).toEqual([[0x3b, 0x02, 0x14, 0x50], [0x00, 0xa4, 0x90, 0x00]]);
    expect(log).toEqual(['reset', 'reset', 'off']);
    expect(connector.stats).toEqual({ apdus: 1, bytesToCard: 4, bytesFromCard: 4 });
    await connector.remove();
    expect(connector.inserted).toBe(false);
  });

  it('keeps answers in order when the card answers asynchronously', async () => {
    const vpcd = await fakeVpcd();
    servers.push(vpcd.server);
    let delay = 30;
    const card: VirtualCard = {
      atr: Uint8Array.of(0x3b, 0x00),
      transmit: async (apdu) => {
        await new Promise((r) => setTimeout(r, (delay -= 10)));
        return Uint8Array.of(apdu[1] ?? 0, 0x90, 0x00);
      },
    };
    const connector = await VpcdConnector.insert(card, { port: vpcd.port });
    const s = await vpcd.socket;
    s.write(Buffer.concat([frame([0, 1, 0, 0]), frame([0, 2, 0, 0]), frame([0x04]), frame([0, 3, 0, 0])]));
    expect(await framesFrom(vpcd, 4)).toEqual([[1, 0x90, 0], [2, 0x90, 0], [0x3b, 0x00], [3, 0x90, 0]]);
    await connector.remove();
  });

  it('answers 6F00 when the card throws or returns something unframeable', async () => {
    const vpcd = await fakeVpcd();
    servers.push(vpcd.server);
    const errors: unknown[] = [];
    let calls = 0;
    const card: VirtualCard = {
      atr: Uint8Array.of(0x3b, 0x00),
      transmit: () => {
        calls++;
        if (calls === 1) throw new Error('card bug');
        return Uint8Array.of(0x90);
      },
    };
    const connector = await VpcdConnector.insert(card, { port: vpcd.port });
    connector.on('card-error', (e) => errors.push(e));
    const s = await vpcd.socket;
    s.write(Buffer.concat([frame([0, 1, 0, 0]), frame([0, 2, 0, 0])]));
    expect(await framesFrom(vpcd, 2)).toEqual([[0x6f, 0x00], [0x6f, 0x00]]);
    expect(errors).toHaveLength(1);
    await connector.remove();
  });

  it('reports removal when vpcd closes the link', async () => {
    const vpcd = await fakeVpcd();
    servers.push(vpcd.server);
    const connector = await VpcdConnector.insert(echoCard(), { port: vpcd.port });
    const removed = new Promise((r) => connector.once('removed', r));
    (await vpcd.socket).destroy();
    await removed;
    expect(connector.inserted).toBe(false);
  });

  it('fails with a typed error when vpcd is not listening', async () => {
    const vpcd = await fakeVpcd();
    const port = vpcd.port;
    await new Promise((r) => vpcd.server.close(r));
    const failure = await VpcdConnector.insert(echoCard(), { port }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(VpcdError);
    expect(failure).toMatchObject({ code: 'VPCD_UNAVAILABLE' });
  });
});
