/** The CPx driver against the virtual card in process, for every profile and personality. */
import { constants, createHash, verify, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Pin } from '../../cards/pin.js';
import { CpsCard, openCard, LastPinTryError, PinFormatError, UnsupportedCardError } from '../../cards/index.js';
import { toHex } from '../../core/bytes.js';
import { PinBlockedError, WrongPinError } from '../../apdu/status.js';
import type { VirtualCpsCard } from '../../sim/cps/card.js';
import { fixtureCard, loadMaterial, loadProfile, profileNames } from '../../sim/cps/fixtures.js';

function open(card: VirtualCpsCard): { driver: CpsCard; sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  const driver = openCard({ transmit: async (c) => (sent.push(c), card.transmit(c)) }, card.atr);
  return { driver, sent };
}

describe('CPx driver', () => {
  it('refuses an unknown ATR with the ATR in the error', () => {
    const e = (() => {
      try {
        openCard({ transmit: async () => Uint8Array.of(0x90, 0) }, Uint8Array.of(0x3b, 0x02, 0x14, 0x50));
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(UnsupportedCardError);
    expect((e as UnsupportedCardError).atr).toBe('3B021450');
  });

  for (const name of profileNames()) {
    const personality = loadProfile(name).generation === 'CPS4' ? 'cps4' : 'cps3';
    it(`${name} (${personality}): serial, certificates and public data found through the directories`, async () => {
      const card = fixtureCard(name);
      const { driver } = open(card);
      const profile = loadProfile(name);
      expect(driver.kind.generation).toBe(profile.generation);
      expect(await driver.serial()).toBe(profile.serial);
      const material = loadMaterial(name);
      expect(toHex(await driver.certificate('auth'))).toBe(toHex(material.authCert));
      expect(toHex(await driver.certificate('sign'))).toBe(toHex(material.signCert));
      const info = await driver.dataObject('CPS_INFO_PS');
      expect(new TextDecoder().decode(info)).toContain(profile.holder.lastName);
      expect((await driver.situationLabels()).length).toBe(profile.situations.length);
      expect((await driver.actua()) === undefined).toBe(profile.state?.actua === undefined);
    });
  }

  it('reads the situations only after the PIN', async () => {
    const { driver } = open(fixtureCard('doctor-gaps'));
    expect(await driver.situationLabels()).toEqual(['CPS_ACTIVITY_01_PS', 'CPS_ACTIVITY_04_PS', 'CPS_ACTIVITY_09_PS']);
    await expect(driver.dataObject('CPS_ACTIVITY_04_PS')).rejects.toMatchObject({ code: 'SECURITY_STATUS_NOT_SATISFIED' });
    await driver.verifyPin(new Pin('1234'));
    expect(new TextDecoder().decode(await driver.dataObject('CPS_ACTIVITY_04_PS'))).toContain('CABINET');
    await driver.logout();
    expect((await driver.pinStatus()).verified).toBe(false);
  });

  it('handles the PIN: status without spending, wrong PIN typed, last try only with consent, blocked', async () => {
    const card = fixtureCard('doctor');
    const { driver, sent } = open(card);
    expect(await driver.pinStatus()).toEqual({ triesLeft: 3, max: 3, blocked: false, verified: false });
    await expect(driver.verifyPin(new Pin('12a4'))).rejects.toBeInstanceOf(PinFormatError);
    await expect(driver.verifyPin(new Pin('12345'))).rejects.toBeInstanceOf(PinFormatError);
    expect(sent.filter((c) => c[1] === 0x20 && c.length > 5)).toHaveLength(0); // no try spent on malformed PINs
    await expect(driver.verifyPin(new Pin('0000'))).rejects.toMatchObject({ code: 'PIN_INCORRECT', triesLeft: 2 });
    await expect(driver.verifyPin(new Pin('0000'))).rejects.toBeInstanceOf(WrongPinError);
    await expect(driver.verifyPin(new Pin('1234'))).rejects.toBeInstanceOf(LastPinTryError);
    expect(card.image.pin.triesLeft).toBe(1);
    await driver.verifyPin(new Pin('1234'), { allowLastTry: true });
    expect(await driver.pinStatus()).toMatchObject({ triesLeft: 3, verified: true });
    const blocked = open(fixtureCard('pin-blocked')).driver;
    await expect(blocked.verifyPin(new Pin('1234'))).rejects.toBeInstanceOf(PinBlockedError);
    expect(await blocked.pinStatus()).toMatchObject({ blocked: true, triesLeft: 0 });
  });

  it('changes and unblocks the PIN', async () => {
    const { driver } = open(fixtureCard('pin-blocked'));
    await driver.unblockPin(new Pin('12345678'), new Pin('4321'));
    await driver.verifyPin(new Pin('4321'));
    await driver.changePin(new Pin('4321'), new Pin('8765'));
    await driver.logout();
    await driver.verifyPin(new Pin('8765'));
    await expect(open(fixtureCard('puk-exhausted')).driver.unblockPin(new Pin('12345678'), new Pin('4321'))).rejects.toMatchObject({
      code: 'REFERENCE_DATA_NOT_USABLE',
    });
  });

  for (const name of ['doctor', 'nurse'] as const) {
    it(`${name}: authentication and signature verify with the card's certificates`, async () => {
      const { driver } = open(fixtureCard(name));
      const material = loadMaterial(name);
      await driver.verifyPin(new Pin('1234'));
      const challenge = new TextEncoder().encode('challenge');
      const auth = await driver.authenticate(CpsCard.digestInfo('sha256', createHash('sha256').update(challenge).digest()));
      expect(verify('sha256', challenge, new X509Certificate(material.authCert).publicKey, auth)).toBe(true);
      for (const hash of ['sha1', 'sha256'] as const) {
        for (const size of [10, 64, 200]) {
          const message = new Uint8Array(size).fill(size);
          const sig = await driver.sign(hash, { message });
          expect(verify(hash, message, new X509Certificate(material.signCert).publicKey, sig)).toBe(true);
        }
        const digest = createHash(hash).update('doc').digest();
        const sig = await driver.sign(hash, { digest });
        expect(verify(hash, Buffer.from('doc'), { key: new X509Certificate(material.signCert).publicKey, padding: constants.RSA_PKCS1_PADDING }, sig)).toBe(true);
      }
    });
  }

  it('contactless: authenticates with the technical key without PIN and refuses to sign', async () => {
    const { driver } = open(fixtureCard('doctor', { personality: 'cps3-cl' }));
    expect(driver.kind.interface).toBe('contactless');
    const tech = loadMaterial('doctor').techCert;
    expect(toHex(await driver.certificate('auth'))).toBe(toHex(tech));
    const sig = await driver.authenticate(CpsCard.digestInfo('sha256', createHash('sha256').update('x').digest()));
    expect(verify('sha256', Buffer.from('x'), new X509Certificate(tech).publicKey, sig)).toBe(true);
    await expect(driver.sign('sha256', { message: Uint8Array.of(1) })).rejects.toMatchObject({ code: 'OBJECT_NOT_FOUND' });
  });

  it('times out an operation on a card that never answers, with a typed error', async () => {
    const card = fixtureCard('doctor');
    const driver = openCard({ transmit: () => new Promise<Uint8Array>(() => undefined) }, card.atr, { timeoutMs: 50 });
    await expect(driver.serial()).rejects.toMatchObject({ code: 'CARD_TIMEOUT' });
  });
});
