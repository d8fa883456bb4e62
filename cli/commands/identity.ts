/** `cpsd identity`: who holds the card; `--situations` after the PIN. */
import { readPublicData, type PublicCardData } from '../../cards/public-data.js';
import { CpsdError } from '../../core/errors.js';
import { holderIdentity, practiceSituation, type HolderIdentity, type PracticeSituation } from '../../pkcs/holder.js';
import { withCard } from '../card-session.js';
import { ExitCode } from '../exit-codes.js';
import { t } from '../../core/i18n.js';
import { readPin } from '../prompt.js';
import { cacheFor, json, out, type CommonOptions } from '../output.js';

async function readIdentity(options: CommonOptions): Promise<{ identity: HolderIdentity; data: PublicCardData }> {
  return withCard(options, 'leave', async ({ card }) => {
    const cache = cacheFor(options);
    // The identity needs the authentication certificate only; the signing one is its fallback.
    const lean = await readPublicData(card, cache, { signCertificate: false });
    const data = lean.authCertificate ? lean : await readPublicData(card, cache);
    const certificate = data.authCertificate ?? data.signCertificate;
    if (!certificate) throw new CardDataError('the card holds no certificate');
    return { identity: holderIdentity({ certificate, serial: data.serial, data: data.data }), data };
  });
}

export class CardDataError extends CpsdError {
  readonly code = 'CARD_DATA_INVALID';
}

/** The practice situations, after the PIN (they are PIN-protected); the card is reset afterwards. */
async function readSituations(options: CommonOptions & { allowLastTry?: boolean }): Promise<PracticeSituation[]> {
  // Typed before the card is taken: nobody waits for the card while a person types.
  const pin = await readPin(t('enterPin'));
  return withCard(options, 'reset', async ({ card }) => {
    await readPublicData(card, cacheFor(options), { signCertificate: false }); // the card's PIN rule, from its AODF
    await card.verifyPin(pin, { allowLastTry: options.allowLastTry ?? false });
    const out: PracticeSituation[] = [];
    for (const label of await card.situationLabels()) {
      const s = practiceSituation(label, (await card.dataObject(label)) ?? new Uint8Array(0));
      if (s) out.push(s);
    }
    return out;
  });
}

export async function identity(options: CommonOptions & { situations?: boolean; allowLastTry?: boolean }): Promise<number> {
  const { identity: id } = await readIdentity(options);
  const situations = options.situations ? await readSituations(options) : undefined;
  if (options.json) {
    json(situations ? { ...id, situations } : id);
    return ExitCode.OK;
  }
  out(`${t('holder')}: ${id.givenName} ${id.surname}`);
  out(`${t('nationalId')}: ${id.nationalId} (${id.idKind})`);
  if (id.profession) out(`${t('profession')}: ${id.profession.label}${id.profession.code ? ` (${id.profession.code})` : ''}`);
  if (id.specialty) out(`${t('specialty')}: ${id.specialty}`);
  out(`${t('card')}: ${id.cardType ?? '?'}, ${t('serial')} ${id.serial}`);
  out(`${t('validUntil')}: ${id.notAfter.slice(0, 10)}`);
  for (const st of situations ?? []) {
    out(`${t('situation')} ${st.index}: ${st.structureName} (${st.structureIdKind} ${st.structureId}), ${st.sector}`);
  }
  return ExitCode.OK;
}
