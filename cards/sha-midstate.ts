/**
 * SHA-1 and SHA-256 at the block level, to resume a hash from its internal state as the CPS3 does in
 * PSO HASH (docs/card-facts.md §3.5 b): the host hashes the complete 64-byte blocks, sends the raw state and
 * the number of bits hashed, and the card finishes with the tail and the standard padding.
 */

import { CpsdError } from '../core/errors.js';

export type ShaAlgorithm = 'sha1' | 'sha256';

export class MidstateError extends CpsdError {
  readonly code = 'MIDSTATE_INVALID';
}

const STATE_BYTES: Readonly<Record<ShaAlgorithm, number>> = { sha1: 20, sha256: 32 };

const SHA1_IV = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
const SHA256_IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const K256 = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
];

const rotl = (x: number, n: number): number => ((x << n) | (x >>> (32 - n))) >>> 0;
const rotr = (x: number, n: number): number => ((x >>> n) | (x << (32 - n))) >>> 0;

function word(block: Uint8Array, i: number): number {
  return (((block[i] ?? 0) << 24) | ((block[i + 1] ?? 0) << 16) | ((block[i + 2] ?? 0) << 8) | (block[i + 3] ?? 0)) >>> 0;
}

function sha1Block(h: Uint32Array, block: Uint8Array): void {
  const w = new Uint32Array(80);
  for (let i = 0; i < 16; i++) w[i] = word(block, i * 4);
  for (let i = 16; i < 80; i++) w[i] = rotl((w[i - 3] ?? 0) ^ (w[i - 8] ?? 0) ^ (w[i - 14] ?? 0) ^ (w[i - 16] ?? 0), 1);
  let [a, b, c, d, e] = [h[0] ?? 0, h[1] ?? 0, h[2] ?? 0, h[3] ?? 0, h[4] ?? 0];
  for (let i = 0; i < 80; i++) {
    let f: number;
    let k: number;
    if (i < 20) [f, k] = [(b & c) | (~b & d), 0x5a827999];
    else if (i < 40) [f, k] = [b ^ c ^ d, 0x6ed9eba1];
    else if (i < 60) [f, k] = [(b & c) | (b & d) | (c & d), 0x8f1bbcdc];
    else [f, k] = [b ^ c ^ d, 0xca62c1d6];
    const t = (rotl(a, 5) + (f >>> 0) + e + k + (w[i] ?? 0)) >>> 0;
    [e, d, c, b, a] = [d, c, rotl(b, 30), a, t];
  }
  h[0] = (h[0] ?? 0) + a;
  h[1] = (h[1] ?? 0) + b;
  h[2] = (h[2] ?? 0) + c;
  h[3] = (h[3] ?? 0) + d;
  h[4] = (h[4] ?? 0) + e;
}

function sha256Block(h: Uint32Array, block: Uint8Array): void {
  const w = new Uint32Array(64);
  for (let i = 0; i < 16; i++) w[i] = word(block, i * 4);
  for (let i = 16; i < 64; i++) {
    const w15 = w[i - 15] ?? 0;
    const w2 = w[i - 2] ?? 0;
    const s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >>> 3);
    const s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >>> 10);
    w[i] = (w[i - 16] ?? 0) + s0 + (w[i - 7] ?? 0) + s1;
  }
  let a: number = h[0] ?? 0;
  let b: number = h[1] ?? 0;
  let c: number = h[2] ?? 0;
  let d: number = h[3] ?? 0;
  let e: number = h[4] ?? 0;
  let f: number = h[5] ?? 0;
  let g: number = h[6] ?? 0;
  let hh: number = h[7] ?? 0;
  for (let i = 0; i < 64; i++) {
    const s1: number = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    const ch: number = (e & f) ^ (~e & g);
    const t1: number = (hh + s1 + ch + (K256[i] ?? 0) + (w[i] ?? 0)) >>> 0;
    const s0: number = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    const maj: number = (a & b) ^ (a & c) ^ (b & c);
    const t2: number = (s0 + maj) >>> 0;
    [hh, g, f, e, d, c, b, a] = [g, f, e, (d + t1) >>> 0, c, b, a, (t1 + t2) >>> 0];
  }
  const out = [a, b, c, d, e, f, g, hh];
  for (let i = 0; i < 8; i++) h[i] = (h[i] ?? 0) + (out[i] ?? 0);
}

const BLOCK: Readonly<Record<ShaAlgorithm, (h: Uint32Array, block: Uint8Array) => void>> = {
  sha1: sha1Block,
  sha256: sha256Block,
};

function toBytes(h: Uint32Array): Uint8Array {
  const out = new Uint8Array(h.length * 4);
  h.forEach((v, i) => {
    out[i * 4] = v >>> 24;
    out[i * 4 + 1] = (v >>> 16) & 0xff;
    out[i * 4 + 2] = (v >>> 8) & 0xff;
    out[i * 4 + 3] = v & 0xff;
  });
  return out;
}

function fromBytes(alg: ShaAlgorithm, state: Uint8Array): Uint32Array {
  if (state.length !== STATE_BYTES[alg]) {
    throw new MidstateError(`${alg} state must be ${STATE_BYTES[alg]} bytes, got ${state.length}`);
  }
  const h = new Uint32Array(state.length / 4);
  for (let i = 0; i < h.length; i++) h[i] = word(state, i * 4);
  return h;
}

export function initialState(alg: ShaAlgorithm): Uint8Array {
  return toBytes(Uint32Array.from(alg === 'sha1' ? SHA1_IV : SHA256_IV));
}

/**
 * Host side: hashes the complete blocks and keeps the tail for the card. A message whose length is a
 * positive multiple of 64 keeps its last block as the tail, since the card wants 1..64 tail bytes.
 */
export function shaMidstate(alg: ShaAlgorithm, message: Uint8Array): { state: Uint8Array; bitCount: bigint; tail: Uint8Array } {
  const h = fromBytes(alg, initialState(alg));
  let full = Math.floor(message.length / 64);
  if (full > 0 && message.length % 64 === 0) full--;
  for (let i = 0; i < full; i++) BLOCK[alg](h, message.subarray(i * 64, i * 64 + 64));
  return { state: toBytes(h), bitCount: BigInt(full * 512), tail: message.slice(full * 64) };
}

/** Card side: finishes the hash from a state after `bitCount` bits and the remaining tail (≤ 64 bytes). */
export function shaResume(alg: ShaAlgorithm, state: Uint8Array, bitCount: bigint, tail: Uint8Array): Uint8Array {
  const h = fromBytes(alg, state);
  if (bitCount < 0n || bitCount % 512n !== 0n || bitCount >= 2n ** 64n) {
    throw new MidstateError(`bit count ${bitCount} is not a multiple of 512 below 2^64`);
  }
  if (tail.length > 64) throw new MidstateError(`tail of ${tail.length} bytes exceeds one block`);
  const total = bitCount + BigInt(tail.length) * 8n;
  // Padding: 0x80, zeros, 64-bit big-endian length; one or two blocks.
  const padded = new Uint8Array(tail.length + 9 <= 64 ? 64 : tail.length + 9 <= 128 ? 128 : 192);
  padded.set(tail);
  padded[tail.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setBigUint64(padded.length - 8, total);
  for (let i = 0; i < padded.length; i += 64) BLOCK[alg](h, padded.subarray(i, i + 64));
  return toBytes(h);
}

/** The value of PSO HASH tag 90: state ‖ 8-byte big-endian bit count. */
export function encodeMidstate(state: Uint8Array, bitCount: bigint): Uint8Array {
  const out = new Uint8Array(state.length + 8);
  out.set(state);
  new DataView(out.buffer).setBigUint64(state.length, bitCount);
  return out;
}

/** Inverse of encodeMidstate; an empty value means nothing was hashed before (`90 00`). */
export function decodeMidstate(alg: ShaAlgorithm, value: Uint8Array): { state: Uint8Array; bitCount: bigint } {
  if (value.length === 0) return { state: initialState(alg), bitCount: 0n };
  if (value.length !== STATE_BYTES[alg] + 8) {
    throw new MidstateError(`${alg} midstate must be ${STATE_BYTES[alg] + 8} bytes, got ${value.length}`);
  }
  const state = value.slice(0, STATE_BYTES[alg]);
  const bitCount = new DataView(value.buffer, value.byteOffset + STATE_BYTES[alg], 8).getBigUint64(0);
  if (bitCount % 512n !== 0n) throw new MidstateError(`bit count ${bitCount} is not a multiple of 512`);
  return { state, bitCount };
}
