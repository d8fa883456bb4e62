/**
 * Which native PC/SC binding the service runs on. Both implement the same seam (types.ts:
 * `PcscContextFactory` → `PcscContext` → `PcscConnection`, reporting to a `ContextListener`), map their
 * binding's errors to the typed errors of errors.ts, and are supervised alike by `PcscService`.
 * - `pcsclite` (NAN, callbacks): pcsclite.ts
 * - `smartcard` (N-API, Promises): smartcard.ts
 * Chosen by the `pcscBinding` setting (daemon/config.ts) or, for any process, `CPSD_PCSC_BINDING`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PcscError } from './errors.js';
import { pcscliteContextFactory } from './pcsclite.js';
import { smartcardContextFactory } from './smartcard.js';
import type { PcscContextFactory } from './types.js';

export const PCSC_BINDINGS = ['pcsclite', 'smartcard'] as const;
export type PcscBindingName = (typeof PCSC_BINDINGS)[number];

/** See docs/performance.md ("Which PC/SC binding") for the measurements behind the choice. */
export const DEFAULT_PCSC_BINDING: PcscBindingName = 'pcsclite';

/** The environment variable that selects the binding (over the configuration files). */
export const PCSC_BINDING_ENV = 'CPSD_PCSC_BINDING';

export function isPcscBindingName(value: unknown): value is PcscBindingName {
  return typeof value === 'string' && (PCSC_BINDINGS as readonly string[]).includes(value);
}

/** The binding `CPSD_PCSC_BINDING` names, undefined when unset or empty; a PcscError for any other value. */
export function bindingFromEnvironment(env: NodeJS.ProcessEnv = process.env): PcscBindingName | undefined {
  const value = env[PCSC_BINDING_ENV];
  if (value === undefined || value === '') return undefined;
  if (!isPcscBindingName(value)) throw new PcscError(`${PCSC_BINDING_ENV} must be ${PCSC_BINDINGS.join(' or ')}, not ${JSON.stringify(value)}`);
  return value;
}

export function contextFactoryFor(binding: PcscBindingName): PcscContextFactory {
  return binding === 'smartcard' ? smartcardContextFactory : pcscliteContextFactory;
}

/** The installed version of a binding's npm package, or "unknown" (not installed, or unreadable). */
export function bindingVersion(binding: PcscBindingName): string {
  try {
    // smartcard's "exports" hide its package.json: walk up from its entry point.
    let dir = dirname(createRequire(import.meta.url).resolve(binding));
    for (let i = 0; i < 5; i++, dir = dirname(dir)) {
      const file = join(dir, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === binding && pkg.version) return pkg.version;
    }
  } catch {
    // not installed
  }
  return 'unknown';
}
