/**
 * A full card login over HTTP as the login page's browser drives it, without one (node:http, redirects
 * and cookie jar by hand): /auth → login page (with its nonce) → the card signs → login → resume → code
 * → /token.
 * Shared by `npm run bench:idp` and the failover test (test/trust/idp-failover.test.ts), which sends each
 * request to one of several instances (`route`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { openCard } from '../cards/atr-table.js';
import { CpsCard } from '../cards/card.js';
import { Pin } from '../cards/pin.js';
import { signedData } from '../pkcs/token.js';
import type { VirtualCpsCard } from '../sim/cps/card.js';
import { loadMaterial } from '../sim/cps/fixtures.js';

export interface BenchClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  grant_types: string[];
}

export const CLIENT: BenchClient = { client_id: 'bench', client_secret: 'bench-secret-0123456789abcdef0123456789', redirect_uris: ['http://localhost:1/cb'], grant_types: ['authorization_code', 'refresh_token'] };
export const STEPS = ['auth', 'page', 'card', 'login', 'resume', 'token'] as const;
export type Step = (typeof STEPS)[number];
export const noSteps = (): Record<Step, number> => Object.fromEntries(STEPS.map((s) => [s, 0])) as Record<Step, number>;

/** The cookies of one user agent; path-scoped as RFC 6265 says, expired ones (oidc-provider's clearing) dropped. */
export class Jar {
  readonly #cookies = new Map<string, { name: string; value: string; path: string }>();

  take(setCookie: readonly string[]): void {
    for (const line of setCookie) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let gone = false;
      for (const attribute of attributes) {
        const [k = '', v = ''] = attribute.split('=').map((s) => s.trim());
        const key = k.toLowerCase();
        if (key === 'path' && v.startsWith('/')) path = v;
        else if (key === 'expires' && Date.parse(v) <= Date.now()) gone = true;
        else if (key === 'max-age' && Number(v) <= 0) gone = true;
      }
      if (gone) this.#cookies.delete(`${name};${path}`);
      else this.#cookies.set(`${name};${path}`, { name, value, path });
    }
  }

  header(path: string): string {
    const match = (p: string): boolean => path === p || (path.startsWith(p) && (p.endsWith('/') || path[p.length] === '/'));
    return [...this.#cookies.values()].filter((c) => match(c.path)).map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

/**
 * node:http with keep-alive rather than fetch: fetch (undici's WHATWG layer) costs the load thread about
 * twice the CPU per request, and on this 2-core machine the load thread shares the cores with the IdP.
 */
const agent = new Agent({ keepAlive: true });

export function send(jar: Jar, url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; location: string; body: string }> {
  const target = new URL(url);
  const cookie = jar.header(target.pathname);
  const headers: Record<string, string> = { ...init.headers, ...(cookie ? { Cookie: cookie } : {}) };
  if (init.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(init.body));
  return new Promise((resolve, reject) => {
    const req = request(target, { method: init.method ?? 'GET', headers, agent }, (res) => {
      jar.take(res.headers['set-cookie'] ?? []);
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      // Always read the body: the keep-alive connection goes back to the pool only then.
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location ?? '', body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

export function expectStatus(what: string, got: { status: number; body: string }, status: number): void {
  if (got.status !== status) throw new Error(`${what}: HTTP ${got.status} (expected ${status}): ${got.body.slice(0, 300)}`);
}

/**
 * The holder's card as test/helpers/demo-tokens.ts uses it (open, PIN, INTERNAL AUTHENTICATE), but one
 * virtual card per workstation in flight, made once: making one parses its three PEM keys (about 1.5 ms,
 * that would crowd the load thread), which a card in a reader does not do per login.
 */
const AUTH_CERT = Buffer.from(loadMaterial('doctor').authCert).toString('base64');
export async function cardToken(card: VirtualCpsCard, origin: string, nonce: string): Promise<object> {
  const driver = openCard({ transmit: async (c) => card.transmit(c) }, card.atr);
  await driver.verifyPin(new Pin('1234'));
  const signature = await driver.authenticate(CpsCard.digestInfo('sha256', createHash('sha256').update(signedData(origin, nonce)).digest()));
  return { unverifiedCertificate: AUTH_CERT, algorithm: 'RS256', signature: Buffer.from(signature).toString('base64'), format: 'web-eid:1.0', appVersion: 'bench' };
}

export interface LoginOptions {
  /** The URL a request goes to (several instances behind one issuer: the instance of each request); as is by default. */
  route?: (url: string) => string;
  /** Exchange the code for tokens (step `token`); true by default. */
  exchange?: boolean;
}

export interface LoginResult {
  code: string;
  verifier: string;
  /** The token response (id_token, access_token, refresh_token…), when the code was exchanged. */
  tokens?: Record<string, unknown>;
}

/** One login from a fresh user agent; the time of each step in `steps`. */
export async function login(issuer: string, card: VirtualCpsCard, steps: Record<Step, number>, client: BenchClient = CLIENT, options: LoginOptions = {}): Promise<LoginResult> {
  const origin = new URL(issuer).origin;
  const route = options.route ?? ((url: string): string => url);
  const jar = new Jar();
  const redirectUri = client.redirect_uris[0] ?? '';
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(12).toString('base64url');
  let t = performance.now();
  const lap = (step: Step): void => {
    const now = performance.now();
    steps[step] += now - t;
    t = now;
  };

  const query = new URLSearchParams({
    client_id: client.client_id,
    response_type: 'code',
    scope: 'openid profile scope_all',
    redirect_uri: redirectUri,
    state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const auth = await send(jar, route(`${issuer}/auth?${query}`));
  expectStatus('/auth', auth, 303);
  const interaction = new URL(auth.location, issuer).href;
  lap('auth');

  const page = await send(jar, route(interaction));
  expectStatus('login page', page, 200);
  const csrf = /const CSRF = ("[^"]*");/.exec(page.body)?.[1];
  if (!csrf) throw new Error('login page: no CSRF token');
  const headers = { Origin: origin, 'X-CSRF': JSON.parse(csrf) as string, 'Content-Type': 'application/json' };
  // The page's first challenge comes with it (idp/interaction.ts): the click signs it without a request.
  const nonce = JSON.parse(/let NONCE = ("[^"]*"|null);/.exec(page.body)?.[1] ?? 'null') as string | null;
  if (!nonce) throw new Error('login page: no nonce');
  lap('page');

  const token = await cardToken(card, origin, nonce);
  lap('card');

  const done = await send(jar, route(`${interaction}/login`), { method: 'POST', headers, body: JSON.stringify({ token }) });
  expectStatus('login', done, 200);
  let next = new URL((JSON.parse(done.body) as { redirect: string }).redirect, issuer).href;
  lap('login');

  // /auth/<uid> → consent interaction (granted without a page, 303 itself) → /auth/<uid2> → redirect_uri.
  for (let hops = 0; !next.startsWith(redirectUri); hops++) {
    if (hops === 6) throw new Error(`resume: no redirect to the client after 6 hops (at ${next})`);
    const hop = await send(jar, route(next));
    if (hop.status !== 303 && hop.status !== 302) throw new Error(`resume ${next}: HTTP ${hop.status}: ${hop.body.slice(0, 300)}`);
    next = new URL(hop.location, next).href;
  }
  const back = new URL(next).searchParams;
  const code = back.get('code');
  if (!code || back.get('state') !== state) throw new Error(`resume: bad answer to the client: ${next}`);
  lap('resume');
  if (options.exchange === false) return { code, verifier };

  const basic = Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64');
  const tokens = await send(jar, route(`${issuer}/token`), {
    method: 'POST',
    headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }).toString(),
  });
  expectStatus('/token', tokens, 200);
  const got = JSON.parse(tokens.body) as Record<string, unknown>;
  if (!got.id_token || !got.access_token || !got.refresh_token) throw new Error(`/token: missing tokens: ${Object.keys(got).join(', ')}`);
  lap('token');
  return { code, verifier, tokens: got };
}

