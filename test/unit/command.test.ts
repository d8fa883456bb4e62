/** CommandApdu: construction, derived properties, the seven ISO 7816-3 encodings and PIN redaction. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CommandApdu } from '../../apdu/command.js';
import type { CommandFields } from '../../apdu/command.js';
import { CpsdError } from '../../core/errors.js';
import { fromHex, toHex } from '../../core/bytes.js';
import { ApduFormatError } from '../../apdu/errors.js';

const h = fromHex;
const cmd = (hex: string): CommandApdu => CommandApdu.decode(h(hex));
const hex = (s: string): string => s.replace(/[\s:]/g, '').toUpperCase();
/** `n` bytes counting up from `seed`, as hex. */
const run = (n: number, seed = 0): string => toHex(Uint8Array.from({ length: n }, (_, i) => (i + seed) & 0xff));

/** The observable fields of a command, with data as hex, for exact comparisons. */
function fields(c: CommandApdu): [number, number, number, number, string, number | undefined] {
  return [c.cla, c.ins, c.p1, c.p2, toHex(c.data), c.ne];
}

/** Asserts the call throws an ApduFormatError (code APDU_INVALID) whose message matches exactly. */
function expectApduError(fn: () => unknown, message: string | RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ApduFormatError);
  expect(caught).toBeInstanceOf(CpsdError);
  const err = caught as ApduFormatError;
  expect(err.code).toBe('APDU_INVALID');
  expect(err.name).toBe('ApduFormatError');
  if (typeof message === 'string') expect(err.message).toBe(message);
  else expect(err.message).toMatch(message);
}

const base: CommandFields = { cla: 0x00, ins: 0xa4, p1: 0x04, p2: 0x00 };
const SECRET_INS = [0x20, 0x21, 0x24, 0x25, 0x2c, 0x2d];

describe('CommandApdu constructor', () => {
  it('keeps the header, defaults to no data and no Le', () => {
    const c = new CommandApdu({ cla: 0x80, ins: 0xca, p1: 0x9f, p2: 0x7f });
    expect(fields(c)).toEqual([0x80, 0xca, 0x9f, 0x7f, '', undefined]);
    expect(c.data).toBeInstanceOf(Uint8Array);
    expect(c.data.length).toBe(0);
  });

  it('accepts 0 and 255 in every header byte (INS 00 and FF are not procedure bytes)', () => {
    expect(fields(new CommandApdu({ cla: 0, ins: 0, p1: 0, p2: 0 }))).toEqual([0, 0, 0, 0, '', undefined]);
    expect(fields(new CommandApdu({ cla: 255, ins: 255, p1: 255, p2: 255 }))).toEqual([255, 255, 255, 255, '', undefined]);
  });

  it('rejects header values that are not bytes, naming the field and the value', () => {
    for (const name of ['cla', 'ins', 'p1', 'p2'] as const) {
      for (const bad of [-1, 256, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        expectApduError(
          () => new CommandApdu({ ...base, [name]: bad }),
          `${name.toUpperCase()} must be a byte (0..255), got ${String(bad)}`,
        );
      }
    }
  });

  it('rejects every INS 6X and 9X (procedure bytes), and only those', () => {
    for (let ins = 0; ins < 256; ins++) {
      const procedure = ins >> 4 === 0x6 || ins >> 4 === 0x9;
      if (procedure) {
        const insHex = ins.toString(16).toUpperCase().padStart(2, '0');
        expectApduError(
          () => new CommandApdu({ ...base, ins }),
          `INS ${insHex} is invalid (6X/9X are procedure bytes)`,
        );
      } else {
        expect(new CommandApdu({ ...base, ins }).ins).toBe(ins);
      }
    }
  });

  it('leaves CLA FF open for PC/SC part 3 pseudo-APDUs (GET DATA UID)', () => {
    const c = new CommandApdu({ cla: 0xff, ins: 0xca, p1: 0, p2: 0, ne: 256 });
    expect(toHex(c.encode())).toBe('FFCA000000');
  });

  it('rejects data that is not a Uint8Array, and accepts a Buffer (a subclass)', () => {
    expectApduError(
      () => new CommandApdu({ ...base, data: [1, 2] as unknown as Uint8Array }),
      'data must be a Uint8Array',
    );
    const c = new CommandApdu({ ...base, data: Buffer.from([0x3f, 0x00]) });
    expect(toHex(c.data)).toBe('3F00');
  });

  it('accepts up to 65535 data bytes and rejects 65536', () => {
    expect(new CommandApdu({ ...base, data: new Uint8Array(65535) }).nc).toBe(65535);
    expectApduError(
      () => new CommandApdu({ ...base, data: new Uint8Array(65536) }),
      'command data of 65536 bytes exceeds 65535',
    );
  });

  it('accepts Ne in 1..65536 and rejects the rest', () => {
    for (const ne of [1, 255, 256, 257, 65535, 65536]) expect(new CommandApdu({ ...base, ne }).ne).toBe(ne);
    for (const bad of [0, -1, 65537, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expectApduError(() => new CommandApdu({ ...base, ne: bad }), `Ne must be an integer in 1..65536, got ${String(bad)}`);
    }
  });

  it('treats an explicit ne: undefined as no Le', () => {
    expect(new CommandApdu({ ...base, ne: undefined }).case).toBe(1);
  });

  it('copies the data so later changes to the caller buffer do not alter it', () => {
    const data = h('31323334');
    const c = new CommandApdu({ cla: 0, ins: 0x20, p1: 0, p2: 1, data });
    data[0] = 0x39;
    data.fill(0);
    expect(toHex(c.data)).toBe('31323334');
    expect(c.data).not.toBe(data);
    expect(toHex(c.encode())).toBe('002000010431323334');
  });

  it('is frozen: its fields cannot be reassigned', () => {
    const c = new CommandApdu({ ...base, ne: 5 });
    expect(Object.isFrozen(c)).toBe(true);
    expect(() => {
      (c as unknown as { ins: number }).ins = 0xb0;
    }).toThrow(TypeError);
    expect(() => {
      (c as unknown as { ne: number }).ne = 7;
    }).toThrow(TypeError);
    expect([c.ins, c.ne]).toEqual([0xa4, 5]);
  });
});

describe('CommandApdu derived properties', () => {
  it('reports the ISO 7816-3 case and Nc', () => {
    const table: [CommandFields, 1 | 2 | 3 | 4, number][] = [
      [{ ...base }, 1, 0],
      [{ ...base, ne: 256 }, 2, 0],
      [{ ...base, data: h('3F00') }, 3, 2],
      [{ ...base, data: h('8025000001FF0100'), ne: 256 }, 4, 8],
      [{ ...base, data: new Uint8Array(0), ne: 1 }, 2, 0], // empty data is no data
      [{ ...base, data: new Uint8Array(0) }, 1, 0],
      [{ ...base, data: new Uint8Array(300), ne: 65536 }, 4, 300],
    ];
    for (const [f, kase, nc] of table) {
      const c = new CommandApdu(f);
      expect([c.case, c.nc]).toEqual([kase, nc]);
    }
  });

  it('needs extended lengths exactly when Nc > 255 or Ne > 256', () => {
    const table: [number, number | undefined, boolean][] = [
      [0, undefined, false],
      [255, undefined, false],
      [256, undefined, true],
      [0, 256, false],
      [0, 257, true],
      [255, 256, false],
      [255, 257, true],
      [256, 1, true],
      [1, 65536, true],
      [65535, 65536, true],
    ];
    for (const [nc, ne, expected] of table) {
      expect(new CommandApdu({ ...base, data: new Uint8Array(nc), ne }).needsExtended, `${nc}/${String(ne)}`).toBe(expected);
    }
  });

  it('flags the data of VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER (even and odd INS) as secret', () => {
    for (const ins of SECRET_INS) {
      expect(new CommandApdu({ cla: 0, ins, p1: 0, p2: 1, data: h('31323334') }).isSecretCarrying).toBe(true);
      // Without data (e.g. VERIFY as a tries-left query) there is nothing to hide.
      expect(new CommandApdu({ cla: 0, ins, p1: 0, p2: 1 }).isSecretCarrying).toBe(false);
      expect(new CommandApdu({ cla: 0, ins, p1: 0, p2: 1, ne: 256 }).isSecretCarrying).toBe(false);
    }
    // CPS2ter GSM-style class.
    expect(new CommandApdu({ cla: 0xa0, ins: 0x20, p1: 0, p2: 0, data: h('31323334FFFFFFFF') }).isSecretCarrying).toBe(true);
  });

  it('does not flag other instructions that carry data', () => {
    for (const ins of [0x22, 0x2a, 0x88, 0xa4, 0xb0, 0xca, 0xcb, 0xd6, 0xda]) {
      expect(new CommandApdu({ cla: 0, ins, p1: 0, p2: 1, data: h('31323334') }).isSecretCarrying, ins.toString(16)).toBe(false);
    }
  });
});

describe('CommandApdu.with', () => {
  const c = new CommandApdu({ cla: 0x00, ins: 0xa4, p1: 0x04, p2: 0x00, data: h('8025000001FF0100'), ne: 256 });

  it('replaces one field at a time and keeps the others', () => {
    expect(fields(c.with({ cla: 0x80 }))).toEqual([0x80, 0xa4, 0x04, 0x00, '8025000001FF0100', 256]);
    expect(fields(c.with({ ins: 0xb0 }))).toEqual([0x00, 0xb0, 0x04, 0x00, '8025000001FF0100', 256]);
    expect(fields(c.with({ p1: 0x09 }))).toEqual([0x00, 0xa4, 0x09, 0x00, '8025000001FF0100', 256]);
    expect(fields(c.with({ p2: 0x0c }))).toEqual([0x00, 0xa4, 0x04, 0x0c, '8025000001FF0100', 256]);
    expect(fields(c.with({ data: h('3F00') }))).toEqual([0x00, 0xa4, 0x04, 0x00, '3F00', 256]);
    expect(fields(c.with({ ne: 0x27 }))).toEqual([0x00, 0xa4, 0x04, 0x00, '8025000001FF0100', 0x27]);
  });

  it('sets zero values (not mistaken for "absent")', () => {
    const d = new CommandApdu({ cla: 0x80, ins: 0xca, p1: 0x9f, p2: 0x7f, ne: 3 });
    expect(fields(d.with({ cla: 0, p1: 0, p2: 0, ins: 0 }))).toEqual([0, 0, 0, 0, '', 3]);
  });

  it('removes Le with an explicit ne: undefined, keeps it when ne is not given', () => {
    const noLe = c.with({ ne: undefined });
    expect(noLe.ne).toBeUndefined();
    expect(noLe.case).toBe(3);
    expect(toHex(noLe.encode())).toBe('00A40400088025000001FF0100');
    expect(c.with({}).ne).toBe(256);
    expect(c.with({ p2: 0x0c }).ne).toBe(256);
  });

  it('keeps the data when data is undefined and drops it with an empty array', () => {
    expect(toHex(c.with({ data: undefined }).data)).toBe('8025000001FF0100');
    const empty = c.with({ data: new Uint8Array(0) });
    expect([empty.nc, empty.case]).toEqual([0, 2]);
  });

  it('returns a new command and leaves the original untouched', () => {
    const d = c.with({});
    expect(d).not.toBe(c);
    expect(d).toBeInstanceOf(CommandApdu);
    expect(fields(d)).toEqual(fields(c));
    c.with({ cla: 0x0c, data: h('00'), ne: undefined });
    expect(fields(c)).toEqual([0x00, 0xa4, 0x04, 0x00, '8025000001FF0100', 256]);
  });

  it('validates the replaced fields', () => {
    expectApduError(() => c.with({ ins: 0x61 }), 'INS 61 is invalid (6X/9X are procedure bytes)');
    expectApduError(() => c.with({ p1: 256 }), 'P1 must be a byte (0..255), got 256');
    expectApduError(() => c.with({ ne: 0 }), 'Ne must be an integer in 1..65536, got 0');
    expectApduError(() => c.with({ data: new Uint8Array(65536) }), 'command data of 65536 bytes exceeds 65535');
  });
});

describe('CommandApdu.encode', () => {
  it('encodes CPS and ISO vectors in short form', () => {
    const table: [CommandFields, string][] = [
      // SELECT the IAS-ECC root application by AID, as in the CPS3 trace (case 3: no Le).
      [{ cla: 0x00, ins: 0xa4, p1: 0x04, p2: 0x00, data: h('8025000001FF0100') }, '00 A4 04 00 08 80 25 00 00 01 FF 01 00'],
      // Same AID with Le 00 (case 4).
      [{ cla: 0x00, ins: 0xa4, p1: 0x04, p2: 0x00, data: h('8025000001FF0100'), ne: 256 }, '00 A4 04 00 08 80 25 00 00 01 FF 01 00 00'],
      // VERIFY PIN 1234 on CHV 01.
      [{ cla: 0x00, ins: 0x20, p1: 0x00, p2: 0x01, data: h('31323334') }, '00 20 00 01 04 31 32 33 34'],
      // VERIFY without data: the tries-left query (case 1).
      [{ cla: 0x00, ins: 0x20, p1: 0x00, p2: 0x01 }, '00 20 00 01'],
      // READ BINARY of EF.SN.ICC by SFI 1C, Le 00 = 256.
      [{ cla: 0x00, ins: 0xb0, p1: 0x9c, p2: 0x00, ne: 256 }, '00 B0 9C 00 00'],
      // READ BINARY, Cryptolib chunk 0xE7.
      [{ cla: 0x00, ins: 0xb0, p1: 0x00, p2: 0x00, ne: 0xe7 }, '00 B0 00 00 E7'],
      // GET RESPONSE after 61 27.
      [{ cla: 0x00, ins: 0xc0, p1: 0x00, p2: 0x00, ne: 0x27 }, '00 C0 00 00 27'],
      // SELECT MF by FID, no response data.
      [{ cla: 0x00, ins: 0xa4, p1: 0x00, p2: 0x0c, data: h('3F00') }, '00 A4 00 0C 02 3F 00'],
      // CPS2ter VERIFY CHV, GSM class A0, PIN padded with FF to 8.
      [{ cla: 0xa0, ins: 0x20, p1: 0x00, p2: 0x00, data: h('31323334FFFFFFFF') }, 'A0 20 00 00 08 31 32 33 34 FF FF FF FF'],
      // Ne 1 and a 255-byte body: the largest short Lc.
      [{ cla: 0x00, ins: 0x88, p1: 0x00, p2: 0x00, data: h(run(255)), ne: 1 }, `00 88 00 00 FF ${run(255)} 01`],
    ];
    for (const [f, expected] of table) {
      const c = new CommandApdu(f);
      expect(toHex(c.encode()), expected).toBe(hex(expected));
      expect(toHex(c.encode({ extended: false })), expected).toBe(hex(expected));
      expect(toHex(c.encode({})), expected).toBe(hex(expected));
    }
  });

  it('encodes every case in extended form when asked', () => {
    const table: [CommandFields, string][] = [
      // Case 1 has no length field at all, even in extended form.
      [{ cla: 0x00, ins: 0x20, p1: 0x00, p2: 0x01 }, '00 20 00 01'],
      // 2E: 00 then 2-byte Le.
      [{ cla: 0x00, ins: 0xb0, p1: 0x9c, p2: 0x00, ne: 256 }, '00 B0 9C 00 00 01 00'],
      [{ cla: 0x00, ins: 0xb0, p1: 0x00, p2: 0x00, ne: 1 }, '00 B0 00 00 00 00 01'],
      [{ cla: 0x00, ins: 0xb0, p1: 0x00, p2: 0x00, ne: 65535 }, '00 B0 00 00 00 FF FF'],
      [{ cla: 0x00, ins: 0xb0, p1: 0x00, p2: 0x00, ne: 65536 }, '00 B0 00 00 00 00 00'],
      // 3E: 00 then 2-byte Lc.
      [{ cla: 0x00, ins: 0x20, p1: 0x00, p2: 0x01, data: h('31323334') }, '00 20 00 01 00 00 04 31 32 33 34'],
      // 4E: Le shares the leading 00 of Lc, so it is 2 bytes.
      [{ cla: 0x00, ins: 0xa4, p1: 0x04, p2: 0x00, data: h('8025000001FF0100'), ne: 256 }, '00 A4 04 00 00 00 08 80 25 00 00 01 FF 01 00 01 00'],
      [{ cla: 0x00, ins: 0x2a, p1: 0x80, p2: 0x86, data: h('AABB'), ne: 65536 }, '00 2A 80 86 00 00 02 AA BB 00 00'],
      [{ cla: 0x00, ins: 0x2a, p1: 0x80, p2: 0x86, data: h('AABB'), ne: 0x1234 }, '00 2A 80 86 00 00 02 AA BB 12 34'],
    ];
    for (const [f, expected] of table) {
      expect(toHex(new CommandApdu(f).encode({ extended: true })), expected).toBe(hex(expected));
    }
  });

  it('chooses extended form automatically only when the lengths need it', () => {
    const b = { cla: 0x00, ins: 0xb0, p1: 0x00, p2: 0x00 };
    expect(toHex(new CommandApdu({ ...b, ne: 256 }).encode())).toBe('00B0000000');
    expect(toHex(new CommandApdu({ ...b, ne: 257 }).encode())).toBe('00B00000000101');
    expect(toHex(new CommandApdu({ ...b, ne: 65536 }).encode())).toBe('00B00000000000');
    const put = { cla: 0x00, ins: 0xda, p1: 0x01, p2: 0x02 };
    expect(toHex(new CommandApdu({ ...put, data: h(run(256)) }).encode())).toBe(`00DA0102000100${run(256)}`);
    // Nc fits short but Ne does not: the whole command goes extended.
    expect(toHex(new CommandApdu({ ...put, data: h('01'), ne: 257 }).encode())).toBe('00DA010200000101' + '0101');
    // Ne fits short but Nc does not.
    expect(toHex(new CommandApdu({ ...put, data: h(run(256)), ne: 256 }).encode())).toBe(`00DA0102000100${run(256)}0100`);
  });

  it('refuses short form when the lengths do not fit', () => {
    const b = { cla: 0x00, ins: 0xda, p1: 0x00, p2: 0x00 };
    expectApduError(
      () => new CommandApdu({ ...b, data: new Uint8Array(256) }).encode({ extended: false }),
      'Nc=256 / Ne=undefined do not fit a short APDU (Nc ≤ 255, Ne ≤ 256)',
    );
    expectApduError(
      () => new CommandApdu({ ...b, ne: 257 }).encode({ extended: false }),
      'Nc=0 / Ne=257 do not fit a short APDU (Nc ≤ 255, Ne ≤ 256)',
    );
    expectApduError(
      () => new CommandApdu({ ...b, data: new Uint8Array(1), ne: 65536 }).encode({ extended: false }),
      'Nc=1 / Ne=65536 do not fit a short APDU (Nc ≤ 255, Ne ≤ 256)',
    );
  });

  it('encodes the largest command: Nc 65535 and Ne 65536', () => {
    const data = Uint8Array.from({ length: 65535 }, (_, i) => (i * 7) & 0xff);
    const c = new CommandApdu({ cla: 0x00, ins: 0xda, p1: 0x00, p2: 0x00, data, ne: 65536 });
    const wire = c.encode();
    expect(wire.length).toBe(4 + 3 + 65535 + 2);
    expect(toHex(wire.subarray(0, 7))).toBe('00DA0000' + '00FFFF');
    expect(toHex(wire.subarray(7, 7 + 65535))).toBe(toHex(data));
    expect(toHex(wire.subarray(-2))).toBe('0000');
    const back = CommandApdu.decode(wire);
    expect([back.nc, back.ne, back.case]).toEqual([65535, 65536, 4]);
    expect(toHex(back.data)).toBe(toHex(data));
  });

  it('returns a fresh array each time', () => {
    const c = new CommandApdu({ cla: 0x00, ins: 0x20, p1: 0x00, p2: 0x01, data: h('31323334') });
    const first = c.encode();
    first.fill(0xee);
    expect(toHex(c.encode())).toBe('002000010431323334');
    expect(toHex(c.data)).toBe('31323334');
  });
});

describe('CommandApdu.decode', () => {
  it('decodes each of the seven ISO 7816-3 encodings', () => {
    const table: [string, string, number[], string, number | undefined, 1 | 2 | 3 | 4, boolean][] = [
      ['case 1', '00 A4 00 00', [0x00, 0xa4, 0x00, 0x00], '', undefined, 1, false],
      ['case 1, VERIFY query', '00 20 00 01', [0x00, 0x20, 0x00, 0x01], '', undefined, 1, false],
      ['2S, Le 00 = 256', '00 B0 9C 00 00', [0x00, 0xb0, 0x9c, 0x00], '', 256, 2, false],
      ['2S, GET RESPONSE', '00 C0 00 00 27', [0x00, 0xc0, 0x00, 0x00], '', 0x27, 2, false],
      ['2S, Le FF', '00 B0 00 00 FF', [0x00, 0xb0, 0x00, 0x00], '', 255, 2, false],
      ['3S, VERIFY', '00 20 00 01 04 31 32 33 34', [0x00, 0x20, 0x00, 0x01], '31323334', undefined, 3, false],
      ['3S, SELECT MF', '00 A4 00 0C 02 3F 00', [0x00, 0xa4, 0x00, 0x0c], '3F00', undefined, 3, false],
      ['3S, Lc 01', '00 A4 00 0C 01 3F', [0x00, 0xa4, 0x00, 0x0c], '3F', undefined, 3, false],
      ['3S, Lc FF', `00 DA 00 00 FF ${run(255)}`, [0x00, 0xda, 0x00, 0x00], run(255), undefined, 3, false],
      ['3S, SELECT AID (CPS3 trace)', '00 A4 04 00 08 80 25 00 00 01 FF 01 00', [0x00, 0xa4, 0x04, 0x00], '8025000001FF0100', undefined, 3, false],
      ['4S, SELECT AID', '00 A4 04 00 08 80 25 00 00 01 FF 01 00 00', [0x00, 0xa4, 0x04, 0x00], '8025000001FF0100', 256, 4, false],
      ['4S, Le 01', '00 88 00 00 01 AA 01', [0x00, 0x88, 0x00, 0x00], 'AA', 1, 4, false],
      ['4S, Lc FF Le FF', `00 88 00 00 FF ${run(255)} FF`, [0x00, 0x88, 0x00, 0x00], run(255), 255, 4, false],
      ['2E', '00 B0 00 00 00 01 02', [0x00, 0xb0, 0x00, 0x00], '', 258, 2, true],
      ['2E, Le 0100 = 256', '00 B0 9C 00 00 01 00', [0x00, 0xb0, 0x9c, 0x00], '', 256, 2, true],
      ['2E, Le 0000 = 65536', '00 B0 00 00 00 00 00', [0x00, 0xb0, 0x00, 0x00], '', 65536, 2, true],
      ['3E, Lc 0001', '00 DA 00 00 00 00 01 AA', [0x00, 0xda, 0x00, 0x00], 'AA', undefined, 3, true],
      ['3E, Lc 0100', `00 DA 00 00 00 01 00 ${run(256)}`, [0x00, 0xda, 0x00, 0x00], run(256), undefined, 3, true],
      ['4E, Lc 0002 Le 0005', '00 2A 80 86 00 00 02 AA BB 00 05', [0x00, 0x2a, 0x80, 0x86], 'AABB', 5, 4, true],
      ['4E, Le 0000 = 65536', `00 2A 80 86 00 01 01 ${run(257, 3)} 00 00`, [0x00, 0x2a, 0x80, 0x86], run(257, 3), 65536, 4, true],
      ['4E, VERIFY', '00 20 00 01 00 00 04 31 32 33 34 FF FF', [0x00, 0x20, 0x00, 0x01], '31323334', 65535, 4, true],
    ];
    for (const [label, wire, hdr, data, ne, kase, extended] of table) {
      const c = cmd(wire);
      expect(fields(c), label).toEqual([...hdr, data, ne]);
      expect(c.case, label).toBe(kase);
      expect(c.nc, label).toBe(data.length / 2);
      // Each decodes back to its own encoding when re-encoded in the same form.
      expect(toHex(c.encode({ extended })), label).toBe(hex(wire));
    }
  });

  it('treats 5 bytes as case 2S even when the fifth is 00', () => {
    const c = cmd('00 A4 00 00 00');
    expect([c.case, c.ne, c.nc]).toEqual([2, 256, 0]);
  });

  it('rejects fewer than 4 bytes', () => {
    for (const wire of ['', '00', '00 A4', '00 A4 04']) {
      expectApduError(() => cmd(wire), `command APDU of ${hex(wire).length / 2} bytes is shorter than its 4-byte header`);
    }
  });

  it('rejects a short Lc that does not match the body', () => {
    const table: [string, string][] = [
      ['00 A4 00 00 03 AA BB', 'short Lc=3 does not match a body of 3 bytes'], // truncated data
      ['00 A4 00 00 02 AA BB CC DD', 'short Lc=2 does not match a body of 5 bytes'], // 2 bytes too many
      ['00 A4 00 00 01 AA BB CC', 'short Lc=1 does not match a body of 4 bytes'],
      ['00 A4 00 00 FF AA', 'short Lc=255 does not match a body of 2 bytes'],
      ['00 20 00 01 04 31 32 33', 'short Lc=4 does not match a body of 4 bytes'], // VERIFY missing a digit
      ['00 A4 04 00 08 80 25 00 00 01 FF 01 00 00 00', 'short Lc=8 does not match a body of 11 bytes'],
    ];
    for (const [wire, message] of table) expectApduError(() => cmd(wire), message);
  });

  it('rejects a truncated extended length field', () => {
    expectApduError(() => cmd('00 B0 00 00 00 01'), 'extended length field truncated (6 bytes)');
    expectApduError(() => cmd('00 B0 00 00 00 00'), 'extended length field truncated (6 bytes)');
  });

  it('rejects extended Lc 0000', () => {
    expectApduError(() => cmd('00 A4 00 00 00 00 00 AA'), 'extended Lc of 0000 is invalid');
    expectApduError(() => cmd('00 A4 00 00 00 00 00 00'), 'extended Lc of 0000 is invalid');
    expectApduError(() => cmd('00 A4 00 00 00 00 00 00 00'), 'extended Lc of 0000 is invalid');
  });

  it('rejects an extended Lc that does not match the body', () => {
    const table: [string, string][] = [
      ['00 A4 00 00 00 00 03 AA BB', 'extended Lc=3 does not match a body of 5 bytes'], // truncated data
      ['00 A4 00 00 00 00 02 AA BB 05', 'extended Lc=2 does not match a body of 6 bytes'], // 1-byte Le
      ['00 A4 00 00 00 00 02 AA BB 00 05 00', 'extended Lc=2 does not match a body of 8 bytes'], // 3-byte Le
      [`00 DA 00 00 00 01 00 ${run(255)}`, 'extended Lc=256 does not match a body of 258 bytes'],
    ];
    for (const [wire, message] of table) expectApduError(() => cmd(wire), message);
  });

  it('rejects a procedure byte as INS', () => {
    expectApduError(() => cmd('00 6A 00 00'), 'INS 6A is invalid (6X/9X are procedure bytes)');
    expectApduError(() => cmd('A0 9F 00 00 10'), 'INS 9F is invalid (6X/9X are procedure bytes)');
  });

  it('copies the data out of the input buffer and accepts a Buffer', () => {
    const wire = h('002000010431323334');
    const c = CommandApdu.decode(wire);
    wire.fill(0);
    expect(toHex(c.data)).toBe('31323334');
    expect(c.data.buffer).not.toBe(wire.buffer);
    expect(fields(CommandApdu.decode(Buffer.from('00A4000C023F00', 'hex')))).toEqual([0, 0xa4, 0, 0x0c, '3F00', undefined]);
  });
});

describe('CommandApdu toString / toJSON', () => {
  it('prints the header, Lc with the data, and Ne', () => {
    const table: [string, string][] = [
      ['00 A4 00 00', '00 A4 00 00'],
      ['00 B0 9C 00 00', '00 B0 9C 00 Ne=256'],
      ['00 A4 00 0C 02 3F 00', '00 A4 00 0C Lc=2 3F00'],
      ['00 A4 04 00 08 80 25 00 00 01 FF 01 00 00', '00 A4 04 00 Lc=8 8025000001FF0100 Ne=256'],
      ['80 CA 9F 7F 00 00 00', '80 CA 9F 7F Ne=65536'],
      ['FF CA 00 00 00', 'FF CA 00 00 Ne=256'],
    ];
    for (const [wire, text] of table) {
      const c = cmd(wire);
      expect(c.toString()).toBe(text);
      expect(c.toJSON()).toBe(text);
      expect(`${c}`).toBe(text);
      expect(JSON.stringify(c)).toBe(JSON.stringify(text));
    }
  });

  it('never shows the PIN of VERIFY, CHANGE REFERENCE DATA or RESET RETRY COUNTER', () => {
    const table: [string, string, string[]][] = [
      ['00 20 00 01 04 31 32 33 34', '00 20 00 01 Lc=4 <redacted>', ['31323334', '1234']],
      ['00 21 00 01 04 31 32 33 34', '00 21 00 01 Lc=4 <redacted>', ['31323334', '1234']],
      // VERIFY PUK (8 digits).
      ['00 20 00 02 08 31 32 33 34 35 36 37 38', '00 20 00 02 Lc=8 <redacted>', ['3132333435363738', '31323334', '35363738']],
      // CPS2ter VERIFY CHV, padded with FF, with Le.
      ['A0 20 00 00 08 31 32 33 34 FF FF FF FF 00', 'A0 20 00 00 Lc=8 <redacted> Ne=256', ['31323334FFFFFFFF', '31323334']],
      // CHANGE REFERENCE DATA old ‖ new.
      ['00 24 00 01 08 31 32 33 34 39 38 37 36', '00 24 00 01 Lc=8 <redacted>', ['31323334', '39383736']],
      ['00 25 00 01 08 31 32 33 34 39 38 37 36', '00 25 00 01 Lc=8 <redacted>', ['31323334', '39383736']],
      // RESET RETRY COUNTER PUK ‖ new PIN.
      ['00 2C 00 01 0C 31 32 33 34 35 36 37 38 39 38 37 36', '00 2C 00 01 Lc=12 <redacted>', ['35363738', '39383736']],
      ['00 2D 00 01 04 39 38 37 36', '00 2D 00 01 Lc=4 <redacted>', ['39383736', '9876']],
      // Extended encoding of VERIFY.
      ['00 20 00 01 00 00 04 31 32 33 34', '00 20 00 01 Lc=4 <redacted>', ['31323334']],
    ];
    for (const [wire, text, secrets] of table) {
      const c = cmd(wire);
      expect(c.isSecretCarrying).toBe(true);
      const json = JSON.stringify({ apdu: c, list: [c] });
      expect(c.toString()).toBe(text);
      expect(c.toJSON()).toBe(text);
      expect(json).toBe(JSON.stringify({ apdu: text, list: [text] }));
      for (const s of secrets) {
        expect(c.toString()).not.toContain(s);
        expect(json).not.toContain(s);
        expect(String(c)).not.toContain(s);
      }
    }
  });

  it('still shows a VERIFY without data, and data of other instructions', () => {
    expect(cmd('00 20 00 01').toString()).toBe('00 20 00 01');
    expect(cmd('00 22 41 B6 06 80 01 12 84 01 81').toString()).toBe('00 22 41 B6 Lc=6 800112840181');
    expect(cmd('00 DA 00 00 04 31 32 33 34').toString()).toBe('00 DA 00 00 Lc=4 31323334');
  });

  it('redacts arbitrary secret data in any encoding (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SECRET_INS),
        fc.integer({ min: 0, max: 255 }),
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.option(fc.integer({ min: 1, max: 65536 }), { nil: undefined }),
        (ins, cla, data, ne) => {
          const c = new CommandApdu({ cla, ins, p1: 0, p2: 0x81, data, ne });
          const head = toHex(Uint8Array.of(cla, ins, 0, 0x81)).replace(/(..)(?!$)/g, '$1 ');
          const expected = `${head} Lc=${data.length} <redacted>${ne === undefined ? '' : ` Ne=${ne}`}`;
          expect(c.toString()).toBe(expected);
          expect(JSON.stringify(c)).toBe(JSON.stringify(expected));
          expect(CommandApdu.decode(c.encode()).toString()).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});

const headerArb = fc.record({
  cla: fc.integer({ min: 0, max: 255 }),
  ins: fc.integer({ min: 0, max: 255 }).filter((i) => i >> 4 !== 0x6 && i >> 4 !== 0x9),
  p1: fc.integer({ min: 0, max: 255 }),
  p2: fc.integer({ min: 0, max: 255 }),
});

describe('CommandApdu properties', () => {
  it('round-trips arbitrary short commands through encode({ extended: false }) and decode', () => {
    fc.assert(
      fc.property(
        headerArb,
        fc.uint8Array({ maxLength: 255 }),
        fc.option(fc.integer({ min: 1, max: 256 }), { nil: undefined }),
        (hdr, data, ne) => {
          const c = new CommandApdu({ ...hdr, data, ne });
          expect(c.needsExtended).toBe(false);
          const wire = c.encode({ extended: false });
          expect(wire.length).toBe(4 + (data.length > 0 ? 1 + data.length : 0) + (ne === undefined ? 0 : 1));
          // Auto mode picks the short form here.
          expect(toHex(c.encode())).toBe(toHex(wire));
          const back = CommandApdu.decode(wire);
          expect(fields(back)).toEqual([hdr.cla, hdr.ins, hdr.p1, hdr.p2, toHex(data), ne]);
          expect(toHex(back.encode({ extended: false }))).toBe(toHex(wire));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('round-trips arbitrary extended commands through encode({ extended: true }) and decode', () => {
    fc.assert(
      fc.property(
        headerArb,
        fc.oneof(
          { arbitrary: fc.uint8Array({ maxLength: 600 }), weight: 9 },
          { arbitrary: fc.integer({ min: 0, max: 65535 }).map((n) => new Uint8Array(n).fill(0xa5)), weight: 1 },
        ),
        fc.option(fc.integer({ min: 1, max: 65536 }), { nil: undefined }),
        (hdr, data, ne) => {
          const c = new CommandApdu({ ...hdr, data, ne });
          const wire = c.encode({ extended: true });
          const nc = data.length;
          const expectedLength =
            nc === 0 && ne === undefined ? 4 : 4 + (nc > 0 ? 3 + nc : 0) + (ne === undefined ? 0 : nc > 0 ? 2 : 3);
          expect(wire.length).toBe(expectedLength);
          if (expectedLength > 4) expect(wire[4]).toBe(0);
          const back = CommandApdu.decode(wire);
          expect([back.cla, back.ins, back.p1, back.p2, back.nc, back.ne]).toEqual([hdr.cla, hdr.ins, hdr.p1, hdr.p2, nc, ne]);
          expect(Buffer.from(back.data).equals(data)).toBe(true);
          expect(Buffer.from(back.encode({ extended: true })).equals(wire)).toBe(true);
          // Auto mode is the short form when it fits and this extended form otherwise.
          expect(Buffer.from(c.encode()).equals(c.encode({ extended: c.needsExtended }))).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  /** Bytes shaped like one of the seven encodings, then possibly cut short or lengthened. */
  const shaped = fc
    .record({
      header: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      form: fc.constantFrom('1', '2S', '3S', '4S', '2E', '3E', '4E'),
      data: fc.uint8Array({ minLength: 1, maxLength: 300 }),
      le: fc.integer({ min: 0, max: 0xffff }),
      change: fc.integer({ min: -3, max: 3 }),
      extra: fc.uint8Array({ minLength: 3, maxLength: 3 }),
    })
    .map(({ header, form, data, le, change, extra }) => {
      const short = data.subarray(0, 255);
      const parts: number[] = [...header];
      if (form === '2S') parts.push(le & 0xff);
      if (form === '3S' || form === '4S') parts.push(short.length, ...short);
      if (form === '4S') parts.push(le & 0xff);
      if (form === '2E') parts.push(0, le >> 8, le & 0xff);
      if (form === '3E' || form === '4E') parts.push(0, data.length >> 8, data.length & 0xff, ...data);
      if (form === '4E') parts.push(le >> 8, le & 0xff);
      const out = Uint8Array.from(parts);
      if (change < 0) return out.subarray(0, Math.max(0, out.length + change));
      if (change > 0) return Uint8Array.from([...out, ...extra.subarray(0, change)]);
      return out;
    });

  it('decodes any bytes to a command or an ApduFormatError, and decoded commands re-encode identically (10,000 runs)', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), shaped), (bytes) => {
        let c: CommandApdu;
        try {
          c = CommandApdu.decode(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(ApduFormatError);
          expect((e as ApduFormatError).code).toBe('APDU_INVALID');
          return;
        }
        // ISO 7816-3: a body is extended when it is longer than one byte and starts with 00.
        const extended = bytes.length > 5 && bytes[4] === 0;
        expect(toHex(c.encode({ extended }))).toBe(toHex(bytes));
        seen.add(`${c.case}${extended ? 'E' : 'S'}`);
      }),
      { numRuns: 10_000 },
    );
    // The run reached every encoding (case 1 counts as short).
    expect([...seen].sort()).toEqual(['1S', '2E', '2S', '3E', '3S', '4E', '4S']);
  });
});
