/** cpsd-idp's login nonce: bound to its interaction, single use, replaced by a new one. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT, Jar, cardToken, expectStatus, send } from '../../bench/idp-login.js';
import { PACKAGE_ROOT, startIdp, type RunningIdp } from '../../idp/server.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';

describe('the login nonce', () => {
  let idp: RunningIdp;
  const audits: string[] = [];
  const der = (f: string): Uint8Array => new Uint8Array(readFileSync(join(PACKAGE_ROOT, 'fixtures', 'pki', f)));
  const options = {
    port: 0,
    clients: [{ ...CLIENT }],
    trust: { trustAnchors: [der('root.der')], intermediates: [der('intermediate.der')], crls: [der('fort-personnes.crl'), der('racine.crl')], revocation: 'crl' as const, crl: { fetch: false } },
    daemonPort: 1,
    allowHttpLocalhost: true,
    audit: (line: string) => void audits.push(line),
  };
  beforeAll(async () => {
    idp = await startIdp(options);
  });
  afterAll(async () => idp.close());

  /** A fresh interaction up to its login page: the URL, the page's nonce, a function that POSTs as the page does. */
  async function interaction(at: RunningIdp = idp): Promise<{ jar: Jar; url: string; pageNonce: string | null; post: (path: string, body: unknown) => Promise<{ status: number; body: string }> }> {
    const jar = new Jar();
    const query = new URLSearchParams({ client_id: CLIENT.client_id, response_type: 'code', scope: 'openid', redirect_uri: CLIENT.redirect_uris[0] ?? '', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
    const auth = await send(jar, `${at.issuer}/auth?${query}`);
    expectStatus('/auth', auth, 303);
    const url = new URL(auth.location, at.issuer).href;
    const page = await send(jar, url);
    const csrf = JSON.parse(/const CSRF = ("[^"]*");/.exec(page.body)?.[1] ?? '""') as string;
    const headers = { Origin: new URL(at.issuer).origin, 'X-CSRF': csrf, 'Content-Type': 'application/json' };
    const pageNonce = JSON.parse(/let NONCE = ("[^"]*"|null);/.exec(page.body)?.[1] ?? 'null') as string | null;
    return { jar, url, pageNonce, post: (path, body) => send(jar, `${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) }) };
  }
  const nonceOf = (answer: { body: string }): string => (JSON.parse(answer.body) as { nonce: string }).nonce;
  const errorOf = (answer: { body: string }): unknown => (JSON.parse(answer.body) as { error?: unknown }).error;

  it('comes with the login page: a token over it logs in, without a request for one', async () => {
    const card = fixtureCard('doctor');
    const { post, pageNonce } = await interaction();
    expect(pageNonce).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const token = await cardToken(card, new URL(idp.issuer).origin, pageNonce ?? '');
    expect((await post('/login', { token })).status).toBe(200);
  });

  it("is replaced by the one /nonce gives: a token over the page's is then refused", async () => {
    const card = fixtureCard('doctor');
    const { post, pageNonce } = await interaction();
    const fresh = nonceOf(await post('/nonce', {}));
    expect(fresh).not.toBe(pageNonce);
    const stale = await post('/login', { token: await cardToken(card, new URL(idp.issuer).origin, pageNonce ?? '') });
    expect([stale.status, errorOf(stale)]).toEqual([401, 'SIGNATURE_INVALID']);
  });

  it('counts against loginsPerMinute: past the limit the page comes without one, and /nonce answers 429', async () => {
    const limited = await startIdp({ ...options, loginsPerMinute: 1 });
    try {
      const first = await interaction(limited);
      expect(first.pageNonce).not.toBeNull();
      const second = await interaction(limited);
      expect(second.pageNonce).toBeNull();
      expect((await second.post('/nonce', {})).status).toBe(429);
    } finally {
      await limited.close();
    }
  });

  it('is good once: the same token sent again is refused (NONCE_INVALID)', async () => {
    const card = fixtureCard('doctor');
    const { post } = await interaction();
    const token = await cardToken(card, new URL(idp.issuer).origin, nonceOf(await post('/nonce', {})));
    expect((await post('/login', { token })).status).toBe(200);
    const again = await post('/login', { token });
    expect([again.status, errorOf(again)]).toEqual([401, 'NONCE_INVALID']);
  });

  it('is the last one asked: a token over an earlier nonce of the interaction is refused', async () => {
    const card = fixtureCard('doctor');
    const { post } = await interaction();
    const first = nonceOf(await post('/nonce', {}));
    await post('/nonce', {});
    const stale = await post('/login', { token: await cardToken(card, new URL(idp.issuer).origin, first) });
    expect(stale.status).toBe(401);
  });

  it("is bound to its interaction: another interaction's nonce is refused, and a login without one too", async () => {
    const card = fixtureCard('doctor');
    const a = await interaction();
    const b = await interaction();
    const token = await cardToken(card, new URL(idp.issuer).origin, nonceOf(await a.post('/nonce', {})));
    // b has its page's nonce: the card did not sign that one.
    const elsewhere = await b.post('/login', { token });
    expect([elsewhere.status, errorOf(elsewhere)]).toEqual([401, 'SIGNATURE_INVALID']);
    // b's nonce was taken by that attempt (single use): none is left for the next.
    const none = await b.post('/login', { token });
    expect([none.status, errorOf(none)]).toEqual([401, 'NONCE_INVALID']);
    expect((await a.post('/login', { token })).status).toBe(200);
  });
});
