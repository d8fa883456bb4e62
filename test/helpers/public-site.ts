/**
 * The demo relying party on a "public" https origin, for the Local Network Access tests (test/e2e/lna.test.ts):
 * `https://site.example:PORT`, served from 127.0.0.1 with a self-signed certificate made by `openssl`. The
 * browsers are told that site.example is 127.0.0.1 and that 127.0.0.1:PORT is a public address.
 *
 * The page is the demo's own (fetched from examples/demo's server, with its CSP): the same SDK, buttons and
 * error codes. Its /api routes are done here, as the demo does them, but for this origin: the daemon signs
 * the Origin header the browser sends, so the token must be verified against https://site.example:PORT.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryNonceStore, consumeNonce, issueNonce, verify, type VerifiedHolder } from '../../pkcs/verify.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'dist/cli/cpsd.js');
export const PUBLIC_HOST = 'site.example';

/** A key and a self-signed certificate for `host`, made by openssl in a temporary folder. */
export function selfSignedCertificate(host: string): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'cpsd-lna-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${host}`, '-addext', `subjectAltName=DNS:${host}`, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'pipe' });
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const pki = (name: string): Uint8Array => new Uint8Array(readFileSync(join(ROOT, 'fixtures/pki', name)));

function fetchText(url: string): Promise<{ body: string; csp: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ body, csp: String(res.headers['content-security-policy'] ?? '') }));
    }).on('error', reject);
  });
}

export interface PublicSite {
  server: Server;
  origin: string;
  close(): Promise<void>;
}

/** Starts the site on `port` (known beforehand: the daemon must allow the origin before the page exists). */
export function startPublicSite(options: { port: number; demoPort: number }): Promise<PublicSite> {
  const origin = `https://${PUBLIC_HOST}:${options.port}`;
  const store = new MemoryNonceStore();
  const sessions = new Map<string, { csrf: string; nonce?: string; holder?: VerifiedHolder }>();
  const trust = { trustAnchors: [pki('root.der')], intermediates: [pki('intermediate.der')], crls: [pki('fort-personnes.crl'), pki('racine.crl')], revocation: 'crl', crl: { fetch: false } } as const;

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify(body));
  };
  const body = (req: IncomingMessage): Promise<string> =>
    new Promise((resolve) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => resolve(text));
    });

  const server = createServer(selfSignedCertificate(PUBLIC_HOST), (req, res) => {
    void (async () => {
      const id = /(?:^|;\s*)rp=([0-9a-f]{32})/.exec(req.headers.cookie ?? '')?.[1];
      let s = id ? sessions.get(id) : undefined;
      if (!s) {
        const fresh = randomBytes(16).toString('hex');
        s = { csrf: randomBytes(16).toString('hex') };
        sessions.set(fresh, s);
        res.setHeader('Set-Cookie', `rp=${fresh}; HttpOnly; Secure; SameSite=Strict; Path=/`);
      }
      const url = new URL(req.url ?? '/', origin);
      if (req.method === 'GET' && url.pathname === '/') {
        const page = await fetchText(`http://127.0.0.1:${options.demoPort}/${url.search}`);
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': page.csp }).end(page.body);
        return;
      }
      if (req.method === 'GET' && url.pathname === '/cpsd.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(readFileSync(join(ROOT, 'client/cpsd.js')));
        return;
      }
      if (req.method === 'GET' && url.pathname === '/api/me') return json(res, 200, { holder: s.holder ?? null, csrf: s.csrf });
      if (req.method === 'POST' && (req.headers.origin !== origin || req.headers['x-csrf'] !== s.csrf)) return json(res, 403, { error: 'CSRF' });
      if (req.method === 'POST' && url.pathname === '/api/nonce') {
        s.nonce = await issueNonce(store);
        return json(res, 200, { nonce: s.nonce });
      }
      if (req.method === 'POST' && url.pathname === '/api/login') {
        try {
          const { token } = JSON.parse(await body(req)) as { token: unknown };
          const nonce = s.nonce ?? '';
          delete s.nonce;
          await consumeNonce(store, nonce);
          s.holder = await verify(token, { origin, nonce, ...trust, now: new Date() });
          return json(res, 200, { holder: s.holder });
        } catch (error) {
          return json(res, 401, { error: String((error as { code?: string }).code ?? error) });
        }
      }
      if (req.method === 'POST' && url.pathname === '/api/logout') {
        delete s.holder;
        return json(res, 200, { ok: true });
      }
      res.writeHead(404).end();
    })();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () =>
      resolve({
        server,
        origin,
        close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
      }),
    );
  });
}

/** `cpsd policy …` as IT runs it: the built CLI, its standard output. */
export function cpsdPolicy(args: string[]): string {
  const run = spawnSync(process.execPath, [CLI, 'policy', ...args], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`cpsd policy ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  return run.stdout;
}

/**
 * A system-wide policy file installed for one test and taken away after it, whatever happens: what was
 * there before (an administrator's file of the same name) is put back.
 */
export function installPolicyFile(path: string, content: string): { remove(): void } {
  const before = existsSync(path) ? readFileSync(path) : undefined;
  // The topmost folder this creates (e.g. /etc/chromium when nothing was there), to take it away too.
  const createdDir = mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  return {
    remove(): void {
      if (before !== undefined) writeFileSync(path, before);
      else rmSync(path, { force: true });
      if (createdDir !== undefined) rmSync(createdDir, { recursive: true, force: true });
    },
  };
}
