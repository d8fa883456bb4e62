/**
 * cpsd-idp's tokens as relying parties expect them, judged by openid-client (the RP) and by decoding
 * the id_token: `acr`, `auth_time`, `sid` in every id_token (also without acr_values), `SubjectRefPro`
 * in UserInfo only (the id_token's size measured), refresh token rotation with reuse detection, the
 * previous access token retired by a refresh; and an audit line for every login outcome (success, wrong
 * PIN, cancelled, blocked card, revoked certificate) with the national id as the only personal data.
 * In process: the daemon over the virtual card, the IdP, the RP, Chromium. No pcscd.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { launchChromium } from '../helpers/browser.js';
import { ROOT } from '../helpers/doc-blocks.js';
import { cardLogin, startInProcessIdp, type InProcessIdp, type Tokens } from '../helpers/idp-rp.js';
import { DOCTOR_SUBJECT_REF_PRO } from '../helpers/psc-claims.js';

const OUTPUT = join(ROOT, 'test-output');
const SUB = '899700012349';
/** Personal data that must never reach an audit line: the doctor card's names and structure. */
const NEVER_IN_AUDIT = ['JEANNE', 'MEDECIN', 'HOPITAL'];
/** A PIN typed in these tests (1234, 9999) as a value of its own, or any member named like one. */
const PIN_VALUE = /"pin":|:"?(1234|9999)"?[,}]/i;

const setups: InProcessIdp[] = [];
let browser: Browser;
let doctor: InProcessIdp;

const start = async (profile: string): Promise<InProcessIdp> => {
  const made = await startInProcessIdp(fixtureCard(profile));
  setups.push(made);
  return made;
};

/** The JSON payload of a JWT, as any relying party decodes it. */
const payload = (jwt: string): Record<string, unknown> => JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

/** The audit lines (JSON) of `setup` that match `event`, once one has arrived (the page reports asynchronously). */
async function auditLines(setup: InProcessIdp, match: Record<string, unknown>): Promise<Record<string, unknown>[]> {
  const find = (): Record<string, unknown>[] =>
    setup.audit.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => Object.entries(match).every(([k, v]) => e[k] === v));
  for (let i = 0; i < 100 && find().length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  return find();
}

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  doctor = await start('doctor');
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const s of setups) await s.close();
  // Whatever happened above, no audit line carried a name or a PIN.
  const lines = setups.flatMap((s) => s.audit);
  for (const word of NEVER_IN_AUDIT) expect(lines.filter((l) => l.includes(word))).toEqual([]);
  expect(lines.filter((l) => PIN_VALUE.test(l))).toEqual([]);
});

describe('the id_token', () => {
  let tokens: Tokens;
  let before: number;

  it('has acr eidas1, auth_time and sid for an application that sent no acr_values, and no SubjectRefPro', async () => {
    before = Math.floor(Date.now() / 1000);
    const { context, page } = await cardLogin(browser, doctor.rp, doctor.idp.issuer, '1234', OUTPUT, 'tokens', undefined, '?acr_values=');
    try {
      await page.waitForURL(new RegExp(`^${doctor.rp.origin}/callback`), { timeout: 20_000 });
      const state = new URL(page.url()).searchParams.get('state') ?? '';
      // The request really went without acr_values.
      expect(doctor.rp.callbacks.get(state)).toBeDefined();
      tokens = doctor.rp.results.get(state) as Tokens;
      expect(tokens).toBeDefined();
    } finally {
      await context.close();
    }
    const claims = tokens.claims();
    expect(claims).toMatchObject({ sub: SUB, acr: 'eidas1', amr: ['sc', 'pin'], SubjectNameID: SUB, SubjectOrganization: 'HOPITAL GENERIQUE TEST' });
    expect(claims?.auth_time).toBeGreaterThanOrEqual(before);
    expect(claims?.auth_time).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(typeof claims?.sid).toBe('string');
    expect(claims).not.toHaveProperty('SubjectRefPro');
  }, 60_000);

  it('gives SubjectRefPro in UserInfo; the id_token stays small (measured)', async () => {
    const info = await oidc.fetchUserInfo(doctor.rp.config, tokens.access_token, SUB);
    expect(info.SubjectRefPro).toEqual(DOCTOR_SUBJECT_REF_PRO);
    const size = (tokens.id_token ?? '').length;
    // What the id_token was when it carried SubjectRefPro: its member, base64url-encoded, added to the payload.
    const member = Buffer.from(`,"SubjectRefPro":${JSON.stringify(info.SubjectRefPro)}`).toString('base64url').length;
    process.stdout.write(`id_token: ${size} bytes (with SubjectRefPro it would be ${size + member} bytes)\n`);
    expect(size).toBeLessThan(2048);
    expect(size + member).toBeGreaterThan(3000);
    expect(payload(tokens.id_token ?? '')).not.toHaveProperty('SubjectRefPro');
  });

  it('keeps acr, auth_time and sid in the id_token of a refresh; rotates the refresh token; retires the previous access token', async () => {
    const first = tokens;
    const refreshed = await oidc.refreshTokenGrant(doctor.rp.config, first.refresh_token ?? '');
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(first.refresh_token);
    expect(refreshed.claims()).toMatchObject({ sub: SUB, acr: 'eidas1', auth_time: first.claims()?.auth_time, sid: first.claims()?.sid });
    expect(await oidc.fetchUserInfo(doctor.rp.config, refreshed.access_token, SUB)).toMatchObject({ sub: SUB });
    await expect(oidc.fetchUserInfo(doctor.rp.config, first.access_token, SUB)).rejects.toMatchObject({ status: 401 });
    tokens = refreshed;
    // The old refresh token, presented again (a copy an attacker kept): refused, and the whole grant goes.
    await expect(oidc.refreshTokenGrant(doctor.rp.config, first.refresh_token ?? '')).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(doctor.rp.config, refreshed.refresh_token ?? '')).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.fetchUserInfo(doctor.rp.config, refreshed.access_token, SUB)).rejects.toMatchObject({ status: 401 });
  });
});

describe('audit lines for every login outcome', () => {
  it('writes the login with the national id, the application and the assurance', async () => {
    const [line] = await auditLines(doctor, { event: 'login', method: 'card' });
    expect(line).toMatchObject({ event: 'login', method: 'card', sub: SUB, client: 'ehr', acr: 'eidas1', amr: ['sc', 'pin'] });
  });

  it('writes a wrong PIN (with the tries left, never the PIN)', async () => {
    const { context, page } = await cardLogin(browser, doctor.rp, doctor.idp.issuer, '9999', OUTPUT, 'audit-wrong-pin');
    try {
      await page.waitForFunction(() => document.getElementById('status')?.dataset.code === 'PIN_INCORRECT', undefined, { timeout: 20_000 });
      const [line] = await auditLines(doctor, { event: 'login.failed', code: 'PIN_INCORRECT' });
      expect(line).toMatchObject({ event: 'login.failed', method: 'card', client: 'ehr', code: 'PIN_INCORRECT', reportedBy: 'page', triesLeft: 2 });
    } finally {
      await context.close();
    }
  }, 60_000);

  it('writes a login cancelled in the PIN window', async () => {
    const context = await browser.newContext({ locale: 'fr-FR' });
    try {
      const page = await context.newPage();
      await page.goto(`${doctor.rp.origin}/login`);
      await page.waitForURL(new RegExp(`^${doctor.idp.issuer}/interaction/`));
      const popup = context.waitForEvent('page');
      await page.getByRole('button', { name: 'Se connecter avec ma carte CPS' }).click();
      const pinPage = await popup;
      await pinPage.waitForURL(/\/pin\/[0-9a-f]{32}$/);
      await pinPage.click('button[name=cancel]');
      await page.waitForFunction(() => document.getElementById('status')?.dataset.code === 'USER_CANCELLED', undefined, { timeout: 20_000 });
      const [line] = await auditLines(doctor, { event: 'login.failed', code: 'USER_CANCELLED' });
      expect(line).toMatchObject({ method: 'card', client: 'ehr', reportedBy: 'page' });
    } finally {
      await context.close();
    }
  }, 60_000);

  it('writes a blocked card', async () => {
    const blocked = await start('pin-blocked');
    const context = await browser.newContext({ locale: 'fr-FR' });
    try {
      const page = await context.newPage();
      await page.goto(`${blocked.rp.origin}/login`);
      await page.waitForURL(new RegExp(`^${blocked.idp.issuer}/interaction/`));
      await page.getByRole('button', { name: 'Se connecter avec ma carte CPS' }).click();
      await page.waitForFunction(() => document.getElementById('status')?.dataset.code === 'PIN_BLOCKED', undefined, { timeout: 20_000 });
      const [line] = await auditLines(blocked, { event: 'login.failed', code: 'PIN_BLOCKED' });
      expect(line).toMatchObject({ method: 'card', client: 'ehr', reportedBy: 'page' });
    } finally {
      await context.close();
    }
  }, 60_000);

  it('writes a revoked certificate (the IdP’s own verdict)', async () => {
    const revoked = await start('revoked');
    const { context, page } = await cardLogin(browser, revoked.rp, revoked.idp.issuer, '1234', OUTPUT, 'audit-revoked');
    try {
      await page.waitForFunction(() => document.getElementById('status')?.dataset.code === 'CERT_REVOKED', undefined, { timeout: 20_000 });
      const [line] = await auditLines(revoked, { event: 'login.refused', code: 'CERT_REVOKED' });
      expect(line).toMatchObject({ method: 'card', client: 'ehr' });
      // The server's refusal is not reported a second time by the page.
      await new Promise((r) => setTimeout(r, 1000));
      expect(revoked.audit.filter((l) => l.includes('"login.failed"'))).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
