/**
 * `cpsd pkcs11 install|uninstall [--user] [--dry-run] [--module PATH]`: registers the PKCS#11 module
 * (pkcs11/module/) where applications look for one (docs/pkcs11.md):
 *
 * - for every user (as root): Firefox's enterprise policy `SecurityDevices`, merged into the policies.json
 *   Firefox reads; p11-kit's /etc/pkcs11/modules/cpsd.module (GnuTLS, p11tool, p11-kit-proxy); a Java
 *   SunPKCS11 configuration /etc/cpsd/pkcs11-java.cfg;
 * - for this user (`--user`): each Firefox profile's NSS database and Chromium's ~/.pki/nssdb (modutil),
 *   ~/.config/pkcs11/modules/cpsd.module, ~/.config/cpsd/pkcs11-java.cfg.
 *
 * Every step first looks at what is there: install twice changes nothing the second time, uninstall
 * removes only what install adds (the `cpsd` entry of a policies.json, our .module file, the `cpsd` module
 * of an NSS database, our Java file), and `--dry-run` says each step and changes nothing.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CpsdError } from '../../core/errors.js';
import { ConfigError } from '../../daemon/config.js';
import { ExitCode } from '../exit-codes.js';
import { t } from '../../core/i18n.js';
import { out } from '../output.js';

const run = promisify(execFile);

/** The name the module is registered under everywhere (NSS module name, policy key, .module file, Java provider). */
export const MODULE_NAME = 'cpsd';

/** The module's file name on each platform (pkcs11/module/Makefile). */
export function moduleFileName(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? 'cpsd-pkcs11.dll' : platform === 'darwin' ? 'libcpsd-pkcs11.dylib' : 'libcpsd-pkcs11.so';
}

/** No module file where it was asked for, or none built beside this cpsd. */
export class Pkcs11ModuleNotFoundError extends CpsdError {
  readonly code = 'PKCS11_MODULE_NOT_FOUND';
  constructor(readonly path: string) {
    super(`no PKCS#11 module at ${path} (build it: make -C pkcs11/module, or give --module PATH)`);
  }
}

/** The module built beside this cpsd (dist/cli/commands/ or cli/commands/ → pkcs11/module/), found or not. */
export function builtModulePath(): string {
  const candidates = ['../../../pkcs11/module/', '../../pkcs11/module/'].map((up) => join(fileURLToPath(new URL(up, import.meta.url)), moduleFileName()));
  return candidates.find((p) => existsSync(p)) ?? (candidates[0] as string);
}

/** The module to register: `--module` (made absolute: applications load it from anywhere), else the built one. */
export function resolveModule(option?: string): string {
  const path = option === undefined ? builtModulePath() : resolve(option);
  let file = false;
  try {
    file = statSync(path).isFile();
  } catch {
    // absent
  }
  if (!file) throw new Pkcs11ModuleNotFoundError(path);
  return path;
}

// ------------------------------------------------------------------ places

/** Where Firefox reads machine policies on Linux, in its order: the first file that exists is read, alone. */
export const FIREFOX_POLICY_FILES = ['/etc/firefox/policies/policies.json', '/usr/lib/firefox-esr/distribution/policies.json', '/usr/lib/firefox/distribution/policies.json'] as const;

export interface Places {
  /** Prefix of the system paths (tests, images): '/' normally. */
  root: string;
  home: string;
}

export function defaultPlaces(root?: string): Places {
  return { root: root ?? '/', home: homedir() };
}

const sys = (p: Places, path: string): string => join(p.root, path);
export const p11kitFile = (p: Places, user: boolean): string => (user ? join(p.home, '.config/pkcs11/modules', `${MODULE_NAME}.module`) : sys(p, `/etc/pkcs11/modules/${MODULE_NAME}.module`));
export const javaFile = (p: Places, user: boolean): string => (user ? join(process.env.XDG_CONFIG_HOME || join(p.home, '.config'), 'cpsd', 'pkcs11-java.cfg') : sys(p, '/etc/cpsd/pkcs11-java.cfg'));
export const chromiumDb = (p: Places): string => join(p.home, '.pki/nssdb');

/**
 * The Firefox profiles of this user that exist, from every profiles.ini: ~/.mozilla/firefox (before
 * Firefox 147, and kept by later versions that find it), $XDG_CONFIG_HOME/mozilla/firefox and
 * …/firefox-esr (Firefox ≥ 147 on a new account: Debian's firefox-esr 153 made its profile there), snap.
 */
export function firefoxProfiles(p: Places): string[] {
  const found: string[] = [];
  const config = process.env.XDG_CONFIG_HOME || join(p.home, '.config');
  for (const dir of [join(p.home, '.mozilla/firefox'), join(config, 'mozilla/firefox'), join(config, 'mozilla/firefox-esr'), join(p.home, 'snap/firefox/common/.mozilla/firefox')]) {
    let ini: string;
    try {
      ini = readFileSync(join(dir, 'profiles.ini'), 'utf8');
    } catch {
      continue;
    }
    for (const section of ini.split(/^\[/m)) {
      if (!/^Profile\d+\]/.test(section)) continue;
      const path = /^Path=(.+)$/m.exec(section)?.[1]?.trim();
      if (!path) continue;
      const relative = /^IsRelative=1\s*$/m.test(section);
      const full = relative || !isAbsolute(path) ? join(dir, path) : path;
      if (existsSync(full) && !found.includes(full)) found.push(full);
    }
  }
  return found;
}

/** The modules of an NSS database, from its pkcs11.txt (name → library), without loading anything. */
export function nssModules(dbDir: string): Map<string, string> {
  const modules = new Map<string, string>();
  let text: string;
  try {
    text = readFileSync(join(dbDir, 'pkcs11.txt'), 'utf8');
  } catch {
    return modules;
  }
  for (const block of text.split(/\n\s*\n/)) {
    const library = /^library=(.*)$/m.exec(block)?.[1]?.trim();
    const name = /^name=(.*)$/m.exec(block)?.[1]?.trim();
    if (library && name) modules.set(name, library);
  }
  return modules;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The module a policies.json registers under our name (`SecurityDevices.cpsd` or `SecurityDevices.Add.cpsd`). */
export function policyModule(policies: unknown): string | undefined {
  const devices = isObject(policies) && isObject(policies.policies) ? policies.policies.SecurityDevices : undefined;
  if (!isObject(devices)) return undefined;
  const value = isObject(devices.Add) ? devices.Add[MODULE_NAME] : devices[MODULE_NAME];
  return typeof value === 'string' ? value : undefined;
}

/** `policies` with our SecurityDevices entry set to `module` (or removed when undefined); other policies untouched. */
export function withSecurityDevice(policies: unknown, module: string | undefined): Json {
  const top: Json = isObject(policies) ? { ...policies } : {};
  const inner: Json = isObject(top.policies) ? { ...top.policies } : {};
  const devices: Json = isObject(inner.SecurityDevices) ? { ...inner.SecurityDevices } : {};
  // Firefox ≥ 114 also takes {"Add": {name: path}, "Delete": [names]}: follow the form already there.
  const others = Object.entries(isObject(devices.Add) ? devices.Add : devices).filter(([name]) => name !== MODULE_NAME);
  const target: Json = Object.fromEntries(module === undefined ? others : [...others, [MODULE_NAME, module]]);
  let next: Json = target;
  if (isObject(devices.Add)) {
    const rest = Object.fromEntries(Object.entries(devices).filter(([key]) => key !== 'Add'));
    next = Object.keys(target).length > 0 ? { ...rest, Add: target } : rest;
  }
  if (Object.keys(next).length > 0) inner.SecurityDevices = next;
  else delete inner.SecurityDevices;
  top.policies = inner;
  return top;
}

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8')) as unknown;
}

/** p11-kit's module file: the module path (p11-kit loads it in GnuTLS, p11tool and its proxy). */
export function p11kitModule(module: string): string {
  return `# cpsd: the CPS card's PKCS#11 module (cpsd pkcs11 install; removed by cpsd pkcs11 uninstall)\nmodule: ${module}\n`;
}

/** SunPKCS11's configuration (JDK 9+: `Security.getProvider("SunPKCS11").configure(file)`, keytool -providerarg). */
export function javaConfig(module: string): string {
  return `# cpsd: the CPS card's PKCS#11 module for Java SunPKCS11 (cpsd pkcs11 install)\nname = ${MODULE_NAME}\nlibrary = ${module}\n`;
}

// ------------------------------------------------------------------ the steps

export type Target = 'firefox-policy' | 'firefox-profile' | 'chromium-nssdb' | 'p11-kit' | 'java';

interface Step {
  target: Target;
  /** The file or database. */
  path: string;
  /** Nothing to do: already as asked. */
  done: boolean;
  /** What it does, in technical words: a file's content, a command line. */
  what: string;
  /** write a file, remove our entry from a file, delete our file, run a tool. */
  kind: 'write' | 'remove' | 'delete' | 'run';
  apply: () => Promise<void>;
}

function writeStep(target: Target, path: string, content: string): Step {
  const same = existsSync(path) && readFileSync(path, 'utf8') === content;
  return {
    target,
    path,
    done: same,
    what: content,
    kind: 'write',
    apply: async () => {
      mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
      writeFileSync(path, content, { mode: 0o644 });
    },
  };
}

function removeStep(target: Target, path: string): Step {
  return { target, path, done: !existsSync(path), what: '', kind: 'delete', apply: async () => rmSync(path, { force: true }) };
}

/** The policies.json files to change: the one Firefox reads (the first that exists), else the system one, created. */
function policyFilesToChange(p: Places, action: 'install' | 'uninstall'): string[] {
  const existing = FIREFOX_POLICY_FILES.map((f) => sys(p, f)).filter((f) => existsSync(f));
  if (action === 'uninstall') return existing;
  // Firefox reads /etc/firefox/policies/policies.json alone when it exists; otherwise the distribution
  // file next to the program. Creating the /etc one would hide a distribution file's policies: merge there.
  if (existing.length === 0) return [sys(p, FIREFOX_POLICY_FILES[0])];
  return existing[0] === sys(p, FIREFOX_POLICY_FILES[0]) ? [existing[0]] : existing;
}

function policySteps(p: Places, action: 'install' | 'uninstall', module: string): Step[] {
  return policyFilesToChange(p, action).map((path) => {
    let current: unknown = {};
    try {
      if (existsSync(path)) current = readJson(path);
    } catch (error) {
      // Firefox ignores a policies.json it cannot parse: say so rather than rewrite IT's file.
      throw new ConfigError(`${path}: not valid JSON (${error instanceof Error ? error.message : String(error)}); Firefox ignores it too`);
    }
    const next = withSecurityDevice(current, action === 'install' ? module : undefined);
    const done = action === 'install' ? policyModule(current) === module : policyModule(current) === undefined;
    const empty = isObject(next.policies) && Object.keys(next.policies).length === 0 && Object.keys(next).length === 1;
    const content = `${JSON.stringify(next, null, 2)}\n`;
    return {
      target: 'firefox-policy',
      path,
      done,
      what: action === 'install' ? `"SecurityDevices": { "${MODULE_NAME}": ${JSON.stringify(module)} }` : `"SecurityDevices": { "${MODULE_NAME}" }`,
      kind: action === 'install' ? 'write' : 'remove',
      apply: async () => {
        // A file left with no policy at all was ours alone: it goes.
        if (action === 'uninstall' && empty) rmSync(path, { force: true });
        else {
          mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
          writeFileSync(path, content, { mode: 0o644 });
        }
      },
    };
  });
}

/** modutil on one NSS database (created, empty password, when absent, as Chromium and Firefox do). */
function nssSteps(target: Target, db: string, action: 'install' | 'uninstall', module: string): Step[] {
  const registered = nssModules(db).get(MODULE_NAME);
  const dbArg = `sql:${db}`;
  if (action === 'uninstall') {
    const args = ['-dbdir', dbArg, '-delete', MODULE_NAME, '-force'];
    return [{ target, path: db, done: registered === undefined, what: `modutil ${args.join(' ')}`, kind: 'run', apply: () => modutil(args) }];
  }
  const steps: Step[] = [];
  const hasDb = existsSync(join(db, 'cert9.db'));
  if (!hasDb) {
    const args = ['-create', '-dbdir', dbArg, '-force'];
    steps.push({
      target,
      path: db,
      done: false,
      what: `modutil ${args.join(' ')}`,
      kind: 'run',
      apply: async () => {
        mkdirSync(db, { recursive: true, mode: 0o700 });
        await modutil(args);
      },
    });
  }
  // Another library under our name (an older install, another --module): replaced.
  if (registered !== undefined && registered !== module) {
    const args = ['-dbdir', dbArg, '-delete', MODULE_NAME, '-force'];
    steps.push({ target, path: db, done: false, what: `modutil ${args.join(' ')}`, kind: 'run', apply: () => modutil(args) });
  }
  const args = ['-dbdir', dbArg, '-add', MODULE_NAME, '-libfile', module, '-force'];
  steps.push({ target, path: db, done: registered === module, what: `modutil ${args.join(' ')}`, kind: 'run', apply: () => modutil(args) });
  return steps;
}

async function modutil(args: string[]): Promise<void> {
  try {
    await run('modutil', args, { timeout: 30_000 });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string; code?: unknown };
    if (e.code === 'ENOENT') throw new Error('modutil not found: install NSS tools (Debian: libnss3-tools)', { cause: error });
    throw new Error(`modutil ${args.join(' ')}: ${(e.stderr || e.stdout || e.message).trim()}`, { cause: error });
  }
}

export function plan(action: 'install' | 'uninstall', user: boolean, module: string, p: Places): Step[] {
  const steps: Step[] = [];
  if (user) {
    for (const profile of firefoxProfiles(p)) steps.push(...nssSteps('firefox-profile', profile, action, module));
    steps.push(...nssSteps('chromium-nssdb', chromiumDb(p), action, module));
  } else steps.push(...policySteps(p, action, module));
  const p11kit = p11kitFile(p, user);
  steps.push(action === 'install' ? writeStep('p11-kit', p11kit, p11kitModule(module)) : removeStep('p11-kit', p11kit));
  const java = javaFile(p, user);
  steps.push(action === 'install' ? writeStep('java', java, javaConfig(module)) : removeStep('java', java));
  return steps;
}

export interface Pkcs11Options {
  user?: boolean;
  dryRun?: boolean;
  module?: string;
  /** Prefix of the system paths (tests, images). */
  root?: string;
}

const TARGET_NAME: Readonly<Record<Target, string>> = {
  'firefox-policy': 'Firefox (policy SecurityDevices)',
  'firefox-profile': 'Firefox (profile)',
  'chromium-nssdb': 'Chromium, NSS tools',
  'p11-kit': 'p11-kit (GnuTLS, p11tool)',
  java: 'Java (SunPKCS11)',
};

export async function pkcs11(action: 'install' | 'uninstall', options: Pkcs11Options, platform: NodeJS.Platform = process.platform): Promise<number> {
  // The places below are Linux's (XDG, /etc, NSS databases in the home folder).
  if (platform !== 'linux') {
    out(t('pkcs11.linuxOnly'));
    return ExitCode.USAGE;
  }
  // Uninstall needs no module file: it removes our entries whatever library they name.
  const module = action === 'install' || options.module !== undefined ? resolveModule(options.module) : builtModulePath();
  if (!options.user && !options.root && !options.dryRun && process.getuid?.() !== 0) {
    out(t('pkcs11.needsRoot'));
    return ExitCode.USAGE;
  }
  const places = defaultPlaces(options.root);
  const steps = plan(action, options.user === true, module, places);
  if (action === 'install') out(t('pkcs11.module', { path: module }));
  for (const step of steps) {
    const name = TARGET_NAME[step.target];
    if (step.done) {
      out(t(action === 'install' ? 'pkcs11.already' : 'pkcs11.absent', { target: name, path: step.path }));
      continue;
    }
    if (options.dryRun) {
      if (step.kind === 'run') out(t('pkcs11.wouldRun', { target: name, command: step.what }));
      else if (step.kind === 'remove') out(t('pkcs11.wouldRemove', { target: name, path: step.path, what: step.what }));
      else if (step.kind === 'delete') out(t('pkcs11.wouldDelete', { target: name, path: step.path }));
      else out(t('pkcs11.wouldWrite', { target: name, path: step.path, what: step.what.trimEnd() }));
      continue;
    }
    await step.apply();
    if (step.kind === 'run') out(t('pkcs11.ran', { target: name, command: step.what }));
    else out(t(step.kind === 'write' ? 'pkcs11.written' : 'pkcs11.removed', { target: name, path: step.path }));
  }
  if (action === 'install') {
    if (!options.user) out(t('pkcs11.chromiumPerUser'));
    else if (process.getuid?.() === 0) out(t('pkcs11.p11kitRoot'));
    out(t('pkcs11.java', { command: `keytool -list -storetype PKCS11 -providerclass sun.security.pkcs11.SunPKCS11 -providerarg ${javaFile(places, options.user === true)}` }));
    out(t('pkcs11.restart'));
  }
  return ExitCode.OK;
}

// ------------------------------------------------------------------ doctor

export interface Registration {
  target: Target;
  path: string;
  /** The library registered there (maybe not ours: another build, a moved package). */
  module: string;
}

/** Every place, system and this user's, where a `cpsd` module is registered (cpsd doctor). */
export function pkcs11Registrations(p: Places = defaultPlaces()): Registration[] {
  const found: Registration[] = [];
  for (const file of FIREFOX_POLICY_FILES.map((f) => sys(p, f))) {
    try {
      const module = policyModule(readJson(file));
      if (module) found.push({ target: 'firefox-policy', path: file, module });
    } catch {
      // absent or not JSON
    }
  }
  for (const [target, db] of [...firefoxProfiles(p).map((d) => ['firefox-profile', d] as const), ['chromium-nssdb', chromiumDb(p)] as const]) {
    const module = nssModules(db).get(MODULE_NAME);
    if (module) found.push({ target, path: db, module });
  }
  for (const user of [false, true]) {
    for (const [target, file, re] of [
      ['p11-kit', p11kitFile(p, user), /^module:\s*(.+)$/m],
      ['java', javaFile(p, user), /^library\s*=\s*(.+)$/m],
    ] as const) {
      try {
        const module = re.exec(readFileSync(file, 'utf8'))?.[1]?.trim();
        if (module) found.push({ target, path: file, module });
      } catch {
        // absent
      }
    }
  }
  return found;
}
