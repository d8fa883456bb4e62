/**
 * Federation: cpsd-idp hands the login to an upstream OpenID Connect provider — Pro Santé Connect (PSC)
 * itself, for e-CPS mobile app users without a card reader — and maps what it releases to the claims a
 * card login gives (idp/claims.ts), so relying parties see one shape whatever the login was.
 *
 * Everything OIDC is openid-client's (v6): discovery, PKCE S256, state, nonce, the code exchange, the
 * id_token checks (iss, aud, azp, exp, iat, nonce, alg) and UserInfo (its sub must be the id_token's).
 * What is ours: the per-login transaction, kept in a `TransactionStore` under the state so that several
 * IdP instances sharing Redis can each take the callback, once; and the claim mapping.
 *
 * The id_token's signature is not checked by default: it comes from the token endpoint over TLS, which
 * OIDC Core §3.1.3.7 (6) accepts in place of the signature, and PSC may sign it with HS256 (the client
 * secret; ANS's own Keycloak connector expects that: github.com/ansforge/keycloak-prosanteconnect,
 * ProSanteConnectIdentityProvider.verify), which openid-client's non-repudiation check does not take.
 */
import * as oidc from 'openid-client';
import { CpsdError } from '../core/errors.js';
import { nationalIdentity, PROFESSIONS } from '../pkcs/holder.js';
import { own } from '../core/own.js';
import { PSC_ROLE_OID, PSC_SCOPE, TRE_G15_OID, type HolderClaims } from './claims.js';
import type { KeyValueStore } from './store.js';

export interface UpstreamConfig {
  /** The upstream's issuer, e.g. PSC's https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet. */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** cpsd-idp's callback, as registered at the upstream. */
  redirectUri: string;
  /** Default 'openid scope_all' (PSC releases its claims under scope_all). */
  scope?: string;
  /** acr_values to ask for (PSC: 'eidas1'); when set, the id_token's acr must be one of them. */
  acrValues?: string;
  /** What the login page calls this upstream (e.g. "e-CPS / Pro Santé Connect"). */
  label?: string;
  /** Development and tests only: an upstream on http:// (openid-client refuses it otherwise). */
  allowInsecureHttp?: boolean;
  /**
   * Overrides the discovered authorization endpoint. PSC documents a browser-facing one on another host
   * (https://wallet.esw.esante.gouv.fr/auth) than its Keycloak's, e.g. LemonLDAP::NG's PSC page:
   * https://lemonldap-ng.org/documentation/latest/authopenidconnect_prosanteconnect.html
   */
  authorizationEndpoint?: string;
  /** How long a started upstream login may take, in seconds (default 600, like an interaction). */
  transactionTtlSeconds?: number;
}

/** Single-use records with a lifetime: idp/store.ts's KeyValueStore (memory, or Redis shared by the instances). */
export type TransactionStore = Pick<KeyValueStore, 'put' | 'take'>;

/**
 * The federation's refusals (core/errors.ts):
 * UPSTREAM_STATE       the callback's state is missing, unknown, expired or already used (replay);
 * UPSTREAM_REFUSED     the upstream answered with an OAuth error (callback error=…, token endpoint error);
 * UPSTREAM_INVALID     its answer failed openid-client's checks (iss, state, nonce, aud, exp, UserInfo sub…);
 * UPSTREAM_CLAIMS      the checked answer lacks what a holder needs (SubjectNameID, names) or an acr (one asked for);
 * UPSTREAM_UNAVAILABLE discovery or a request to the upstream failed (network, HTTP status, not JSON).
 */
export type UpstreamErrorCode = 'UPSTREAM_STATE' | 'UPSTREAM_REFUSED' | 'UPSTREAM_INVALID' | 'UPSTREAM_CLAIMS' | 'UPSTREAM_UNAVAILABLE';

export class UpstreamError extends CpsdError {
  readonly code: UpstreamErrorCode;
  /** The upstream's own OAuth error code (e.g. 'access_denied', 'invalid_grant') for UPSTREAM_REFUSED. */
  readonly upstreamError: string | undefined;
  /** The cpsd-idp interaction the failed login belonged to, when the transaction was found: end it. */
  readonly interactionUid: string | undefined;

  constructor(code: UpstreamErrorCode, message: string, details: { upstreamError?: string; interactionUid?: string; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.upstreamError = details.upstreamError;
    this.interactionUid = details.interactionUid;
  }
}

/** HolderClaims plus PSC's practice data (idp/claims.ts SITUATION_CLAIMS), passed through as the upstream gave them. */
export interface UpstreamClaims extends HolderClaims {
  /** PSC's situations of practice ({ codeCivilite, exercices: [{ codeProfession, activities… }] }). */
  SubjectRefPro?: oidc.JsonValue;
  SubjectOrganization?: oidc.JsonValue;
  /** PSC's sector of the first activity, e.g. "SA07^1.2.250.1.71.4.2.4". */
  Secteur_Activite?: oidc.JsonValue;
}

export interface UpstreamLogin {
  interactionUid: string;
  claims: UpstreamClaims;
  /** The id_token's acr (PSC: "eidas1"), always present: one of acrValues when they are set. */
  acr: string;
  /** The id_token's amr, or ["mfa"] when it has none (see AMR_DEFAULT). */
  amr: string[];
}

/**
 * PSC's id_tokens carry acr "eidas1" and no amr (ANS's connector fixture has "amr": null:
 * github.com/ansforge/keycloak-prosanteconnect, src/test/.../PSCFixture.java). PSC accepts only the CPS
 * card + PIN or the e-CPS app (device + its code) — https://data.gouv.fr/fr/dataservices/api-pro-sante-connect —
 * both two-factor, so RFC 8176 "mfa" is true of either, without claiming which one was used.
 */
export const AMR_DEFAULT = ['mfa'] as const;

/**
 * OIDs whose SubjectRole code is a TRE_G15 profession: ours (idp/claims.ts) and the one PSC's UserInfo
 * uses ("10^1.2.250.1.213.1.1.5.5" in PSC sandbox answers, e.g.
 * github.com/ad2ien/prosante-connect-synapse-module, tests/test_mapping.py) [U].
 */
const PROFESSION_OIDS: ReadonlySet<string> = new Set([TRE_G15_OID, PSC_ROLE_OID]);

interface Transaction {
  state: string;
  nonce: string;
  codeVerifier: string;
  interactionUid: string;
}

const KEY_PREFIX = 'upstream:';

const text = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);

/** openid-client's and the network's failures → our codes; the upstream's OAuth error code kept. */
function upstreamFailure(error: unknown, interactionUid: string | undefined): UpstreamError {
  if (error instanceof UpstreamError) {
    if (error.interactionUid !== undefined || interactionUid === undefined) return error;
    return new UpstreamError(error.code, error.message, { ...(error.upstreamError ? { upstreamError: error.upstreamError } : {}), interactionUid, cause: error.cause });
  }
  const at = interactionUid === undefined ? {} : { interactionUid };
  if (error instanceof oidc.AuthorizationResponseError || error instanceof oidc.ResponseBodyError) {
    return new UpstreamError('UPSTREAM_REFUSED', `the upstream refused: ${error.error}${error.error_description ? ` (${error.error_description})` : ''}`, {
      ...at,
      upstreamError: error.error,
      cause: error,
    });
  }
  if (error instanceof oidc.WWWAuthenticateChallengeError) {
    const challenge = error.cause[0]?.parameters.error;
    return new UpstreamError('UPSTREAM_REFUSED', `the upstream refused: ${challenge ?? error.message}`, { ...at, ...(challenge ? { upstreamError: challenge } : {}), cause: error });
  }
  const code = error instanceof oidc.ClientError ? error.code : undefined;
  // The answer was there but wrong (claims, state, timestamps, parsing): not an outage.
  if (code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' || code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' || code === 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED' || code === 'OAUTH_INVALID_RESPONSE' || code === 'OAUTH_PARSE_ERROR') {
    return new UpstreamError('UPSTREAM_INVALID', `the upstream's answer failed validation: ${error instanceof Error ? error.message : String(error)}`, { ...at, cause: error });
  }
  return new UpstreamError('UPSTREAM_UNAVAILABLE', `the upstream could not be reached: ${error instanceof Error ? error.message : String(error)}`, { ...at, cause: error });
}

/** PSC's UserInfo → HolderClaims (and its practice data). Throws UPSTREAM_CLAIMS when a holder cannot be made. */
export function upstreamClaims(userinfo: Readonly<Record<string, unknown>>): UpstreamClaims {
  // The national id is SubjectNameID, never `sub`: PSC's sub is often the same id, but its sandbox has
  // answered "f:<uuid>:<id>" (tests/test_mapping.py above), and a card login's sub is the national id.
  const nationalId = text(userinfo.SubjectNameID);
  const givenName = text(userinfo.given_name);
  const familyName = text(userinfo.family_name);
  if (!nationalId || !givenName || !familyName) {
    const missing = [!nationalId && 'SubjectNameID', !givenName && 'given_name', !familyName && 'family_name'].filter(Boolean).join(', ');
    throw new UpstreamError('UPSTREAM_CLAIMS', `the upstream's UserInfo lacks ${missing}`);
  }
  const roles = Array.isArray(userinfo.SubjectRole) ? userinfo.SubjectRole.filter((r): r is string => typeof r === 'string') : [];
  // The first role that names a TRE_G15 profession we know gives the label (as a card's title does).
  const profession = roles
    .map((role) => role.split('^'))
    .map(([code, oid]) => (code && oid && PROFESSION_OIDS.has(oid) ? own(PROFESSIONS, code) : undefined))
    .find((label) => label !== undefined);
  const { idKind, rpps } = nationalIdentity(nationalId);
  return {
    sub: nationalId,
    given_name: givenName,
    family_name: familyName,
    preferred_username: text(userinfo.preferred_username) ?? nationalId,
    SubjectNameID: nationalId,
    SubjectRole: roles,
    ...(profession ? { SubjectProfession: profession } : {}),
    SubjectIdKind: idKind,
    ...(rpps ? { SubjectRPPS: rpps } : {}),
    ...(userinfo.SubjectRefPro !== undefined ? { SubjectRefPro: userinfo.SubjectRefPro as oidc.JsonValue } : {}),
    ...(userinfo.SubjectOrganization !== undefined ? { SubjectOrganization: userinfo.SubjectOrganization as oidc.JsonValue } : {}),
    ...(userinfo.Secteur_Activite !== undefined ? { Secteur_Activite: userinfo.Secteur_Activite as oidc.JsonValue } : {}),
  };
}

export class Upstream {
  readonly #config: oidc.Configuration;
  readonly #options: UpstreamConfig;
  readonly #store: TransactionStore;

  private constructor(config: oidc.Configuration, options: UpstreamConfig, store: TransactionStore) {
    this.#config = config;
    this.#options = options;
    this.#store = store;
  }

  /** Discovers the upstream (its /.well-known/openid-configuration, issuer checked by openid-client). */
  static async discover(options: UpstreamConfig, store: TransactionStore): Promise<Upstream> {
    const execute = options.allowInsecureHttp === true ? [oidc.allowInsecureRequests] : [];
    // client_secret_basic: the method every authorization server must support (RFC 6749 §2.3.1).
    const auth = oidc.ClientSecretBasic(options.clientSecret);
    let config: oidc.Configuration;
    try {
      config = await oidc.discovery(new URL(options.issuer), options.clientId, { client_secret: options.clientSecret }, auth, { execute });
    } catch (error) {
      throw upstreamFailure(error, undefined);
    }
    return new Upstream(config, options, store);
  }

  get label(): string {
    return this.#options.label ?? 'Pro Santé Connect';
  }

  /** The upstream's authorization URL for this cpsd-idp interaction; its transaction is stored under the state. */
  async begin(interactionUid: string): Promise<URL> {
    const transaction: Transaction = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier(), interactionUid };
    const parameters: Record<string, string> = {
      redirect_uri: this.#options.redirectUri,
      scope: this.#options.scope ?? `openid ${PSC_SCOPE}`,
      code_challenge: await oidc.calculatePKCECodeChallenge(transaction.codeVerifier),
      code_challenge_method: 'S256',
      state: transaction.state,
      nonce: transaction.nonce,
      ...(this.#options.acrValues ? { acr_values: this.#options.acrValues } : {}),
    };
    await this.#store.put(KEY_PREFIX + transaction.state, JSON.stringify(transaction), this.#options.transactionTtlSeconds ?? 600);
    const url = oidc.buildAuthorizationUrl(this.#config, parameters);
    if (!this.#options.authorizationEndpoint) return url;
    const target = new URL(this.#options.authorizationEndpoint);
    for (const [name, value] of url.searchParams) target.searchParams.append(name, value);
    return target;
  }

  /** The upstream's redirect to redirectUri → the holder's claims. Single use: a replayed callback fails. */
  async complete(callbackUrl: URL): Promise<UpstreamLogin> {
    const state = callbackUrl.searchParams.get('state');
    const stored = state ? await this.#store.take(KEY_PREFIX + state) : undefined;
    if (!stored) throw new UpstreamError('UPSTREAM_STATE', 'no upstream login is waiting for this state (unknown, expired or already used)');
    let transaction: Transaction;
    try {
      transaction = JSON.parse(stored) as Transaction;
    } catch (error) {
      throw new UpstreamError('UPSTREAM_STATE', 'the upstream login record is unreadable', { cause: error });
    }
    const { interactionUid } = transaction;
    try {
      // The callback's parameters on the registered redirectUri: openid-client sends the URL it is given
      // (without its query) as redirect_uri, which behind a proxy could differ from the one authorized.
      const current = new URL(this.#options.redirectUri);
      current.search = callbackUrl.search;
      // Also checks the response's iss (RFC 9207) and turns error=… into AuthorizationResponseError.
      const tokens = await oidc.authorizationCodeGrant(this.#config, current, {
        pkceCodeVerifier: transaction.codeVerifier,
        expectedState: transaction.state,
        expectedNonce: transaction.nonce,
        idTokenExpected: true,
      });
      const idToken = tokens.claims();
      if (!idToken) throw new UpstreamError('UPSTREAM_INVALID', 'the upstream returned no id_token');
      // The acr is what cpsd-idp's own id_token will say: it must be there, and be one asked for. ANS's
      // connector refuses the same way (ProSanteConnectIdentityProvider.getFederatedIdentity).
      const acr = text(idToken.acr);
      const asked = this.#options.acrValues?.split(' ').filter(Boolean) ?? [];
      if (!acr || (asked.length > 0 && !asked.includes(acr))) {
        throw new UpstreamError('UPSTREAM_CLAIMS', `the upstream's acr is ${acr ?? 'absent'}${asked.length > 0 ? `, ${asked.join(' or ')} was asked` : ''}`);
      }
      const userinfo = await oidc.fetchUserInfo(this.#config, tokens.access_token, idToken.sub);
      const amr = Array.isArray(idToken.amr) && idToken.amr.length > 0 && idToken.amr.every((m) => typeof m === 'string') ? [...idToken.amr] : [...AMR_DEFAULT];
      return { interactionUid, claims: upstreamClaims(userinfo), acr, amr };
    } catch (error) {
      throw upstreamFailure(error, interactionUid);
    }
  }
}

/**
 * The upstream as cpsd-idp uses it: discovered at its first use, not at start, and again after a
 * failure, so that an IdP started while Pro Santé Connect is unreachable still starts (card logins do
 * not need the upstream) and offers federation as soon as the upstream answers.
 */
export class LazyUpstream implements Pick<Upstream, 'label' | 'begin' | 'complete'> {
  #found: Promise<Upstream> | undefined;

  constructor(
    readonly options: UpstreamConfig,
    readonly store: TransactionStore,
  ) {}

  get label(): string {
    return this.options.label ?? 'e-CPS / Pro Santé Connect';
  }

  #upstream(): Promise<Upstream> {
    this.#found ??= Upstream.discover(this.options, this.store).catch((error: unknown) => {
      this.#found = undefined;
      throw error;
    });
    return this.#found;
  }

  async begin(interactionUid: string): Promise<URL> {
    return (await this.#upstream()).begin(interactionUid);
  }

  async complete(callbackUrl: URL): Promise<UpstreamLogin> {
    return (await this.#upstream()).complete(callbackUrl);
  }
}
