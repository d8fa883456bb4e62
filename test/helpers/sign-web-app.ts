/**
 * docs/signing.md's web round trip as an application: its `sign-page` block saved as public/index.html,
 * its `sign-app` block type-checked, compiled and started (test/helpers/doc-app.ts), the trust folder laid
 * out by docs/integration.md's `sh` block, a PDF to sign in documents/; and the holder's part in Chromium:
 * click "Signer", type the PIN (or cancel) in the daemon's PIN window, read what the page says.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { appFolder, compile, removeAppFolder, run, typeErrors, write, type Run } from './doc-app.js';
import { docBlocks, type DocBlock } from './doc-blocks.js';
import { samplePdf } from './sign.js';

export const SIGNING = docBlocks('docs/signing.md');
/** The blocks of the round trip, each found once. */
export function signWebBlocks(): { page: DocBlock; server: DocBlock } {
  const one = (kind: string): DocBlock => {
    const found = SIGNING.filter((b) => b.run === kind);
    if (found.length !== 1) throw new Error(`docs/signing.md: ${found.length} "${kind}" blocks, expected one`);
    return found[0] as DocBlock;
  };
  return { page: one('sign-page'), server: one('sign-app') };
}

export interface SignWebApp {
  origin: string;
  dir: string;
  /** The signed PDF the server keeps (signed/ordonnance.pdf). */
  signedPdf: string;
  close(): Promise<void>;
}

/** Starts the documented server on `port` (its origin http://localhost:port), for a daemon on `daemonPort`. */
export async function startSignWebApp(port: number, daemonPort: number): Promise<SignWebApp> {
  const dir = appFolder();
  let server: Run | undefined;
  try {
    const [sh] = docBlocks('docs/integration.md').filter((b) => b.run === 'sh');
    const layout = run(dir, ['-euc', sh?.code ?? 'false'], {}, '/bin/sh');
    if ((await layout.exited) !== 0) throw new Error(`the trust folder layout failed: ${layout.stderr()}`);
    mkdirSync(join(dir, 'documents'));
    writeFileSync(join(dir, 'documents', 'ordonnance.pdf'), await samplePdf({ text: 'Ordonnance Dupont' }));
    const { page, server: block } = signWebBlocks();
    write(dir, 'public/index.html', page.code);
    const errors = typeErrors(write(dir, 'sign-server.ts', block.code));
    if (errors.length > 0) throw new Error(`docs/signing.md's server does not type-check:\n${errors.join('\n')}`);
    write(dir, 'sign-server.js', compile(block.code));
    const origin = `http://localhost:${port}`;
    server = run(dir, ['sign-server.js'], {
      PORT: String(port),
      APP_ORIGIN: origin,
      NODE_ENV: 'development',
      CPSD_PORT: String(daemonPort),
      CPSD_TRUST_DIR: 'trust',
      SESSION_SECRET: 'sign-web-test',
    });
    await server.waitFor(`listening for ${origin}`);
    const started = server;
    return {
      origin,
      dir,
      signedPdf: join(dir, 'signed', 'ordonnance.pdf'),
      close: async () => {
        started.child.kill();
        await started.exited;
        removeAppFolder(dir);
      },
    };
  } catch (error) {
    server?.child.kill();
    removeAppFolder(dir);
    throw error;
  }
}

export interface Signing {
  /** What the page says at the end ("Signé par …", "Signature annulée.", "Code erroné : …"). */
  result: string;
  page: Page;
  /** The hash the server's prepare step answered the page (base64url). */
  prepared: Promise<string>;
}

/**
 * Opens the page in a new browser context, clicks "Signer"; in the PIN window, `inWindow` (to read or
 * photograph it) then `pin` typed, or Cancel when null. The caller closes `page.context()`.
 */
export async function signFromPage(browser: Browser, origin: string, pin: string | null, inWindow?: (window: Page) => Promise<void>): Promise<Signing> {
  const context = await browser.newContext({ locale: 'fr-FR' });
  const page = await context.newPage();
  await page.goto(origin);
  await page.waitForFunction(() => (document.getElementById('document')?.textContent ?? '') !== '');
  const opened = context.waitForEvent('page');
  const prepared = page.waitForResponse((r) => r.url().endsWith('/prepare'), { timeout: 20_000 }).then(async (r) => String(((await r.json()) as { hash?: unknown }).hash));
  prepared.catch(() => undefined); // awaited only by the callers that want it
  await page.click('#sign');
  const window = await opened;
  await window.waitForURL(/\/pin\/[0-9a-f]{32}$/, { timeout: 20_000 });
  await window.waitForSelector('input[name=pin]');
  await inWindow?.(window);
  if (pin === null) await window.click('button[name=cancel]');
  else {
    await window.fill('input[name=pin]', pin);
    await window.click('button[type=submit]:not([name])');
  }
  await page.waitForFunction(() => !/^(|Signature en cours…)$/.test(document.getElementById('result')?.textContent ?? ''), undefined, { timeout: 20_000 });
  return { result: (await page.textContent('#result')) ?? '', page, prepared };
}
