/**
 * auth.authenticate with `situations: true`: the practice situations and the card identity come with the
 * token, read in the card job that verified the PIN (one VERIFY, tries untouched, card reset after), and
 * the SDK's types name exactly what the daemon sends. Expected values are fixtures/profiles/doctor.json's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { InProcessBackend } from '../../cards/backends.js';
import { DEFAULTS, type DaemonConfig } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import type { AuthWithSituations } from '../../daemon/methods.js';
import { CpsdServer } from '../../daemon/server.js';
import { holderClaimsWithSituations } from '../../idp/claims.js';
import { verify, type AuthToken } from '../../pkcs/verify.js';
import type { VirtualCpsCard } from '../../sim/cps/card.js';
import { fixtureCard, fixturesDir } from '../../sim/cps/fixtures.js';
import { CpsdClient, type AuthenticationWithSituations, type CardIdentity, type PracticeSituation } from '../../client/cpsd.js';
import { DOCTOR_SUBJECT_REF_PRO } from '../helpers/psc-claims.js';
import { rpcClient, type RpcClient } from '../helpers/rpc.js';

const ORIGIN = 'https://app.example';
const PIN = '8073';
const WRONG = '5196';
const nonce = Buffer.alloc(32, 7).toString('base64');
const TOKEN_KEYS = ['algorithm', 'appVersion', 'format', 'signature', 'unverifiedCertificate'];
/** fixtures/profiles/doctor.json: holder and situations. */
const DOCTOR_IDENTITY = {
  nationalId: '899700012349', idKind: 'RPPS', rpps: '99700012349', surname: 'MEDECIN-TEST', givenName: 'JEANNE',
  profession: { code: '10', label: 'Médecin' }, specialty: 'SM26', cardType: 'CPS', serial: '9921384501',
  notBefore: '2025-01-01T00:00:00.000Z', notAfter: '2028-01-01T00:00:00.000Z',
};
const DOCTOR_SITUATIONS = [
  { index: 1, structureName: 'HOPITAL GENERIQUE TEST', structureId: '10B0307377', structureIdKind: 'FINESS', sector: 'SA01' },
  { index: 2, structureName: 'CABINET DR MEDECIN-TEST', structureId: '499700735741008', structureIdKind: 'RPPS_CABINET', sector: 'SA07' },
];

const pki = (f: string): Uint8Array => new Uint8Array(readFileSync(join(fixturesDir(), 'pki', f)));
const trust = {
  trustAnchors: [pki('root.der')],
  intermediates: [pki('intermediate.der')],
  crls: [pki('fort-personnes.crl'), pki('racine.crl')],
  revocation: 'crl',
  crl: { fetch: false },
  now: new Date('2026-06-01T00:00:00Z'),
} as const;

let server: CpsdServer | undefined;
let sim: InProcessBackend<VirtualCpsCard>;
/** Every APDU the card received, hex. */
let apdus: string[] = [];
/** Answers 6F00 to the SELECT of this situation file (e.g. 'd121'), to break the read half-way. */
let failSelect: string | undefined;

async function start(config: Partial<DaemonConfig> = {}, profile = 'doctor', personality?: 'cps3-cl'): Promise<void> {
  const card = fixtureCard(profile, personality ? { personality } : {});
  card.image.pin.value = PIN;
  const transmit = card.transmit.bind(card);
  card.transmit = (bytes: Uint8Array): Uint8Array => {
    const hex = Buffer.from(bytes).toString('hex');
    apdus.push(hex);
    if (failSelect && hex.startsWith('00a4') && hex.endsWith(failSelect)) return Uint8Array.of(0x6f, 0x00);
    return transmit(bytes);
  };
  sim = new InProcessBackend(card);
  server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN], ...config }, sim, new Logger('error', () => undefined));
  await server.listen();
}

afterEach(async () => {
  await server?.close();
  server = undefined;
  apdus = [];
  failSelect = undefined;
});

const connect = (origin: string | null = null): Promise<RpcClient> => rpcClient(server?.port ?? 0, origin);
/** VERIFY commands that carry a PIN (not the empty VERIFY that asks the status). */
const pinVerifies = (): string[] => apdus.filter((a) => a.startsWith('002000') && a.length > 8);
/** SELECTs of the situation files 3F00/0001/D120…D12F. */
const situationSelects = (): string[] => apdus.filter((a) => /^00a4.*d12[0-9a-f]$/.test(a));

async function typePin(url: string, pin: string): Promise<void> {
  const html = await (await fetch(url)).text();
  const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(html)?.[1] ?? '';
  await fetch(url, { method: 'POST', body: new URLSearchParams({ csrf, pin }), headers: { Origin: new URL(url).origin } });
}

describe('auth.authenticate with situations', () => {
  it('returns the token, the card identity and both situations of the doctor, with one VERIFY and the tries untouched', async () => {
    await start();
    const rpc = await connect();
    const result = (await rpc.call('auth.authenticate', { nonce, pin: PIN, situations: true })).result as unknown as AuthWithSituations;
    expect(Object.keys(result).sort()).toEqual(['identity', 'situations', 'token']);
    expect(Object.keys(result.token).sort()).toEqual(TOKEN_KEYS);
    expect(result.identity).toEqual(DOCTOR_IDENTITY);
    expect(result.situations).toEqual(DOCTOR_SITUATIONS);
    expect(pinVerifies()).toEqual(['002000010438303733']); // "8073", once
    expect(situationSelects()).toHaveLength(2);
    // The situations were read after the PIN was verified, in the same job.
    expect(apdus.findIndex((a) => /d120$/.test(a))).toBeGreaterThan(apdus.indexOf('002000010438303733'));
    expect(sim.card?.image.pin.triesLeft).toBe(3);
    expect(sim.card?.pinVerified).toBe(false); // reset afterwards, as without situations
    expect((await rpc.call('card.identity')).result).toEqual(result.identity);

    // The token is the one cpsd/verify takes as is, and the IdP's claims follow from it.
    const holder = await verify(result.token, { localApplication: true, nonce, ...trust });
    expect(holderClaimsWithSituations(holder, result.identity, result.situations ?? [])).toMatchObject({
      SubjectNameID: '899700012349',
      SubjectRefPro: DOCTOR_SUBJECT_REF_PRO,
      SubjectOrganization: 'HOPITAL GENERIQUE TEST',
      Secteur_Activite: 'SA01^1.2.250.1.71.4.2.4',
    });
  });

  it('without the flag (or with false): the token alone, and no situation read', async () => {
    await start();
    const rpc = await connect();
    for (const params of [{ nonce, pin: PIN }, { nonce, pin: PIN, situations: false }]) {
      const token = (await rpc.call('auth.authenticate', params)).result ?? {};
      expect(Object.keys(token).sort()).toEqual(TOKEN_KEYS);
      expect(token.format).toBe('web-eid:1.0');
    }
    expect(situationSelects()).toEqual([]);
  });

  it('a card without situations gives []', async () => {
    await start({}, 'cpf-intern');
    const rpc = await connect();
    const result = (await rpc.call('auth.authenticate', { nonce, pin: PIN, situations: true })).result as unknown as AuthWithSituations;
    expect(result.situations).toEqual([]);
    expect(result.identity).toMatchObject({ nationalId: '899700056783', cardType: 'CPF' });
    expect(Object.keys(result.token).sort()).toEqual(TOKEN_KEYS);
  });

  it('a wrong PIN: PIN_INCORRECT with the tries left, and no situation read', async () => {
    await start();
    const rpc = await connect();
    const answer = await rpc.call('auth.authenticate', { nonce, pin: WRONG, situations: true });
    expect(answer.error?.data).toEqual({ code: 'PIN_INCORRECT', triesLeft: 2 });
    expect(answer.result).toBeUndefined();
    expect(situationSelects()).toEqual([]);
    expect(sim.card?.image.pin.triesLeft).toBe(2);
  });

  it('a web page through the PIN page, then again within the SSO window: situations both times, one PIN entry', async () => {
    await start({ ssoSeconds: { [ORIGIN]: 600 } });
    const rpc = await connect(ORIGIN);
    const first = rpc.call('auth.authenticate', { nonce, situations: true });
    await typePin(String((await rpc.next('pin.required')).url), PIN);
    expect(((await first).result as unknown as AuthWithSituations).situations).toEqual(DOCTOR_SITUATIONS);
    rpc.notifications.length = 0;
    const again = (await rpc.call('auth.authenticate', { nonce, situations: true })).result as unknown as AuthWithSituations;
    expect(rpc.notifications.filter((n) => n.method === 'pin.required')).toEqual([]);
    expect(again.situations).toEqual(DOCTOR_SITUATIONS);
    expect(pinVerifies()).toHaveLength(1);
    // After logout the SSO shortcut is gone: no situations without a new PIN.
    await rpc.call('session.logout');
    const before = situationSelects().length;
    const third = rpc.call('auth.authenticate', { nonce, situations: true });
    expect(await rpc.next('pin.required')).toMatchObject({ purpose: 'authentication' });
    expect(situationSelects()).toHaveLength(before);
    void third; // left pending (this client keeps calls pending on close); closing cancels the PIN entry
    await rpc.close();
  });

  it('situations unreadable after the signature: the token still, situations null with the reason, the card reset', async () => {
    await start();
    failSelect = 'd121';
    const rpc = await connect();
    const result = (await rpc.call('auth.authenticate', { nonce, pin: PIN, situations: true })).result as unknown as AuthWithSituations;
    expect(result).toMatchObject({ situations: null, situationsError: { code: 'CARD_ERROR' } });
    expect(result.identity).toEqual(DOCTOR_IDENTITY);
    expect((await verify(result.token, { localApplication: true, nonce, ...trust })).nationalId).toBe('899700012349');
    expect(sim.card?.pinVerified).toBe(false);
    expect(sim.card?.image.pin.triesLeft).toBe(3);
  });

  it('a contactless login (no PIN) cannot read them: situations null, CONTACTLESS_NOT_ALLOWED', async () => {
    await start({ contactlessOrigins: [ORIGIN] }, 'doctor', 'cps3-cl');
    const rpc = await connect(ORIGIN);
    const result = (await rpc.call('auth.authenticate', { nonce, situations: true })).result as unknown as AuthWithSituations;
    expect(result).toMatchObject({ token: { format: 'web-eid:1.0' }, situations: null, situationsError: { code: 'CONTACTLESS_NOT_ALLOWED' } });
    expect(situationSelects()).toEqual([]);
  });

  it('refuses a situations parameter that is not a boolean', async () => {
    await start();
    const rpc = await connect();
    expect((await rpc.call('auth.authenticate', { nonce, pin: PIN, situations: 'yes' })).error?.data.code).toBe('INVALID_REQUEST');
    expect(pinVerifies()).toEqual([]);
  });
});

describe('client/cpsd.d.ts', () => {
  /** The members an interface of the SDK's types declares. */
  const declared = (name: string): string[] => {
    const dts = readFileSync(new URL('../../client/cpsd.d.ts', import.meta.url), 'utf8');
    const body = new RegExp(`export interface ${name} \\{([\\s\\S]*?)\\n\\}`).exec(dts)?.[1] ?? '';
    return [...body.matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1] ?? '').sort();
  };

  it('CardIdentity and PracticeSituation name exactly what auth.authenticate sends, AuthenticationWithSituations takes its result', async () => {
    await start();
    const rpc = await connect();
    const result = (await rpc.call('auth.authenticate', { nonce, pin: PIN, situations: true })).result as unknown as AuthWithSituations;
    expect(declared('CardIdentity')).toEqual(Object.keys(result.identity).sort());
    expect(declared('PracticeSituation')).toEqual(Object.keys(result.situations?.[0] ?? {}).sort());
    expect(declared('AuthToken')).toEqual(TOKEN_KEYS);
    // Compile-time: the daemon's types are assignable to the SDK's (tsc on the tests).
    const sdk: AuthenticationWithSituations = result;
    const identity: CardIdentity = result.identity;
    const situations: PracticeSituation[] | null = result.situations;
    const token: AuthToken = sdk.token;
    expect([identity, situations, token]).toHaveLength(3);
  });
});

describe('client/cpsd.js', () => {
  /** The SDK's client over a Node WebSocket, as a page of ORIGIN; the popup is a stand-in whose location the SDK sets. */
  async function sdk(): Promise<{ client: CpsdClient; popup: { closed: boolean; location: { href: string }; close(): void } }> {
    const ws = new WebSocket(`ws://127.0.0.1:${server?.port ?? 0}`, { origin: ORIGIN });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const popup = { closed: false, location: { href: '' }, close(): void { this.closed = true; } };
    return { client: new CpsdClient(ws as unknown as globalThis.WebSocket), popup };
  }
  /** Types the PIN once the SDK pointed the popup at the PIN page. */
  async function typeWhenAsked(popup: { location: { href: string } }): Promise<void> {
    for (let i = 0; i < 100 && !popup.location.href; i++) await new Promise((r) => setTimeout(r, 20));
    await typePin(popup.location.href, PIN);
  }

  it('authenticate(nonce, { situations: true }) resolves to { token, identity, situations }; without it, to the token', async () => {
    await start();
    const { client, popup } = await sdk();
    const [withSituations] = await Promise.all([client.authenticate(nonce, { popup: popup as unknown as Window, situations: true }), typeWhenAsked(popup)]);
    expect(Object.keys(withSituations).sort()).toEqual(['identity', 'situations', 'token']);
    expect(withSituations.situations).toEqual(DOCTOR_SITUATIONS);
    expect(withSituations.identity).toEqual(DOCTOR_IDENTITY);
    expect(Object.keys(withSituations.token).sort()).toEqual(TOKEN_KEYS);
    const second = await sdk();
    const [token] = await Promise.all([second.client.authenticate(nonce, { popup: second.popup as unknown as Window }), typeWhenAsked(second.popup)]);
    expect(Object.keys(token).sort()).toEqual(TOKEN_KEYS);
    expect(situationSelects()).toHaveLength(2); // the first login's two situations only
    client.close();
    second.client.close();
  });
});
