/** CPS3 (IAS-ECC), contact and contactless interfaces (docs/driver.md). */
import { CpsCard, ObjectNotFoundError, type HashAlgorithm } from './card.js';
import { AID_CONTACT, AID_CONTACTLESS } from './card.js';
import { concatBytes } from '../core/bytes.js';
import { encodeMidstate, shaMidstate } from './sha-midstate.js';

const EMPTY = new Uint8Array(0);

/** CPS3 contact: IAS-ECC. */
export class Cps3Card extends CpsCard {
  protected applicationAid(): Uint8Array {
    return AID_CONTACT;
  }

  protected defaultAuthKey(): number {
    return 0x82;
  }

  async authenticate(digestInfo: Uint8Array): Promise<Uint8Array> {
    const { auth, application } = await this.objects();
    const ref = auth.keyReference ?? this.defaultAuthKey();
    return this.op('authenticate', async () => {
      await this.select(application);
      (await this.send(0x22, 0x41, 0xa4, Uint8Array.of(0x80, 0x01, 0x02, 0x84, 0x01, ref))).check();
      return (await this.send(0x88, 0x00, 0x00, digestInfo, 256)).check().data;
    });
  }

  async sign(hash: HashAlgorithm, input: { message: Uint8Array } | { digest: Uint8Array }): Promise<Uint8Array> {
    const { sign, application } = await this.objects();
    const ref = sign.keyReference ?? 0x81;
    return this.op('sign', async () => {
      await this.select(application);
      const dst = Uint8Array.of(0x80, 0x01, hash === 'sha1' ? 0x12 : 0x42, 0x84, 0x01, ref);
      if ('digest' in input) {
        (await this.send(0x22, 0x41, 0xb6, dst)).check();
        return (await this.send(0x2a, 0x9e, 0x9a, input.digest, 256)).check().data;
      }
      // IAS: the card finishes the hash (docs/card-facts.md §3.5 b).
      (await this.send(0x22, 0x41, 0xaa, Uint8Array.of(0x80, 0x01, hash === 'sha1' ? 0x10 : 0x40))).check();
      (await this.send(0x22, 0x41, 0xb6, dst)).check();
      const { state, bitCount, tail } = shaMidstate(hash, input.message);
      // Nothing hashed yet (message ≤ 64 bytes): an empty tag 90, as Cryptolib sends it.
      const midstate = bitCount === 0n ? EMPTY : encodeMidstate(state, bitCount);
      const body = concatBytes([Uint8Array.of(0x90, midstate.length), midstate, Uint8Array.of(0x80, tail.length), tail]);
      (await this.send(0x2a, 0x90, 0xa0, body)).check();
      return (await this.send(0x2a, 0x9e, 0x9a, undefined, 256)).check().data;
    });
  }
}

/** CPS3 contactless: the technical authentication key, usable without PIN; no signature. */
export class Cps3ContactlessCard extends Cps3Card {
  protected override applicationAid(): Uint8Array {
    return AID_CONTACTLESS;
  }

  protected override defaultAuthKey(): number {
    return 0x83; // the technical authentication key
  }

  override sign(): Promise<Uint8Array> {
    return Promise.reject(new ObjectNotFoundError('a contactless CPS cannot sign'));
  }
}
