/**
 * Structured logs (one JSON object per line). A PIN is a `Pin` value (cards/pin.ts), which serialises as
 * "[PIN]" wherever it lands; keys that name a secret are dropped whatever their value, as a second net.
 * Nothing scrubs text by value: that corrupted timestamps and serials that share the PIN's digits, and
 * told where they were.
 */
import { Pin } from '../cards/pin.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Readonly<Record<Level, number>> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEY = /pin|puk|secret|password|passphrase/i;

export class Logger {
  readonly #level: Level;
  readonly #write: (line: string) => void;

  constructor(level: Level = 'info', write: (line: string) => void = (l) => void process.stderr.write(`${l}\n`)) {
    this.#level = level;
    this.#write = write;
  }

  log(level: Level, event: string, fields: Record<string, unknown> = {}): void {
    if (ORDER[level] < ORDER[this.#level]) return;
    const record = { time: new Date().toISOString(), level, event, ...this.#scrub(fields, 0) as Record<string, unknown> };
    this.#write(JSON.stringify(record));
  }

  debug(event: string, fields?: Record<string, unknown>): void {
    this.log('debug', event, fields);
  }
  info(event: string, fields?: Record<string, unknown>): void {
    this.log('info', event, fields);
  }
  warn(event: string, fields?: Record<string, unknown>): void {
    this.log('warn', event, fields);
  }
  error(event: string, fields?: Record<string, unknown>): void {
    this.log('error', event, fields);
  }

  /** An audit line (always written, whatever the level): who signed what, and how it ended. */
  audit(fields: { operation: string; origin: string | null; serial: string | null; outcome: string }): void {
    this.#write(JSON.stringify({ time: new Date().toISOString(), level: 'audit', event: 'audit', ...fields }));
  }

  #scrub(value: unknown, depth: number): unknown {
    if (depth > 6) return '[deep]';
    if (typeof value === 'string') return value;
    if (Array.isArray(value)) return value.map((v) => this.#scrub(v, depth + 1));
    if (value instanceof Pin) return value.toJSON();
    if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : this.#scrub(v, depth + 1);
      return out;
    }
    return value;
  }
}
