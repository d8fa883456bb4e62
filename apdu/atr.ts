import { AtrError } from './errors.js';

/**
 * ISO 7816-3 Answer-To-Reset, as PC/SC reports it: bytes already in logical order whatever the
 * convention (readers undo the inverse convention, so TS is 3F but the other bytes read normally).
 */
export interface Atr {
  /** A copy of the whole ATR. */
  bytes: Uint8Array;
  ts: 'direct' | 'inverse';
  t0: number;
  /** Groups of interface bytes, `i` = 1, 2, 3... as in TA1, TB2, TD3. */
  interfaceBytes: InterfaceBytes[];
  /** Protocols offered (TD low nibbles, first-seen order, T=15 excluded); [0] when there is no TD. */
  protocols: number[];
  historicalBytes: Uint8Array;
  /** Check byte; present exactly when a protocol other than T=0 is indicated. */
  tck: number | undefined;
  /** Whether T0..TCK XOR to zero; undefined when there is no TCK. */
  tckValid: boolean | undefined;
  /** Clock rate conversion integer from TA1 (372 without TA1); undefined for an RFU code. */
  fi: number | undefined;
  /** Baud rate adjustment integer from TA1 (1 without TA1); undefined for an RFU code. */
  di: number | undefined;
  /** TA2 present: the card runs in specific mode, with the protocol below, no PPS. */
  specificMode: boolean;
  specificProtocol: number | undefined;
  /** Extra guard time N from TC1 (default 0). */
  n: number;
  /** T=0 waiting time integer from TC2 (default 10); undefined for the RFU value 0. */
  wi: number | undefined;
  /** T=1 parameters when T=1 is offered (ISO defaults where the ATR is silent). */
  t1: T1Parameters | undefined;
}

export interface InterfaceBytes {
  i: number;
  ta?: number;
  tb?: number;
  tc?: number;
  td?: number;
}

export interface T1Parameters {
  /** Information field size of the card (default 32); undefined for the invalid values 00 and FF. */
  ifsc: number | undefined;
  /** Block and character waiting time integers (defaults 4 and 13). */
  bwi: number;
  cwi: number;
}

export interface ParseAtrOptions {
  /** Throw on a wrong TCK instead of reporting `tckValid: false`. Default false. */
  strictTck?: boolean;
}

// ISO 7816-3: at most 32 characters after TS (PC/SC's MAX_ATR_SIZE is 33 for the same reason).
const MAX_ATR_LENGTH = 33;

// ISO 7816-3 table 7 (Fi from FI) and table 8 (Di from DI); undefined marks RFU codes.
const FI = [372, 372, 558, 744, 1116, 1488, 1860, undefined, undefined, 512, 768, 1024, 1536, 2048, undefined, undefined];
const DI = [undefined, 1, 2, 4, 8, 16, 32, 64, 12, 20, undefined, undefined, undefined, undefined, undefined, undefined];

/**
 * Parses an ATR, checking its structure strictly. A wrong TCK does not throw unless `strictTck`:
 * some readers report such ATRs and the card still works.
 */
export function parseAtr(bytes: Uint8Array, opts: ParseAtrOptions = {}): Atr {
  if (bytes.length > MAX_ATR_LENGTH) {
    throw new AtrError(`ATR is ${bytes.length} bytes, more than the ${MAX_ATR_LENGTH} ISO 7816-3 allows`);
  }
  const [tsByte, t0] = bytes;
  if (tsByte === undefined) throw new AtrError('empty ATR');
  if (tsByte !== 0x3b && tsByte !== 0x3f) throw new AtrError(`invalid TS ${hex(tsByte)} (expected 3B or 3F)`);
  if (t0 === undefined) throw new AtrError('ATR truncated: T0 missing at offset 1');

  let pos = 2;
  const next = (name: string): number => {
    const b = bytes[pos];
    if (b === undefined) throw new AtrError(`ATR truncated: ${name} missing at offset ${pos}`);
    pos++;
    return b;
  };
  const interfaceBytes: InterfaceBytes[] = [];
  // Y (high nibble of T0, then of each TD) says which of TA, TB, TC, TD follow.
  for (let i = 1, y = t0 >> 4; y !== 0; i++) {
    const g: InterfaceBytes = { i };
    if (y & 1) g.ta = next(`TA${i}`);
    if (y & 2) g.tb = next(`TB${i}`);
    if (y & 4) g.tc = next(`TC${i}`);
    if (y & 8) g.td = next(`TD${i}`);
    interfaceBytes.push(g);
    y = g.td === undefined ? 0 : g.td >> 4;
  }

  const tds = interfaceBytes.flatMap((g) => (g.td === undefined ? [] : [g.td & 0x0f]));
  const offered = [...new Set(tds.filter((t) => t !== 15))];
  const protocols = offered.length > 0 ? offered : [0];

  const k = t0 & 0x0f;
  if (bytes.length - pos < k) {
    throw new AtrError(`ATR truncated: T0 announces ${k} historical bytes, only ${bytes.length - pos} present`);
  }
  const historicalBytes = bytes.slice(pos, pos + k);
  pos += k;

  let tck: number | undefined;
  let tckValid: boolean | undefined;
  // ISO 7816-3 8.2.5: TCK is absent if only T=0 is indicated, present in every other case (T=15 included).
  if (tds.some((t) => t !== 0)) {
    tck = bytes[pos];
    if (tck === undefined) throw new AtrError(`ATR truncated: TCK missing at offset ${pos}`);
    pos++;
    tckValid = bytes.subarray(1, pos).reduce((x, b) => x ^ b, 0) === 0;
    if (!tckValid && opts.strictTck) throw new AtrError(`invalid TCK ${hex(tck)}`);
  }
  if (pos !== bytes.length) {
    const after = tck === undefined ? 'historical bytes' : 'TCK';
    throw new AtrError(`${bytes.length - pos} unexpected byte(s) after the ${after} at offset ${pos}`);
  }

  const [g1, g2] = interfaceBytes;
  const ta1 = g1?.ta;
  const ta2 = g2?.ta;
  const tc2 = g2?.tc ?? 10;
  return {
    bytes: bytes.slice(),
    ts: tsByte === 0x3b ? 'direct' : 'inverse',
    t0,
    interfaceBytes,
    protocols,
    historicalBytes,
    tck,
    tckValid,
    fi: ta1 === undefined ? 372 : FI[ta1 >> 4],
    di: ta1 === undefined ? 1 : DI[ta1 & 0x0f],
    specificMode: ta2 !== undefined,
    specificProtocol: ta2 === undefined ? undefined : ta2 & 0x0f,
    n: g1?.tc ?? 0,
    wi: tc2 === 0 ? undefined : tc2,
    t1: protocols.includes(1) ? t1Parameters(interfaceBytes) : undefined,
  };
}

/** "T=0", "T=0, T=1"... for logs and the CLI. */
export function describeProtocols(atr: Pick<Atr, 'protocols'>): string {
  return atr.protocols.map((t) => `T=${t}`).join(', ');
}

// T=1 bytes are TAi/TBi of the group after the first TDi-1 (i > 2) indicating T=1 (ISO 7816-3 11.4);
// TD1 does not count, since TA2/TB2 are global.
function t1Parameters(groups: readonly InterfaceBytes[]): T1Parameters {
  const at = groups.findIndex((g, idx) => idx >= 1 && g.td !== undefined && (g.td & 0x0f) === 1);
  const g = at < 0 ? undefined : groups[at + 1];
  const ifsc = g?.ta ?? 32;
  const tb = g?.tb ?? 0x4d;
  return { ifsc: ifsc === 0x00 || ifsc === 0xff ? undefined : ifsc, bwi: tb >> 4, cwi: tb & 0x0f };
}

const hex = (b: number): string => b.toString(16).toUpperCase().padStart(2, '0');
