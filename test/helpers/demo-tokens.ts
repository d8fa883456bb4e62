/** Drives the demo relying party's API with tokens made by in-process virtual cards. */
import { createHash } from 'node:crypto';
import { Pin } from '../../cards/pin.js';
import { openCard } from '../../cards/atr-table.js';
import { CpsCard } from '../../cards/card.js';
import { signedData } from '../../pkcs/token.js';
import { fixtureCard, loadMaterial } from '../../sim/cps/fixtures.js';

/** A web-eid:1.0 token made by the in-process virtual card of `profile` for `origin` and `nonce`. */
export async function token(profile: string, origin: string, nonce: string): Promise<object> {
  const card = fixtureCard(profile);
  const driver = openCard({ transmit: async (c) => card.transmit(c) }, card.atr);
  await driver.verifyPin(new Pin('1234'));
  const signature = await driver.authenticate(CpsCard.digestInfo('sha256', createHash('sha256').update(signedData(origin, nonce)).digest()));
  return {
    unverifiedCertificate: Buffer.from(loadMaterial(profile).authCert).toString('base64'),
    algorithm: 'RS256',
    signature: Buffer.from(signature).toString('base64'),
    format: 'web-eid:1.0',
    appVersion: 'test',
  };
}

export async function verifyDemoTokens(origin: string): Promise<Record<string, number>> {
  const me = await fetch(`${origin}/api/me`);
  const cookie = (me.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const { csrf } = (await me.json()) as { csrf: string };
  const headers = { Cookie: cookie, Origin: origin, 'X-CSRF': csrf, 'Content-Type': 'application/json' };
  const nonce = async (): Promise<string> => ((await (await fetch(`${origin}/api/nonce`, { method: 'POST', headers })).json()) as { nonce: string }).nonce;
  const login = async (t: object): Promise<number> =>
    (await fetch(`${origin}/api/login`, { method: 'POST', headers, body: JSON.stringify({ token: t }) })).status;
  const good = await token('doctor', origin, await nonce());
  const first = await login(good);
  await nonce();
  const replay = await login(good);
  const otherOrigin = await login(await token('doctor', 'https://evil.example', await nonce()));
  const revoked = await login(await token('revoked', origin, await nonce()));
  return { first, replay, otherOrigin, revoked };
}
