/** `cpsd status`: card type, serial, PIN tries left, and the other readers showing the same card. */
import { readPublicData } from '../../cards/public-data.js';
import { toHex } from '../../core/bytes.js';
import { withSessions } from '../card-session.js';
import { ExitCode } from '../exit-codes.js';
import { t } from '../../core/i18n.js';
import { INTERFACE_KEY, cacheFor, cardTypeOf, json, out, type CommonOptions } from '../output.js';

export async function status(options: CommonOptions): Promise<number> {
  return withSessions(async (sessions, twins) => {
    const result = await sessions.run(
      async (card, { reader }) => {
        const data = await readPublicData(card, cacheFor(options), { signCertificate: false });
        const pin = await card.pinStatus();
        return {
          reader,
          atr: toHex(card.atr),
          cardType: cardTypeOf(data),
          generation: card.kind.generation,
          interface: card.kind.interface,
          name: card.kind.name,
          serial: data.serial,
          pin: { triesLeft: pin.triesLeft, max: pin.max, blocked: pin.blocked },
        };
      },
      { reader: options.reader, retryOnReset: true },
    );
    const { name, ...shown } = result;
    const same = await twins.sameCardAs(result.reader, result.serial);
    if (options.json) json({ ...shown, sameCardAs: same });
    else {
      out(`${t('reader')}: ${result.reader}`);
      out(`${t('card')}: ${result.cardType ?? '?'} ${name} (${t(INTERFACE_KEY[result.interface])}), ${t('serial')} ${result.serial}`);
      if (same.length > 0) out(`${t('sameCard')}: ${same.join(', ')}`);
      out(`${t('pin')}: ${result.pin.blocked ? t('blocked') : t('pin.tries', { count: result.pin.triesLeft, max: result.pin.max })}`);
    }
    return result.pin.blocked ? ExitCode.PIN_BLOCKED : ExitCode.OK;
  });
}
