/**
 * The daemon's PIN window in real Chromium, opened by a page as the SDK opens it: a signature shown as a
 * signature with its hash, the last-try consent, the final words in French and in English, the window
 * closing itself, and closing it by hand cancelling within a second. Screenshots go to test-output/.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PcscBackend } from '../../cards/backends.js';
import { DEFAULTS } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { launchChromium } from '../helpers/browser.js';
import { VPCD_READER } from '../helpers/pcscd.js';
import { rpcClient, type RpcClient } from '../helpers/rpc.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const OUTPUT = fileURLToPath(new URL('../../test-output/', import.meta.url));
const nonce = Buffer.alloc(32, 5).toString('base64');
const vr = useVirtualReader();
let browser: Browser;
let daemon: CpsdServer;
let backend: PcscBackend;
/** The relying party's page: one button that opens a URL in a popup, as the SDK does from a click. */
let site: { server: Server; origin: string };

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(
      `<!doctype html><title>RP</title><button id="open">open</button>
<script>document.getElementById('open').onclick = () => { window.open(document.body.dataset.url, 'cpsd-pin', 'popup,width=460,height=520'); };</script>`,
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  site = { server, origin: `http://localhost:${(server.address() as AddressInfo).port}` };
  backend = new PcscBackend();
  await backend.settled();
  daemon = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [site.origin], allowHttpLocalhost: true }, backend, new Logger('warn', () => undefined));
  await daemon.listen();
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await daemon?.close();
  await daemon?.sessions.close();
  await new Promise((r) => site?.server.close(r));
});

async function insert(): Promise<void> {
  await vr.insert({ profile: 'doctor' });
  for (let i = 0; i < 250 && !backend.readers().some((r) => r.name === VPCD_READER && r.cardPresent); i++) await new Promise((r) => setTimeout(r, 20));
}

/** The page of the site (locale: the browser's language), and the PIN window it opens for `url`. */
async function openPinWindow(locale: string, url: string): Promise<{ context: BrowserContext; popup: Page }> {
  const context = await browser.newContext({ locale });
  const page = await context.newPage();
  await page.goto(site.origin);
  await page.evaluate((u) => (document.body.dataset.url = u), url);
  const opened = context.waitForEvent('page');
  await page.click('#open');
  const popup = await opened;
  await popup.waitForSelector('input[name=pin]');
  return { context, popup };
}

/** A web client of the site's origin that asks for something needing the PIN; returns the PIN page URL. */
async function ask(method: string, params: Record<string, unknown>): Promise<{ rpc: RpcClient; answer: ReturnType<RpcClient['call']>; url: string }> {
  const rpc = await rpcClient(daemon.port, site.origin);
  const answer = rpc.call(method, { reader: VPCD_READER, ...params });
  const url = String((await rpc.next('pin.required')).url);
  return { rpc, answer, url };
}

describe('the PIN window in Chromium', () => {
  it('shows a signature as a signature, with its hash and document, says the outcome in French and closes itself', async () => {
    await insert();
    const digest = createHash('sha256').update('ordonnance du 1er décembre').digest();
    const { rpc, answer, url } = await ask('sign.hash', { hash: digest.toString('base64url'), hashAlgorithm: 'SHA-256', document: 'Ordonnance Dupont.pdf' });
    const { context, popup } = await openPinWindow('fr-FR', url);
    const text = await popup.textContent('body');
    expect(text).toContain('demande une signature');
    expect(text).not.toContain('authentification');
    expect(await popup.textContent('#document')).toBe('Ordonnance Dupont.pdf');
    expect((await popup.textContent('#hash'))?.replace(/\s/g, '')).toBe(digest.toString('hex').toUpperCase());
    await popup.screenshot({ path: `${OUTPUT}pin-signature.png` });
    const closed = new Promise((r) => popup.once('close', r));
    await popup.fill('input[name=pin]', '1234');
    await popup.click('button[type=submit]:not([name])');
    await popup.waitForFunction(() => document.getElementById('result')?.textContent?.includes('Code accepté'));
    await popup.screenshot({ path: `${OUTPUT}pin-final-fr.png` });
    expect((await answer).result?.signature).toBeTypeOf('string');
    await closed; // the window closed itself
    await context.close();
    await rpc.close();
  });

  it('speaks English to an English browser and tells the tries left after a wrong PIN', async () => {
    await insert();
    const { rpc, answer, url } = await ask('auth.authenticate', { nonce });
    const { context, popup } = await openPinWindow('en-US', url);
    expect(await popup.textContent('#purpose')).toContain('asks to authenticate you');
    expect(await popup.textContent('#tries')).toBe('3 tries left');
    await popup.fill('input[name=pin]', '9999');
    await popup.click('button[type=submit]:not([name])');
    await popup.waitForFunction(() => document.getElementById('result')?.textContent?.includes('Wrong PIN. 2 tries left.'));
    await popup.screenshot({ path: `${OUTPUT}pin-final-en.png` });
    expect((await answer).error?.data).toEqual({ code: 'PIN_INCORRECT', triesLeft: 2 });
    await context.close();
    await rpc.close();
  });

  it('at one try left, warns and asks for consent on the page, then uses the PIN', async () => {
    await insert();
    const local = await rpcClient(daemon.port);
    for (let i = 0; i < 2; i++) await local.call('auth.authenticate', { nonce, reader: VPCD_READER, pin: '9999' });
    const { rpc, answer, url } = await ask('auth.authenticate', { nonce });
    const { context, popup } = await openPinWindow('fr-FR', url);
    expect(await popup.textContent('#last-try')).toContain('dernier essai');
    await popup.fill('input[name=pin]', '1234');
    await popup.click('button[type=submit]:not([name])');
    // Without the box ticked the browser does not send it: nothing reached the card.
    expect(await popup.evaluate(() => (document.querySelector('input[name=consent]') as HTMLInputElement).validity.valueMissing)).toBe(true);
    expect((await local.call('card.status', { reader: VPCD_READER })).result).toMatchObject({ pin: { triesLeft: 1 } });
    await popup.check('input[name=consent]');
    await popup.screenshot({ path: `${OUTPUT}pin-last-try.png` });
    await popup.click('button[type=submit]:not([name])');
    expect((await answer).result?.format).toBe('web-eid:1.0');
    expect((await local.call('card.status', { reader: VPCD_READER })).result).toMatchObject({ pin: { triesLeft: 3 } });
    await context.close();
    await Promise.all([rpc.close(), local.close()]);
  });

  it('cancels with USER_CANCELLED within a second when the holder closes the window', async () => {
    await insert();
    const { rpc, answer, url } = await ask('auth.authenticate', { nonce });
    const { context, popup } = await openPinWindow('fr-FR', url);
    await popup.waitForLoadState('networkidle').catch(() => undefined);
    const closedAt = Date.now();
    await popup.close();
    expect((await answer).error?.data.code).toBe('USER_CANCELLED');
    expect(Date.now() - closedAt).toBeLessThan(1000);
    expect((await rpc.call('card.status')).result).toMatchObject({ pin: { triesLeft: 3 } });
    await context.close();
    await rpc.close();
  });
});
