/**
 * APDU exchanges of real CPx cards published on GitHub, copied byte for byte (facts, no code). Each
 * step has the shape the script transport takes (test/helpers/script.ts), so a trace can drive the
 * driver as well as the virtual card.
 */
import type { ScriptStep } from '../helpers/script.js';

export interface RealExchange extends ScriptStep {
  /** Sent by the host's T=0 layer rather than by the driver logic (GET RESPONSE after 61xx). */
  transport?: true;
  /**
   * OpenSC printed 90 00, which is also what it prints for a 61xx answered to a command without Le
   * (apdu.c sc_get_response: "no data is requested => change return value to 0x9000"): success, but
   * whether data was waiting is unknown.
   */
  maybe61xx?: true;
}

export interface RealTrace {
  /** Where the trace is published. */
  source: string;
  /** Who sent the commands, to which card, in what state. */
  context: string;
  steps: readonly RealExchange[];
}
