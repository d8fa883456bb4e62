/**
 * `cpsd service install|uninstall` as built (dist/), judged by systemd's own tools: `systemd-analyze
 * verify` reads the unit, `systemctl is-enabled` says whether it is enabled. Everything happens in a
 * temporary home or root: nothing of this machine's systemd configuration changes.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../dist/cli/cpsd.js', import.meta.url));

function home(): { env: NodeJS.ProcessEnv; config: string; runtime: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cpsd-service-'));
  const runtime = join(dir, 'run');
  mkdirSync(runtime, { mode: 0o700 });
  const config = join(dir, '.config');
  return { env: { ...process.env, HOME: dir, XDG_CONFIG_HOME: config, XDG_RUNTIME_DIR: runtime, LANG: 'C' }, config, runtime };
}

async function cpsd(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [CLI, ...args], { env });
    return { code: 0, stdout };
  } catch (error) {
    const e = error as { code?: number; stdout?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '' };
  }
}

describe('cpsd service on Linux (systemd user unit)', () => {
  it('--dry-run prints the unit and the systemctl command, and writes nothing', async () => {
    const h = home();
    const r = await cpsd(['service', 'install', '--user', '--dry-run'], h.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`ExecStart=${process.execPath} --max-semi-space-size=2 ${CLI} serve`);
    expect(r.stdout).toContain('Would run: systemctl --user enable cpsd.service');
    expect(existsSync(join(h.config, 'systemd/user/cpsd.service'))).toBe(false);
  });

  it('install --user writes a unit systemd-analyze accepts without a warning', async () => {
    const h = home();
    expect((await cpsd(['service', 'install', '--user'], h.env)).code).toBe(0);
    const unit = join(h.config, 'systemd/user/cpsd.service');
    expect(readFileSync(unit, 'utf8')).toContain('WantedBy=default.target');
    const verified = await run('systemd-analyze', ['--user', 'verify', unit], { env: h.env });
    expect(verified.stderr.trim()).toBe('');
  });

  it('install --user enables it, as systemctl itself says', async () => {
    const h = home();
    const r = await cpsd(['service', 'install', '--user'], h.env);
    expect(r.stdout).toContain('Enabled: cpsd starts at each of your logins.');
    expect((await run('systemctl', ['--user', 'is-enabled', 'cpsd.service'], { env: h.env })).stdout.trim()).toBe('enabled');
  });

  it('without a user session manager, says it will start at the next login', async () => {
    const h = home(); // no systemd --user runs for this temporary home
    const r = await cpsd(['service', 'install', '--user'], h.env);
    expect(r.stdout).toMatch(/Not started now \(.+\): it starts at your next login/);
  });

  it('uninstall --user disables and removes it', async () => {
    const h = home();
    await cpsd(['service', 'install', '--user'], h.env);
    const r = await cpsd(['service', 'uninstall', '--user'], h.env);
    expect(r.code).toBe(0);
    expect(existsSync(join(h.config, 'systemd/user/cpsd.service'))).toBe(false);
    const state = await run('systemctl', ['--user', 'is-enabled', 'cpsd.service'], { env: h.env }).then(
      (x) => x.stdout,
      (e: { stdout?: string }) => e.stdout ?? '',
    );
    expect(state.trim()).not.toBe('enabled');
  });

  it('for every user: the unit goes to etc/systemd/user and is enabled globally (in an alternative root)', async () => {
    const h = home();
    const root = mkdtempSync(join(tmpdir(), 'cpsd-root-'));
    expect((await cpsd(['service', 'install', '--root', root], h.env)).code).toBe(0);
    expect(existsSync(join(root, 'etc/systemd/user/cpsd.service'))).toBe(true);
    expect((await run('systemctl', [`--root=${root}`, '--global', 'is-enabled', 'cpsd.service'])).stdout.trim()).toBe('enabled');
  });

  it('speaks French when asked', async () => {
    const h = home();
    const r = await cpsd(['--lang', 'fr', 'service', 'install', '--user', '--dry-run'], h.env);
    expect(r.stdout).toContain('Lancerait : systemctl --user enable cpsd.service');
  });
});

describe('cpsd service elsewhere: prints what to do, creates nothing', () => {
  it('macOS: a LaunchAgent with this cpsd, and launchctl bootstrap', async () => {
    const r = await cpsd(['service', 'install', '--platform', 'darwin'], home().env);
    expect(r.stdout).toContain('<key>Label</key><string>fr.cpsd</string>');
    expect(r.stdout).toContain(`<string>${process.execPath}</string><string>--max-semi-space-size=2</string><string>${CLI}</string><string>serve</string>`);
    expect(r.stdout).toContain('launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/fr.cpsd.plist');
  });

  it('Windows: a logon task with schtasks', async () => {
    const r = await cpsd(['service', 'install', '--platform', 'win32'], home().env);
    expect(r.stdout).toContain('schtasks /Create /F /TN cpsd /SC ONLOGON /IT');
  });
});
