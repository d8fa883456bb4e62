/** The message catalogue (core/messages.ts): both languages, the same placeholders, every key used, plurals. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MESSAGES, type Text } from '../../core/messages.js';
import { langFromArgv, langFromEnv, t } from '../../core/i18n.js';
import { DEMO_ERRORS } from '../../examples/demo/server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const entries = Object.entries(MESSAGES) as [string, { en: Text; fr: Text }][];
const forms = (text: Text): string[] => (typeof text === 'string' ? [text] : [text.one, text.other]);
const placeholders = (text: Text): string[] => [...new Set(forms(text).flatMap((f) => [...f.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? '')))].sort();

/** Every .ts file under a directory of the repository. */
function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(ROOT, path)).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('message catalogue', () => {
  it('has a non-empty English and French text for every key', () => {
    const missing = entries.filter(([, e]) => forms(e.en).some((f) => f.trim() === '') || forms(e.fr).some((f) => f.trim() === '')).map(([k]) => k);
    expect(missing).toEqual([]);
  });

  it('has the same placeholders in both languages', () => {
    const differ = entries.filter(([, e]) => placeholders(e.en).join() !== placeholders(e.fr).join()).map(([k]) => k);
    expect(differ).toEqual([]);
  });

  it('uses {count} in every plural, in both languages', () => {
    const plurals = entries.filter(([, e]) => typeof e.en !== 'string' || typeof e.fr !== 'string');
    expect(plurals.length).toBeGreaterThan(0);
    expect(plurals.filter(([, e]) => !placeholders(e.en).includes('count') || !placeholders(e.fr).includes('count')).map(([k]) => k)).toEqual([]);
  });

  it('has no key that the CLI, the demo page, the IdP\'s login page or the daemon\'s PIN window never uses', () => {
    // A key counts as used when it appears quoted in the code (tables of keys included); no exceptions.
    const code = [...sources('cli'), ...sources('examples/demo'), ...sources('idp'), ...sources('daemon')].filter((f) => !f.endsWith('messages.ts')).map((f) => readFileSync(join(ROOT, f), 'utf8')).join('\n');
    expect(entries.map(([k]) => k).filter((k) => !code.includes(`'${k}'`))).toEqual([]);
  });

  it('lives outside cli/: the IdP, the demo page and the daemon import nothing from the command line', () => {
    const layers = ['core', 'daemon', 'idp', 'pkcs', 'examples'].flatMap(sources);
    // Type-only imports load nothing (core/any-error.ts names every error class, the CLI's included).
    const fromCli = layers.filter((f) => /import\s+(?!type\b)[^;]*?from '(\.\.\/)+cli\//.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(fromCli).toEqual([]);
  });

  it('gives the demo page a message for every error code of the browser SDK', () => {
    const dts = readFileSync(join(ROOT, 'client/cpsd.d.ts'), 'utf8');
    const union = dts.slice(dts.indexOf('export type CpsdErrorCode'), dts.indexOf(';', dts.indexOf('export type CpsdErrorCode')));
    const codes = [...union.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1] ?? '');
    expect(codes.length).toBeGreaterThan(10);
    expect(codes.filter((c) => !(c in DEMO_ERRORS))).toEqual([]);
  });
});

describe('plurals', () => {
  it('says "1 try left" in English, never "1 tries left"', () => {
    expect(t('error.PIN_INCORRECT', { count: 1 }, 'en')).toBe('wrong PIN: 1 try left');
  });

  it('says "2 tries left" in English', () => {
    expect(t('error.PIN_INCORRECT', { count: 2 }, 'en')).toBe('wrong PIN: 2 tries left');
  });

  it('says "1 essai restant" in French', () => {
    expect(t('pin.tries', { count: 1, max: 3 }, 'fr')).toBe('1/3 essai restant');
  });

  it('says "2 essais restants" in French', () => {
    expect(t('pin.tries', { count: 2, max: 3 }, 'fr')).toBe('2/3 essais restants');
  });

  it('treats 0 as singular in French and plural in English (CLDR)', () => {
    expect([t('doctor.config.files', { count: 0, port: 1 }, 'fr').split(' ')[1], t('doctor.config.files', { count: 0, port: 1 }, 'en').split(' ')[1]]).toEqual(['origine', 'allowed']);
  });
});

describe('language choice', () => {
  it('takes --lang from the command line, before or after the command', () => {
    expect([langFromArgv(['--lang', 'fr', 'doctor']), langFromArgv(['doctor', '--lang=en'])]).toEqual(['fr', 'en']);
  });

  it('ignores --lang after "--" and an unknown language', () => {
    expect([langFromArgv(['--', '--lang', 'fr']), langFromArgv(['--lang', 'de'])]).toEqual([undefined, undefined]);
  });

  it('reads LC_ALL before LC_MESSAGES before LANG', () => {
    expect([langFromEnv({ LC_ALL: 'fr_FR.UTF-8', LANG: 'en_US' }), langFromEnv({ LC_MESSAGES: 'en_GB', LANG: 'fr_FR' }), langFromEnv({ LANG: 'fr_CA.UTF-8' })]).toEqual(['fr', 'en', 'fr']);
  });

  it('falls back to English for C, POSIX and an empty environment', () => {
    expect([langFromEnv({ LANG: 'C' }), langFromEnv({ LANG: 'POSIX' }), langFromEnv({})]).toEqual(['en', 'en', 'en']);
  });
});
