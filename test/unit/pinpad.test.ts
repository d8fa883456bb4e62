/**
 * PIN-pad readers through the backend seam (vpcd cannot do SCardControl): a fake reader that
 * implements CM_IOCTL_GET_FEATURE_REQUEST and FEATURE_VERIFY_PIN_DIRECT in front of the virtual card,
 * "typing" the PIN into the structure as a real reader would.
 */
import { describe, expect, it } from 'vitest';
import { openCard } from '../../cards/atr-table.js';
import { toHex } from '../../core/bytes.js';
import { GET_FEATURE_REQUEST, pinVerifyStructure, readerFeatures, verifyOnPinPad } from '../../apdu/pcsc/pinpad.js';
import { UnsupportedFeatureError, type PcscConnection } from '../../apdu/pcsc/index.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import type { VirtualCpsCard } from '../../sim/cps/card.js';

const VERIFY_CODE = 0x42330006;

/** A reader with a PIN pad on which the user types `typed`. */
function pinPadReader(card: VirtualCpsCard, typed: string, withPad = true): PcscConnection & { structures: Uint8Array[] } {
  const structures: Uint8Array[] = [];
  return {
    reader: 'PIN pad reader',
    protocol: 'T0',
    structures,
    transmit: async (c: Uint8Array) => card.transmit(c),
    disconnect: async () => undefined,
    control: async (code: number, data: Uint8Array = new Uint8Array(0)) => {
      if (code === GET_FEATURE_REQUEST) {
        if (!withPad) throw new UnsupportedFeatureError('no features', { pcscCode: 0x8010001f });
        return Uint8Array.of(0x06, 0x04, 0x42, 0x33, 0x00, 0x06, 0x0a, 0x04, 0x42, 0x33, 0x00, 0x0a);
      }
      if (code !== VERIFY_CODE) throw new UnsupportedFeatureError('unknown control code', { pcscCode: 0x8010001f });
      structures.push(data);
      // The reader: read the structure, put the typed digits where bmFormatString says, send the APDU.
      const length = new DataView(data.buffer, data.byteOffset).getUint32(15, true);
      const apdu = Uint8Array.from(data.subarray(19, 19 + length));
      expect(data[2]).toBe(0x82); // ASCII, bytes, offset 0
      new TextEncoder().encode(typed).forEach((b, i) => (apdu[5 + i] = b));
      return card.transmit(apdu);
    },
  } as PcscConnection & { structures: Uint8Array[] };
}

describe('PIN pad', () => {
  it('discovers FEATURE_VERIFY_PIN_DIRECT, and nothing on a reader without features', async () => {
    const card = fixtureCard('doctor');
    expect([...(await readerFeatures(pinPadReader(card, '1234'))).entries()]).toEqual([
      [0x06, VERIFY_CODE],
      [0x0a, 0x4233000a],
    ]);
    expect((await readerFeatures(pinPadReader(card, '1234', false))).size).toBe(0);
  });

  it('builds the PIN_VERIFY_STRUCTURE of a 4-digit ASCII CPS PIN (little-endian fields)', () => {
    const s = pinVerifyStructure({ header: [0x00, 0x20, 0x00, 0x01], length: 4 });
    expect(toHex(s)).toBe('1E1E82040004040201' + '0C04' + '00' + '000000' + '09000000' + '0020000104' + '30303030');
  });

  it('verifies the PIN typed on the reader, never handled by the host, with the last-try rule', async () => {
    const card = fixtureCard('doctor');
    const good = pinPadReader(card, '1234');
    const features = await readerFeatures(good);
    const driver = openCard({ transmit: async (c) => card.transmit(c) }, card.atr);
    await driver.verifyPinOnReader((v) => verifyOnPinPad(good, features, v));
    expect(card.pinVerified).toBe(true);
    expect(toHex(good.structures[0] ?? new Uint8Array(0))).not.toContain('31323334'); // the host never had it

    card.reset();
    const wrong = pinPadReader(card, '0000');
    await expect(driver.verifyPinOnReader((v) => verifyOnPinPad(wrong, features, v))).rejects.toMatchObject({ code: 'PIN_INCORRECT', triesLeft: 2 });
    await expect(driver.verifyPinOnReader((v) => verifyOnPinPad(wrong, features, v))).rejects.toMatchObject({ triesLeft: 1 });
    await expect(driver.verifyPinOnReader((v) => verifyOnPinPad(good, features, v))).rejects.toMatchObject({ code: 'PIN_LAST_TRY' });
    await driver.verifyPinOnReader((v) => verifyOnPinPad(good, features, v), { allowLastTry: true });
    expect(card.pinVerified).toBe(true);
  });

  it('fails with UnsupportedFeatureError on a reader without a PIN pad', async () => {
    const card = fixtureCard('doctor');
    const plain = pinPadReader(card, '1234', false);
    await expect(verifyOnPinPad(plain, await readerFeatures(plain), { header: [0, 0x20, 0, 1], length: 4 })).rejects.toBeInstanceOf(
      UnsupportedFeatureError,
    );
  });
});
