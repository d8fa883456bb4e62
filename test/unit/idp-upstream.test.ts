/**
 * idp/upstream.ts against a real upstream OpenID Connect provider (test/helpers/upstream-op.ts: a second
 * oidc-provider standing in for Pro Santé Connect), over HTTP on 127.0.0.1, no browser: begin() → the
 * OP's login form → its redirect to our callback → complete(). The expected claims are written here from
 * the account's data, not computed by the mapping under test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryKeyValueStore } from '../../idp/store.js';
import { Upstream, UpstreamError, type TransactionStore, type UpstreamConfig } from '../../idp/upstream.js';
import { browse, startUpstreamOp, type UpstreamOp } from '../helpers/upstream-op.js';

const REDIRECT_URI = 'http://localhost:9/upstream/callback';
const UID = 'interaction-uid-1234';

/** A nurse logging in with the e-CPS app, shaped like PSC's UserInfo (SubjectRole with PSC's OID). */
const NURSE = {
  SubjectNameID: '810101234567',
  preferred_username: '810101234567',
  given_name: 'CAMILLE',
  family_name: 'INFIRMIERE-TEST',
  SubjectRole: ['60^1.2.250.1.213.1.1.5.5'],
  SubjectOrganization: 'CABINET INFIRMIER TEST',
  Secteur_Activite: 'SA07^1.2.250.1.71.4.2.4',
  SubjectRefPro: { codeCivilite: 'MME', exercices: [{ codeProfession: '60', activities: [{ codeModeExercice: 'L', raisonSocialeSite: 'CABINET INFIRMIER TEST' }] }] },
};
/** PSC's sandbox has answered a sub that is not the national id: SubjectNameID still is. */
const OTHER_SUB = 'f:550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd:810109876543';
const PHARMACIST = { SubjectNameID: '810109876543', given_name: 'LOUIS', family_name: 'PHARMACIEN-TEST', SubjectRole: ['21^1.2.250.1.71.1.2.7'] };
const NAMELESS = { given_name: 'SANS', family_name: 'IDENTIFIANT' };

let op: UpstreamOp;

async function upstream(store: TransactionStore = new MemoryKeyValueStore(), overrides: Partial<UpstreamConfig> = {}): Promise<Upstream> {
  return Upstream.discover(
    { issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret, redirectUri: REDIRECT_URI, acrValues: 'eidas1', allowInsecureHttp: true, ...overrides },
    store,
  );
}

async function failure(promise: Promise<unknown>): Promise<UpstreamError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UpstreamError);
  return error as UpstreamError;
}

/** Changes one field of every transaction the store hands back (as a tampered or mixed-up record would). */
function tampering(field: 'nonce' | 'codeVerifier'): TransactionStore {
  const inner = new MemoryKeyValueStore();
  return {
    put: (key, value, ttl) => inner.put(key, value, ttl),
    take: async (key) => {
      const value = await inner.take(key);
      if (value === undefined) return undefined;
      const transaction = JSON.parse(value) as Record<string, unknown>;
      expect(typeof transaction[field]).toBe('string');
      return JSON.stringify({ ...transaction, [field]: `${String(transaction[field])}x` });
    },
  };
}

beforeAll(async () => {
  op = await startUpstreamOp({ redirectUri: REDIRECT_URI, accounts: { '810101234567': NURSE, [OTHER_SUB]: PHARMACIST, nameless: NAMELESS } });
});

afterAll(async () => {
  await op?.close();
});

describe('Upstream (federation to a PSC-like provider)', () => {
  it('sends the holder to the upstream with code + PKCE S256, state, nonce, scope_all and acr_values', async () => {
    const url = await (await upstream()).begin(UID);
    expect(url.origin + url.pathname).toBe(`${op.issuer}/auth`);
    const p = url.searchParams;
    expect(p.get('response_type')).toBe('code');
    expect(p.get('client_id')).toBe(op.clientId);
    expect(p.get('redirect_uri')).toBe(REDIRECT_URI);
    expect(p.get('scope')).toBe('openid scope_all');
    expect(p.get('acr_values')).toBe('eidas1');
    expect(p.get('code_challenge_method')).toBe('S256');
    expect(p.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(p.get('state')).toMatch(/^[\w-]{32,}$/);
    expect(p.get('nonce')).toMatch(/^[\w-]{32,}$/);
    // Two logins, two transactions.
    const again = await (await upstream()).begin(UID);
    expect(again.searchParams.get('state')).not.toBe(p.get('state'));
    expect(again.searchParams.get('nonce')).not.toBe(p.get('nonce'));
  });

  it('maps the upstream login to the claims of a card login, keeping acr and PSC practice data', async () => {
    const up = await upstream();
    const callback = await browse(await up.begin(UID), REDIRECT_URI, { login: '810101234567' });
    expect(callback.searchParams.get('code')).toBeTruthy();
    const login = await up.complete(callback);
    expect(login).toEqual({
      interactionUid: UID,
      acr: 'eidas1',
      amr: ['mfa'],
      claims: {
        sub: '810101234567',
        SubjectNameID: '810101234567',
        preferred_username: '810101234567',
        given_name: 'CAMILLE',
        family_name: 'INFIRMIERE-TEST',
        SubjectRole: ['60^1.2.250.1.213.1.1.5.5'],
        SubjectProfession: 'Infirmier',
        SubjectIdKind: 'RPPS',
        SubjectRPPS: '10101234567',
        SubjectOrganization: 'CABINET INFIRMIER TEST',
        Secteur_Activite: 'SA07^1.2.250.1.71.4.2.4',
        SubjectRefPro: { codeCivilite: 'MME', exercices: [{ codeProfession: '60', activities: [{ codeModeExercice: 'L', raisonSocialeSite: 'CABINET INFIRMIER TEST' }] }] },
      },
    });
  });

  it("takes the national id from SubjectNameID, not the upstream's sub, and passes the upstream's amr through", async () => {
    const up = await upstream();
    const login = await up.complete(await browse(await up.begin(UID), REDIRECT_URI, { login: OTHER_SUB, amr: ['pin', 'mfa'] }));
    expect(login.amr).toEqual(['pin', 'mfa']);
    expect(login.claims).toEqual({
      sub: '810109876543',
      SubjectNameID: '810109876543',
      preferred_username: '810109876543',
      given_name: 'LOUIS',
      family_name: 'PHARMACIEN-TEST',
      SubjectRole: ['21^1.2.250.1.71.1.2.7'],
      SubjectProfession: 'Pharmacien',
      SubjectIdKind: 'RPPS',
      SubjectRPPS: '10109876543',
    });
  });

  it('completes a callback seen behind a proxy (another origin): redirect_uri stays the registered one', async () => {
    const up = await upstream();
    const callback = await browse(await up.begin(UID), REDIRECT_URI, { login: '810101234567' });
    const internal = new URL(`http://127.0.0.1:8080/upstream/callback${callback.search}`);
    expect((await up.complete(internal)).claims.sub).toBe('810101234567');
  });

  it('refuses a replayed callback: the transaction is single use', async () => {
    const up = await upstream();
    const callback = await browse(await up.begin(UID), REDIRECT_URI, { login: '810101234567' });
    await up.complete(callback);
    const error = await failure(up.complete(callback));
    expect(error.code).toBe('UPSTREAM_STATE');
  });

  it('refuses a callback whose state is not one it issued, or has none', async () => {
    const up = await upstream();
    const callback = await browse(await up.begin(UID), REDIRECT_URI, { login: '810101234567' });
    const wrong = new URL(callback);
    wrong.searchParams.set('state', `${callback.searchParams.get('state') ?? ''}x`);
    expect((await failure(up.complete(wrong))).code).toBe('UPSTREAM_STATE');
    const none = new URL(callback);
    none.searchParams.delete('state');
    expect((await failure(up.complete(none))).code).toBe('UPSTREAM_STATE');
    // Another instance's store (no shared Redis) does not know the state either.
    expect((await failure((await upstream()).complete(callback))).code).toBe('UPSTREAM_STATE');
    // The right callback still completes: the wrong ones consumed nothing.
    expect((await up.complete(callback)).interactionUid).toBe(UID);
  });

  it("maps the upstream's error=access_denied to UPSTREAM_REFUSED, with its code and our interaction", async () => {
    const up = await upstream();
    const callback = await browse(await up.begin(UID), REDIRECT_URI, { abort: true });
    expect(callback.searchParams.get('error')).toBe('access_denied');
    const error = await failure(up.complete(callback));
    expect(error.code).toBe('UPSTREAM_REFUSED');
    expect(error.upstreamError).toBe('access_denied');
    expect(error.interactionUid).toBe(UID);
  });

  it("checks the id_token's nonce (openid-client): a transaction with another nonce fails", async () => {
    const up = await upstream(tampering('nonce'));
    const error = await failure(up.complete(await browse(await up.begin(UID), REDIRECT_URI, { login: '810101234567' })));
    expect(error.code).toBe('UPSTREAM_INVALID');
    expect(error.interactionUid).toBe(UID);
    expect(String((error.cause as Error).message)).toMatch(/JWT claim/);
  });

  it('sends the PKCE verifier: another verifier is refused by the upstream (invalid_grant)', async () => {
    const up = await upstream(tampering('codeVerifier'));
    const error = await failure(up.complete(await browse(await up.begin(UID), REDIRECT_URI, { login: '810101234567' })));
    expect(error.code).toBe('UPSTREAM_REFUSED');
    expect(error.upstreamError).toBe('invalid_grant');
  });

  it('refuses an acr other than the one asked for', async () => {
    const up = await upstream(undefined, { acrValues: 'eidas2' });
    const error = await failure(up.complete(await browse(await up.begin(UID), REDIRECT_URI, { login: '810101234567' })));
    expect(error.code).toBe('UPSTREAM_CLAIMS');
    expect(error.message).toContain('eidas1');
  });

  it('refuses a UserInfo without SubjectNameID', async () => {
    const up = await upstream();
    const error = await failure(up.complete(await browse(await up.begin(UID), REDIRECT_URI, { login: 'nameless' })));
    expect(error.code).toBe('UPSTREAM_CLAIMS');
    expect(error.message).toContain('SubjectNameID');
    expect(error.interactionUid).toBe(UID);
  });

  it('refuses an http:// upstream unless allowInsecureHttp', async () => {
    const error = await failure(upstream(undefined, { allowInsecureHttp: false }));
    expect(error.code).toBe('UPSTREAM_UNAVAILABLE');
  });
});

describe('MemoryKeyValueStore (the upstream transactions)', () => {
  it('gives a record once, and not after its lifetime', async () => {
    const store = new MemoryKeyValueStore();
    await store.put('a', '1', 60);
    expect(await store.take('a')).toBe('1');
    expect(await store.take('a')).toBeUndefined();
    await store.put('b', '2', 0.05);
    await new Promise((r) => setTimeout(r, 80));
    expect(await store.take('b')).toBeUndefined();
  });
});
