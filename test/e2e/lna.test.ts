/**
 * Local Network Access in the real browsers, and the policies of packaging/policies/ that IT deploys.
 *
 * The relying party is the demo page on a "public" https origin, https://site.example:PORT (served from
 * 127.0.0.1, self-signed certificate made by openssl; test/helpers/public-site.ts); the daemon is a
 * CpsdServer over the in-process virtual card (no pcscd); the PIN is typed on the daemon's PIN page.
 *
 * - Chromium (Debian, /usr/bin/chromium, playwright-core): `--ip-address-space-overrides=127.0.0.1:PORT=public`
 *   and `--host-resolver-rules` make the page public, so its ws://127.0.0.1 is a Local Network Access
 *   request; without a policy it is refused, with the file `cpsd policy` prints in
 *   /etc/chromium/policies/managed/ it goes through.
 * - Firefox ESR (Debian, /usr/bin/firefox-esr, puppeteer-core over WebDriver BiDi): the demo login, then the
 *   public page with `network.lna.websocket.enabled=true`, without and with the policies.json that
 *   `cpsd policy` prints, in /etc/firefox/policies/ or /usr/lib/firefox-esr/distribution/ (the two folders
 *   Debian's build reads; /etc/firefox-esr/policies/ is not one of them).
 *
 * Every policy file is removed after its test, whatever happens. Screenshots go to test-output/.
 */
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import puppeteer, { type Browser as PBrowser, type Page as PPage } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessBackend } from '../../cards/backends.js';
import { DEFAULTS } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { startDemo } from '../../examples/demo/server.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { CHROMIUM } from '../helpers/browser.js';
import { freePort } from '../helpers/doc-app.js';
import { PUBLIC_HOST, cpsdPolicy, installPolicyFile, startPublicSite, type PublicSite } from '../helpers/public-site.js';

const OUTPUT = fileURLToPath(new URL('../../test-output/', import.meta.url));
const CHROMIUM_POLICY = '/etc/chromium/policies/managed/cpsd.json';

let daemon: CpsdServer;
let backend: InProcessBackend;
let demo: { server: Server; port: number; origin: string };
let site: PublicSite;

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  const sitePort = await freePort();
  backend = new InProcessBackend(fixtureCard('doctor'));
  daemon = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [`https://${PUBLIC_HOST}:${sitePort}`], allowHttpLocalhost: true }, backend, new Logger('error', () => undefined));
  await daemon.listen();
  demo = await startDemo({ port: 0, daemonPort: daemon.port });
  site = await startPublicSite({ port: sitePort, demoPort: demo.port });
  await daemon.close();
  // Now that the demo's own origin is known, the daemon allows both (same port: the pages have it).
  daemon = new CpsdServer({ ...DEFAULTS, port: daemon.port, allowedOrigins: [site.origin, demo.origin], allowHttpLocalhost: true }, backend, new Logger('error', () => undefined));
  await daemon.listen();
}, 60_000);

afterAll(async () => {
  await daemon?.close();
  await backend?.close();
  await site?.close();
  await new Promise((r) => demo?.server.close(r));
});

// ------------------------------------------------------------------ Chromium

/** Chromium for which site.example is 127.0.0.1 and the site's port a public address. */
function launchPublicChromium(): Promise<Browser> {
  const port = new URL(site.origin).port;
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ip-address-space-overrides=127.0.0.1:${port}=public`,
      `--host-resolver-rules=MAP ${PUBLIC_HOST} 127.0.0.1`,
    ],
  });
}

/** Opens the public site and clicks login; the console lines are kept (the browser's own error). */
async function clickLogin(browser: Browser): Promise<{ context: BrowserContext; page: Page; console: string[]; popup: Promise<Page | undefined> }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const console: string[] = [];
  page.on('console', (m) => console.push(m.text()));
  await page.goto(site.origin);
  await page.waitForSelector('#login');
  // The SDK opens the daemon's PIN page in a popup: waited for from before the click.
  const popup = context.waitForEvent('page').catch(() => undefined);
  await page.click('#login');
  return { context, page, console, popup };
}

/** The daemon's PIN page opened by the SDK: types the PIN there. */
async function typePin(popup: Promise<Page | undefined>, pin: string): Promise<void> {
  const pinPage = await popup;
  if (!pinPage) throw new Error('the PIN page did not open');
  await pinPage.waitForURL(/\/pin\/[0-9a-f]{32}$/);
  await pinPage.fill('input[name=pin]', pin);
  await pinPage.click('button[type=submit]:not([name])');
}

describe('Chromium: a public https page and the daemon on 127.0.0.1', () => {
  it('is refused by Local Network Access without a policy: the demo says LOCAL_NETWORK_DENIED', async () => {
    const browser = await launchPublicChromium();
    try {
      const { page, console } = await clickLogin(browser);
      await page.waitForSelector('#error', { timeout: 20_000 });
      await page.screenshot({ path: `${OUTPUT}lna-denied.png` });
      // The browser's own refusal, not the daemon's (it never saw the connection).
      process.stderr.write(`Chromium said:\n  ${console.join('\n  ')}\n`);
      expect(console.join('\n')).toContain('ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS');
      expect(await page.getAttribute('#error', 'data-code')).toBe('LOCAL_NETWORK_DENIED');
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('lets the holder log in with the policy `cpsd policy` prints, in /etc/chromium/policies/managed/', async () => {
    const policy = installPolicyFile(CHROMIUM_POLICY, cpsdPolicy(['--origin', site.origin, '--browser', 'chromium', '--format', 'linux']));
    const browser = await launchPublicChromium();
    try {
      const { page, popup } = await clickLogin(browser);
      await typePin(popup, '1234');
      await page.waitForSelector('#welcome', { timeout: 20_000 });
      expect(await page.textContent('#welcome')).toContain('JEANNE MEDECIN-TEST');
      await page.screenshot({ path: `${OUTPUT}lna-allowed.png` });
    } finally {
      await browser.close();
      policy.remove();
    }
  }, 60_000);

  // Each name of the file is a policy this Chromium knows and applies: with only one of them, the login still works.
  it.each(['LocalNetworkAccessAllowedForUrls', 'LoopbackNetworkAllowedForUrls'])('lets the page through with %s alone', async (name) => {
    const shipped = JSON.parse(cpsdPolicy(['--origin', site.origin, '--browser', 'chromium', '--format', 'linux'])) as Record<string, string[]>;
    expect(shipped[name]).toEqual([site.origin]);
    const policy = installPolicyFile(CHROMIUM_POLICY, JSON.stringify({ [name]: shipped[name] }));
    const browser = await launchPublicChromium();
    try {
      const { page, popup } = await clickLogin(browser);
      await typePin(popup, '1234');
      await page.waitForSelector('#welcome', { timeout: 20_000 });
    } finally {
      await browser.close();
      policy.remove();
    }
  }, 60_000);
});

// ------------------------------------------------------------------ Firefox ESR

const FIREFOX = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';
/**
 * Where Debian's firefox-esr 153 reads a policies.json, as measured below: Mozilla's system-wide folder
 * /etc/firefox/policies/ (not /etc/firefox-esr/, although its prefs live there) and distribution/ next to
 * the program.
 */
const FIREFOX_POLICIES = ['/etc/firefox/policies/policies.json', '/usr/lib/firefox-esr/distribution/policies.json'];
const NOT_READ = '/etc/firefox-esr/policies/policies.json';

/** Firefox ESR over WebDriver BiDi; `publicSite`: site.example is 127.0.0.1, the site's port public, WebSockets under LNA. */
function launchFirefox(publicSite: boolean): Promise<PBrowser> {
  const port = new URL(site.origin).port;
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    acceptInsecureCerts: true,
    extraPrefsFirefox: publicSite
      ? { 'network.dns.localDomains': PUBLIC_HOST, 'network.lna.address_space.public.override': `127.0.0.1:${port}`, 'network.lna.websocket.enabled': true }
      : {},
  });
}

/** Opens `url`, clicks login, and returns the PIN popup's promise (waited for from before the click). */
async function firefoxLogin(browser: PBrowser, url: string): Promise<{ page: PPage; popup: Promise<PPage | null> }> {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForSelector('#login');
  const popup = new Promise<PPage | null>((resolve) => page.once('popup', resolve));
  await page.click('#login');
  return { page, popup };
}

async function firefoxPin(popup: Promise<PPage | null>, pin: string): Promise<void> {
  const pinPage = await popup;
  if (!pinPage) throw new Error('the PIN page did not open');
  await pinPage.waitForSelector('input[name=pin]');
  expect(pinPage.url()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/pin\/[0-9a-f]{32}$/);
  await pinPage.type('input[name=pin]', pin);
  await pinPage.click('button[type=submit]:not([name])');
}

describe('Firefox ESR', () => {
  it('logs the holder in on the demo, the PIN typed in the daemon’s popup', async () => {
    const browser = await launchFirefox(false);
    try {
      const { page, popup } = await firefoxLogin(browser, demo.origin);
      await firefoxPin(popup, '1234');
      await page.waitForSelector('#welcome', { timeout: 20_000 });
      expect(await page.$eval('#welcome', (e) => e.textContent)).toContain('JEANNE MEDECIN-TEST');
      await page.screenshot({ path: `${OUTPUT}firefox-login.png` });
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('holds a public page’s WebSocket to the daemon on a permission prompt, without a policy', async () => {
    const browser = await launchFirefox(true);
    try {
      const { page } = await firefoxLogin(browser, site.origin);
      await page.waitForSelector('#error', { timeout: 20_000 });
      const state = await page.evaluate(async () => (await navigator.permissions.query({ name: 'loopback-network' as PermissionName })).state);
      await page.screenshot({ path: `${OUTPUT}firefox-lna-prompt.png` });
      process.stderr.write(`Firefox: #error ${await page.$eval('#error', (e) => `${e.getAttribute('data-code')} ${e.textContent}`)}, loopback-network permission: ${state}\n`);
      expect(state).toBe('prompt');
      // The SDK tells the pending prompt from a daemon that does not answer.
      expect(await page.$eval('#error', (e) => e.getAttribute('data-code'))).toBe('LOCAL_NETWORK_DENIED');
    } finally {
      await browser.close();
    }
  }, 60_000);

  it.each(FIREFOX_POLICIES)('logs the holder in from the public page with the policies.json cpsd policy prints, in %s', async (where) => {
    const policy = installPolicyFile(where, cpsdPolicy(['--origin', site.origin, '--browser', 'firefox', '--format', 'linux']));
    const browser = await launchFirefox(true);
    try {
      const { page, popup } = await firefoxLogin(browser, site.origin);
      await firefoxPin(popup, '1234');
      await page.waitForSelector('#welcome', { timeout: 20_000 });
      expect(await page.$eval('#welcome', (e) => e.textContent)).toContain('JEANNE MEDECIN-TEST');
      await page.screenshot({ path: `${OUTPUT}firefox-lna-allowed-${where.includes('distribution') ? 'distribution' : 'etc'}.png` });
    } finally {
      await browser.close();
      policy.remove();
    }
  }, 60_000);

  it(`does not read a policies.json in ${NOT_READ}`, async () => {
    const policy = installPolicyFile(NOT_READ, cpsdPolicy(['--origin', site.origin, '--browser', 'firefox', '--format', 'linux']));
    const browser = await launchFirefox(true);
    try {
      const { page } = await firefoxLogin(browser, site.origin);
      await page.waitForSelector('#error', { timeout: 20_000 });
      expect(await page.$eval('#error', (e) => e.getAttribute('data-code'))).toBe('LOCAL_NETWORK_DENIED');
    } finally {
      await browser.close();
      policy.remove();
    }
  }, 60_000);
});
