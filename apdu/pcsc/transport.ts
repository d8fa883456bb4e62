import type { ApduTransport } from '../channel.js';
import type { PcscConnection } from './types.js';

/** Adapts a PC/SC connection to the card channel's transport (one APDU, one response). */
export class PcscTransport implements ApduTransport {
  readonly #connection: PcscConnection;
  constructor(connection: PcscConnection) {
    this.#connection = connection;
  }
  transmit(command: Uint8Array): Promise<Uint8Array> {
    return this.#connection.transmit(command);
  }
}

/** SCARD_CTL_CODE: the platform-specific encoding of a reader control code. */
export function scardCtlCode(code: number, platform: NodeJS.Platform = process.platform): number {
  return platform === 'win32' ? ((0x31 << 16) | (code << 2)) >>> 0 : 0x42000000 + code;
}
