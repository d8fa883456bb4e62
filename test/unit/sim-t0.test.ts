/**
 * The virtual CPS card's T=0 response rule, byte for byte. On T=0 a case-4 command reaches the card
 * without Le (OpenSC sends `00 A4 09 04 04 3F 00 D0 03`): the card announces its data with 61xx and
 * hands it over on GET RESPONSE (docs/card-facts.md §1.2, traces OSC-I2223 / OSC-I2275). Expected bytes are
 * the documented file layout (docs/card-facts.md §2.2), not the output of our own FCP encoder.
 */
import { createHash, verify, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../core/bytes.js';
import { fixtureCard, loadMaterial } from '../../sim/cps/fixtures.js';
import type { VirtualCpsCard } from '../../sim/cps/card.js';
import type { PersonalityName } from '../../sim/cps/personality.js';

/** Sends hex (spaces allowed), returns the raw response as hex: data then SW. */
function raw(card: VirtualCpsCard): (hex: string) => string {
  return (hex) => toHex(card.transmit(fromHex(hex.replace(/ /g, ''))));
}

// EF.SN.ICC's FCP as dumped from a real CPS3 (docs/card-facts.md §2.2, OSC-I2275): 0x27 = 39 bytes.
const fcp = '62 25 80 02 00 0C 82 01 01 83 02 D0 03 88 01 E0 A1 12 8C 07 7B FF FF FF FF FF 00 9C 07 7B FF FF FF FF FF 00 8A 01 05'
  .replace(/ /g, '');
const SELECT_SN_ICC_NO_LE = '00 A4 09 04 04 3F 00 D0 03';

describe('virtual CPS3 on T=0: SELECT with FCP and no Le', () => {
  it('answers 61 27: 39 bytes of FCP are waiting', () => {
    expect(raw(fixtureCard('doctor'))(SELECT_SN_ICC_NO_LE)).toBe('6127');
  });

  it('returns the real card FCP with 9000 on GET RESPONSE 00 C0 00 00 27', () => {
    const tx = raw(fixtureCard('doctor'));
    tx(SELECT_SN_ICC_NO_LE);
    expect(tx('00 C0 00 00 27')).toBe(`${fcp}9000`);
  });

  it('answers 6C 27 to GET RESPONSE with a Le larger than what is waiting', () => {
    const tx = raw(fixtureCard('doctor'));
    tx(SELECT_SN_ICC_NO_LE);
    expect(tx('00 C0 00 00 30')).toBe('6C27');
  });

  it('keeps the data after 6C 27: GET RESPONSE with the announced Le still returns it', () => {
    const tx = raw(fixtureCard('doctor'));
    tx(SELECT_SN_ICC_NO_LE);
    tx('00 C0 00 00 30');
    expect(tx('00 C0 00 00 27')).toBe(`${fcp}9000`);
  });

  it('answers 6C 27 to GET RESPONSE with Le=00 too (256 > 39 bytes waiting)', () => {
    const tx = raw(fixtureCard('doctor'));
    tx(SELECT_SN_ICC_NO_LE);
    expect(tx('00 C0 00 00 00')).toBe('6C27');
  });

  it('hands over a shorter Le and announces the rest with 61xx', () => {
    const tx = raw(fixtureCard('doctor'));
    tx(SELECT_SN_ICC_NO_LE);
    expect(tx('00 C0 00 00 10')).toBe(`${fcp.slice(0, 32)}6117`);
    expect(tx('00 C0 00 00 17')).toBe(`${fcp.slice(32)}9000`);
  });

  it('answers the FCP at once with 9000 when the command carries Le', () => {
    expect(raw(fixtureCard('doctor'))(`${SELECT_SN_ICC_NO_LE} 00`)).toBe(`${fcp}9000`);
  });

  it('forgets the waiting data on any other command: GET RESPONSE then answers 6985', () => {
    const tx = raw(fixtureCard('doctor'));
    tx(SELECT_SN_ICC_NO_LE);
    expect(tx('00 A4 00 0C 02 3F 00')).toBe('9000');
    expect(tx('00 C0 00 00 27')).toBe('6985');
  });
});

describe('virtual CPS3 on T=0: SELECT without FCP', () => {
  it('answers 9000 with no data to P2=0C', () => {
    expect(raw(fixtureCard('doctor'))('00 A4 09 0C 04 3F 00 D0 03')).toBe('9000');
  });

  it('leaves nothing for GET RESPONSE after P2=0C (6985)', () => {
    const tx = raw(fixtureCard('doctor'));
    tx('00 A4 09 0C 04 3F 00 D0 03');
    expect(tx('00 C0 00 00 27')).toBe('6985');
  });
});

describe('virtual CPS3 on T=0: a 256-byte answer', () => {
  it('announces a 2048-bit INTERNAL AUTHENTICATE without Le as 61 00 and returns 256 bytes + 9000 on GET RESPONSE 00', () => {
    const tx = raw(fixtureCard('doctor'));
    const digest = createHash('sha256').update('t0').digest();
    // DigestInfo SHA-256 (RFC 8017 §9.2 prefix) ‖ hash: 0x33 bytes.
    const digestInfo = `3031300D060960864801650304020105000420${toHex(digest)}`;
    expect(tx(`00 20 00 01 04 ${toHex(new TextEncoder().encode('1234'))}`)).toBe('9000');
    expect(tx('00 22 41 A4 06 80 01 02 84 01 82')).toBe('9000');
    expect(tx(`00 88 00 00 33 ${digestInfo}`)).toBe('6100');
    const answer = tx('00 C0 00 00 00');
    expect(answer.length).toBe(2 * (256 + 2));
    expect(answer.slice(-4)).toBe('9000');
    const signature = fromHex(answer.slice(0, -4));
    const key = new X509Certificate(loadMaterial('doctor').authCert).publicKey;
    expect(verify('sha256', new TextEncoder().encode('t0'), key, signature)).toBe(true);
  });
});

describe('the same T=0 rule in every personality', () => {
  const cases: [PersonalityName, string][] = [
    ['cps3-cl', 'doctor'],
    ['cps4', 'nurse'],
  ];
  for (const [personality, profile] of cases) {
    it(`${personality}: SELECT 3F00/D003 with P2=04 and no Le answers 61 27, then the FCP on GET RESPONSE`, () => {
      const tx = raw(fixtureCard(profile, { personality }));
      expect(tx(SELECT_SN_ICC_NO_LE)).toBe('6127');
      expect(tx('00 C0 00 00 27')).toBe(`${fcp}9000`);
    });
  }
});
