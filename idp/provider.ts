/**
 * The oidc-provider (panva) configuration of cpsd-idp: clients from configuration, authorization code +
 * PKCE (S256) only, the login step is our own interaction (idp/interaction.ts: card + PIN through the
 * workstation's cpsd daemon), devInteractions off, RP-initiated logout, PSC-compatible claims
 * (idp/claims.ts). Everything OIDC is oidc-provider's: discovery, JWKS, tokens, UserInfo, refresh, logout.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider, { type ClientMetadata, type Configuration, type JWK } from 'oidc-provider';
import { MESSAGES } from '../cli/messages.js';
import { ACR_CARD_PIN, PSC_SCOPE, SCOPE_CLAIMS, type HolderClaims } from './claims.js';

/** oidc-provider's own pages (logout), in French, without inline script or outside resource. */
const PAGE_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";
const text = (key: 'idp.logout.title' | 'idp.logout.question' | 'idp.logout.yes' | 'idp.logout.no' | 'idp.logout.done'): string => String(MESSAGES[key].fr);
const simplePage = (body: string): string =>
  `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>${text('idp.logout.title')}</title></head><body>${body}</body></html>`;

/** The accounts logged in with a card: national id → claims. One process, lost at restart (slice 1). */
export class AccountStore {
  readonly #accounts = new Map<string, HolderClaims>();
  set(claims: HolderClaims): void {
    this.#accounts.set(claims.sub, claims);
  }
  get(id: string): HolderClaims | undefined {
    return this.#accounts.get(id);
  }
}

export interface ProviderOptions {
  /** The issuer, also the IdP's origin (e.g. http://localhost:9000). */
  issuer: string;
  clients: ClientMetadata[];
  accounts: AccountStore;
  /** Signing keys (private JWKs); generated at start when absent (--sim). */
  jwks?: { keys: JWK[] };
  /** Keys of the signed cookies; random at start when absent (--sim). */
  cookieKeys?: string[];
}

/** A fresh RS256 signing key (private JWK), for --sim and tests. */
export function generatedJwks(): { keys: JWK[] } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' }) as JWK;
  return { keys: [{ ...jwk, alg: 'RS256', use: 'sig', kid: randomBytes(8).toString('hex') }] };
}

export function createProvider(options: ProviderOptions): Provider {
  const configuration: Configuration = {
    clients: options.clients,
    jwks: options.jwks ?? generatedJwks(),
    cookies: { keys: options.cookieKeys ?? [randomBytes(32).toString('hex')] },
    pkce: { required: () => true },
    responseTypes: ['code'],
    scopes: ['openid', 'offline_access', 'profile', PSC_SCOPE],
    claims: Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, [...claims]])),
    acrValues: [ACR_CARD_PIN],
    // The id_token carries the claims of the granted scopes (the holder's identity), not only UserInfo:
    // a relying party knows who logged in from the id_token alone.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        // `form` is oidc-provider's (its action and xsrf field); the buttons submit it.
        logoutSource: (ctx, form) => {
          ctx.set('Content-Security-Policy', PAGE_CSP);
          ctx.body = simplePage(
            `<h1>${text('idp.logout.question')}</h1>${form}<button id="logout-yes" type="submit" form="op.logoutForm" value="yes" name="logout">${text('idp.logout.yes')}</button> <button id="logout-no" type="submit" form="op.logoutForm">${text('idp.logout.no')}</button>`,
          );
        },
        postLogoutSuccessSource: (ctx) => {
          ctx.set('Content-Security-Policy', PAGE_CSP);
          ctx.body = simplePage(`<p id="logged-out">${text('idp.logout.done')}</p>`);
        },
      },
      userinfo: { enabled: true },
      revocation: { enabled: true },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // The configured clients that may refresh get a refresh token without offline_access (which
    // oidc-provider honours only with prompt=consent): PSC's clients do not ask for it either.
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    findAccount: (_ctx, sub) => {
      const claims = options.accounts.get(sub);
      if (!claims) return undefined;
      return { accountId: sub, claims: () => ({ ...claims }) };
    },
  };
  return new Provider(options.issuer, configuration);
}
