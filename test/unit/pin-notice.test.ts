/**
 * The wrong-PIN notice (daemon/pin-notice.ts): what the page says at two, one and no tries left, in
 * French and English, served once by id on the daemon's own server; and the PKCS#11 path that raises it
 * when the card refuses a PIN typed in an application's own prompt (never with the PIN in it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { InProcessBackend } from '../../cards/backends.js';
import { MemoryCardCache } from '../../cards/public-data.js';
import { CardSessions } from '../../cards/session.js';
import { Logger } from '../../daemon/log.js';
import { noticePage, PinNotices, type PinRefusal } from '../../daemon/pin-notice.js';
import { CKR, CKU_USER } from '../../pkcs11/constants.js';
import { OP, Pkcs11Server } from '../../pkcs11/server.js';
import { TAG, field, u32 } from '../../pkcs11/wire.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { WireClient } from '../helpers/pkcs11-wire.js';

const REFUSAL: PinRefusal = { app: 'firefox-esr', card: 'CPS3 JEANNE MEDECIN-TEST', triesLeft: 2, blocked: false };

describe('the notice page', () => {
  it('names the application, the card and the tries left, in French', () => {
    const html = noticePage(REFUSAL, 'fr');
    expect(html).toContain('<strong>firefox-esr</strong> a présenté un code porteur erroné');
    expect(html).toContain('<strong id="card">CPS3 JEANNE MEDECIN-TEST</strong>');
    expect(html).toContain('<strong id="tries">2 essais restants</strong>');
    expect(html).toContain('data-state="left"');
    expect(html).not.toContain('last-try');
  });

  it('says so in English', () => {
    const html = noticePage(REFUSAL, 'en');
    expect(html).toContain('The application <strong>firefox-esr</strong> presented a wrong PIN');
    expect(html).toContain('<strong id="tries">2 tries left</strong>');
  });

  it('at one try left, says that cpsd no longer presents an application\'s PIN and how to use the last try', () => {
    const html = noticePage({ ...REFUSAL, triesLeft: 1 }, 'fr');
    expect(html).toContain('1 essai restant');
    expect(html).toContain('data-state="last"');
    expect(html).toContain('cpsd pin verify --allow-last-try');
  });

  it('at none, says the card is blocked and what unblocks it', () => {
    const html = noticePage({ ...REFUSAL, triesLeft: 0, blocked: true }, 'en');
    expect(html).toContain('data-state="blocked"');
    expect(html).toContain('<strong id="tries">blocked</strong>');
    expect(html).toContain('PUK');
  });

  it('escapes what the application named itself', () => {
    const html = noticePage({ ...REFUSAL, app: '<img src=x onerror=alert(1)>' }, 'fr');
    expect(html).not.toContain('<img');
    expect(html).toContain('&#60;img');
  });

  it('says an unnamed application is one of this computer\'s', () => {
    expect(noticePage({ ...REFUSAL, app: '' }, 'fr')).toContain('Une application de ce poste a présenté un code porteur erroné');
  });
});

describe('PinNotices on a server', () => {
  let http: Server | undefined;
  const notices = new PinNotices();
  afterEach(() => {
    notices.close();
    http?.close();
  });

  async function serve(): Promise<number> {
    http = createServer((req, res) => {
      if (!notices.handle(req, res)) res.writeHead(418).end();
    });
    await new Promise<void>((r) => http?.listen(0, '127.0.0.1', r));
    return (http.address() as AddressInfo).port;
  }

  function get(port: number, path: string, method = 'GET', lang = 'fr-FR,fr;q=0.9'): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method, headers: { 'Accept-Language': lang } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('serves a notice by its unguessable path, with no script allowed', async () => {
    const port = await serve();
    const path = notices.add(REFUSAL);
    expect(path).toMatch(/^\/notice\/[0-9a-f]{32}$/);
    const r = await get(port, path);
    expect(r.status).toBe(200);
    expect(r.body).toContain('2 essais restants');
    expect(String(r.headers['content-security-policy'])).toContain("default-src 'none'");
    expect(String(r.headers['content-security-policy'])).not.toContain('script-src');
    expect((await get(port, path, 'GET', 'en-US')).body).toContain('2 tries left');
  });

  it('answers 404 for an unknown id, 405 for anything but GET, and leaves other paths alone', async () => {
    const port = await serve();
    const path = notices.add(REFUSAL);
    expect((await get(port, `/notice/${'0'.repeat(32)}`)).status).toBe(404);
    expect((await get(port, path, 'POST')).status).toBe(405);
    expect((await get(port, '/pin/x')).status).toBe(418);
  });

  it('keeps 16 notices at most, the oldest going first, and none after close', async () => {
    const port = await serve();
    const first = notices.add(REFUSAL);
    for (let i = 0; i < 16; i++) notices.add({ ...REFUSAL, triesLeft: 2 });
    expect(notices.size).toBe(16);
    expect((await get(port, first)).status).toBe(404);
    const last = notices.add(REFUSAL);
    notices.close();
    expect(notices.size).toBe(0);
    expect((await get(port, last)).status).toBe(404);
  });
});

describe('a PIN refused through the PKCS#11 socket', () => {
  const PIN = '8073';
  const WRONG = '5196';
  let server: Pkcs11Server | undefined;
  let sessions: CardSessions | undefined;
  let dir = '';
  const clients: WireClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server?.close();
    await sessions?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(refused: PinRefusal[], logs: string[]): Promise<WireClient> {
    const card = fixtureCard('doctor');
    card.image.pin.value = PIN;
    sessions = new CardSessions(new InProcessBackend(card));
    dir = mkdtempSync(join(tmpdir(), 'cpsd-notice-'));
    const socketPath = join(dir, 'cpsd', 'pkcs11.sock');
    server = new Pkcs11Server({ sessions, cache: new MemoryCardCache(), log: new Logger('debug', (l) => void logs.push(l)), socketPath, onPinRefused: (r) => void refused.push(r) });
    await server.listen();
    const c = await WireClient.connect(socketPath);
    clients.push(c);
    return c;
  }

  const login = (c: WireClient, slot: { reader: string; generation: number }, pin: string) =>
    c.call(OP.LOGIN, [...c.target(slot), field(TAG.USER_TYPE, u32(CKU_USER)), field(TAG.PIN, Buffer.from(pin))]);

  it('tells the person the tries left after each wrong PIN, and at one left that the application\'s PIN is no longer presented', async () => {
    const refused: PinRefusal[] = [];
    const logs: string[] = [];
    const c = await start(refused, logs);
    const slot = await c.slot();
    expect((await login(c, slot, WRONG)).rv).toBe(CKR.PIN_INCORRECT);
    expect(refused).toEqual([{ app: 'test', card: expect.stringContaining('JEANNE') as unknown as string, triesLeft: 2, blocked: false }]);
    expect((await login(c, slot, WRONG)).rv).toBe(CKR.PIN_INCORRECT);
    expect(refused[1]).toMatchObject({ triesLeft: 1, blocked: false });
    expect((await login(c, slot, PIN)).rv).toBe(CKR.FUNCTION_REJECTED);
    expect(refused[2]).toMatchObject({ triesLeft: 1, blocked: false });
    expect(JSON.stringify(refused)).not.toContain(WRONG);
    expect(JSON.stringify(refused)).not.toContain(PIN);
  });

  it('tells nothing when the PIN was right', async () => {
    const refused: PinRefusal[] = [];
    const c = await start(refused, []);
    expect((await login(c, await c.slot(), PIN)).rv).toBe(CKR.OK);
    expect(refused).toEqual([]);
  });
});
