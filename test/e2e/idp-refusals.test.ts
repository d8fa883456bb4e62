/**
 * cpsd-idp refusing a card login, in Chromium, with a clear message on its login page: a revoked
 * certificate (our verifier, against the test PKI's CRL) and a blocked card. Each with its own
 * `cpsd idp --sim <profile>` (in-process daemon and virtual card); the RP is the openid-client one.
 * (Wrong PIN, unknown client, bad redirect_uri and a replayed code: idp.test.ts.)
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { freePort, run, type Run } from '../helpers/doc-app.js';
import { ROOT } from '../helpers/doc-blocks.js';
import { cardLogin, startRp, type RelyingParty } from '../helpers/idp-rp.js';

const OUTPUT = join(ROOT, 'test-output');

interface Setup {
  idp: Run;
  issuer: string;
  rp: RelyingParty;
}

const setups: Setup[] = [];
let browser: Browser;

async function setup(profile: string): Promise<Setup> {
  const [idpPort, rpPort] = [await freePort(), await freePort()];
  const issuer = `http://localhost:${idpPort}`;
  const idp = run(ROOT, ['dist/cli/cpsd.js', '--lang', 'en', 'idp', '--sim', profile, '--port', String(idpPort), '--demo-redirect-uri', `http://localhost:${rpPort}/callback`], {});
  await idp.waitFor('demo client:');
  const secret = /client_secret (\S+),/.exec(idp.stdout())?.[1] ?? '';
  const rp = await startRp(rpPort, issuer, 'demo', secret);
  const made = { idp, issuer, rp };
  setups.push(made);
  return made;
}

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const { idp, rp } of setups) {
    await rp.close();
    idp.child.kill('SIGTERM');
    await idp.exited;
  }
});

describe('cpsd-idp refusals on the login page', () => {
  it('refuses a revoked certificate (CRL) after the PIN, says so, and writes a refusal audit line', async () => {
    const { idp, issuer, rp } = await setup('revoked');
    const { context, page } = await cardLogin(browser, rp, issuer, '1234', OUTPUT, 'revoked');
    try {
      await page.waitForFunction(() => document.getElementById('status')?.dataset.code === 'CERT_REVOKED', undefined, { timeout: 20_000 });
      expect(await page.textContent('#status')).toBe('Le certificat de votre carte est révoqué : cette carte ne permet plus de vous connecter. Contactez votre guichet d’enregistrement (ANS).');
      expect(page.url()).toMatch(new RegExp(`^${issuer}/interaction/`));
      await page.screenshot({ path: join(OUTPUT, 'idp-revoked.png') });
      expect(rp.results.size).toBe(0);
      expect(idp.stderr()).toMatch(/"event":"login.refused","method":"card","client":"demo","code":"CERT_REVOKED"/);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('refuses card data that does not belong to the signed certificate (situations forged in the browser)', async () => {
    const { idp, issuer, rp } = await setup('doctor');
    const context = await browser.newContext({ locale: 'fr-FR' });
    // What a tampered page (or a holder editing the request) would send: another national id's situations.
    await context.route(`${issuer}/interaction/*/login`, async (route) => {
      const body = JSON.parse(route.request().postData() ?? '{}') as { identity: { nationalId: string } };
      body.identity.nationalId = '899700099999';
      await route.continue({ postData: JSON.stringify(body) });
    });
    const { page } = await cardLogin(browser, rp, issuer, '1234', OUTPUT, 'forged', context);
    try {
      await page.waitForFunction(() => document.getElementById('status')?.dataset.code === 'CARD_DATA_INVALID', undefined, { timeout: 20_000 });
      expect(rp.results.size).toBe(0);
      expect(idp.stderr()).toMatch(/"event":"login.refused","method":"card","client":"demo","code":"CARD_DATA_INVALID"/);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('refuses an oversized login body with a typed refusal, not a dropped connection', async () => {
    const { issuer, rp } = await setup('doctor');
    const context = await browser.newContext({ locale: 'fr-FR' });
    await context.route(`${issuer}/interaction/*/login`, async (route) => {
      const body = JSON.parse(route.request().postData() ?? '{}') as Record<string, unknown>;
      await route.continue({ postData: JSON.stringify({ ...body, padding: 'x'.repeat(30_000) }) });
    });
    const { page } = await cardLogin(browser, rp, issuer, '1234', OUTPUT, 'oversized', context);
    try {
      await page.waitForFunction(() => document.getElementById('status')?.dataset.code === 'TOKEN_MALFORMED', undefined, { timeout: 20_000 });
      expect(rp.results.size).toBe(0);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('says the card is blocked, without asking for a PIN it cannot take', async () => {
    const { issuer, rp } = await setup('pin-blocked');
    const context = await browser.newContext({ locale: 'fr-FR' });
    try {
      const page = await context.newPage();
      await page.goto(`${rp.origin}/login`);
      await page.waitForURL(new RegExp(`^${issuer}/interaction/`));
      await page.getByRole('button', { name: 'Se connecter avec ma carte CPS' }).click();
      await page.waitForFunction(() => document.getElementById('status')?.dataset.code === 'PIN_BLOCKED', undefined, { timeout: 20_000 });
      expect(await page.textContent('#status')).toBe('Carte bloquée : débloquez-la avec votre code de déblocage.');
      await page.screenshot({ path: join(OUTPUT, 'idp-blocked.png') });
      // No PIN page was left open for a card that cannot take one.
      const pinPages = context.pages().filter((p) => /\/pin\/[0-9a-f]{32}$/.test(p.url()));
      expect(pinPages).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
