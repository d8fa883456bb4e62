/**
 * `cpsd pkcs11 install|uninstall` for every user, below a temporary root (--root): which policies.json
 * it changes, what it keeps, what uninstall leaves, what --dry-run does not touch. The NSS databases
 * (modutil) and the real /etc are judged by the tools in test/e2e/pkcs11-install.test.ts.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { builtModulePath, Pkcs11ModuleNotFoundError, pkcs11, pkcs11Registrations, policyModule, withSecurityDevice } from '../../cli/commands/pkcs11.js';
import { exitCodeFor } from '../../cli/exit-codes.js';

let root: string;
let module: string;
const ETC = 'etc/firefox/policies/policies.json';
const DIST = 'usr/lib/firefox-esr/distribution/policies.json';

/** Runs the command below `root`, its output captured. */
async function cpsd(action: 'install' | 'uninstall', options: { dryRun?: boolean; module?: string } = {}): Promise<{ code: number; text: string }> {
  let text = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((text += String(chunk)), true));
  try {
    return { code: await pkcs11(action, { root, module: module, ...options }), text };
  } finally {
    spy.mockRestore();
  }
}

function put(path: string, content: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), content);
}
const json = (path: string): unknown => JSON.parse(readFileSync(join(root, path), 'utf8'));

/** Every file below root with the SHA-256 of its content. */
function snapshot(dir = root): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) Object.assign(files, snapshot(path));
    else files[path] = createHash('sha256').update(readFileSync(path)).digest('hex');
  }
  return files;
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'cpsd-p11-install-'));
  // Any file stands for the module here: only its path is written.
  module = join(root, 'libcpsd-pkcs11.so');
  writeFileSync(module, 'not loaded by this test');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('cpsd pkcs11 install (for every user, below --root)', () => {
  it('creates /etc/firefox/policies/policies.json, the p11-kit module file and the Java configuration when none exists', async () => {
    expect((await cpsd('install')).code).toBe(0);
    expect(json(ETC)).toEqual({ policies: { SecurityDevices: { cpsd: module } } });
    expect(readFileSync(join(root, 'etc/pkcs11/modules/cpsd.module'), 'utf8')).toMatch(new RegExp(`^module: ${module}$`, 'm'));
    expect(readFileSync(join(root, 'etc/cpsd/pkcs11-java.cfg'), 'utf8')).toMatch(new RegExp(`^name = cpsd\nlibrary = ${module}\n`, 'm'));
    expect(pkcs11Registrations({ root, home: join(root, 'home') }).map((r) => `${r.target} ${r.path.slice(root.length)}`)).toEqual([
      'firefox-policy /etc/firefox/policies/policies.json',
      'p11-kit /etc/pkcs11/modules/cpsd.module',
      'java /etc/cpsd/pkcs11-java.cfg',
    ]);
  });

  it('merges into the policies.json there, keeping its other policies, and uninstall gives them back', async () => {
    const prior = { policies: { DisableTelemetry: true, SecurityDevices: { other: '/usr/lib/other.so' } } };
    put(ETC, JSON.stringify(prior));
    await cpsd('install');
    expect(json(ETC)).toEqual({ policies: { DisableTelemetry: true, SecurityDevices: { other: '/usr/lib/other.so', cpsd: module } } });
    await cpsd('uninstall');
    expect(json(ETC)).toEqual(prior);
    expect(existsSync(join(root, 'etc/pkcs11/modules/cpsd.module'))).toBe(false);
    expect(existsSync(join(root, 'etc/cpsd/pkcs11-java.cfg'))).toBe(false);
  });

  it('writes into the distribution policies.json when only it exists (an /etc file would hide it from Firefox)', async () => {
    put(DIST, JSON.stringify({ policies: { LocalNetworkAccess: { SkipDomains: ['dpi.example'] } } }));
    await cpsd('install');
    expect(existsSync(join(root, ETC))).toBe(false);
    expect(json(DIST)).toEqual({ policies: { LocalNetworkAccess: { SkipDomains: ['dpi.example'] }, SecurityDevices: { cpsd: module } } });
  });

  it('writes into /etc only when both exist (Firefox reads it alone)', async () => {
    put(ETC, '{"policies":{}}');
    put(DIST, '{"policies":{"DisableTelemetry":true}}');
    await cpsd('install');
    expect(json(ETC)).toEqual({ policies: { SecurityDevices: { cpsd: module } } });
    expect(json(DIST)).toEqual({ policies: { DisableTelemetry: true } });
  });

  it('follows the Add form of SecurityDevices when the file uses it', () => {
    const prior = { policies: { SecurityDevices: { Add: { other: '/o.so' }, Delete: ['old'] } } };
    const added = withSecurityDevice(prior, '/m.so');
    expect(added).toEqual({ policies: { SecurityDevices: { Add: { other: '/o.so', cpsd: '/m.so' }, Delete: ['old'] } } });
    expect(policyModule(added)).toBe('/m.so');
    expect(withSecurityDevice(added, undefined)).toEqual(prior);
  });

  it('is idempotent: a second install changes no byte and says so', async () => {
    put(ETC, '{"policies":{"DisableTelemetry":true}}');
    await cpsd('install');
    const first = snapshot();
    const again = await cpsd('install');
    expect(snapshot()).toEqual(first);
    expect(again.text).toContain('already registered');
  });

  it('replaces the entry of another module path (a moved package)', async () => {
    await cpsd('install');
    const moved = join(root, 'moved.so');
    writeFileSync(moved, '');
    await cpsd('install', { module: moved });
    expect(json(ETC)).toEqual({ policies: { SecurityDevices: { cpsd: moved } } });
    expect(readFileSync(join(root, 'etc/pkcs11/modules/cpsd.module'), 'utf8')).toContain(`module: ${moved}\n`);
  });

  it('uninstall deletes a policies.json left with no policy (install created it)', async () => {
    await cpsd('install');
    await cpsd('uninstall');
    expect(existsSync(join(root, ETC))).toBe(false);
  });

  it('--dry-run prints every step and changes no file, for install and uninstall', async () => {
    put(ETC, '{"policies":{"DisableTelemetry":true}}');
    const before = snapshot();
    const dry = await cpsd('install', { dryRun: true });
    expect(snapshot()).toEqual(before);
    expect(dry.text).toContain(`would write ${join(root, ETC)}`);
    expect(dry.text).toContain(`would write ${join(root, 'etc/pkcs11/modules/cpsd.module')}`);
    expect(dry.text).toContain(`would write ${join(root, 'etc/cpsd/pkcs11-java.cfg')}`);
    await cpsd('install');
    const installed = snapshot();
    const undo = await cpsd('uninstall', { dryRun: true });
    expect(snapshot()).toEqual(installed);
    expect(undo.text).toContain(`would delete ${join(root, 'etc/pkcs11/modules/cpsd.module')}`);
  });

  it('refuses a module that is not there with PKCS11_MODULE_NOT_FOUND (exit code 2), changing nothing', async () => {
    const error = await pkcs11('install', { root, module: join(root, 'absent.so') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Pkcs11ModuleNotFoundError);
    expect((error as Pkcs11ModuleNotFoundError).code).toBe('PKCS11_MODULE_NOT_FOUND');
    expect(exitCodeFor(error)).toBe(2);
    expect(readdirSync(root)).toEqual(['libcpsd-pkcs11.so']);
  });

  it('refuses a policies.json that is not JSON with CONFIG_INVALID (exit code 2), naming it, and leaves it as it is', async () => {
    put(ETC, '{"policies": {');
    const error = await pkcs11('install', { root, module }).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('CONFIG_INVALID');
    expect(exitCodeFor(error)).toBe(2);
    expect((error as Error).message).toContain(join(root, ETC));
    expect(readFileSync(join(root, ETC), 'utf8')).toBe('{"policies": {');
  });

  it('registers nothing on Windows and macOS, and says what to do there (exit code 2)', async () => {
    for (const platform of ['win32', 'darwin'] as const) {
      let text = '';
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((text += String(chunk)), true));
      try {
        expect(await pkcs11('install', { root, module }, platform)).toBe(2);
      } finally {
        spy.mockRestore();
      }
      expect(text).toContain('cpsd policy --origin URL --pkcs11-module PATH');
    }
    expect(readdirSync(root)).toEqual(['libcpsd-pkcs11.so']);
  });

  it('finds the module built beside cpsd by default', () => {
    expect(builtModulePath()).toMatch(/pkcs11\/module\/libcpsd-pkcs11\.so$/);
  });
});
