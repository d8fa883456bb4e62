/**
 * Small real-card exchanges quoted in the commit messages of OpenSC's CPx support (Vincent Jardin,
 * 2021), read from the OpenSC/OpenSC history (`git show <commit>`). Each commit shows the card's
 * answer to one case OpenSC had to handle.
 */
import type { RealTrace } from './exchange.js';

const COMMIT = (id: string): string => `https://github.com/OpenSC/OpenSC/commit/${id}`;

/** 20f359ea0 "IASECC/CPX: SC_PATH_TYPE_FILE_ID, wrong APDU": SELECT by FID with P2=00 is refused. */
export const SELECT_FID_P2_00: RealTrace = {
  source: COMMIT('20f359ea0461710b59219b51aa1d0f347097a838'),
  context: 'pkcs11-tool --test --login on a real CPx card; EF A001 of the contact application (current DF not shown)',
  steps: [{ step: 'SELECT A001 by FID, P2=00 (FCI asked): incorrect P1-P2', command: '00 A4 02 00 02 A0 01', response: '6A 86' }],
};

/** 1a3666364 "IASECC/CPX: Avoid APDU Incorrect Parameters": SELECT by DF name wants P2=0C. */
export const SELECT_DF_NAME: RealTrace = {
  source: COMMIT('1a3666364dc434f4bbfd4154012c5d4e4dc23cb2'),
  context: 'OpenSC PKCS#11 module on a real CPx card in an Ingenico TL TELIUM reader',
  steps: [
    { step: 'SELECT the contact PKCS#15 application by AID, P2=00: incorrect P1-P2', command: '00 A4 04 00 0D E8 28 BD 08 0F 80 25 00 00 01 FF 00 10', response: '6A 86' },
    { step: 'the same with P2=0C (no response data): selected', command: '00 A4 04 0C 0D E8 28 BD 08 0F 80 25 00 00 01 FF 00 10', response: '90 00' },
  ],
};

/** fcd2e665f "IASECC/CPX: fix APDU errors for SE get data" (fixes #2275): SEs are read from the MF. */
export const SE_FROM_MF: RealTrace = {
  source: COMMIT('fcd2e665fedf38ee633ff67ea7a3e3d24c6d96f4'),
  context: 'opensc-explorer on a real CPx card, after `cd 0002` (the contactless application DF)',
  steps: [
    { step: 'GET DATA of security environment #5 from DF 0002: referenced data not found', command: '00 CB 3F FF 0A 4D 08 70 06 BF FB 05 02 7B 80', response: '6A 88' },
    { step: 'SELECT the MF by path, FCP asked', command: '00 A4 09 04 02 3F 00', response: '90 00', maybe61xx: true },
    { step: 'GET DATA of security environment #5 from the MF: found', command: '00 CB 3F FF 0A 4D 08 70 06 BF FB 05 02 7B 80', response: '90 00', maybe61xx: true },
  ],
};
