/**
 * The virtual CPS card: an IAS-ECC command interpreter over a CardImage (files, PINs, keys).
 * Behaviour follows docs/card-facts.md §3 and §9; every choice made where public facts stop is a named
 * option or documented in docs/virtual-card.md.
 */
import { constants, createHash, privateDecrypt, privateEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { CommandApdu } from '../../apdu/command.js';
import { concatBytes } from '../../core/bytes.js';
import { status, withStatus } from '../status.js';
import { parseTlv, encodeTlv, type Tlv } from '../../core/tlv.js';
import type { VirtualCard } from '../vpcd.js';
import { equal, type AccessRule, type Df, type Ef } from './fs.js';
import { PERSONALITIES, checkedAtr, type Personality, type PersonalityName } from './personality.js';
import { decodeMidstate, shaResume, type ShaAlgorithm } from '../../cards/sha-midstate.js';
import { CardStatus, SW, fail } from './sw.js';

/** A secret code held by the card: the PIN (CHV 1) or the unblocking code (CHV 2). */
export interface SecretCode {
  ref: number;
  value: string;
  triesMax: number;
  triesLeft: number;
  /** Unblocks left (CHV 2 only): each RESET RETRY COUNTER spends one. */
  usesLeft?: number | undefined;
  minLength: number;
  maxLength: number;
}

export type KeyUse = 'int-auth' | 'decipher' | 'cds';

export interface CardKey {
  /** Key reference as the host names it in MSE (0x81 signature, 0x82 authentication...). */
  ref: number;
  /** The DF the key belongs to (key references are local to the application DF). */
  df: Df;
  key: KeyObject;
  modulusBytes: number;
  uses: readonly KeyUse[];
  /** Other references naming the same key (CPS4 ChipDoc key ids 0x10/0x20, with or without b8). */
  aliases?: readonly number[] | undefined;
  /** 'pin': needs a verified CHV 1; 'always': the contactless technical key. Per interface. */
  rule: { contact: AccessRule; contactless: AccessRule };
}

export interface CardImage {
  mf: Df;
  pin: SecretCode;
  puk: SecretCode;
  keys: CardKey[];
}

/** How the card expects the PIN in VERIFY: plain ASCII digits (IAS-ECC convention) or padded to 8 with FF. */
export type PinFormat = 'ascii' | 'ascii-ff8';

export interface VirtualCpsCardOptions {
  personality?: PersonalityName | undefined;
  pinFormat?: PinFormat | undefined;
  /** Largest Le READ BINARY serves. Default 256: OpenSC reads real CPx cards 256 bytes at a time; Cryptolib asks ≤ 0xE7. */
  maxReadBinary?: number | undefined;
  /** Present this ATR instead of the personality's: a field variant (cpsd sim --atr). Checked by parseAtr. */
  atr?: Uint8Array | undefined;
}

/** Hash algorithm references of MSE SET HT/DST (docs/card-facts.md §3.5). */
const HASH_ALGO: Readonly<Record<number, ShaAlgorithm>> = { 0x10: 'sha1', 0x40: 'sha256', 0x12: 'sha1', 0x42: 'sha256' };
const DIGEST_INFO_PREFIX: Readonly<Record<ShaAlgorithm, Uint8Array>> = {
  sha1: Uint8Array.of(0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14),
  sha256: Uint8Array.of(
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
  ),
};

interface EnvEntry {
  algo: number;
  key: number;
  /** Set through CPS4 ChipDoc (tag 91 / key ids), whose algorithm ids differ from IAS-ECC's. */
  chipDoc?: boolean | undefined;
}

interface SecurityEnvironment {
  at?: EnvEntry | undefined;
  dst?: EnvEntry | undefined;
  ct?: EnvEntry | undefined;
  ht?: { algo: number } | undefined;
  /** Result of PSO HASH, consumed by PSO CDS. */
  hash?: { alg: ShaAlgorithm; digest: Uint8Array } | undefined;
}

interface Chain {
  ins: number;
  p1: number;
  p2: number;
  parts: Uint8Array[];
}

const EMPTY = new Uint8Array(0);
const AID_ISD = Uint8Array.of(0xa0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00);
const AID_CPS2TER = Uint8Array.of(0x80, 0x25, 0x00, 0x00, 0x01, 0xff, 0x00, 0x02);
/** CPS4 ChipDoc signature algorithm ids of MSE tag 91 (card-cps4.c). */
const CHIPDOC_ALGO: Readonly<Record<number, { hash: ShaAlgorithm; pss: boolean }>> = {
  0x0a: { hash: 'sha1', pss: false },
  0x28: { hash: 'sha256', pss: false },
  0x15: { hash: 'sha1', pss: true },
  0x2c: { hash: 'sha256', pss: true },
};

export class VirtualCpsCard implements VirtualCard {
  readonly personality: Personality;
  readonly atr: Uint8Array;
  readonly image: CardImage;
  readonly #pinFormat: PinFormat;
  readonly #maxRead: number;
  /** Current DF and EF per logical channel. */
  #current = new Map<number, { df: Df; ef: Ef | undefined }>();
  /** CPS4: the applet selected on each logical channel (ChipDoc runs on channel 1, §3.8). */
  #applet = new Map<number, 'chipdoc' | 'isd' | 'cps2ter'>();
  /** CPS4: RESET RETRY COUNTER without new PIN lets the next CHANGE (P1=01) set it without the old one. */
  #pinResetPending = false;
  #pinVerified = false;
  #pukVerified = false;
  #env: SecurityEnvironment = {};
  #pending: Uint8Array = EMPTY;
  #chain: Chain | undefined;
  /** Commands processed since power-up (for tests and fault injection). */
  commands = 0;

  constructor(image: CardImage, options: VirtualCpsCardOptions = {}) {
    this.image = image;
    this.personality = PERSONALITIES[options.personality ?? 'cps3'];
    this.atr = options.atr ? checkedAtr(options.atr) : this.personality.atr;
    this.#pinFormat = options.pinFormat ?? 'ascii';
    this.#maxRead = options.maxReadBinary ?? 256;
    this.reset();
  }

  /** Warm or cold reset: the security state (verified PIN, environments, current files) is lost. */
  reset(): void {
    this.#current = new Map([[0, { df: this.image.mf, ef: undefined }]]);
    this.#applet = new Map();
    this.#pinResetPending = false;
    this.#pinVerified = false;
    this.#pukVerified = false;
    this.#env = {};
    this.#pending = EMPTY;
    this.#chain = undefined;
  }

  powerOff(): void {
    this.reset();
  }

  get pinVerified(): boolean {
    return this.#pinVerified;
  }

  transmit(bytes: Uint8Array): Uint8Array {
    this.commands++;
    let command: CommandApdu;
    try {
      command = CommandApdu.decode(bytes);
    } catch {
      return status(SW.WRONG_LENGTH);
    }
    try {
      return this.#process(command);
    } catch (error) {
      if (error instanceof PartialRead) return withStatus(error.data, error.sw);
      if (error instanceof CardStatus) return status(error.sw);
      // A bug in the simulator must look like a card failure, not kill the host process.
      return status(SW.NO_DIAGNOSIS);
    }
  }

  #process(command: CommandApdu): Uint8Array {
    const { cla, ins } = command;
    if (cla === 0xa0 || (cla & 0x80) !== 0) fail(SW.CLA_NOT_SUPPORTED); // CPS2ter volet not emulated
    if ((cla & 0x40) !== 0) fail(SW.LOGICAL_CHANNEL_NOT_SUPPORTED);
    if ((cla & 0x0c) !== 0) fail(SW.SM_NOT_SUPPORTED);
    const channel = cla & 0x03;
    if (channel !== 0 && !this.personality.logicalChannels) fail(SW.LOGICAL_CHANNEL_NOT_SUPPORTED);

    if (ins === 0xc0) return this.#getResponse(command);
    this.#pending = EMPTY;
    if (channel !== 0) {
      const selectByAid = ins === 0xa4 && command.p1 === 0x04;
      // CPS4: a channel without ChipDoc selected answers 6985 ("reselect ChipDoc", §3.6).
      if (!selectByAid && this.#applet.get(channel) !== 'chipdoc') fail(SW.CONDITIONS_NOT_SATISFIED);
    }

    // Command chaining (CLA bit 0x10): only PSO DECIPHER needs it (1 + 256 bytes of cryptogram).
    if ((cla & 0x10) !== 0) {
      if (ins !== 0x2a) fail(SW.CHAINING_NOT_SUPPORTED);
      const chain = this.#chain;
      if (chain && (chain.ins !== ins || chain.p1 !== command.p1 || chain.p2 !== command.p2)) {
        this.#chain = undefined;
        fail(SW.LAST_COMMAND_EXPECTED);
      }
      this.#chain = chain ?? { ins, p1: command.p1, p2: command.p2, parts: [] };
      this.#chain.parts.push(command.data);
      return status(SW.OK);
    }
    let full = command;
    if (this.#chain) {
      const chain = this.#chain;
      this.#chain = undefined;
      if (chain.ins !== ins || chain.p1 !== command.p1 || chain.p2 !== command.p2) fail(SW.LAST_COMMAND_EXPECTED);
      full = command.with({ data: concatBytes([...chain.parts, command.data]) });
    }
    const data = this.#dispatch(full, channel);
    return this.#answer(data, full.ne);
  }

  /** T=0 style: response data goes through 61xx + GET RESPONSE unless the command carried Le. */
  #answer(data: Uint8Array, ne: number | undefined): Uint8Array {
    if (data.length === 0) return status(SW.OK);
    if (ne === undefined || ne < data.length) {
      const now = ne === undefined ? EMPTY : data.subarray(0, ne);
      this.#pending = data.subarray(now.length);
      return withStatus(now, 0x6100 | (this.#pending.length > 255 ? 0 : this.#pending.length));
    }
    return withStatus(data, SW.OK);
  }

  #getResponse(command: CommandApdu): Uint8Array {
    if (command.p1 !== 0 || command.p2 !== 0) fail(SW.WRONG_P1P2);
    if (this.#pending.length === 0) fail(SW.CONDITIONS_NOT_SATISFIED);
    const ne = command.ne ?? 256;
    const available = this.#pending.length;
    if (ne > available) {
      // ISO 7816-3 T=0: wrong Le, here is the right one.
      return status(0x6c00 | (available > 255 ? 0 : available));
    }
    const out = this.#pending.subarray(0, ne);
    this.#pending = this.#pending.subarray(ne);
    const rest = this.#pending.length;
    return withStatus(out, rest === 0 ? SW.OK : 0x6100 | (rest > 255 ? 0 : rest));
  }

  #dispatch(c: CommandApdu, channel: number): Uint8Array {
    switch (c.ins) {
      case 0xa4:
        return this.#select(c, channel);
      case 0xb0:
        return this.#readBinary(c, channel);
      case 0x20:
        return this.#verify(c);
      case 0x24:
        return this.#changeReferenceData(c);
      case 0x2c:
        return this.#resetRetryCounter(c);
      case 0xcb:
        return this.#getData(c, channel);
      case 0x22:
        return this.#manageSecurityEnvironment(c, channel);
      case 0x2a:
        return this.#performSecurityOperation(c, channel);
      case 0x88:
        return this.#internalAuthenticate(c, channel);
      case 0x84:
        return this.#getChallenge(c);
      default:
        return fail(SW.INS_NOT_SUPPORTED);
    }
  }

  // ---------------------------------------------------------------- files

  #state(channel: number): { df: Df; ef: Ef | undefined } {
    let s = this.#current.get(channel);
    if (!s) {
      s = { df: this.image.mf, ef: undefined };
      this.#current.set(channel, s);
    }
    return s;
  }

  #select(c: CommandApdu, channel: number): Uint8Array {
    const state = this.#state(channel);
    const { p1, p2, data } = c;
    if (p2 !== 0x04 && p2 !== 0x0c && p2 !== 0x00) fail(SW.WRONG_P1P2);
    // P2=00 (return FCI) is refused with 6A86 before the file is even looked up (real card: commit
    // 20f359ea0), except for the IAS root application below.
    if (p2 === 0x00 && !(p1 === 0x04 && this.image.mf.aid && equal(data, this.image.mf.aid))) fail(SW.WRONG_P1P2);
    let target: Ef | Df | undefined;
    switch (p1) {
      case 0x00:
      case 0x01:
      case 0x02: {
        // By FID. OpenSC selects everything on CPx with P1=02, the MF and DFs included, and works with
        // real cards: the FID is resolved the same way whatever P1 (MF, current DF, its children,
        // its parent and siblings).
        if (data.length === 0 && p1 === 0x00) target = this.image.mf;
        else if (data.length !== 2) fail(SW.WRONG_LENGTH);
        else target = this.#byFid(state.df, fid(data, 0));
        break;
      }
      case 0x04: {
        if (data.length < 1 || data.length > 16) fail(SW.WRONG_LENGTH);
        if (this.personality.chipDoc) {
          // CPS4 applets (card-cps4.c): the issuer security domain and the CPS2ter emulation answer
          // 9000 and do nothing more here; ChipDoc shares its AID with the IAS root application.
          if (equal(data, AID_ISD) || equal(data, AID_CPS2TER)) {
            this.#applet.set(channel, equal(data, AID_ISD) ? 'isd' : 'cps2ter');
            return EMPTY;
          }
          if (channel !== 0 && equal(data, this.image.mf.aid ?? EMPTY)) this.#applet.set(channel, 'chipdoc');
        }
        const df = this.image.mf.byAid(data);
        if (!df) fail(SW.FILE_NOT_FOUND);
        // The IAS-ECC root application (the MF's own AID) answers 9000 without FCP whatever P2,
        // as the real card (docs/card-facts.md §3.2); the PKCS#15 applications refuse P2=00 with 6A86.
        if (df === this.image.mf) {
          this.#current.set(channel, { df, ef: undefined });
          return EMPTY;
        }
        target = df;
        break;
      }
      case 0x08:
      case 0x09: {
        // By path from the MF; P1=09 paths start with 3F00 on CPS (the driver does not strip it).
        if (data.length < 2 || data.length % 2 !== 0) fail(SW.WRONG_LENGTH);
        let node: Ef | Df | undefined = this.image.mf;
        let i = 0;
        if (fid(data, 0) === 0x3f00) i = 2;
        for (; i < data.length && node; i += 2) {
          node = node.kind === 'df' ? node.child(fid(data, i)) : undefined;
        }
        target = node;
        break;
      }
      default:
        fail(SW.WRONG_P1P2);
    }
    if (!target) fail(SW.FILE_NOT_FOUND);
    if (target.kind === 'df') this.#current.set(channel, { df: target, ef: undefined });
    else this.#current.set(channel, { df: target.parent ?? this.image.mf, ef: target });
    return p2 === 0x04 ? target.fcp() : EMPTY;
  }

  #byFid(df: Df, id: number): Ef | Df | undefined {
    if (id === 0x3f00) return this.image.mf;
    if (id === df.fid) return df;
    const child = df.child(id);
    if (child) return child;
    if (df.parent) {
      if (df.parent.fid === id) return df.parent;
      return df.parent.child(id);
    }
    return undefined;
  }

  #readBinary(c: CommandApdu, channel: number): Uint8Array {
    const state = this.#state(channel);
    let ef = state.ef;
    let offset: number;
    if ((c.p1 & 0x80) !== 0) {
      // Short EF identifier in P1 b5..b1, offset in P2 (0..255).
      if ((c.p1 & 0x60) !== 0) fail(SW.WRONG_P1P2);
      ef = state.df.bySfi(c.p1 & 0x1f) ?? (state.df === this.image.mf ? undefined : this.image.mf.bySfi(c.p1 & 0x1f));
      if (!ef) fail(SW.FILE_NOT_FOUND);
      this.#current.set(channel, { df: state.df, ef });
      offset = c.p2;
    } else {
      if (!ef) fail(SW.NO_CURRENT_EF);
      offset = (c.p1 << 8) | c.p2;
    }
    this.#checkAccess(ef.read);
    const ne = c.ne ?? 256;
    if (ne > this.#maxRead) fail(SW.WRONG_LENGTH);
    if (offset > ef.data.length) fail(SW.OFFSET_OUTSIDE_EF);
    const out = ef.data.subarray(offset, offset + ne);
    if (out.length < ne) {
      // ISO: fewer bytes than Le because the end of the file was reached (OpenSC IAS-ECC accepts it).
      throw new PartialRead(out);
    }
    return out;
  }

  #checkAccess(rules: { contact: AccessRule; contactless: AccessRule }): void {
    const rule = this.personality.contactless ? rules.contactless : rules.contact;
    if (rule === 'never') fail(SW.SECURITY_NOT_SATISFIED);
    if (rule === 'pin' && !this.#pinVerified) fail(SW.SECURITY_NOT_SATISFIED);
  }

  // ---------------------------------------------------------------- PIN

  #secret(ref: number): SecretCode {
    // Global references (b8 = 0) 1 and 2; local ones (0x81, 0x82) are accepted as the same objects,
    // since CPS cards keep both codes at MF level.
    const r = ref & 0x7f;
    if (r === this.image.pin.ref) return this.image.pin;
    if (r === this.image.puk.ref) return this.image.puk;
    return fail(SW.REF_DATA_NOT_FOUND);
  }

  /** Decodes the presented code; a malformed one is refused without spending a try. */
  #presented(code: SecretCode, data: Uint8Array): string {
    let bytes = data;
    if (this.#pinFormat === 'ascii-ff8' && code === this.image.pin) {
      if (data.length !== 8) fail(SW.WRONG_LENGTH);
      let end = data.length;
      while (end > 0 && data[end - 1] === 0xff) end--;
      bytes = data.subarray(0, end);
    }
    if (bytes.length < code.minLength || bytes.length > code.maxLength) fail(SW.WRONG_LENGTH);
    if (!bytes.every((b) => b >= 0x30 && b <= 0x39)) fail(SW.WRONG_DATA);
    return String.fromCharCode(...bytes);
  }

  #verify(c: CommandApdu): Uint8Array {
    if (c.p1 === 0xff && c.nc === 0) {
      // ISO 7816-4: P1=FF resets the verification status of the reference (a log-out) [S].
      const code = this.#secret(c.p2);
      if (code === this.image.pin) this.#pinVerified = false;
      else this.#pukVerified = false;
      return EMPTY;
    }
    if (c.p1 !== 0x00) fail(SW.WRONG_P1P2);
    const code = this.#secret(c.p2);
    if (code.triesLeft === 0) fail(SW.AUTH_BLOCKED);
    const verified = code === this.image.pin ? this.#pinVerified : this.#pukVerified;
    if (c.nc === 0) {
      // Status query: never spends a try (the IAS-ECC behaviour OpenSC relies on).
      if (verified) return EMPTY;
      return fail(0x63c0 | code.triesLeft);
    }
    this.#check(code, this.#presented(code, c.data));
    if (code === this.image.pin) this.#pinVerified = true;
    else this.#pukVerified = true;
    return EMPTY;
  }

  /** Compares, spending a try on mismatch; 63C0 on the try that blocks, 6983 afterwards. */
  #check(code: SecretCode, value: string): void {
    if (value !== code.value) {
      code.triesLeft = Math.max(0, code.triesLeft - 1);
      if (code === this.image.pin) this.#pinVerified = false;
      else this.#pukVerified = false;
      fail(0x63c0 | code.triesLeft);
    }
    code.triesLeft = code.triesMax;
  }

  #changeReferenceData(c: CommandApdu): Uint8Array {
    if (c.p1 === 0x01) {
      // New PIN only: allowed right after RESET RETRY COUNTER without new PIN (CPS4 unblock, §3.8).
      const pin = this.#secret(c.p2);
      if (pin !== this.image.pin || !this.#pinResetPending) fail(SW.SECURITY_NOT_SATISFIED);
      pin.value = this.#presented(pin, c.data);
      this.#pinResetPending = false;
      return EMPTY;
    }
    if (c.p1 !== 0x00) fail(SW.WRONG_P1P2);
    const code = this.#secret(c.p2);
    if (code !== this.image.pin) fail(SW.CONDITIONS_NOT_SATISFIED); // the unblocking code cannot be changed
    if (code.triesLeft === 0) fail(SW.AUTH_BLOCKED);
    if (this.#pinFormat === 'ascii-ff8') {
      if (c.nc !== 16) fail(SW.WRONG_LENGTH);
      const old = this.#presented(code, c.data.subarray(0, 8));
      const next = this.#presented(code, c.data.subarray(8));
      this.#check(code, old);
      code.value = next;
    } else {
      // Old and new PIN are concatenated; both have the same length on CPS (4 digits).
      if (c.nc % 2 !== 0) fail(SW.WRONG_LENGTH);
      const half = c.nc / 2;
      const old = this.#presented(code, c.data.subarray(0, half));
      const next = this.#presented(code, c.data.subarray(half));
      this.#check(code, old);
      code.value = next;
    }
    this.#pinVerified = true;
    return EMPTY;
  }

  #resetRetryCounter(c: CommandApdu): Uint8Array {
    const pin = this.#secret(c.p2);
    if (pin !== this.image.pin) fail(SW.REF_DATA_NOT_FOUND);
    const puk = this.image.puk;
    if (c.p1 === 0x00) {
      // PUK and new PIN in the data field.
      if (c.nc !== puk.maxLength + pin.maxLength) fail(SW.WRONG_LENGTH);
      if (puk.triesLeft === 0) fail(SW.AUTH_BLOCKED);
      if ((puk.usesLeft ?? 1) === 0) fail(SW.REF_DATA_NOT_USABLE);
      this.#check(puk, this.#presented(puk, c.data.subarray(0, puk.maxLength)));
      this.#unblock(this.#presented(pin, c.data.subarray(puk.maxLength)));
      return EMPTY;
    }
    if (c.p1 !== 0x02 && c.p1 !== 0x03) fail(SW.WRONG_P1P2);
    // IAS-ECC: the reset rule of CHV 1 is "user authentication with the unblocking code" (SE #3).
    if (!this.#pukVerified) fail(SW.SECURITY_NOT_SATISFIED);
    if ((puk.usesLeft ?? 1) === 0) fail(SW.REF_DATA_NOT_USABLE);
    if (c.p1 === 0x02) this.#unblock(this.#presented(pin, c.data));
    else {
      if (c.nc !== 0) fail(SW.WRONG_LENGTH);
      this.#unblock(undefined);
      this.#pinResetPending = true;
    }
    return EMPTY;
  }

  #unblock(newPin: string | undefined): void {
    const pin = this.image.pin;
    const puk = this.image.puk;
    if (puk.usesLeft !== undefined) puk.usesLeft--;
    pin.triesLeft = pin.triesMax;
    if (newPin !== undefined) pin.value = newPin;
    this.#pukVerified = false;
    this.#pinVerified = false;
  }

  // ---------------------------------------------------------------- GET DATA (SDOs)

  /**
   * GET DATA of a security data object: `00 CB 3F FF Lc 4D len 70 len BF <class> <ref> len <tags>`.
   * Implemented: CHV (class 0x81) counters; RSA key public parts (class 0x90/0xA0) and SE (0xFB).
   */
  #getData(c: CommandApdu, channel: number): Uint8Array {
    if (c.p1 !== 0x3f || c.p2 !== 0xff) fail(SW.WRONG_P1P2);
    const request = parseSdoRequest(c.data);
    if (!request) fail(SW.WRONG_DATA);
    const { cls, ref, tags } = request;
    let objects: Map<number, Uint8Array>;
    if (cls === 0x81) objects = this.#chvSdo(ref);
    else if (cls === 0x90 || cls === 0xa0) objects = this.#keySdo(ref, channel);
    else if (cls === 0xfb) objects = this.#seSdo(ref, channel);
    else return fail(SW.REF_DATA_NOT_FOUND);
    // Each requested tag (with length 80, "all of it") in the order asked; unknown tags are skipped.
    const parts = tags.map((t) => objects.get(t)).filter((v): v is Uint8Array => v !== undefined);
    if (parts.length === 0) fail(SW.REF_DATA_NOT_FOUND);
    const header = 0xbf0000 | (cls << 8) | ref;
    return encodeTlv({ tag: 0x70, children: [{ tag: header, value: concatBytes(parts) }] });
  }

  #chvSdo(ref: number): Map<number, Uint8Array> {
    const code = this.#secret(ref);
    const docp = [
      { tag: 0x9a, value: Uint8Array.of(code.triesMax) },
      { tag: 0x9b, value: Uint8Array.of(code.triesLeft) },
    ];
    if (code.usesLeft !== undefined) docp.push({ tag: 0x9d, value: Uint8Array.of(code.usesLeft >> 8, code.usesLeft & 0xff) });
    // Access rules as read on a real CPS3 (docs/card-facts.md §2.4).
    const acl =
      code === this.image.pin
        ? Uint8Array.of(0xf3, 0x00, 0x00, 0x13, 0xff, 0x00)
        : Uint8Array.of(0xf3, 0xff, 0x00, 0xff, 0xff, 0x00);
    return new Map([
      [0xa0, encodeTlv({ tag: 0xa0, children: [...docp, { tag: 0xa1, children: [{ tag: 0x8c, value: acl }] }] })],
      [
        0x7f41,
        encodeTlv({
          tag: 0x7f41,
          children: [
            { tag: 0x80, value: Uint8Array.of(code.maxLength) },
            { tag: 0x81, value: Uint8Array.of(code.minLength) },
          ],
        }),
      ],
    ]);
  }

  #keySdo(ref: number, channel: number): Map<number, Uint8Array> {
    const key = this.#key(0x80 | ref, channel);
    const jwk = key.key.export({ format: 'jwk' });
    const n = Buffer.from(jwk.n ?? '', 'base64url');
    const e = Buffer.from(jwk.e ?? '', 'base64url');
    const scb = (use: KeyUse): number => (key.uses.includes(use) ? (key.rule.contact === 'always' ? 0x00 : 0x12) : 0xff);
    // IAS-ECC private-key rules, AM 7F then one SCB per bit from b7 down: PSO CDS, INTERNAL
    // AUTHENTICATE, PSO DECIPHER, GENERATE, (b3), PUT DATA, GET DATA (OpenSC IASECC_ACLS_RSAKEY_*).
    const docp = encodeTlv({
      tag: 0xa0,
      children: [
        { tag: 0x80, value: Uint8Array.of(key.modulusBytes >> 8, key.modulusBytes & 0xff) },
        {
          tag: 0xa1,
          children: [{ tag: 0x8c, value: Uint8Array.of(0x7f, scb('cds'), scb('int-auth'), scb('decipher'), 0xff, 0xff, 0xff, 0x00) }],
        },
      ],
    });
    const pub = encodeTlv({ tag: 0x7f49, children: [{ tag: 0x81, value: n }, { tag: 0x82, value: e }] });
    return new Map([
      [0xa0, docp],
      [0x7f49, pub],
      // The private parts are never readable: 7F48 answers with nothing but its presence.
      [0x7f48, encodeTlv({ tag: 0x7f48, value: new Uint8Array(0) })],
    ]);
  }

  #seSdo(ref: number, channel: number): Map<number, Uint8Array> {
    // The real card only serves SEs from the MF (6A88 in the application DF, docs/card-facts.md §2.4).
    if (this.#state(channel).df !== this.image.mf) fail(SW.REF_DATA_NOT_FOUND);
    // SE #N: a CRT template with the CHV it references; SE #1 → CHV 1, SE #3 → CHV 2.
    const chv = ref === 3 ? this.image.puk.ref : ref === 1 || ref === 2 ? this.image.pin.ref : fail(SW.REF_DATA_NOT_FOUND);
    const body = encodeTlv({
      tag: 0x7b,
      children: [
        { tag: 0x80, value: Uint8Array.of(ref) },
        { tag: 0xa4, children: [{ tag: 0x83, value: Uint8Array.of(chv) }, { tag: 0x95, value: Uint8Array.of(0x08) }] },
      ],
    });
    return new Map([[0x7b, body]]);
  }

  // ---------------------------------------------------------------- crypto

  #key(ref: number, channel: number): CardKey {
    const df = this.#state(channel).df;
    // Keys are found from their application DF or from the MF (global search as OpenSC expects).
    const key =
      this.image.keys.find((k) => k.ref === ref && k.df === df) ??
      this.image.keys.find((k) => k.ref === ref || (k.aliases?.includes(ref) ?? false));
    if (!key) fail(SW.REF_DATA_NOT_FOUND);
    return key;
  }

  #isChipDoc(channel: number): boolean {
    return this.#applet.get(channel) === 'chipdoc';
  }

  #manageSecurityEnvironment(c: CommandApdu, channel: number): Uint8Array {
    if (c.p1 === 0xf3) {
      // MSE RESTORE: back to the default (empty) environment.
      this.#env = {};
      return EMPTY;
    }
    if (c.p1 !== 0x41 && c.p1 !== 0x81) fail(SW.WRONG_P1P2);
    let tlvs: Tlv[];
    try {
      tlvs = parseTlv(c.data, { recursive: false });
    } catch {
      return fail(SW.WRONG_DATA);
    }
    const one = (tag: number): number | undefined => {
      const t = tlvs.find((x) => x.tag === tag);
      if (!t) return undefined;
      if (t.value.length !== 1) fail(SW.WRONG_DATA);
      return t.value[0];
    };
    // CPS4 ChipDoc DST: 91 02 <algorithm id> <key reference> (card-cps4.c).
    const t91 = tlvs.find((x) => x.tag === 0x91);
    if (t91 && this.#isChipDoc(channel) && c.p2 === 0xb6) {
      const [algo, key] = t91.value;
      if (t91.value.length !== 2 || algo === undefined || key === undefined || !CHIPDOC_ALGO[algo]) fail(SW.WRONG_DATA);
      this.#env.dst = { algo, key: key | 0x80, chipDoc: true };
      return EMPTY;
    }
    const algo = one(0x80);
    // Tag 84 (key reference) or 83 (as Cryptolib sends it for the CPS4 auth key).
    const key = one(0x84) ?? one(0x83);
    if (this.#isChipDoc(channel) && c.p2 === 0xb8 && key !== undefined) {
      // ChipDoc authentication: a raw RSA operation on a host-padded block, no algorithm byte.
      this.#env.ct = { algo: 0, key: key | 0x80, chipDoc: true };
      return EMPTY;
    }
    switch (c.p2) {
      case 0xaa: // HT
        if (algo === undefined || !HASH_ALGO[algo]) fail(SW.WRONG_DATA);
        this.#env.ht = { algo };
        this.#env.hash = undefined;
        return EMPTY;
      case 0xa4: // AT
      case 0xb6: // DST
      case 0xb8: {
        // CT
        if (algo === undefined || key === undefined) fail(SW.WRONG_DATA);
        const entry = { algo, key: key | 0x80 };
        if (c.p2 === 0xa4) this.#env.at = entry;
        else if (c.p2 === 0xb6) this.#env.dst = entry;
        else this.#env.ct = entry;
        return EMPTY;
      }
      default:
        return fail(SW.WRONG_P1P2);
    }
  }

  #useKey(ref: number, use: KeyUse, channel: number): CardKey {
    const key = this.#key(ref, channel);
    if (!key.uses.includes(use)) fail(SW.CONDITIONS_NOT_SATISFIED);
    this.#checkAccess(key.rule);
    return key;
  }

  #internalAuthenticate(c: CommandApdu, channel: number): Uint8Array {
    if (this.#isChipDoc(channel)) fail(SW.INS_NOT_SUPPORTED); // ChipDoc has no INTERNAL AUTHENTICATE
    if (c.p1 !== 0 || c.p2 !== 0) fail(SW.WRONG_P1P2);
    const at = this.#env.at;
    if (!at) fail(SW.CONDITIONS_NOT_SATISFIED);
    if (at.algo !== 0x02) fail(SW.WRONG_DATA);
    const key = this.#useKey(at.key, 'int-auth', channel);
    // The card pads with PKCS#1 v1.5 type 01 itself; input at most 40 % of the modulus.
    if (c.nc === 0 || c.nc > Math.floor(key.modulusBytes * 0.4)) fail(SW.WRONG_LENGTH);
    return new Uint8Array(privateEncrypt({ key: key.key, padding: constants.RSA_PKCS1_PADDING }, c.data));
  }

  #performSecurityOperation(c: CommandApdu, channel: number): Uint8Array {
    const p1p2 = (c.p1 << 8) | c.p2;
    switch (p1p2) {
      case 0x90a0:
        return this.#psoHash(c);
      case 0x9e9a:
        return this.#psoSign(c, channel);
      case 0x8086:
        return this.#psoDecipher(c, channel);
      default:
        return fail(SW.WRONG_P1P2);
    }
  }

  #psoHash(c: CommandApdu): Uint8Array {
    const ht = this.#env.ht;
    if (!ht) fail(SW.CONDITIONS_NOT_SATISFIED);
    const alg = HASH_ALGO[ht.algo];
    if (!alg) fail(SW.CONDITIONS_NOT_SATISFIED);
    let tlvs: Tlv[];
    try {
      tlvs = parseTlv(c.data, { recursive: false });
    } catch {
      return fail(SW.WRONG_DATA);
    }
    const state = tlvs.find((t) => t.tag === 0x90);
    const tail = tlvs.find((t) => t.tag === 0x80);
    if (!state || !tail || tail.value.length > 64) fail(SW.WRONG_DATA);
    try {
      const mid = decodeMidstate(alg, state.value);
      this.#env.hash = { alg, digest: shaResume(alg, mid.state, mid.bitCount, tail.value) };
    } catch {
      fail(SW.WRONG_DATA);
    }
    return EMPTY;
  }

  #psoSign(c: CommandApdu, channel: number): Uint8Array {
    const dst = this.#env.dst;
    if (!dst) fail(SW.CONDITIONS_NOT_SATISFIED);
    if (dst.chipDoc) return this.#chipDocSign(c, dst, channel);
    const alg = HASH_ALGO[dst.algo];
    if (!alg || (dst.algo !== 0x12 && dst.algo !== 0x42)) fail(SW.WRONG_DATA);
    if (this.personality.contactless) fail(SW.CONDITIONS_NOT_SATISFIED); // no signature contactless
    const key = this.#useKey(dst.key, 'cds', channel);
    let digest: Uint8Array;
    if (c.nc > 0) {
      // Hash computed off card: exactly one digest of the DST's algorithm.
      if (c.nc !== (alg === 'sha1' ? 20 : 32)) fail(SW.WRONG_LENGTH);
      digest = c.data;
    } else {
      const hash = this.#env.hash;
      if (!hash || hash.alg !== alg) fail(SW.CONDITIONS_NOT_SATISFIED);
      digest = hash.digest;
    }
    this.#env.hash = undefined;
    const digestInfo = concatBytes([DIGEST_INFO_PREFIX[alg], digest]);
    return new Uint8Array(privateEncrypt({ key: key.key, padding: constants.RSA_PKCS1_PADDING }, digestInfo));
  }

  /** CPS4: PKCS#1 v1.5 or PSS (salt = hash length) over the hash the host sends. */
  #chipDocSign(c: CommandApdu, dst: EnvEntry, channel: number): Uint8Array {
    const algo = CHIPDOC_ALGO[dst.algo];
    if (!algo) fail(SW.CONDITIONS_NOT_SATISFIED);
    const key = this.#useKey(dst.key, 'cds', channel);
    const size = algo.hash === 'sha1' ? 20 : 32;
    if (c.nc !== size) fail(SW.WRONG_LENGTH);
    if (!algo.pss) {
      return new Uint8Array(
        privateEncrypt({ key: key.key, padding: constants.RSA_PKCS1_PADDING }, concatBytes([DIGEST_INFO_PREFIX[algo.hash], c.data])),
      );
    }
    return new Uint8Array(
      privateEncrypt({ key: key.key, padding: constants.RSA_NO_PADDING }, emsaPss(c.data, algo.hash, key.modulusBytes * 8 - 1)),
    );
  }

  #psoDecipher(c: CommandApdu, channel: number): Uint8Array {
    const ct = this.#env.ct;
    if (!ct) fail(SW.CONDITIONS_NOT_SATISFIED);
    if (ct.chipDoc) {
      // CPS4 authentication: raw RSA on a full-modulus block the host padded (PKCS#1 type 1 or PSS).
      const key = this.#useKey(ct.key, 'int-auth', channel);
      if (c.nc !== key.modulusBytes) fail(SW.WRONG_LENGTH);
      try {
        return new Uint8Array(privateDecrypt({ key: key.key, padding: constants.RSA_NO_PADDING }, c.data));
      } catch {
        return fail(SW.WRONG_DATA);
      }
    }
    const key = this.#useKey(ct.key, 'decipher', channel);
    if (c.nc !== key.modulusBytes + 1 || c.data[0] !== 0x81) fail(SW.WRONG_DATA);
    let block: Uint8Array;
    try {
      block = new Uint8Array(privateDecrypt({ key: key.key, padding: constants.RSA_NO_PADDING }, c.data.subarray(1)));
    } catch {
      return fail(SW.WRONG_DATA);
    }
    // Algorithm 0x1A, RSA PKCS#1: the card strips the type-02 padding ([S], docs/virtual-card.md).
    // (Node refuses PKCS#1 v1.5 private decryption since the Marvin fix, so the padding is checked here.)
    const zero = block.indexOf(0x00, 2);
    if (block[0] !== 0x00 || block[1] !== 0x02 || zero < 10) fail(SW.WRONG_DATA);
    return block.slice(zero + 1);
  }

  #getChallenge(c: CommandApdu): Uint8Array {
    if (c.p1 !== 0 || c.p2 !== 0) fail(SW.WRONG_P1P2);
    const ne = c.ne ?? 8;
    if (ne > 32) fail(SW.WRONG_LENGTH);
    return new Uint8Array(randomBytes(ne));
  }
}

/** READ BINARY reached the end of the file before Le bytes: data with 6282. */
class PartialRead extends CardStatus {
  constructor(readonly data: Uint8Array) {
    super(SW.END_OF_FILE);
  }
}

/** EMSA-PSS encoding (RFC 8017 §9.1.1) with MGF1 of the same hash and a salt as long as the hash. */
function emsaPss(mHash: Uint8Array, hash: ShaAlgorithm, emBits: number): Uint8Array {
  const hLen = mHash.length;
  const emLen = Math.ceil(emBits / 8);
  const salt = randomBytes(hLen);
  const h = createHash(hash).update(concatBytes([new Uint8Array(8), mHash, salt])).digest();
  const db = new Uint8Array(emLen - hLen - 1);
  db[emLen - 2 * hLen - 2] = 0x01;
  db.set(salt, emLen - 2 * hLen - 1);
  const mask = mgf1(h, db.length, hash);
  for (let i = 0; i < db.length; i++) db[i] = (db[i] ?? 0) ^ (mask[i] ?? 0);
  db[0] = (db[0] ?? 0) & (0xff >> (8 * emLen - emBits));
  return concatBytes([db, h, Uint8Array.of(0xbc)]);
}

function mgf1(seed: Uint8Array, length: number, hash: ShaAlgorithm): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let counter = 0, total = 0; total < length; counter++) {
    const block = createHash(hash).update(seed).update(Uint8Array.of(counter >>> 24, (counter >>> 16) & 0xff, (counter >>> 8) & 0xff, counter & 0xff)).digest();
    parts.push(block);
    total += block.length;
  }
  return concatBytes(parts).subarray(0, length);
}

/**
 * GET DATA request of an SDO: 4D L 70 L BF <class> <ref> L <tag list>, where the tag list names the
 * wanted objects each followed by the length byte 80 ("all"): not BER, so parsed by hand.
 */
function parseSdoRequest(data: Uint8Array): { cls: number; ref: number; tags: number[] } | undefined {
  if (data[0] !== 0x4d || data[2] !== 0x70 || data[4] !== 0xbf) return undefined;
  if (data[1] !== data.length - 2 || data[3] !== data.length - 4) return undefined;
  const cls = data[5];
  const ref = data[6];
  const len = data[7];
  if (cls === undefined || ref === undefined || len !== data.length - 8) return undefined;
  const tags: number[] = [];
  for (let i = 8; i < data.length; ) {
    let tag = data[i++] ?? 0;
    if ((tag & 0x1f) === 0x1f) {
      let b: number;
      do {
        b = data[i++] ?? 0;
        tag = tag * 256 + b;
      } while (b & 0x80 && i < data.length);
    }
    if (i >= data.length) return undefined;
    i++; // the length byte (80)
    tags.push(tag);
  }
  return { cls, ref, tags };
}

function fid(data: Uint8Array, i: number): number {
  return ((data[i] ?? 0) << 8) | (data[i + 1] ?? 0);
}




