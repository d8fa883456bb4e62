/**
 * Contactless login (the card's technical key, no PIN) at cpsd-idp: only when IT enables it AND the
 * application asks for the lower acr (http://eidas.europa.eu/LoA/low); then acr low, amr ["sc"]. An
 * application asking for eidas1 (every PSC client) is refused on the login page, and so is every one
 * when the IdP does not enable it. The daemon allows the IdP's origin contactless (contactlessOrigins).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { launchChromium } from '../helpers/browser.js';
import { ROOT } from '../helpers/doc-blocks.js';
import { startInProcessIdp, type InProcessIdp, type Tokens } from '../helpers/idp-rp.js';

const OUTPUT = join(ROOT, 'test-output');
const LOW = 'http://eidas.europa.eu/LoA/low';

let enabled: InProcessIdp;
let disabled: InProcessIdp;
let browser: Browser;

const contactless = (): ReturnType<typeof fixtureCard> => fixtureCard('doctor', { personality: 'cps3-cl' });

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  const daemon = (issuer: string): { contactlessOrigins: string[] } => ({ contactlessOrigins: [issuer] });
  enabled = await startInProcessIdp(contactless(), { idp: { allowContactless: true }, daemon });
  disabled = await startInProcessIdp(contactless(), { daemon });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await enabled?.close();
  await disabled?.close();
});

/** The RP's /login (with these extra authorization parameters), the card button, no PIN. */
async function login(setup: InProcessIdp, query: string): Promise<Page> {
  const context = await browser.newContext({ locale: 'fr-FR' });
  const page = await context.newPage();
  await page.goto(`${setup.rp.origin}/login${query}`);
  await page.waitForURL(new RegExp(`^${setup.idp.issuer}/interaction/`));
  await page.getByRole('button', { name: 'Se connecter avec ma carte CPS' }).click();
  return page;
}

describe('contactless login at cpsd-idp', () => {
  it('publishes the lower acr only when enabled', async () => {
    const meta = async (s: InProcessIdp): Promise<unknown> => ((await (await fetch(`${s.idp.issuer}/.well-known/openid-configuration`)).json()) as { acr_values_supported: unknown }).acr_values_supported;
    expect(await meta(enabled)).toEqual(['eidas1', LOW]);
    expect(await meta(disabled)).toEqual(['eidas1']);
  });

  it('logs in without a PIN for an application that asks for the lower acr (acr low, amr sc), a session another application cannot reuse', async () => {
    const page = await login(enabled, `?acr_values=${encodeURIComponent(LOW)}`);
    try {
      await page.waitForURL(new RegExp(`^${enabled.rp.origin}/callback`), { timeout: 20_000 });
      const tokens = enabled.rp.results.get(new URL(page.url()).searchParams.get('state') ?? '') as Tokens;
      expect(tokens.claims()).toMatchObject({ sub: '899700012349', acr: LOW, amr: ['sc'] });
      // No practice situations without the PIN.
      expect(tokens.claims()).not.toHaveProperty('SubjectRefPro');
      // The same browser, for an application that asks for eidas1: the contactless session is not reused.
      const next = await page.context().newPage();
      await next.goto(`${enabled.rp.origin}/login`);
      await next.waitForURL(new RegExp(`^${enabled.idp.issuer}/interaction/`));
      expect(await next.getByRole('button', { name: 'Se connecter avec ma carte CPS' }).count()).toBe(1);
    } finally {
      await page.context().close();
    }
  }, 60_000);

  it('refuses it for an application that asks for eidas1, with a clear message', async () => {
    const page = await login(enabled, '');
    try {
      await page.waitForFunction(() => document.getElementById('status')?.dataset.code === 'CERT_POLICY', undefined, { timeout: 20_000 });
      expect(await page.textContent('#status')).toBe('Cette carte ou ce mode de connexion n’est pas accepté ici (carte dans un lecteur à contact et code porteur exigés).');
      await page.screenshot({ path: join(OUTPUT, 'idp-contactless-refused.png') });
    } finally {
      await page.context().close();
    }
  }, 60_000);

  it('refuses it when the IdP does not enable it, even if the application asks', async () => {
    const page = await login(disabled, `?acr_values=${encodeURIComponent(LOW)}`);
    try {
      await page.waitForFunction(() => document.getElementById('status')?.dataset.code === 'CERT_POLICY', undefined, { timeout: 20_000 });
      expect(disabled.rp.results.size).toBe(0);
    } finally {
      await page.context().close();
    }
  }, 60_000);
});
