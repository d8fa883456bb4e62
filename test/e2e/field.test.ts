/**
 * Real cards in the field, played by the virtual card through pcsclite → pcscd → vpcd:
 * ATR variants inside and outside ANS's masks (with OpenSC's own view of each, recorded), a CPS4 answering
 * 6985 mid-sequence, and one card seen through two readers (contact and contactless).
 */
import { execFile } from 'node:child_process';
import { createHash, verify, X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PcscBackend } from '../../cards/backends.js';
import { DEFAULTS } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { loadMaterial, loadProfile } from '../../sim/cps/fixtures.js';
import { CPS3, CPS3_CL, CPS3_CL_OUTSIDE, CPS3_CL_VARIANTS, CPS3_OUTSIDE, CPS3_VARIANTS } from '../helpers/atr-variants.js';
import { IccProcess } from '../helpers/icc.js';
import { VPCD_READER } from '../helpers/pcscd.js';
import { rpcClient, type RpcClient } from '../helpers/rpc.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../dist/cli/cpsd.js', import.meta.url));
const ORIGIN = 'https://app.example';
const SECOND_READER = 'Virtual PCD 00 01';
const SECOND_PORT = 35964;
const nonce = Buffer.alloc(32, 5).toString('base64');
const vr = useVirtualReader();
let backend: PcscBackend;
let server: CpsdServer;
let rpc: RpcClient;

beforeAll(async () => {
  backend = new PcscBackend();
  await backend.settled();
  server = new CpsdServer(
    { ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN], contactlessOrigins: [ORIGIN], ratePerSecond: 1000 },
    backend,
    new Logger('error', () => undefined),
  );
  await server.listen();
  rpc = await rpcClient(server.port);
});

afterAll(async () => {
  await rpc?.close();
  await server?.close();
  await server?.sessions.close();
});

/** Waits until the daemon's own PC/SC context sees `reader` with (or without) a card: contexts race. */
async function seen(reader: string, present = true): Promise<void> {
  for (let i = 0; i < 150 && backend.readers().some((r) => r.name === reader && r.cardPresent) !== present; i++) await new Promise((r) => setTimeout(r, 20));
}

async function insert(options: Parameters<typeof vr.insert>[0]): Promise<void> {
  await vr.insert(options);
  await seen(VPCD_READER);
}

/** OpenSC's name for the card in the first reader ("IAS-ECC", "Unsupported card"…). */
async function openscName(): Promise<string> {
  try {
    return (await run('opensc-tool', ['--reader', '0', '--name'])).stdout.trim();
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? '').trim();
  }
}

const status = async (params: Record<string, unknown> = { reader: VPCD_READER }) => (await rpc.call('card.status', params)).result ?? {};
const identity = async (params: Record<string, unknown> = { reader: VPCD_READER }) => (await rpc.call('card.identity', params)).result ?? {};

describe('ATR variants inside the masks', () => {
  let contactIdentity: Record<string, unknown>;
  let contactlessStatus: Record<string, unknown>;

  it('reads the contact and contactless samples (the reference for the variants)', async () => {
    await insert({ profile: 'doctor', atr: CPS3 });
    contactIdentity = await identity();
    expect(contactIdentity).toMatchObject({ nationalId: loadProfile('doctor').holder.idNat });
    await vr.remove();
    await seen(VPCD_READER, false);
    await insert({ profile: 'doctor', personality: 'cps3-cl', atr: CPS3_CL });
    contactlessStatus = await status();
    expect(contactlessStatus).toMatchObject({ generation: 'CPS3', interface: 'contactless', serial: loadProfile('doctor').serial });
  });

  // OpenSC recognises the contact variants with the same mask (its "IAS/ECC CPx" entry); it never
  // recognises a contactless CPS3, sample included (its entry starts with 2B: docs/card-facts.md §1.2).
  it.each(CPS3_VARIANTS)('CPS3 contact %s: identified and read like the sample; OpenSC: IAS-ECC', async (atr) => {
    await insert({ profile: 'doctor', atr });
    expect(await status()).toMatchObject({ atr, generation: 'CPS3', interface: 'contact', pin: { triesLeft: 3 } });
    expect(await identity()).toEqual(contactIdentity);
    expect(await openscName()).toBe('IAS-ECC');
  });

  it.each(CPS3_CL_VARIANTS)('CPS3 contactless %s: identified and read like the sample; OpenSC: unsupported', async (atr) => {
    await insert({ profile: 'doctor', personality: 'cps3-cl', atr });
    expect(await status()).toEqual({ ...contactlessStatus, atr });
    expect(await openscName()).toBe('Unsupported card');
  });

  it.each([...CPS3_OUTSIDE, ...CPS3_CL_OUTSIDE])('%s, one fixed byte changed: CARD_UNSUPPORTED with the ATR; OpenSC: unsupported', async (atr) => {
    await insert({ profile: 'doctor', personality: atr.startsWith('3B8F') ? 'cps3-cl' : 'cps3', atr });
    const answer = await rpc.call('card.status', { reader: VPCD_READER });
    expect(answer.error?.data.code).toBe('CARD_UNSUPPORTED');
    expect(answer.error?.message).toContain(atr);
    expect(await openscName()).toBe('Unsupported card');
  });

  it('cpsd status tells the technician: exit 6 and the ATR', async () => {
    const atr = CPS3_OUTSIDE[0] as string;
    await insert({ profile: 'doctor', atr });
    const failed = await run('node', [CLI, 'status', '--reader', VPCD_READER]).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(failed?.code).toBe(6);
    expect(failed?.stderr).toContain(atr);
  });
});

describe('a CPS4 answering 6985 mid-sequence', () => {
  const pin = loadProfile('nurse').pin;

  it('a refused READ BINARY: the identity is read all the same', async () => {
    await insert({ profile: 'nurse', faults: { statusAt: { ins: 0xb0, nth: 3, sw: 0x6985 } } });
    expect(await identity()).toMatchObject({ nationalId: loadProfile('nurse').holder.idNat });
  });

  it('a refused PSO during a login: typed error, PIN tries unchanged, the next login on the same session works', async () => {
    await insert({ profile: 'nurse', faults: { statusAt: { ins: 0x2a, sw: 0x6985 } } });
    const first = await rpc.call('auth.authenticate', { nonce, reader: VPCD_READER, pin });
    expect(first.error?.data.code).toBe('CARD_ERROR');
    expect(first.error?.message).toMatch(/6985.*try again/);
    expect(await status()).toMatchObject({ generation: 'CPS4', pin: { triesLeft: 3 } });
    const second = await rpc.call('auth.authenticate', { nonce, reader: VPCD_READER, pin });
    expect(second.result?.format).toBe('web-eid:1.0');
    expect((await status()).pin).toMatchObject({ triesLeft: 3 });
  });
});

describe('one card seen through two readers (dual-interface reader)', () => {
  let second: IccProcess;
  const doctor = loadProfile('doctor');
  const material = loadMaterial('doctor');

  beforeAll(() => {
    second = new IccProcess();
  });
  afterAll(async () => {
    await second.remove().catch(() => undefined);
    second.close();
  });

  /** The contactless side in the first reader (where a naive default would look), the contact side in the second. */
  async function dual(): Promise<void> {
    await insert({ profile: 'doctor', personality: 'cps3-cl' });
    await second.insert({ port: SECOND_PORT, profile: 'doctor', personality: 'cps3' });
    await seen(SECOND_READER);
  }

  it('readers.list and card.status say which readers show the same card', async () => {
    await dual();
    const readers = (await rpc.call('readers.list')).result?.readers as Record<string, unknown>[];
    expect(readers.find((r) => r.name === VPCD_READER)).toMatchObject({ interface: 'contactless', sameCardAs: [SECOND_READER] });
    expect(readers.find((r) => r.name === SECOND_READER)).toMatchObject({ interface: 'contact', sameCardAs: [VPCD_READER] });
    expect(await status({})).toMatchObject({ reader: SECOND_READER, interface: 'contact', serial: doctor.serial, sameCardAs: [VPCD_READER] });
    await second.remove();
    await seen(SECOND_READER, false);
  });

  it('cpsd readers and cpsd status say it to the technician, and status picks the contact side', async () => {
    await dual();
    const env = { ...process.env, LANG: 'C' };
    const list = JSON.parse((await run('node', [CLI, 'readers', '--json'], { env })).stdout) as Record<string, unknown>[];
    expect(list.find((r) => r.name === VPCD_READER)).toMatchObject({ interface: 'contactless', sameCardAs: [SECOND_READER] });
    const human = (await run('node', [CLI, 'readers'], { env })).stdout;
    expect(human).toContain(`${VPCD_READER}\tcard ${CPS3_CL} (contactless)\tSame card also in: ${SECOND_READER}`);
    const st = JSON.parse((await run('node', [CLI, 'status', '--json'], { env })).stdout) as Record<string, unknown>;
    expect(st).toMatchObject({ reader: SECOND_READER, interface: 'contact', sameCardAs: [VPCD_READER] });
    expect((await run('node', [CLI, 'status'], { env: { ...env, LANG: 'fr_FR.UTF-8' } })).stdout).toContain(`Même carte aussi dans: ${VPCD_READER}`);
    await second.remove();
    await seen(SECOND_READER, false);
  });

  it('identity read once, by contact; login by contact with the PIN, even when asked on the contactless reader', async () => {
    await dual();
    expect(await identity({})).toMatchObject({ nationalId: doctor.holder.idNat });
    const token = (await rpc.call('auth.authenticate', { nonce, reader: VPCD_READER, pin: doctor.pin })).result ?? {};
    const certificate = Buffer.from(String(token.unverifiedCertificate), 'base64');
    expect(certificate.equals(Buffer.from(material.authCert))).toBe(true);
    expect(certificate.equals(Buffer.from(material.techCert))).toBe(false);
    const signed = Buffer.concat([createHash('sha256').update('null').digest(), createHash('sha256').update(nonce).digest()]);
    expect(verify('sha256', signed, new X509Certificate(certificate).publicKey, Buffer.from(String(token.signature), 'base64'))).toBe(true);
    // The contactless side saw the serial read only: no directory, no identity object, no private-key operation.
    const contactless = (await vr.icc.stats()) as unknown as { cardApdus: number; cardRsa: number };
    expect(contactless.cardRsa).toBe(0);
    expect(contactless.cardApdus).toBeLessThanOrEqual(3);
    const contact = (await second.stats()) as unknown as { cardRsa: number };
    expect(contact.cardRsa).toBe(1);
    await second.remove();
    await seen(SECOND_READER, false);
  });

  it('a web login asked on the contactless reader goes to the PIN page of the contact side, even where contactless is allowed', async () => {
    await dual();
    const tab = await rpcClient(server.port, ORIGIN);
    const pending = tab.call('auth.authenticate', { nonce, reader: VPCD_READER });
    expect(await tab.next('pin.required')).toMatchObject({ purpose: 'authentication', triesLeft: 3 });
    await tab.close();
    void pending; // never answered: the tab went away
    expect(((await vr.icc.stats()) as unknown as { cardRsa: number }).cardRsa).toBe(0);
    await second.remove();
    await seen(SECOND_READER, false);
  });

  it('without the contact side, the allowed origin gets the contactless token, told apart by its certificate', async () => {
    await insert({ profile: 'doctor', personality: 'cps3-cl' });
    const tab = await rpcClient(server.port, ORIGIN);
    const token = (await tab.call('auth.authenticate', { nonce, reader: VPCD_READER })).result ?? {};
    expect(Buffer.from(String(token.unverifiedCertificate), 'base64').equals(Buffer.from(material.techCert))).toBe(true);
    await tab.close();
  });
});
