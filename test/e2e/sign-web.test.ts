/**
 * Signing a PDF from a web page, for real: docs/signing.md's page and editor's server (as written), the
 * browser SDK's signDocument in Chromium, the daemon on pcscd + vpcd with the CPS3 and CPS4 virtual cards,
 * the PIN typed in the daemon's PIN window; the signed PDF judged by poppler's pdfsig (NSS database
 * trusting the test root, the OCSP responder at the certificates' AIA: test/helpers/sign.ts). Cancel and a
 * wrong PIN as the page tells them. Screenshots sign-web-*.png in test-output/.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PcscBackend } from '../../cards/backends.js';
import { DEFAULTS } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { loadProfile } from '../../sim/cps/fixtures.js';
import { launchChromium } from '../helpers/browser.js';
import { freePort } from '../helpers/doc-app.js';
import { VPCD_READER } from '../helpers/pcscd.js';
import { rpcClient } from '../helpers/rpc.js';
import { pdfsigSignatures, pdfsigWithOcsp, trustingDb } from '../helpers/sign.js';
import { signFromPage, startSignWebApp, type SignWebApp } from '../helpers/sign-web-app.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const OUTPUT = fileURLToPath(new URL('../../test-output/', import.meta.url));
const vr = useVirtualReader();
let browser: Browser;
let backend: PcscBackend;
let daemon: CpsdServer;
let app: SignWebApp;
let dir: string;
let db: string;

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'cpsd-sign-web-'));
  db = trustingDb(join(dir, 'nssdb'));
  backend = new PcscBackend();
  await backend.settled();
  const port = await freePort();
  daemon = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [`http://localhost:${port}`], allowHttpLocalhost: true }, backend, new Logger('warn', () => undefined));
  await daemon.listen();
  app = await startSignWebApp(port, daemon.port);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await daemon?.close();
  await daemon?.sessions.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Inserts a card and waits until the daemon's own PC/SC context sees it. */
async function insert(profile: string): Promise<void> {
  await vr.insert({ profile });
  for (let i = 0; i < 250 && !backend.readers().some((r) => r.name === VPCD_READER && r.cardPresent); i++) await new Promise((r) => setTimeout(r, 20));
}

/** The card's PIN tries left, asked as a local application. */
async function triesLeft(): Promise<unknown> {
  const rpc = await rpcClient(daemon.port);
  try {
    return ((await rpc.call('card.status', { reader: VPCD_READER })).result as { pin?: { triesLeft?: number } } | undefined)?.pin?.triesLeft;
  } finally {
    await rpc.close();
  }
}

describe.each([
  ['doctor', 'CPS3'],
  ['nurse', 'CPS4'],
])('from the page, with the %s card (%s)', (profile, generation) => {
  const holder = loadProfile(profile).holder;
  const signed = (): string => join(dir, `${profile}.pdf`);

  it('the page gets the card’s signature (PIN typed in the daemon’s window), the server finishes and names the holder', async () => {
    expect(loadProfile(profile).generation).toBe(generation);
    await insert(profile);
    const { result, page } = await signFromPage(browser, app.origin, loadProfile(profile).pin, (window) => window.screenshot({ path: `${OUTPUT}sign-web-pin-${profile}.png` }).then(() => undefined));
    await page.screenshot({ path: `${OUTPUT}sign-web-signed-${profile}.png` });
    await page.context().close();
    expect(result).toBe(`Signé par ${holder.firstName} ${holder.lastName} : ordonnance signée`);
    expect((await vr.icc.stats()).cardRsa).toBe(1); // one signature by the card, nothing else
    copyFileSync(app.signedPdf, signed());
  }, 60_000);

  it('pdfsig: the signed PDF is valid, ETSI.CAdES.detached, signed by the holder, certificate trusted', () => {
    const [report] = pdfsigWithOcsp([signed()], db, dir);
    const [one, ...more] = pdfsigSignatures(report ?? '');
    expect(more).toHaveLength(0);
    expect(one).toContain('Signature Validation: Signature is Valid.');
    expect(one).toContain('Signature Type: ETSI.CAdES.detached');
    expect(one).toContain(`SN=${holder.lastName}`);
    expect(one).toContain(`givenName=${holder.firstName}`);
    expect(one).toContain('Certificate Validation: Certificate is Trusted.');
    expect(one).toContain('Total document signed');
  });
});

describe('the PIN window and what the page is told', () => {
  it('shows the asking origin, the document, the hash the server prepared and the signing (non-repudiation) certificate', async () => {
    await insert('doctor');
    let shown: Record<string, string | null> = {};
    const { page, prepared } = await signFromPage(browser, app.origin, null, async (window) => {
      shown = {
        purpose: await window.textContent('#purpose'),
        document: await window.textContent('#document'),
        hash: (await window.textContent('#hash'))?.replace(/\s/g, '') ?? null,
        certificate: await window.getAttribute('#certificate', 'data-certificate'),
        certificateText: await window.textContent('#certificate'),
      };
      await window.screenshot({ path: `${OUTPUT}sign-web-pin-window.png` });
    });
    await page.context().close();
    expect(shown.purpose).toContain(app.origin);
    expect(shown.purpose).toContain('demande une signature');
    expect(shown.document).toMatch(/^ordonnance\.pdf \(application\/pdf, \d+(,\d)?\sko\)$/);
    expect(shown.hash).toBe(Buffer.from(await prepared, 'base64url').toString('hex').toUpperCase());
    expect(shown.hash).toHaveLength(64);
    expect(shown.certificate).toBe('signature');
    expect(shown.certificateText).toBe('Certificat utilisé : signature (non-répudiation).');
  }, 60_000);

  it('Cancel: the page says the signature was cancelled (USER_CANCELLED), the card made no signature and kept its tries', async () => {
    await insert('doctor');
    const { result, page } = await signFromPage(browser, app.origin, null);
    await page.screenshot({ path: `${OUTPUT}sign-web-cancelled.png` });
    await page.context().close();
    expect(result).toBe('Signature annulée.');
    expect((await vr.icc.stats()).cardRsa).toBe(0);
    expect(await triesLeft()).toBe(3);
  }, 60_000);

  it('a wrong PIN: one try spent, the page says how many are left, no signature made', async () => {
    await insert('doctor');
    const { result, page } = await signFromPage(browser, app.origin, '9999');
    await page.screenshot({ path: `${OUTPUT}sign-web-wrong-pin.png` });
    await page.context().close();
    expect(result).toBe('Code erroné : 2 essai(s) restant(s).');
    expect(await triesLeft()).toBe(2);
    expect((await vr.icc.stats()).cardRsa).toBe(0);
  }, 60_000);
});
