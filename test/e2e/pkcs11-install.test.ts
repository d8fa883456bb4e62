/**
 * `cpsd pkcs11 install|uninstall` judged by the tools that read what it writes, with `cpsd serve --sim`
 * serving the virtual card's token (no reader, no pcscd: the two commands of docs/pkcs11.md, "Try it"):
 *
 * - `--user`, in a temporary HOME with a Firefox profile made by Firefox (`-CreateProfile`): modutil and
 *   certutil on Chromium's ~/.pki/nssdb and on the profile's database (the card's certificates listed
 *   through the module), p11-kit as an unprivileged user (p11-kit ignores a user's files when run as
 *   root), keytool through the SunPKCS11 configuration, and the docs' test site (openssl s_server asking
 *   for a test IGC-Santé certificate) authenticating the holder through Chromium's database (tstclnt);
 * - for every user, for real in /etc and /usr/lib/firefox-esr/distribution (root only; every file
 *   touched is given back as it was): Firefox ESR itself loads the module from the policies.json it
 *   reads (its profile's pkcs11.txt gains it), p11-kit and p11tool as root, keytool;
 * - --dry-run changes no byte (hashes), a second install neither, uninstall leaves what was there.
 *
 * Run under the pcscd flock: other files use the same Firefox policy folders.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT } from '../helpers/public-site.js';
import { freePort, Pkcs11Daemon, type ToolResult } from '../helpers/pkcs11-daemon.js';

const daemon = new Pkcs11Daemon();
const MODULE = daemon.module;
const FIREFOX = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';
const ROOT_USER = process.getuid?.() === 0;

function cpsd(args: string[], env: Record<string, string> = {}): Promise<ToolResult> {
  return daemon.tool(process.execPath, [CLI, '--lang', 'en', 'pkcs11', ...args], { env });
}

/** Every file below each path (a missing path is listed as absent) with the SHA-256 of its content. */
function hashes(paths: string[]): Record<string, string> {
  const all: Record<string, string> = {};
  const walk = (path: string): void => {
    if (!existsSync(path)) return void (all[path] = 'absent');
    if (statSync(path).isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
    else all[path] = createHash('sha256').update(readFileSync(path)).digest('hex');
  };
  for (const p of paths) walk(p);
  return all;
}

/** The token of the virtual card as the daemon names it (pkcs11-tool -L). */
const TOKEN = 'CPS3 JEANNE MEDECIN-TEST';

beforeAll(async () => {
  await daemon.start(['--sim', 'doctor']);
  expect(daemon.log).toContain(`PKCS#11 module served on ${daemon.socket}`);
}, 30_000);

afterAll(async () => {
  await daemon.stop();
  daemon.cleanup();
});

describe('cpsd pkcs11 install --user (a temporary HOME, a profile made by Firefox)', () => {
  const home = mkdtempSync(join(tmpdir(), 'cpsd-p11-home-'));
  const env = { HOME: home, XDG_CONFIG_HOME: join(home, '.config') };
  const nssdb = join(home, '.pki/nssdb');
  const profile = join(home, '.mozilla/firefox/cpsd-test');
  const javaCfg = join(home, '.config/cpsd/pkcs11-java.cfg');
  const p11kitFile = join(home, '.config/pkcs11/modules/cpsd.module');
  const modutilList = (db: string): Promise<ToolResult> => daemon.tool('modutil', ['-list', '-dbdir', `sql:${db}`]);

  beforeAll(() => {
    execFileSync(FIREFOX, ['--headless', '-CreateProfile', `cpsd-test ${profile}`], { env: { ...process.env, ...env }, stdio: 'pipe', timeout: 30_000 });
    // Firefox ≥ 147 keeps a new account's profiles.ini under $XDG_CONFIG_HOME/mozilla/firefox (or firefox-esr).
    const ini = ['.config/mozilla/firefox', '.config/mozilla/firefox-esr', '.mozilla/firefox'].map((d) => join(home, d, 'profiles.ini')).filter((f) => existsSync(f));
    expect(ini.map((f) => readFileSync(f, 'utf8')).join('')).toContain(`Path=${profile}`);
  }, 60_000);
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('--dry-run names every step and changes nothing', async () => {
    const before = hashes([home]);
    const r = await cpsd(['install', '--user', '--dry-run'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Firefox (profile): would run modutil -dbdir sql:${profile} -add cpsd -libfile ${MODULE} -force`);
    expect(r.stdout).toContain(`Chromium, NSS tools: would run modutil -dbdir sql:${nssdb} -add cpsd -libfile ${MODULE} -force`);
    expect(r.stdout).toContain(`p11-kit (GnuTLS, p11tool): would write ${p11kitFile}`);
    expect(r.stdout).toContain(`Java (SunPKCS11): would write ${javaCfg}`);
    expect(hashes([home])).toEqual(before);
  });

  it('install: modutil and certutil find the card through Chromium’s database and the Firefox profile’s', async () => {
    const r = await cpsd(['install', '--user'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const db of [nssdb, profile]) {
      const list = await modutilList(db);
      expect(list.stdout).toMatch(new RegExp(`\\d+\\. cpsd\\n\\s+library name: ${MODULE.replace(/[.+]/g, '\\$&')}`));
      const certs = await daemon.tool('certutil', ['-L', '-h', 'all', '-d', `sql:${db}`]);
      expect(certs.stdout).toContain(`${TOKEN}:CPS_AUT_CERT`);
    }
  }, 60_000);

  it('install: p11-kit, run by an unprivileged user, loads the module from ~/.config/pkcs11/modules', async () => {
    expect(readFileSync(p11kitFile, 'utf8')).toContain(`module: ${MODULE}\n`);
    if (!ROOT_USER) return;
    chmodSync(home, 0o755);
    execFileSync('chmod', ['-R', 'a+rX', join(home, '.config')]);
    const out = execFileSync('runuser', ['-u', 'nobody', '--', 'env', `HOME=${home}`, 'p11-kit', 'list-modules'], { encoding: 'utf8' });
    expect(out).toMatch(new RegExp(`^cpsd: ${MODULE.replace(/[.+]/g, '\\$&')}$`, 'm'));
  });

  it('install: keytool lists the card’s keys through the SunPKCS11 configuration', async () => {
    const r = await daemon.tool('keytool', ['-list', '-storetype', 'PKCS11', '-providerclass', 'sun.security.pkcs11.SunPKCS11', '-providerarg', javaCfg, '-storepass', '1234']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Your keystore contains 2 entries/);
    expect(r.stdout.match(/PrivateKeyEntry/g)).toHaveLength(2);
  }, 60_000);

  it('install: the docs’ test site (openssl s_server requiring a test IGC-Santé certificate) authenticates the holder through Chromium’s database (tstclnt)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cpsd-p11-site-'));
    const pki = join(ROOT, 'fixtures/pki');
    const port = await freePort();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.pem')], { stdio: 'pipe' });
    const ca = ['intermediate.der', 'root.der'].map((f) => execFileSync('openssl', ['x509', '-inform', 'der', '-in', join(pki, f)], { encoding: 'utf8' })).join('');
    writeFileSync(join(dir, 'ca.pem'), ca);
    const server = spawn('openssl', ['s_server', '-accept', String(port), '-www', '-tls1_2', '-Verify', '2', '-verify_return_error', '-CAfile', join(dir, 'ca.pem'), '-cert', join(dir, 'server.pem'), '-key', join(dir, 'server.key')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let said = '';
    server.stdout.on('data', (d: Buffer) => (said += d.toString()));
    server.stderr.on('data', (d: Buffer) => (said += d.toString()));
    try {
      while (!said.includes('ACCEPT')) await new Promise((r) => setTimeout(r, 50));
      const r = await daemon.tool('tstclnt', ['-h', '127.0.0.1', '-p', String(port), '-d', `sql:${nssdb}`, '-n', `${TOKEN}:CPS_AUT_CERT`, '-w', '1234', '-V', 'tls1.2:tls1.2', '-o'], { input: 'GET / HTTP/1.0\r\n\r\n', timeoutMs: 30_000 });
      expect(r.stdout).toContain('HTTP/1.0 200 ok');
      expect(said).toMatch(/depth=0 C = FR, title = M\\C3\\A9decin, GN = JEANNE \+ CN = 899700012349 \+ SN = MEDECIN-TEST\nverify return:1/);
    } finally {
      server.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a second install changes no byte', async () => {
    const before = hashes([home]);
    const r = await cpsd(['install', '--user'], env);
    expect(r.stdout.match(/already registered/g)).toHaveLength(4);
    expect(hashes([home])).toEqual(before);
  });

  it('uninstall: the module is gone from both databases, the p11-kit and Java files are removed', async () => {
    const r = await cpsd(['uninstall', '--user'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const db of [nssdb, profile]) {
      const list = await modutilList(db);
      expect(list.stdout).toContain('NSS Internal PKCS #11 Module');
      expect(list.stdout).not.toMatch(/\d+\. cpsd\n/);
    }
    expect(existsSync(p11kitFile)).toBe(false);
    expect(existsSync(javaCfg)).toBe(false);
  });
});

// ------------------------------------------------------------------ for every user, in the real system folders

const ETC_POLICY = '/etc/firefox/policies/policies.json';
const DIST_POLICY = '/usr/lib/firefox-esr/distribution/policies.json';
const P11KIT = '/etc/pkcs11/modules/cpsd.module';
const JAVA = '/etc/cpsd/pkcs11-java.cfg';
const SYSTEM_FILES = [ETC_POLICY, DIST_POLICY, P11KIT, JAVA];

/** Puts the system files back as they were (content, or absent, with the folders this test made). */
function keeper(): { restore: () => void } {
  const saved = new Map(SYSTEM_FILES.map((f) => [f, existsSync(f) ? readFileSync(f) : undefined]));
  const dirs = ['/etc/firefox', '/etc/cpsd', '/etc/pkcs11/modules', '/etc/pkcs11'].filter((d) => !existsSync(d));
  return {
    restore: () => {
      for (const [file, content] of saved) {
        if (content === undefined) rmSync(file, { force: true });
        else {
          mkdirSync(dirname(file), { recursive: true });
          writeFileSync(file, content);
        }
      }
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

/** Firefox ESR started on a new profile until its pkcs11.txt names `name` (or 20 s): the modules it loaded. */
async function firefoxModules(name: string): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'cpsd-p11-ff-'));
  const child = spawn(FIREFOX, ['--headless', '--no-remote', '--profile', profile, 'about:blank'], { env: daemon.env({ HOME: profile }), stdio: 'ignore' });
  const file = join(profile, 'pkcs11.txt');
  try {
    const until = Date.now() + 20_000;
    while (Date.now() < until) {
      if (existsSync(file) && readFileSync(file, 'utf8').includes(`name=${name}\n`)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    // A little longer: a second module, had Firefox read a second file, would be there too.
    await new Promise((r) => setTimeout(r, 1000));
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  } finally {
    child.kill('SIGKILL');
    rmSync(profile, { recursive: true, force: true });
  }
}

describe.skipIf(!ROOT_USER)('sudo cpsd pkcs11 install (for every user: /etc and Firefox’s distribution folder, for real)', () => {
  it('--dry-run changes no system file', async () => {
    const before = hashes(SYSTEM_FILES);
    const r = await cpsd(['install', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('would write');
    expect(hashes(SYSTEM_FILES)).toEqual(before);
  });

  it('without /etc/firefox/policies, merges into the distribution policies.json: Firefox loads the module, the other policy stays; p11-kit, p11tool and keytool load it; uninstall gives the files back', async () => {
    const k = keeper();
    try {
      rmSync(ETC_POLICY, { force: true });
      const prior = { policies: { DisableAppUpdate: true } };
      mkdirSync(dirname(DIST_POLICY), { recursive: true });
      writeFileSync(DIST_POLICY, JSON.stringify(prior));
      const r = await cpsd(['install']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(existsSync(ETC_POLICY)).toBe(false);
      expect(JSON.parse(readFileSync(DIST_POLICY, 'utf8'))).toEqual({ policies: { DisableAppUpdate: true, SecurityDevices: { cpsd: MODULE } } });
      expect(await firefoxModules('cpsd')).toContain(`library=${MODULE}\nname=cpsd\n`);

      const modules = await daemon.tool('p11-kit', ['list-modules']);
      expect(modules.stdout).toMatch(new RegExp(`^cpsd: ${MODULE.replace(/[.+]/g, '\\$&')}$`, 'm'));
      expect(modules.stdout).toContain(`token: ${TOKEN}`);
      const tokens = await daemon.tool('p11tool', ['--list-tokens']);
      expect(tokens.stdout).toContain(`Label: ${TOKEN}`);
      const keytool = await daemon.tool('keytool', ['-list', '-storetype', 'PKCS11', '-providerclass', 'sun.security.pkcs11.SunPKCS11', '-providerarg', JAVA, '-storepass', '1234']);
      expect(keytool.stdout.match(/PrivateKeyEntry/g), keytool.stdout + keytool.stderr).toHaveLength(2);

      const u = await cpsd(['uninstall']);
      expect(u.code, u.stdout + u.stderr).toBe(0);
      expect(JSON.parse(readFileSync(DIST_POLICY, 'utf8'))).toEqual(prior);
      expect(existsSync(P11KIT)).toBe(false);
      expect(existsSync(JAVA)).toBe(false);
      expect((await daemon.tool('p11-kit', ['list-modules'])).stdout).not.toMatch(/^cpsd: /m);
    } finally {
      k.restore();
    }
  }, 90_000);

  it('with both files, writes /etc/firefox/policies/policies.json, the one Firefox reads alone (the distribution file’s module is not loaded)', async () => {
    const k = keeper();
    try {
      mkdirSync(dirname(ETC_POLICY), { recursive: true });
      writeFileSync(ETC_POLICY, JSON.stringify({ policies: { DisableAppUpdate: true } }));
      writeFileSync(DIST_POLICY, JSON.stringify({ policies: { SecurityDevices: { 'cpsd-distribution': MODULE } } }));
      expect((await cpsd(['install'])).code).toBe(0);
      expect(JSON.parse(readFileSync(ETC_POLICY, 'utf8'))).toEqual({ policies: { DisableAppUpdate: true, SecurityDevices: { cpsd: MODULE } } });
      const loaded = await firefoxModules('cpsd');
      expect(loaded).toContain('name=cpsd\n');
      expect(loaded).not.toContain('name=cpsd-distribution');
      await cpsd(['uninstall']);
      expect(JSON.parse(readFileSync(ETC_POLICY, 'utf8'))).toEqual({ policies: { DisableAppUpdate: true } });
      // uninstall takes our entry out of every file Firefox may read, and only ours
      expect(JSON.parse(readFileSync(DIST_POLICY, 'utf8'))).toEqual({ policies: { SecurityDevices: { 'cpsd-distribution': MODULE } } });
    } finally {
      k.restore();
    }
  }, 90_000);

  it('cpsd doctor names the places and the socket the daemon listens on', async () => {
    const k = keeper();
    try {
      rmSync(ETC_POLICY, { force: true });
      rmSync(DIST_POLICY, { force: true });
      await cpsd(['install']);
      const r = await daemon.tool(process.execPath, [CLI, '--lang', 'en', 'doctor', '--json']);
      const check = (JSON.parse(r.stdout) as { checks: { id: string; status: string; detail: string }[] }).checks.find((c) => c.id === 'pkcs11');
      expect(check?.status).toBe('ok');
      expect(check?.detail).toContain(`firefox-policy (${ETC_POLICY})`);
      expect(check?.detail).toContain(`p11-kit (${P11KIT})`);
      expect(check?.detail).toContain(`java (${JAVA})`);
      expect(check?.detail).toContain(`serves it on ${daemon.socket}`);
      await cpsd(['uninstall']);
    } finally {
      k.restore();
    }
  }, 60_000);
});
