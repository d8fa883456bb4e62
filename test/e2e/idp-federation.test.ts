/**
 * cpsd-idp delegating to an upstream OpenID Connect provider (Pro Santé Connect, for e-CPS holders
 * without a reader), in Chromium: the upstream is a second, real oidc-provider (test/helpers/upstream-op.ts)
 * whose login step is a form standing for the e-CPS app. cpsd-idp runs as production does,
 * `cpsd idp --config` with an "upstream" section; the relying party is the openid-client one.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatedJwks } from '../../idp/keys.js';
import { launchChromium } from '../helpers/browser.js';
import { freePort, run, type Run } from '../helpers/doc-app.js';
import { ROOT } from '../helpers/doc-blocks.js';
import { inPage, makeTrustDir, type RelyingParty, startRp, type Tokens } from '../helpers/idp-rp.js';
import { startUpstreamOp, type UpstreamOp } from '../helpers/upstream-op.js';

const OUTPUT = join(ROOT, 'test-output');
/** The e-CPS holder at the upstream, as PSC's UserInfo names her. */
const PSC_ACCOUNT = {
  SubjectNameID: '810101234567',
  given_name: 'CLAIRE',
  family_name: 'INFIRMIERE-TEST',
  preferred_username: '810101234567',
  SubjectRole: ['60^1.2.250.1.213.1.1.5.5'],
  SubjectRefPro: { codeCivilite: 'MME', exercices: [{ codeProfession: '60', nomDexercice: 'INFIRMIERE-TEST', prenomDexercice: 'CLAIRE', activities: [] }] },
};

let dir: string;
let upstream: UpstreamOp;
let idp: Run;
let issuer: string;
let rp: RelyingParty;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'cpsd-idp-federation-'));
  const [idpPort, rpPort] = [await freePort(), await freePort()];
  issuer = `http://localhost:${idpPort}`;
  upstream = await startUpstreamOp({ redirectUri: `${issuer}/upstream/callback`, accounts: { 'psc-sub-0001': PSC_ACCOUNT } });
  makeTrustDir(dir);
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify(generatedJwks()));
  const secret = 'federation-test-secret-0123456789abcdef';
  writeFileSync(
    join(dir, 'idp.json'),
    JSON.stringify({
      issuer,
      listen: { port: idpPort },
      clients: [{ client_id: 'intranet', client_secret: secret, redirect_uris: [`http://localhost:${rpPort}/callback`], grant_types: ['authorization_code', 'refresh_token'] }],
      keys: 'jwks.json',
      cookieKeys: ['federation-cookie-key-0123456789abcdef0'],
      trust: { dir: 'trust', revocation: 'crl', fetchCrls: false },
      upstream: { issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret, acrValues: 'eidas1', allowInsecureHttp: true },
      audit: 'audit.log',
    }),
  );
  idp = run(ROOT, ['dist/cli/cpsd.js', '--lang', 'en', 'idp', '--config', join(dir, 'idp.json')], {});
  await idp.waitFor('sessions in memory');
  rp = await startRp(rpPort, issuer, 'intranet', secret);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await rp?.close();
  idp?.child.kill('SIGTERM');
  await idp?.exited;
  await upstream?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The RP's /login to cpsd-idp's page, then its "e-CPS / Pro Santé Connect" button: the upstream's login form. */
async function toUpstream(page: Page, shots?: string): Promise<void> {
  await page.goto(`${rp.origin}/login`);
  await page.waitForURL(new RegExp(`^${issuer}/interaction/`));
  if (shots) await page.screenshot({ path: join(OUTPUT, `idp-${shots}-choice.png`) });
  await page.getByRole('button', { name: 'e-CPS / Pro Santé Connect' }).click();
  await page.waitForURL(new RegExp(`^${upstream.issuer}/interaction/`));
}

describe('cpsd-idp federated to an upstream provider', () => {
  let tokens: Tokens;

  it('offers both ways on its login page: the CPS card and e-CPS / Pro Santé Connect', async () => {
    await inPage(browser, async (page) => {
    await page.goto(`${rp.origin}/login`);
    await page.waitForURL(new RegExp(`^${issuer}/interaction/`));
    expect(await page.getByRole('button', { name: 'Se connecter avec ma carte CPS' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'e-CPS / Pro Santé Connect' }).count()).toBe(1);
    });
  }, 30_000);

  it('logs in through the upstream: the RP gets the upstream holder’s identity in PSC’s claims, acr eidas1', async () => {
    await inPage(browser, async (page) => {
    await toUpstream(page, 'federation');
    await page.fill('input[name=login]', 'psc-sub-0001');
    await page.screenshot({ path: join(OUTPUT, 'idp-federation-upstream.png') });
    await page.getByRole('button', { name: 'e-CPS' }).click();
    await page.waitForURL(new RegExp(`^${rp.origin}/callback`), { timeout: 20_000 });
    expect(await page.textContent('#rp')).toBe('RP: connecté CLAIRE INFIRMIERE-TEST');
    await page.screenshot({ path: join(OUTPUT, 'idp-federation-rp.png') });
    tokens = rp.results.get(new URL(page.url()).searchParams.get('state') ?? '') as Tokens;
    expect(tokens.claims()).toMatchObject({
      iss: issuer,
      sub: '810101234567',
      SubjectNameID: '810101234567',
      given_name: 'CLAIRE',
      family_name: 'INFIRMIERE-TEST',
      SubjectRole: ['60^1.2.250.1.213.1.1.5.5'],
      SubjectProfession: 'Infirmier',
      acr: 'eidas1',
      amr: ['mfa'],
    });
    // The upstream's SubjectRefPro is passed on in UserInfo, not in the id_token.
    expect(tokens.claims()).not.toHaveProperty('SubjectRefPro');
    });
  }, 60_000);

  it('answers UserInfo and refresh for the federated holder', async () => {
    expect(await oidc.fetchUserInfo(rp.config, tokens.access_token, '810101234567')).toMatchObject({ SubjectNameID: '810101234567', family_name: 'INFIRMIERE-TEST', SubjectRefPro: PSC_ACCOUNT.SubjectRefPro });
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token ?? '');
    expect(refreshed.claims()).toMatchObject({ sub: '810101234567', acr: 'eidas1' });
  });

  it('shows a clear page when the holder cancels at the upstream', async () => {
    await inPage(browser, async (page) => {
    await toUpstream(page);
    await page.getByRole('button', { name: 'Annuler' }).click();
    await page.waitForURL(new RegExp(`^${issuer}/upstream/callback`));
    expect(await page.textContent('#error-code')).toBe('UPSTREAM_REFUSED');
    expect(await page.textContent('#error')).toBe('Pro Santé Connect ne vous a pas connecté (annulation ou refus).');
    await page.screenshot({ path: join(OUTPUT, 'idp-federation-cancelled.png') });
    });
  }, 30_000);

  it('refuses a replayed upstream callback', async () => {
    await inPage(browser, async (page) => {
    let callback = '';
    page.on('request', (r) => {
      if (r.url().startsWith(`${issuer}/upstream/callback`)) callback = r.url();
    });
    await toUpstream(page);
    await page.fill('input[name=login]', 'psc-sub-0001');
    await page.getByRole('button', { name: 'e-CPS' }).click();
    await page.waitForURL(new RegExp(`^${rp.origin}/callback`), { timeout: 20_000 });
    expect(callback).not.toBe('');
    const again = await page.goto(callback);
    expect(again?.status()).toBe(401);
    expect(await page.textContent('#error-code')).toBe('UPSTREAM_STATE');
    });
  }, 60_000);

  it('starts and serves card logins while the upstream is unreachable, and says so at the e-CPS button', async () => {
    const deadPort = await freePort();
    const [port, rpPort] = [await freePort(), await freePort()];
    const other = `http://localhost:${port}`;
    const config = JSON.parse(readFileSync(join(dir, 'idp.json'), 'utf8')) as Record<string, unknown> & { upstream: Record<string, unknown> };
    const secret = 'federation-down-secret-0123456789abcdef';
    writeFileSync(
      join(dir, 'idp-down.json'),
      JSON.stringify({
        ...config,
        issuer: other,
        listen: { port },
        clients: [{ client_id: 'intranet', client_secret: secret, redirect_uris: [`http://localhost:${rpPort}/callback`] }],
        upstream: { ...config.upstream, issuer: `http://localhost:${deadPort}` },
        audit: 'audit-down.log',
      }),
    );
    const down = run(ROOT, ['dist/cli/cpsd.js', '--lang', 'en', 'idp', '--config', join(dir, 'idp-down.json')], {});
    await down.waitFor('sessions in memory');
    const downRp = await startRp(rpPort, other, 'intranet', secret);
    const context = await browser.newContext({ locale: 'fr-FR' });
    try {
      const page = await context.newPage();
      await page.goto(`${downRp.origin}/login`);
      await page.waitForURL(new RegExp(`^${other}/interaction/`));
      await page.getByRole('button', { name: 'e-CPS / Pro Santé Connect' }).click();
      await page.waitForFunction(() => document.getElementById('status')?.dataset.code === 'UPSTREAM_UNAVAILABLE', undefined, { timeout: 20_000 });
      expect(await page.textContent('#status')).toBe('Pro Santé Connect est injoignable pour l’instant : connectez-vous avec votre carte CPS, ou réessayez plus tard.');
      expect(await page.getByRole('button', { name: 'Se connecter avec ma carte CPS' }).count()).toBe(1);
      await page.screenshot({ path: join(OUTPUT, 'idp-federation-unreachable.png') });
    } finally {
      await context.close();
      await downRp.close();
      down.child.kill('SIGTERM');
      await down.exited;
    }
  }, 60_000);

  it('wrote audit lines for the federated logins and the refusals, in the configured file', () => {
    const lines = readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const line of lines) delete line.time;
    expect(lines).toEqual([
      { event: 'login', method: 'upstream', sub: '810101234567', client: 'intranet', acr: 'eidas1', amr: ['mfa'] },
      // The transaction names the interaction, so its application is known; not for a replayed callback.
      { event: 'login.refused', method: 'upstream', client: 'intranet', code: 'UPSTREAM_REFUSED' },
      { event: 'login', method: 'upstream', sub: '810101234567', client: 'intranet', acr: 'eidas1', amr: ['mfa'] },
      { event: 'login.refused', method: 'upstream', client: '', code: 'UPSTREAM_STATE' },
    ]);
  });
});
