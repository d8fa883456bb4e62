/**
 * The daemon with real WebSocket clients, over loopback, with the in-process virtual card: every method
 * and error code, the handshake checks (Origin, Host, frame size, connection cap), the PIN page, card
 * events, 50 concurrent clients, a card pulled mid-authentication, and no PIN in any log or response.
 */
import { createHash, verify, X509Certificate } from 'node:crypto';
import { request } from 'node:http';
import { rpcClient, type RpcClient } from '../helpers/rpc.js';
import { listeningAddresses } from '../helpers/sockets.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InProcessBackend } from '../../cards/backends.js';
import { DEFAULTS, type DaemonConfig } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { Pin } from '../../cards/pin.js';
import { CpsCard } from '../../cards/card.js';
import { CpsdServer } from '../../daemon/server.js';
import type { VirtualCpsCard } from '../../sim/cps/card.js';
import { fixtureCard, loadMaterial, loadProfile } from '../../sim/cps/fixtures.js';

const ORIGIN = 'https://app.example';
/** PINs that appear nowhere else in the fixtures (1234 is inside a national id), for the leak scan. */
const PIN = '8073';
const WRONG = '5196';
const logs: string[] = [];
const wire: string[] = [];
let server: CpsdServer | undefined;
let sim: InProcessBackend<VirtualCpsCard>;

async function start(config: Partial<DaemonConfig> = {}, profile = 'doctor'): Promise<CpsdServer> {
  const card = fixtureCard(profile);
  card.image.pin.value = PIN;
  sim = new InProcessBackend(card);
  server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN], ...config }, sim, new Logger('debug', (l) => void logs.push(l)));
  await server.listen();
  return server;
}

afterEach(async () => {
  await server?.close();
  server = undefined;
});

type Rpc = RpcClient;

function connect(origin: string | null = ORIGIN, host = '127.0.0.1'): Promise<Rpc> {
  return rpcClient(server?.port ?? 0, origin, { host, onMessage: (text) => void wire.push(text) });
}

/** A raw upgrade with chosen headers: returns the HTTP status (101 when accepted). */
function upgrade(headers: Record<string, string>, address = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: address,
      port: server?.port,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => resolve(res.statusCode ?? 0));
    req.on('error', reject);
    req.end();
  });
}

/** Posts the PIN (null: Cancel) as the PIN page's script does; the answer comes once the card is done. */
async function typePin(url: string, pin: string | null, extra: Record<string, string> = {}): Promise<number> {
  const page = await fetch(url);
  const html = await page.text();
  const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(html)?.[1] ?? '';
  const body = new URLSearchParams(pin === null ? { csrf, cancel: '1' } : { csrf, pin, ...extra });
  return (await fetch(url, { method: 'POST', body, headers: { Origin: new URL(url).origin } })).status;
}

const nonce = Buffer.alloc(32, 7).toString('base64'); // 44 characters, as issueNonce makes them

describe('daemon handshake', () => {
  it('accepts the allowed origin and local apps, refuses other origins and rebinding Hosts', async () => {
    const s = await start();
    const host = `127.0.0.1:${s.port}`;
    expect(await upgrade({ Host: host, Origin: ORIGIN })).toBe(101);
    expect(await upgrade({ Host: host })).toBe(101); // local application
    expect(await upgrade({ Host: `localhost:${s.port}`, Origin: ORIGIN })).toBe(101);
    for (const origin of ['https://evil.example', 'http://app.example', 'https://app.example.evil', 'https://app.example:8443', 'null', '']) {
      expect(await upgrade({ Host: host, Origin: origin }), origin).toBe(403);
    }
    for (const h of [`evil.example:${s.port}`, `127.0.0.1:${s.port + 1}`, '127.0.0.1', `localhost.evil:${s.port}`]) {
      expect(await upgrade({ Host: h, Origin: ORIGIN }), h).toBe(421);
    }
  });

  it('listens on loopback only', async () => {
    const s = await start();
    // The kernel's own table of listening sockets (whatever interfaces this machine has): every socket
    // on the daemon's port is bound to 127.0.0.1 or ::1, none to a wildcard or another address.
    const bound = listeningAddresses(s.port);
    expect(bound.length).toBeGreaterThan(0);
    for (const address of bound) expect(['0100007F', '00000000000000000000000001000000']).toContain(address);
    expect(await upgrade({ Host: `127.0.0.1:${s.port}` }, '127.0.0.1')).toBe(101);
  });

  it('closes a connection that sends an oversized frame, and caps connections', async () => {
    await start({ maxMessageBytes: 1024, maxConnections: 2 });
    const rpc = await connect();
    const closed = new Promise<number>((r) => rpc.ws.once('close', (code) => r(code)));
    rpc.ws.send('x'.repeat(4096));
    expect(await closed).toBe(1009);
    const a = await connect();
    await connect();
    await expect(connect()).rejects.toThrow(/503/);
    a.ws.close();
  });
});

describe('daemon methods', () => {
  it('hello, readers.list, card.status, card.identity, card.certificates', async () => {
    await start();
    const rpc = await connect();
    expect((await rpc.call('hello')).result).toMatchObject({ protocol: 'cpsd/1', origin: ORIGIN, pinEntry: ['page'] });
    expect((await rpc.call('readers.list')).result).toEqual({
      readers: [{ name: InProcessBackend.READER, cardPresent: true, atr: '3BAC00402A001225006480000310009000', supported: true, interface: 'contact', busy: false, sameCardAs: [] }],
    });
    expect((await rpc.call('card.status')).result).toMatchObject({ generation: 'CPS3', serial: loadProfile('doctor').serial, pin: { triesLeft: 3 }, sameCardAs: [] });
    expect((await rpc.call('card.identity')).result).toMatchObject({ nationalId: '899700012349', surname: 'MEDECIN-TEST', specialty: 'SM26' });
    const certs = (await rpc.call('card.certificates')).result ?? {};
    expect(Buffer.from(String(certs.authentication), 'base64').equals(Buffer.from(loadMaterial('doctor').authCert))).toBe(true);
  });

  it('authenticates a web origin through the PIN page, and binds the origin into what the card signs', async () => {
    await start();
    const rpc = await connect();
    const pending = rpc.call('auth.authenticate', { nonce });
    const prompt = await rpc.next('pin.required');
    expect(prompt).toMatchObject({ purpose: 'authentication', triesLeft: 3 });
    const url = String(prompt.url);
    const page = await fetch(url);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const html = await page.text();
    expect(html).toContain('https://app.example');
    expect(html).toContain('JEANNE MEDECIN-TEST');
    // A forged post (no CSRF token, or another origin) is refused and the request stays pending.
    expect((await fetch(url, { method: 'POST', body: new URLSearchParams({ pin: PIN }) })).status).toBe(403);
    expect((await fetch(url, { method: 'POST', body: `csrf=x&pin=${PIN}`, headers: { Origin: ORIGIN } })).status).toBe(403);
    expect(await typePin(url, PIN)).toBe(200);
    const token = (await pending).result ?? {};
    expect(token).toMatchObject({ format: 'web-eid:1.0', algorithm: 'RS256' });
    const cert = new X509Certificate(Buffer.from(String(token.unverifiedCertificate), 'base64'));
    const signed = Buffer.concat([createHash('sha256').update(ORIGIN).digest(), createHash('sha256').update(nonce).digest()]);
    expect(verify('sha256', signed, cert.publicKey, Buffer.from(String(token.signature), 'base64'))).toBe(true);
    expect(sim.card?.pinVerified).toBe(false); // the daemon dropped the verified state
    expect((await fetch(url)).status).toBe(404); // one-time
  });

  it('never takes a PIN from a web page; local apps may send it', async () => {
    await start();
    const web = await connect();
    expect((await web.call('auth.authenticate', { nonce, pin: PIN })).error?.data.code).toBe('PIN_NOT_ALLOWED');
    const local = await connect(null);
    const token = (await local.call('auth.authenticate', { nonce, pin: PIN })).result ?? {};
    const cert = new X509Certificate(Buffer.from(String(token.unverifiedCertificate), 'base64'));
    const signed = Buffer.concat([createHash('sha256').update('null').digest(), createHash('sha256').update(nonce).digest()]);
    expect(verify('sha256', signed, cert.publicKey, Buffer.from(String(token.signature), 'base64'))).toBe(true);
  });

  it('reports a wrong PIN with the tries left, a cancelled entry, a blocked PIN', async () => {
    await start();
    const rpc = await connect();
    const first = rpc.call('auth.authenticate', { nonce });
    await typePin(String((await rpc.next('pin.required')).url), WRONG);
    expect((await first).error?.data).toEqual({ code: 'PIN_INCORRECT', triesLeft: 2 });
    rpc.notifications.length = 0;
    const second = rpc.call('auth.authenticate', { nonce });
    await typePin(String((await rpc.next('pin.required')).url), null);
    expect((await second).error?.data.code).toBe('USER_CANCELLED');
    await server?.close();
    await start({}, 'pin-blocked');
    const blocked = await connect();
    expect((await blocked.call('auth.authenticate', { nonce })).error?.data.code).toBe('PIN_BLOCKED');
  });

  it('signs a hash with the signing key and its own PIN', async () => {
    await start();
    const local = await connect(null);
    const digest = createHash('sha256').update('document').digest();
    const r = (await local.call('sign.hash', { hash: digest.toString('base64url'), hashAlgorithm: 'SHA-256', pin: PIN })).result ?? {};
    const cert = new X509Certificate(Buffer.from(String(r.certificate), 'base64'));
    expect(verify('sha256', Buffer.from('document'), cert.publicKey, Buffer.from(String(r.signature), 'base64'))).toBe(true);
    expect(sim.card?.pinVerified).toBe(false);
    expect((await local.call('sign.hash', { hash: 'AAAA', hashAlgorithm: 'SHA-256', pin: PIN })).error?.data.code).toBe('INVALID_REQUEST');
    expect(logs.some((l) => l.includes('"level":"audit"') && l.includes('"operation":"sign"') && l.includes('"outcome":"ok"'))).toBe(true);
  });

  it('sign.hash on a card seen before: 9 APDUs to a CPS3, 15 to a CPS4 (the PIN job checks the card by its serial only)', async () => {
    for (const [profile, count] of [['doctor', 9], ['nurse', 15]] as const) {
      await start({ allowPinInRequest: true }, profile);
      const local = await connect(null);
      const hash = createHash('sha256').update('document').digest().toString('base64url');
      expect((await local.call('sign.hash', { hash, hashAlgorithm: 'SHA-256', pin: PIN })).result?.signature).toBeTypeOf('string');
      const sent = vi.spyOn(sim.card as VirtualCpsCard, 'transmit');
      expect((await local.call('sign.hash', { hash, hashAlgorithm: 'SHA-256', pin: PIN })).result?.signature).toBeTypeOf('string');
      expect(sent).toHaveBeenCalledTimes(count);
      await server?.close();
      server = undefined;
    }
  });

  it('another card put in while the PIN page is open (its removal missed): CARD_ABSENT, and that card gets no VERIFY', async () => {
    await start();
    const rpc = await connect();
    const hash = createHash('sha256').update('ordonnance').digest().toString('base64url');
    const pending = rpc.call('sign.hash', { hash, hashAlgorithm: 'SHA-256' });
    const prompt = await rpc.next('pin.required');
    const other = fixtureCard('pharmacist');
    const sent = vi.spyOn(other, 'transmit');
    sim.insert(other);
    await typePin(String(prompt.url), PIN);
    expect((await pending).error?.data.code).toBe('CARD_ABSENT');
    const commands = sent.mock.calls.map(([c]) => Buffer.from(c).toString('hex').toUpperCase());
    expect(commands).toEqual(['00B09C000C']); // its serial, nothing else
    expect(other.image.pin.triesLeft).toBe(3);
  });

  it('answers malformed requests, unknown methods and parameters, and card errors with stable codes', async () => {
    await start();
    const rpc = await connect();
    const raw = (text: string): Promise<Record<string, unknown>> =>
      new Promise((resolve) => {
        rpc.ws.once('message', (d) => resolve(JSON.parse(d.toString()) as Record<string, unknown>));
        rpc.ws.send(text);
      });
    expect(await raw('{')).toMatchObject({ id: null, error: { code: -32602, data: { code: 'INVALID_REQUEST' } } });
    expect(await raw('{"jsonrpc":"2.0","id":1,"method":"hello","extra":1}')).toMatchObject({ error: { data: { code: 'INVALID_REQUEST' } } });
    expect((await rpc.call('card.erase')).error).toMatchObject({ code: -32601, data: { code: 'METHOD_NOT_FOUND' } });
    expect((await rpc.call('card.status', { origin: 'https://other' })).error?.data.code).toBe('INVALID_REQUEST');
    expect((await rpc.call('auth.authenticate', { nonce: 'short' })).error?.data.code).toBe('INVALID_REQUEST');
    expect((await rpc.call('card.status', { reader: 'nope' })).error?.data.code).toBe('READER_NOT_FOUND');
    sim.remove();
    expect((await rpc.call('card.status')).error?.data.code).toBe('CARD_ABSENT');
    const odd = fixtureCard('doctor');
    Object.defineProperty(odd, 'atr', { value: Uint8Array.of(0x3b, 0x02, 0x14, 0x50) });
    sim.insert(odd);
    expect((await rpc.call('card.status')).error?.data).toMatchObject({ code: 'CARD_UNSUPPORTED', atr: '3B021450' });
  });

  it('limits the request rate per connection', async () => {
    await start({ ratePerSecond: 5 });
    const rpc = await connect();
    const answers = await Promise.all(Array.from({ length: 30 }, () => rpc.call('readers.list')));
    const limited = answers.filter((a) => a.error?.data.code === 'RATE_LIMITED').length;
    expect(limited).toBeGreaterThan(20);
    expect(answers.length - limited).toBeGreaterThanOrEqual(5);
  });
});

describe('daemon card events and load', () => {
  it('notifies card removal and insertion to every client', async () => {
    await start();
    const a = await connect();
    const b = await connect(null);
    sim.remove();
    expect(await a.next('card.removed')).toEqual({ reader: InProcessBackend.READER });
    expect(await b.next('card.removed')).toEqual({ reader: InProcessBackend.READER });
    sim.insert(fixtureCard('nurse'));
    expect(await a.next('card.inserted')).toEqual({ reader: InProcessBackend.READER, atr: '3B9B188001001225006480040100009044' });
  });

  it('serves 50 concurrent clients on one card, requests serialised, none lost', async () => {
    await start();
    const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => connect(i % 2 ? ORIGIN : null)));
    const answers = await Promise.all(clients.map((c) => c.call('card.identity')));
    expect(answers.filter((a) => a.result?.nationalId === '899700012349')).toHaveLength(50);
    clients.forEach((c) => c.ws.close());
  });

  it('fails a pending authentication with CARD_ABSENT when the card is pulled', async () => {
    await start();
    const rpc = await connect();
    const pending = rpc.call('auth.authenticate', { nonce });
    await rpc.next('pin.required');
    sim.remove();
    expect((await pending).error?.data.code).toBe('CARD_ABSENT');
  });

  it('never writes a PIN in a log line or a response (whole suite so far)', () => {
    const pins = [PIN, WRONG];
    const responses = wire.map((w) => w.replace(/"(signature|unverifiedCertificate|authentication|signing|certificate)":"[^"]*"/g, ''));
    for (const pin of pins) {
      expect(logs.filter((l) => l.includes(pin))).toEqual([]);
      expect(responses.filter((r) => r.includes(pin))).toEqual([]);
    }
    expect(logs.length).toBeGreaterThan(20);
  });
});

describe('daemon logger and configuration', () => {
  it('redacts secret-named fields and PIN values, and leaves timestamps and serials that share its digits intact', () => {
    const lines: string[] = [];
    const log = new Logger('debug', (l) => void lines.push(l));
    const pin = new Pin('2026');
    log.info('x', { pin: '2026', entered: pin, nested: { puk: '12345678', value: pin }, serial: '2026202620', error: new Error('bad') });
    log.audit({ operation: 'sign', origin: ORIGIN, serial: '9920260001', outcome: 'ok' });
    const record = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    expect(String(record.time)).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(record.time).toBe(new Date(String(record.time)).toISOString());
    expect(record.serial).toBe('2026202620');
    expect(record).toMatchObject({ pin: '[redacted]', entered: '[PIN]', nested: { puk: '[redacted]', value: '[PIN]' } });
    expect(JSON.parse(lines[1] ?? '{}')).toMatchObject({ level: 'audit', operation: 'sign', serial: '9920260001', outcome: 'ok' });
    expect(lines.join('\n')).not.toContain('12345678');
    expect(`${pin}`).toBe('[PIN]');
    expect(JSON.stringify({ pin })).toBe('{"pin":"[PIN]"}');
  });

  it('validates the configuration with errors that name the setting', async () => {
    const { validateConfig, loadConfig, ConfigError } = await import('../../daemon/config.js');
    expect(validateConfig({ port: 30000, allowedOrigins: ['https://a.example/'] }, 'f')).toEqual({ port: 30000, allowedOrigins: ['https://a.example'] });
    expect(() => validateConfig({ prot: 1 }, 'f')).toThrow(/unknown setting "prot"/);
    expect(() => validateConfig({ port: 80 }, 'f')).toThrow(ConfigError);
    expect(() => validateConfig({ allowedOrigins: ['http://a.example'] }, 'f')).toThrow(/https/);
    expect(() => validateConfig({ allowedOrigins: ['https://a.example/path'] }, 'f')).toThrow(/scheme:\/\/host/);
    expect(validateConfig({ allowHttpLocalhost: true, allowedOrigins: ['http://localhost:3000'] }, 'f').allowedOrigins).toEqual(['http://localhost:3000']);
    expect(loadConfig([], { port: 4000 }).port).toBe(4000);
  });
});

describe('daemon: remaining error codes, SSO window and logout', () => {
  it('TIMEOUT when nobody types the PIN, PIN_FORMAT for a malformed one, consent at one try left', async () => {
    await start({ pinTimeoutMs: 100 });
    const rpc = await connect();
    expect((await rpc.call('auth.authenticate', { nonce })).error?.data.code).toBe('TIMEOUT');
    rpc.notifications.length = 0;
    const malformed = rpc.call('auth.authenticate', { nonce });
    const url = String((await rpc.next('pin.required')).url);
    await typePin(url, '12a4');
    expect((await malformed).error?.data.code).toBe('PIN_FORMAT');
    if (sim.card) sim.card.image.pin.triesLeft = 1;
    rpc.notifications.length = 0;
    // At one try left the page asks for explicit consent: without it nothing reaches the card.
    const last = rpc.call('auth.authenticate', { nonce });
    const lastUrl = String((await rpc.next('pin.required')).url);
    expect(await (await fetch(lastUrl)).text()).toContain('name="consent"');
    expect(await typePin(lastUrl, PIN)).toBe(400);
    expect(sim.card?.image.pin.triesLeft).toBe(1);
    expect(await typePin(lastUrl, PIN, { consent: '1' })).toBe(200);
    expect((await last).result?.format).toBe('web-eid:1.0');
    expect(sim.card?.image.pin.triesLeft).toBe(3);
    // A local app that sends the PIN has no consent to give: PIN_LAST_TRY, the try unspent.
    if (sim.card) sim.card.image.pin.triesLeft = 1;
    const local = await connect(null);
    expect((await local.call('auth.authenticate', { nonce, pin: PIN })).error?.data.code).toBe('PIN_LAST_TRY');
    expect(sim.card?.image.pin.triesLeft).toBe(1);
  });

  it('CARD_ERROR when the card cannot do it (no signature contactless)', async () => {
    sim = new InProcessBackend(fixtureCard('doctor', { personality: 'cps3-cl' }));
    server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN] }, sim, new Logger('debug', (l) => void logs.push(l)));
    await server.listen();
    const local = await connect(null);
    const hash = createHash('sha256').update('x').digest().toString('base64url');
    expect((await local.call('sign.hash', { hash, hashAlgorithm: 'SHA-256', pin: '1234' })).error?.data.code).toBe('CARD_ERROR');
  });

  it('PCSC_UNAVAILABLE and BUSY from the card source', async () => {
    const { PcscUnavailableError, CardBusyError } = await import('../../apdu/pcsc/index.js');
    let failure: Error = new PcscUnavailableError('pcscd is not running', { pcscCode: 0x8010001d });
    const source = Object.assign(new InProcessBackend(fixtureCard('doctor')), {
      link: () => Promise.reject(failure),
    });
    server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN] }, source, new Logger('debug', (l) => void logs.push(l)));
    await server.listen();
    const rpc = await connect();
    expect((await rpc.call('card.status')).error?.data.code).toBe('PCSC_UNAVAILABLE');
    failure = new CardBusyError('used exclusively by another application', { pcscCode: 0x8010000b });
    expect((await rpc.call('card.status')).error?.data.code).toBe('BUSY');
  });

  it('PCSC_UNAVAILABLE, not READER_NOT_FOUND, when the service is gone and no reader is left', async () => {
    const { PcscUnavailableError } = await import('../../apdu/pcsc/index.js');
    const down = Object.assign(new InProcessBackend(), {
      readers: () => [],
      unavailable: () => new PcscUnavailableError('the PC/SC service is not running', { pcscCode: 0x8010001d }),
    });
    server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN] }, down, new Logger('debug', (l) => void logs.push(l)));
    await server.listen();
    const rpc = await connect();
    expect((await rpc.call('card.status')).error?.data.code).toBe('PCSC_UNAVAILABLE');
    expect((await rpc.call('auth.authenticate', { nonce })).error?.data.code).toBe('PCSC_UNAVAILABLE');
  });

  it('reuses the verified PIN within the SSO window IT configured, until logout or card removal', async () => {
    await start({ ssoSeconds: { [ORIGIN]: 600 } });
    const rpc = await connect();
    const first = rpc.call('auth.authenticate', { nonce });
    await typePin(String((await rpc.next('pin.required')).url), PIN);
    expect((await first).result?.format).toBe('web-eid:1.0');
    rpc.notifications.length = 0;
    expect((await rpc.call('auth.authenticate', { nonce })).result?.format).toBe('web-eid:1.0');
    expect(rpc.notifications.filter((n) => n.method === 'pin.required')).toEqual([]);
    expect((await rpc.call('session.logout')).result).toEqual({ ok: true });
    expect(sim.card?.pinVerified).toBe(false);
    const again = rpc.call('auth.authenticate', { nonce });
    await typePin(String((await rpc.next('pin.required')).url), PIN);
    expect((await again).result?.format).toBe('web-eid:1.0');
    // Another client (here a local app) never benefits from it: it is asked for the PIN.
    const other = await connect(null);
    const pending = other.call('auth.authenticate', { nonce });
    expect(await other.next('pin.required')).toMatchObject({ purpose: 'authentication' });
    sim.remove(); // and pulling the card ends everything
    expect((await pending).error?.data.code).toBe('CARD_ABSENT');
  }, 10_000);
});

describe('daemon with a PIN-pad reader', () => {
  it('has the PIN typed on the reader: no PIN page, the tries left still reported', async () => {
    await start();
    sim.pinPadDigits = PIN;
    const rpc = await connect();
    const ok = rpc.call('auth.authenticate', { nonce });
    const prompt = await rpc.next('pin.required');
    expect(prompt).toMatchObject({ pinPad: true, purpose: 'authentication', triesLeft: 3 });
    expect(prompt.url).toBeUndefined();
    expect((await ok).result?.format).toBe('web-eid:1.0');
    sim.pinPadDigits = WRONG;
    expect((await rpc.call('auth.authenticate', { nonce })).error?.data).toEqual({ code: 'PIN_INCORRECT', triesLeft: 2 });
  });
});

describe('protocol error mapping', () => {
  it('maps every PC/SC failure to a typed code, never INTERNAL', async () => {
    const { toRpcError } = await import('../../daemon/protocol.js');
    const { pcscError } = await import('../../apdu/pcsc/index.js');
    expect(toRpcError(pcscError(0x8010006a, 'SCardTransmit')).data.code).toBe('CARD_ERROR'); // security violation during a pcscd stop
    expect(toRpcError(pcscError(0x80100003, 'SCardTransmit')).data.code).toBe('PCSC_UNAVAILABLE'); // stale handle
    expect(toRpcError(pcscError(0x8010001d)).data.code).toBe('PCSC_UNAVAILABLE');
    expect(toRpcError(pcscError(0x80100069)).data.code).toBe('CARD_ABSENT');
    expect(toRpcError(pcscError(0x8010000b)).data.code).toBe('BUSY');
    expect(toRpcError(new Error('bug')).data.code).toBe('INTERNAL');
  });
});

/** Opens the PIN window's event stream as the page's script does; `close()` is the window closing. */
function openWindow(url: string): Promise<{ close: () => void; events: string[] }> {
  return new Promise((resolve, reject) => {
    const events: string[] = [];
    const req = request(`${url}/alive`, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => events.push(d));
      resolve({ close: () => req.destroy(), events });
    });
    req.on('error', () => undefined);
    req.once('error', reject);
    req.end();
  });
}

/** Posts like the page and returns its JSON answer (what the page then shows). */
async function post(url: string, fields: Record<string, string>, lang = 'fr'): Promise<{ status: number; body: Record<string, unknown> }> {
  const html = await (await fetch(url, { headers: { 'Accept-Language': lang } })).text();
  const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(html)?.[1] ?? '';
  const r = await fetch(url, { method: 'POST', body: new URLSearchParams({ csrf, ...fields }), headers: { Origin: new URL(url).origin, 'Accept-Language': lang } });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

describe('daemon: the human never blocks the card', () => {
  it('serves another client while a PIN page is open', async () => {
    await start();
    const rpc = await connect();
    void rpc.call('auth.authenticate', { nonce });
    await rpc.next('pin.required');
    const other = await connect(null);
    expect((await other.call('card.status')).result).toMatchObject({ serial: loadProfile('doctor').serial });
    expect((await other.call('card.identity')).result).toMatchObject({ surname: 'MEDECIN-TEST' });
  });

  it('ends the PIN entry of a page whose socket closed, at once', async () => {
    await start();
    const rpc = await connect();
    void rpc.call('auth.authenticate', { nonce });
    const url = String((await rpc.next('pin.required')).url);
    expect((await fetch(url)).status).toBe(200);
    const closedAt = Date.now();
    rpc.ws.close();
    await new Promise((r) => rpc.ws.once('close', r));
    for (let i = 0; i < 20 && (await fetch(url)).status !== 404; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await fetch(url)).status).toBe(404);
    expect(Date.now() - closedAt).toBeLessThan(1000);
  });

  it('cancels with USER_CANCELLED within a second when the PIN window is closed', async () => {
    await start();
    const rpc = await connect();
    const pending = rpc.call('auth.authenticate', { nonce });
    const url = String((await rpc.next('pin.required')).url);
    const window = await openWindow(url);
    const closedAt = Date.now();
    window.close();
    expect((await pending).error?.data.code).toBe('USER_CANCELLED');
    expect(Date.now() - closedAt).toBeLessThan(1000);
    expect(sim.card?.image.pin.triesLeft).toBe(3);
  });

  it('keeps the entry when the window reloads (its stream comes back at once)', async () => {
    await start();
    const rpc = await connect();
    const pending = rpc.call('auth.authenticate', { nonce });
    const url = String((await rpc.next('pin.required')).url);
    (await openWindow(url)).close();
    await openWindow(url);
    await new Promise((r) => setTimeout(r, 600));
    expect((await post(url, { pin: PIN })).body).toMatchObject({ done: true, code: 'ok' });
    expect((await pending).result?.format).toBe('web-eid:1.0');
  });

  it('allows one PIN entry per connection: a second one is BUSY', async () => {
    await start();
    const rpc = await connect();
    void rpc.call('auth.authenticate', { nonce });
    await rpc.next('pin.required');
    expect((await rpc.call('auth.authenticate', { nonce })).error?.data.code).toBe('BUSY');
    expect((await rpc.call('card.status')).result).toMatchObject({ generation: 'CPS3' });
  });
});

describe('daemon: the PIN page tells the truth', () => {
  it('says what happened after the PIN, in French by default', async () => {
    await start();
    const rpc = await connect();
    const pending = rpc.call('auth.authenticate', { nonce });
    const url = String((await rpc.next('pin.required')).url);
    expect((await post(url, { pin: WRONG })).body).toEqual({ done: true, code: 'PIN_INCORRECT', message: 'Code incorrect. 2 essais restants.' });
    expect((await pending).error?.data).toEqual({ code: 'PIN_INCORRECT', triesLeft: 2 });
    rpc.notifications.length = 0;
    const again = rpc.call('auth.authenticate', { nonce });
    const next = String((await rpc.next('pin.required')).url);
    expect((await post(next, { pin: PIN })).body).toEqual({ done: true, code: 'ok', message: 'Code accepté : opération effectuée.' });
    expect((await again).result?.format).toBe('web-eid:1.0');
  });

  it('speaks English to a browser that prefers it', async () => {
    await start();
    const rpc = await connect();
    const pending = rpc.call('auth.authenticate', { nonce });
    const url = String((await rpc.next('pin.required')).url);
    const html = await (await fetch(url, { headers: { 'Accept-Language': 'en-GB,en;q=0.9,fr;q=0.5' } })).text();
    expect(html).toContain('<html lang="en">');
    expect(html).toContain('3 tries left');
    expect((await post(url, { pin: WRONG }, 'en')).body).toMatchObject({ message: 'Wrong PIN. 2 tries left.' });
    await pending;
  });

  it('shows a signature as a signature, with the hash and the document name', async () => {
    await start();
    const rpc = await connect();
    const digest = createHash('sha256').update('ordonnance').digest();
    const pending = rpc.call('sign.hash', { hash: digest.toString('base64url'), hashAlgorithm: 'SHA-256', document: 'Ordonnance <Dupont>.pdf' });
    const prompt = await rpc.next('pin.required');
    expect(prompt).toMatchObject({ purpose: 'signature' });
    const html = await (await fetch(String(prompt.url))).text();
    expect(html).toContain('data-purpose="signature"');
    expect(html).toContain('<strong>signature</strong>');
    expect(html).not.toContain('authentification');
    expect(html.replace(/\s/g, '')).toContain(digest.toString('hex').toUpperCase());
    expect(html).toContain('Ordonnance &#60;Dupont&#62;.pdf');
    await typePin(String(prompt.url), PIN);
    expect((await pending).result?.signature).toBeTypeOf('string');
  });

  it('takes the PIN rule from the card, and refuses another shape before the card sees it', async () => {
    // The virtual card's AODF says 4 digits, as the default does: make the driver's rule differ.
    const rule = vi.spyOn(CpsCard.prototype, 'pinRule').mockReturnValue({ minLength: 6, maxLength: 8 });
    try {
      await start();
      const rpc = await connect();
      const pending = rpc.call('auth.authenticate', { nonce });
      const url = String((await rpc.next('pin.required')).url);
      const html = await (await fetch(url)).text();
      expect(html).toContain('pattern="[0-9]{6,8}"');
      expect(html).toContain('maxlength="8"');
      expect(html).toContain('6 à 8 chiffres');
      expect((await post(url, { pin: PIN })).body).toMatchObject({ code: 'PIN_FORMAT' });
      expect((await pending).error?.data.code).toBe('PIN_FORMAT');
      expect(sim.card?.image.pin.triesLeft).toBe(3);
    } finally {
      rule.mockRestore();
    }
  });

  it('sends a script-only-by-nonce CSP with the page', async () => {
    await start();
    const rpc = await connect();
    void rpc.call('auth.authenticate', { nonce });
    const page = await fetch(String((await rpc.next('pin.required')).url));
    const csp = page.headers.get('content-security-policy') ?? '';
    const scriptNonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(scriptNonce).toBeDefined();
    expect(await page.text()).toContain(`<script nonce="${scriptNonce}">`);
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
  });
});

describe('daemon: contactless and PIN pads', () => {
  it('refuses the contactless technical key for a web login unless IT allowed the origin', async () => {
    sim = new InProcessBackend(fixtureCard('doctor', { personality: 'cps3-cl' }));
    server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN] }, sim, new Logger('debug', (l) => void logs.push(l)));
    await server.listen();
    const rpc = await connect();
    expect((await rpc.call('auth.authenticate', { nonce })).error?.data.code).toBe('CONTACTLESS_NOT_ALLOWED');
    await server.close();
    server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN], contactlessOrigins: [ORIGIN] }, sim, new Logger('debug', (l) => void logs.push(l)));
    await server.listen();
    const allowed = await connect();
    const token = (await allowed.call('auth.authenticate', { nonce })).result ?? {};
    expect(token.format).toBe('web-eid:1.0');
    expect(allowed.notifications.filter((n) => n.method === 'pin.required')).toEqual([]);
  });

  it('USER_CANCELLED when the holder presses Cancel on the PIN pad, TIMEOUT when nothing is typed', async () => {
    await start();
    const rpc = await connect();
    sim.pinPadDigits = 'cancel';
    expect((await rpc.call('auth.authenticate', { nonce })).error?.data.code).toBe('USER_CANCELLED');
    sim.pinPadDigits = 'timeout';
    expect((await rpc.call('auth.authenticate', { nonce })).error?.data.code).toBe('TIMEOUT');
    expect(sim.card?.image.pin.triesLeft).toBe(3);
  });
});
