/**
 * PIN-pad readers (PC/SC v2 part 10): the PIN is typed on the reader and never reaches the host.
 * Features are discovered with CM_IOCTL_GET_FEATURE_REQUEST; VERIFY goes through
 * FEATURE_VERIFY_PIN_DIRECT with a PIN_VERIFY_STRUCTURE (all multi-byte fields little-endian).
 */
import { ApduFormatError } from '../errors.js';
import { UnsupportedFeatureError } from './errors.js';
import { scardCtlCode } from './transport.js';
import type { PcscConnection } from './types.js';

export const FEATURE = {
  VERIFY_PIN_DIRECT: 0x06,
  MODIFY_PIN_DIRECT: 0x07,
  IFD_PIN_PROPERTIES: 0x0a,
} as const;

/** CM_IOCTL_GET_FEATURE_REQUEST = SCARD_CTL_CODE(3400). */
export const GET_FEATURE_REQUEST = scardCtlCode(3400);

/** Reads the reader's features: tag → control code. Empty when the driver has none (vpcd). */
export async function readerFeatures(connection: PcscConnection): Promise<Map<number, number>> {
  let tlv: Uint8Array;
  try {
    tlv = await connection.control(GET_FEATURE_REQUEST);
  } catch (error) {
    if (error instanceof UnsupportedFeatureError) return new Map();
    throw error;
  }
  const out = new Map<number, number>();
  for (let i = 0; i + 2 <= tlv.length; ) {
    const tag = tlv[i] ?? 0;
    const len = tlv[i + 1] ?? 0;
    if (len === 4 && i + 6 <= tlv.length) {
      out.set(tag, (((tlv[i + 2] ?? 0) << 24) | ((tlv[i + 3] ?? 0) << 16) | ((tlv[i + 4] ?? 0) << 8) | (tlv[i + 5] ?? 0)) >>> 0);
    }
    i += 2 + len;
  }
  return out;
}

export interface PinPadVerify {
  /** CLA INS P1 P2 of the VERIFY command. */
  header: readonly [number, number, number, number];
  /** PIN length in digits (CPS: 4), ASCII, no padding: Lc = length. */
  length: number;
  /** Seconds the reader waits for the PIN. Default 30. */
  timeoutSeconds?: number;
  /** wLangId for the reader's messages. Default 0x040C (French). */
  langId?: number;
}

/** PIN_VERIFY_STRUCTURE for an ASCII PIN of fixed length placed at the start of the data field. */
export function pinVerifyStructure(v: PinPadVerify): Uint8Array {
  if (!Number.isInteger(v.length) || v.length < 1 || v.length > 15) throw new ApduFormatError('PIN length out of range');
  const apdu = Uint8Array.of(...v.header, v.length, ...new Array<number>(v.length).fill(0x30));
  const lang = v.langId ?? 0x040c;
  const s = new Uint8Array(19 + apdu.length);
  s[0] = v.timeoutSeconds ?? 30; // bTimerOut
  s[1] = v.timeoutSeconds ?? 30; // bTimerOut2
  s[2] = 0x82; // bmFormatString: units in bytes, PIN at offset 0, left-justified, ASCII
  s[3] = v.length; // bmPINBlockString: no length field, block of `length` bytes
  s[4] = 0x00; // bmPINLengthFormat: PIN length not written in the APDU
  s[5] = v.length; // wPINMaxExtraDigit, LE: max then min
  s[6] = v.length;
  s[7] = 0x02; // bEntryValidationCondition: validation key pressed
  s[8] = 0x01; // bNumberMessage
  s[9] = lang & 0xff; // wLangId, LE
  s[10] = lang >> 8;
  s[11] = 0x00; // bMsgIndex
  // bTeoPrologue[3] = 0 (bytes 12..14)
  new DataView(s.buffer).setUint32(15, apdu.length, true); // ulDataLength, LE
  s.set(apdu, 19);
  return s;
}

/** Sends VERIFY through the reader's PIN pad; returns the card's response (data ‖ SW). */
export async function verifyOnPinPad(connection: PcscConnection, features: Map<number, number>, v: PinPadVerify): Promise<Uint8Array> {
  const code = features.get(FEATURE.VERIFY_PIN_DIRECT);
  if (code === undefined) throw new UnsupportedFeatureError('this reader has no PIN pad (FEATURE_VERIFY_PIN_DIRECT)', {});
  return connection.control(code, pinVerifyStructure(v));
}
