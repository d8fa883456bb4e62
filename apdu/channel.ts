import { CommandApdu } from './command.js';
import { concatBytes } from '../core/bytes.js';
import { ApduFormatError, CardProtocolError } from './errors.js';
import { ResponseApdu } from './response.js';

/**
 * The one thing a card channel needs from below: send the bytes of one command, get back the bytes
 * of one response (data and SW1 SW2). A PC/SC connection, the in-memory simulator and a scripted
 * test double all fit.
 */
export interface ApduTransport {
  transmit(command: Uint8Array): Promise<Uint8Array>;
}

export interface CardChannelOptions {
  /** Whether the card accepts extended Lc/Le. CPS3 does not (EF.ATR capabilities); default false. */
  extendedLength?: boolean;
  /** Largest data field sent in one command before chaining (CLA bit 0x10). Default 255. */
  maxCommandData?: number;
  /** Cap on GET RESPONSE rounds for one command, against a card that answers 61xx forever. */
  maxGetResponses?: number;
  /** Cap on the bytes gathered for one response. Default 65536. */
  maxResponseBytes?: number;
}

/**
 * Card-level APDU exchange over a raw transport, hiding the transport-level status words of ISO 7816-3/4:
 * - `61xx` (and `9Fxx` in the GSM-style CLA A0 class of CPS2ter): fetch the rest with GET RESPONSE;
 * - `6Cxx`: the card wants the same command again with Le = xx;
 * - command data longer than one short APDU: split with command chaining unless extended length is on.
 * Exchanges are serialised: a GET RESPONSE loop or a chain is never interleaved with another command.
 */
export class CardChannel {
  readonly #transport: ApduTransport;
  readonly #extended: boolean;
  readonly #maxData: number;
  readonly #maxRounds: number;
  readonly #maxBytes: number;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(transport: ApduTransport, options: CardChannelOptions = {}) {
    this.#transport = transport;
    this.#extended = options.extendedLength ?? false;
    this.#maxData = options.maxCommandData ?? (this.#extended ? 65535 : 255);
    this.#maxRounds = options.maxGetResponses ?? 512;
    this.#maxBytes = options.maxResponseBytes ?? 65536;
    if (!Number.isInteger(this.#maxData) || this.#maxData < 1 || this.#maxData > (this.#extended ? 65535 : 255)) {
      throw new RangeError(`maxCommandData out of range: ${this.#maxData}`);
    }
  }

  /** Sends one logical command and returns the complete response (data gathered, final SW). */
  transmit(command: CommandApdu): Promise<ResponseApdu> {
    const run = this.#queue.then(() => this.#exchange(command));
    // Keep the queue alive whatever this command's outcome.
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #exchange(command: CommandApdu): Promise<ResponseApdu> {
    if (command.nc <= this.#maxData) return this.#single(command);
    // Command chaining (ISO 7816-4 §5.1.1.1): only defined for the interindustry classes.
    if ((command.cla & 0x80) !== 0 || (command.cla & 0x10) !== 0) {
      throw new ApduFormatError(
        `command data of ${command.nc} bytes needs chaining, which CLA ${hex(command.cla)} does not allow`,
      );
    }
    const { data } = command;
    for (let offset = 0; ; offset += this.#maxData) {
      const end = offset + this.#maxData;
      const chunk = data.subarray(offset, end);
      if (end >= data.length) {
        return this.#single(command.with({ data: chunk }));
      }
      const link = new CommandApdu({ cla: command.cla | 0x10, ins: command.ins, p1: command.p1, p2: command.p2, data: chunk });
      const response = await this.#single(link);
      // A link refused by the card ends the chain; its status word is the answer to the caller.
      if (!response.ok) return response;
    }
  }

  /** One command on the wire plus its 6Cxx re-send and 61xx GET RESPONSE rounds. */
  async #single(command: CommandApdu): Promise<ResponseApdu> {
    let wire = command;
    // A short-only card cannot be asked for more than 256 bytes at once: ask for 256, gather the rest.
    if (!this.#extended && wire.ne !== undefined && wire.ne > 256) wire = wire.with({ ne: 256 });
    let response = await this.#send(wire);
    if (response.sw1 === 0x6c) {
      response = await this.#send(wire.with({ ne: response.sw2 === 0 ? 256 : response.sw2 }));
      if (response.sw1 === 0x6c) {
        throw new CardProtocolError(`card answered 6Cxx twice to ${hex(command.ins)}`);
      }
    }
    const parts: Uint8Array[] = [response.data];
    let total = response.data.length;
    let rounds = 0;
    while (this.#isBytesAvailable(command, response.sw1)) {
      if (++rounds > this.#maxRounds) {
        throw new CardProtocolError(`card kept answering ${hex(response.sw1)}xx after ${this.#maxRounds} GET RESPONSE`);
      }
      const getResponse = new CommandApdu({
        cla: getResponseCla(command.cla),
        ins: 0xc0,
        p1: 0,
        p2: 0,
        ne: response.sw2 === 0 ? 256 : response.sw2,
      });
      response = await this.#send(getResponse);
      if (response.sw1 === 0x6c) {
        response = await this.#send(getResponse.with({ ne: response.sw2 === 0 ? 256 : response.sw2 }));
      }
      total += response.data.length;
      if (total > this.#maxBytes) {
        throw new CardProtocolError(`response to ${hex(command.ins)} exceeds ${this.#maxBytes} bytes`);
      }
      parts.push(response.data);
    }
    return parts.length === 1 ? response : new ResponseApdu(concatBytes(parts), response.sw);
  }

  #isBytesAvailable(command: CommandApdu, sw1: number): boolean {
    return sw1 === 0x61 || (sw1 === 0x9f && command.cla === 0xa0);
  }

  async #send(command: CommandApdu): Promise<ResponseApdu> {
    const bytes = this.#extended ? command.encode() : command.encode({ extended: false });
    return ResponseApdu.decode(await this.#transport.transmit(bytes));
  }
}

/**
 * GET RESPONSE goes in the class of the command it completes: interindustry classes keep their
 * logical-channel bits (and drop chaining/secure-messaging bits); the GSM-style A0 class keeps A0.
 */
function getResponseCla(cla: number): number {
  if ((cla & 0xe0) === 0x00) return cla & 0x03; // first interindustry: channels 0-3
  if ((cla & 0xc0) === 0x40) return cla & 0x4f; // further interindustry: channels 4-19
  return cla === 0xa0 ? 0xa0 : 0x00;
}


function hex(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, '0');
}
