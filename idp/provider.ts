/**
 * The oidc-provider (panva) configuration of cpsd-idp: clients from configuration, authorization code +
 * PKCE (S256) only, the login step is our own interaction (idp/interaction.ts: card + PIN through the
 * workstation's cpsd daemon), devInteractions off, RP-initiated logout, PSC-compatible claims
 * (idp/claims.ts). Everything OIDC is oidc-provider's: discovery, JWKS, tokens, UserInfo, refresh, logout.
 */
import { randomBytes } from 'node:crypto';
import Provider, { interactionPolicy, type AccountClaims, type AdapterFactory, type CIBAConfiguration, type ClientMetadata, type Configuration, type JWK } from 'oidc-provider';
import { ACR_CARD_PIN, ACR_CONTACTLESS, PSC_SCOPE, SCOPE_CLAIMS, USERINFO_ONLY_CLAIMS, type HolderClaims } from './claims.js';
import { errorPage, esc, htmlPage, pageLang, STATIC_CSP, text } from './pages.js';
import { logoutSource } from './logout.js';
import { generatedJwks } from './keys.js';
import type { KeyValueStore } from './store.js';

/** How long a login lasts: a working day on a shared workstation, then the card again. */
export const SESSION_SECONDS = 12 * 3600;

/**
 * The accounts logged in (national id → claims), in the instances' shared store: the instance that
 * answers UserInfo or a refresh is not always the one that saw the card. Kept as long as a session.
 */
export class AccountStore {
  constructor(readonly store: KeyValueStore) {}

  async set(claims: HolderClaims): Promise<void> {
    await this.store.put(`account:${claims.sub}`, JSON.stringify(claims), SESSION_SECONDS);
  }

  async get(id: string): Promise<HolderClaims | undefined> {
    const found = await this.store.get(`account:${id}`);
    return found === undefined ? undefined : (JSON.parse(found) as HolderClaims);
  }
}

export interface ProviderOptions {
  /** The issuer, also the IdP's origin (e.g. http://localhost:9000). */
  issuer: string;
  clients: ClientMetadata[];
  accounts: AccountStore;
  /** Signing keys (private JWKs); generated at start when absent (--sim). */
  jwks?: { keys: JWK[] };
  /** Keys of the signed cookies; random at start when absent (--sim). Instances behind one issuer share them. */
  cookieKeys?: string[];
  /** Contactless logins (acr ACR_CONTACTLESS) enabled by IT. */
  allowContactless?: boolean;
  /** oidc-provider's storage (store.ts redisAdapterFactory); its in-memory one when absent. */
  adapter?: AdapterFactory;
  /** The IdP session's lifetime in seconds (default SESSION_SECONDS; tests shorten it to see it expire). */
  sessionSeconds?: number;
  /** CIBA (idp/ciba.ts `Ciba.feature()`), when enabled. */
  ciba?: CIBAConfiguration;
  /** Outgoing requests of oidc-provider (CIBA pings): its own fetch when absent. */
  fetch?: Configuration['fetch'];
}

/** A CIBA request lasts what the client asked (requested_expiry), 3 minutes by default, 10 at most. */
const CIBA_DEFAULT_SECONDS = 180;
const CIBA_MAX_SECONDS = 600;

/**
 * oidc-provider's interaction policy plus one check: a session opened contactless (one factor) is not
 * reused for an application that did not ask for that level; the card and its PIN are asked again.
 * (acr_values alone is a wish the provider may ignore: this makes it a rule.)
 */
function policy(): interactionPolicy.Prompt[] {
  const base = interactionPolicy.base();
  base.get('login')?.checks.add(
    new interactionPolicy.Check('contactless_session', 'the session was opened contactless and the application asks for more', 'login_required', (ctx) => {
      if (ctx.oidc.session?.acr !== ACR_CONTACTLESS) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const asked = String(ctx.oidc.params?.acr_values ?? '').split(' ');
      return asked.includes(ACR_CONTACTLESS) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );
  return base;
}

export function createProvider(options: ProviderOptions): Provider {
  const configuration: Configuration = {
    clients: options.clients,
    jwks: options.jwks ?? generatedJwks(),
    ...(options.adapter ? { adapter: options.adapter } : {}),
    ttl: {
      Session: options.sessionSeconds ?? SESSION_SECONDS,
      Grant: SESSION_SECONDS,
      RefreshToken: SESSION_SECONDS,
      Interaction: 600,
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: 600,
      BackchannelAuthenticationRequest: (ctx) => {
        const asked = Number(ctx?.oidc?.params?.requested_expiry);
        return Number.isSafeInteger(asked) && asked > 0 ? Math.min(asked, CIBA_MAX_SECONDS) : CIBA_DEFAULT_SECONDS;
      },
    },
    ...(options.fetch ? { fetch: options.fetch } : {}),
    cookies: { keys: options.cookieKeys ?? [randomBytes(32).toString('hex')] },
    pkce: { required: () => true },
    responseTypes: ['code'],
    scopes: ['openid', 'offline_access', 'profile', PSC_SCOPE],
    claims: Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, [...claims]])),
    acrValues: options.allowContactless ? [ACR_CARD_PIN, ACR_CONTACTLESS] : [ACR_CARD_PIN],
    // The id_token carries the claims of the granted scopes (the holder's identity), not only UserInfo:
    // a relying party knows who logged in from the id_token alone.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        // Asks the holder to confirm, unless the application proved itself with id_token_hint (idp/logout.ts).
        logoutSource,
        postLogoutSuccessSource: (ctx) => {
          const lang = pageLang(undefined, ctx.req);
          ctx.set('Content-Security-Policy', STATIC_CSP);
          ctx.body = htmlPage(lang, text(lang, 'idp.logout.title'), `<p id="logged-out">${esc(text(lang, 'idp.logout.done'))}</p>`);
        },
      },
      // Logout tokens to every application of the session (idp/logout.ts sends them, whatever ends it).
      backchannelLogout: { enabled: true },
      userinfo: { enabled: true },
      revocation: { enabled: true },
      ...(options.ciba ? { ciba: options.ciba } : {}),
    },
    // Unknown client, redirect_uri not registered, bad request: a page that says so (and never redirects).
    renderError: (ctx, out) => {
      const lang = pageLang(ctx.oidc?.params?.ui_locales, ctx.req);
      ctx.type = 'html';
      ctx.set('Content-Security-Policy', STATIC_CSP);
      ctx.body = errorPage(lang, out.error, out.error_description);
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}`, policy: policy() },
    // The configured clients that may refresh get a refresh token without offline_access (which
    // oidc-provider honours only with prompt=consent): PSC's clients do not ask for it either.
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Every refresh gives a new refresh token and consumes the old one; an old one presented again
    // (stolen, or replayed) makes oidc-provider revoke the whole grant.
    rotateRefreshToken: true,
    findAccount: async (_ctx, sub) => {
      const claims = await options.accounts.get(sub);
      if (!claims) return undefined;
      return {
        accountId: sub,
        claims: (use: string): AccountClaims =>
          use === 'id_token' ? Object.fromEntries(Object.entries(claims).filter(([name]) => !(USERINFO_ONLY_CLAIMS as readonly string[]).includes(name))) as AccountClaims : { ...claims },
      };
    },
  };
  const provider = new Provider(options.issuer, configuration);
  // `sid` in every id_token (and its refreshes), as relying parties match logouts on it: oidc-provider
  // adds it only for a client registered for back-channel logout with session required.
  provider.Client.prototype.includeSid = () => true;
  provider.use(supersedeAccessTokens(provider, options.accounts.store));
  return provider;
}

/**
 * One access token per grant: a new one from the token endpoint (a refresh, or the code exchange) ends
 * the previous one, so a refresh also retires what an attacker may have copied. oidc-provider keeps every
 * access token until it expires; this records the grant's current one and destroys it when replaced,
 * before the token response leaves (Koa runs this after the endpoint and before sending).
 */
function supersedeAccessTokens(provider: Provider, store: KeyValueStore) {
  // The new one recorded and the previous one read in one step (one round trip to the store), started as
  // soon as the new one is saved: it goes on while the endpoint saves the refresh token and signs the
  // id_token, instead of after them. Awaited below, before the response, by the request that saved it.
  const swaps = new Map<string, Promise<string | undefined>>();
  provider.on('access_token.saved', (token: InstanceType<Provider['AccessToken']>) => {
    if (!token.grantId || !token.jti) return;
    const swap = store.swap(`access-token:${token.grantId}`, token.jti, SESSION_SECONDS);
    swap.catch(() => undefined); // reported by the request that awaits it
    swaps.set(token.jti, swap);
  });
  return async (ctx: Parameters<Parameters<Provider['use']>[0]>[0], next: () => Promise<unknown>): Promise<void> => {
    let jti: string | undefined;
    let swap: Promise<string | undefined> | undefined;
    try {
      await next();
    } finally {
      // Whatever the request's outcome, its swap leaves the map (none is kept beyond its request).
      jti = ctx.oidc?.entities.AccessToken?.jti;
      swap = jti === undefined ? undefined : swaps.get(jti);
      if (jti !== undefined) swaps.delete(jti);
    }
    if (!swap || ctx.oidc?.route !== 'token' || ctx.status !== 200) return;
    const previous = await swap;
    if (previous && previous !== jti) await (await provider.AccessToken.find(previous))?.destroy();
  };
}
