/** CPS4: ChipDoc on logical channel 1 (docs/driver.md). */
import { createHash } from 'node:crypto';
import { CommandApdu } from '../apdu/command.js';
import { CardProtocolError, fromHex } from '../apdu/errors.js';
import type { ResponseApdu } from '../apdu/response.js';
import { AID_CONTACT, AID_IAS, CpsCard, type HashAlgorithm } from './card.js';

/** CPS4: ChipDoc on logical channel 1 (cps-cards.md §3.8). */
export class Cps4Card extends CpsCard {
  protected override readonly cla = 0x01;
  #opened = false;

  protected applicationAid(): Uint8Array {
    return AID_CONTACT;
  }

  /** Cryptolib's reselection sequence; again after 6985 ("reselect ChipDoc"). */
  async #open(): Promise<void> {
    const select = (cla: number, aid: Uint8Array): Promise<ResponseApdu> =>
      this.channel.transmit(new CommandApdu({ cla, ins: 0xa4, p1: 0x04, p2: 0x0c, data: aid }));
    (await select(0x01, fromHex('A0000001510000'))).check();
    (await select(0x00, fromHex('8025000001FF0002'))).check();
    (await select(0x01, AID_IAS)).check();
    this.#opened = true;
  }

  protected override async send(ins: number, p1: number, p2: number, data?: Uint8Array, ne?: number): Promise<ResponseApdu> {
    if (!this.#opened) await this.#open();
    let r = await super.send(ins, p1, p2, data, ne);
    if (r.sw === 0x6985 && !(ins === 0x2a || ins === 0x22)) {
      await this.#open();
      r = await super.send(ins, p1, p2, data, ne);
    }
    return r;
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
    const { application } = await this.objects();
    return this.op('authenticate', async () => {
      await this.select(application);
      (await this.send(0x22, 0x41, 0xb8, Uint8Array.of(0x83, 0x01, 0x20))).check();
      const k = 256;
      if (digestInfo.length > k - 11) throw new CardProtocolError('input too long for the key');
      const block = new Uint8Array(k).fill(0xff);
      block[0] = 0x00;
      block[1] = 0x01;
      block[k - digestInfo.length - 1] = 0x00;
      block.set(digestInfo, k - digestInfo.length);
      return (await this.send(0x2a, 0x80, 0x86, block, 256)).check().data;
    });
  }

  async sign(hash: HashAlgorithm, input: { message: Uint8Array } | { digest: Uint8Array }): Promise<Uint8Array> {
    const { application } = await this.objects();
    const digest = 'digest' in input ? input.digest : sha(hash, input.message);
    return this.op('sign', async () => {
      await this.select(application);
      (await this.send(0x22, 0x81, 0xb6, Uint8Array.of(0x91, 0x02, hash === 'sha1' ? 0x0a : 0x28, 0x90))).check();
      return (await this.send(0x2a, 0x9e, 0x9a, digest, 256)).check().data;
    });
  }
}

function sha(hash: HashAlgorithm, message: Uint8Array): Uint8Array {
  return new Uint8Array(createHash(hash).update(message).digest());
}

