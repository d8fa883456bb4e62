/**
 * OpenSC pull request #2217 "IASECC: Add support for CPx cards" (vjardin, comment of 2021-02-02): the
 * output of `iasecc-tool --list-sdos 1` and `--list-applications` on a real CPx card. These are decoded
 * values, not APDUs.
 */
import { fromHex } from '../../core/bytes.js';

export const OPENSC_2217_URL = 'https://github.com/OpenSC/OpenSC/pull/2217';

/** `iasecc-tool --list-sdos 1`: the two CHV SDOs of the MF. */
export const CHV_SDOS = [
  { reference: 1, contactAcls: 'F3 00 00 13 FF 00', triesMax: 0x03, triesLeft: 0x03, usageLeft: undefined },
  { reference: 2, contactAcls: 'F3 FF 00 FF FF 00', triesMax: 0x0a, triesLeft: 0x0a, usageLeft: 0x0064 },
] as const;

/**
 * `iasecc-tool --list-applications`, in its order. iasecc-tool prints label (EF.DIR tag 50), AID (4F)
 * and DDO (73) of each record; OpenSC's sc_enum_apps (dir.c, "Move known PKCS#15 applications to the
 * head of the list") swaps the first two known applications, so the card's EF.DIR lists them the
 * other way round: 'CPX IAS CL' first. The DDO of both is the contact AID, as printed.
 */
export const APPLICATIONS = [
  { label: 'CPX IAS', aid: 'E828BD080F8025000001FF0010', ddo: '4F0DE828BD080F8025000001FF0010' },
  { label: 'CPX IAS CL', aid: 'E828BD080F8025000001FF0020', ddo: '4F0DE828BD080F8025000001FF0010' },
] as const;

/**
 * EF.DIR of the real card, RECONSTRUCTED (not a dump): labels, AIDs and DDOs from the listing above, in
 * card order; the 51 paths (3F00/0002 and 3F00/0001) and the order of the tags inside a record are
 * assumptions. Its size, 101 bytes, is exactly the 0x65 of the real FCP (OpenSC issue #2223), which
 * leaves room for nothing but 4F, 50, a 4-byte 51 and 73 in each record.
 */
export const EF_DIR_RECONSTRUCTED = fromHex(
  '61 32 4F 0D E8 28 BD 08 0F 80 25 00 00 01 FF 00 20 50 0A 43 50 58 20 49 41 53 20 43 4C 51 04 3F 00 00 02 ' +
    '73 0F 4F 0D E8 28 BD 08 0F 80 25 00 00 01 FF 00 10 ' +
    '61 2F 4F 0D E8 28 BD 08 0F 80 25 00 00 01 FF 00 10 50 07 43 50 58 20 49 41 53 51 04 3F 00 00 01 ' +
    '73 0F 4F 0D E8 28 BD 08 0F 80 25 00 00 01 FF 00 10',
);
