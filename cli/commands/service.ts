/**
 * `cpsd service install|uninstall [--user]`: runs the daemon at login. Linux: a systemd user unit, for
 * this user (`--user`, in ~/.config/systemd/user) or for every user (/etc/systemd/user, as root), enabled
 * with systemctl (enabling works without a running session manager; starting needs one). macOS and
 * Windows: prints the LaunchAgent or the logon task to create, and creates nothing.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from '../../daemon/runtime.js';
import { ExitCode } from '../exit-codes.js';
import { t } from '../../core/i18n.js';
import { out } from '../output.js';

const run = promisify(execFile);
const UNIT = 'cpsd.service';

export interface ServiceOptions {
  user?: boolean;
  dryRun?: boolean;
  /** For tests and images: the platform to plan for, and an alternative root for systemctl. */
  platform?: NodeJS.Platform;
  root?: string;
}

/** The absolute command line of this cpsd: a unit's environment has no npm PATH. */
function command(): { node: string; script: string } {
  return { node: process.execPath, script: resolve(fileURLToPath(new URL('../cpsd.js', import.meta.url))) };
}

export function systemdUnit(): string {
  const { node, script } = command();
  return [
    '[Unit]',
    'Description=cpsd, middleware for French health-professional smart cards (CPS)',
    'Documentation=https://github.com/cpsd/cpsd/blob/main/docs/install.md',
    'After=pcscd.socket',
    '',
    '[Service]',
    // Memory a flood took is given back (daemon/runtime.ts).
    ...Object.entries(DAEMON_ENV).map(([k, v]) => `Environment=${k}=${v}`),
    `ExecStart=${quote(node)} ${DAEMON_NODE_FLAGS.join(' ')} ${quote(script)} serve`,
    'Restart=on-failure',
    'RestartSec=2',
    'NoNewPrivileges=yes',
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}

/** systemd quoting: only what needs it. */
function quote(path: string): string {
  return /^[\w/.+-]+$/.test(path) ? path : `"${path.replace(/(["\\])/g, '\\$1')}"`;
}

export function launchAgent(): string {
  const { node, script } = command();
  const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>fr.cpsd</string>
  <key>ProgramArguments</key>
  <array><string>${xml(node)}</string>${DAEMON_NODE_FLAGS.map((f) => `<string>${xml(f)}</string>`).join('')}<string>${xml(script)}</string><string>serve</string></array>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><true/>
</dict>
</plist>
`;
}

function unitPath(options: ServiceOptions): string {
  const root = options.root ?? '/';
  if (!options.user) return join(root, 'etc/systemd/user', UNIT);
  const config = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(options.root ? join(options.root, config) : config, 'systemd/user', UNIT);
}

async function systemctl(args: string[]): Promise<{ ok: true } | { ok: false; message: string }> {
  try {
    await run('systemctl', args);
    return { ok: true };
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    return { ok: false, message: (e.stderr || e.message).trim().split('\n')[0] ?? '' };
  }
}

export async function service(action: 'install' | 'uninstall', options: ServiceOptions): Promise<number> {
  const platform = options.platform ?? process.platform;
  if (platform === 'darwin') return planOnly(action, 'darwin');
  if (platform === 'win32') return planOnly(action, 'win32');
  const scope = options.user ? ['--user'] : ['--global'];
  const root = options.root ? [`--root=${options.root}`] : [];
  const path = unitPath(options);
  const enable = ['systemctl', ...scope, ...root, action === 'install' ? 'enable' : 'disable', UNIT];
  if (options.dryRun) {
    if (action === 'install') {
      out(t('service.wouldWrite', { path }));
      out(systemdUnit());
    } else out(t('service.wouldRemove', { path }));
    out(t('service.wouldRun', { command: enable.join(' ') }));
    return ExitCode.OK;
  }
  if (!options.user && !options.root && process.getuid?.() !== 0) {
    out(t('service.needsRoot'));
    return ExitCode.USAGE;
  }
  if (action === 'install') {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, systemdUnit(), { mode: 0o644 });
    out(t('service.written', { path }));
  }
  const enabled = await systemctl(enable.slice(1));
  if (!enabled.ok) {
    out(t('service.systemctlFailed', { command: enable.join(' '), message: enabled.message }));
    return ExitCode.FAILURE;
  }
  if (action === 'uninstall') {
    if (options.user && !options.root) await systemctl(['--user', 'stop', UNIT]);
    if (existsSync(path)) rmSync(path);
    out(t('service.removed', { path }));
    return ExitCode.OK;
  }
  out(t(options.user ? 'service.enabledUser' : 'service.enabledGlobal'));
  // Start it now in this user's session when there is one; enabling did not need it.
  if (options.user && !options.root) {
    const reload = await systemctl(['--user', 'daemon-reload']);
    const started = reload.ok ? await systemctl(['--user', 'start', UNIT]) : reload;
    out(started.ok ? t('service.started') : t('service.notStarted', { message: started.message }));
  }
  return ExitCode.OK;
}

function planOnly(action: 'install' | 'uninstall', platform: 'darwin' | 'win32'): number {
  const { node, script } = command();
  if (platform === 'darwin') {
    const plist = '~/Library/LaunchAgents/fr.cpsd.plist';
    out(t('service.planOnly', { platform: 'macOS' }));
    if (action === 'install') {
      out(t('service.wouldWrite', { path: plist }));
      out(launchAgent());
      out(t('service.wouldRun', { command: `launchctl bootstrap gui/$(id -u) ${plist}` }));
    } else out(t('service.wouldRun', { command: `launchctl bootout gui/$(id -u)/fr.cpsd && rm ${plist}` }));
  } else {
    out(t('service.planOnly', { platform: 'Windows' }));
    out(
      t('service.wouldRun', {
        command:
          action === 'install'
            ? `schtasks /Create /F /TN cpsd /SC ONLOGON /IT /TR "\\"${node}\\" ${DAEMON_NODE_FLAGS.join(' ')} \\"${script}\\" serve"`
            : 'schtasks /Delete /F /TN cpsd',
      }),
    );
  }
  return ExitCode.OK;
}
