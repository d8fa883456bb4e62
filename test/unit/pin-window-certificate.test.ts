/**
 * The daemon's PIN window names the certificate of the key the operation uses, read from the card
 * (its keyUsage): the signing (non-repudiation) one for `sign.hash`, the authentication one for a login;
 * in French, or in English for a browser that prefers it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InProcessBackend } from '../../cards/backends.js';
import { DEFAULTS } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { certificatePurpose } from '../../daemon/pin-guard.js';
import { CpsdServer } from '../../daemon/server.js';
import { fixtureCard, loadMaterial } from '../../sim/cps/fixtures.js';
import { rpcClient, type RpcClient } from '../helpers/rpc.js';

const ORIGIN = 'https://app.example';
let server: CpsdServer | undefined;
let rpc: RpcClient | undefined;

afterEach(async () => {
  await rpc?.close();
  await server?.close();
  rpc = server = undefined;
});

/** The PIN window's HTML for a request of a page of ORIGIN (left pending: the window is only read). */
async function pinWindow(method: string, params: Record<string, unknown>, acceptLanguage = 'fr-FR'): Promise<string> {
  server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN] }, new InProcessBackend(fixtureCard('doctor')), new Logger('error', () => undefined));
  await server.listen();
  rpc = await rpcClient(server.port, ORIGIN);
  void rpc.call(method, params);
  const url = String((await rpc.next('pin.required')).url);
  return (await fetch(url, { headers: { 'Accept-Language': acceptLanguage } })).text();
}

const certificateLine = (html: string): string | undefined => /<p id="certificate" data-certificate="(\w+)">([^<]*)<\/p>/.exec(html)?.slice(1).join(' | ');

describe('the PIN window names the certificate used', () => {
  it('sign.hash: the signing certificate, non-repudiation, in French', async () => {
    const html = await pinWindow('sign.hash', { hash: Buffer.alloc(32, 1).toString('base64url'), hashAlgorithm: 'SHA-256', document: 'Ordonnance.pdf' });
    expect(certificateLine(html)).toBe('signature | Certificat utilisé : signature (non-répudiation).');
  });

  it('auth.authenticate: the authentication certificate, in English for an English browser', async () => {
    const html = await pinWindow('auth.authenticate', { nonce: Buffer.alloc(32, 7).toString('base64') }, 'en-US,en;q=0.9');
    expect(certificateLine(html)).toBe('authentication | Certificate used: authentication.');
  });

  it('judges by the certificate’s keyUsage, not by what the operation asked', () => {
    const { authCert, signCert } = loadMaterial('doctor');
    expect([certificatePurpose(signCert, 'authentication'), certificatePurpose(authCert, 'signature')]).toEqual(['signature', 'authentication']);
  });
});
