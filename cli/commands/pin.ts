/** `cpsd pin verify|change|unblock`: PINs typed at the prompt or on the PIN pad, never on the command line. */
import { readPublicData } from '../../cards/public-data.js';
import { CpsdError } from '../../core/errors.js';
import { withCard } from '../card-session.js';
import { ExitCode } from '../exit-codes.js';
import { t } from '../../core/i18n.js';
import { readPin } from '../prompt.js';
import type { Pin } from '../../cards/pin.js';
import { cacheFor, json, out, type CommonOptions } from '../output.js';

/** What a PIN command needs typed, asked before the card is taken (nobody waits while a person types). */
async function typedPins(action: 'verify' | 'change' | 'unblock'): Promise<{ current: Pin; next?: Pin }> {
  if (action === 'verify') return { current: await readPin(t('enterPin')) };
  const current = await readPin(t(action === 'change' ? 'enterPin' : 'enterPuk'));
  const next = await readPin(t('enterNewPin'));
  if (!next.equals(await readPin(t('confirmPin')))) throw new PinMismatchError('the two new PINs differ');
  return { current, next };
}

export async function pin(action: 'verify' | 'change' | 'unblock', options: CommonOptions & { allowLastTry?: boolean }): Promise<number> {
  const allowLastTry = options.allowLastTry ?? false;
  // A PIN-pad reader: the PIN is typed on the reader and never crosses this process.
  const pad = action === 'verify' && (await withCard(options, 'leave', async ({ pinPad }) => pinPad !== undefined));
  const pins = pad ? undefined : await typedPins(action);
  // Reset the card afterwards: a verified PIN never outlives the command.
  return withCard(
    options,
    'reset',
    async ({ card, pinPad }) => {
      await readPublicData(card, cacheFor(options), { signCertificate: false }); // the card's PIN rule, from its AODF
      if (pad && pinPad) {
        process.stderr.write(t('enterPinOnReader'));
        await card.verifyPinOnReader(pinPad, { allowLastTry });
      } else if (pins && action === 'verify') await card.verifyPin(pins.current, { allowLastTry });
      else if (pins?.next && action === 'change') await card.changePin(pins.current, pins.next, { allowLastTry });
      else if (pins?.next) await card.unblockPin(pins.current, pins.next);
      const status = await card.pinStatus();
      if (options.json) json({ ok: true, pin: { triesLeft: status.triesLeft, max: status.max, blocked: status.blocked } });
      else out(t(action === 'verify' ? 'pinOk' : action === 'change' ? 'pinChanged' : 'pinUnblocked'));
      return ExitCode.OK;
    },
    pad ? { timeoutMs: 90_000 } : {},
  );
}

export class PinMismatchError extends CpsdError {
  readonly code = 'PIN_MISMATCH';
}
