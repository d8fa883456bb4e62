/** `cpsd doctor`: every check a technician needs, with advice, and a support bundle without personal data. */
import { writeFileSync } from 'node:fs';
import { isCpsAtr } from '../../cards/atr-table.js';
import { readPublicData } from '../../cards/public-data.js';
import { CpsdError } from '../../core/errors.js';
import { toHex } from '../../core/bytes.js';
import { DEFAULT_PORT, loadConfig } from '../../daemon/config.js';
import { withCard, withService } from '../card-session.js';
import { ExitCode, exitCodeFor } from '../exit-codes.js';
import { lang, t } from '../i18n.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectDaemon, DaemonConnectError, type RpcClient } from '../../daemon/client.js';
import { checkCertificate } from './certs.js';
import { cacheFor, json, out, type CommonOptions } from '../output.js';

export interface DoctorCheck {
  id: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
}

const ADVICE: Readonly<Record<string, string>> = {
  PCSC_UNAVAILABLE: 'start the smart-card service: sudo systemctl start pcscd (Windows: the "Smart Card" service)',
  READER_NOT_FOUND: 'plug in a smart-card reader, or check its driver (libccid on Linux)',
  CARD_ABSENT: 'insert the CPS card, chip first and facing up',
  UNSUPPORTED_CARD: 'this card is not a CPS/CPE/CPF/CPA card supported by cpsd',
};

/** Is cpsd listening on the port, something else, or nothing? (A hello without Origin, as a local app.) */
async function probeDaemon(port: number): Promise<{ kind: 'cpsd'; version: string } | { kind: 'other' | 'none' }> {
  let rpc: RpcClient | undefined;
  try {
    rpc = await connectDaemon(port, { handshakeTimeoutMs: 2000 });
    const hello = await Promise.race([rpc.call('hello'), sleep(3000, undefined, { ref: false })]);
    return hello?.result?.protocol === 'cpsd/1' ? { kind: 'cpsd', version: String(hello.result.version ?? '?') } : { kind: 'other' };
  } catch (error) {
    return { kind: error instanceof DaemonConnectError && error.reason === 'refused' ? 'none' : 'other' };
  } finally {
    await rpc?.close();
  }
}

export async function doctor(options: CommonOptions & { trust?: string[]; crl?: string[]; bundle?: string }): Promise<number> {
  const checks: DoctorCheck[] = [];
  const add = (id: string, status: DoctorCheck['status'], detail: string): void => void checks.push({ id, status, detail });
  let firstFailure: unknown;
  const failWith = (id: string, error: unknown): void => {
    firstFailure ??= error;
    const code = error instanceof CpsdError ? error.code : '';
    add(id, 'fail', `${error instanceof Error ? error.message : String(error)}${ADVICE[code] ? ` — ${ADVICE[code]}` : ''}`);
  };
  const readers = await withService(async (s) => s.readers()).catch((e: unknown) => {
    failWith('pcsc-service', e);
    return undefined;
  });
  if (readers) {
    add('pcsc-service', 'ok', 'PC/SC service running');
    if (readers.length === 0) failWith('readers', Object.assign(new Error('no reader found'), { code: 'READER_NOT_FOUND' }));
    else add('readers', 'ok', readers.map((r) => r.name).join(', '));
    const withCardPresent = readers.filter((r) => r.cardPresent && (options.reader === undefined || r.name === options.reader));
    if (readers.length > 0 && withCardPresent.length === 0) add('card', 'fail', `no card — ${ADVICE.CARD_ABSENT}`);
    else if (withCardPresent[0] && !isCpsAtr(withCardPresent[0].atr)) {
      add('card', 'fail', `ATR ${toHex(withCardPresent[0].atr)} — ${ADVICE.UNSUPPORTED_CARD}`);
    } else if (withCardPresent[0]) {
      try {
        await withCard(options, 'leave', async ({ card, reader }) => {
          const data = await readPublicData(card, cacheFor(options));
          add('card', 'ok', `${card.kind.name} in ${reader}, serial ${data.serial}`);
          const pinStatus = await card.pinStatus();
          if (pinStatus.blocked) add('pin', 'fail', 'PIN blocked — unblock it with the unblocking code: cpsd pin unblock');
          else if (pinStatus.triesLeft < pinStatus.max) add('pin', 'warn', `${pinStatus.triesLeft} tries left`);
          else add('pin', 'ok', `${pinStatus.triesLeft}/${pinStatus.max} tries left`);
          const trust = options.trust ?? [];
          for (const [which, der] of [
            ['auth', data.authCertificate],
            ['sign', data.signCertificate],
          ] as const) {
            if (!der) continue;
            const c = await checkCertificate(which, der, { trust, crl: options.crl ?? [], now: new Date() });
            const id = `certificate-${which}`;
            if (trust.length === 0 && c.status === 'untrusted') add(id, 'skip', 'no trust anchor configured (--trust)');
            else if (c.status === 'valid') add(id, 'ok', `valid until ${c.notAfter.slice(0, 10)}`);
            else if (c.status === 'expires-soon') add(id, 'warn', `${c.detail ?? ''} — order a renewal`);
            else if (c.status === 'revocation-unknown') add(id, 'warn', `${c.detail ?? ''} — give the CRLs with --crl, or let this machine reach the OCSP responder`);
            else add(id, 'fail', `${c.status ?? ''}: ${c.detail ?? ''} — the card must be replaced`);
          }
        });
      } catch (error) {
        failWith('card', error);
      }
    }
  }
  let port = DEFAULT_PORT;
  try {
    const config = loadConfig();
    port = config.port;
    add('config', 'ok', `valid (port ${config.port}, ${config.allowedOrigins.length} allowed origin(s))`);
  } catch (error) {
    failWith('config', error);
  }
  const daemon = await probeDaemon(port);
  if (daemon.kind === 'cpsd') add('daemon', 'ok', `cpsd ${daemon.version} answers on 127.0.0.1:${port}`);
  else if (daemon.kind === 'other') add('daemon', 'fail', `port ${port} is used by another program — free it or set "port" in the configuration`);
  else add('daemon', 'warn', `cpsd is not running on port ${port} — start it: systemctl --user start cpsd (or cpsd serve)`);
  if (options.bundle) {
    // A support archive with nothing secret: versions, readers, ATRs, the checks. No PIN, no identity.
    writeFileSync(
      options.bundle,
      JSON.stringify({ cpsd: 'doctor bundle', node: process.version, platform: process.platform, lang: lang(), checks, readers: readers?.map((r) => ({ name: r.name, cardPresent: r.cardPresent, atr: r.cardPresent ? toHex(r.atr) : null })) ?? [] }, null, 2),
      { mode: 0o600 },
    );
  }
  if (options.json) json({ checks });
  else for (const c of checks) out(`[${t(c.status === 'ok' ? 'ok' : c.status === 'warn' ? 'warn' : c.status === 'fail' ? 'fail' : 'skip')}] ${c.id}: ${c.detail}`);
  if (!checks.some((c) => c.status === 'fail')) return ExitCode.OK;
  if (firstFailure) return exitCodeFor(firstFailure);
  const failed = checks.find((c) => c.status === 'fail');
  if (failed?.id === 'card') return failed.detail.startsWith('ATR') ? ExitCode.UNSUPPORTED_CARD : ExitCode.NO_CARD;
  if (failed?.id === 'pin') return ExitCode.PIN_BLOCKED;
  return ExitCode.CERTIFICATE_INVALID;
}
