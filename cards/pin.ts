/**
 * A PIN as a value that never leaves as text: not in a log line, an error, a JSON body, a trace or a
 * snapshot. Only the driver reads its digits, to put them in a VERIFY. The rule it must follow comes
 * from the card (AODF pinAttributes), the one rule everywhere: protocol, PIN page, CLI, driver.
 */
import { inspect } from 'node:util';
import { CpsdError } from '../core/errors.js';

export class PinFormatError extends CpsdError {
  readonly code = 'PIN_FORMAT';
}

export interface PinRule {
  minLength: number;
  maxLength: number;
}

/** CPx cards' PIN when the AODF says nothing: 4 digits (docs/driver.md). */
export const DEFAULT_PIN_RULE: PinRule = { minLength: 4, maxLength: 4 };

const REDACTED = '[PIN]';

export class Pin {
  readonly #digits: string;

  constructor(digits: string) {
    this.#digits = digits;
  }

  get length(): number {
    return this.#digits.length;
  }

  /** The digits as the card wants them (ASCII), after checking the card's rule. Throws PinFormatError. */
  encode(rule: PinRule = DEFAULT_PIN_RULE): Uint8Array {
    checkPin(this.#digits, rule);
    return new TextEncoder().encode(this.#digits);
  }

  /** Two PINs typed by a person are the same (new PIN and its confirmation). */
  equals(other: Pin): boolean {
    return other.#digits === this.#digits;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/** Checks a PIN's shape against a rule, never echoing it: the message tells only the rule. */
export function checkPin(digits: string, rule: PinRule): void {
  if (!/^\d+$/.test(digits) || digits.length < rule.minLength || digits.length > rule.maxLength) {
    throw new PinFormatError(`the PIN must be ${describeRule(rule)}`);
  }
}

export function describeRule(rule: PinRule): string {
  return rule.minLength === rule.maxLength ? `${rule.minLength} digits` : `${rule.minLength} to ${rule.maxLength} digits`;
}
