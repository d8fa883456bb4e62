/**
 * A CPS4 answering 6985 in the middle of a sequence (Cryptolib 5.2.2, item 1722: docs/card-facts.md, addendum),
 * played by the fault injector in front of the virtual CPS4: reads recover by reselecting ChipDoc, a key
 * operation fails with a typed error, the PIN tries never move, and the next job on the session works.
 */
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../core/bytes.js';
import { InProcessBackend } from '../../cards/backends.js';
import { CpsCard, openCard } from '../../cards/index.js';
import { Pin } from '../../cards/pin.js';
import { CardSessions } from '../../cards/session.js';
import { FaultyCard, type FaultOptions } from '../../sim/cps/faults.js';
import { fixtureCard, loadMaterial, loadProfile } from '../../sim/cps/fixtures.js';

const PROFILE = 'nurse'; // a CPS4 profile
const SELECT_CHIPDOC = '01A4040C07A0000001510000';
const DIGEST = CpsCard.digestInfo('sha256', new Uint8Array(32).fill(7));

function faulty(statusAt: FaultOptions['statusAt']): { card: FaultyCard; sent: string[]; driver: CpsCard } {
  const inner = fixtureCard(PROFILE);
  const card = new FaultyCard(inner, { statusAt });
  const sent: string[] = [];
  const driver = openCard({ transmit: (c) => (sent.push(toHex(c)), card.transmit(c)) }, card.atr);
  return { card, sent, driver };
}

describe('CPS4 answering 6985 mid-sequence', () => {
  it('the fixture is a CPS4', () => {
    expect(loadProfile(PROFILE).generation).toBe('CPS4');
    expect(faulty(undefined).driver.kind.generation).toBe('CPS4');
  });

  it('a refused READ BINARY: ChipDoc is selected again and the read starts over with the same result', async () => {
    const { driver, sent } = faulty({ ins: 0xb0, nth: 2, sw: 0x6985 });
    const certificate = await driver.certificate('auth');
    expect(toHex(certificate)).toBe(toHex(loadMaterial(PROFILE).authCert));
    expect(sent.filter((c) => c === SELECT_CHIPDOC)).toHaveLength(2);
  });

  it('a refused VERIFY is presented again after reselection, once: verified, tries unchanged', async () => {
    const { driver, sent } = faulty({ ins: 0x20, nth: 2, sw: 0x6985 }); // the 1st VERIFY is the tries query
    await driver.verifyPin(new Pin(loadProfile(PROFILE).pin));
    expect(await driver.pinStatus()).toMatchObject({ verified: true, triesLeft: 3 });
    const withPin = sent.filter((c) => c.startsWith('012000') && c.length > 10);
    expect(withPin).toHaveLength(2);
  });

  it('a refused PSO DECIPHER after the PIN: typed error, not retried, tries unchanged', async () => {
    const { driver, sent } = faulty({ ins: 0x2a, sw: 0x6985 });
    await driver.verifyPin(new Pin(loadProfile(PROFILE).pin));
    await expect(driver.authenticate(DIGEST)).rejects.toMatchObject({ code: 'CONDITIONS_NOT_SATISFIED', sw: 0x6985 });
    expect(sent.filter((c) => c.slice(2, 8) === '2A8086')).toHaveLength(1); // the first chained part, refused
    expect((await driver.pinStatus()).triesLeft).toBe(3);
  });

  it('a refused PSO COMPUTE DIGITAL SIGNATURE: typed error that says what to do', async () => {
    const { driver } = faulty({ ins: 0x2a, sw: 0x6985 });
    await driver.verifyPin(new Pin(loadProfile(PROFILE).pin));
    await expect(driver.sign('sha256', { digest: new Uint8Array(32) })).rejects.toThrow(/refused the sign sequence \(6985\).*try again/);
  });

  it('a second 6985 on the repeated read is not retried for ever', async () => {
    const inner = fixtureCard(PROFILE);
    let reads = 0;
    const driver = openCard(
      {
        transmit: async (c) => {
          if (c[1] === 0xb0 && ++reads >= 1) return fromHex('6985');
          return inner.transmit(c);
        },
      },
      inner.atr,
    );
    await expect(driver.certificate('auth')).rejects.toMatchObject({ code: 'CONDITIONS_NOT_SATISFIED' });
    // One retry of the operation: EF.DIR by its SFI (a failure there falls back) then by its path, twice.
    expect(reads).toBe(4);
  });

  it('through the card session: the authentication fails typed, the next one on the same session succeeds', async () => {
    const card = new FaultyCard(fixtureCard(PROFILE), { statusAt: { ins: 0x2a, sw: 0x6985 } });
    const sessions = new CardSessions(new InProcessBackend(card));
    const pin = new Pin(loadProfile(PROFILE).pin);
    const login = () =>
      sessions.run(async (c) => {
        await c.verifyPin(pin);
        return c.authenticate(DIGEST);
      }, { exclusive: true, after: 'reset' });
    await expect(login()).rejects.toMatchObject({ code: 'CONDITIONS_NOT_SATISFIED' });
    expect(await sessions.run((c) => c.pinStatus())).toMatchObject({ triesLeft: 3, verified: false });
    expect((await login()).length).toBe(256);
    await sessions.close();
  });
});
