import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../core/bytes.js';

describe('hex helpers', () => {
  it('round-trips and accepts separators', () => {
    expect(toHex(fromHex('3b:ac 00'))).toBe('3BAC00');
    expect(fromHex('')).toEqual(new Uint8Array(0));
  });
  it('rejects odd length and bad digits', () => {
    expect(() => fromHex('abc')).toThrow(TypeError);
    expect(() => fromHex('zz')).toThrow(TypeError);
  });
});
