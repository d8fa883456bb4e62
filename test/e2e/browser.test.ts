/**
 * "Log in with my CPS card" in real Chromium: demo page → WebSocket → daemon → pcsclite → pcscd → vpcd →
 * virtual card, the PIN typed into the daemon's PIN page popup. Then "Signer un document" on the same
 * page, the signed PDF downloaded and judged by pdfsig. Screenshots go to test-output/.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PcscBackend } from '../../cards/backends.js';
import { DEFAULTS } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { DOCUMENT_NAME, SIGNED_NAME, startDemo } from '../../examples/demo/server.js';
import { loadProfile } from '../../sim/cps/fixtures.js';
import { launchChromium } from '../helpers/browser.js';
import { VPCD_READER } from '../helpers/pcscd.js';
import { pdfsigSignatures, pdfsigWithOcsp, trustingDb } from '../helpers/sign.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const OUTPUT = fileURLToPath(new URL('../../test-output/', import.meta.url));
const vr = useVirtualReader();
let browser: Browser;
let daemon: CpsdServer;
let source: PcscBackend;
let demo: { server: Server; port: number; origin: string };

async function startDaemon(origins: string[]): Promise<void> {
  await daemon?.close();
  daemon = new CpsdServer({ ...DEFAULTS, port: daemon?.port ?? 0, allowedOrigins: origins, allowHttpLocalhost: true }, source, new Logger('warn', () => undefined));
  await daemon.listen();
}

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  source = new PcscBackend();
  await source.settled();
  await startDaemon([]);
  demo = await startDemo({ port: 0, daemonPort: daemon.port });
  await startDaemon([demo.origin]);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await daemon?.close();
  await source?.close();
  await new Promise((r) => demo?.server.close(r));
});

/** Inserts a card and waits until the daemon's own PC/SC context sees it (contexts are notified apart). */
async function insert(profile: string): Promise<void> {
  await vr.insert({ profile });
  for (let i = 0; i < 250 && !source.readers().some((r) => r.name === VPCD_READER && r.cardPresent); i++) await new Promise((r) => setTimeout(r, 20));
}

async function openDemo(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(demo.origin);
  await page.waitForSelector('#login');
  return { context, page };
}

/** Clicks login and types `pin` in the daemon's PIN page (null: cancel). */
async function login(context: BrowserContext, page: Page, pin: string | null): Promise<void> {
  const popup = context.waitForEvent('page');
  await page.click('#login');
  const pinPage = await popup;
  await pinPage.waitForURL(/\/pin\/[0-9a-f]{32}$/);
  await pinPage.waitForSelector('input[name=pin]');
  if (pin === null) await pinPage.click('button[name=cancel]');
  else {
    await pinPage.fill('input[name=pin]', pin);
    await pinPage.click('button[type=submit]:not([name])');
  }
}

describe('login with the CPS card in Chromium', () => {
  it('logs the holder in, typed PIN in the daemon page, and shows who it is', async () => {
    await insert('doctor');
    const { context, page } = await openDemo();
    await login(context, page, '1234');
    await page.waitForSelector('#welcome', { timeout: 20_000 });
    expect(await page.textContent('#welcome')).toContain('JEANNE MEDECIN-TEST');
    expect(await page.textContent('#rpps')).toBe('99700012349');
    expect(await page.textContent('#profession')).toBe('Médecin');
    await page.screenshot({ path: `${OUTPUT}login-success.png` });
    await page.click('#logout');
    await page.waitForSelector('#login');
    await context.close();
  }, 60_000);

  it('signs the holder’s report from the demo page: PIN in the daemon’s window, verifier’s result shown, the downloaded PDF valid for pdfsig', async () => {
    const holder = loadProfile('doctor').holder;
    await insert('doctor');
    const { context, page } = await openDemo();
    await login(context, page, '1234');
    await page.waitForSelector('#sign', { timeout: 20_000 });
    expect(await page.textContent('#document')).toBe(DOCUMENT_NAME);
    const popup = context.waitForEvent('page');
    await page.click('#sign');
    const pinPage = await popup;
    await pinPage.waitForURL(/\/pin\/[0-9a-f]{32}$/);
    await pinPage.waitForSelector('input[name=pin]');
    // The PIN window names the document and the signing certificate.
    expect(await pinPage.textContent('#document')).toContain(DOCUMENT_NAME);
    expect(await pinPage.getAttribute('#certificate', 'data-certificate')).toBe('signature');
    await pinPage.fill('input[name=pin]', '1234');
    await pinPage.click('button[type=submit]:not([name])');
    await page.waitForSelector('#signed', { timeout: 20_000 });
    expect(await page.textContent('#signer')).toBe(`${holder.firstName} ${holder.lastName} (${holder.idNat})`);
    expect(await page.getAttribute('#validity', 'data-valid')).toBe('true');
    expect(await page.textContent('#signed-at')).toMatch(/\d{4}/);
    await page.screenshot({ path: `${OUTPUT}demo-sign.png`, fullPage: true });
    const dir = mkdtempSync(join(tmpdir(), 'cpsd-demo-sign-'));
    try {
      const download = page.waitForEvent('download');
      await page.click('#download');
      const file = join(dir, SIGNED_NAME);
      const done = await download;
      expect(done.suggestedFilename()).toBe(SIGNED_NAME);
      await done.saveAs(file);
      const [report] = pdfsigWithOcsp([file], trustingDb(join(dir, 'nssdb')), dir);
      const signatures = pdfsigSignatures(report ?? '');
      expect(signatures, report).toHaveLength(1);
      const one = signatures[0] ?? '';
      expect(one).toContain('Signature Validation: Signature is Valid.');
      expect(one).toContain('Signature Type: ETSI.CAdES.detached');
      expect(one).toContain(`SN=${holder.lastName}`);
      expect(one).toContain(`givenName=${holder.firstName}`);
      expect(one).toContain('Certificate Validation: Certificate is Trusted.');
      expect(one).toContain('Total document signed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await context.close();
  }, 60_000);

  it('shows the tries left after a wrong PIN, and a blocked card', async () => {
    await insert('doctor');
    const { context, page } = await openDemo();
    await login(context, page, '9999');
    await page.waitForSelector('#error');
    expect(await page.getAttribute('#error', 'data-code')).toBe('PIN_INCORRECT');
    expect(await page.textContent('#error')).toContain('2 essais restants');
    await page.screenshot({ path: `${OUTPUT}login-wrong-pin.png` });
    await context.close();
    await vr.remove();
    await insert('pin-blocked');
    const blocked = await openDemo();
    const popup = blocked.context.waitForEvent('page');
    await blocked.page.click('#login');
    await popup;
    await blocked.page.waitForSelector('#error');
    expect(await blocked.page.getAttribute('#error', 'data-code')).toBe('PIN_BLOCKED');
    await blocked.context.close();
  }, 60_000);

  it('fails cleanly when the card is pulled during the login', async () => {
    await insert('doctor');
    const { context, page } = await openDemo();
    const popup = context.waitForEvent('page');
    await page.click('#login');
    const pinPage = await popup;
    await pinPage.waitForURL(/\/pin\//);
    await vr.remove();
    await page.waitForSelector('#error', { timeout: 20_000 });
    expect(await page.getAttribute('#error', 'data-code')).toBe('CARD_ABSENT');
    await context.close();
  }, 60_000);

  it('tells the page when its origin is not allowed by the daemon', async () => {
    await insert('doctor');
    await startDaemon(['https://other.example']);
    try {
      const { context, page } = await openDemo();
      await page.click('#login');
      await page.waitForSelector('#error');
      expect(await page.getAttribute('#error', 'data-code')).toBe('ORIGIN_NOT_ALLOWED');
      await context.close();
    } finally {
      await startDaemon([demo.origin]);
    }
  }, 60_000);
});

describe('demo server refuses bad tokens', () => {
  it('refuses a replayed token, a token for another origin and a revoked certificate', async () => {
    const { verifyDemoTokens } = await import('../helpers/demo-tokens.js');
    expect(await verifyDemoTokens(demo.origin)).toEqual({ first: 200, replay: 401, otherOrigin: 401, revoked: 401 });
  }, 60_000);
});
