/**
 * The daemon's PKCS#11 socket with the in-process virtual card, driven by a raw client that plays
 * modules (test/helpers/pkcs11-wire.ts): who may sign, what crosses, hostile frames. Signatures are
 * checked with node:crypto against the card's certificate; what applications do through the real
 * module is in test/e2e/pkcs11*.test.ts.
 */
import { constants, createHash, verify, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InProcessBackend } from '../../cards/backends.js';
import { MemoryCardCache } from '../../cards/public-data.js';
import { CardSessions } from '../../cards/session.js';
import { Logger } from '../../daemon/log.js';
import { CKA, CKM, CKO, CKR, CKU_CONTEXT_SPECIFIC, CKU_USER, CKG_MGF1_SHA256 } from '../../pkcs11/constants.js';
import { OP, Pkcs11Server } from '../../pkcs11/server.js';
import { Fields, TAG, field, u32 } from '../../pkcs11/wire.js';
import type { VirtualCpsCard } from '../../sim/cps/card.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { FaultyCard, type FaultOptions } from '../../sim/cps/faults.js';
import { WireClient } from '../helpers/pkcs11-wire.js';
import { rpcClient } from '../helpers/rpc.js';
import { CpsdServer } from '../../daemon/server.js';
import { DEFAULTS } from '../../daemon/config.js';

const PIN = '8073';
const WRONG = '5196';
const logs: string[] = [];
let server: Pkcs11Server | undefined;
let sessions: CardSessions | undefined;
let sim: InProcessBackend<VirtualCpsCard>;
let faulty: InProcessBackend<FaultyCard>;
let dir: string;
const clients: WireClient[] = [];

async function start(personality: 'cps3' | 'cps4' = 'cps3', peerUids?: () => Promise<number[] | undefined>): Promise<string> {
  const card = fixtureCard('doctor', { personality });
  card.image.pin.value = PIN;
  sim = new InProcessBackend(card);
  sessions = new CardSessions(sim);
  dir = mkdtempSync(join(tmpdir(), 'cpsd-p11-'));
  const socketPath = join(dir, 'cpsd', 'pkcs11.sock');
  server = new Pkcs11Server({ sessions, cache: new MemoryCardCache(), log: new Logger('debug', (l) => void logs.push(l)), socketPath, ...(peerUids ? { peerUids } : {}) });
  await server.listen();
  return socketPath;
}

async function client(path: string): Promise<WireClient> {
  const c = await WireClient.connect(path);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server?.close();
  await sessions?.close();
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

interface Obj {
  handle: number;
  attrs: Map<number, Buffer>;
}

async function token(c: WireClient, slot: { reader: string; generation: number }): Promise<{ fields: Fields; objects: Obj[] }> {
  const a = await c.call(OP.TOKEN, c.target(slot));
  expect(a.rv).toBe(CKR.OK);
  const t = Fields.of(a.fields.bytes(TAG.TOKEN) as Buffer);
  const objects = t.all(TAG.OBJECT).map((o) => {
    const f = Fields.of(o);
    const attrs = new Map<number, Buffer>();
    for (const raw of f.all(TAG.ATTR)) {
      const at = Fields.of(raw);
      attrs.set(at.needU32(TAG.ATTR_TYPE), at.bytes(TAG.ATTR_VALUE) as Buffer);
    }
    return { handle: f.needU32(TAG.HANDLE), attrs };
  });
  return { fields: t, objects };
}

const cls = (o: Obj): number => (o.attrs.get(CKA.CLASS) as Buffer).readUInt32BE(0);

function login(c: WireClient, slot: { reader: string; generation: number }, pin: string, userType = CKU_USER, handle?: number) {
  return c.call(OP.LOGIN, [...c.target(slot), field(TAG.USER_TYPE, u32(userType)), field(TAG.PIN, Buffer.from(pin)), ...(handle ? [field(TAG.HANDLE, u32(handle))] : [])]);
}

function sign(c: WireClient, slot: { reader: string; generation: number }, handle: number, mechanism: number, data: Uint8Array, extra: ReturnType<typeof field>[] = []) {
  return c.call(OP.SIGN, [...c.target(slot), field(TAG.HANDLE, u32(handle)), field(TAG.MECH_TYPE, u32(mechanism)), field(TAG.DATA, data), ...extra]);
}

/** The private key of a use ('auth' first, 'sign' second in card order) and its certificate. */
async function keyPair(c: WireClient, slot: { reader: string; generation: number }, which: 0 | 1): Promise<{ handle: number; cert: X509Certificate }> {
  const { objects } = await token(c, slot);
  const keys = objects.filter((o) => cls(o) === CKO.PRIVATE_KEY);
  const key = keys[which] as Obj;
  const id = key.attrs.get(CKA.ID) as Buffer;
  const cert = objects.find((o) => cls(o) === CKO.CERTIFICATE && (o.attrs.get(CKA.ID) as Buffer).equals(id)) as Obj;
  return { handle: key.handle, cert: new X509Certificate(cert.attrs.get(CKA.VALUE) as Buffer) };
}

describe('PKCS#11 socket', () => {
  it('creates its directory 0700 and its socket 0600', async () => {
    const path = await start();
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('refuses a peer whose owner is not this user', async () => {
    const path = await start('cps3', async () => [(process.getuid?.() ?? 0) + 1]);
    await expect(WireClient.connect(path)).rejects.toThrow();
    expect(logs.some((l) => l.includes('pkcs11-peer-refused'))).toBe(true);
  });

  it('answers any request before HELLO with CKR_CRYPTOKI_NOT_INITIALIZED and closes', async () => {
    const c = await WireClient.connect(await start(), false);
    const a = await c.call(OP.SLOTS);
    expect(a.rv).toBe(CKR.CRYPTOKI_NOT_INITIALIZED);
    await c.closed;
  });

  it('refuses another protocol version', async () => {
    const c = await WireClient.connect(await start(), false);
    const a = await c.call(OP.HELLO, [field(TAG.VERSION, u32(2))]);
    expect(a.rv).toBe(CKR.DEVICE_ERROR);
    await c.closed;
  });

  it('lists the reader with its card, and a token with a certificate, public and private key per pair and a profile', async () => {
    const c = await client(await start());
    const slot = await c.slot();
    const { fields, objects } = await token(c, slot);
    expect(fields.needUtf8(TAG.LABEL)).toMatch(/^CPS3 /);
    expect(objects.filter((o) => cls(o) === CKO.CERTIFICATE)).toHaveLength(2);
    expect(objects.filter((o) => cls(o) === CKO.PUBLIC_KEY)).toHaveLength(2);
    expect(objects.filter((o) => cls(o) === CKO.PRIVATE_KEY)).toHaveLength(2);
    expect(objects.filter((o) => cls(o) === CKO.PROFILE)).toHaveLength(1);
    // The public key's modulus is the certificate's.
    const { cert } = await keyPair(c, slot, 0);
    const pub = objects.find((o) => cls(o) === CKO.PUBLIC_KEY) as Obj;
    const jwk = cert.publicKey.export({ format: 'jwk' });
    expect((pub.attrs.get(CKA.MODULUS) as Buffer).toString('base64url')).toBe(jwk.n);
  });

  it('refuses to sign for a connection that did not log in, while another is logged in', async () => {
    const path = await start();
    const a = await client(path);
    const b = await client(path);
    const slot = await a.slot();
    const { handle } = await keyPair(a, slot, 0);
    expect((await login(a, slot, PIN)).rv).toBe(CKR.OK);
    const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update('x').digest()]);
    expect((await sign(b, slot, handle, CKM.RSA_PKCS, digestInfo)).rv).toBe(CKR.USER_NOT_LOGGED_IN);
    expect((await sign(a, slot, handle, CKM.RSA_PKCS, digestInfo)).rv).toBe(CKR.OK);
  });

  it('signs with the authentication key once logged in, a signature the certificate verifies', async () => {
    const c = await client(await start());
    const slot = await c.slot();
    const { handle, cert } = await keyPair(c, slot, 0);
    await login(c, slot, PIN);
    for (let i = 0; i < 3; i++) {
      const a = await sign(c, slot, handle, CKM.SHA256_RSA_PKCS, Buffer.from(`message ${i}`));
      expect(a.rv).toBe(CKR.OK);
      expect(verify('sha256', Buffer.from(`message ${i}`), cert.publicKey, a.fields.bytes(TAG.SIGNATURE) as Buffer)).toBe(true);
    }
  });

  it('signs with what the token learned at its snapshot: no directory is read again (3 APDUs per authentication signature)', async () => {
    const c = await client(await start());
    const slot = await c.slot();
    const { handle } = await keyPair(c, slot, 0);
    const card = sim.card as VirtualCpsCard;
    let before = card.commands;
    expect((await login(c, slot, PIN)).rv).toBe(CKR.OK);
    // PIN status before VERIFY (no try spent on a blocked PIN), VERIFY, PIN status after.
    expect(card.commands - before).toBe(3);
    for (let i = 0; i < 3; i++) {
      before = card.commands;
      expect((await sign(c, slot, handle, CKM.SHA256_RSA_PKCS, Buffer.from(`m${i}`))).rv).toBe(CKR.OK);
      // SELECT application, MSE SET, INTERNAL AUTHENTICATE.
      expect(card.commands - before).toBe(3);
    }
    const signature = await keyPair(c, slot, 1);
    before = card.commands;
    expect((await login(c, slot, PIN, CKU_CONTEXT_SPECIFIC, signature.handle)).rv).toBe(CKR.OK);
    expect((await sign(c, slot, signature.handle, CKM.SHA256_RSA_PKCS, Buffer.from('doc'))).rv).toBe(CKR.OK);
    // 3 for the PIN, then SELECT application, MSE (hash), MSE (signature), PSO HASH (card finishes it), PSO CDS.
    expect(card.commands - before).toBe(8);
  });

  it('says CKR_PIN_INCORRECT with the tries left, and the token flags show the counter', async () => {
    const c = await client(await start());
    const slot = await c.slot();
    const a = await login(c, slot, WRONG);
    expect(a.rv).toBe(CKR.PIN_INCORRECT);
    expect(a.message).toMatch(/2 tries left/);
    const { fields } = await token(c, slot);
    expect(fields.needU32(TAG.TOKEN_FLAGS) & 0x10000).toBe(0x10000); // CKF_USER_PIN_COUNT_LOW
    expect(logs.join('\n')).not.toContain(WRONG);
  });

  it('refuses the last try (the holder consents to it on the PIN page, not in a PKCS#11 prompt)', async () => {
    const c = await client(await start());
    const slot = await c.slot();
    await login(c, slot, WRONG);
    await login(c, slot, WRONG);
    const a = await login(c, slot, PIN);
    expect(a.rv).toBe(CKR.FUNCTION_REJECTED);
    expect(sim.card?.image.pin.triesLeft).toBe(1);
  });

  it('asks a context-specific PIN for each signature with the signature key', async () => {
    const c = await client(await start());
    const slot = await c.slot();
    const { handle, cert } = await keyPair(c, slot, 1);
    await login(c, slot, PIN);
    expect((await sign(c, slot, handle, CKM.SHA256_RSA_PKCS, Buffer.from('doc'))).rv).toBe(CKR.USER_NOT_LOGGED_IN);
    expect((await login(c, slot, PIN, CKU_CONTEXT_SPECIFIC, handle)).rv).toBe(CKR.OK);
    const a = await sign(c, slot, handle, CKM.SHA256_RSA_PKCS, Buffer.from('doc'));
    expect(a.rv).toBe(CKR.OK);
    expect(verify('sha256', Buffer.from('doc'), cert.publicKey, a.fields.bytes(TAG.SIGNATURE) as Buffer)).toBe(true);
    expect((await sign(c, slot, handle, CKM.SHA256_RSA_PKCS, Buffer.from('doc'))).rv).toBe(CKR.USER_NOT_LOGGED_IN);
  });

  it('keeps an application logged in across a web login in between (the card is not reset under it)', async () => {
    const c = await client(await start());
    const slot = await c.slot();
    const { handle } = await keyPair(c, slot, 0);
    await login(c, slot, PIN);
    const web = new CpsdServer({ ...DEFAULTS, port: 0 }, sessions as CardSessions, new Logger('warn', () => undefined));
    await web.listen();
    try {
      const rpc = await rpcClient(web.port, null);
      const r = await rpc.call('auth.authenticate', { nonce: Buffer.alloc(32, 1).toString('base64'), pin: PIN });
      expect(r.error).toBeUndefined();
      rpc.close();
    } finally {
      await web.close();
    }
    expect((await sign(c, slot, handle, CKM.SHA256_RSA_PKCS, Buffer.from('after'))).rv).toBe(CKR.OK);
  });

  it('one application logging out leaves another\'s login on the same card', async () => {
    const path = await start();
    const a = await client(path);
    const b = await client(path);
    const slot = await a.slot();
    const { handle } = await keyPair(a, slot, 0);
    await login(a, slot, PIN);
    await login(b, slot, PIN);
    expect((await a.call(OP.LOGOUT, a.target(slot))).rv).toBe(CKR.OK);
    expect((await sign(a, slot, handle, CKM.SHA256_RSA_PKCS, Buffer.from('x'))).rv).toBe(CKR.USER_NOT_LOGGED_IN);
    expect((await sign(b, slot, handle, CKM.SHA256_RSA_PKCS, Buffer.from('x'))).rv).toBe(CKR.OK);
  });

  it('the card forgets the PIN when the last application logs out', async () => {
    const c = await client(await start());
    const slot = await c.slot();
    await login(c, slot, PIN);
    expect((await c.call(OP.LOGOUT, c.target(slot))).rv).toBe(CKR.OK);
    const verified = await (sessions as CardSessions).run(async (card) => (await card.pinStatus()).verified);
    expect(verified).toBe(false);
  });

  it('offers no PSS on a CPS3', async () => {
    const c = await client(await start());
    const slot = await c.slot();
    const { handle } = await keyPair(c, slot, 0);
    await login(c, slot, PIN);
    const pss = [field(TAG.PSS_HASH, u32(CKM.SHA256)), field(TAG.PSS_MGF, u32(CKG_MGF1_SHA256)), field(TAG.PSS_SALT, u32(32))];
    expect((await sign(c, slot, handle, CKM.RSA_PKCS_PSS, createHash('sha256').digest(), pss)).rv).toBe(CKR.MECHANISM_INVALID);
  });

  it('signs PSS with a CPS4 authentication key (TLS 1.3), checked by node:crypto', async () => {
    const c = await client(await start('cps4'));
    const slot = await c.slot();
    const { handle, cert } = await keyPair(c, slot, 0);
    await login(c, slot, PIN);
    const hash = createHash('sha256').update('tls13').digest();
    const pss = [field(TAG.PSS_HASH, u32(CKM.SHA256)), field(TAG.PSS_MGF, u32(CKG_MGF1_SHA256)), field(TAG.PSS_SALT, u32(32))];
    const a = await sign(c, slot, handle, CKM.RSA_PKCS_PSS, hash, pss);
    expect(a.rv).toBe(CKR.OK);
    const ok = verify('sha256', Buffer.from('tls13'), { key: cert.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, a.fields.bytes(TAG.SIGNATURE) as Buffer);
    expect(ok).toBe(true);
  });

  it('ends the login when the card is pulled: the old generation is CKR_DEVICE_REMOVED', async () => {
    const c = await client(await start());
    const slot = await c.slot();
    const { handle } = await keyPair(c, slot, 0);
    await login(c, slot, PIN);
    const card = sim.card as VirtualCpsCard;
    sim.remove();
    sim.insert(card);
    const again = await c.slot();
    expect(again.generation).not.toBe(slot.generation);
    expect((await sign(c, slot, handle, CKM.SHA256_RSA_PKCS, Buffer.from('x'))).rv).toBe(CKR.DEVICE_REMOVED);
    expect((await sign(c, again, handle, CKM.SHA256_RSA_PKCS, Buffer.from('x'))).rv).toBe(CKR.USER_NOT_LOGGED_IN);
  });

  it('closes only the connection that sends 10,000 hostile frames; the others are served', async () => {
    const path = await start();
    const good = await client(path);
    const bad = await client(path);
    // Frames that parse but are no request (unknown operations), then one that breaks the framing.
    for (let i = 0; i < 10_000; i++) bad.socket.write(Buffer.from([0, 0, 0, 6, 0x7f, 0x7f, 0, 0, 0, 0]));
    bad.socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    await bad.closed;
    const slot = await good.slot();
    expect(slot.reader).toBeTruthy();
  });
});

describe('a card just inserted (issue #21: the application that asks during the first read)', () => {
  /** The daemon with an empty reader; `insert` puts the doctor's card in, with faults. */
  async function empty(waits?: { tokenWaitMs?: number; slotsWaitMs?: number }): Promise<{ path: string; insert: (faults?: FaultOptions) => FaultyCard }> {
    faulty = new InProcessBackend<FaultyCard>();
    sessions = new CardSessions(faulty, { operationTimeoutMs: 3000 });
    dir = mkdtempSync(join(tmpdir(), 'cpsd-p11-'));
    const socketPath = join(dir, 'cpsd', 'pkcs11.sock');
    server = new Pkcs11Server({ sessions, cache: new MemoryCardCache(), log: new Logger('debug', (l) => void logs.push(l)), socketPath, ...(waits ? { waits } : {}) });
    await server.listen();
    return {
      path: socketPath,
      insert(faults = {}) {
        const card = new FaultyCard(fixtureCard('doctor'), faults);
        faulty.insert(card);
        return card;
      },
    };
  }

  const certificates = (objects: Obj[]): Obj[] => objects.filter((o) => cls(o) === CKO.CERTIFICATE);

  it('reads the token when the card goes in, before any application asks', async () => {
    const { insert } = await empty();
    const card = insert();
    await new Promise((r) => setTimeout(r, 200));
    const read = card.apdus;
    expect(read).toBeGreaterThan(0);
    // The application that then asks gets it without a card command.
    const c = await client(server?.socketPath as string);
    const { objects } = await token(c, await c.slot());
    expect(certificates(objects)).toHaveLength(2);
    expect(card.apdus).toBe(read);
  });

  it('during a slow first read, SLOTS shows the token only once it is read, and TOKEN gives it whole', async () => {
    const { path, insert } = await empty();
    const c = await client(path);
    const card = insert({ stallAt: { apdu: 2, ms: 1500 } });
    const asked = Date.now();
    const slot = await c.slot(); // present only once the read is done
    expect(Date.now() - asked).toBeGreaterThanOrEqual(1200);
    const apdus = card.apdus;
    const { objects } = await token(c, slot);
    expect(certificates(objects)).toHaveLength(2);
    expect(card.apdus).toBe(apdus);
  });

  it('a read longer than SLOTS waits: the slot shows the token, and TOKEN waits for the rest of the read', async () => {
    const { path, insert } = await empty({ slotsWaitMs: 300 });
    const c = await client(path);
    insert({ stallAt: { apdu: 2, ms: 1500 } });
    const slot = await c.slot();
    const { objects } = await token(c, slot);
    expect(certificates(objects)).toHaveLength(2);
  });

  it('an application that goes away during the read does not cancel it for the others: the card is read once', async () => {
    // What one read of this card costs, with a daemon of its own (a cold cache, as below).
    const reference = await empty();
    const whole = reference.insert();
    const c0 = await client(reference.path);
    await token(c0, await c0.slot());
    const once = whole.apdus;
    c0.close();
    await server?.close();
    await sessions?.close();
    rmSync(dir, { recursive: true, force: true });

    const { path, insert } = await empty({ slotsWaitMs: 0 });
    const card = insert({ stallAt: { apdu: 2, ms: 800 } });
    const first = await client(path);
    const slot = await first.slot();
    first.call(OP.TOKEN, first.target(slot)).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    first.close();
    const second = await client(path);
    const { objects } = await token(second, slot);
    expect(certificates(objects)).toHaveLength(2);
    expect(card.apdus).toBe(once);
  });

  it('a card that does not answer: TOKEN says CKR_DEVICE_ERROR within the daemon\'s bound, and the next TOKEN reads again', async () => {
    const { path, insert } = await empty({ tokenWaitMs: 1000, slotsWaitMs: 200 });
    const c = await client(path);
    insert({ stallAt: { apdu: 2, ms: 2500 } });
    const slot = await c.slot();
    const asked = Date.now();
    const a = await c.call(OP.TOKEN, c.target(slot));
    expect(a.rv).toBe(CKR.DEVICE_ERROR);
    expect(a.message).toMatch(/^CARD_TIMEOUT: .*not read within 1000 ms/);
    expect(Date.now() - asked).toBeLessThan(2000);
    // The read went on: once the card answers, the token is there.
    await new Promise((r) => setTimeout(r, 2500));
    const { objects } = await token(c, slot);
    expect(certificates(objects)).toHaveLength(2);
  });

  it('a mute card: SLOTS shows it once the read failed (the session\'s bound), TOKEN says CKR_DEVICE_ERROR within the daemon\'s bound', async () => {
    const { path, insert } = await empty({ tokenWaitMs: 1000 });
    const c = await client(path);
    insert({ muteAfter: 1 });
    const asked = Date.now();
    const slot = await c.slot();
    expect(Date.now() - asked).toBeLessThan(4500); // the read's job ends at 3 s (operationTimeoutMs)
    const a = await c.call(OP.TOKEN, c.target(slot));
    expect(a.rv).toBe(CKR.DEVICE_ERROR);
    expect(a.message).toMatch(/^CARD_TIMEOUT: /);
    expect(Date.now() - asked).toBeLessThan(6000);
  }, 10_000);

  it('the card pulled during its read: SLOTS answers at once that there is no token', async () => {
    const { path, insert } = await empty();
    const c = await client(path);
    insert({ stallAt: { apdu: 2, ms: 5000 } });
    await new Promise((r) => setTimeout(r, 100));
    faulty.remove();
    const asked = Date.now();
    const a = await c.call(OP.SLOTS);
    expect(Date.now() - asked).toBeLessThan(500);
    expect(Fields.of(a.fields.all(TAG.SLOT)[0] as Buffer).bytes(TAG.PRESENT)?.[0]).toBe(0);
  });
});
