/**
 * OpenSC issue #2275 "IASECC/CPX: get SE data error - 6A 88 - check SM TBC" (vjardin, 2021-03-28):
 * the APDUs of ANS's Cryptolib ("the supplier's PKCS11 driver") opening a real CPS3 in an Ingenico
 * TL TELIUM reader. The published log is cut after the tenth exchange (a second GET DATA, `00 CB 3F…`):
 * only the complete pairs are kept.
 */
import type { RealTrace } from './exchange.js';

export const OPENSC_2275_URL = 'https://github.com/OpenSC/OpenSC/issues/2275';

export const CRYPTOLIB_OPENING: RealTrace = {
  source: `${OPENSC_2275_URL} (comment "Using the supplier's PKCS11 driver, I get the following APDU")`,
  context: 'Cryptolib CPS on a real CPS3 (contact), from power-up; the card was never updated (no EF_ACTUA)',
  steps: [
    { step: 'SELECT EF.SN.ICC by path 3F00/D003, FCP asked (P2=04)', command: '00 A4 09 04 04 3F 00 D0 03', response: '61 27' },
    {
      step: 'GET RESPONSE: the FCP of EF.SN.ICC (12 bytes, SFI 1C, read always)',
      command: '00 C0 00 00 27',
      response: '62 25 80 02 00 0C 82 01 01 83 02 D0 03 88 01 E0 A1 12 8C 07 7B FF FF FF FF FF 00 9C 07 7B FF FF FF FF FF 00 8A 01 05 90 00',
      transport: true,
    },
    { step: 'READ BINARY 12 bytes: EF.SN.ICC', command: '00 B0 00 00 0C', response: '5A 0A 80 25 00 00 01 99 21 38 45 0F 90 00' },
    { step: 'SELECT EF_ACTUA 3F00/D010, FCP asked: absent on a card never updated', command: '00 A4 09 04 04 3F 00 D0 10', response: '6A 82' },
    { step: 'SELECT EF_ACTUA again (Cryptolib asks twice)', command: '00 A4 09 04 04 3F 00 D0 10', response: '6A 82' },
    { step: 'SELECT the contact application DF 3F00/0001, no FCP (P2=0C)', command: '00 A4 09 0C 04 3F 00 00 01', response: '90 00' },
    { step: 'SELECT the MF by path, no FCP', command: '00 A4 09 0C 02 3F 00', response: '90 00' },
    { step: 'GET DATA of the SDO CHV 1 (the PIN), tag A0 (counters and rules)', command: '00 CB 3F FF 0A 4D 08 70 06 BF 81 01 02 A0 80', response: '61 18' },
    {
      step: 'GET RESPONSE: 9A max tries 3, 9B tries left 3, A1/8C the access rules F3 00 00 13 FF 00',
      command: '00 C0 00 00 18',
      response: '70 16 BF 81 01 12 A0 10 9A 01 03 9B 01 03 A1 08 8C 06 F3 00 00 13 FF 00 90 00',
      transport: true,
    },
    { step: 'SELECT the MF by path again', command: '00 A4 09 0C 02 3F 00', response: '90 00' },
  ],
};
