/** `cpsd readers`: the readers, the card in each, its interface, and which readers show the same card. */
import { ReaderNotFoundError } from '../../apdu/pcsc/index.js';
import { withSessions } from '../card-session.js';
import { ExitCode } from '../exit-codes.js';
import { t } from '../../core/i18n.js';
import { INTERFACE_KEY } from '../output.js';

export async function readers(options: { json?: boolean; reader?: string }): Promise<number> {
  return withSessions(async (_sessions, twins) => {
    let list = await twins.placements();
    if (options.reader !== undefined) {
      list = list.filter((r) => r.name === options.reader);
      if (list.length === 0) throw new ReaderNotFoundError(`no reader named ${JSON.stringify(options.reader)}`);
    }
    if (options.json) {
      process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    } else if (list.length === 0) {
      process.stdout.write(`${t('readers.none')}\n`);
    } else {
      for (const r of list) {
        const card = !r.cardPresent ? t('readers.noCard') : `${t('readers.card', { atr: r.atr || t('readers.mute') })}${r.interface ? ` (${t(INTERFACE_KEY[r.interface])})` : ''}`;
        const same = r.sameCardAs.length > 0 ? `\t${t('sameCard')}: ${r.sameCardAs.join(', ')}` : '';
        process.stdout.write(`${r.name}\t${card}${same}\n`);
      }
    }
    return list.length === 0 ? ExitCode.NO_READER : ExitCode.OK;
  });
}

