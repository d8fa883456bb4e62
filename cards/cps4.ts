/** CPS4: ChipDoc on logical channel 1 (docs/driver.md). */
import { createHash } from 'node:crypto';
import { CommandApdu } from '../apdu/command.js';
import { fromHex } from '../core/bytes.js';
import { CardProtocolError } from '../apdu/errors.js';
import type { ResponseApdu } from '../apdu/response.js';
import { ConditionsNotSatisfiedError } from '../apdu/status.js';
import { AID_CONTACT, AID_IAS, CpsCard, type HashAlgorithm } from './card.js';
import { emsaPssEncode } from './pss.js';

/** CPS4 keys are RSA-2048 (docs/card-facts.md §3.8). */
const KEY_BYTES = 256;

/** Operations run again after a 6985: reads, PIN status, VERIFY (refused, so not counted), logout. */
const REPEATABLE = /^(serial|actua|directories|read .*|PIN status|verify PIN|logout)$/;

/** CPS4: ChipDoc on logical channel 1 (docs/card-facts.md §3.8). */
export class Cps4Card extends CpsCard {
  protected override readonly cla = 0x01;
  #opened = false;

  protected applicationAid(): Uint8Array {
    return AID_CONTACT;
  }

  /** Cryptolib's selection sequence: ChipDoc on channel 1, the CPS2ter volet on channel 0, IAS on 1. */
  async #open(): Promise<void> {
    const select = (cla: number, aid: Uint8Array): Promise<ResponseApdu> =>
      this.channel.transmit(new CommandApdu({ cla, ins: 0xa4, p1: 0x04, p2: 0x0c, data: aid }));
    this.#opened = false;
    (await select(0x01, fromHex('A0000001510000'))).check();
    (await select(0x00, fromHex('8025000001FF0002'))).check();
    (await select(0x01, AID_IAS)).check();
    this.#opened = true;
  }

  protected override send(ins: number, p1: number, p2: number, data?: Uint8Array, ne?: number): Promise<ResponseApdu> {
    return this.#opened ? super.send(ins, p1, p2, data, ne) : this.#open().then(() => super.send(ins, p1, p2, data, ne));
  }

  /**
   * A CPS4 may answer 6985 in the middle of a sequence (Cryptolib 5.2.2 had to recover from it): ChipDoc
   * is selected again, and an operation that only reads, or whose command the card refused without
   * executing it, runs again once from its start (its files are selected again). A key operation does
   * not: reselecting ChipDoc drops the verified PIN and the security environment, and only the person may
   * present the PIN again; it fails with its own message, the session resets the card, the next one works.
   */
  protected override op<T>(name: string, body: () => Promise<T>): Promise<T> {
    return super.op(name, async () => {
      try {
        return await body();
      } catch (error) {
        if (!(error instanceof ConditionsNotSatisfiedError && error.sw === 0x6985)) throw error;
        if (!REPEATABLE.test(name)) {
          throw new ConditionsNotSatisfiedError(0x6985, `the CPS4 refused the ${name} sequence (6985): the card is reset; the PIN is still valid, try again`);
        }
        await this.#open();
        return body();
      }
    });
  }

  protected override pinReference(): number {
    return 0x81; // ChipDoc names the global PIN with b8 set (card-cps4.c)
  }

  protected override async unblock(puk: Uint8Array, pin: Uint8Array): Promise<void> {
    (await this.send(0x20, 0x00, 0x82, puk)).check();
    (await this.send(0x2c, 0x03, 0x81)).check();
    (await this.send(0x24, 0x01, 0x81, pin)).check();
  }

  /** Raw RSA on a PKCS#1 type-01 block the host builds (CPS4 has no INTERNAL AUTHENTICATE). */
  async authenticate(digestInfo: Uint8Array): Promise<Uint8Array> {
    const k = KEY_BYTES;
    if (digestInfo.length > k - 11) throw new CardProtocolError('input too long for the key');
    const block = new Uint8Array(k).fill(0xff);
    block[0] = 0x00;
    block[1] = 0x01;
    block[k - digestInfo.length - 1] = 0x00;
    block.set(digestInfo, k - digestInfo.length);
    return this.#rawAuthenticate(block);
  }

  override supportsPss(): boolean {
    return true;
  }

  /** The host pads for PSS as for PKCS#1 v1.5: the card only does the raw RSA operation. */
  override authenticatePss(hash: HashAlgorithm, digest: Uint8Array, saltLength: number): Promise<Uint8Array> {
    return this.#rawAuthenticate(emsaPssEncode(hash, digest, saltLength, KEY_BYTES * 8));
  }

  async #rawAuthenticate(block: Uint8Array): Promise<Uint8Array> {
    const { application } = await this.objects();
    return this.op('authenticate', async () => {
      await this.select(application);
      (await this.send(0x22, 0x41, 0xb8, Uint8Array.of(0x83, 0x01, 0x20))).check();
      return (await this.send(0x2a, 0x80, 0x86, block, 256)).check().data;
    });
  }

  async sign(hash: HashAlgorithm, input: { message: Uint8Array } | { digest: Uint8Array }): Promise<Uint8Array> {
    const digest = 'digest' in input ? input.digest : sha(hash, input.message);
    return this.#sign(hash === 'sha1' ? 0x0a : 0x28, digest);
  }

  /** ChipDoc's PSS algorithms (0x15 SHA-1, 0x2C SHA-256): salt as long as the hash (docs/card-facts.md §3.8). */
  override signPss(hash: HashAlgorithm, digest: Uint8Array): Promise<Uint8Array> {
    return this.#sign(hash === 'sha1' ? 0x15 : 0x2c, digest);
  }

  async #sign(algorithm: number, digest: Uint8Array): Promise<Uint8Array> {
    const { application } = await this.objects();
    return this.op('sign', async () => {
      await this.select(application);
      (await this.send(0x22, 0x81, 0xb6, Uint8Array.of(0x91, 0x02, algorithm, 0x90))).check();
      return (await this.send(0x2a, 0x9e, 0x9a, digest, 256)).check().data;
    });
  }
}

function sha(hash: HashAlgorithm, message: Uint8Array): Uint8Array {
  return new Uint8Array(createHash(hash).update(message).digest());
}

