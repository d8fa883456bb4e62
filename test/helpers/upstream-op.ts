/**
 * A stand-in for Pro Santé Connect: a second, real oidc-provider on 127.0.0.1 (issuer http://localhost:<port>),
 * one confidential client (cpsd-idp, client_secret_basic, PKCE required), PSC's scope `scope_all` and acr
 * "eidas1", and a tiny login step instead of the e-CPS app: a form that logs in one of the given accounts,
 * or cancels (error=access_denied). `browse` plays the browser without one: fetch with redirect 'manual'
 * and a cookie jar, up to the redirect to the client's redirect_uri.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Configuration } from 'oidc-provider';
import { generatedJwks } from '../../idp/keys.js';

export interface UpstreamOp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  provider: Provider;
  close(): Promise<void>;
}

/** account id (the OP's `sub`) → the claims its UserInfo releases. */
export type UpstreamAccounts = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

const PSC_CLAIMS = ['given_name', 'family_name', 'preferred_username', 'SubjectNameID', 'SubjectRole', 'SubjectRefPro', 'SubjectOrganization', 'Secteur_Activite'];

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

export async function startUpstreamOp(options: { redirectUri: string; accounts: UpstreamAccounts }): Promise<UpstreamOp> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://localhost:${port}`;
  const clientId = 'cpsd-idp';
  const clientSecret = randomBytes(24).toString('base64url');
  const configuration: Configuration = {
    clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: [options.redirectUri], token_endpoint_auth_method: 'client_secret_basic' }],
    jwks: generatedJwks(),
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => true },
    responseTypes: ['code'],
    scopes: ['openid', 'scope_all'],
    claims: { openid: ['sub', 'amr'], scope_all: PSC_CLAIMS },
    acrValues: ['eidas1'],
    // amr, when a login gives one, in the id_token (where cpsd-idp reads it).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false }, userinfo: { enabled: true } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => {
      const claims = options.accounts[sub];
      return claims ? { accountId: sub, claims: () => ({ sub, ...claims }) } : undefined;
    },
  };
  const provider = new Provider(issuer, configuration);
  const callback = provider.callback();

  server.on('request', (req, res) => {
    const match = /^\/interaction\/([\w-]+)(\/login|\/abort)?$/.exec(req.url ?? '');
    if (!match) {
      void callback(req, res);
      return;
    }
    void (async () => {
      const uid = match[1] ?? '';
      if (req.method === 'GET' && !match[2]) {
        await provider.interactionDetails(req, res);
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(
          `<!doctype html><form method="post" action="/interaction/${uid}/login"><input name="login"><input name="amr"><button>e-CPS</button></form>` +
            `<form method="post" action="/interaction/${uid}/abort"><button>Annuler</button></form>`,
        );
        return;
      }
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      const details = await provider.interactionDetails(req, res);
      if (match[2] === '/abort') {
        await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the holder cancelled' }, { mergeWithLastSubmission: false });
        return;
      }
      const form = await readForm(req);
      const accountId = form.get('login') ?? '';
      if (!options.accounts[accountId]) {
        res.writeHead(400).end('unknown account');
        return;
      }
      // Login and consent in one step (the client is PSC's registered one: nothing to ask).
      const grant = new provider.Grant({ accountId, clientId: String(details.params.client_id) });
      grant.addOIDCScope(String(details.params.scope));
      const amr = form.get('amr')?.split(',').filter(Boolean);
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId, acr: 'eidas1', ...(amr && amr.length > 0 ? { amr } : {}) }, consent: { grantId: await grant.save() } },
        { mergeWithLastSubmission: false },
      );
    })().catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    });
  });

  return {
    issuer,
    clientId,
    clientSecret,
    redirectUri: options.redirectUri,
    provider,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/**
 * The browser: from the authorization URL through the OP's login form (logs `login` in, or cancels with
 * `abort`) to the redirect to `redirectUri`, which is returned (the callback URL cpsd-idp would receive).
 */
export async function browse(authorizationUrl: URL, redirectUri: string, action: { login: string; amr?: string[] } | { abort: true }): Promise<URL> {
  const jar = new Map<string, string>();
  const request = async (url: URL, init: RequestInit = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    if (jar.size > 0) headers.set('Cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1);
      // An expired cookie (oidc-provider clears the interaction's) leaves the jar.
      if (/expires=Thu, 01 Jan 1970/i.test(cookie) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  };
  let url = authorizationUrl;
  let posted = false;
  for (let hop = 0; hop < 10; hop++) {
    const res = await request(url);
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location') ?? '', url);
      if (next.href.startsWith(redirectUri)) return next;
      url = next;
      continue;
    }
    if (res.status !== 200 || posted) throw new Error(`unexpected ${res.status} at ${url.href}: ${await res.text()}`);
    // The login page: post its form, then follow the redirects back to the client.
    const page = await res.text();
    const actions = [...page.matchAll(/action="([^"]+)"/g)].map((m) => m[1] ?? '');
    const target = actions.find((a) => a.endsWith('abort' in action ? '/abort' : '/login'));
    if (!target) throw new Error(`no form in ${page}`);
    const body = 'abort' in action ? new URLSearchParams() : new URLSearchParams({ login: action.login, amr: (action.amr ?? []).join(',') });
    const submitted = await request(new URL(target, url), { method: 'POST', body, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    if (submitted.status < 300 || submitted.status >= 400) throw new Error(`the login form answered ${submitted.status}: ${await submitted.text()}`);
    url = new URL(submitted.headers.get('location') ?? '', url);
    posted = true;
  }
  throw new Error('too many redirects');
}
