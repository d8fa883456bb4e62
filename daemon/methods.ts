/**
 * The protocol's methods, one typed table (docs/protocol.md): each entry names its parameters and its
 * handler; `hello` lists the table, so what the daemon says it serves is what it serves.
 */
import { createHash } from 'node:crypto';
import { CpsCard } from '../cards/card.js';
import { own } from '../core/own.js';
import { readPublicData, type CardCache, type PublicCardData } from '../cards/public-data.js';
import type { CardSessions } from '../cards/session.js';
import type { CardTwins } from '../cards/twins.js';
import { holderIdentity, practiceSituation, type HolderIdentity, type PracticeSituation } from '../pkcs/holder.js';
import { TOKEN_FORMAT, signedData, type AuthToken } from '../pkcs/token.js';
import type { DaemonConfig } from './config.js';
import type { Logger } from './log.js';
import type { Caller, PinGuard } from './pin-guard.js';
import { PROTOCOL, ProtocolError, toRpcError, type ErrorCode, type Field } from './protocol.js';

export const VERSION = '0.1.0';
const APP_VERSION = `https://github.com/cpsd/cpsd/releases/tag/v${VERSION}`;
export const NOTIFICATIONS = ['readers.changed', 'card.inserted', 'card.removed', 'pin.required'] as const;

export interface MethodContext {
  caller: Caller;
  requestId: string | number;
  params: Record<string, unknown>;
  sessions: CardSessions;
  /** Which readers show the same card (dual-interface readers). */
  twins: CardTwins;
  guard: PinGuard;
  cache: CardCache;
  config: DaemonConfig;
  /** The port the daemon listens on. */
  port: number;
  log: Logger;
  /** SSO windows configured by IT: origin → card serial and expiry of the verified state it may reuse. */
  sso: Map<string, { serial: string; until: number }>;
}

interface Method {
  params: Readonly<Record<string, Field>>;
  run(ctx: MethodContext): Promise<unknown>;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
const readerOf = (ctx: MethodContext): string | undefined => ctx.params.reader as string | undefined;
/** Jobs that only read run again after another application reset the card (SHARED access). */
const readOnly = (ctx: MethodContext) => ({ reader: readerOf(ctx), signal: ctx.caller.signal, owner: ctx.caller.origin ?? '', retryOnReset: true });

function ssoSeconds(ctx: MethodContext): number {
  return ctx.caller.origin ? (own(ctx.config.ssoSeconds, ctx.caller.origin) ?? 0) : 0;
}

/** Writes the audit line (origin, card serial, outcome) of an operation that used a key, either way. */
async function audited<T>(ctx: MethodContext, operation: string, run: (setSerial: (s: string) => void) => Promise<T>): Promise<T> {
  let serial: string | null = null;
  try {
    const result = await run((s) => (serial = s));
    ctx.log.audit({ operation, origin: ctx.caller.origin, serial, outcome: 'ok' });
    return result;
  } catch (error) {
    ctx.log.audit({ operation, origin: ctx.caller.origin, serial, outcome: toRpcError(error).data.code });
    throw error;
  }
}

/**
 * `auth.authenticate` with `situations: true` (docs/protocol.md): the token, unchanged, next to what the
 * card says of its holder. `identity` is `card.identity`'s; `situations` the practice situations read in
 * the same card job as the signature, while the PIN is verified, or null with `situationsError` when
 * they could not be read (the token stays valid: the relying party decides). Neither is covered by the
 * card's signature: the workstation read them.
 */
export type AuthWithSituations = { token: AuthToken; identity: HolderIdentity } & (
  | { situations: PracticeSituation[] }
  | { situations: null; situationsError: { code: ErrorCode; message: string } }
);

/** The holder as the card names it (`card.identity`): the authentication certificate, or the signing one on a card without it. */
async function cardIdentity(card: CpsCard, cache: CardCache, data: PublicCardData): Promise<HolderIdentity> {
  const certificate = data.authCertificate ?? (await readPublicData(card, cache)).signCertificate;
  if (!certificate) throw new ProtocolError('CARD_ERROR', 'the card holds no certificate');
  return holderIdentity({ certificate, serial: data.serial, data: data.data });
}

/** The practice situations (CPS_ACTIVITY_nn_PS, PIN-protected): only called with the PIN verified, in the job that verified it. */
async function readSituations(card: CpsCard): Promise<PracticeSituation[]> {
  const out: PracticeSituation[] = [];
  for (const label of await card.situationLabels()) {
    const s = practiceSituation(label, (await card.dataObject(label)) ?? new Uint8Array(0));
    if (s) out.push(s);
  }
  return out.sort((a, b) => a.index - b.index);
}

async function authenticate(ctx: MethodContext): Promise<AuthToken | AuthWithSituations> {
  const nonce = ctx.params.nonce as string;
  const origin = ctx.caller.origin ?? 'null';
  const withSituations = ctx.params.situations === true;
  // Web eID: the card signs H(origin) ‖ H(nonce), the origin being the browser-enforced one.
  const sign = async (card: CpsCard, cert: Uint8Array | undefined): Promise<AuthToken> => {
    const digest = createHash('sha256').update(signedData(origin, nonce)).digest();
    const signature = await card.authenticate(CpsCard.digestInfo('sha256', digest));
    return { unverifiedCertificate: b64(cert ?? new Uint8Array(0)), algorithm: 'RS256', signature: b64(signature), format: TOKEN_FORMAT, appVersion: APP_VERSION };
  };
  /**
   * The login inside the card job. `pinVerified`: the job verified the PIN (or found it verified for the
   * SSO window) just before; only then are the situations read. A failure reading them after the
   * signature does not throw away the signature: the result says why they are missing.
   */
  const login = async (card: CpsCard, data: PublicCardData, pinVerified: boolean): Promise<AuthToken | AuthWithSituations> => {
    // Parsed before the signature: a card whose certificate does not parse fails without signing.
    const identity = withSituations ? await cardIdentity(card, ctx.cache, data) : undefined;
    const token = await sign(card, data.authCertificate);
    if (!identity) return token;
    if (!pinVerified) {
      return { token, identity, situations: null, situationsError: { code: 'CONTACTLESS_NOT_ALLOWED', message: 'the practice situations need the PIN: a contactless login cannot read them' } };
    }
    try {
      return { token, identity, situations: await readSituations(card) };
    } catch (error) {
      const rpc = toRpcError(error);
      ctx.log.warn('practice situations unreadable after the signature', { code: rpc.data.code });
      return { token, identity, situations: null, situationsError: { code: rpc.data.code, message: rpc.message } };
    }
  };
  return audited(ctx, 'authenticate', async (setSerial) => {
    // A card shown contactless and by contact (dual-interface reader) logs in by contact, with its PIN:
    // never silently with the contactless technical key.
    const reader = await ctx.twins.contactReader(readerOf(ctx), ctx.caller.signal);
    const look = await ctx.guard.look(ctx.caller, reader);
    setSerial(look.data.serial);
    if (look.contactless) {
      // The contactless technical key signs without PIN: one factor, only where IT allowed it.
      if (!ctx.caller.origin || !ctx.config.contactlessOrigins.includes(ctx.caller.origin)) {
        throw new ProtocolError('CONTACTLESS_NOT_ALLOWED', 'a contactless card cannot log in here: insert it in a contact reader');
      }
      return ctx.sessions.run((card) => login(card, look.data, false), { ...readOnly(ctx), reader, retryOnReset: false, exclusive: true, after: 'reset' });
    }
    const sso = ssoSeconds(ctx);
    const session = ctx.caller.origin ? ctx.sso.get(ctx.caller.origin) : undefined;
    const result = await ctx.guard.withPin(ctx.caller, {
      requestId: ctx.requestId,
      reader,
      purpose: 'authentication',
      pin: ctx.params.pin as string | undefined,
      after: sso > 0 ? 'leave' : 'reset',
      // The SSO shortcut runs `run` only when the card still reports the PIN verified, in the same job.
      ...(session
        ? { reuse: async (data, card) => session.serial === data.serial && session.until > Date.now() && (await card.pinStatus()).verified }
        : {}),
      // withPin calls `run` only after the PIN was verified in this job (page, request, PIN pad or SSO reuse).
      run: (card, data) => login(card, data, true),
    }, look);
    if (ctx.caller.origin && sso > 0) ctx.sso.set(ctx.caller.origin, { serial: look.data.serial, until: Date.now() + sso * 1000 });
    return result;
  });
}

async function signHash(ctx: MethodContext): Promise<unknown> {
  const hash = Buffer.from(ctx.params.hash as string, 'base64url');
  const alg = ctx.params.hashAlgorithm === 'SHA-1' ? 'sha1' : 'sha256';
  if (hash.length !== (alg === 'sha1' ? 20 : 32)) throw new ProtocolError('INVALID_REQUEST', `a ${String(ctx.params.hashAlgorithm)} hash is ${alg === 'sha1' ? 20 : 32} bytes`);
  // The signing key always needs its own PIN entry, and the card is reset afterwards.
  return audited(ctx, 'sign', async (setSerial) =>
    ctx.guard.withPin(ctx.caller, {
      requestId: ctx.requestId,
      reader: await ctx.twins.contactReader(readerOf(ctx), ctx.caller.signal),
      purpose: 'signature',
      pin: ctx.params.pin as string | undefined,
      signature: { hashAlgorithm: String(ctx.params.hashAlgorithm), hashHex: hash.toString('hex').toUpperCase(), document: ctx.params.document as string | undefined },
      after: 'reset',
      run: async (card, data) => {
        setSerial(data.serial);
        const signature = await card.sign(alg, { digest: hash });
        return { signature: b64(signature), certificate: data.signCertificate ? b64(data.signCertificate) : null };
      },
    }),
  );
}

export const METHODS = {
  hello: {
    params: {},
    run: async (ctx): Promise<unknown> => ({
      protocol: PROTOCOL,
      version: VERSION,
      origin: ctx.caller.origin,
      methods: Object.keys(METHODS),
      notifications: NOTIFICATIONS,
      pinEntry: ctx.caller.origin === null && ctx.config.allowPinInRequest ? ['page', 'request'] : ['page'],
    }),
  },
  'readers.list': {
    params: {},
    run: async (ctx) => ({ readers: await ctx.twins.placements(ctx.caller.signal) }),
  },
  'card.status': {
    params: { reader: 'reader?' },
    run: async (ctx) => {
      const status = await ctx.sessions.run(async (card, { reader }) => {
        const data = await readPublicData(card, ctx.cache, { signCertificate: false });
        const pin = await card.pinStatus();
        return {
          reader,
          atr: Buffer.from(card.atr).toString('hex').toUpperCase(),
          generation: card.kind.generation,
          interface: card.kind.interface,
          serial: data.serial,
          pin: { triesLeft: pin.triesLeft, max: pin.max, blocked: pin.blocked },
        };
      }, readOnly(ctx));
      // Outside the job: asking the other readers while holding this one could deadlock with their own status.
      return { ...status, sameCardAs: await ctx.twins.sameCardAs(status.reader, status.serial, ctx.caller.signal) };
    },
  },
  'card.identity': {
    params: { reader: 'reader?' },
    run: (ctx) =>
      ctx.sessions.run(async (card) => {
        const data = await readPublicData(card, ctx.cache, { signCertificate: false });
        return { ...(await cardIdentity(card, ctx.cache, data)) };
      }, readOnly(ctx)),
  },
  'card.certificates': {
    params: { reader: 'reader?' },
    run: (ctx) =>
      ctx.sessions.run(async (card) => {
        const data = await readPublicData(card, ctx.cache);
        return {
          authentication: data.authCertificate ? b64(data.authCertificate) : null,
          signing: data.signCertificate ? b64(data.signCertificate) : null,
        };
      }, readOnly(ctx)),
  },
  'auth.authenticate': {
    params: { nonce: 'nonce', reader: 'reader?', pin: 'pin?', situations: 'boolean?' },
    run: authenticate,
  },
  'sign.hash': {
    params: { hash: 'base64url', hashAlgorithm: 'hashAlgorithm', document: 'document?', reader: 'reader?', pin: 'pin?' },
    run: signHash,
  },
  'session.logout': {
    params: { reader: 'reader?' },
    run: async (ctx) => {
      if (ctx.caller.origin) ctx.sso.delete(ctx.caller.origin);
      await ctx.sessions.run(async (card) => card.logout().catch(() => undefined), { ...readOnly(ctx), retryOnReset: false, after: 'reset' });
      return { ok: true };
    },
  },
  'daemon.config': {
    params: {},
    run: async (ctx) => {
      // For diagnostics on this machine (cpsd doctor): a web page never learns which origins are allowed.
      if (ctx.caller.origin !== null) throw new ProtocolError('ORIGIN_NOT_ALLOWED', 'daemon.config answers local applications only');
      const c = ctx.config;
      // Field by field: whatever is added to the configuration later is not shown until chosen here.
      return {
        port: ctx.port, // the one it listens on (the configuration may say 0: any free port)
        allowedOrigins: [...c.allowedOrigins],
        allowHttpLocalhost: c.allowHttpLocalhost,
        contactlessOrigins: [...c.contactlessOrigins],
        allowPinInRequest: c.allowPinInRequest,
        ssoSeconds: { ...c.ssoSeconds },
        limits: {
          maxConnections: c.maxConnections,
          maxLocalConnections: c.maxLocalConnections,
          maxMessageBytes: c.maxMessageBytes,
          ratePerSecond: c.ratePerSecond,
          operationTimeoutMs: c.operationTimeoutMs,
          pinTimeoutMs: c.pinTimeoutMs,
        },
        logLevel: c.logLevel,
        pcscBinding: c.pcscBinding,
        behindProxy: c.behindProxy,
        peerCheckUnsupported: c.peerCheckUnsupported,
      };
    },
  },
} satisfies Record<string, Method>;

export type MethodName = keyof typeof METHODS;

export function isMethod(name: string): name is MethodName {
  return Object.prototype.hasOwnProperty.call(METHODS, name);
}
