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
import { CpsdError } from '../core/errors.js';
import { bytesEqual, concatBytes, fromHex, toHex } from '../core/bytes.js';
import { CardProtocolError } from '../apdu/errors.js';
import { ResponseApdu } from '../apdu/response.js';
import { PinBlockedError, statusError } from '../apdu/status.js';
import type { CpsCardKind } from './atr-table.js';
import { DEFAULT_PIN_RULE, PinFormatError, type Pin, type PinRule } from './pin.js';
import {
  parseAodf,
  parseCdf,
  parseDodf,
  parseEfDir,
  parseOdf,
  parsePrkdf,
  type Application,
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
  /** The DODF entries read so far, in card order: the DODF is read only as far as the objects asked for. */
  dataObjects: Pkcs15Object[];
  /** Where the DODF goes on, until it has been read to its end. */
  dataObjectsRest?: DataObjectsRest | undefined;
}

export interface DataObjectsRest {
  path: Uint8Array;
  /** Bytes of the DODF read so far. */
  offset: number;
  /** The start of an entry the last READ BINARY cut (kept, so that no byte is read twice). */
  pending: Uint8Array;
}

export interface CpsCardOptions {
  /** Per-operation timeout; the card queue waits for the operation to really end anyway. Default 30 s. */
  timeoutMs?: number;
  /** Le of each READ BINARY. Default 256 (0 on the wire); Cryptolib uses 0xE7. */
  readChunk?: number;
}

export { PinFormatError };

/** The holder cancelled (on the PIN pad, or by closing the PIN window). */
export class UserCancelledError extends CpsdError {
  readonly code = 'USER_CANCELLED';
}

/** The PIN pad waited for digits in vain. */
export class PinPadTimeoutError extends CpsdError {
  readonly code = 'TIMEOUT';
}

/** The unblocking code (CHV 2): 8 digits [V]. */
const PUK_RULE: PinRule = { minLength: 8, maxLength: 8 };

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

/** [V] docs/card-facts.md §2.1. */
export const AID_CONTACT = fromHex('E8 28 BD 08 0F 80 25 00 00 01 FF 00 10');
export const AID_CONTACTLESS = fromHex('E8 28 BD 08 0F 80 25 00 00 01 FF 00 20');
export const AID_IAS = fromHex('80 25 00 00 01 FF 01 00');
const SN_PREFIX = '8025000001';
/** Short EF identifiers in the MF [V] (docs/card-facts.md §2.2): EF.SN.ICC 1C, EF.DIR 1E. */
const SFI_SN_ICC = 0x1c;
const SFI_EF_DIR = 0x1e;
const EF_DIR = fromHex('3F002F00');

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
  #reading: Promise<CardObjects> | undefined;

  constructor(transport: ApduTransport, atr: Uint8Array, kind: CpsCardKind, options: CpsCardOptions) {
    this.kind = kind;
    this.atr = atr;
    this.channel = new CardChannel(transport);
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#chunk = options.readChunk ?? 256;
  }

  // ------------------------------------------------------------ plumbing

  /**
   * Runs one operation alone on the card, with a timeout. A hung APDU must not hold the queue for ever:
   * the next operation waits for this one or for its timeout, whichever comes first, then reaches the card.
   */
  protected op<T>(name: string, body: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(body);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CardTimeoutError(`${name} took more than ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    const guarded = Promise.race([run, timeout]).finally(() => clearTimeout(timer));
    this.#queue = guarded.catch(() => undefined);
    return guarded;
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
    return this.#readSelected();
  }

  /** The current EF: one chunk, then exactly the rest its first TLV announces, each byte read once. */
  async #readSelected(): Promise<Uint8Array> {
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
    return concatBytes(parts).subarray(0, Math.min(have, total));
  }

  // ------------------------------------------------------------ identification

  /** The chip serial: digits after 8025000001 in EF.SN.ICC (3F00/D003), prefix checked [V]. */
  serial(): Promise<string> {
    return this.op('serial', async () => {
      // By its short EF identifier 1C (docs/card-facts.md §3.3): no SELECT. An SFI names a file of the current
      // DF, which another application may have moved: anything but a valid EF.SN.ICC falls back to the path.
      const bySfi = await this.send(0xb0, 0x80 | SFI_SN_ICC, 0, undefined, 12);
      const quick = bySfi.sw === 0x9000 || bySfi.sw === 0x6282 ? serialOf(bySfi.data) : undefined;
      if (quick !== undefined) return quick;
      await this.select(fromHex('3F00D003'));
      const r = (await this.send(0xb0, 0, 0, undefined, 12)).check({ allow: [0x6282] });
      const serial = serialOf(r.data);
      if (serial === undefined) throw new CardProtocolError(`EF.SN.ICC is not a CPS serial number: ${toHex(r.data)}`);
      return serial;
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
    // Callers that ask at the same time share one walk: the directories are never read twice.
    this.#reading ??= this.#readObjects().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  #readObjects(): Promise<CardObjects> {
    return this.op('directories', async () => {
      const aid = this.applicationAid();
      const app = await this.#application(aid);
      const appPath = app.path ?? fromHex(aid === AID_CONTACTLESS ? '3F000002' : '3F000001');
      const odf = parseOdf(await this.readDirFile(concatBytes([appPath, fromHex('5031')])), appPath);
      const certs = odf.cdf ? parseCdf(await this.readDirFile(odf.cdf), appPath) : [];
      const keys = odf.prkdf ? parsePrkdf(await this.readDirFile(odf.prkdf), appPath) : [];
      const pins = odf.aodf ? parseAodf(await this.readDirFile(odf.aodf)) : [];
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
        pin: pins[0] ?? { label: 'PIN', reference: 1, ...DEFAULT_PIN_RULE, storedLength: DEFAULT_PIN_RULE.maxLength },
        // The DODF grows with the practice situations (up to 16): read when an object is asked for.
        dataObjects: [],
        dataObjectsRest: odf.dodf ? { path: odf.dodf, offset: 0, pending: new Uint8Array(0) } : undefined,
      };
      return this.#objects;
    });
  }

  /**
   * Directory files: BER-TLV objects one after the other, read by chunks until the end of the file or
   * of the content (padding), whichever comes first: a padded EF is not read to its end.
   */
  protected async readDirFile(path: Uint8Array): Promise<Uint8Array> {
    await this.select(path);
    return this.#readDirSelected();
  }

  async #readDirSelected(): Promise<Uint8Array> {
    let bytes: Uint8Array = new Uint8Array(0);
    let scan = 0;
    for (;;) {
      const offset = bytes.length;
      const r = await this.send(0xb0, offset >> 8, offset & 0xff, undefined, this.#chunk);
      if (r.sw === 0x6b00 && offset > 0) break; // exactly at the end
      r.check({ allow: [0x6282] });
      bytes = concatBytes([bytes, r.data]);
      if (r.sw === 0x6282 || r.data.length < this.#chunk) break;
      const content = dirContentEnd(bytes, scan);
      if (content.end !== undefined) return bytes.subarray(0, content.end);
      scan = content.next;
    }
    return bytes;
  }

  /**
   * EF.DIR by its short EF identifier (one APDU, no SELECT), kept only when it holds this card's
   * application (an SFI names a file of the current DF); else by its path.
   */
  async #application(aid: Uint8Array): Promise<Application> {
    const bySfi = await this.send(0xb0, 0x80 | SFI_EF_DIR, 0, undefined, this.#chunk);
    // Only a file that ends within this chunk: further READs would have to rely on the current EF.
    const complete = bySfi.sw === 0x6282 || (bySfi.sw === 0x9000 && (bySfi.data.length < this.#chunk || dirContentEnd(bySfi.data).end !== undefined));
    if (complete) {
      try {
        const app = parseEfDir(bySfi.data).find((a) => bytesEqual(a.aid, aid));
        if (app) return app;
      } catch (error) {
        if (!(error instanceof CardProtocolError)) throw error;
      }
    }
    const app = parseEfDir(await this.readDirFile(EF_DIR)).find((a) => bytesEqual(a.aid, aid));
    if (!app) throw new ObjectNotFoundError(`application ${toHex(aid)} not in EF.DIR`);
    return app;
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
    const [obj] = await this.findDataObjects([label]);
    if (!obj?.path) return undefined;
    const path = obj.path;
    return this.op(`read ${label}`, () => this.readFile(path));
  }

  /** The DODF entries of these labels (those the card has), reading the DODF only as far as needed. */
  async findDataObjects(labels: readonly string[]): Promise<Pkcs15Object[]> {
    const found = (entries: readonly Pkcs15Object[]): boolean => labels.every((l) => entries.some((d) => d.label === l));
    return (await this.#dataObjects(found)).filter((d) => labels.includes(d.label));
  }

  /** Labels of the practice-situation objects present on the card (indexes may have gaps). */
  async situationLabels(): Promise<string[]> {
    return (await this.#dataObjects(() => false)).map((d) => d.label).filter((l) => /^CPS_ACTIVITY_\d\d_PS$/.test(l));
  }

  /** The DODF entries, read on by chunks from where the last read stopped until `enough` or the end. */
  async #dataObjects(enough: (entries: readonly Pkcs15Object[]) => boolean): Promise<Pkcs15Object[]> {
    const known = await this.objects();
    if (!known.dataObjectsRest || enough(known.dataObjects)) return known.dataObjects;
    return this.op('read DODF', async () => {
      const objects = this.#objects ?? known; // another operation may have read on meanwhile
      let rest = objects.dataObjectsRest;
      if (!rest || enough(objects.dataObjects)) return objects.dataObjects;
      const entries = [...objects.dataObjects];
      const { path } = rest;
      let { offset, pending } = rest;
      await this.select(path);
      for (;;) {
        const r = await this.send(0xb0, offset >> 8, offset & 0xff, undefined, this.#chunk);
        let atEnd = r.sw === 0x6b00 && offset > 0; // exactly at the end
        if (!atEnd) {
          r.check({ allow: [0x6282] });
          pending = concatBytes([pending, r.data]);
          offset += r.data.length;
          atEnd = r.sw === 0x6282 || r.data.length < this.#chunk;
        }
        const content = dirContentEnd(pending);
        const complete = content.end ?? (atEnd ? pending.length : content.next);
        entries.push(...parseDodf(pending.subarray(0, complete), objects.application));
        pending = pending.subarray(complete);
        rest = atEnd || content.end !== undefined ? undefined : { path, offset, pending };
        if (!rest || enough(entries)) break;
      }
      this.#objects = { ...objects, dataObjects: entries, dataObjectsRest: rest };
      return entries;
    });
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

  /** The card's PIN rule (AODF pinAttributes), once the directories are known; the CPx default before. */
  pinRule(): PinRule {
    const pin = this.#objects?.pin;
    return pin ? { minLength: pin.minLength, maxLength: pin.maxLength } : DEFAULT_PIN_RULE;
  }

  /** Refuses to spend a try on a blocked PIN, or the last try without the holder's explicit consent. */
  async #guardTries(allowLastTry: boolean | undefined): Promise<void> {
    const status = await this.readPinStatus();
    if (status.blocked) throw new PinBlockedError(0x6983);
    if (status.triesLeft === 1 && !allowLastTry) throw new LastPinTryError('one PIN try left: not trying without explicit consent');
  }

  /**
   * Verifies a PIN a person just typed. Malformed PINs are refused before the card sees them; with one
   * try left the card is not asked unless `allowLastTry`.
   */
  verifyPin(pin: Pin, options: { allowLastTry?: boolean } = {}): Promise<void> {
    return this.op('verify PIN', async () => {
      const data = pin.encode(this.pinRule());
      await this.#guardTries(options.allowLastTry);
      (await this.send(0x20, 0x00, this.pinReference(), data)).check();
    });
  }

  /**
   * Verifies a PIN typed on the reader's PIN pad (it never reaches the host). Same rules as verifyPin;
   * `enter` sends the VERIFY template through the reader (apdu/pcsc/pinpad.ts) and returns data ‖ SW.
   * The reader's own words: 6401 the holder cancelled, 6400 nothing typed in time (PC/SC part 10).
   */
  verifyPinOnReader(
    enter: (template: { header: readonly [number, number, number, number]; length: number }) => Promise<Uint8Array>,
    options: { allowLastTry?: boolean } = {},
  ): Promise<void> {
    return this.op('verify PIN on the reader', async () => {
      await this.#guardTries(options.allowLastTry);
      const r = ResponseApdu.decode(await enter({ header: [this.cla, 0x20, 0x00, this.pinReference()], length: this.pinRule().maxLength }));
      if (r.sw === 0x6401) throw new UserCancelledError('the PIN entry was cancelled on the reader');
      if (r.sw === 0x6400) throw new PinPadTimeoutError('no PIN was typed on the reader in time');
      r.check();
    });
  }

  changePin(oldPin: Pin, newPin: Pin, options: { allowLastTry?: boolean } = {}): Promise<void> {
    return this.op('change PIN', async () => {
      const rule = this.pinRule();
      const data = concatBytes([oldPin.encode(rule), newPin.encode(rule)]);
      await this.#guardTries(options.allowLastTry);
      (await this.send(0x24, 0x00, this.pinReference(), data)).check();
    });
  }

  /** Unblocks with the 8-digit unblocking code (CHV 2) and sets a new PIN. */
  unblockPin(puk: Pin, newPin: Pin): Promise<void> {
    return this.op('unblock PIN', async () => {
      const pukData = puk.encode(PUK_RULE);
      const pinData = newPin.encode(this.pinRule());
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

  /** Whether the card's keys sign RSA-PSS (CPS4; a CPS3 cannot: no TLS 1.3 client authentication). */
  supportsPss(): boolean {
    return false;
  }

  /** RSA-PSS with the authentication key over a hash (MGF1 of the same hash). */
  authenticatePss(hash: HashAlgorithm, digest: Uint8Array, saltLength: number): Promise<Uint8Array> {
    return Promise.reject(new ObjectNotFoundError(`this card cannot sign RSA-PSS (${hash}, ${digest.length}-byte hash, salt ${saltLength})`));
  }

  /** RSA-PSS with the signature key over a hash (the card's salt: the hash's length). */
  signPss(hash: HashAlgorithm, digest: Uint8Array): Promise<Uint8Array> {
    return Promise.reject(new ObjectNotFoundError(`this card cannot sign RSA-PSS (${hash}, ${digest.length}-byte hash)`));
  }

  /** Builds the DigestInfo of a digest (for authenticate()). */
  static digestInfo(hash: HashAlgorithm, digest: Uint8Array): Uint8Array {
    return concatBytes([DIGEST_INFO[hash], digest]);
  }
}

/** The serial in an EF.SN.ICC: 12 bytes 5A 0A 8025000001 ‖ 5 bytes [V]; undefined for anything else. */
function serialOf(bytes: Uint8Array): string | undefined {
  const hex = toHex(bytes);
  return bytes.length === 12 && hex.startsWith(`5A0A${SN_PREFIX}`) ? hex.slice(4 + SN_PREFIX.length) : undefined;
}

/**
 * Where the content of a directory file read so far ends: the offset of its padding (00 or FF where a
 * tag would start; neither begins a PKCS#15 or EF.DIR entry), or undefined while it may go on.
 */
function dirContentEnd(bytes: Uint8Array, from = 0): { end: number | undefined; next: number } {
  let i = from;
  while (i < bytes.length) {
    if (bytes[i] === 0x00 || bytes[i] === 0xff) return { end: i, next: i };
    if (bytes.length - i < 2) break;
    const n = berTotalLength(bytes.subarray(i));
    if (!Number.isFinite(n) || i + n > bytes.length) break; // incomplete: read on
    i += n;
  }
  return { end: undefined, next: i };
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

