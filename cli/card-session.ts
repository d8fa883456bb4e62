/**
 * The CLI reaches the card through the same card session as the daemon (cards/session.ts): one job per
 * command, SHARED for reading (other middleware keeps working), exclusive for a PIN and what it unlocks.
 */
import { toHex } from '../apdu/errors.js';
import { PcscService } from '../apdu/pcsc/index.js';
import type { CpsCard } from '../cards/card.js';
import { PcscBackend } from '../cards/backends.js';
import { CardSessions, type PinPad } from '../cards/session.js';

export interface CardContext {
  reader: string;
  atr: string;
  card: CpsCard;
  /** The reader's PIN pad, when it has one (PC/SC part 10). */
  pinPad: PinPad | undefined;
}

export async function withService<T>(fn: (service: PcscService) => Promise<T>): Promise<T> {
  const service = new PcscService();
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
  const backend = new PcscBackend();
  const sessions = new CardSessions(backend);
  try {
    await backend.settled();
    return await sessions.run(async (card, { reader, pinPad }) => fn({ reader, atr: toHex(card.atr), card, pinPad }), {
      reader: options.reader,
      after: disposition,
      exclusive: disposition === 'reset',
      retryOnReset: disposition === 'leave',
      ...job,
    });
  } finally {
    await sessions.close();
  }
}
