/**
 * OpenSC issue #2223 "IASECC: iasecc-tools fails when AID is set" (vjardin, 2021-02-07): the APDUs of
 * OpenSC's `iasecc-tool --list-applications` on a real CPx card in a Microchip SEC1110 reader. The
 * published log is cut at the READ BINARY of EF.DIR (`00 B0…`): only the complete pairs are kept.
 */
import type { RealTrace } from './exchange.js';

export const OPENSC_2223_URL = 'https://github.com/OpenSC/OpenSC/issues/2223';

export const IASECC_TOOL_BIND: RealTrace = {
  source: `${OPENSC_2223_URL} (issue description)`,
  context: 'OpenSC iasecc-tool binding a real CPx card (contact), from power-up',
  steps: [
    { step: 'SELECT the MF by FID, no FCP', command: '00 A4 00 0C 02 3F 00', response: '90 00' },
    { step: 'SELECT EF.ATR 2F01 by path from the MF, without 3F00 (P1=09), FCP asked', command: '00 A4 09 04 02 2F 01', response: '61 27' },
    {
      step: 'GET RESPONSE: the FCP of EF.ATR (57 bytes, SFI 1D, update rule SCB 45)',
      command: '00 C0 00 00 27',
      response: '62 25 80 02 00 39 82 01 01 83 02 2F 01 88 01 E8 A1 12 8C 07 7B 45 FF FF FF 45 00 9C 07 7B FF FF FF FF FF 00 8A 01 05 90 00',
      transport: true,
    },
    {
      step: 'READ BINARY 57 bytes: EF.ATR (its own content ends with 82 02 90 00, then the SW 90 00)',
      command: '00 B0 00 00 39',
      response:
        '80 43 01 B8 46 04 04 B0 EC C1 47 03 94 01 80 4F 08 80 25 00 00 01 FF 01 00 E0 10 02 02 01 04 02 02 01 04 02 02 01 00 02 02 01 00 ' +
        '78 08 06 06 2B 81 22 F8 78 02 82 02 90 00 90 00',
    },
    { step: 'SELECT the IAS-ECC root application by AID, P2=00: 90 00 without FCI', command: '00 A4 04 00 08 80 25 00 00 01 FF 01 00', response: '90 00' },
    { step: 'SELECT EF.DIR 2F00 by path, FCP asked', command: '00 A4 09 04 02 2F 00', response: '61 27' },
    {
      step: 'GET RESPONSE: the FCP of EF.DIR (101 bytes, SFI 1E, update rule SCB 45)',
      command: '00 C0 00 00 27',
      response: '62 25 80 02 00 65 82 01 01 83 02 2F 00 88 01 F0 A1 12 8C 07 7B 45 FF FF FF 45 00 9C 07 7B FF FF FF FF FF 00 8A 01 05 90 00',
      transport: true,
    },
  ],
};
