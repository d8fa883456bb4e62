/**
 * CIBA end to end (docs/idp.md, "CIBA"): openid-client as the application without a browser (a thick
 * client in poll mode, a tablet in ping mode), cpsd-idp with CIBA on, and the "workstation": the cpsd
 * daemon over the in-process virtual card (pulled and inserted by the test), linked to the IdP by
 * daemon/idp-link.ts. Its PIN windows, which the daemon opens itself, are opened in Chromium here and the
 * PIN typed there. Screenshots: test-output/ciba-*.png. No pcscd: everything runs in this process.
 */
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest, type Server as HttpsServer } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCard } from '../../cards/atr-table.js';
import { InProcessBackend } from '../../cards/backends.js';
import { CpsCard } from '../../cards/card.js';
import { Pin } from '../../cards/pin.js';
import { DEFAULTS } from '../../daemon/config.js';
import { IdpLink } from '../../daemon/idp-link.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { startIdp, type RunningIdp } from '../../idp/server.js';
import { jwkThumbprint, registrationNonce, requestNonce } from '../../pkcs/ciba-challenge.js';
import { signedData } from '../../pkcs/token.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { launchChromium } from '../helpers/browser.js';
import { freePort, run } from '../helpers/doc-app.js';
import { ROOT } from '../helpers/doc-blocks.js';

const OUTPUT = join(ROOT, 'test-output');
const SUB = '899700012349';
const SCOPE = 'openid profile scope_all';
const SECRET = 'ciba-test-secret-0123456789abcdef';
const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';
/** A wrong PIN no other string of the test contains: looked for in every log and audit line. */
const WRONG_PIN = '9876';

const der = (name: string): Uint8Array => new Uint8Array(readFileSync(join(ROOT, 'fixtures', 'pki', name)));

let browser: Browser;
let card: ReturnType<typeof fixtureCard>;
let backend: InProcessBackend;
let daemon: CpsdServer;
let idp: RunningIdp;
let link: IdpLink;
let notify: HttpsServer;
let tmp: string;
let poll: oidc.Configuration;
let ping: oidc.Configuration;
const logs: string[] = [];
const audit: string[] = [];
/** The ping notifications the tablet's endpoint received: bearer token and body. */
const pings: { bearer: string; authReqId: string }[] = [];
const deviceSockets: Duplex[] = [];

/** The PIN windows the daemon asked to open, in order; `nextWindow` waits for the next one. */
const windows: string[] = [];
const waiting: ((url: string) => void)[] = [];
function nextWindow(): Promise<string> {
  const ready = windows.shift();
  return ready !== undefined ? Promise.resolve(ready) : new Promise((resolve) => waiting.push(resolve));
}

async function openWindow(url: string): Promise<Page> {
  const context = await browser.newContext({ locale: 'fr-FR' });
  const page = await context.newPage();
  await page.goto(url);
  return page;
}

async function waitFor(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a CIBA request and returns it with a 1 s polling interval (oidc-provider sends none: 5 s otherwise). */
async function start(config: oidc.Configuration, params: Record<string, string> = {}): Promise<oidc.BackchannelAuthenticationResponse> {
  const response = await oidc.initiateBackchannelAuthentication(config, { scope: SCOPE, login_hint: SUB, binding_message: 'LIT 12 B', ...params });
  return { ...response, interval: 1 };
}

/** The OAuth error of a failing promise (openid-client's ResponseBodyError). */
async function oauthError(promise: Promise<unknown>): Promise<{ error: string; description: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof oidc.ResponseBodyError) return { error: error.error, description: error.error_description ?? '' };
    throw error;
  }
  throw new Error('no error');
}

/** A token of the card `other` for the IdP's origin, its PIN verified directly (another device than the daemon). */
async function cardToken(other: ReturnType<typeof fixtureCard>, nonce: string): Promise<object> {
  const driver = openCard({ transmit: async (c) => other.transmit(c) }, other.atr);
  await driver.verifyPin(new Pin('1234'));
  const signature = await driver.authenticate(CpsCard.digestInfo('sha256', createHash('sha256').update(signedData(new URL(idp.issuer).origin, nonce)).digest()));
  return { unverifiedCertificate: Buffer.from(der('cards/doctor/auth.der')).toString('base64'), algorithm: 'RS256', signature: Buffer.from(signature).toString('base64'), format: 'web-eid:1.0', appVersion: 'test' };
}

async function typePin(page: Page, pin: string, shot?: string): Promise<void> {
  await page.fill('input[name=pin]', pin);
  if (shot) await page.screenshot({ path: join(OUTPUT, shot) });
  await page.click('button[type=submit]:not([name])');
}

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  tmp = mkdtempSync(join(tmpdir(), 'cpsd-ciba-'));
  // The tablet's notification endpoint: https (oidc-provider requires it), a certificate of our own.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(tmp, 'key.pem'), '-out', join(tmp, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
  const ca = readFileSync(join(tmp, 'cert.pem'));
  notify = createHttpsServer({ key: readFileSync(join(tmp, 'key.pem')), cert: ca }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      pings.push({ bearer: String(req.headers.authorization ?? ''), authReqId: String((JSON.parse(body) as { auth_req_id?: string }).auth_req_id) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => notify.listen(0, '127.0.0.1', resolve));
  const notifyPort = (notify.address() as { port: number }).port;

  const idpPort = await freePort();
  const issuer = `http://localhost:${idpPort}`;
  card = fixtureCard('doctor');
  backend = new InProcessBackend(card);
  const log = new Logger('debug', (line) => void logs.push(line));
  daemon = new CpsdServer({ ...DEFAULTS, port: 0, allowHttpLocalhost: true, allowedOrigins: [issuer], idp: issuer }, backend, log);
  await daemon.listen();
  idp = await startIdp({
    port: idpPort,
    clients: [
      { client_id: 'thick', client_name: 'Dossier patient (client lourd)', client_secret: SECRET, grant_types: [CIBA_GRANT], response_types: [], redirect_uris: [], backchannel_token_delivery_mode: 'poll' },
      {
        client_id: 'tablet',
        client_name: 'Tablette de soins',
        client_secret: SECRET,
        grant_types: [CIBA_GRANT],
        response_types: [],
        redirect_uris: [],
        backchannel_token_delivery_mode: 'ping',
        backchannel_client_notification_endpoint: `https://localhost:${notifyPort}/ciba-notify`,
      },
    ],
    trust: { trustAnchors: [der('root.der')], intermediates: [der('intermediate.der')], crls: [der('fort-personnes.crl'), der('racine.crl')], revocation: 'crl', crl: { fetch: false } },
    daemonPort: daemon.port,
    allowHttpLocalhost: true,
    ciba: true,
    audit: (line) => audit.push(line),
    // oidc-provider's pings, to our endpoint on localhost with its own certificate.
    fetch: (url, init) =>
      new Promise<Response>((resolve, reject) => {
        const headers: Record<string, string> = {};
        new Headers(init?.headers as HeadersInit).forEach((value, name) => (headers[name] = value));
        const req = httpsRequest(String(url), { method: init?.method ?? 'POST', headers, ca }, (res) => {
          res.resume();
          res.on('end', () => resolve(new Response(null, { status: res.statusCode ?? 500 })));
        });
        req.on('error', reject);
        req.end(typeof init?.body === 'string' ? init.body : undefined);
      }),
  });
  // The IdP's end of each device link, to cut it as a network failure would.
  idp.server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    if (req.url === '/ciba/device' && req.headers.origin === undefined) deviceSockets.push(socket);
  });
  const discover = (id: string): Promise<oidc.Configuration> => oidc.discovery(new URL(issuer), id, SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
  [poll, ping] = [await discover('thick'), await discover('tablet')];
  link = new IdpLink({
    idp: issuer,
    guard: daemon.guard,
    sessions: daemon.sessions,
    log,
    openWindow: (url) => {
      const waiter = waiting.shift();
      if (waiter) waiter(url);
      else windows.push(url);
    },
  });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  link?.close();
  await browser?.close();
  await idp?.close();
  await daemon?.close();
  await daemon?.sessions.close();
  notify?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('CIBA through the workstation’s daemon', () => {
  it('publishes the backchannel endpoint and the poll and ping modes in its discovery', () => {
    const meta = poll.serverMetadata();
    expect(meta.backchannel_authentication_endpoint).toMatch(/\/backchannel$/);
    expect(meta.backchannel_token_delivery_modes_supported).toEqual(['poll', 'ping']);
    expect(meta.grant_types_supported).toContain(CIBA_GRANT);
  });

  it('answers unknown_user_id for a holder who never registered a workstation', async () => {
    const { error, description } = await oauthError(start(poll));
    expect(error).toBe('unknown_user_id');
    expect(description).toMatch(/^CIBA_UNKNOWN_HOLDER: /);
  });

  it('registers the workstation once the holder typed the PIN in the daemon’s window (card signature checked by the IdP)', async () => {
    link.start();
    const page = await openWindow(await nextWindow());
    expect(await page.getAttribute('#purpose', 'data-ciba')).toBe('register');
    expect(await page.textContent('#purpose')).toContain('enregistrer ce poste');
    await typePin(page, '1234', 'ciba-register.png');
    await waitFor(() => link.registered.sub === SUB);
    await page.context().close();
    expect(audit.map((l) => JSON.parse(l) as Record<string, unknown>)).toContainEqual(expect.objectContaining({ event: 'ciba.registered', sub: SUB }));
  });

  it('poll mode: the PIN window names the application and the binding message; the PIN gives the thick client its tokens', async () => {
    const request = await start(poll, { binding_message: 'LIT 12 B' });
    const page = await openWindow(await nextWindow());
    expect(await page.textContent('#application')).toBe('Dossier patient (client lourd)');
    expect(await page.textContent('#binding-message')).toBe('LIT 12 B');
    await typePin(page, '1234', 'ciba-poll-pin.png');
    const tokens = await oidc.pollBackchannelAuthenticationGrant(poll, request);
    await page.context().close();
    expect(tokens.claims()).toMatchObject({ sub: SUB, SubjectNameID: SUB, given_name: 'JEANNE', family_name: 'MEDECIN-TEST', aud: 'thick', acr: 'eidas1', amr: ['sc', 'pin'] });
    expect(await oidc.fetchUserInfo(poll, tokens.access_token, SUB)).toMatchObject({ sub: SUB, SubjectNameID: SUB });
  }, 30_000);

  it('ping mode: the IdP pings the tablet’s endpoint with its notification token, then the tablet gets its tokens', async () => {
    const request = await start(ping, { binding_message: 'CHAMBRE 4', client_notification_token: 'tablet-notification-token-1' });
    const page = await openWindow(await nextWindow());
    expect(await page.textContent('#application')).toBe('Tablette de soins');
    expect(await page.textContent('#binding-message')).toBe('CHAMBRE 4');
    await typePin(page, '1234', 'ciba-ping-pin.png');
    await waitFor(() => pings.some((p) => p.authReqId === request.auth_req_id));
    await page.context().close();
    expect(pings.find((p) => p.authReqId === request.auth_req_id)?.bearer).toBe('Bearer tablet-notification-token-1');
    const tokens = await oidc.pollBackchannelAuthenticationGrant(ping, request);
    expect(tokens.claims()).toMatchObject({ sub: SUB, aud: 'tablet', acr: 'eidas1' });
  }, 30_000);

  it('refuses a request without a binding_message (invalid_binding_message)', async () => {
    const { error } = await oauthError(oidc.initiateBackchannelAuthentication(poll, { scope: SCOPE, login_hint: SUB }));
    expect(error).toBe('invalid_binding_message');
  });

  it('the person cancels in the PIN window: access_denied (CIBA_REFUSED, USER_CANCELLED)', async () => {
    const request = await start(poll);
    const page = await openWindow(await nextWindow());
    await page.click('button[name=cancel]');
    const { error, description } = await oauthError(oidc.pollBackchannelAuthenticationGrant(poll, request));
    await page.context().close();
    expect(error).toBe('access_denied');
    expect(description).toMatch(/^CIBA_REFUSED \(USER_CANCELLED\): /);
  }, 30_000);

  it('the person closes the PIN window: access_denied (CIBA_REFUSED, USER_CANCELLED)', async () => {
    const request = await start(poll);
    const page = await openWindow(await nextWindow());
    await page.waitForTimeout(300); // its event stream open
    await page.context().close();
    const { error, description } = await oauthError(oidc.pollBackchannelAuthenticationGrant(poll, request));
    expect(error).toBe('access_denied');
    expect(description).toMatch(/^CIBA_REFUSED \(USER_CANCELLED\): /);
  }, 30_000);

  it('a wrong PIN: access_denied (CIBA_FAILED, PIN_INCORRECT), and the PIN is in no log or audit line', async () => {
    const request = await start(poll);
    const page = await openWindow(await nextWindow());
    await typePin(page, WRONG_PIN);
    const { error, description } = await oauthError(oidc.pollBackchannelAuthenticationGrant(poll, request));
    await page.context().close();
    expect(error).toBe('access_denied');
    expect(description).toMatch(/^CIBA_FAILED \(PIN_INCORRECT\): /);
    // As a number of its own (a port or a serial may contain those digits).
    expect([...logs, ...audit].filter((l) => new RegExp(`(?<![0-9])${WRONG_PIN}(?![0-9])`).test(l))).toEqual([]);
  }, 30_000);

  it('expired: no PIN before requested_expiry; the client gets expired_token and the window says the time is up', async () => {
    const request = await start(poll, { requested_expiry: '4' });
    const page = await openWindow(await nextWindow());
    await page.waitForFunction(() => (document.getElementById('result')?.textContent ?? '').includes('Délai dépassé'), undefined, { timeout: 10_000 });
    await page.screenshot({ path: join(OUTPUT, 'ciba-expired.png') });
    await page.context().close();
    const { error } = await oauthError(oidc.pollBackchannelAuthenticationGrant(poll, request));
    expect(error).toBe('expired_token');
  }, 30_000);

  it('the card removed during the PIN entry: access_denied (CIBA_FAILED, CARD_ABSENT)', async () => {
    const request = await start(poll);
    const page = await openWindow(await nextWindow());
    backend.remove();
    const { error, description } = await oauthError(oidc.pollBackchannelAuthenticationGrant(poll, request));
    await page.context().close();
    expect(error).toBe('access_denied');
    expect(description).toMatch(/^CIBA_FAILED \(CARD_ABSENT\): /);
  }, 30_000);

  it('no workstation registered (the card left): access_denied at the backchannel endpoint (CIBA_NO_WORKSTATION)', async () => {
    await waitFor(() => link.registered.sub === undefined);
    const { error, description } = await oauthError(start(poll));
    expect(error).toBe('access_denied');
    expect(description).toMatch(/^CIBA_NO_WORKSTATION: /);
  });

  it('the card inserted again: the daemon asks to register again, and CIBA works again', async () => {
    backend.insert(card);
    const register = await openWindow(await nextWindow());
    expect(await register.getAttribute('#purpose', 'data-ciba')).toBe('register');
    await typePin(register, '1234');
    await waitFor(() => link.registered.sub === SUB);
    await register.context().close();
    const request = await start(poll);
    const page = await openWindow(await nextWindow());
    await typePin(page, '1234');
    expect((await oidc.pollBackchannelAuthenticationGrant(poll, request)).claims()).toMatchObject({ sub: SUB });
    await page.context().close();
  }, 30_000);

  it('another device registered with the card and PIN takes the requests: it sees and may refuse them, cannot complete one without a signature over it; the card inserted again takes them back', async () => {
    const device = new WebSocket(`${idp.issuer.replace('http:', 'ws:')}/ciba/device`);
    const messages: Record<string, unknown>[] = [];
    device.on('message', (data) => messages.push(JSON.parse(data.toString()) as Record<string, unknown>));
    try {
      await waitFor(() => messages.length === 1);
      const exported = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
      const jwk = { kty: exported.kty, crv: exported.crv, x: exported.x, y: exported.y };
      const other = fixtureCard('doctor'); // the same card's keys: someone who had the card and its PIN
      const challenge = String(messages[0]?.challenge);
      device.send(JSON.stringify({ type: 'register', token: await cardToken(other, registrationNonce(challenge, jwkThumbprint(jwk))), deviceKey: jwk }));
      await waitFor(() => messages.some((m) => m.type === 'registered'));
      // The workstation's link was replaced: it no longer gets this holder's requests.
      await waitFor(() => link.registered.sub === undefined);
      const request = await start(poll, { binding_message: 'VOLE 1' });
      await waitFor(() => messages.some((m) => m.type === 'request'));
      const seen = messages.find((m) => m.type === 'request') as { id: string; client: { id: string; name: string }; bindingMessage: string };
      expect(seen).toMatchObject({ id: request.auth_req_id, client: { id: 'thick', name: 'Dossier patient (client lourd)' }, bindingMessage: 'VOLE 1' });
      expect(windows).toEqual([]);
      // A card signature over another binding message does not complete this request.
      device.send(JSON.stringify({ type: 'result', id: seen.id, token: await cardToken(other, requestNonce(seen.id, 'thick', 'AUTRE')) }));
      const { error, description } = await oauthError(oidc.pollBackchannelAuthenticationGrant(poll, request));
      expect(error).toBe('access_denied');
      expect(description).toMatch(/^CIBA_FAILED \(SIGNATURE_INVALID\): /);
      // The holder inserts the card again at the workstation: its registration takes the requests back.
      backend.remove();
      backend.insert(card);
      const register = await openWindow(await nextWindow());
      await typePin(register, '1234');
      await waitFor(() => link.registered.sub === SUB);
      await register.context().close();
      await waitFor(() => messages.some((m) => m.type === 'refused'));
    } finally {
      device.close();
    }
  }, 30_000);

  it('the link dropped (network): the daemon reconnects and resumes with its device key, no PIN window, and CIBA works on', async () => {
    expect(deviceSockets.length).toBeGreaterThan(0);
    for (const socket of deviceSockets.splice(0)) socket.destroy();
    await waitFor(() => link.registered.sub === undefined);
    await waitFor(() => link.registered.sub === SUB, 10_000);
    expect(windows).toEqual([]);
    const request = await start(poll);
    const page = await openWindow(await nextWindow());
    expect(await page.getAttribute('#purpose', 'data-ciba')).toBe('request');
    await typePin(page, '1234');
    expect((await oidc.pollBackchannelAuthenticationGrant(poll, request)).claims()).toMatchObject({ sub: SUB });
    await page.context().close();
  }, 30_000);

  it('refuses a device link opened by a web page (an Origin header)', async () => {
    const url = `${idp.issuer.replace('http:', 'ws:')}/ciba/device`;
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(url, { headers: { Origin: 'https://evil.example' } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => undefined);
    });
    expect(status).toBe(403);
  });

  it('refuses a registration whose token was not signed for this connection’s challenge (CIBA_REGISTRATION_INVALID)', async () => {
    const ws = new WebSocket(`${idp.issuer.replace('http:', 'ws:')}/ciba/device`);
    const messages: Record<string, unknown>[] = [];
    ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as Record<string, unknown>));
    await waitFor(() => messages.length === 1);
    const certificate = Buffer.from(der('cards/doctor/auth.der')).toString('base64');
    const jwk = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' };
    ws.send(JSON.stringify({ type: 'register', token: { unverifiedCertificate: certificate, algorithm: 'RS256', signature: Buffer.alloc(256, 1).toString('base64'), format: 'web-eid:1.0', appVersion: 'x' }, deviceKey: jwk }));
    await waitFor(() => messages.length === 2);
    ws.close();
    expect(messages[1]).toMatchObject({ type: 'refused', code: 'CIBA_REGISTRATION_INVALID' });
  });

  it('`cpsd serve` with "idp" and "pinWindowCommand" in its configuration file registers and answers a request (its own PIN window command)', async () => {
    const urls = join(tmp, 'pin-windows.txt');
    const config = join(tmp, 'serve.json');
    writeFileSync(config, JSON.stringify({ port: await freePort(), allowHttpLocalhost: true, pkcs11: false, idp: idp.issuer, pinWindowCommand: ['sh', '-c', `echo "$0" >> ${urls}`] }));
    const serve = run(ROOT, ['dist/cli/cpsd.js', 'serve', '--sim', 'doctor', '--config', config], { XDG_RUNTIME_DIR: tmp });
    const window = async (n: number): Promise<string> => {
      let lines: string[] = [];
      await waitFor(() => (lines = existsSync(urls) ? readFileSync(urls, 'utf8').trim().split('\n') : []).length >= n, 15_000);
      return lines[n - 1] ?? '';
    };
    try {
      const register = await openWindow(await window(1));
      expect(await register.getAttribute('#purpose', 'data-ciba')).toBe('register');
      await typePin(register, '1234');
      // The CLI daemon's registration replaces the in-process one.
      await waitFor(() => link.registered.sub === undefined);
      await register.context().close();
      const request = await start(poll, { binding_message: 'CLI 1' });
      const page = await openWindow(await window(2));
      expect(await page.textContent('#binding-message')).toBe('CLI 1');
      await typePin(page, '1234');
      expect((await oidc.pollBackchannelAuthenticationGrant(poll, request)).claims()).toMatchObject({ sub: SUB });
      await page.context().close();
      expect(serve.stderr()).not.toMatch(/(?<![0-9])1234(?![0-9])/);
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
  }, 40_000);
});
