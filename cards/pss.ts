/**
 * EMSA-PSS encoding (RFC 8017 §9.1.1) of a hash, for a card that signs a block the host padded (the
 * CPS4 authentication key: raw RSA, docs/card-facts.md §3.8). MGF1 uses the same hash as the message.
 * node:crypto only pads inside its own private-key operations, so the block is built here; the tests
 * check the card's signatures with node:crypto's PSS verification.
 */
import { createHash, randomBytes } from 'node:crypto';
import { CardProtocolError } from '../apdu/errors.js';
import type { HashAlgorithm } from './card.js';

const LENGTH: Readonly<Record<HashAlgorithm, number>> = { sha1: 20, sha256: 32 };

function mgf1(hash: HashAlgorithm, seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let counter = 0, done = 0; done < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    const block = createHash(hash).update(seed).update(c).digest();
    out.set(block.subarray(0, Math.min(block.length, length - done)), done);
    done += block.length;
  }
  return out;
}

/** The encoded message EM for a key of `modBits` bits; `mHash` is the message's hash. */
export function emsaPssEncode(hash: HashAlgorithm, mHash: Uint8Array, saltLength: number, modBits: number): Uint8Array {
  const hLen = LENGTH[hash];
  if (mHash.length !== hLen) throw new CardProtocolError(`a ${hash} hash is ${hLen} bytes`);
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  if (emLen < hLen + saltLength + 2) throw new CardProtocolError('salt too long for the key');
  const salt = randomBytes(saltLength);
  const h = createHash(hash).update(new Uint8Array(8)).update(mHash).update(salt).digest();
  const db = new Uint8Array(emLen - hLen - 1);
  db[emLen - saltLength - hLen - 2] = 0x01;
  db.set(salt, emLen - saltLength - hLen - 1);
  const mask = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i] = (db[i] as number) ^ (mask[i] as number);
  db[0] = (db[0] as number) & (0xff >> (8 * emLen - emBits));
  const em = new Uint8Array(emLen);
  em.set(db, 0);
  em.set(h, db.length);
  em[emLen - 1] = 0xbc;
  return em;
}
