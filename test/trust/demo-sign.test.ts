/**
 * The demo's "Signer un document" (examples/demo/server.ts) over its HTTP API, the in-process virtual card
 * as the workstation (a login token, then the signature sign.hash would make): the server prepares the
 * holder's report, finishes, verifies and serves the signed PDF; another holder's card is refused; the
 * sessions it keeps are bounded. The browser and the daemon's PIN window: test/e2e/browser.test.ts.
 */
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCUMENT_NAME, MAX_SESSIONS, SIGNED_NAME, startDemo, type SignatureResult } from '../../examples/demo/server.js';
import { verifyPdf } from '../../sign/index.js';
import { loadProfile } from '../../sim/cps/fixtures.js';
import { token } from '../helpers/demo-tokens.js';
import { INTERMEDIATE, ROOT_CA, virtualSigner } from '../helpers/sign.js';

let demo: { server: Server; port: number; origin: string };
beforeAll(async () => {
  demo = await startDemo({ port: 0, daemonPort: 1 });
});
afterAll(() => new Promise((r) => demo?.server.close(r)));

/** A browser session of the demo: its cookie and CSRF token, and the API calls the page makes. */
async function session(): Promise<{ headers: Record<string, string>; get: (path: string) => Promise<Response>; post: (path: string, body?: unknown) => Promise<{ status: number; body: Record<string, unknown> }> }> {
  const me = await fetch(`${demo.origin}/api/me`);
  const cookie = (me.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const { csrf } = (await me.json()) as { csrf: string };
  const headers = { Cookie: cookie, Origin: demo.origin, 'X-CSRF': csrf, 'Content-Type': 'application/json' };
  const post = async (path: string, body: unknown = {}): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${demo.origin}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return { headers, post, get: (path) => fetch(`${demo.origin}${path}`, { headers: { Cookie: cookie } }) };
}

async function loggedIn(profile: string): Promise<Awaited<ReturnType<typeof session>>> {
  const s = await session();
  const { nonce } = (await s.post('/api/nonce')).body as { nonce: string };
  expect((await s.post('/api/login', { token: await token(profile, demo.origin, nonce) })).status).toBe(200);
  return s;
}

/** prepare → the card signs the hash (as sign.hash does) → finish. */
async function signWith(s: Awaited<ReturnType<typeof session>>, profile: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const card = await virtualSigner(profile);
  const prepared = await s.post('/api/sign/prepare', { signerCertificate: Buffer.from(card.signCertificate).toString('base64') });
  expect(prepared.status).toBe(200);
  const signature = Buffer.from(await card.sign(Buffer.from(String(prepared.body.hash), 'base64url'))).toString('base64');
  return s.post('/api/sign/finish', { signature });
}

describe('the demo signs the holder’s consultation report', () => {
  it('prepares, finishes, verifies and serves the signed PDF, which names the holder', async () => {
    const holder = loadProfile('doctor').holder;
    const s = await loggedIn('doctor');
    const me = (await (await s.get('/api/me')).json()) as { document: { name: string; size: number; url: string } };
    expect(me.document).toMatchObject({ name: DOCUMENT_NAME, url: `/documents/${DOCUMENT_NAME}` });
    const original = new Uint8Array(await (await s.get(me.document.url)).arrayBuffer());
    expect(original.length).toBe(me.document.size);
    expect(Buffer.from(original).toString('latin1')).toContain('%PDF-');

    const finished = await signWith(s, 'doctor');
    expect(finished.status).toBe(200);
    const result = finished.body as unknown as SignatureResult;
    expect(result).toMatchObject({ signer: `${holder.firstName} ${holder.lastName}`, valid: true, coversWholeDocument: true, url: `/documents/${SIGNED_NAME}` });
    expect(Math.abs(Date.parse(String(result.signedAt)) - Date.now())).toBeLessThan(60_000);

    const download = await s.get(result.url);
    expect(download.headers.get('content-disposition')).toBe(`attachment; filename="${SIGNED_NAME}"`);
    const signed = new Uint8Array(await download.arrayBuffer());
    // An incremental update of the report the holder was shown.
    expect(Buffer.from(signed.subarray(0, original.length - 1)).equals(Buffer.from(original.subarray(0, original.length - 1)))).toBe(true);
    const [one, ...more] = await verifyPdf(signed, { trustAnchors: [ROOT_CA], intermediates: [INTERMEDIATE], revocation: 'off' });
    expect(more).toHaveLength(0);
    expect(one?.holder.surname).toBe(holder.lastName);
    // The page shows it again after a reload.
    expect(((await (await s.get('/api/me')).json()) as { signature: SignatureResult | null }).signature).toMatchObject({ signer: result.signer, valid: true });
  });

  it('refuses a signature by another holder’s card, a finish without prepare, and a forged signature', async () => {
    const s = await loggedIn('doctor');
    expect(await signWith(s, 'nurse')).toEqual({ status: 422, body: { error: 'OTHER_HOLDER' } });
    expect(await s.post('/api/sign/finish', { signature: 'AAAA' })).toEqual({ status: 409, body: { error: 'NOT_PREPARED' } });
    const card = await virtualSigner('doctor');
    expect((await s.post('/api/sign/prepare', { signerCertificate: Buffer.from(card.signCertificate).toString('base64') })).status).toBe(200);
    expect(await s.post('/api/sign/finish', { signature: Buffer.alloc(256, 1).toString('base64') })).toEqual({ status: 422, body: { error: 'SIGNING_STATE_INVALID' } });
    expect((await s.get(`/documents/${SIGNED_NAME}`)).status).toBe(404);
  });

  it('refuses to prepare without a login, and a cross-site request', async () => {
    const s = await session();
    expect(await s.post('/api/sign/prepare', { signerCertificate: 'AAAA' })).toEqual({ status: 401, body: { error: 'NOT_LOGGED_IN' } });
    const crossSite = await fetch(`${demo.origin}/api/sign/prepare`, { method: 'POST', headers: { ...s.headers, Origin: 'https://evil.example' }, body: '{}' });
    expect(crossSite.status).toBe(403);
  });

  it(`keeps at most ${MAX_SESSIONS} sessions: the oldest is forgotten`, async () => {
    const first = await loggedIn('doctor');
    expect(((await (await first.get('/api/me')).json()) as { holder: unknown }).holder).not.toBeNull();
    // Requests without a cookie: a new session each.
    for (let i = 0; i < MAX_SESSIONS; i++) await (await fetch(`${demo.origin}/api/me`)).arrayBuffer();
    expect(((await (await first.get('/api/me')).json()) as { holder: unknown }).holder).toBeNull();
  });
});
