/**
 * Docs that run: every fenced block of docs/integration.md and docs/protocol.md is run as its marker
 * comment says (`<!-- run: KIND … -->`), or says why not (`<!-- not run: REASON -->`); so are the web
 * round trip's page and server of docs/signing.md (`sign-page`, `sign-app`; its `sign-server` block is
 * test/trust/sign-docs.test.ts's).
 *
 * - integration.md: the `sh` block lays out the trust folder from the test PKI, the `server` blocks (one
 *   file, as written) are type-checked, compiled and started as an Express server that serves the `page`
 *   block as public/index.html; Chromium clicks its login button and the PIN is typed on the daemon's PIN
 *   page. The `redis` block runs against a redis-server started here.
 * - signing.md: the `sign-app` block started as the editor's server over a PDF, serving the `sign-page`
 *   block; Chromium clicks "Signer" and the PIN is typed in the daemon's PIN window (the same through
 *   pcscd, CPS3 and CPS4, judged by pdfsig: test/e2e/sign-web.test.ts).
 * - protocol.md: each `rpc` block's `→` lines go to a fresh daemon over the virtual card and each `←`
 *   message is compared with the one documented; `browser` runs in a page, `local-app` in Node against
 *   the server above, `formula` is checked on the auth.authenticate token, `config` by the validator.
 *
 * The daemon is a CpsdServer over InProcessBackend(fixtureCard(…)) on a free port: no pcscd.
 */
import { createHash, verify as verifySignature, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { InProcessBackend } from '../../cards/backends.js';
import { DEFAULTS, validateConfig, type DaemonConfig } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { verify, type AuthToken } from '../../pkcs/verify.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { launchChromium } from '../helpers/browser.js';
import { appFolder, compile, freePort, removeAppFolder, run, typeErrors, write, type Run } from '../helpers/doc-app.js';
import { ROOT, docBlocks, exchange, mismatches, type DocBlock } from '../helpers/doc-blocks.js';
import { signFromPage, signWebBlocks, startSignWebApp, type SignWebApp } from '../helpers/sign-web-app.js';

const INTEGRATION = docBlocks('docs/integration.md');
const PROTOCOL = docBlocks('docs/protocol.md');
/** Every kind of marker this test knows how to run. */
const KINDS = new Set(['page', 'server', 'sh', 'redis', 'browser', 'rpc', 'formula', 'local-app', 'config']);
const ran = new Set<DocBlock>();
const blocks = (doc: DocBlock[], kind: string): DocBlock[] => doc.filter((b) => b.run === kind);
const one = (doc: DocBlock[], kind: string): DocBlock => {
  const found = blocks(doc, kind);
  expect(found, `one "${kind}" block`).toHaveLength(1);
  return found[0] as DocBlock;
};

let browser: Browser;

async function startDaemon(profile: string, config: Partial<DaemonConfig>): Promise<{ daemon: CpsdServer; backend: InProcessBackend }> {
  const backend = new InProcessBackend(fixtureCard(profile));
  const daemon = new CpsdServer({ ...DEFAULTS, port: 0, ...config }, backend, new Logger('error', () => undefined));
  await daemon.listen();
  return { daemon, backend };
}

/**
 * Opens a PIN page in Chromium and submits `pin` there, as the holder would. The window stays open (its
 * closing would cancel the request) until the caller closes the context it returns.
 */
async function typePin(url: string, pin: string): Promise<BrowserContext> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url);
  await page.fill('input[name=pin]', pin);
  await page.click('button[type=submit]:not([name])');
  return context;
}

beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

describe('the blocks of the docs', () => {
  it('each say how they are run, or why they are not', () => {
    for (const b of [...INTEGRATION, ...PROTOCOL]) {
      if (b.notRun) expect(b.note.length, `${b.where}: a reason`).toBeGreaterThan(20);
      else expect(KINDS.has(b.run ?? ''), `${b.where}: <!-- run: KIND --> with KIND one of ${[...KINDS].join(', ')} (got ${b.run})`).toBe(true);
    }
    expect(INTEGRATION.length + PROTOCOL.length).toBeGreaterThan(15);
  });
});

// ------------------------------------------------------------------ integration.md (and protocol.md's browser and local-app blocks)

describe('docs/integration.md: the page and the server, for real', () => {
  let dir: string;
  let appPort: number;
  let origin: string;
  let server: Run;
  let daemon: CpsdServer;
  let backend: InProcessBackend;

  beforeAll(async () => {
    dir = appFolder();
    appPort = await freePort();
    origin = `http://localhost:${appPort}`;
    ({ daemon, backend } = await startDaemon('doctor', { allowedOrigins: [origin], allowHttpLocalhost: true }));

    const sh = one(INTEGRATION, 'sh');
    const layout = run(dir, ['-euc', sh.code], {}, '/bin/sh');
    expect(await layout.exited, layout.stderr()).toBe(0);
    ran.add(sh);

    write(dir, 'public/index.html', one(INTEGRATION, 'page').code);
    // The server blocks, in their order, are one file: the second adds routes to the first's app.
    const serverBlocks = blocks(INTEGRATION, 'server');
    expect(serverBlocks.length).toBe(2);
    const source = serverBlocks.map((b) => b.code).join('\n\n');
    const errors = typeErrors(write(dir, 'server.ts', source));
    expect(errors, 'the server blocks type-check').toEqual([]);
    write(dir, 'server.js', compile(source));
    server = run(dir, ['server.js'], {
      PORT: String(appPort),
      APP_ORIGIN: origin,
      NODE_ENV: 'development',
      CPSD_PORT: String(daemon.port),
      CPSD_TRUST_DIR: 'trust',
      SESSION_SECRET: 'docs-test',
    });
    await server.waitFor(`listening for ${origin}`);
  }, 60_000);

  afterAll(async () => {
    server?.child.kill();
    await server?.exited;
    await daemon?.close();
    if (dir) removeAppFolder(dir);
  });

  /** Opens the page, clicks login, types `pin` on the PIN page; the text the page then shows. */
  async function login(pin: string): Promise<string> {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(origin);
      const popup = context.waitForEvent('page');
      await page.click('#login');
      const pinPage = await popup;
      await pinPage.waitForURL(/\/pin\/[0-9a-f]{32}$/);
      await pinPage.fill('input[name=pin]', pin);
      await pinPage.click('button[type=submit]:not([name])');
      await page.waitForFunction(() => !/^(|Lecture de la carte…)$/.test(document.getElementById('result')?.textContent ?? ''), undefined, { timeout: 20_000 });
      return (await page.textContent('#result')) ?? '';
    } finally {
      await context.close();
    }
  }

  it('page + server: the holder is logged in and the page says who', async () => {
    expect(await login('1234')).toBe('Connecté : JEANNE MEDECIN-TEST');
    for (const b of [one(INTEGRATION, 'page'), ...blocks(INTEGRATION, 'server')]) ran.add(b);
  }, 60_000);

  it('page: a wrong PIN is told in French, with the tries left', async () => {
    expect(await login('9999')).toBe('Code erroné : 2 essai(s) restant(s).');
  }, 60_000);

  it('page + server: the server’s refusal of a revoked card (its CRL in the trust folder) is told in French', async () => {
    backend.insert(fixtureCard('revoked'));
    try {
      expect(await login('1234')).toBe('Votre carte est en opposition.');
    } finally {
      backend.insert(fixtureCard('doctor'));
    }
  }, 60_000);

  it('server: the login POSTs need the page’s own Origin (CSRF)', async () => {
    const res = await fetch(`${origin}/api/nonce`, { method: 'POST', headers: { Origin: 'https://evil.example' } });
    expect(res.status).toBe(403);
  });

  it('protocol.md browser block: a page of an allowed origin says hello', async () => {
    const b = one(PROTOCOL, 'browser');
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(origin);
      const code = b.code.replaceAll('24821', String(daemon.port));
      const answer = await page.evaluate(`new Promise((resolve, reject) => { ${code}\n ws.onmessage = (e) => resolve(e.data); ws.onerror = () => reject(new Error('refused')); })`);
      const hello = JSON.parse(String(answer)) as { id: number; result: { protocol: string; origin: string } };
      expect(hello).toMatchObject({ id: 1, result: { protocol: 'cpsd/1', origin } });
      ran.add(b);
    } finally {
      await context.close();
    }
  }, 30_000);

  it('protocol.md local-app block: a desktop application logs in through the server’s desktop routes', async () => {
    const b = one(PROTOCOL, 'local-app');
    write(dir, 'desktop.js', b.code);
    const app = run(dir, ['desktop.js'], { APP_SERVER: origin, CPSD_PORT: String(daemon.port) });
    await app.waitFor('Code porteur : ');
    app.child.stdin?.end('1234\n');
    expect(await app.exited, app.stderr()).toBe(0);
    expect(app.stdout()).toContain('Connecté : JEANNE MEDECIN-TEST');
    ran.add(b);
  }, 30_000);

  it('protocol.md local-app block: a PIN of the wrong format is refused by the daemon, and the desktop application says why', async () => {
    write(dir, 'desktop.js', one(PROTOCOL, 'local-app').code);
    const app = run(dir, ['desktop.js'], { APP_SERVER: origin, CPSD_PORT: String(daemon.port) });
    await app.waitFor('Code porteur : ');
    app.child.stdin?.end('12\n');
    expect(await app.exited).not.toBe(0);
    expect(app.stderr()).toContain('cpsd: PIN_FORMAT');
  }, 30_000);
});

describe('docs/integration.md: RedisNonceStore', () => {
  it('the redis block runs against a real Redis: a nonce is good once', async () => {
    const b = one(INTEGRATION, 'redis');
    const dir = appFolder();
    const port = await freePort();
    const redis = run(dir, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {}, 'redis-server');
    try {
      await redis.waitFor('Ready to accept connections');
      const errors = typeErrors(write(dir, 'nonces.ts', b.code));
      expect(errors, 'the redis block type-checks').toEqual([]);
      write(dir, 'nonces.js', compile(b.code));
      const script = run(dir, ['nonces.js'], { REDIS_URL: `redis://127.0.0.1:${port}` });
      expect(await script.exited, script.stderr()).toBe(0);
      expect(script.stdout().trim()).toBe('NONCE_INVALID');
      ran.add(b);
    } finally {
      redis.child.kill();
      await redis.exited;
      removeAppFolder(dir);
    }
  }, 30_000);
});

// ------------------------------------------------------------------ signing.md: from a web page

describe('docs/signing.md: the web round trip, page and server', () => {
  let daemon: CpsdServer;
  let app: SignWebApp;

  beforeAll(async () => {
    const port = await freePort();
    ({ daemon } = await startDaemon('doctor', { allowedOrigins: [`http://localhost:${port}`], allowHttpLocalhost: true }));
    app = await startSignWebApp(port, daemon.port);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await daemon?.close();
  });

  it('sign-page + sign-app: the holder signs from the page, the server finishes and verifies, the page says who signed', async () => {
    const { result, page } = await signFromPage(browser, app.origin, '1234');
    await page.context().close();
    expect(result).toBe('Signé par JEANNE MEDECIN-TEST : ordonnance signée');
    const { page: pageBlock, server } = signWebBlocks();
    ran.add(pageBlock).add(server);
  }, 60_000);
});

// ------------------------------------------------------------------ protocol.md

const APP = 'https://app.example';
/** The auth.authenticate example's token, for the formula block. */
let authExample: { nonce: string; token: AuthToken } | undefined;

describe('docs/protocol.md: the examples, sent to a daemon with the virtual card', () => {
  for (const b of blocks(PROTOCOL, 'rpc')) {
    it(`${b.where}: ${/"method":"([^"]+)"/.exec(b.code)?.[1] ?? '?'}`, async () => {
      const pin = /PIN (\d+)/.exec(b.note)?.[1] ?? '1234';
      const { daemon } = await startDaemon('doctor', { allowedOrigins: [APP] });
      // A page of APP, unless the marker says the example is a local application's (no Origin header).
      const local = /as a local application/.test(b.note);
      const ws = new WebSocket(`ws://127.0.0.1:${daemon.port}`, local ? {} : { origin: APP });
      const inbox: unknown[] = [];
      let wake: (() => void) | undefined;
      const typing: Promise<BrowserContext>[] = [];
      ws.on('message', (data) => {
        const m = JSON.parse(String(data)) as { method?: string; params?: { url?: string } };
        if (m.method === 'pin.required' && m.params?.url) typing.push(typePin(m.params.url, pin));
        inbox.push(m);
        wake?.();
      });
      const next = async (): Promise<unknown> => {
        for (let waited = 0; inbox.length === 0; waited++) {
          if (waited > 200) throw new Error('no answer within 20 s');
          await new Promise<void>((r) => ((wake = r), setTimeout(r, 100)));
        }
        return inbox.shift();
      };
      try {
        await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
        let request: { params?: { nonce?: string } } | undefined;
        for (const step of exchange(b.code)) {
          const documented = JSON.parse(step.text) as unknown;
          if (step.dir === '→') {
            request = documented as typeof request;
            ws.send(step.text);
            continue;
          }
          const got = await next();
          expect(mismatches(got, documented, daemon.port), `${b.where}\n  got:        ${JSON.stringify(got)}\n  documented: ${step.text}`).toEqual([]);
          const result = (got as { result?: Record<string, unknown> }).result;
          if (result?.format === 'web-eid:1.0' && request?.params?.nonce) authExample = { nonce: request.params.nonce, token: result as unknown as AuthToken };
        }
        await new Promise((r) => setTimeout(r, 200));
        expect(inbox, 'no message the example does not show').toEqual([]);
        ran.add(b);
      } finally {
        for (const context of await Promise.all(typing)) await context.close();
        ws.close();
        await daemon.close();
      }
    }, 60_000);
  }

  it('the formula block: the auth.authenticate example is signed over SHA-256(origin) ‖ SHA-256(nonce)', async () => {
    const b = one(PROTOCOL, 'formula');
    expect(b.code).toMatch(/^SHA-256\(origin\) ‖ SHA-256\(nonce\)\s/);
    expect(authExample, 'the auth.authenticate example ran first').toBeDefined();
    const { nonce, token } = authExample as { nonce: string; token: AuthToken };
    const h = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
    const cert = new X509Certificate(Buffer.from(token.unverifiedCertificate, 'base64'));
    expect(verifySignature('sha256', Buffer.concat([h(APP), h(nonce)]), cert.publicKey, Buffer.from(token.signature, 'base64'))).toBe(true);
    const pki = (f: string): Uint8Array => new Uint8Array(readFileSync(join(ROOT, 'fixtures/pki', f)));
    const holder = await verify(token, { origin: APP, nonce, trustAnchors: [pki('root.der')], intermediates: [pki('intermediate.der')], crls: [pki('fort-personnes.crl'), pki('racine.crl')], revocation: 'crl', crl: { fetch: false } });
    expect(holder.surname).toBe('MEDECIN-TEST');
    ran.add(b);
  });

  it('the config block: the daemon accepts it, it names every setting, each with its default but the examples', () => {
    const b = one(PROTOCOL, 'config');
    const documented = JSON.parse(b.code) as Record<string, unknown>;
    const parsed = validateConfig(documented, b.where);
    expect(Object.keys(documented).sort()).toEqual(Object.keys(DEFAULTS).sort());
    const examples = new Set(['allowedOrigins', 'ssoSeconds']);
    for (const [key, value] of Object.entries(DEFAULTS)) if (!examples.has(key)) expect(parsed[key as keyof DaemonConfig], key).toEqual(value);
    ran.add(b);
  });
});

describe('every block marked run', () => {
  it('was run, and passed, in this file', () => {
    const missed = [...INTEGRATION, ...PROTOCOL, ...Object.values(signWebBlocks())].filter((b) => b.run && !ran.has(b)).map((b) => `${b.where} (${b.run})`);
    expect(missed).toEqual([]);
  });
});
