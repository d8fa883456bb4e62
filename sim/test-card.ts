import { concatBytes } from '../core/bytes.js';
import { status, withStatus } from './status.js';
import type { VirtualCard } from './vpcd.js';

/**
 * A small ISO 7816-4 test card with T=0 manners, enough to exercise the transport layers end to end
 * (the faithful CPS card lives elsewhere). It answers like a real T=0 card:
 * - case 4 commands get `61xx` and their data through GET RESPONSE, in rounds of at most 256 bytes;
 * - a case 2 command with the wrong Le gets `6Cxx` with the right one;
 * - PUT DATA accepts command chaining (CLA bit 0x10).
 *
 * Instructions: SELECT by AID (`A4 04`), READ BINARY (`B0`) of a 600-byte file, INTERNAL AUTHENTICATE
 * (`88`: answers the data reversed, repeated to P1*256+P2 bytes when P1P2 ≠ 0), PUT DATA (`DA`) and
 * GET DATA (`CA`) of one object, GET RESPONSE (`C0`).
 */
export class TestCard implements VirtualCard {
  static readonly AID = Uint8Array.from([0xf0, 0x63, 0x70, 0x73, 0x64, 0x54, 0x53, 0x54]);
  /** T=0 only (no TD1), 8 historical bytes "cpsdTEST"; no TCK since only T=0 is offered. */
  static readonly ATR = Uint8Array.from([0x3b, 0x08, 0x63, 0x70, 0x73, 0x64, 0x54, 0x45, 0x53, 0x54]);

  readonly atr: Uint8Array;
  readonly file: Uint8Array;
  /** Number of commands seen, GET RESPONSE included (what a benchmark counts at the card). */
  commands = 0;
  #selected = false;
  #pendingOut: Uint8Array = new Uint8Array(0);
  #chain: Uint8Array[] = [];
  #object: Uint8Array = Uint8Array.of(0xca, 0xfe);

  constructor(atr: Uint8Array = TestCard.ATR) {
    this.atr = atr;
    this.file = Uint8Array.from({ length: 600 }, (_, i) => i & 0xff);
  }

  reset(): void {
    this.#selected = false;
    this.#pendingOut = new Uint8Array(0);
    this.#chain = [];
  }

  powerOff(): void {
    this.reset();
  }

  transmit(apdu: Uint8Array): Uint8Array {
    this.commands++;
    if (apdu.length < 4) return status(0x6700);
    const [cla = 0, ins = 0, p1 = 0, p2 = 0] = apdu;
    if ((cla & 0xec) !== 0x00) return status(0x6e00); // class 0x00 / 0x10, channels ignored
    // T=0 sees a 5th byte P3 that is Lc (data follows) or Le (no data).
    const p3 = apdu.length > 4 ? (apdu[4] ?? 0) : undefined;
    const data = apdu.length > 5 ? apdu.subarray(5, 5 + (p3 ?? 0)) : new Uint8Array(0);
    if (apdu.length > 5 && apdu.length !== 5 + (p3 ?? 0) && apdu.length !== 6 + (p3 ?? 0)) return status(0x6700);
    const le = apdu.length === 5 ? (p3 === 0 ? 256 : p3) : undefined;
    if (ins !== 0xc0) this.#pendingOut = new Uint8Array(0);
    if ((cla & 0x10) !== 0 && ins !== 0xda) return status(0x6884);

    switch (ins) {
      case 0xa4: {
        if (p1 !== 0x04) return status(0x6a86);
        this.#selected = equal(data, TestCard.AID);
        return status(this.#selected ? 0x9000 : 0x6a82);
      }
      case 0xb0: {
        if (!this.#selected) return status(0x6986);
        const offset = ((p1 & 0x7f) << 8) | p2;
        if (offset > this.file.length) return status(0x6b00);
        const want = le ?? 256;
        const chunk = this.file.subarray(offset, offset + want);
        return withStatus(chunk, chunk.length < want ? 0x6282 : 0x9000);
      }
      case 0x88: {
        if (data.length === 0) return status(0x6700);
        const size = (p1 << 8) | p2 || data.length;
        const out = new Uint8Array(size);
        const reversed = Uint8Array.from(data).reverse();
        for (let i = 0; i < size; i++) out[i] = reversed[i % reversed.length] ?? 0;
        return this.#offer(out);
      }
      case 0xda: {
        this.#chain.push(Uint8Array.from(data));
        if ((cla & 0x10) !== 0) return status(0x9000);
        this.#object = concatBytes(this.#chain);
        this.#chain = [];
        return status(0x9000);
      }
      case 0xca: {
        const n = this.#object.length;
        if (n > 256) return this.#offer(this.#object);
        if (le !== n) return status(0x6c00 | (n & 0xff)); // T=0: wrong Le, here is the right one
        return withStatus(this.#object, 0x9000);
      }
      case 0xc0: {
        const available = this.#pendingOut.length;
        if (available === 0) return status(0x6985);
        const want = le ?? 256;
        if (want > available) return status(0x6c00 | (available & 0xff));
        const part = this.#pendingOut.subarray(0, want);
        this.#pendingOut = this.#pendingOut.subarray(want);
        return withStatus(part, this.#remainingSw());
      }
      default:
        return status(0x6d00);
    }
  }

  /** T=0 case 4: keep the data for GET RESPONSE and announce its length. */
  #offer(out: Uint8Array): Uint8Array {
    this.#pendingOut = out;
    return status(this.#remainingSw());
  }

  #remainingSw(): number {
    const left = this.#pendingOut.length;
    if (left === 0) return 0x9000;
    return 0x6100 | (left >= 256 ? 0 : left);
  }
}




function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
