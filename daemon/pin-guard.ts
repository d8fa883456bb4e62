/**
 * The one PIN guard of the daemon: every operation that needs the PIN goes through `withPin`.
 *
 * 1. A short read-only job learns what the PIN page shows (holder, tries left, the card's PIN rule).
 * 2. The PIN is obtained without holding the card: from a local application's request, or typed by the
 *    person on the daemon's PIN page (other clients keep using the card meanwhile).
 * 3. PIN verification and the operation it unlocks run as one exclusive job (no other PC/SC client can
 *    interleave), on the same card (serial checked), then the card is reset unless an SSO window keeps it.
 * A PIN-pad reader is the exception: the pad holds the card while the holder types on it.
 * The middleware never spends a try on its own: the PIN always comes from a person, the last try only
 * with explicit consent.
 */
import type { CpsCard } from '../cards/card.js';
import { Pin, type PinRule } from '../cards/pin.js';
import { readPublicData, resumeCard, seenCard, type CardCache, type PublicCardData, type SeenCard } from '../cards/public-data.js';
import type { CardSessions, JobContext } from '../cards/session.js';
import { certificateInfo, holderIdentity } from '../pkcs/holder.js';
import type { PinEntries } from './pin-entry.js';
import type { PinPageView } from './pin-page.js';
import { ProtocolError } from './protocol.js';

export interface Caller {
  origin: string | null;
  /** Aborted when the caller's connection closes. */
  signal: AbortSignal;
  notify(method: string, params: Record<string, unknown>): void;
}

export interface PinGuardOptions {
  sessions: CardSessions;
  entries: PinEntries;
  cache: CardCache;
  allowPinInRequest: boolean;
  /** Per PIN-pad entry: the holder types on the reader meanwhile. */
  pinPadTimeoutMs: number;
}

export interface Operation<T> {
  requestId: string | number;
  reader: string | undefined;
  purpose: 'authentication' | 'signature';
  /** A local application's PIN from the request, if any. */
  pin: string | undefined;
  signature?: PinPageView['signature'];
  /** A CIBA request (daemon/idp-link.ts): the PIN page names the application and shows its binding message. */
  ciba?: PinPageView['ciba'];
  /** Skip the PIN when the card is still verified for this caller (SSO window); checked inside the job. */
  reuse?: (data: PublicCardData, card: CpsCard) => Promise<boolean>;
  after: 'leave' | 'reset';
  run: (card: CpsCard, data: PublicCardData, context: JobContext) => Promise<T>;
}

export interface Look {
  data: PublicCardData;
  /** The card as the look left it (serial, directories): a signature's PIN job goes on with it. */
  seen: SeenCard;
  holder: string;
  triesLeft: number;
  blocked: boolean;
  rule: PinRule;
  contactless: boolean;
  /** The reader has a PIN pad: the PIN is typed there. */
  pinPad: boolean;
  /** What the certificate of the key the operation uses is for (the PIN page says it). */
  certificate: CertificatePurpose;
}

export type CertificatePurpose = 'signature' | 'authentication';

/**
 * What a certificate is for, by its keyUsage: nonRepudiation is the signing (non-repudiation) one,
 * anything else the authentication one; `fallback` (the operation's key) when there is none to read.
 */
export function certificatePurpose(der: Uint8Array | undefined, fallback: CertificatePurpose): CertificatePurpose {
  if (!der) return fallback;
  try {
    const usage = certificateInfo(der).keyUsage;
    return usage === undefined ? fallback : usage.has(1) ? 'signature' : 'authentication';
  } catch {
    return fallback;
  }
}

export class PinGuard {
  readonly #o: PinGuardOptions;

  constructor(options: PinGuardOptions) {
    this.#o = options;
  }

  /**
   * What the PIN page shows, read in a short job that leaves the card as it was. For a signature the
   * signing certificate is read too (then cached): the page says what the certificate used is for.
   */
  look(caller: Caller, reader: string | undefined, purpose: Operation<unknown>['purpose'] = 'authentication'): Promise<Look> {
    return this.#o.sessions.run(
      async (card, context) => {
        const data = await readPublicData(card, this.#o.cache, { signCertificate: purpose === 'signature' });
        const status = await card.pinStatus();
        const certificate = data.authCertificate ?? data.signCertificate;
        const identity = certificate ? holderIdentity({ certificate, serial: data.serial, data: data.data }) : undefined;
        return {
          data,
          seen: await seenCard(card, data),
          holder: identity ? `${identity.givenName} ${identity.surname}` : data.serial,
          triesLeft: status.triesLeft,
          blocked: status.blocked,
          rule: card.pinRule(),
          contactless: card.kind.interface === 'contactless',
          pinPad: context.pinPad !== undefined,
          certificate: certificatePurpose(purpose === 'signature' ? data.signCertificate : data.authCertificate, purpose),
        };
      },
      { reader, signal: caller.signal, owner: caller.origin ?? '', retryOnReset: true },
    );
  }

  /** Runs `op` with the PIN verified just before it, in one exclusive job (`seen`: a look already taken). */
  async withPin<T>(caller: Caller, op: Operation<T>, seen?: Look): Promise<T> {
    const look = seen ?? (await this.look(caller, op.reader, op.purpose));
    if (look.blocked) throw new ProtocolError('PIN_BLOCKED', 'the PIN is blocked', { triesLeft: 0 });
    const jobOptions = { reader: op.reader, signal: caller.signal, owner: caller.origin ?? '', exclusive: true, after: op.after } as const;
    const replaced = (): ProtocolError => new ProtocolError('CARD_ABSENT', 'the card was replaced by another one');
    const sameCard = async (card: CpsCard): Promise<PublicCardData> => {
      // A signature needs the same card only: its serial, then the look's certificate and directories
      // (EF_ACTUA marks updates of the situation data, which a signature does not use). A login may read
      // the situations in its job: it checks the cache entry whole.
      if (op.purpose === 'signature') {
        if (!(await resumeCard(card, look.seen))) throw replaced();
        return look.data;
      }
      const data = await readPublicData(card, this.#o.cache, { signCertificate: false });
      if (data.serial !== look.data.serial) throw replaced();
      return data;
    };

    if (op.reuse) {
      const reused = await this.#o.sessions.run(async (card, context) => {
        const data = await sameCard(card);
        return (await op.reuse?.(data, card)) ? { value: await op.run(card, data, context) } : undefined;
      }, jobOptions);
      if (reused) return reused.value;
    }

    if (op.pin !== undefined) {
      if (caller.origin !== null) throw new ProtocolError('PIN_NOT_ALLOWED', 'a web page never sends the PIN: it is typed on the PIN page');
      if (!this.#o.allowPinInRequest) throw new ProtocolError('PIN_NOT_ALLOWED', 'PIN in requests is disabled by configuration');
      const pin = new Pin(op.pin);
      return this.#o.sessions.run(async (card, context) => {
        const data = await sameCard(card);
        await card.verifyPin(pin);
        return op.run(card, data, context);
      }, jobOptions);
    }

    if (look.pinPad) {
      return this.#o.sessions.run(
        async (card, context) => {
          const data = await sameCard(card);
          if (!context.pinPad) throw new ProtocolError('READER_NOT_FOUND', 'the PIN-pad reader changed');
          caller.notify('pin.required', { requestId: op.requestId, pinPad: true, purpose: op.purpose, triesLeft: look.triesLeft });
          await card.verifyPinOnReader(context.pinPad);
          return op.run(card, data, context);
        },
        { ...jobOptions, timeoutMs: this.#o.pinPadTimeoutMs },
      );
    }

    const answer = await this.#o.entries.ask({
      origin: caller.origin,
      purpose: op.purpose,
      holder: look.holder,
      triesLeft: look.triesLeft,
      rule: look.rule,
      certificate: look.certificate,
      signature: op.signature,
      ciba: op.ciba,
      signal: caller.signal,
      announce: (url) => caller.notify('pin.required', { requestId: op.requestId, url, purpose: op.purpose, triesLeft: look.triesLeft }),
    });
    try {
      const result = await this.#o.sessions.run(async (card, context) => {
        const data = await sameCard(card);
        await card.verifyPin(answer.pin, { allowLastTry: answer.consent });
        return op.run(card, data, context);
      }, jobOptions);
      answer.settle();
      return result;
    } catch (error) {
      answer.settle(error);
      throw error;
    }
  }
}
