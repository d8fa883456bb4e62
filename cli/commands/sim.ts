/** `cpsd sim`: plugs a virtual card into vsmartcard's vpcd (tests and demos). */
import { matchAtr } from '../../cards/atr-table.js';
import { toHex } from '../../core/bytes.js';
import { TestCard } from '../../sim/test-card.js';
import { fixtureCard, loadProfile, profileNames } from '../../sim/cps/fixtures.js';
import type { PersonalityName } from '../../sim/cps/personality.js';
import { VpcdConnector, type VirtualCard } from '../../sim/vpcd.js';
import { ExitCode } from '../exit-codes.js';
import { t } from '../../core/i18n.js';

export interface SimOptions {
  slot: number;
  vpcdHost: string;
  vpcdPort?: number;
  profile: string;
  personality?: PersonalityName;
  atr?: Uint8Array;
  listProfiles?: boolean;
}

export async function sim(options: SimOptions): Promise<number> {
  if (options.listProfiles) {
    for (const name of profileNames()) {
      const p = loadProfile(name);
      process.stdout.write(`${name}\t${p.generation} ${p.cardType}\t${p.description}\n`);
    }
    return ExitCode.OK;
  }
  const card: VirtualCard =
    options.profile === 'test-card'
      ? new TestCard(options.atr)
      : fixtureCard(options.profile, { personality: options.personality, atr: options.atr });
  const target = { host: options.vpcdHost, port: options.vpcdPort ?? 35963 + options.slot };
  const connector = await VpcdConnector.insert(card, target);
  const what = options.profile === 'test-card' ? t('sim.testCard') : t('sim.virtualCard', { personality: options.personality ?? 'CPS', profile: options.profile });
  const row = matchAtr(card.atr);
  const seen = row?.kind ? t('sim.sees', { name: row.name }) : row ? t('sim.refuses', { reason: row.refused ?? row.name }) : t('sim.outside');
  process.stderr.write(`${t('sim.inserted', { what, slot: options.slot, host: target.host, port: target.port, atr: toHex(card.atr), seen })}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    connector.once('removed', stop);
  });
  await connector.remove();
  return ExitCode.OK;
}

