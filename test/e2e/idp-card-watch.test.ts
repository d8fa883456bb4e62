/**
 * Card removal ends the IdP session: the application embeds the IdP's watch page (idp/card-watch.ts) in
 * a hidden iframe; the virtual card is pulled from the in-process daemon; the session and its grants are
 * gone (the refresh token is refused, the next login asks for the card again) and the application is told.
 * In process: the daemon over an InProcessBackend whose card the test removes, the IdP, the RP, Chromium.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InProcessBackend } from '../../cards/backends.js';
import type { RunningIdp } from '../../idp/server.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { launchChromium } from '../helpers/browser.js';
import { ROOT } from '../helpers/doc-blocks.js';
import { cardLogin, startInProcessIdp, type InProcessIdp, type RelyingParty, type Tokens } from '../helpers/idp-rp.js';

const OUTPUT = join(ROOT, 'test-output');

let setup: InProcessIdp;
let backend: InProcessBackend;
let idp: RunningIdp;
let rp: RelyingParty;
let audit: string[];
let browser: Browser;
let holder: BrowserContext;
let app: Page;
let tokens: Tokens;

const messages = (): Promise<string[]> => app.evaluate(() => (window as unknown as { messages: string[] }).messages);

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  setup = await startInProcessIdp(fixtureCard('doctor'));
  ({ backend, idp, rp, audit } = setup);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await setup?.close();
});

describe('card removal ends the IdP session', () => {
  it('says idle to an application whose browser has no card session', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${rp.origin}/app`);
      await page.waitForFunction(() => (window as unknown as { messages: string[] }).messages.length > 0, undefined, { timeout: 10_000 });
      expect(await page.evaluate(() => (window as unknown as { messages: string[] }).messages)).toEqual(['cpsd-idp:card-watch-idle']);
    } finally {
      await context.close();
    }
  }, 30_000);

  it('logs in with the card, then the application’s page embeds the watch, which connects to the daemon', async () => {
    const { context, page } = await cardLogin(browser, rp, idp.issuer, '1234', OUTPUT, 'watch');
    holder = context;
    await page.waitForURL(new RegExp(`^${rp.origin}/callback`), { timeout: 20_000 });
    tokens = rp.results.get(new URL(page.url()).searchParams.get('state') ?? '') as Tokens;
    app = await context.newPage();
    await app.goto(`${rp.origin}/app`);
    await app.waitForFunction(() => (window as unknown as { messages: string[] }).messages.includes('cpsd-idp:card-watch'), undefined, { timeout: 10_000 });
  }, 60_000);

  it('on removal: tells the application, revokes the refresh token, ends the session, writes an audit line', async () => {
    backend.remove();
    await app.waitForFunction(() => (window as unknown as { messages: string[] }).messages.includes('cpsd-idp:card-removed'), undefined, { timeout: 10_000 });
    expect(await messages()).toEqual(['cpsd-idp:card-watch', 'cpsd-idp:card-removed']);
    await expect(oidc.refreshTokenGrant(rp.config, tokens.refresh_token ?? '')).rejects.toMatchObject({ error: 'invalid_grant' });
    const logout = audit.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'logout');
    expect(logout).toMatchObject({ event: 'logout', reason: 'card.removed', sub: '899700012349' });
  }, 30_000);

  it('asks for the card again at the next login from the same browser', async () => {
    backend.insert(fixtureCard('doctor'));
    const page = await holder.newPage();
    await page.goto(`${rp.origin}/login`);
    await page.waitForURL(new RegExp(`^${idp.issuer}/interaction/`));
    expect(await page.getByRole('button', { name: 'Se connecter avec ma carte CPS' }).count()).toBe(1);
    await holder.close();
  }, 30_000);

  it('refuses to serve the watch for an origin that is not the client’s', async () => {
    const res = await fetch(`${idp.issuer}/session/card-watch?client_id=ehr&origin=${encodeURIComponent('https://evil.example')}`);
    expect(res.status).toBe(400);
  });

  it('lets only the client’s own pages embed the watch (frame-ancestors)', async () => {
    const res = await fetch(`${idp.issuer}/session/card-watch?client_id=ehr&origin=${encodeURIComponent(rp.origin)}`);
    expect(res.headers.get('content-security-policy')).toContain(`frame-ancestors ${rp.origin}`);
  });

  it('refuses a card-removed POST without the watch page’s CSRF token', async () => {
    const res = await fetch(`${idp.issuer}/session/card-removed`, { method: 'POST', headers: { Origin: idp.issuer, 'X-CSRF': 'forged' } });
    expect(res.status).toBe(403);
  });
});
