/** CardChannel against scripted transports: every transport-level status word path. */
import { describe, expect, it } from 'vitest';
import { CardChannel, type ApduTransport } from '../../apdu/channel.js';
import { CommandApdu } from '../../apdu/command.js';
import { fromHex, toHex } from '../../core/bytes.js';
import { ApduFormatError, CardProtocolError } from '../../apdu/errors.js';

/** Replays an exact script: each step is [expected command hex, response hex]. */
class Script implements ApduTransport {
  readonly sent: string[] = [];
  constructor(private readonly steps: [string, string][]) {}
  async transmit(command: Uint8Array): Promise<Uint8Array> {
    const hex = toHex(command);
    this.sent.push(hex);
    const step = this.steps.shift();
    if (!step) throw new Error(`unexpected command ${hex}`);
    expect(hex).toBe(step[0].replace(/ /g, ''));
    return fromHex(step[1]);
  }
  done(): void {
    expect(this.steps).toEqual([]);
  }
}

const bytes = (n: number, seed = 0): string => toHex(Uint8Array.from({ length: n }, (_, i) => (i + seed) & 0xff));

describe('CardChannel', () => {
  it('passes a plain exchange through', async () => {
    const t = new Script([['00A4040C02 3F00', '9000']]);
    const r = await new CardChannel(t).transmit(new CommandApdu({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data: fromHex('3F00') }));
    expect(r.sw).toBe(0x9000);
    t.done();
  });

  it('gathers 61xx rounds with GET RESPONSE (61 00 = 256 more)', async () => {
    const t = new Script([
      ['00 88 00 00 02 0102 00', '6100'],
      ['00 C0 00 00 00', bytes(256) + '6110'],
      ['00 C0 00 00 10', bytes(16, 7) + '9000'],
    ]);
    const r = await new CardChannel(t).transmit(new CommandApdu({ cla: 0, ins: 0x88, p1: 0, p2: 0, data: fromHex('0102'), ne: 256 }));
    expect(r.data.length).toBe(272);
    expect(toHex(r.data)).toBe(bytes(256) + bytes(16, 7));
    expect(r.sw).toBe(0x9000);
    t.done();
  });

  it('keeps data returned before the 61xx and the final warning SW', async () => {
    const t = new Script([
      ['00 B0 00 00 04', 'AABB' + '6102'],
      ['00 C0 00 00 02', 'CCDD' + '6282'],
    ]);
    const r = await new CardChannel(t).transmit(new CommandApdu({ cla: 0, ins: 0xb0, p1: 0, p2: 0, ne: 4 }));
    expect(toHex(r.data)).toBe('AABBCCDD');
    expect(r.sw).toBe(0x6282);
  });

  it('keeps the logical channel in GET RESPONSE and drops chaining / SM bits', async () => {
    const t = new Script([
      ['01 88 00 00 01 AA 00', '6101'],
      ['01 C0 00 00 01', '01' + '9000'],
    ]);
    await new CardChannel(t).transmit(new CommandApdu({ cla: 0x01, ins: 0x88, p1: 0, p2: 0, data: fromHex('AA'), ne: 256 }));
    const further = new Script([
      ['45 88 00 00 01 AA 00', '6101'],
      ['45 C0 00 00 01', '01' + '9000'],
    ]);
    await new CardChannel(further).transmit(new CommandApdu({ cla: 0x45, ins: 0x88, p1: 0, p2: 0, data: fromHex('AA'), ne: 256 }));
    further.done();
    // Secure-messaging bits (0C in the first interindustry class, 20 in the further one) are not kept.
    const sm = new Script([
      ['0D 88 00 00 01 AA 00', '6101'],
      ['01 C0 00 00 01', '01' + '9000'],
    ]);
    await new CardChannel(sm).transmit(new CommandApdu({ cla: 0x0d, ins: 0x88, p1: 0, p2: 0, data: fromHex('AA'), ne: 256 }));
    sm.done();
    const furtherSm = new Script([
      ['65 88 00 00 01 AA 00', '6101'],
      ['45 C0 00 00 01', '01' + '9000'],
    ]);
    await new CardChannel(furtherSm).transmit(new CommandApdu({ cla: 0x65, ins: 0x88, p1: 0, p2: 0, data: fromHex('AA'), ne: 256 }));
    furtherSm.done();
  });

  it('sends GET RESPONSE without the chaining bit after the last link of a chain', async () => {
    const t = new Script([
      ['11 DA 00 00 FF ' + 'AB'.repeat(255), '9000'],
      ['01 DA 00 00 01 AB 00', '6101'],
      ['01 C0 00 00 01', '01' + '9000'],
    ]);
    await new CardChannel(t).transmit(new CommandApdu({ cla: 0x01, ins: 0xda, p1: 0, p2: 0, data: fromHex('AB'.repeat(256)), ne: 256 }));
    t.done();
  });

  it('uses 9Fxx and CLA A0 for the GSM-style class of CPS2ter', async () => {
    const t = new Script([
      ['A0 A4 00 00 02 3F00', '9F16'],
      ['A0 C0 00 00 16', bytes(22) + '9000'],
    ]);
    const r = await new CardChannel(t).transmit(new CommandApdu({ cla: 0xa0, ins: 0xa4, p1: 0, p2: 0, data: fromHex('3F00') }));
    expect(r.data.length).toBe(22);
    // 9Fxx from an ISO-class command is not "bytes available": it is returned as it is.
    const iso = new Script([['00 A4 00 00 02 3F00', '9F16']]);
    expect((await new CardChannel(iso).transmit(new CommandApdu({ cla: 0, ins: 0xa4, p1: 0, p2: 0, data: fromHex('3F00') }))).sw).toBe(0x9f16);
  });

  it('re-sends with the Le of 6Cxx, also inside GET RESPONSE', async () => {
    const t = new Script([
      ['00 CA 01 00 00', '6C02'],
      ['00 CA 01 00 02', 'CAFE9000'],
    ]);
    expect(toHex((await new CardChannel(t).transmit(new CommandApdu({ cla: 0, ins: 0xca, p1: 1, p2: 0, ne: 256 }))).data)).toBe('CAFE');
    const g = new Script([
      ['00 88 00 00 01 AA 00', '6105'],
      ['00 C0 00 00 05', '6C03'],
      ['00 C0 00 00 03', '0102039000'],
    ]);
    expect(toHex((await new CardChannel(g).transmit(new CommandApdu({ cla: 0, ins: 0x88, p1: 0, p2: 0, data: fromHex('AA'), ne: 256 }))).data)).toBe('010203');
    const zero = new Script([
      ['00 CA 01 00 10', '6C00'],
      ['00 CA 01 00 00', bytes(256) + '9000'],
    ]);
    expect((await new CardChannel(zero).transmit(new CommandApdu({ cla: 0, ins: 0xca, p1: 1, p2: 0, ne: 16 }))).data.length).toBe(256);
  });

  it('refuses a card that answers 6Cxx twice', async () => {
    const t = new Script([
      ['00 CA 01 00 00', '6C02'],
      ['00 CA 01 00 02', '6C03'],
    ]);
    await expect(new CardChannel(t).transmit(new CommandApdu({ cla: 0, ins: 0xca, p1: 1, p2: 0, ne: 256 }))).rejects.toBeInstanceOf(CardProtocolError);
  });

  it('bounds endless 61xx and oversized responses', async () => {
    const endless: ApduTransport = { transmit: async (c) => (c[1] === 0xc0 ? fromHex('01' + '6101') : fromHex('6101')) };
    await expect(
      new CardChannel(endless, { maxGetResponses: 10 }).transmit(new CommandApdu({ cla: 0, ins: 0x88, p1: 0, p2: 0, data: fromHex('AA'), ne: 256 })),
    ).rejects.toThrow(/GET RESPONSE/);
    const big: ApduTransport = { transmit: async (c) => (c[1] === 0xc0 ? fromHex(bytes(256) + '6100') : fromHex('6100')) };
    await expect(
      new CardChannel(big, { maxResponseBytes: 1000 }).transmit(new CommandApdu({ cla: 0, ins: 0x88, p1: 0, p2: 0, data: fromHex('AA'), ne: 256 })),
    ).rejects.toBeInstanceOf(CardProtocolError);
  });

  it('chains long data in 255-byte links, Le on the last only', async () => {
    const data = bytes(600);
    const t = new Script([
      ['10 2A 80 86 FF ' + data.slice(0, 510), '9000'],
      ['10 2A 80 86 FF ' + data.slice(510, 1020), '9000'],
      ['00 2A 80 86 5A ' + data.slice(1020) + ' 00', '6102'],
      ['00 C0 00 00 02', '01029000'],
    ]);
    const r = await new CardChannel(t).transmit(new CommandApdu({ cla: 0, ins: 0x2a, p1: 0x80, p2: 0x86, data: fromHex(data), ne: 256 }));
    expect(toHex(r.data)).toBe('0102');
    t.done();
  });

  it('chains with a smaller link size and stops at a refused link', async () => {
    const t = new Script([
      ['10 DA 01 00 64 ' + bytes(100), '9000'],
      ['10 DA 01 00 64 ' + bytes(100, 100), '6A80'],
    ]);
    const r = await new CardChannel(t, { maxCommandData: 100 }).transmit(new CommandApdu({ cla: 0, ins: 0xda, p1: 1, p2: 0, data: fromHex(bytes(300)) }));
    expect(r.sw).toBe(0x6a80);
    t.done();
  });

  it('refuses to chain a proprietary class or an already-chained command', async () => {
    const never: ApduTransport = { transmit: async () => fromHex('9000') };
    const long = fromHex(bytes(300));
    await expect(new CardChannel(never).transmit(new CommandApdu({ cla: 0x80, ins: 0xda, p1: 0, p2: 0, data: long }))).rejects.toBeInstanceOf(ApduFormatError);
    await expect(new CardChannel(never).transmit(new CommandApdu({ cla: 0x10, ins: 0xda, p1: 0, p2: 0, data: long }))).rejects.toBeInstanceOf(ApduFormatError);
  });

  it('sends extended APDUs when the card supports them, caps Le at 256 when not', async () => {
    // Extended only where short lengths do not fit.
    const ext = new Script([
      ['00 B0 00 00 00', bytes(256) + '9000'],
      ['00 B0 00 00 00 03 E8', bytes(1000) + '9000'],
    ]);
    const extChannel = new CardChannel(ext, { extendedLength: true });
    await extChannel.transmit(new CommandApdu({ cla: 0, ins: 0xb0, p1: 0, p2: 0, ne: 256 }));
    expect((await extChannel.transmit(new CommandApdu({ cla: 0, ins: 0xb0, p1: 0, p2: 0, ne: 1000 }))).data.length).toBe(1000);
    ext.done();
    const ext2 = new Script([['00 DA 00 00 00 01 2C ' + bytes(300), '9000']]);
    await new CardChannel(ext2, { extendedLength: true }).transmit(new CommandApdu({ cla: 0, ins: 0xda, p1: 0, p2: 0, data: fromHex(bytes(300)) }));
    const short = new Script([
      ['00 B0 00 00 00', bytes(256) + '6110'],
      ['00 C0 00 00 10', bytes(16) + '9000'],
    ]);
    const r = await new CardChannel(short).transmit(new CommandApdu({ cla: 0, ins: 0xb0, p1: 0, p2: 0, ne: 1000 }));
    expect(r.data.length).toBe(272);
    expect(() => new CardChannel(short, { maxCommandData: 256 })).toThrow(RangeError);
  });

  it('serialises concurrent callers so that chains and GET RESPONSE loops never interleave', async () => {
    const log: string[] = [];
    let pending = '';
    const transport: ApduTransport = {
      async transmit(c) {
        await new Promise((r) => setTimeout(r, 1));
        log.push(toHex(c.subarray(0, 2)));
        if (c[1] === 0x88) {
          pending = toHex(c.subarray(5, 6));
          return fromHex('6101');
        }
        return fromHex(pending + '9000');
      },
    };
    const channel = new CardChannel(transport);
    const results = await Promise.all(
      [0x11, 0x22, 0x33].map((b) => channel.transmit(new CommandApdu({ cla: 0, ins: 0x88, p1: 0, p2: 0, data: Uint8Array.of(b), ne: 256 }))),
    );
    expect(results.map((r) => toHex(r.data))).toEqual(['11', '22', '33']);
    expect(log).toEqual(['0088', '00C0', '0088', '00C0', '0088', '00C0']);
  });

  it('keeps working after a transport failure', async () => {
    let fail = true;
    const transport: ApduTransport = {
      async transmit() {
        if (fail) {
          fail = false;
          throw new Error('link down');
        }
        return fromHex('9000');
      },
    };
    const channel = new CardChannel(transport);
    const cmd = new CommandApdu({ cla: 0, ins: 0xa4, p1: 0, p2: 0x0c, data: fromHex('3F00') });
    await expect(channel.transmit(cmd)).rejects.toThrow('link down');
    expect((await channel.transmit(cmd)).sw).toBe(0x9000);
  });
});
