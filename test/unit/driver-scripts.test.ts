/**
 * The card driver against scripted cards (libelectronic-id's mock-script style, test/helpers/script.ts):
 * each test lists the exact APDUs the driver must send and what the card answers. Command bytes are
 * written by hand from the formats of cps-cards.md (§ given per step) and published values (NIST SHA-256
 * vectors), never produced by the driver's own encoders; status words are the documented ones.
 */
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../core/bytes.js';
import { CpsCard, LastPinTryError, openCard, type CardObjects } from '../../cards/index.js';
import { Pin } from '../../cards/pin.js';
import { PinBlockedError, WrongPinError } from '../../apdu/status.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import type { Df, Ef } from '../../sim/cps/fs.js';
import { script, type ScriptStep, type ScriptTransport } from '../helpers/script.js';

/** Sample ATRs (cps-cards.md §1.2). */
const CPS3_ATR = fromHex('3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00');
const CPS4_ATR = fromHex('3B 9B 18 80 01 00 12 25 00 64 80 04 01 00 00 90 44');

/** A signature or authentication answer: any 256 bytes will do, the script card does not compute. */
const SIGNATURE = 'A5'.repeat(256);

/**
 * The directories as a walk would have found them on a CPS3 (the contact application 3F00/0001 [V],
 * keys 0x81/0x82 [V] §2.5, PIN CHV 1 [V] §3.4): given to the driver so that a script covers one operation.
 */
function knownObjects(certificatePath?: string): CardObjects {
  return {
    application: fromHex('3F00 0001'),
    auth: {
      certificate: certificatePath ? { label: 'CPS_AUT_CERT', id: undefined, path: fromHex(certificatePath) } : undefined,
      keyReference: 0x82,
    },
    sign: { certificate: undefined, keyReference: 0x81 },
    pin: { label: 'PIN', reference: 0x01, minLength: 4, maxLength: 4, storedLength: 4 },
    dataObjects: [],
  };
}

function cps3(steps: readonly ScriptStep[], objects?: CardObjects): { card: ScriptTransport; driver: CpsCard } {
  const card = script(steps);
  const driver = openCard(card, CPS3_ATR);
  if (objects) driver.useObjects(objects);
  return { card, driver };
}

describe('script transport', () => {
  it('fails with the step, the expected and the actual command when the driver goes off-script', async () => {
    const { card, driver } = cps3([{ step: 'PIN status', command: '00 20 00 02', response: '63 C3' }]);
    await expect(driver.pinStatus()).rejects.toThrow('step 1 "PIN status": expected command 00200002, got 00200001');
    expect(() => card.done()).toThrow(/PIN status/);
  });

  it('fails at the end when steps were not reached', async () => {
    const { card, driver } = cps3([
      { step: 'PIN status', command: '00 20 00 01', response: '63 C3' },
      { step: 'never sent', command: '00 20 00 01', response: '63 C3' },
    ]);
    await driver.pinStatus();
    expect(() => card.done()).toThrow('1 step(s) not reached; next: step 2 "never sent" (command 00200001)');
  });
});

describe('CPS3 serial (EF.SN.ICC, cps-cards.md §2.2, §3.3)', () => {
  it('reads EF.SN.ICC by its short EF identifier 1C, one APDU', async () => {
    const { card, driver } = cps3([
      // READ BINARY with P1 = 80 | SFI 1C, 12 bytes; content: the serial of OpenSC issue #2275.
      { step: 'READ BINARY EF.SN.ICC by SFI 1C', command: '00 B0 9C 00 0C', response: '5A 0A 80 25 00 00 01 99 21 38 45 0F 90 00' },
    ]);
    expect(await driver.serial()).toBe('992138450F');
    card.done();
  });

  it('falls back to SELECT by path when the SFI read does not give a CPS serial', async () => {
    const { card, driver } = cps3([
      // Another application's DF is current: no file with SFI 1C there.
      { step: 'READ BINARY by SFI 1C, refused', command: '00 B0 9C 00 0C', response: '6A 82' },
      { step: 'SELECT 3F00/D003 by path with 3F00, no FCP (§3.2)', command: '00 A4 09 0C 04 3F 00 D0 03', response: '90 00' },
      { step: 'READ BINARY 12 bytes', command: '00 B0 00 00 0C', response: '5A 0A 80 25 00 00 01 99 21 38 45 0F 90 00' },
    ]);
    expect(await driver.serial()).toBe('992138450F');
    card.done();
  });

  it('refuses an EF.SN.ICC without the 8025000001 prefix, as Cryptolib does', async () => {
    const { card, driver } = cps3([
      { step: 'READ BINARY by SFI 1C: not a CPS serial', command: '00 B0 9C 00 0C', response: '5A 0A 80 25 00 00 02 99 21 38 45 0F 90 00' },
      { step: 'SELECT 3F00/D003', command: '00 A4 09 0C 04 3F 00 D0 03', response: '90 00' },
      { step: 'READ BINARY 12 bytes: the same', command: '00 B0 00 00 0C', response: '5A 0A 80 25 00 00 02 99 21 38 45 0F 90 00' },
    ]);
    await expect(driver.serial()).rejects.toThrow(/not a CPS serial number/);
    card.done();
  });
});

describe('CPS3 PIN (cps-cards.md §3.4)', () => {
  it('status: 63C2 is two tries left, nothing spent', async () => {
    const { card, driver } = cps3([{ step: 'VERIFY CHV 1 without data', command: '00 20 00 01', response: '63 C2' }]);
    expect(await driver.pinStatus()).toEqual({ triesLeft: 2, max: 3, blocked: false, verified: false });
    card.done();
  });

  it('status: 9000 is a PIN already verified', async () => {
    const { card, driver } = cps3([{ step: 'VERIFY CHV 1 without data', command: '00 20 00 01', response: '90 00' }]);
    expect(await driver.pinStatus()).toMatchObject({ verified: true, blocked: false });
    card.done();
  });

  it('status: 6983 is a blocked PIN', async () => {
    const { card, driver } = cps3([{ step: 'VERIFY CHV 1 without data', command: '00 20 00 01', response: '69 83' }]);
    expect(await driver.pinStatus()).toEqual({ triesLeft: 0, max: 3, blocked: true, verified: false });
    card.done();
  });

  it('verify: tries read first, then VERIFY with the 4 ASCII digits, Lc 4 ([S] default format)', async () => {
    const { card, driver } = cps3(
      [
        { step: 'tries left, nothing spent', command: '00 20 00 01', response: '63 C3' },
        { step: 'VERIFY CHV 1 "1234"', command: '00 20 00 01 04 31 32 33 34', response: '90 00' },
      ],
      knownObjects(),
    );
    await driver.verifyPin(new Pin('1234'));
    card.done();
  });

  it('verify: a wrong PIN (63C2) is WrongPinError with 2 tries left', async () => {
    const { card, driver } = cps3(
      [
        { step: 'tries left', command: '00 20 00 01', response: '63 C3' },
        { step: 'VERIFY CHV 1 "0000": wrong', command: '00 20 00 01 04 30 30 30 30', response: '63 C2' },
      ],
      knownObjects(),
    );
    const error = await driver.verifyPin(new Pin('0000')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WrongPinError);
    expect(error).toMatchObject({ code: 'PIN_INCORRECT', triesLeft: 2 });
    card.done();
  });

  it('verify: a blocked PIN (6983) is refused before the PIN reaches the card', async () => {
    const { card, driver } = cps3([{ step: 'tries left: blocked', command: '00 20 00 01', response: '69 83' }], knownObjects());
    await expect(driver.verifyPin(new Pin('1234'))).rejects.toBeInstanceOf(PinBlockedError);
    card.done(); // no VERIFY with data in the script: sending one would have failed the step list
  });

  it('verify: with one try left (63C1) the PIN is not sent without consent', async () => {
    const { card, driver } = cps3([{ step: 'tries left: one', command: '00 20 00 01', response: '63 C1' }], knownObjects());
    await expect(driver.verifyPin(new Pin('1234'))).rejects.toBeInstanceOf(LastPinTryError);
    card.done();
  });
});

describe('CPS3 login: authentication signature (cps-cards.md §3.5 a)', () => {
  // DigestInfo of SHA-256("abc"): the RFC 8017 prefix and the NIST FIPS 180-2 example digest.
  const DIGEST_INFO_ABC =
    '30 31 30 0D 06 09 60 86 48 01 65 03 04 02 01 05 00 04 20 ' +
    'BA 78 16 BF 8F 01 CF EA 41 41 40 DE 5D AE 22 23 B0 03 61 A3 96 17 7A 9C B4 10 FF 61 F2 00 15 AD';

  it('selects the application, MSE SET AT (algo 02, key 82), INTERNAL AUTHENTICATE, T=0 GET RESPONSE', async () => {
    const { card, driver } = cps3(
      [
        { step: 'SELECT 3F00/0001, no FCP', command: '00 A4 09 0C 04 3F 00 00 01', response: '90 00' },
        { step: 'MSE SET AT: 80 01 02 (PKCS#1, card pads), 84 01 82 (CPS_PRIV_AUT)', command: '00 22 41 A4 06 80 01 02 84 01 82', response: '90 00' },
        { step: 'INTERNAL AUTHENTICATE of the 51-byte DigestInfo, Le 00', command: `00 88 00 00 33 ${DIGEST_INFO_ABC} 00`, response: '61 00' },
        { step: 'GET RESPONSE 256 bytes (T=0, §3.3)', command: '00 C0 00 00 00', response: `${SIGNATURE} 90 00` },
      ],
      knownObjects(),
    );
    const digest = fromHex('BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD');
    expect(toHex(await driver.authenticate(CpsCard.digestInfo('sha256', digest)))).toBe(SIGNATURE);
    card.done();
  });
});

describe('CPS3 signature, the card finishing the hash (cps-cards.md §3.5 b)', () => {
  const prelude: ScriptStep[] = [
    { step: 'SELECT 3F00/0001, no FCP', command: '00 A4 09 0C 04 3F 00 00 01', response: '90 00' },
    { step: 'MSE SET HT: SHA-256 (80 01 40)', command: '00 22 41 AA 03 80 01 40', response: '90 00' },
    { step: 'MSE SET DST: SHA-256 PKCS#1 (80 01 42), CPS_PRIV_SIG (84 01 81)', command: '00 22 41 B6 06 80 01 42 84 01 81', response: '90 00' },
  ];
  const cds: ScriptStep[] = [
    { step: 'PSO COMPUTE DIGITAL SIGNATURE, no data, Le 00', command: '00 2A 9E 9A 00', response: '61 00' },
    { step: 'GET RESPONSE 256 bytes', command: '00 C0 00 00 00', response: `${SIGNATURE} 90 00` },
  ];

  it('a message of one partial block: empty tag 90, the whole message in tag 80', async () => {
    const { card, driver } = cps3(
      [
        ...prelude,
        // 90 00: nothing hashed yet; 80 03 "abc".
        { step: 'PSO HASH: 90 00, 80 03 616263', command: '00 2A 90 A0 07 90 00 80 03 61 62 63', response: '90 00' },
        ...cds,
      ],
      knownObjects(),
    );
    expect(toHex(await driver.sign('sha256', { message: new TextEncoder().encode('abc') }))).toBe(SIGNATURE);
    card.done();
  });

  it('a message past one block: the SHA-256 state after 512 bits, the bit count, the tail', async () => {
    // The first 64 bytes are the padded block 1 of the FIPS 180-2 appendix B.2 message
    // "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq": the standard publishes the state after
    // it, H(1) = 85e655d6 417a1795 3363376a 624cde5c 76e09589 cac5f811 cc4b32c1 f20e533a.
    const block1 = new Uint8Array(64);
    block1.set(new TextEncoder().encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'));
    block1[56] = 0x80;
    const message = new Uint8Array([...block1, 0x61, 0x62, 0x63]);
    const h1 = '85E655D6 417A1795 3363376A 624CDE5C 76E09589 CAC5F811 CC4B32C1 F20E533A';
    const { card, driver } = cps3(
      [
        ...prelude,
        {
          // 90 28: 32-byte state ‖ 8-byte big-endian bit count 512; 80 03: the 3 bytes left.
          step: 'PSO HASH: 90 28 H(1) 0000000000000200, 80 03 616263',
          command: `00 2A 90 A0 2F 90 28 ${h1} 00 00 00 00 00 00 02 00 80 03 61 62 63`,
          response: '90 00',
        },
        ...cds,
      ],
      knownObjects(),
    );
    expect(toHex(await driver.sign('sha256', { message }))).toBe(SIGNATURE);
    card.done();
  });

  it('hash off card: MSE SET DST, then PSO CDS with the 32-byte digest (case 4)', async () => {
    const digest = 'BA 78 16 BF 8F 01 CF EA 41 41 40 DE 5D AE 22 23 B0 03 61 A3 96 17 7A 9C B4 10 FF 61 F2 00 15 AD';
    const { card, driver } = cps3(
      [
        prelude[0] as ScriptStep,
        prelude[2] as ScriptStep,
        { step: 'PSO CDS of SHA-256("abc"), Le 00', command: `00 2A 9E 9A 20 ${digest} 00`, response: `${SIGNATURE} 90 00` },
      ],
      knownObjects(),
    );
    expect(toHex(await driver.sign('sha256', { digest: fromHex(digest) }))).toBe(SIGNATURE);
    card.done();
  });
});

describe('CPS3 directories (docs/driver.md "What it does, and how")', () => {
  /**
   * The content of the directory files is the virtual card's (sim/cps/layout.ts, profile doctor): no
   * real CPx PKCS#15 directory is public (cps-cards.md §10). Its FIDs 5031 (ODF) then 5001..5003 are [S].
   */
  function file(df: Df, ...fids: number[]): Uint8Array {
    let node: Df | Ef | undefined = df;
    for (const fid of fids) node = node?.kind === 'df' ? node.child(fid) : undefined;
    if (node?.kind !== 'ef') throw new Error(`no EF ${fids.map((f) => f.toString(16)).join('/')} in the virtual card`);
    return node.data;
  }

  it('EF.DIR by SFI, then ODF, CDF, PrKDF and AODF by path: keys, certificates and the PIN found', async () => {
    const mf = fixtureCard('doctor').image.mf;
    // Each directory is shorter than 256 bytes: one READ BINARY, answered with 6282 (end of file before Le).
    const read = (bytes: Uint8Array): string => `${toHex(bytes)} 62 82`;
    const { card, driver } = cps3([
      { step: 'READ BINARY EF.DIR by SFI 1E, Le 00', command: '00 B0 9E 00 00', response: read(file(mf, 0x2f00)) },
      { step: 'SELECT ODF 3F00/0001/5031', command: '00 A4 09 0C 06 3F 00 00 01 50 31', response: '90 00' },
      { step: 'READ BINARY ODF', command: '00 B0 00 00 00', response: read(file(mf, 0x0001, 0x5031)) },
      { step: 'SELECT CDF (path from the ODF)', command: '00 A4 09 0C 06 3F 00 00 01 50 02', response: '90 00' },
      { step: 'READ BINARY CDF', command: '00 B0 00 00 00', response: read(file(mf, 0x0001, 0x5002)) },
      { step: 'SELECT PrKDF', command: '00 A4 09 0C 06 3F 00 00 01 50 01', response: '90 00' },
      { step: 'READ BINARY PrKDF', command: '00 B0 00 00 00', response: read(file(mf, 0x0001, 0x5001)) },
      { step: 'SELECT AODF', command: '00 A4 09 0C 06 3F 00 00 01 50 03', response: '90 00' },
      { step: 'READ BINARY AODF', command: '00 B0 00 00 00', response: read(file(mf, 0x0001, 0x5003)) },
    ]);
    const objects = await driver.objects();
    card.done();
    expect(toHex(objects.application)).toBe('3F000001');
    expect(objects.sign.keyReference).toBe(0x81);
    expect(objects.auth.keyReference).toBe(0x82);
    expect(toHex(objects.auth.certificate?.path ?? new Uint8Array())).toBe('3F0000013001');
    expect(toHex(objects.sign.certificate?.path ?? new Uint8Array())).toBe('3F0000013002');
    expect(objects.pin).toMatchObject({ reference: 1, minLength: 4, maxLength: 4 });
  });
});

describe('CPS4 (ChipDoc, cps-cards.md §3.8)', () => {
  // Cryptolib's ChipDoc opening (card-cps4.c): ISD then ChipDoc on channel 1, the CPS2ter emulation on
  // channel 0. The 90 00 answers are assumed: no APDU trace of a real CPS4 is public.
  const opening: ScriptStep[] = [
    { step: 'channel 1: SELECT the issuer security domain A0000001510000', command: '01 A4 04 0C 07 A0 00 00 01 51 00 00', response: '90 00' },
    { step: 'channel 0: SELECT the CPS2ter emulation 8025000001FF0002', command: '00 A4 04 0C 08 80 25 00 00 01 FF 00 02', response: '90 00' },
    { step: 'channel 1: SELECT ChipDoc 8025000001FF0100', command: '01 A4 04 0C 08 80 25 00 00 01 FF 01 00', response: '90 00' },
  ];

  it('opens ChipDoc with Cryptolib\'s sequence before the first command, then speaks on channel 1', async () => {
    const card = script([
      ...opening,
      { step: 'READ BINARY EF.SN.ICC by SFI 1C on channel 1', command: '01 B0 9C 00 0C', response: '5A 0A 80 25 00 00 01 99 21 38 45 0F 90 00' },
      { step: 'VERIFY CHV 1 without data (ChipDoc names it 81)', command: '01 20 00 81', response: '63 C3' },
    ]);
    const driver = openCard(card, CPS4_ATR);
    expect(driver.kind.generation).toBe('CPS4');
    expect(await driver.serial()).toBe('992138450F');
    expect((await driver.pinStatus()).triesLeft).toBe(3); // opened once, not before every operation
    card.done();
  });

  it('a 6985 in the middle of a certificate read: ChipDoc selected again, the read starts over', async () => {
    // A DER certificate header (30 82 01 10: 276 bytes in all) and made-up content: read as 256 + 20.
    const certificate = `30 82 01 10 ${'C3'.repeat(272)}`;
    const bytes = fromHex(certificate);
    const first = toHex(bytes.subarray(0, 256));
    const rest = toHex(bytes.subarray(256));
    const card = script([
      ...opening,
      { step: 'SELECT the certificate 3F00/0001/3001 by path', command: '01 A4 09 0C 06 3F 00 00 01 30 01', response: '90 00' },
      { step: 'READ BINARY 256 bytes', command: '01 B0 00 00 00', response: `${first} 90 00` },
      { step: 'READ BINARY the 20 bytes left: 6985, ChipDoc no longer selected', command: '01 B0 01 00 14', response: '69 85' },
      ...opening.map((s) => ({ ...s, step: `again: ${s.step}` })),
      // From its start: the file selected before the refusal is no longer current (docs/driver.md).
      { step: 'SELECT the certificate again', command: '01 A4 09 0C 06 3F 00 00 01 30 01', response: '90 00' },
      { step: 'READ BINARY 256 bytes again', command: '01 B0 00 00 00', response: `${first} 90 00` },
      { step: 'READ BINARY the 20 bytes left', command: '01 B0 01 00 14', response: `${rest} 90 00` },
    ]);
    const driver = openCard(card, CPS4_ATR);
    driver.useObjects(knownObjects('3F00 0001 3001'));
    expect(toHex(await driver.certificate('auth'))).toBe(toHex(bytes));
    card.done();
  });
});
