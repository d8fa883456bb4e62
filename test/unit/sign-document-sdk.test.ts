/**
 * The browser SDK's signDocument (client/cpsd.js) in Node, against the daemon over the in-process virtual
 * card: its checks of what it is given (typed INVALID_REQUEST, nothing opened or sent), and the round trip
 * with cpsd/sign (prepare with the certificate it hands over, finish with the signature it resolves to).
 * The same in Chromium through pcscd: test/e2e/sign-web.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CpsdClient, CpsdError, signDocument } from '../../client/cpsd.js';
import { InProcessBackend } from '../../cards/backends.js';
import { DEFAULTS } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { finishPdf, preparePdf, verifyPdf } from '../../sign/index.js';
import { fixtureCard, fixturesDir } from '../../sim/cps/fixtures.js';
import { samplePdf } from '../helpers/sign.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ORIGIN = 'https://app.example';
const HASH = Buffer.alloc(32, 9).toString('base64url');
let server: CpsdServer | undefined;
let ws: WebSocket | undefined;

afterEach(async () => {
  ws?.close();
  await server?.close();
  ws = server = undefined;
});

/** What signDocument rejects with (in Node there is no window: opening one would throw a ReferenceError). */
async function refusal(options: Record<string, unknown>): Promise<{ code: string; field: string }> {
  const error = (await signDocument(options as unknown as Parameters<typeof signDocument>[0]).catch((e: unknown) => e)) as CpsdError;
  expect(error).toBeInstanceOf(CpsdError);
  return { code: error.code, field: String(error.field) };
}

describe('signDocument checks what it is given, before any window or connection', () => {
  it('a hash of another length than its algorithm’s: INVALID_REQUEST on hash', async () => {
    expect(await refusal({ hash: Buffer.alloc(20).toString('base64url'), document: 'a.pdf' })).toEqual({ code: 'INVALID_REQUEST', field: 'hash' });
    expect(await refusal({ hash: HASH, hashAlgorithm: 'SHA-1', document: 'a.pdf' })).toEqual({ code: 'INVALID_REQUEST', field: 'hash' });
    expect(await refusal({ hash: 'not base64!', document: 'a.pdf' })).toEqual({ code: 'INVALID_REQUEST', field: 'hash' });
  });

  it('an algorithm sign.hash does not take: INVALID_REQUEST on hashAlgorithm', async () => {
    expect(await refusal({ hash: HASH, hashAlgorithm: 'SHA-512', document: 'a.pdf' })).toEqual({ code: 'INVALID_REQUEST', field: 'hashAlgorithm' });
  });

  it('no document name, control characters, or more than the PIN window shows: INVALID_REQUEST on document', async () => {
    for (const document of [undefined, '', { type: 'application/pdf' }, 'a\nb.pdf', { name: 'x'.repeat(110), type: 'application/pdf', size: 48_213 }]) {
      expect(await refusal({ hash: HASH, document }), JSON.stringify(document)).toEqual({ code: 'INVALID_REQUEST', field: 'document' });
    }
  });
});

describe('CpsdClient.signDocument with the daemon', () => {
  /** The SDK's client as a page of ORIGIN, a stand-in popup, and the PIN typed once the SDK points it at the PIN page. */
  async function client(): Promise<{ sdk: CpsdClient; popup: { closed: boolean; location: { href: string }; close(): void }; typed: Promise<string> }> {
    server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN] }, new InProcessBackend(fixtureCard('doctor')), new Logger('error', () => undefined));
    await server.listen();
    ws = new WebSocket(`ws://127.0.0.1:${server.port}`, { origin: ORIGIN });
    await new Promise((resolve, reject) => ws?.once('open', resolve).once('error', reject));
    const popup = { closed: false, location: { href: '' }, close(): void { this.closed = true; } };
    const typed = (async (): Promise<string> => {
      for (let i = 0; i < 200 && !popup.location.href; i++) await new Promise((r) => setTimeout(r, 20));
      const html = await (await fetch(popup.location.href)).text();
      const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(html)?.[1] ?? '';
      await fetch(popup.location.href, { method: 'POST', body: new URLSearchParams({ csrf, pin: '1234' }), headers: { Origin: new URL(popup.location.href).origin } });
      return html;
    })();
    return { sdk: new CpsdClient(ws as unknown as globalThis.WebSocket), popup, typed };
  }

  it('hands the card’s signing certificate to prepare, and resolves to what finishPdf takes', async () => {
    const { sdk, popup, typed } = await client();
    const pdf = await samplePdf();
    let state: Awaited<ReturnType<typeof preparePdf>>['state'] | undefined;
    const answer = await sdk.signDocument({
      document: 'Ordonnance.pdf',
      popup: popup as unknown as Window,
      hash: async (signerCertificate) => {
        const prepared = await preparePdf(pdf, { signerCertificate });
        state = prepared.state;
        return prepared.hashBase64url;
      },
    });
    await typed;
    expect(Object.keys(answer).sort()).toEqual(['signature', 'signerCertificate']);
    const pki = (f: string): Buffer => readFileSync(join(fixturesDir(), 'pki', f));
    const [signer] = await verifyPdf(finishPdf(state as NonNullable<typeof state>, answer.signature, pdf), { trustAnchors: [pki('root.der')], intermediates: [pki('intermediate.der')], revocation: 'off' });
    expect(signer?.holder).toMatchObject({ surname: 'MEDECIN-TEST', givenName: 'JEANNE' });
    expect(signer?.certificate).toBeDefined();
    expect(popup.closed).toBe(true);
  });

  it('shows the document’s name, type and size in the PIN window, and the hash as it was given', async () => {
    const { sdk, popup, typed } = await client();
    const signed = sdk.signDocument({ hash: Buffer.alloc(32, 9).toString('base64'), document: { name: 'Ordonnance.pdf', type: 'application/pdf', size: 48_213 }, popup: popup as unknown as Window });
    const html = await typed;
    await signed;
    expect(/<dd id="document">([^<]*)<\/dd>/.exec(html)?.[1]).toMatch(/^Ordonnance\.pdf \(application\/pdf, 48 k.+\)$/);
    expect(/<dd id="hash"><code>([^<]*)<\/code>/.exec(html)?.[1]?.replace(/\s/g, '')).toBe('09'.repeat(32));
  });
});
