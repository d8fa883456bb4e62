/**
 * Human output in French or English (JSON output never changes): `--lang fr|en` first, then LC_ALL,
 * LC_MESSAGES, LANG (fr* → French, anything else → English). The texts are in core/messages.ts.
 */
import { hasOwn } from './own.js';
import { MESSAGES, type MessageKey, type Text } from './messages.js';

export type Lang = 'fr' | 'en';
export type { MessageKey } from './messages.js';
export type Params = Readonly<Record<string, string | number>>;

export const LANGS: readonly Lang[] = ['fr', 'en'];

/** The language of the environment: the first of LC_ALL, LC_MESSAGES, LANG that is set. */
export function langFromEnv(env: NodeJS.ProcessEnv = process.env): Lang {
  const value = env.LC_ALL || env.LC_MESSAGES || env.LANG || '';
  return value.toLowerCase().startsWith('fr') ? 'fr' : 'en';
}

/** `--lang fr|en` (or `--lang=fr`) anywhere on the command line, before `--`; undefined otherwise. */
export function langFromArgv(argv: readonly string[]): Lang | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') break;
    const value = a === '--lang' ? argv[i + 1] : a.startsWith('--lang=') ? a.slice('--lang='.length) : undefined;
    if (value === 'fr' || value === 'en') return value;
  }
  return undefined;
}

let chosen: Lang | undefined;

/** Fixes the language for the rest of the process (`--lang`); undefined goes back to the environment. */
export function setLang(l: Lang | undefined): void {
  chosen = l;
}

export function lang(env: NodeJS.ProcessEnv = process.env): Lang {
  return chosen ?? langFromEnv(env);
}

/** The form of a text for `count`: plural rules of the language (French: 0 and 1 are singular). */
export function pluralForm(text: Text, l: Lang, count: number): string {
  if (typeof text === 'string') return text;
  return new Intl.PluralRules(l).select(count) === 'one' ? text.one : text.other;
}

/** Replaces `{name}` by its parameter; an unknown placeholder stays as it is. */
export function fill(text: string, params: Params): string {
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (hasOwn(params, name) ? String(params[name]) : whole));
}

/** The message `key` in language `l`, placeholders filled, the plural form chosen by `params.count`. */
export function t(key: MessageKey, params: Params = {}, l: Lang = lang()): string {
  return fill(pluralForm(MESSAGES[key][l], l, Number(params.count ?? 0)), params);
}
