/**
 * The CPx card driver: one interface for every supported card, one class per behaviour (CPS3 contact,
 * CPS3 contactless, CPS4 ChipDoc), in the spirit of libelectronic-id. Objects are found through the
 * card's own directories (EF.DIR → ODF → CDF/PrKDF/AODF/DODF); only [V] facts are hard-coded.
 *
 * Rules: a VERIFY with data is only ever sent with a PIN the caller just got from a person; one
 * operation at a time per card, each with a timeout; every operation starts by selecting what it needs
 * (another middleware may have moved the card's current file in between).
 */
import { CardChannel, type ApduTransport } from '../apdu/channel.js';
import { CommandApdu } from '../apdu/command.js';
import { CardProtocolError, CpsdError, bytesEqual, concatBytes, fromHex, toHex } from '../apdu/errors.js';
import { ResponseApdu } from '../apdu/response.js';
import { PinBlockedError, statusError } from '../apdu/status.js';
import type { CpsCardKind } from './atr-table.js';
import {
  parseAodf,
  parseCdf,
  parseDodf,
  parseEfDir,
  parseOdf,
  parsePrkdf,
  type PinObject,
  type Pkcs15Object,
  type PrivateKeyObject,
} from './pkcs15.js';

export type HashAlgorithm = 'sha1' | 'sha256';

export interface PinStatus {
  triesLeft: number;
  max: number;
  blocked: boolean;
  /** The PIN is verified in the card's current security state. */
  verified: boolean;
}

export interface CertificateRef {
  label: string;
  id: Uint8Array | undefined;
  path: Uint8Array;
}

export interface CardObjects {
  application: Uint8Array;
  auth: { certificate: CertificateRef | undefined; keyReference: number | undefined };
  sign: { certificate: CertificateRef | undefined; keyReference: number | undefined };
  pin: PinObject;
  dataObjects: Pkcs15Object[];
}

export interface CpsCardOptions {
  /** Per-operation timeout; the card queue waits for the operation to really end anyway. Default 30 s. */
  timeoutMs?: number;
  /** Le of each READ BINARY. Default 256 (0 on the wire); Cryptolib uses 0xE7. */
  readChunk?: number;
}

export class PinFormatError extends CpsdError {
  readonly code = 'PIN_FORMAT';
}

/** The card has one try left: it is only spent when the caller explicitly allows it. */
export class LastPinTryError extends CpsdError {
  readonly code = 'PIN_LAST_TRY';
}

export class CardTimeoutError extends CpsdError {
  readonly code = 'CARD_TIMEOUT';
}

/** The card lacks an object the operation needs (no signature key on a contactless card…). */
export class ObjectNotFoundError extends CpsdError {
  readonly code = 'OBJECT_NOT_FOUND';
}

/** [V] cps-cards.md §2.1. */
export const AID_CONTACT = fromHex('E8 28 BD 08 0F 80 25 00 00 01 FF 00 10');
export const AID_CONTACTLESS = fromHex('E8 28 BD 08 0F 80 25 00 00 01 FF 00 20');
export const AID_IAS = fromHex('80 25 00 00 01 FF 01 00');
const SN_PREFIX = '8025000001';

const DIGEST_INFO: Readonly<Record<HashAlgorithm, Uint8Array>> = {
  sha1: fromHex('3021300906052B0E03021A05000414'),
  sha256: fromHex('3031300D060960864801650304020105000420'),
};


export abstract class CpsCard {
  readonly kind: CpsCardKind;
  readonly atr: Uint8Array;
  protected readonly channel: CardChannel;
  protected readonly cla: number = 0x00;
  readonly #timeoutMs: number;
  readonly #chunk: number;
  #queue: Promise<unknown> = Promise.resolve();
  #objects: CardObjects | undefined;

  constructor(transport: ApduTransport, atr: Uint8Array, kind: CpsCardKind, options: CpsCardOptions) {
    this.kind = kind;
    this.atr = atr;
    this.channel = new CardChannel(transport);
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#chunk = options.readChunk ?? 256;
  }

  // ------------------------------------------------------------ plumbing

  /** Runs one operation alone on the card, with a timeout. */
  protected op<T>(name: string, body: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(body);
    this.#queue = run.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CardTimeoutError(`${name} took more than ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    return Promise.race([run, timeout]).finally(() => clearTimeout(timer));
  }

  protected send(ins: number, p1: number, p2: number, data?: Uint8Array, ne?: number): Promise<ResponseApdu> {
    return this.channel.transmit(new CommandApdu({ cla: this.cla, ins, p1, p2, data, ne }));
  }

  /** SELECT by absolute path (with 3F00, as the CPS driver sends it), no FCP. */
  protected async select(path: Uint8Array): Promise<void> {
    (await this.send(0xa4, 0x09, 0x0c, path)).check();
  }

  /** Reads a whole transparent EF: the DER/BER length in the first bytes tells how much to read. */
  protected async readFile(path: Uint8Array): Promise<Uint8Array> {
    await this.select(path);
    const first = (await this.send(0xb0, 0, 0, undefined, this.#chunk)).check({ allow: [0x6282] });
    const total = berTotalLength(first.data);
    const parts = [first.data];
    let have = first.data.length;
    while (first.sw === 0x9000 && have < total) {
      const r = (await this.send(0xb0, have >> 8, have & 0xff, undefined, Math.min(this.#chunk, total - have))).check({ allow: [0x6282] });
      if (r.data.length === 0) break;
      parts.push(r.data);
      have += r.data.length;
      if (r.sw === 0x6282) break;
    }
    const out = new Uint8Array(have);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out.subarray(0, Math.min(have, total));
  }

  // ------------------------------------------------------------ identification

  /** The chip serial: digits after 8025000001 in EF.SN.ICC (3F00/D003), prefix checked [V]. */
  serial(): Promise<string> {
    return this.op('serial', async () => {
      await this.select(fromHex('3F00D003'));
      const r = (await this.send(0xb0, 0, 0, undefined, 12)).check({ allow: [0x6282] });
      const hex = toHex(r.data);
      if (r.data.length !== 12 || r.data[0] !== 0x5a || r.data[1] !== 0x0a || !hex.startsWith(`5A0A${SN_PREFIX}`)) {
        throw new CardProtocolError(`EF.SN.ICC is not a CPS serial number: ${hex}`);
      }
      return hex.slice(4 + SN_PREFIX.length);
    });
  }

  /** EF_ACTUA (3F00/D010): undefined on a card never updated (6A82) [V]. The cache key. */
  actua(): Promise<Uint8Array | undefined> {
    return this.op('actua', async () => {
      const r = await this.send(0xa4, 0x09, 0x0c, fromHex('3F00D010'));
      if (r.sw === 0x6a82) return undefined;
      r.check();
      const first = (await this.send(0xb0, 0, 0, undefined, 64)).check({ allow: [0x6282] });
      return first.data.subarray(0, Math.min(first.data.length, berTotalLength(first.data)));
    });
  }

  protected abstract applicationAid(): Uint8Array;

  /** Uses directories read earlier from the same card (public-data cache): saves about a dozen APDUs. */
  useObjects(objects: CardObjects): void {
    this.#objects = objects;
  }

  /** Finds the application and its objects through EF.DIR and the PKCS#15 directories (read once). */
  objects(): Promise<CardObjects> {
    if (this.#objects) return Promise.resolve(this.#objects);
    return this.op('directories', async () => {
      const apps = parseEfDir(await this.readDirFile(fromHex('3F002F00')));
      const aid = this.applicationAid();
      const app = apps.find((a) => bytesEqual(a.aid, aid));
      if (!app) throw new ObjectNotFoundError(`application ${toHex(aid)} not in EF.DIR`);
      const appPath = app.path ?? fromHex(aid === AID_CONTACTLESS ? '3F000002' : '3F000001');
      const odf = parseOdf(await this.readDirFile(concatBytes([appPath, fromHex('5031')])), appPath);
      const certs = odf.cdf ? parseCdf(await this.readDirFile(odf.cdf), appPath) : [];
      const keys = odf.prkdf ? parsePrkdf(await this.readDirFile(odf.prkdf), appPath) : [];
      const pins = odf.aodf ? parseAodf(await this.readDirFile(odf.aodf)) : [];
      const data = odf.dodf ? parseDodf(await this.readDirFile(odf.dodf), appPath) : [];
      const certFor = (key: PrivateKeyObject | undefined): CertificateRef | undefined => {
        const c = key?.id ? certs.find((x) => x.id && key.id && bytesEqual(x.id, key.id)) : undefined;
        return c?.path ? { label: c.label, id: c.id, path: c.path } : undefined;
      };
      // Signature key: nonRepudiation (9); authentication key: sign (2) without nonRepudiation.
      const signKey = keys.find((k) => k.usage.has(9));
      const authKey = keys.find((k) => k.usage.has(2) && !k.usage.has(9));
      this.#objects = {
        application: appPath,
        auth: { certificate: certFor(authKey), keyReference: authKey?.keyReference },
        sign: { certificate: certFor(signKey), keyReference: signKey?.keyReference },
        pin: pins[0] ?? { label: 'PIN', reference: 1, minLength: 4, maxLength: 4, storedLength: 4 },
        dataObjects: data,
      };
      return this.#objects;
    });
  }

  /** Directory files: the content is BER-TLV objects one after the other, read until the end of file. */
  protected async readDirFile(path: Uint8Array): Promise<Uint8Array> {
    await this.select(path);
    const parts: Uint8Array[] = [];
    let offset = 0;
    for (;;) {
      const r = await this.send(0xb0, offset >> 8, offset & 0xff, undefined, this.#chunk);
      if (r.sw === 0x6b00 && offset > 0) break; // exactly at the end
      r.check({ allow: [0x6282] });
      parts.push(r.data);
      offset += r.data.length;
      if (r.sw === 0x6282 || r.data.length < this.#chunk) break;
    }
    return concatBytes([...parts]);
  }

  /** DER of the authentication or signature certificate. */
  async certificate(which: 'auth' | 'sign'): Promise<Uint8Array> {
    const objects = await this.objects();
    const ref = objects[which].certificate;
    if (!ref) throw new ObjectNotFoundError(`no ${which === 'auth' ? 'authentication' : 'signature'} certificate on this card`);
    return this.op(`read ${which} certificate`, () => this.readFile(ref.path));
  }

  /** A data object by its PKCS#15 label (CPS_INFO_PS…); private ones need a verified PIN. */
  async dataObject(label: string): Promise<Uint8Array | undefined> {
    const objects = await this.objects();
    const obj = objects.dataObjects.find((d) => d.label === label);
    if (!obj?.path) return undefined;
    const path = obj.path;
    return this.op(`read ${label}`, async () => {
      await this.select(path);
      const r = (await this.send(0xb0, 0, 0, undefined, this.#chunk)).check({ allow: [0x6282] });
      if (r.data.length === 0) return r.data;
      const total = berTotalLength(r.data);
      return total <= r.data.length ? r.data.subarray(0, total) : this.readFile(path);
    });
  }

  /** Labels of the practice-situation objects present on the card (indexes may have gaps). */
  async situationLabels(): Promise<string[]> {
    return (await this.objects()).dataObjects.map((d) => d.label).filter((l) => /^CPS_ACTIVITY_\d\d_PS$/.test(l));
  }

  // ------------------------------------------------------------ PIN

  protected pinReference(): number {
    return this.#objects?.pin.reference ?? 0x01;
  }

  /** Tries left without spending one: VERIFY without data (IAS-ECC answers 63Cx, 9000 or 6983). */
  pinStatus(): Promise<PinStatus> {
    return this.op('PIN status', () => this.readPinStatus());
  }

  protected async readPinStatus(): Promise<PinStatus> {
    const max = 3; // [V] 3 consecutive wrong PINs block every CPx card
    const r = await this.send(0x20, 0x00, this.pinReference());
    if (r.sw === 0x9000) return { triesLeft: max, max, blocked: false, verified: true };
    if (r.sw === 0x6983) return { triesLeft: 0, max, blocked: true, verified: false };
    if ((r.sw & 0xfff0) === 0x63c0) return { triesLeft: r.sw & 0x0f, max, blocked: (r.sw & 0x0f) === 0, verified: false };
    throw statusError(r.sw);
  }

  protected encodePin(pin: string, min = 4, max = 4): Uint8Array {
    if (!/^\d+$/.test(pin) || pin.length < min || pin.length > max) {
      // Never echo the value: only its shape.
      throw new PinFormatError(`the PIN must be ${min === max ? min : `${min} to ${max}`} digits`);
    }
    return new TextEncoder().encode(pin);
  }

  /**
   * Verifies a PIN a person just typed. Malformed PINs are refused before the card sees them; with one
   * try left the card is not asked unless `allowLastTry`.
   */
  verifyPin(pin: string, options: { allowLastTry?: boolean } = {}): Promise<void> {
    return this.op('verify PIN', async () => {
      const objects = this.#objects;
      const data = this.encodePin(pin, objects?.pin.minLength ?? 4, objects?.pin.maxLength ?? 4);
      const status = await this.readPinStatus();
      if (status.blocked) throw new PinBlockedError(0x6983);
      if (status.triesLeft === 1 && !options.allowLastTry) {
        throw new LastPinTryError('one PIN try left: not trying without explicit consent');
      }
      (await this.send(0x20, 0x00, this.pinReference(), data)).check();
    });
  }

  /**
   * Verifies a PIN typed on the reader's PIN pad (it never reaches the host). Same rules as verifyPin;
   * `enter` sends the VERIFY template through the reader (apdu/pcsc/pinpad.ts) and returns data ‖ SW.
   */
  verifyPinOnReader(
    enter: (template: { header: readonly [number, number, number, number]; length: number }) => Promise<Uint8Array>,
    options: { allowLastTry?: boolean } = {},
  ): Promise<void> {
    return this.op('verify PIN on the reader', async () => {
      const status = await this.readPinStatus();
      if (status.blocked) throw new PinBlockedError(0x6983);
      if (status.triesLeft === 1 && !options.allowLastTry) {
        throw new LastPinTryError('one PIN try left: not trying without explicit consent');
      }
      const length = this.#objects?.pin.maxLength ?? 4;
      ResponseApdu.decode(await enter({ header: [this.cla, 0x20, 0x00, this.pinReference()], length })).check();
    });
  }

  changePin(oldPin: string, newPin: string, options: { allowLastTry?: boolean } = {}): Promise<void> {
    return this.op('change PIN', async () => {
      const data = concatBytes([this.encodePin(oldPin), this.encodePin(newPin)]);
      const status = await this.readPinStatus();
      if (status.blocked) throw new PinBlockedError(0x6983);
      if (status.triesLeft === 1 && !options.allowLastTry) throw new LastPinTryError('one PIN try left');
      (await this.send(0x24, 0x00, this.pinReference(), data)).check();
    });
  }

  /** Unblocks with the 8-digit unblocking code (CHV 2) and sets a new PIN. */
  unblockPin(puk: string, newPin: string): Promise<void> {
    return this.op('unblock PIN', async () => {
      const pukData = this.encodePin(puk, 8, 8);
      const pinData = this.encodePin(newPin);
      await this.unblock(pukData, pinData);
    });
  }

  protected async unblock(puk: Uint8Array, pin: Uint8Array): Promise<void> {
    (await this.send(0x20, 0x00, 0x02, puk)).check();
    (await this.send(0x2c, 0x02, this.pinReference(), pin)).check();
  }

  /** Drops the verified state (ISO 7816-4 VERIFY P1=FF). Callers may also reset the card. */
  logout(): Promise<void> {
    return this.op('logout', async () => {
      const r = await this.send(0x20, 0xff, this.pinReference());
      if (r.sw !== 0x9000) throw statusError(r.sw);
    });
  }

  // ------------------------------------------------------------ keys

  /** Signs a DigestInfo (or raw data ≤ 40 % of the modulus) with the authentication key, PKCS#1 v1.5. */
  abstract authenticate(digestInfo: Uint8Array): Promise<Uint8Array>;

  /** Signs with the signature key: from the message (hash finished on card) or from a digest. */
  abstract sign(hash: HashAlgorithm, input: { message: Uint8Array } | { digest: Uint8Array }): Promise<Uint8Array>;

  /** Builds the DigestInfo of a digest (for authenticate()). */
  static digestInfo(hash: HashAlgorithm, digest: Uint8Array): Uint8Array {
    return concatBytes([DIGEST_INFO[hash], digest]);
  }
}

/** Total length of the BER TLV starting the buffer (tag, length and value); Infinity if unknown. */
function berTotalLength(bytes: Uint8Array): number {
  if (bytes.length < 2) return bytes.length;
  let i = 1;
  if (((bytes[0] ?? 0) & 0x1f) === 0x1f) while (i < bytes.length && ((bytes[i++] ?? 0) & 0x80) !== 0);
  const first = bytes[i] ?? 0;
  if (first < 0x80) return i + 1 + first;
  const n = first & 0x7f;
  if (n === 0 || n > 4) return Number.POSITIVE_INFINITY;
  let len = 0;
  for (let j = 1; j <= n; j++) len = len * 256 + (bytes[i + j] ?? 0);
  return i + 1 + n + len;
}

