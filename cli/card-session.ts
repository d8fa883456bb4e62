/**
 * The CLI reaches the card through the same card session as the daemon (cards/session.ts): one job per
 * command, SHARED for reading (other middleware keeps working), exclusive for a PIN and what it unlocks.
 */
import { toHex } from '../core/bytes.js';
import { PcscService } from '../apdu/pcsc/index.js';
import type { CpsCard } from '../cards/card.js';
import { PcscBackend } from '../cards/backends.js';
import { CardSessions, type PinPad } from '../cards/session.js';
import { CardTwins } from '../cards/twins.js';
import { pcscBindingSetting } from '../daemon/config.js';

export interface CardContext {
  reader: string;
  atr: string;
  card: CpsCard;
  /** The reader's PIN pad, when it has one (PC/SC part 10). */
  pinPad: PinPad | undefined;
}

export async function withService<T>(fn: (service: PcscService) => Promise<T>): Promise<T> {
  const service = new PcscService({ binding: pcscBindingSetting() });
  try {
    await service.settled();
    return await fn(service);
  } finally {
    await service.close();
  }
}

/**
 * Runs `fn` on the card of the reader named by `--reader`, or of the first reader holding a card.
 * `disposition` is what happens to the card afterwards: commands that verified a PIN reset the card so
 * that no verified state outlives them, and run exclusively; read-only ones run again once if another
 * application reset the card meanwhile.
 */
export async function withCard<T>(
  options: { reader?: string | undefined },
  disposition: 'leave' | 'reset',
  fn: (ctx: CardContext) => Promise<T>,
  job: { timeoutMs?: number } = {},
): Promise<T> {
  return withSessions(async (sessions, twins) => {
    // A PIN goes to the contact side of a card a dual-interface reader also shows contactless.
    const reader = disposition === 'reset' ? await twins.contactReader(options.reader) : options.reader;
    return sessions.run(async (card, { reader, pinPad }) => fn({ reader, atr: toHex(card.atr), card, pinPad }), {
      reader,
      after: disposition,
      exclusive: disposition === 'reset',
      retryOnReset: disposition === 'leave',
      ...job,
    });
  });
}

/** Card sessions over PC/SC for one command, and which readers show the same card. */
export async function withSessions<T>(fn: (sessions: CardSessions, twins: CardTwins) => Promise<T>): Promise<T> {
  const backend = new PcscBackend(new PcscService({ binding: pcscBindingSetting() }));
  const sessions = new CardSessions(backend);
  const twins = new CardTwins(sessions);
  try {
    await backend.settled();
    return await fn(sessions, twins);
  } finally {
    twins.close();
    await sessions.close();
  }
}
