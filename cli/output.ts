/** What every card command shares: options, output helpers, the public-data cache. */
import { FileCardCache, type PublicCardData } from '../cards/public-data.js';
import type { MessageKey } from '../core/i18n.js';

/** The words for a card's interface (core/messages.ts). */
export const INTERFACE_KEY = { contact: 'contact', contactless: 'contactless' } as const satisfies Record<'contact' | 'contactless', MessageKey>;

export interface CommonOptions {
  json?: boolean;
  reader?: string;
  /** Disable the public-data cache (read everything from the card). */
  cache?: boolean;
}

export const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
export const json = (value: unknown): void => out(JSON.stringify(value, null, 2));

export function cacheFor(options: CommonOptions): FileCardCache | undefined {
  return options.cache === false ? undefined : new FileCardCache();
}

export function cardTypeOf(data: PublicCardData): string | null {
  const bytes = data.data.CPS_ID_CARD;
  if (!bytes) return null;
  const text = new TextDecoder().decode(bytes);
  return ['CPS', 'CPF', 'CPE', 'CPA'].find((c) => text.includes(c)) ?? null;
}
