/**
 * An independent relying party for the cpsd-idp tests, built with openid-client: /login sends the browser
 * to the IdP with PKCE (S256), state and acr_values=eidas1; /callback exchanges the code and shows who
 * logged in (or the error); / is its logged-out home. And the holder's steps in Chromium: the IdP's login
 * page, the button, the PIN on the daemon's PIN page.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { InProcessBackend } from '../../cards/backends.js';
import { DEFAULTS, type DaemonConfig } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { startIdp, type IdpOptions, type RunningIdp } from '../../idp/server.js';
import type { fixtureCard } from '../../sim/cps/fixtures.js';
import { freePort } from './doc-app.js';
import { ROOT } from './doc-blocks.js';

export type Tokens = oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;

export interface RelyingParty {
  origin: string;
  config: oidc.Configuration;
  /** What the callback got, by state. */
  results: Map<string, Tokens>;
  /** The callback URLs it was called with, by state (to replay a code). */
  callbacks: Map<string, URL>;
  verifiers: Map<string, string>;
  close(): Promise<void>;
}

export async function startRp(port: number, issuer: string, clientId: string, secret: string, scope = 'openid profile scope_all'): Promise<RelyingParty> {
  const origin = `http://localhost:${port}`;
  const redirectUri = `${origin}/callback`;
  const config = await oidc.discovery(new URL(issuer), clientId, secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const results = new Map<string, Tokens>();
  const callbacks = new Map<string, URL>();
  const verifiers = new Map<string, string>();
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', origin);
      if (url.pathname === '/login') {
        const verifier = oidc.randomPKCECodeVerifier();
        const state = oidc.randomState();
        verifiers.set(state, verifier);
        const target = oidc.buildAuthorizationUrl(config, {
          redirect_uri: redirectUri,
          scope,
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state,
          acr_values: 'eidas1',
          ...Object.fromEntries(url.searchParams),
        });
        // An empty parameter on /login (e.g. ?acr_values=) leaves it out of the request.
        for (const [k, v] of url.searchParams) if (v === '') target.searchParams.delete(k);
        res.writeHead(302, { Location: target.href }).end();
        return;
      }
      if (url.pathname === '/callback') {
        const state = url.searchParams.get('state') ?? '';
        callbacks.set(state, url);
        try {
          const tokens = await oidc.authorizationCodeGrant(config, url, { pkceCodeVerifier: verifiers.get(state) ?? '', expectedState: state });
          results.set(state, tokens);
          res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(`<!doctype html><p id="rp">RP: connecté ${tokens.claims()?.given_name} ${tokens.claims()?.family_name}</p>`);
        } catch (error) {
          const known = error instanceof oidc.ResponseBodyError || error instanceof oidc.AuthorizationResponseError;
          const code = known ? error.error : 'error';
          const said = known ? `${error.error}: ${error.error_description ?? ''}` : String(error);
          res.writeHead(500, { 'Content-Type': 'text/html; charset=utf-8' }).end(`<!doctype html><p id="rp-error" data-code="${code}">RP: connexion refusée par le fournisseur (${said.replace(/[<&"]/g, '')})</p>`);
        }
        return;
      }
      if (url.pathname === '/app') {
        // An application page that embeds the IdP's card watch and keeps what it says in window.messages.
        const watch = `${issuer}/session/card-watch?client_id=${encodeURIComponent(clientId)}&origin=${encodeURIComponent(origin)}`;
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(
          `<!doctype html><p id="app">RP app</p><script>window.messages = []; addEventListener('message', (e) => { if (e.origin === ${JSON.stringify(new URL(issuer).origin)}) window.messages.push(e.data.type); });</script>` +
            `<iframe id="watch" hidden src="${watch}" allow="local-network-access"></iframe>`,
        );
        return;
      }
      if (url.pathname === '/') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end('<!doctype html><p id="rp-home">RP: déconnecté</p>');
        return;
      }
      res.writeHead(404).end();
    })();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    origin,
    config,
    results,
    callbacks,
    verifiers,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Runs `run` on a page of a fresh browser context in `locale` (French by default), closed afterwards. */
export async function inPage<T>(browser: Browser, run: (page: Page) => Promise<T>, locale = 'fr-FR'): Promise<T> {
  const context = await browser.newContext({ locale });
  try {
    return await run(await context.newPage());
  } finally {
    await context.close();
  }
}

/**
 * From the RP's /login to the IdP's login page (French browser); clicks the card button and types `pin`
 * on the daemon's PIN page. Screenshots `idp-<shots>-login.png` and `-pin.png` in `output`.
 */
export async function cardLogin(browser: Browser, rp: RelyingParty, issuer: string, pin: string, output: string, shots: string, context?: BrowserContext, query = ''): Promise<{ context: BrowserContext; page: Page }> {
  const ctx = context ?? (await browser.newContext({ locale: 'fr-FR' }));
  const page = await ctx.newPage();
  await page.goto(`${rp.origin}/login${query}`);
  await page.waitForURL(new RegExp(`^${issuer}/interaction/`));
  await page.screenshot({ path: join(output, `idp-${shots}-login.png`) });
  const popup = ctx.waitForEvent('page');
  await page.getByRole('button', { name: 'Se connecter avec ma carte CPS' }).click();
  const pinPage = await popup;
  await pinPage.waitForURL(/\/pin\/[0-9a-f]{32}$/);
  await pinPage.fill('input[name=pin]', pin);
  await pinPage.screenshot({ path: join(output, `idp-${shots}-pin.png`) });
  await pinPage.click('button[type=submit]:not([name])');
  return { context: ctx, page };
}

/** Trust material as an IT team lays it out (anchors/, intermediates/, crls/), from the test PKI, in `dir`/trust. */
export function makeTrustDir(dir: string): string {
  const pki = join(ROOT, 'fixtures', 'pki');
  const trust = join(dir, 'trust');
  for (const sub of ['anchors', 'intermediates', 'crls']) mkdirSync(join(trust, sub), { recursive: true });
  copyFileSync(join(pki, 'root.der'), join(trust, 'anchors', 'root.der'));
  copyFileSync(join(pki, 'intermediate.der'), join(trust, 'intermediates', 'intermediate.der'));
  copyFileSync(join(pki, 'fort-personnes.crl'), join(trust, 'crls', 'fort-personnes.crl'));
  copyFileSync(join(pki, 'racine.crl'), join(trust, 'crls', 'racine.crl'));
  return trust;
}

export interface InProcessIdp {
  backend: InProcessBackend;
  daemon: CpsdServer;
  idp: RunningIdp;
  rp: RelyingParty;
  audit: string[];
  close(): Promise<void>;
}

/**
 * The daemon over an InProcessBackend (whose card a test can pull), cpsd-idp and the RP, all in this
 * process; one confidential client `ehr` with refresh; the test PKI as trust material (CRLs given).
 */
export async function startInProcessIdp(card: ReturnType<typeof fixtureCard>, options: { daemon?: (issuer: string) => Partial<DaemonConfig>; idp?: Partial<IdpOptions>; scope?: string } = {}): Promise<InProcessIdp> {
  const der = (name: string): Uint8Array => new Uint8Array(readFileSync(join(ROOT, 'fixtures', 'pki', name)));
  const [idpPort, rpPort] = [await freePort(), await freePort()];
  const issuer = `http://localhost:${idpPort}`;
  const backend = new InProcessBackend(card);
  const daemon = new CpsdServer({ ...DEFAULTS, port: 0, allowHttpLocalhost: true, allowedOrigins: [issuer], ...options.daemon?.(issuer) }, backend, new Logger('warn'));
  await daemon.listen();
  const secret = 'in-process-secret-0123456789abcdef';
  const audit: string[] = [];
  const idp = await startIdp({
    port: idpPort,
    clients: [{ client_id: 'ehr', client_secret: secret, redirect_uris: [`http://localhost:${rpPort}/callback`], grant_types: ['authorization_code', 'refresh_token'] }],
    trust: { trustAnchors: [der('root.der')], intermediates: [der('intermediate.der')], crls: [der('fort-personnes.crl'), der('racine.crl')], revocation: 'crl', crl: { fetch: false } },
    daemonPort: daemon.port,
    allowHttpLocalhost: true,
    audit: (line) => audit.push(line),
    ...options.idp,
  });
  const rp = await startRp(rpPort, issuer, 'ehr', secret, options.scope);
  return {
    backend,
    daemon,
    idp,
    rp,
    audit,
    close: async () => {
      await rp.close();
      await idp.close();
      await daemon.close();
      await daemon.sessions.close();
    },
  };
}
