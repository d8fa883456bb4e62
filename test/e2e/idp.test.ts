/**
 * cpsd-idp, first slice (docs/idp.md): `cpsd idp --sim doctor` started as a child process (the built CLI:
 * run `npm run build` first), an independent relying party on its own port with openid-client (discovery,
 * authorization code + PKCE), Chromium clicking "Se connecter avec ma carte CPS" on the IdP's login page and
 * typing the PIN on the daemon's PIN page. No pcscd: the daemon runs in the IdP's process over the virtual card.
 * Screenshots: test-output/idp-*.png.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { DOCTOR_SUBJECT_REF_PRO } from '../helpers/psc-claims.js';
import { cardLogin, inPage, type RelyingParty, startRp, type Tokens } from '../helpers/idp-rp.js';
import { freePort, run, type Run } from '../helpers/doc-app.js';
import { ROOT } from '../helpers/doc-blocks.js';

const OUTPUT = join(ROOT, 'test-output');
const IDENTITY = {
  sub: '899700012349',
  SubjectNameID: '899700012349',
  preferred_username: '899700012349',
  given_name: 'JEANNE',
  family_name: 'MEDECIN-TEST',
  SubjectRole: ['10^1.2.250.1.213.1.1.5.5'],
  SubjectProfession: 'Médecin',
  // The practice situations, read by the daemon with the PIN and handed over with the token.
  SubjectRefPro: DOCTOR_SUBJECT_REF_PRO,
  SubjectOrganization: 'HOPITAL GENERIQUE TEST',
  Secteur_Activite: 'SA01^1.2.250.1.71.4.2.4',
};

let browser: Browser;
let idp: Run;
let issuer: string;
let rp: RelyingParty;
let rpOrigin: string;
let config: oidc.Configuration;

const login = (pin: string, shots: string): Promise<{ context: BrowserContext; page: Page }> => cardLogin(browser, rp, issuer, pin, OUTPUT, shots);

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  const [idpPort, rpPort] = [await freePort(), await freePort()];
  issuer = `http://localhost:${idpPort}`;
  rpOrigin = `http://localhost:${rpPort}`;
  idp = run(ROOT, ['dist/cli/cpsd.js', 'idp', '--sim', 'doctor', '--port', String(idpPort), '--demo-redirect-uri', `${rpOrigin}/callback`, '--lang', 'en'], {});
  await idp.waitFor('demo client:');
  const secret = /client_secret (\S+),/.exec(idp.stdout())?.[1] ?? '';
  rp = await startRp(rpPort, issuer, 'demo', secret);
  config = rp.config;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await rp?.close();
  idp?.child.kill('SIGTERM');
  await idp?.exited;
});

describe('cpsd idp --sim doctor', () => {
  it('prints its issuer, its in-process daemon and the demo client with its redirect_uri', () => {
    expect(idp.stdout()).toContain(`OpenID Connect provider ${issuer}`);
    expect(idp.stdout()).toMatch(/virtual card "doctor" on ws:\/\/127\.0\.0\.1:\d+/);
    expect(idp.stdout()).toContain(`redirect_uri ${rpOrigin}/callback`);
  });

  it('publishes a discovery document: code only, PKCE S256, the PSC scope and claims, acr eidas1, logout', () => {
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(issuer);
    expect(meta.response_types_supported).toEqual(['code']);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.scopes_supported).toEqual(expect.arrayContaining(['openid', 'profile', 'scope_all']));
    expect(meta.claims_supported).toEqual(expect.arrayContaining(['SubjectNameID', 'SubjectRole', 'given_name', 'family_name']));
    expect(meta.acr_values_supported).toEqual(['eidas1']);
    expect(meta.end_session_endpoint).toBe(`${issuer}/session/end`);
  });

  it('refuses an authorization request without PKCE', async () => {
    const url = new URL(config.serverMetadata().authorization_endpoint ?? '');
    for (const [k, v] of Object.entries({ client_id: 'demo', response_type: 'code', scope: 'openid', redirect_uri: `${rpOrigin}/callback`, state: 'x' })) url.searchParams.set(k, v);
    const res = await fetch(url, { redirect: 'manual' });
    const location = new URL(res.headers.get('location') ?? '', issuer);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('error_description')).toMatch(/PKCE/);
  });

  let tokens: Tokens;

  /** The browser of the holder who logged in: the IdP's session cookie, for the logout below. */
  let holderBrowser: BrowserContext | undefined;

  it('logs in with the card and PIN 1234: the RP gets an id_token with the card holder’s identity, acr eidas1, amr sc+pin', async () => {
    const { context, page } = await login('1234', 'ok');
    holderBrowser = context;
    await page.waitForURL(new RegExp(`^${rpOrigin}/callback`), { timeout: 20_000 });
    expect(await page.textContent('#rp')).toBe('RP: connecté JEANNE MEDECIN-TEST');
    await page.screenshot({ path: join(OUTPUT, 'idp-ok-rp.png') });
    const state = new URL(page.url()).searchParams.get('state') ?? '';
    tokens = rp.results.get(state) as typeof tokens;
    expect(tokens).toBeDefined();
    const claims = tokens.claims();
    // SubjectRefPro is given by UserInfo only (the id_token stays small: idp-tokens.test.ts).
    const inIdToken = Object.fromEntries(Object.entries(IDENTITY).filter(([name]) => name !== 'SubjectRefPro'));
    expect(claims).toMatchObject({ ...inIdToken, iss: issuer, aud: 'demo', acr: 'eidas1', amr: ['sc', 'pin'] });
    expect(claims).not.toHaveProperty('SubjectRefPro');
  }, 60_000);

  it('answers UserInfo with the same identity for the access token', async () => {
    const info = await oidc.fetchUserInfo(config, tokens.access_token, IDENTITY.sub);
    expect(info).toMatchObject(IDENTITY);
  });

  it('refreshes: a new access token and an id_token for the same holder', async () => {
    expect(tokens.refresh_token).toBeTruthy();
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token ?? '');
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.claims()).toMatchObject({ sub: IDENTITY.sub, SubjectNameID: IDENTITY.SubjectNameID, acr: 'eidas1', amr: ['sc', 'pin'] });
    expect(await oidc.fetchUserInfo(config, refreshed.access_token, IDENTITY.sub)).toMatchObject(IDENTITY);
  });

  it('logs out at the RP’s request (RP-initiated logout with id_token_hint: no confirmation) and sends the browser back to the RP', async () => {
    const context = holderBrowser;
    expect(context).toBeDefined();
    if (!context) return;
    try {
      const page = await context.newPage();
      // The id_token of this session proves the application: the IdP asks nothing (idp/logout.ts).
      await page.goto(oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token ?? '', post_logout_redirect_uri: `${rpOrigin}/` }).href);
      await page.waitForURL(`${rpOrigin}/`);
      await page.screenshot({ path: join(OUTPUT, 'idp-logout.png') });
      expect(await page.textContent('#rp-home')).toBe('RP: déconnecté');
      // The IdP's session is gone: a new authorization asks for the card again.
      await page.goto(`${rpOrigin}/login`);
      await page.waitForURL(new RegExp(`^${issuer}/interaction/`));
      expect(await page.getByRole('button', { name: 'Se connecter avec ma carte CPS' }).count()).toBe(1);
    } finally {
      await context.close();
      holderBrowser = undefined;
    }
  }, 30_000);

  it('refuses a POST to the interaction from another origin', async () => {
    const res = await fetch(`${issuer}/interaction/abc/nonce`, { method: 'POST', headers: { Origin: 'https://evil.example', 'Content-Type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(403);
  });

  it('refuses a POST from the login page itself without the page’s CSRF token', async () => {
    await inPage(browser, async (page) => {
    await page.goto(`${rpOrigin}/login`);
    await page.waitForURL(new RegExp(`^${issuer}/interaction/`));
    const path = new URL(page.url()).pathname;
    const status = await page.evaluate(async (p) => (await fetch(`${p}/nonce`, { method: 'POST', headers: { 'X-CSRF': 'forged' } })).status, path);
    expect(status).toBe(403);
    });
  }, 30_000);

  it('serves the login page under a strict CSP (no inline script without its nonce, no eval)', async () => {
    await inPage(browser, async (page) => {
    const responses: string[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/interaction/')) responses.push(r.headers()['content-security-policy'] ?? '');
    });
    await page.goto(`${rpOrigin}/login`);
    await page.waitForURL(new RegExp(`^${issuer}/interaction/`));
    const csp = responses.at(-1) ?? '';
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=]+'(;|$)/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    });
  }, 30_000);

  /** An authorization request of `client` to `redirect`, PKCE and all, as a browser would follow it. */
  const authorizeUrl = (client: string, redirect: string): string => {
    const url = new URL(config.serverMetadata().authorization_endpoint ?? '');
    const params = { client_id: client, response_type: 'code', scope: 'openid', redirect_uri: redirect, state: 's', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' };
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url.href;
  };

  it('shows a clear page for an unknown client, with the code for the help desk', async () => {
    await inPage(browser, async (page) => {
    const response = await page.goto(authorizeUrl('unknown-app', `${rpOrigin}/callback`));
    expect(response?.status()).toBe(400);
    expect(await page.textContent('#error')).toBe('Cette application n’est pas enregistrée auprès du service de connexion par carte CPS.');
    expect(await page.textContent('#error-code')).toBe('invalid_client');
    await page.screenshot({ path: join(OUTPUT, 'idp-error-client.png') });
    });
  }, 30_000);

  it('shows a clear page for a redirect_uri the client has not registered, and never goes there', async () => {
    await inPage(browser, async (page) => {
    const response = await page.goto(authorizeUrl('demo', 'https://evil.example/steal'));
    expect(response?.status()).toBe(400);
    expect(page.url()).toMatch(new RegExp(`^${issuer}/`));
    expect(await page.textContent('#error-code')).toBe('invalid_redirect_uri');
    expect(await page.textContent('#error')).toMatch(/adresse qu’elle n’a pas déclarée/);
    expect(await page.content()).not.toContain('evil.example');
    await page.screenshot({ path: join(OUTPUT, 'idp-error-redirect.png') });
    });
  }, 30_000);

  it('speaks English to an English-speaking browser', async () => {
    await inPage(browser, async (page) => {
    await page.goto(`${rpOrigin}/login`);
    await page.waitForURL(new RegExp(`^${issuer}/interaction/`));
    expect(await page.getByRole('button', { name: 'Sign in with my CPS card' }).count()).toBe(1);
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    await page.goto(authorizeUrl('unknown-app', `${rpOrigin}/callback`));
    expect(await page.textContent('#error')).toBe('This application is not registered with the CPS card sign-in service.');
    }, 'en-GB');
  }, 30_000);

  it('refuses a replayed code (invalid_grant) and revokes what the first exchange gave', async () => {
    const { context, page } = await login('1234', 'replay');
    try {
      await page.waitForURL(new RegExp(`^${rpOrigin}/callback`), { timeout: 20_000 });
      const state = new URL(page.url()).searchParams.get('state') ?? '';
      const first = rp.results.get(state);
      expect(first).toBeDefined();
      expect(await oidc.fetchUserInfo(config, first?.access_token ?? '', IDENTITY.sub)).toMatchObject({ sub: IDENTITY.sub });
      // The same callback URL (code, state) a second time in the browser, as an attacker who read it
      // would: the RP's exchange is refused by the IdP (invalid_grant) and the RP's page says so.
      const again = await page.goto(page.url());
      expect(again?.status()).toBe(500);
      expect(await page.getAttribute('#rp-error', 'data-code')).toBe('invalid_grant');
      await page.screenshot({ path: join(OUTPUT, 'idp-replayed-code.png') });
      // oidc-provider revokes the grant of a replayed code: the first access token is no longer good.
      await expect(oidc.fetchUserInfo(config, first?.access_token ?? '', IDENTITY.sub)).rejects.toMatchObject({ status: 401 });
    } finally {
      await context.close();
    }
  }, 60_000);

  it('says a wrong PIN clearly on the login page, with the tries left, and stays there', async () => {
    const { context, page } = await login('9999', 'wrong-pin');
    try {
      await page.waitForFunction(() => document.getElementById('status')?.dataset.code === 'PIN_INCORRECT', undefined, { timeout: 20_000 });
      expect(await page.textContent('#status')).toBe('Code erroné : 2 essais restants.');
      expect(page.url()).toMatch(new RegExp(`^${issuer}/interaction/`));
      await page.screenshot({ path: join(OUTPUT, 'idp-wrong-pin.png') });
    } finally {
      await context.close();
    }
  }, 60_000);
});
