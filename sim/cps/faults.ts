/**
 * Fault injection and a card-time model around any virtual card, for reliability tests and benchmarks.
 * Counts are in APDUs received by the card (GET RESPONSE included), from insertion.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { VirtualCard } from '../vpcd.js';

export interface FaultOptions {
  /** After this many APDUs the card is pulled out (the `onRemove` callback is called instead of answering). */
  removeAfter?: number | undefined;
  /** After this many APDUs the card stops answering altogether (a mute card). */
  muteAfter?: number | undefined;
  /** The APDU of this number (from 1) is answered only after `ms`: a card that hangs once, then recovers. */
  stallAt?: { apdu: number; ms: number } | undefined;
  /**
   * The `nth` command (default the first) with this INS is refused with `sw` without reaching the card:
   * a CPS4 answering 6985 in the middle of a sequence, as Cryptolib met in the field (docs/card-facts.md, addendum).
   */
  statusAt?: { ins: number; nth?: number | undefined; sw: number } | undefined;
  /** After this many APDUs every response is garbled (one byte: 6F, truncated status). */
  garbleAfter?: number | undefined;
  /** Simulated card time; off by default so that tests stay fast. */
  timing?: TimingModel | undefined;
}

/**
 * Card time: T=0 at the default ISO rate (Fi 372, Di 1, 4 MHz: 93 µs per etu, 12 etu per byte ≈
 * 1.1 ms per byte, both directions) and a fixed latency per RSA-2048 private-key operation.
 */
export interface TimingModel {
  microsPerByte: number;
  rsaMillis: number;
}

export const CPS3_TIMING: TimingModel = { microsPerByte: 1116, rsaMillis: 250 };

/** INS codes that run an RSA private-key operation on the card. */
const RSA_INS = new Set([0x88, 0x2a]);

export class FaultyCard implements VirtualCard {
  readonly atr: Uint8Array;
  readonly #card: VirtualCard;
  readonly #options: FaultOptions;
  readonly #onRemove: () => void;
  apdus = 0;
  #seenIns = 0;

  constructor(card: VirtualCard, options: FaultOptions, onRemove: () => void = () => undefined) {
    this.#card = card;
    this.atr = card.atr;
    this.#options = options;
    this.#onRemove = onRemove;
  }

  reset(): void {
    this.#card.reset?.();
  }

  powerOff(): void {
    this.#card.powerOff?.();
  }

  async transmit(command: Uint8Array): Promise<Uint8Array> {
    const n = ++this.apdus;
    const { removeAfter, muteAfter, garbleAfter, timing, stallAt, statusAt } = this.#options;
    if (removeAfter !== undefined && n > removeAfter) {
      this.#onRemove();
      return new Promise<Uint8Array>(() => undefined); // the link goes away before any answer
    }
    if (muteAfter !== undefined && n > muteAfter) return new Promise<Uint8Array>(() => undefined);
    if (stallAt && n === stallAt.apdu) await sleep(stallAt.ms);
    if (statusAt && command[1] === statusAt.ins && ++this.#seenIns === (statusAt.nth ?? 1)) {
      return Uint8Array.of(statusAt.sw >> 8, statusAt.sw & 0xff);
    }
    const response = await this.#card.transmit(command);
    if (timing) {
      const bytes = command.length + response.length;
      const rsa = RSA_INS.has(command[1] ?? 0) && response.length > 200 ? timing.rsaMillis : 0;
      await sleep(rsa + (bytes * timing.microsPerByte) / 1000);
    }
    if (garbleAfter !== undefined && n > garbleAfter) return Uint8Array.of(0x6f);
    return response;
  }
}
