/**
 * A scripted card in libelectronic-id's mock-script style: an ordered list of (command, response) pairs.
 * Each APDU the driver sends must equal the next pair's command byte for byte; the card then answers
 * that pair's response. Anything else fails the test with the step's name, the expected and the actual
 * command. `done()` checks at the end that every step was consumed.
 */
import type { ApduTransport } from '../../apdu/channel.js';
import { fromHex, toHex } from '../../core/bytes.js';

export interface ScriptStep {
  /** Expected command APDU, hex (spaces allowed). */
  command: string;
  /** Response to answer with: data then SW1 SW2, hex (spaces allowed). */
  response: string;
  /** What the step is, said in the failure message. */
  step: string;
}

export class ScriptMismatchError extends Error {
  override readonly name = 'ScriptMismatchError';
}

export class ScriptTransport implements ApduTransport {
  readonly #steps: readonly ScriptStep[];
  #next = 0;
  /** The first mismatch, kept: a driver that swallowed the rejection must still fail the test in done(). */
  #failure: ScriptMismatchError | undefined;
  /** Every command received, in hex, for failure messages and extra assertions. */
  readonly sent: string[] = [];

  constructor(steps: readonly ScriptStep[]) {
    // Normalise once, so that a malformed script fails at its own line, not at the card.
    this.#steps = steps.map((s) => ({ ...s, command: toHex(fromHex(s.command)), response: toHex(fromHex(s.response)) }));
  }

  /** Steps not consumed yet. */
  get remaining(): number {
    return this.#steps.length - this.#next;
  }

  transmit(command: Uint8Array): Promise<Uint8Array> {
    const actual = toHex(command);
    this.sent.push(actual);
    if (this.#failure) return Promise.reject(this.#failure);
    const index = this.#next;
    const step = this.#steps[index];
    if (!step) {
      return this.#fail(`command ${actual} sent after the end of the script (${this.#steps.length} steps)`);
    }
    if (step.command !== actual) {
      return this.#fail(`step ${index + 1} "${step.step}": expected command ${step.command}, got ${actual}`);
    }
    this.#next++;
    return Promise.resolve(fromHex(step.response));
  }

  /** Fails unless every step was consumed and nothing went off-script. */
  done(): void {
    if (this.#failure) throw this.#failure;
    const step = this.#steps[this.#next];
    if (step) {
      throw new ScriptMismatchError(
        `${this.remaining} step(s) not reached; next: step ${this.#next + 1} "${step.step}" (command ${step.command})`,
      );
    }
  }

  #fail(message: string): Promise<never> {
    this.#failure = new ScriptMismatchError(message);
    return Promise.reject(this.#failure);
  }
}

export function script(steps: readonly ScriptStep[]): ScriptTransport {
  return new ScriptTransport(steps);
}
