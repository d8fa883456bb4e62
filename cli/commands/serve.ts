/** `cpsd serve`: runs the daemon until SIGINT/SIGTERM. */
import { spawn } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { PcscService } from '../../apdu/pcsc/service.js';
import { InProcessBackend, PcscBackend } from '../../cards/backends.js';
import type { CardBackend } from '../../cards/session.js';
import { loadConfig, normaliseOrigin, type DaemonConfig } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { DAEMON_V8_RUNTIME_FLAG } from '../../daemon/runtime.js';
import { CpsdServer } from '../../daemon/server.js';
import { IdpLink } from '../../daemon/idp-link.js';
import { Pkcs11Server } from '../../pkcs11/server.js';
import { pkcs11SocketPath } from '../../pkcs11/socket-path.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import type { PersonalityName } from '../../sim/cps/personality.js';
import { ExitCode } from '../exit-codes.js';
import { t } from '../../core/i18n.js';
import type { PinRefusal } from '../../daemon/pin-notice.js';

export interface ServeOptions {
  port?: number;
  allowOrigin?: string[];
  allowHttpLocalhost?: boolean;
  config?: string[];
  sim?: string;
  personality?: PersonalityName;
  atr?: Uint8Array;
}

export async function serve(options: ServeOptions): Promise<number> {
  // However it was started: V8's young generation keeps its size (daemon/runtime.ts).
  setFlagsFromString(DAEMON_V8_RUNTIME_FLAG);
  const overrides: Partial<DaemonConfig> = {};
  if (options.port !== undefined) overrides.port = options.port;
  if (options.allowHttpLocalhost) overrides.allowHttpLocalhost = true;
  const files = options.config ?? undefined;
  const base = loadConfig(files, overrides);
  const config: DaemonConfig = {
    ...base,
    allowedOrigins: [...new Set([...base.allowedOrigins, ...(options.allowOrigin ?? []).map((o) => normaliseOrigin(o, base.allowHttpLocalhost))])],
  };
  const log = new Logger(config.logLevel);
  let cards: CardBackend;
  if (options.sim) {
    cards = new InProcessBackend(fixtureCard(options.sim, { personality: options.personality, atr: options.atr }));
  } else {
    const source = new PcscBackend(new PcscService({ binding: config.pcscBinding }));
    await source.settled();
    cards = source;
  }
  const server = new CpsdServer(config, cards, log);
  await server.listen();
  // CIBA: the link to cpsd-idp, when configured (docs/idp.md, "CIBA"); the PIN window opens by itself.
  const [program = 'xdg-open', ...args] = config.pinWindowCommand;
  const openWindow = (url: string): void => {
    const child = spawn(program, [...args, url], { stdio: 'ignore', detached: true });
    child.on('error', (error) => log.warn('pin-window-command-failed', { error }));
    child.unref();
  };
  const link = config.idp
    ? new IdpLink({
        idp: config.idp,
        guard: server.guard,
        sessions: server.sessions,
        log,
        openWindow,
      })
    : undefined;
  link?.start();
  // The PKCS#11 module's socket: same card sessions, so a TLS handshake and a web login take turns.
  const socketPath = pkcs11SocketPath();
  const pkcs11 = config.pkcs11 ? new Pkcs11Server({
        sessions: server.sessions,
        cache: server.cache,
        log,
        socketPath,
        // A browser's PIN prompt only asks again: the daemon says how many tries are left.
        ...(config.pinNotices ? { onPinRefused: (refusal: PinRefusal) => openWindow(server.noticeUrl(refusal)) } : {}),
      }) : undefined;
  const served = await pkcs11?.listen().then(
    () => true,
    (error: unknown) => (log.warn('pkcs11-unavailable', { error }), false),
  );
  process.stderr.write(`${t('serve.listening', { port: server.port, origins: config.allowedOrigins.join(', ') || t('serve.localOnly') })}\n`);
  // With --sim too: the virtual card is a PKCS#11 token (docs/pkcs11.md, "Try it").
  if (served) process.stderr.write(`${t('serve.pkcs11', { socket: socketPath })}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  // Pending PIN entries and operations end now; a card command still at the card gets 1 s at most, and
  // so does anything left holding the event loop (SIGTERM ends the process within 1 s, whatever came before).
  setTimeout(() => process.exit(ExitCode.OK), 1000).unref();
  link?.close();
  await pkcs11?.close();
  await server.close();
  await server.sessions.close();
  return ExitCode.OK;
}
