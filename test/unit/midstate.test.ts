/** SHA-1/SHA-256 resumed from a midstate, as the CPS3 finishes PSO HASH (docs/card-facts.md §3.5 b). */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.js';
import { decodeMidstate, encodeMidstate, initialState, MidstateError, shaMidstate, shaResume } from '../../cards/sha-midstate.js';

const message = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);

/**
 * NIST's published example (FIPS 180 examples, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
 * a two-block message): the intermediate hash value after the first block. A message whose first
 * 64 bytes are that block must give this state: an oracle that is not our own code.
 */
const NIST_BLOCK = Buffer.concat([Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'), Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0])]);
const NIST_H1 = {
  sha1: 'F4286818C37B27AE0408F581846771484A566572',
  sha256: '85E655D6417A17953363376A624CDE5C76E09589CAC5F811CC4B32C1F20E533A',
} as const;

describe('SHA midstate against NIST', () => {
  for (const alg of ['sha1', 'sha256'] as const) {
    it(`gives NIST's intermediate ${alg} state after the first block`, () => {
      const r = shaMidstate(alg, new Uint8Array(Buffer.concat([NIST_BLOCK, Buffer.from('tail')])));
      expect(toHex(r.state)).toBe(NIST_H1[alg]);
      expect(r.bitCount).toBe(512n);
      expect(Buffer.from(r.tail).toString()).toBe('tail');
    });
  }
});

describe('SHA midstate', () => {
  for (const alg of ['sha1', 'sha256'] as const) {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 128, 1000, 4096]) {
      it(`${alg}: resuming after ${n} bytes gives node:crypto's digest`, () => {
        const m = message(n);
        const { state, bitCount, tail } = shaMidstate(alg, m);
        expect(tail.length).toBeLessThanOrEqual(64);
        if (n > 0) expect(tail.length).toBeGreaterThan(0); // the card wants 1..64 tail bytes
        expect(toHex(shaResume(alg, state, bitCount, tail))).toBe(toHex(createHash(alg).update(m).digest()));
      });
    }

    it(`${alg}: any message (property)`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 600 }), (m) => {
          const { state, bitCount, tail } = shaMidstate(alg, m);
          expect(toHex(shaResume(alg, state, bitCount, tail))).toBe(toHex(createHash(alg).update(m).digest()));
        }),
        { numRuns: 300 },
      );
    });
  }

  it('encodes state ‖ 64-bit bit count and decodes it back; empty means nothing hashed', () => {
    const { state, bitCount } = shaMidstate('sha256', message(200));
    const value = encodeMidstate(state, bitCount);
    expect(value.length).toBe(40);
    expect(toHex(value.subarray(32))).toBe('0000000000000600'); // 3 blocks = 1536 bits
    const back = decodeMidstate('sha256', value);
    expect([toHex(back.state), back.bitCount]).toEqual([toHex(state), 1536n]);
    expect(toHex(decodeMidstate('sha1', new Uint8Array(0)).state)).toBe(toHex(initialState('sha1')));
  });

  it('refuses a bad state length, a bit count off a block boundary, or a tail over one block', () => {
    const bad = [
      () => shaResume('sha1', new Uint8Array(32), 0n, new Uint8Array(0)),
      () => shaResume('sha256', initialState('sha256'), 100n, new Uint8Array(0)),
      () => shaResume('sha256', initialState('sha256'), 0n, new Uint8Array(65)),
      () => decodeMidstate('sha1', new Uint8Array(27)),
    ];
    for (const f of bad) {
      expect(f).toThrow(MidstateError);
      try {
        f();
      } catch (e) {
        expect((e as MidstateError).code).toBe('MIDSTATE_INVALID');
      }
    }
  });
});
