/** Response bytes of a virtual card: a bare status word, or data followed by one. */
import { ResponseApdu } from '../apdu/response.js';

export const status = (value: number): Uint8Array => new ResponseApdu(new Uint8Array(0), value).encode();
export const withStatus = (data: Uint8Array, value: number): Uint8Array => new ResponseApdu(data, value).encode();
