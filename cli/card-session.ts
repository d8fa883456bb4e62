/** Opens the CPx card in the chosen (or the first) reader for one CLI command, and always lets it go. */
import { openCard } from '../cards/atr-table.js';
import type { CpsCard } from '../cards/card.js';
import { toHex } from '../apdu/errors.js';
import { CardAbsentError, CardResetError, PcscService, PcscTransport, ReaderNotFoundError, type Disposition, type PcscConnection } from '../apdu/pcsc/index.js';

export interface CardContext {
  reader: string;
  atr: string;
  card: CpsCard;
  connection: PcscConnection;
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
 * Connects SHARED (other middleware keeps working) to the reader named by `--reader`, or to the first
 * reader holding a card. `disposition` is what happens to the card afterwards: commands that verified
 * a PIN reset the card so that no verified state outlives them.
 */
export async function withCard<T>(
  options: { reader?: string | undefined },
  disposition: Disposition,
  fn: (ctx: CardContext) => Promise<T>,
): Promise<T> {
  try {
    return await withCardOnce(options, disposition, fn);
  } catch (error) {
    // Read-only commands (those that leave the card as found) run again once if another application
    // reset the card meanwhile; PIN commands never do.
    if (disposition !== 'leave' || !(error instanceof CardResetError)) throw error;
    return withCardOnce(options, disposition, fn);
  }
}

async function withCardOnce<T>(
  options: { reader?: string | undefined },
  disposition: Disposition,
  fn: (ctx: CardContext) => Promise<T>,
): Promise<T> {
  return withService(async (service) => {
    const readers = service.readers();
    let reader = options.reader === undefined ? readers.find((r) => r.cardPresent) : readers.find((r) => r.name === options.reader);
    if (options.reader !== undefined && !reader) throw new ReaderNotFoundError(`no reader named ${JSON.stringify(options.reader)}`);
    if (readers.length === 0) throw new ReaderNotFoundError('no smart-card reader found');
    reader ??= readers[0];
    if (!reader?.cardPresent) throw new CardAbsentError(`no card in ${reader?.name ?? 'any reader'}`);
    const connection = await service.connect(reader.name, { share: 'shared', protocols: ['T0', 'T1'] });
    try {
      const card = openCard(new PcscTransport(connection), reader.atr);
      return await fn({ reader: reader.name, atr: toHex(reader.atr), card, connection });
    } finally {
      await connection.disconnect(disposition);
    }
  });
}
