/**
 * One module connection (one application's C_Initialize): its login state per card, and the PIN-using
 * operations. Login state belongs to the connection that logged in: another connection never signs on
 * the strength of it, whatever the card's own state (docs/pkcs11.md, "Who is logged in").
 *
 * - CKU_USER: one VERIFY, in an exclusive job that leaves the card verified; the authentication key then
 *   signs for this connection until logout, card removal, the connection's end or the card losing its
 *   verified state (another application reset it: CKR_USER_NOT_LOGGED_IN, and the application logs in again).
 * - CKU_CONTEXT_SPECIFIC (the signature key, CKA_ALWAYS_AUTHENTICATE): VERIFY and the one signature it
 *   allows run in one exclusive job that holds the card between C_Login and C_Sign (30 s at most), then
 *   the card is reset.
 */
import { createHash } from 'node:crypto';
import { CpsCard, UserCancelledError, type HashAlgorithm } from '../cards/card.js';
import { CardAbsentError } from '../apdu/pcsc/errors.js';
import { ProtocolError } from '../daemon/protocol.js';
import { Pin } from '../cards/pin.js';
import type { CardSessions } from '../cards/session.js';
import { WrongPinError } from '../apdu/status.js';
import type { Logger } from '../daemon/log.js';
import type { PinRefusal } from '../daemon/pin-notice.js';
import { Pkcs11Error } from './ckr.js';
import { CKG_MGF1_SHA1, CKG_MGF1_SHA256, CKM, CKU_CONTEXT_SPECIFIC, CKU_USER } from './constants.js';
import type { Tokens } from './tokens.js';
import type { Token, TokenKey } from './token.js';

export interface SignRequest {
  handle: number;
  mechanism: number;
  data: Buffer;
  pss: { hash: number; mgf: number; salt: number } | undefined;
}

/** How long a context-specific login holds the card waiting for its signature. */
export const CONTEXT_HOLD_MS = 30_000;

const OWNER = 'pkcs11';

interface ContextLogin {
  reader: string;
  generation: number;
  handle: number;
  deliver: (request: SignRequest) => Promise<Uint8Array>;
  cancel: (reason: Error) => void;
}

export class ModuleConnection {
  app = '';
  readonly #sessions: CardSessions;
  readonly #tokens: Tokens;
  readonly #log: Logger;
  readonly #controller = new AbortController();
  /** Reader → the card generation this connection logged in to, and its hold on the card's verified state. */
  readonly #logins = new Map<string, { generation: number; release: () => boolean }>();
  #context: ContextLogin | undefined;
  readonly #onPinRefused: ((refusal: PinRefusal) => void) | undefined;

  constructor(sessions: CardSessions, tokens: Tokens, log: Logger, onPinRefused?: (refusal: PinRefusal) => void) {
    this.#sessions = sessions;
    this.#tokens = tokens;
    this.#log = log;
    this.#onPinRefused = onPinRefused;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The card left: its login is over. */
  forget(reader: string): void {
    this.#logins.get(reader)?.release();
    this.#logins.delete(reader);
    if (this.#context?.reader === reader) this.#context.cancel(new CardAbsentError('the card was removed'));
  }

  /** The application went away (or the daemon stops): the cards it unlocked are reset. */
  async end(): Promise<void> {
    this.#controller.abort(new UserCancelledError('the connection closed'));
    const readers = [...this.#logins.keys()];
    await Promise.all(readers.map((reader) => this.#logout(reader)));
  }

  async login(reader: string, generation: number, userType: number, pin: Buffer | undefined, handle: number | undefined): Promise<void> {
    this.#tokens.check(reader, generation);
    const token = await this.#tokens.get(reader, generation, this.signal);
    if (userType === CKU_CONTEXT_SPECIFIC) {
      const key = handle === undefined ? undefined : token.keys.get(handle);
      if (!key || handle === undefined) throw new Pkcs11Error('KEY_NOT_FOUND', 'a context-specific login names the key it is for');
      return this.#contextLogin(reader, generation, token, handle, key, pin);
    }
    if (userType !== CKU_USER) throw new Pkcs11Error('USER_TYPE_INVALID', 'only the user (and context-specific) logins exist on a CPS card');
    if (this.#logins.get(reader)?.generation === generation) throw new Pkcs11Error('ALREADY_LOGGED_IN', 'already logged in');
    await this.#verifyJob(reader, generation, token, pin, 'leave', async () => undefined);
    this.#logins.get(reader)?.release(); // a login to a card since removed
    this.#logins.set(reader, { generation, release: this.#sessions.holdVerified(reader) });
    this.#log.info('pkcs11-login', { app: this.app, reader });
  }

  async logout(reader: string, generation: number): Promise<void> {
    this.#tokens.check(reader, generation);
    if (this.#logins.get(reader)?.generation !== generation) throw new Pkcs11Error('NOT_LOGGED_IN', 'not logged in');
    await this.#logout(reader);
  }

  async sign(reader: string, generation: number, request: SignRequest): Promise<Uint8Array> {
    this.#tokens.check(reader, generation);
    const token = await this.#tokens.get(reader, generation, this.signal);
    const key = token.keys.get(request.handle);
    if (!key) throw new Pkcs11Error('KEY_NOT_FOUND', 'no such private key');
    if (!key.mechanisms.includes(request.mechanism)) throw new Pkcs11Error('MECHANISM_INVALID', `mechanism 0x${request.mechanism.toString(16)} is not one of this card's`);
    this.#log.info('pkcs11-sign', { app: this.app, reader, key: key.use, mechanism: request.mechanism });
    if (key.alwaysAuthenticate) {
      const context = this.#context;
      if (!context || context.reader !== reader || context.handle !== request.handle) {
        throw new Pkcs11Error('NOT_LOGGED_IN', 'the signature key needs its own PIN (C_Login CKU_CONTEXT_SPECIFIC) before each signature');
      }
      this.#context = undefined;
      return context.deliver(request);
    }
    if (this.#logins.get(reader)?.generation !== generation) throw new Pkcs11Error('NOT_LOGGED_IN', 'this application did not log in to the card');
    try {
      return await this.#sessions.run((card) => {
        card.useObjects(token.cardObjects);
        return signWith(card, key, request);
      }, { reader, signal: this.signal, owner: OWNER, exclusive: true, after: 'leave' });
    } catch (error) {
      // The card forgot the PIN (another application reset it): the application is told to log in again.
      if (error instanceof Error && 'code' in error && error.code === 'SECURITY_STATUS_NOT_SATISFIED') {
        this.#logins.get(reader)?.release();
        this.#logins.delete(reader);
        throw new Pkcs11Error('NOT_LOGGED_IN', 'the card is no longer verified (another application reset it): log in again');
      }
      throw error;
    }
  }

  /** VERIFY then `then`, one exclusive job; a wrong PIN updates the token's counter flags. */
  async #verifyJob<T>(reader: string, generation: number, token: Token, pin: Buffer | undefined, after: 'leave' | 'reset', then: (card: CpsCard) => Promise<T>, onVerified?: () => void): Promise<T> {
    // Digits as text for the driver's Pin (checked against the card's rule there); the bytes are zeroed by the caller.
    const typed = pin === undefined ? undefined : new Pin(pin.toString('latin1'));
    try {
      return await this.#sessions.run(
        async (card, context) => {
          // The PIN reference and rule from the AODF, the key references for what follows: no directory read.
          card.useObjects(token.cardObjects);
          if (typed) await card.verifyPin(typed);
          else if (context.pinPad) await card.verifyPinOnReader(context.pinPad);
          else throw new ProtocolError('INVALID_REQUEST', 'no PIN given, and the reader has no PIN pad');
          const status = await card.pinStatus();
          this.#tokens.setTries(reader, generation, status.triesLeft, status.blocked);
          onVerified?.();
          return then(card);
        },
        // A PIN pad waits for the holder; a context-specific login then holds the card for its signature.
        { reader, signal: this.signal, owner: OWNER, exclusive: true, after, timeoutMs: (typed ? 30_000 : 10 * 60_000) + (after === 'reset' ? CONTEXT_HOLD_MS : 0) },
      );
    } catch (error) {
      if (error instanceof WrongPinError && error.triesLeft !== undefined) {
        this.#tokens.setTries(reader, generation, error.triesLeft, error.triesLeft === 0);
        this.#refused(token, error.triesLeft, error.triesLeft === 0);
      }
      if (error instanceof Error && 'code' in error && error.code === 'PIN_BLOCKED') {
        this.#tokens.setTries(reader, generation, 0, true);
        this.#refused(token, 0, true);
      }
      // One try left: refused before the card saw it (the last try needs consent a prompt cannot give).
      if (error instanceof Error && 'code' in error && error.code === 'PIN_LAST_TRY') this.#refused(token, 1, false);
      throw error;
    }
  }

  /** The application's prompt will only ask again: the daemon tells the person how many tries are left. */
  #refused(token: Token, triesLeft: number, blocked: boolean): void {
    try {
      this.#onPinRefused?.({ app: this.app, card: token.label, triesLeft, blocked });
    } catch (error) {
      this.#log.warn('pin-notice-failed', { error });
    }
  }

  /** Resolves once the PIN is verified; the job goes on holding the card until the signature (or 30 s). */
  #contextLogin(reader: string, generation: number, token: Token, handle: number, key: TokenKey, pin: Buffer | undefined): Promise<void> {
    this.#context?.cancel(new UserCancelledError('another context-specific login replaced this one'));
    return new Promise<void>((loggedIn, failed) => {
      let deliver!: (request: SignRequest) => void;
      let cancel!: (reason: Error) => void;
      const next = new Promise<SignRequest>((resolve, reject) => {
        deliver = resolve;
        cancel = reject;
      });
      next.catch(() => undefined);
      const holder: { signature?: Promise<Uint8Array> } = {};
      const job = this.#verifyJob(reader, generation, token, pin, 'reset', async (card) => {
        const timer = setTimeout(() => cancel(new Pkcs11Error('NOT_LOGGED_IN', 'no signature followed the PIN within 30 s')), CONTEXT_HOLD_MS);
        try {
          return await signWith(card, key, await next);
        } finally {
          clearTimeout(timer);
        }
      }, () => {
        this.#context = {
          reader,
          generation,
          handle,
          deliver: (request) => {
            deliver(request);
            return holder.signature as Promise<Uint8Array>;
          },
          cancel: (reason) => cancel(reason),
        };
        loggedIn();
      });
      holder.signature = job;
      job.catch((error: unknown) => {
        if (this.#context?.handle === handle && this.#context.reader === reader) this.#context = undefined;
        failed(error); // ignored once loggedIn() ran
      });
    });
  }

  /** Ends this connection's login; the card forgets the PIN unless another application is still logged in. */
  async #logout(reader: string): Promise<void> {
    const login = this.#logins.get(reader);
    this.#logins.delete(reader);
    if (login && !login.release()) return;
    await this.#sessions
      .run(async (card) => card.logout().catch(() => undefined), { reader, owner: OWNER, after: 'reset' })
      .catch((error: unknown) => this.#log.debug('pkcs11-reset-failed', { error }));
  }
}

const HASH_OF_MECHANISM: Readonly<Record<number, HashAlgorithm>> = {
  [CKM.SHA1_RSA_PKCS]: 'sha1',
  [CKM.SHA256_RSA_PKCS]: 'sha256',
  [CKM.SHA1_RSA_PKCS_PSS]: 'sha1',
  [CKM.SHA256_RSA_PKCS_PSS]: 'sha256',
};

const PSS_PARAMS: Readonly<Record<HashAlgorithm, { hash: number; mgf: number; length: number }>> = {
  sha1: { hash: CKM.SHA_1, mgf: CKG_MGF1_SHA1, length: 20 },
  sha256: { hash: CKM.SHA256, mgf: CKG_MGF1_SHA256, length: 32 },
};

/** DigestInfo prefixes the signature key accepts behind CKM_RSA_PKCS (RFC 8017 §9.2 note 1). */
const DIGEST_INFO_PREFIX: ReadonlyArray<[HashAlgorithm, string]> = [
  ['sha1', '3021300906052b0e03021a05000414'],
  ['sha256', '3031300d060960864801650304020105000420'],
];

/** What the card does for a PKCS#11 mechanism. */
export async function signWith(card: CpsCard, key: TokenKey, r: SignRequest): Promise<Uint8Array> {
  const data = new Uint8Array(r.data);
  const pss = r.mechanism === CKM.RSA_PKCS_PSS || r.mechanism === CKM.SHA1_RSA_PKCS_PSS || r.mechanism === CKM.SHA256_RSA_PKCS_PSS;
  if (pss) {
    if (!r.pss) throw new Pkcs11Error('MECHANISM_PARAM_INVALID', 'PSS needs its parameters');
    const hash = (Object.keys(PSS_PARAMS) as HashAlgorithm[]).find((h) => PSS_PARAMS[h].hash === r.pss?.hash);
    const implied = HASH_OF_MECHANISM[r.mechanism];
    if (!hash || (implied && implied !== hash) || PSS_PARAMS[hash].mgf !== r.pss.mgf) throw new Pkcs11Error('MECHANISM_PARAM_INVALID', 'PSS with SHA-1 or SHA-256 and MGF1 of the same hash only');
    const digest = implied ? new Uint8Array(createHash(hash).update(data).digest()) : data;
    if (digest.length !== PSS_PARAMS[hash].length) throw new Pkcs11Error('DATA_LENGTH', `a ${hash} hash is ${PSS_PARAMS[hash].length} bytes`);
    if (key.use === 'auth') {
      if (r.pss.salt > key.modulusBytes - PSS_PARAMS[hash].length - 2) throw new Pkcs11Error('MECHANISM_PARAM_INVALID', 'salt too long for the key');
      return card.authenticatePss(hash, digest, r.pss.salt);
    }
    if (r.pss.salt !== PSS_PARAMS[hash].length) throw new Pkcs11Error('MECHANISM_PARAM_INVALID', 'the signature key salts with the hash length only');
    return card.signPss(hash, digest);
  }
  const hash = HASH_OF_MECHANISM[r.mechanism];
  if (key.use === 'auth') {
    if (hash) return card.authenticate(CpsCard.digestInfo(hash, new Uint8Array(createHash(hash).update(data).digest())));
    // CKM_RSA_PKCS: the caller's DigestInfo (or TLS 1.0's MD5+SHA-1), at most 40 % of the modulus.
    if (data.length === 0 || data.length > Math.floor(key.modulusBytes * 0.4)) throw new Pkcs11Error('DATA_LENGTH', 'the authentication key signs at most 40 % of its modulus');
    return card.authenticate(data);
  }
  if (hash) return card.sign(hash, { message: data });
  const hex = Buffer.from(data).toString('hex');
  const known = DIGEST_INFO_PREFIX.find(([h, prefix]) => hex.startsWith(prefix) && data.length === prefix.length / 2 + PSS_PARAMS[h].length);
  if (!known) throw new Pkcs11Error('DATA_INVALID', 'the signature key signs a SHA-1 or SHA-256 DigestInfo');
  return card.sign(known[0], { digest: data.subarray(known[1].length / 2) });
}
