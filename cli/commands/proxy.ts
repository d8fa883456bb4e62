/**
 * `cpsd proxy`: on a computer several people use at once (terminal server), holds the well-known port
 * and hands each connection to the daemon of the user who owns the client's socket (daemon/proxy.ts,
 * docs/install.md). Runs as root, as a system service, until SIGINT/SIGTERM.
 */
import { loadConfig, type DaemonConfig } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdProxy, DEFAULT_RUNTIME_ROOT } from '../../daemon/proxy.js';
import { ExitCode } from '../exit-codes.js';
import { t } from '../../core/i18n.js';

export interface ProxyCommandOptions {
  port?: number;
  config?: string[];
  runtimeRoot?: string;
}

export async function proxy(options: ProxyCommandOptions): Promise<number> {
  if (process.platform !== 'linux') {
    process.stderr.write(`cpsd: ${t('proxy.unsupported', { platform: process.platform })}\n`);
    return ExitCode.FAILURE;
  }
  // The users' daemons believe only root's word for whose connection it is, and only root reads every
  // user's runtime directory.
  if (process.getuid?.() !== 0) {
    process.stderr.write(`cpsd: ${t('proxy.needsRoot')}\n`);
    return ExitCode.USAGE;
  }
  const overrides: Partial<DaemonConfig> = {};
  if (options.port !== undefined) overrides.port = options.port;
  const config = loadConfig(options.config ?? undefined, overrides);
  const runtimeRoot = options.runtimeRoot ?? DEFAULT_RUNTIME_ROOT;
  const server = new CpsdProxy({ port: config.port, runtimeRoot, log: new Logger(config.logLevel) });
  await server.listen();
  process.stderr.write(`${t('proxy.listening', { port: server.port, dir: `${runtimeRoot}/<uid>/cpsd/port` })}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return ExitCode.OK;
}
