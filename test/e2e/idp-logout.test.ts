/**
 * Logout everywhere (OpenID Connect Back-Channel Logout 1.0, idp/logout.ts): two relying parties hold
 * sessions for the same holder — an openid-client application (test/helpers/idp-rp.ts, which checks the
 * logout tokens as the spec says) and Apache with mod_auth_openidc (Debian's, configured as docs/idp.md
 * shows) — and whatever ends the IdP session ends both: the card pulled (seen by the card watch), logout
 * at either application, logout at the IdP, the session's expiry. A third application whose
 * back-channel URI answers 404 is logged and holds nobody up. Screenshots in test-output/idp-logout-*.png.
 * In process: the daemon over the virtual card (pulled and inserted by the test), the IdP, the RPs,
 * Chromium; Apache as a child process. No pcscd.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { apacheClient, docBlock, startApacheRp, type ApacheRp } from '../helpers/apache.js';
import { launchChromium } from '../helpers/browser.js';
import { freePort } from '../helpers/doc-app.js';
import { ROOT } from '../helpers/doc-blocks.js';
import { cardLogin, startInProcessIdp, startRp, type InProcessIdp, type RelyingParty } from '../helpers/idp-rp.js';

const OUTPUT = join(ROOT, 'test-output');
const SUB = '899700012349';
const LAB_SECRET = 'lab-secret-0123456789abcdef0123456789';

let setup: InProcessIdp;
let rp: RelyingParty;
let lab: RelyingParty;
let apache: ApacheRp;
let browser: Browser;
const contexts: BrowserContext[] = [];

/** The audit lines so far, as JSON. */
const audit = (from: InProcessIdp = setup): Record<string, unknown>[] => from.audit.map((l) => JSON.parse(l) as Record<string, unknown>);

/** Waits until `test` holds (deliveries and the watch's POST run asynchronously). */
async function until(test: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !test(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The holder logs in with the card at the openid-client application, then opens Apache's protected page
 * and the lab application without the card (single sign-on). Returns the browser page, on Apache's page.
 */
async function loginEverywhere(shots: string): Promise<Page> {
  const { context, page } = await cardLogin(browser, rp, setup.idp.issuer, '1234', OUTPUT, `logout-${shots}`);
  contexts.push(context);
  await page.waitForURL(new RegExp(`^${rp.origin}/callback`), { timeout: 20_000 });
  await page.goto(`${lab.origin}/login`);
  await page.waitForURL(new RegExp(`^${lab.origin}/callback`), { timeout: 10_000 });
  await page.goto(`${apache.origin}/protected/`);
  await page.locator('#apache').waitFor({ timeout: 10_000 }).catch(async (error: unknown) => {
    await page.screenshot({ path: join(OUTPUT, `idp-logout-${shots}-apache-failed.png`) });
    throw new Error(`Apache's protected page did not open (at ${page.url()}): ${apache.errors().slice(-2000)}`, { cause: error });
  });
  return page;
}

/** Opens `url` (an application's protected page) and says whether the browser ended at the IdP's login page. */
async function sentToIdp(page: Page, url: string, shot: string): Promise<boolean> {
  await page.goto(url);
  const login = await page
    .waitForURL(new RegExp(`^${setup.idp.issuer}/interaction/`), { timeout: 10_000 })
    .then(() => true)
    .catch(() => false);
  await page.screenshot({ path: join(OUTPUT, `idp-logout-${shot}.png`) });
  return login;
}

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  const [apachePort, labPort] = [await freePort(), await freePort()];
  setup = await startInProcessIdp(fixtureCard('doctor'), {
    // docs/idp.md's openid-client application (`dpi`), on the test RP's origin, as the client `ehr`.
    ehr: (origin) => Object.fromEntries(Object.entries(JSON.parse(docBlock('<!-- idp-rp-client -->').replaceAll('https://dpi.hopital.example', origin)) as Record<string, unknown>).filter(([key]) => key !== 'client_id')),
    clients: [
      apacheClient(`http://localhost:${apachePort}`),
      // An application whose back-channel URI does not exist (404): its failure is logged, the others go on.
      { client_id: 'lab', client_secret: LAB_SECRET, redirect_uris: [`http://localhost:${labPort}/callback`], backchannel_logout_uri: `http://localhost:${labPort}/missing` },
    ],
    idp: { logoutTimeoutMs: 2000 },
  });
  rp = setup.rp;
  lab = await startRp(labPort, setup.idp.issuer, 'lab', LAB_SECRET);
  apache = await startApacheRp(apachePort, setup.idp.issuer);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await lab?.close();
  await apache?.stop();
  await setup?.close();
});

describe('back-channel logout: what ends the IdP session ends every application', () => {
  it('advertises back-channel logout with sessions in its discovery document', async () => {
    const discovery = (await (await fetch(`${setup.idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({ backchannel_logout_supported: true, backchannel_logout_session_supported: true });
  });

  it('pulling the card ends the sessions of both applications: each protected page sends the browser to the IdP', async () => {
    const page = await loginEverywhere('card');
    await page.screenshot({ path: join(OUTPUT, 'idp-logout-apache-before.png') });
    await page.goto(`${rp.origin}/protected`);
    await page.locator('#protected').waitFor();
    await page.screenshot({ path: join(OUTPUT, 'idp-logout-rp-before.png') });
    // The openid-client application's page embeds the IdP's card watch (idp/card-watch.ts).
    const app = await page.context().newPage();
    await app.goto(`${rp.origin}/app`);
    await app.waitForFunction(() => (window as unknown as { messages: string[] }).messages.includes('cpsd-idp:card-watch'), undefined, { timeout: 10_000 });
    const before = rp.logouts.length;
    setup.backend.remove();
    await app.waitForFunction(() => (window as unknown as { messages: string[] }).messages.includes('cpsd-idp:card-removed'), undefined, { timeout: 10_000 });
    await until(() => rp.logouts.length > before, 'the logout token at the openid-client application');
    expect(await sentToIdp(page, `${rp.origin}/protected`, 'card-rp')).toBe(true);
    expect(await sentToIdp(page, `${apache.origin}/protected/`, 'card-apache')).toBe(true);
  }, 90_000);

  it('sends a logout token that passes the openid-client application’s checks, naming its session (sid and sub, no nonce)', () => {
    const token = rp.logouts.at(-1);
    expect(rp.refusals).toEqual([]);
    expect(token).toMatchObject({ iss: setup.idp.issuer, aud: 'ehr', sub: SUB, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
    expect(typeof token?.sid).toBe('string');
    expect(token).not.toHaveProperty('nonce');
  });

  it('logs an application that does not take its token (LOGOUT_DELIVERY_FAILED, national id only) and tells the others all the same', () => {
    const lines = audit();
    expect(lines).toContainEqual(expect.objectContaining({ event: 'logout', reason: 'card.removed', sub: SUB }));
    expect(lines).toContainEqual(expect.objectContaining({ event: 'logout.failed', client: 'lab', sub: SUB, code: 'LOGOUT_DELIVERY_FAILED', reason: 'HTTP 404' }));
    expect(lines).toContainEqual(expect.objectContaining({ event: 'logout.delivered', client: 'ehr', sub: SUB }));
    expect(lines).toContainEqual(expect.objectContaining({ event: 'logout.delivered', client: 'intranet', sub: SUB }));
    for (const word of ['JEANNE', 'MEDECIN', 'HOPITAL']) expect(setup.audit.filter((l) => l.includes(word))).toEqual([]);
  });

  it('logging out at the openid-client application (with id_token_hint) asks no confirmation and ends Apache’s session too', async () => {
    setup.backend.insert(fixtureCard('doctor'));
    const page = await loginEverywhere('rp');
    await page.goto(`${rp.origin}/logout`);
    // Straight back to the application's home: no confirmation page stopped the browser at the IdP.
    await page.waitForURL(`${rp.origin}/`, { timeout: 10_000 });
    await page.screenshot({ path: join(OUTPUT, 'idp-logout-rp-done.png') });
    expect(await sentToIdp(page, `${apache.origin}/protected/`, 'rp-apache')).toBe(true);
  }, 90_000);

  it('logging out at Apache (mod_auth_openidc) ends the openid-client application’s session too', async () => {
    const page = await loginEverywhere('apache');
    await page.goto(apache.logoutUrl);
    await page.waitForURL(`${apache.origin}/loggedout.html`, { timeout: 10_000 });
    await page.screenshot({ path: join(OUTPUT, 'idp-logout-apache-done.png') });
    expect(audit()).toContainEqual(expect.objectContaining({ event: 'logout', reason: 'rp', client: 'intranet', sub: SUB }));
    expect(await sentToIdp(page, `${rp.origin}/protected`, 'apache-rp')).toBe(true);
  }, 90_000);

  it('asks the holder to confirm a logout that an application asks without id_token_hint', async () => {
    const page = await loginEverywhere('nohint');
    await page.goto(`${rp.origin}/logout?hint=0`);
    await page.locator('#logout-yes').waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(OUTPUT, 'idp-logout-confirm.png') });
    expect(page.url().startsWith(`${setup.idp.issuer}/`)).toBe(true);
    // Confirmed: every application told.
    await page.click('#logout-yes');
    await page.waitForURL(`${rp.origin}/`, { timeout: 10_000 });
  }, 90_000);

  it('logging out at the IdP itself, once confirmed, ends both applications’ sessions', async () => {
    const page = await loginEverywhere('idp');
    await page.goto(`${setup.idp.issuer}/session/end`);
    await page.click('#logout-yes');
    await page.locator('#logged-out').waitFor({ timeout: 10_000 });
    expect(audit()).toContainEqual(expect.objectContaining({ event: 'logout', reason: 'idp', sub: SUB }));
    expect(await sentToIdp(page, `${rp.origin}/protected`, 'idp-rp')).toBe(true);
    expect(await sentToIdp(page, `${apache.origin}/protected/`, 'idp-apache')).toBe(true);
  }, 90_000);

  it('the openid-client application refuses an unsigned logout token', async () => {
    const part = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const forged = `${part({ alg: 'none', typ: 'logout+jwt' })}.${part({ iss: setup.idp.issuer, aud: 'ehr', iat: now, jti: 'forged', sub: SUB, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })}.`;
    const res = await fetch(`${rp.origin}/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: forged }) });
    expect(res.status).toBe(400);
    expect(rp.refusals.at(-1)).toMatch(/^(not a signed JWT|alg none)/);
  });
});

describe('back-channel logout at the session’s expiry', () => {
  let short: InProcessIdp;

  beforeAll(async () => {
    short = await startInProcessIdp(fixtureCard('doctor'), {
      ehr: (origin) => ({ backchannel_logout_uri: `${origin}/backchannel-logout` }),
      idp: { sessionSeconds: 4 },
    });
  }, 30_000);

  afterAll(async () => {
    await short?.close();
  });

  it('sends the logout token when the IdP session expires, and the application’s page then asks for login', async () => {
    const { context, page } = await cardLogin(browser, short.rp, short.idp.issuer, '1234', OUTPUT, 'logout-expiry');
    contexts.push(context);
    await page.waitForURL(new RegExp(`^${short.rp.origin}/callback`), { timeout: 20_000 });
    await page.goto(`${short.rp.origin}/protected`);
    await page.locator('#protected').waitFor();
    await until(() => short.rp.logouts.length > 0, 'the logout token at expiry', 15_000);
    expect(audit(short)).toContainEqual(expect.objectContaining({ event: 'logout', reason: 'session.expired', sub: SUB }));
    await page.goto(`${short.rp.origin}/protected`);
    await page.waitForURL(new RegExp(`^${short.idp.issuer}/interaction/`), { timeout: 10_000 });
  }, 60_000);
});
