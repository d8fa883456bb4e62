/**
 * The virtual CPS card in process: real-card APDU sequences quoted in docs/card-facts.md (§2-§3) replayed
 * byte for byte, then PIN, unblocking, signatures (midstate and hash-off-card), decipher with chaining,
 * contactless restrictions and the CPS4 ChipDoc behaviour.
 */
import { constants, createHash, publicEncrypt, verify, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CardChannel, type ApduTransport } from '../../apdu/channel.js';
import { CommandApdu } from '../../apdu/command.js';
import { fromHex, toHex } from '../../core/bytes.js';
import { FaultyCard } from '../../sim/cps/faults.js';
import { fixtureCard, loadMaterial, loadProfile } from '../../sim/cps/fixtures.js';
import { encodeMidstate, shaMidstate, type ShaAlgorithm } from '../../cards/sha-midstate.js';
import type { VirtualCpsCard } from '../../sim/cps/card.js';

/** Sends raw hex, returns the raw response as hex (data then SW). */
function raw(card: VirtualCpsCard): (hex: string) => string {
  return (hex) => toHex(card.transmit(fromHex(hex)));
}

function channel(card: VirtualCpsCard): CardChannel {
  const transport: ApduTransport = { transmit: async (c) => card.transmit(c) };
  return new CardChannel(transport);
}

const apdu = (cla: number, ins: number, p1: number, p2: number, data?: string, ne?: number): CommandApdu =>
  new CommandApdu({ cla, ins, p1, p2, data: data === undefined ? undefined : fromHex(data), ne });

const ascii = (s: string): string => toHex(new TextEncoder().encode(s));
const publicKeyOf = (der: Uint8Array) => new X509Certificate(der).publicKey;

describe('virtual CPS3: real-card sequences', () => {
  it('reads EF.SN.ICC as Cryptolib does: 61 27, the FCP of the real card, then 12 bytes', () => {
    const card = fixtureCard('doctor');
    const tx = raw(card);
    expect(toHex(card.atr)).toBe('3BAC00402A00122500648000031000900' + '0');
    expect(tx('00A4090404 3F00D003'.replace(' ', ''))).toBe('6127');
    // FCP byte for byte as dumped from a real CPS3 (OSC issue 2275).
    expect(tx('00C0000027')).toBe(
      '6225800200 0C820101 8302D003 8801E0 A112 8C077BFFFFFFFFFF00 9C077BFFFFFFFFFF00 8A0105 9000'.replace(/ /g, ''),
    );
    expect(tx('00B000000C')).toBe(`5A0A8025000001${loadProfile('doctor').serial}9000`);
  });

  it('answers the PIN counter GET DATA exactly as the real card', () => {
    const tx = raw(fixtureCard('doctor'));
    expect(tx('00A4000C023F00')).toBe('9000');
    expect(tx('00CB3FFF0A4D087006BF810102A080')).toBe('6118');
    expect(tx('00C0000018')).toBe('7016BF810112A0109A01039B0103A1088C06F30000' + '13FF00' + '9000');
  });

  it('gives the unblocking code 10 tries and 100 unblocks (9D 00 64)', async () => {
    const r = await channel(fixtureCard('doctor')).transmit(apdu(0, 0xcb, 0x3f, 0xff, '4D087006BF810202A080'));
    expect(toHex(r.data)).toContain('9A010A9B010A9D020064');
  });

  it('refuses P2=00 with 6A86 on FID and DF-name selects, but not on the IAS root AID', () => {
    const tx = raw(fixtureCard('doctor'));
    expect(tx('00A40200 02A001'.replace(' ', ''))).toBe('6A86');
    expect(tx('00A404000DE828BD080F8025000001FF0010')).toBe('6A86');
    expect(tx('00A4040C0DE828BD080F8025000001FF0010')).toBe('9000');
    expect(tx('00A40400088025000001FF0100')).toBe('9000');
    expect(tx('00A4020C020001')).toBe('9000'); // 0001 from the MF
  });

  it('has no EF_ACTUA on a fresh card (6A82) and a dated one after an update', async () => {
    expect(raw(fixtureCard('doctor'))('00A40904043F00D010')).toBe('6A82');
    const ch = channel(fixtureCard('updated'));
    expect((await ch.transmit(apdu(0, 0xa4, 0x09, 0x0c, '3F00D010'))).sw).toBe(0x9000);
    const r = await ch.transmit(apdu(0, 0xb0, 0, 0, undefined, 20));
    expect(toHex(r.data)).toBe('EC12' + '810720250301080000' + '820720280301080000');
  });

  it('serves EF.ATR with the real bytes and the IAS AID, and refuses CPS2ter class A0 with 6E00', () => {
    const tx = raw(fixtureCard('doctor'));
    expect(tx('00A40904043F002F01')).toBe('6127');
    expect(tx('00B0000039').slice(0, 50)).toBe('804301B8460404B0ECC147039401804F088025000001FF0100');
    expect(tx('A0A40000023F00')).toBe('6E00');
    expect(tx('00FF000000')).toBe('6D00');
  });

  it('returns data with 6282 when READ BINARY reaches the end of the file', () => {
    const tx = raw(fixtureCard('doctor'));
    expect(tx('00B09C00C0')).toBe(`5A0A8025000001${loadProfile('doctor').serial}6282`);
    expect(tx('00B09C0D01')).toBe('6B00'); // offset 13 > size 12
  });
});

describe('virtual CPS3: PIN and unblocking code', () => {
  it('counts wrong PINs down, blocks at zero, and never spends a try on a status query', () => {
    const tx = raw(fixtureCard('doctor'));
    expect(tx('0020000100'.slice(0, 8))).toBe('63C3'); // VERIFY without data: tries left
    expect(tx('002000010439393939')).toBe('63C2');
    expect(tx('00200001')).toBe('63C2');
    expect(tx('002000010439393939')).toBe('63C1');
    expect(tx('002000010431323334')).toBe('9000'); // right PIN: counter back to 3
    expect(tx('00200001')).toBe('9000'); // verified
    for (const sw of ['63C2', '63C1', '63C0']) expect(tx('002000010439393939')).toBe(sw);
    expect(tx('002000010431323334')).toBe('6983'); // blocked: even the right PIN is refused
    expect(tx('00200001')).toBe('6983');
  });

  it('refuses malformed PINs without spending a try', () => {
    const tx = raw(fixtureCard('doctor'));
    expect(tx('00200001053132333435')).toBe('6700');
    expect(tx('0020000104313233FF')).toBe('6A80');
    expect(tx('00200001')).toBe('63C3');
  });

  it('unblocks with the unblocking code (VERIFY CHV 2 + RESET RETRY COUNTER) and spends one unblock', () => {
    const card = fixtureCard('pin-blocked');
    const tx = raw(card);
    expect(tx('002000010431323334')).toBe('6983');
    expect(tx('002C020104' + ascii('4321'))).toBe('6982'); // unblocking code not verified
    expect(tx('0020000208' + ascii('12345678'))).toBe('9000');
    expect(tx('002C020104' + ascii('4321'))).toBe('9000');
    expect(tx('0020000104' + ascii('1234'))).toBe('63C2'); // the old PIN is gone
    expect(tx('0020000104' + ascii('4321'))).toBe('9000');
    expect(card.image.puk.usesLeft).toBe(99);
  });

  it('refuses to unblock when the unblocking code has no unblock left (6984)', () => {
    const tx = raw(fixtureCard('puk-exhausted'));
    expect(tx('0020000208' + ascii('12345678'))).toBe('9000');
    expect(tx('002C020104' + ascii('4321'))).toBe('6984');
  });

  it('blocks the unblocking code after 10 wrong tries', () => {
    const tx = raw(fixtureCard('doctor'));
    for (let left = 9; left >= 0; left--) expect(tx('0020000208' + ascii('00000000'))).toBe(`63C${left.toString(16).toUpperCase()}`);
    expect(tx('0020000208' + ascii('12345678'))).toBe('6983');
  });

  it('changes the PIN with CHANGE REFERENCE DATA (old ‖ new)', () => {
    const tx = raw(fixtureCard('doctor'));
    expect(tx('0024000108' + ascii('9999') + ascii('5678'))).toBe('63C2');
    expect(tx('0024000108' + ascii('1234') + ascii('5678'))).toBe('9000');
    expect(tx('0020000104' + ascii('5678'))).toBe('9000');
  });

  it('loses the verified PIN and the security environment on reset', () => {
    const card = fixtureCard('doctor');
    const tx = raw(card);
    expect(tx('0020000104' + ascii('1234'))).toBe('9000');
    card.reset();
    expect(tx('00200001')).toBe('63C3');
  });

  it('guards the situations (PIN) but not the public identity data', async () => {
    const ch = channel(fixtureCard('doctor'));
    expect((await ch.transmit(apdu(0, 0xa4, 0x09, 0x0c, '3F000001D005'))).sw).toBe(0x9000);
    const info = await ch.transmit(apdu(0, 0xb0, 0, 0, undefined, 200));
    expect(new TextDecoder().decode(info.data).endsWith('SM26')).toBe(true);
    await ch.transmit(apdu(0, 0xa4, 0x09, 0x0c, '3F000001D120'));
    expect((await ch.transmit(apdu(0, 0xb0, 0, 0, undefined, 100))).sw).toBe(0x6982);
    await ch.transmit(apdu(0, 0x20, 0, 1, ascii('1234')));
    const sit = await ch.transmit(apdu(0, 0xb0, 0, 0, undefined, 100));
    expect(sit.data[0]).toBe(0xee);
    expect(new TextDecoder().decode(sit.data)).toContain('10B0307377');
  });
});

describe('virtual CPS3: cryptography', () => {
  const material = loadMaterial('doctor');

  it('signs a DigestInfo with INTERNAL AUTHENTICATE after the PIN, PKCS#1 v1.5 applied by the card', async () => {
    const ch = channel(fixtureCard('doctor'));
    const message = new TextEncoder().encode('challenge bound to https://app.example');
    const digestInfo = toHex(
      new Uint8Array([...fromHex('3031300D060960864801650304020105000420'), ...createHash('sha256').update(message).digest()]),
    );
    expect((await ch.transmit(apdu(0, 0x22, 0x41, 0xa4, '800102840182'))).sw).toBe(0x9000);
    expect((await ch.transmit(apdu(0, 0x88, 0, 0, digestInfo, 256))).sw).toBe(0x6982); // no PIN yet
    await ch.transmit(apdu(0, 0x20, 0, 1, ascii('1234')));
    const sig = await ch.transmit(apdu(0, 0x88, 0, 0, digestInfo, 256));
    expect(sig.sw).toBe(0x9000);
    expect(sig.data.length).toBe(256);
    expect(verify('sha256', message, publicKeyOf(material.authCert), sig.data)).toBe(true);
    // More than 40 % of the modulus (102 bytes) is refused.
    expect((await ch.transmit(apdu(0, 0x88, 0, 0, '00'.repeat(103), 256))).sw).toBe(0x6700);
  });

  const hashAlgo: Record<ShaAlgorithm, [string, string]> = { sha1: ['10', '12'], sha256: ['40', '42'] };
  for (const alg of ['sha1', 'sha256'] as const) {
    for (const size of [0, 55, 64, 65, 1000]) {
      it(`signs ${size} bytes with the signature key, ${alg} finished on card from the midstate`, async () => {
        const ch = channel(fixtureCard('doctor'));
        const message = Uint8Array.from({ length: size }, (_, i) => (i * 7 + 3) & 0xff);
        const { state, bitCount, tail } = shaMidstate(alg, message);
        const [ht, dst] = hashAlgo[alg];
        await ch.transmit(apdu(0, 0x20, 0, 1, ascii('1234')));
        expect((await ch.transmit(apdu(0, 0x22, 0x41, 0xaa, `8001${ht}`))).sw).toBe(0x9000);
        expect((await ch.transmit(apdu(0, 0x22, 0x41, 0xb6, `8001${dst}840181`))).sw).toBe(0x9000);
        const mid = bitCount === 0n ? '' : toHex(encodeMidstate(state, bitCount));
        const body = `90${(mid.length / 2).toString(16).padStart(2, '0')}${mid}80${tail.length.toString(16).padStart(2, '0')}${toHex(tail)}`;
        expect((await ch.transmit(apdu(0, 0x2a, 0x90, 0xa0, body))).sw).toBe(0x9000);
        const sig = await ch.transmit(apdu(0, 0x2a, 0x9e, 0x9a, undefined, 256));
        expect(sig.sw).toBe(0x9000);
        expect(verify(alg, message, publicKeyOf(material.signCert), sig.data)).toBe(true);
      });
    }
  }

  it('finishes the hash from a PSO HASH body written from the documented format and NIST state', async () => {
    // docs/card-facts.md §3.5 (b): 90 <state ‖ 8-byte big-endian bit count> 80 <tail>; the state after the
    // first block of NIST's example message is NIST's published H(1): no encoder of ours builds it.
    const block = Buffer.concat([Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'), Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0])]);
    const message = Buffer.concat([block, Buffer.from('tail')]);
    const ch = channel(fixtureCard('doctor'));
    await ch.transmit(apdu(0, 0x20, 0, 1, ascii('1234')));
    expect((await ch.transmit(apdu(0, 0x22, 0x41, 0xaa, '800140'))).sw).toBe(0x9000);
    expect((await ch.transmit(apdu(0, 0x22, 0x41, 0xb6, '800142840181'))).sw).toBe(0x9000);
    const body = '9028' + '85E655D6417A17953363376A624CDE5C76E09589CAC5F811CC4B32C1F20E533A' + '0000000000000200' + '8004' + '7461696C';
    expect((await ch.transmit(apdu(0, 0x2a, 0x90, 0xa0, body))).sw).toBe(0x9000);
    const sig = await ch.transmit(apdu(0, 0x2a, 0x9e, 0x9a, undefined, 256));
    expect(verify('sha256', message, publicKeyOf(material.signCert), sig.data)).toBe(true);
  });

  it('signs a hash computed off card (PSO CDS case 4) and refuses a hash of the wrong size', async () => {
    const ch = channel(fixtureCard('doctor'));
    const message = new TextEncoder().encode('document');
    await ch.transmit(apdu(0, 0x20, 0, 1, ascii('1234')));
    await ch.transmit(apdu(0, 0x22, 0x41, 0xb6, '800142840181'));
    const hash = toHex(createHash('sha256').update(message).digest());
    const sig = await ch.transmit(apdu(0, 0x2a, 0x9e, 0x9a, hash, 256));
    expect(verify('sha256', message, publicKeyOf(material.signCert), sig.data)).toBe(true);
    expect((await ch.transmit(apdu(0, 0x2a, 0x9e, 0x9a, hash.slice(2), 256))).sw).toBe(0x6700);
  });

  it('refuses PSO CDS with the authentication key (its rules allow INTERNAL AUTHENTICATE and DECIPHER only)', async () => {
    const ch = channel(fixtureCard('doctor'));
    await ch.transmit(apdu(0, 0x20, 0, 1, ascii('1234')));
    await ch.transmit(apdu(0, 0x22, 0x41, 0xb6, '800142840182'));
    expect((await ch.transmit(apdu(0, 0x2a, 0x9e, 0x9a, '00'.repeat(32), 256))).sw).toBe(0x6985);
  });

  it('deciphers a 256-byte cryptogram sent with command chaining (81 ‖ cryptogram)', async () => {
    const card = fixtureCard('doctor');
    const ch = channel(card);
    const secret = new TextEncoder().encode('session key material');
    const cryptogram = publicEncrypt({ key: publicKeyOf(material.authCert), padding: constants.RSA_PKCS1_PADDING }, secret);
    await ch.transmit(apdu(0, 0x20, 0, 1, ascii('1234')));
    await ch.transmit(apdu(0, 0x22, 0x41, 0xb8, '80011A840182'));
    const before = card.commands;
    const r = await ch.transmit(apdu(0, 0x2a, 0x80, 0x86, '81' + toHex(cryptogram), 256));
    expect(r.sw).toBe(0x9000);
    expect(new TextDecoder().decode(r.data)).toBe('session key material');
    expect(card.commands - before).toBeGreaterThanOrEqual(2); // chained: 255 + 2 bytes
  });
});

describe('virtual CPS3 contactless', () => {
  it('has the contactless ATR, a technical key usable without PIN, and no signature or contact data', async () => {
    const card = fixtureCard('doctor', { personality: 'cps3-cl' });
    expect(toHex(card.atr)).toBe('3B8F800100 31B86404B0ECC173940180829000 0E'.replace(/ /g, ''));
    const ch = channel(card);
    const tech = loadMaterial('doctor').techCert;
    expect((await ch.transmit(apdu(0, 0xa4, 0x04, 0x0c, 'E828BD080F8025000001FF0020'))).sw).toBe(0x9000);
    await ch.transmit(apdu(0, 0x22, 0x41, 0xa4, '800102840183'));
    const digestInfo = '3031300D060960864801650304020105000420' + toHex(createHash('sha256').update('x').digest());
    const sig = await ch.transmit(apdu(0, 0x88, 0, 0, digestInfo, 256));
    expect(sig.sw).toBe(0x9000);
    expect(verify('sha256', new TextEncoder().encode('x'), publicKeyOf(tech), sig.data)).toBe(true);
    // Cryptolib's contact/contactless probe: 3F00/0001/7001 is not readable contactless.
    await ch.transmit(apdu(0, 0xa4, 0x09, 0x0c, '3F0000017001'));
    expect((await ch.transmit(apdu(0, 0xb0, 0, 0, undefined, 1))).sw).toBe(0x6982);
    // Even with the PIN, no signature and no contact key.
    await ch.transmit(apdu(0, 0x20, 0, 1, ascii('1234')));
    await ch.transmit(apdu(0, 0x22, 0x41, 0xb6, '800142840181'));
    expect((await ch.transmit(apdu(0, 0x2a, 0x9e, 0x9a, '00'.repeat(32), 256))).sw).toBe(0x6985);
    await ch.transmit(apdu(0, 0x22, 0x41, 0xa4, '800102840182'));
    expect((await ch.transmit(apdu(0, 0x88, 0, 0, digestInfo, 256))).sw).toBe(0x6982);
  });

  it('lets the contact card read 7001 (1 byte)', async () => {
    const ch = channel(fixtureCard('doctor'));
    await ch.transmit(apdu(0, 0xa4, 0x09, 0x0c, '3F0000017001'));
    expect((await ch.transmit(apdu(0, 0xb0, 0, 0, undefined, 1))).sw).toBe(0x9000);
  });
});

describe('virtual CPS4 (ChipDoc on logical channel 1)', () => {
  const material = loadMaterial('nurse');

  async function chipDoc(): Promise<CardChannel> {
    const card = fixtureCard('nurse');
    expect(toHex(card.atr)).toBe('3B9B188001001225006480040100009044');
    const ch = channel(card);
    // Channel 1 before ChipDoc is selected: "reselect ChipDoc".
    expect((await ch.transmit(apdu(0x01, 0x20, 0, 1))).sw).toBe(0x6985);
    // Cryptolib's reselection sequence (card-cps4.c).
    expect((await ch.transmit(apdu(0x01, 0xa4, 0x04, 0x0c, 'A0000001510000'))).sw).toBe(0x9000);
    expect((await ch.transmit(apdu(0x00, 0xa4, 0x04, 0x0c, '8025000001FF0002'))).sw).toBe(0x9000);
    expect((await ch.transmit(apdu(0x01, 0xa4, 0x04, 0x0c, '8025000001FF0100'))).sw).toBe(0x9000);
    return ch;
  }

  it('reads the PIN counter with VERIFY without data and refuses INTERNAL AUTHENTICATE', async () => {
    const ch = await chipDoc();
    expect((await ch.transmit(apdu(0x01, 0x20, 0, 0x81))).sw).toBe(0x63c3);
    expect((await ch.transmit(apdu(0x01, 0x88, 0, 0, '00'))).sw).toBe(0x6d00);
  });

  for (const [algo, hash, pss] of [
    ['28', 'sha256', false],
    ['0A', 'sha1', false],
    ['2C', 'sha256', true],
    ['15', 'sha1', true],
  ] as const) {
    it(`signs with MSE tag 91 algorithm ${algo} (${hash}${pss ? ' PSS' : ' PKCS#1'})`, async () => {
      const ch = await chipDoc();
      await ch.transmit(apdu(0x01, 0x20, 0, 0x81, ascii('1234')));
      expect((await ch.transmit(apdu(0x01, 0x22, 0x81, 0xb6, `9102${algo}90`))).sw).toBe(0x9000);
      const message = new TextEncoder().encode('ordonnance');
      const digest = toHex(createHash(hash).update(message).digest());
      const sig = await ch.transmit(apdu(0x01, 0x2a, 0x9e, 0x9a, digest, 256));
      expect(sig.sw).toBe(0x9000);
      const key = publicKeyOf(material.signCert);
      const ok = pss
        ? verify(hash, message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hash === 'sha1' ? 20 : 32 }, sig.data)
        : verify(hash, message, key, sig.data);
      expect(ok).toBe(true);
    });
  }

  it('authenticates with a raw RSA operation on a block the host padded (CT 83 20, PSO DECIPHER)', async () => {
    const ch = await chipDoc();
    await ch.transmit(apdu(0x01, 0x20, 0, 0x81, ascii('1234')));
    expect((await ch.transmit(apdu(0x01, 0x22, 0x41, 0xb8, '830120'))).sw).toBe(0x9000);
    const digestInfo = fromHex('3031300D060960864801650304020105000420' + toHex(createHash('sha256').update('login').digest()));
    const block = new Uint8Array(256).fill(0xff);
    block[0] = 0x00;
    block[1] = 0x01;
    block[256 - digestInfo.length - 1] = 0x00;
    block.set(digestInfo, 256 - digestInfo.length);
    const sig = await ch.transmit(apdu(0x01, 0x2a, 0x80, 0x86, toHex(block), 256));
    expect(sig.sw).toBe(0x9000);
    expect(verify('sha256', new TextEncoder().encode('login'), publicKeyOf(material.authCert), sig.data)).toBe(true);
  });

  it('unblocks with 2C 03 then a new PIN by CHANGE P1=01', async () => {
    const ch = await chipDoc();
    for (let i = 0; i < 3; i++) await ch.transmit(apdu(0x01, 0x20, 0, 0x81, ascii('0000')));
    expect((await ch.transmit(apdu(0x01, 0x20, 0, 0x81))).sw).toBe(0x6983);
    expect((await ch.transmit(apdu(0x01, 0x24, 0x01, 0x81, ascii('2468')))).sw).toBe(0x6982);
    await ch.transmit(apdu(0x01, 0x20, 0, 0x82, ascii('12345678')));
    expect((await ch.transmit(apdu(0x01, 0x2c, 0x03, 0x81))).sw).toBe(0x9000);
    expect((await ch.transmit(apdu(0x01, 0x24, 0x01, 0x81, ascii('2468')))).sw).toBe(0x9000);
    expect((await ch.transmit(apdu(0x01, 0x20, 0, 0x81, ascii('2468')))).sw).toBe(0x9000);
  });

  it('still behaves as a CPS3 on channel 0 at power-up', async () => {
    const tx = raw(fixtureCard('nurse'));
    expect(tx('00A40904043F00D003')).toBe('6127');
    expect(tx('01A40904043F00D003')).toBe('6985');
  });
});

describe('fault injection', () => {
  it('pulls the card after N APDUs and garbles responses after M', async () => {
    let removed = 0;
    const faulty = new FaultyCard(fixtureCard('doctor'), { removeAfter: 2 }, () => removed++);
    expect(toHex(await faulty.transmit(fromHex('00A4000C023F00')))).toBe('9000');
    expect(toHex(await faulty.transmit(fromHex('00A4000C023F00')))).toBe('9000');
    const third = faulty.transmit(fromHex('00A4000C023F00'));
    expect(removed).toBe(1);
    expect(await Promise.race([third.then(() => 'answered'), new Promise((r) => setTimeout(() => r('silent'), 20))])).toBe('silent');
    const garbled = new FaultyCard(fixtureCard('doctor'), { garbleAfter: 1 });
    expect(toHex(await garbled.transmit(fromHex('00A4000C023F00')))).toBe('9000');
    expect(toHex(await garbled.transmit(fromHex('00A4000C023F00')))).toBe('6F');
  });

  it('charges card time when the timing model is on', async () => {
    const slow = new FaultyCard(fixtureCard('doctor'), { timing: { microsPerByte: 1000, rsaMillis: 0 } });
    const start = performance.now();
    await slow.transmit(fromHex('00A40904043F00D003')); // 9 + 2 bytes → ≥ 11 ms
    expect(performance.now() - start).toBeGreaterThanOrEqual(10);
  });
});

describe('fixtures', () => {
  it('personalises the certificates of the profile on the card (CDF paths) unchanged', async () => {
    const ch = channel(fixtureCard('pharmacist'));
    await ch.transmit(apdu(0, 0xa4, 0x09, 0x0c, '3F0000013001'));
    const parts: Uint8Array[] = [];
    for (let offset = 0; ; offset += 256) {
      const r = await ch.transmit(apdu(0, 0xb0, offset >> 8, offset & 0xff, undefined, 256));
      parts.push(r.data);
      if (r.sw !== 0x9000) break;
    }
    const der = Buffer.concat(parts);
    expect(der.equals(Buffer.from(loadMaterial('pharmacist').authCert))).toBe(true);
    expect(new X509Certificate(der).subject).toContain('CN=899700075122');
    expect(new X509Certificate(der).publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });
});
