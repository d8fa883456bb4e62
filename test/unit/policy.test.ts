/** `cpsd policy` (cli/commands/policy.ts): the shipped files of packaging/policies/, the formats, the origins it accepts. */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PLACEHOLDER_MODULE, PLACEHOLDER_ORIGIN, PolicyOriginError, installedPolicies, macosProfile, originOption, policy, policyFiles, policyOrigin, windowsReg } from '../../cli/commands/policy.js';
import { setLang } from '../../core/i18n.js';

const SHIPPED = fileURLToPath(new URL('../../packaging/policies/', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? files(join(dir, name)) : [join(dir, name)]));
}

/** What `policy()` writes on standard output. */
async function printed(options: Parameters<typeof policy>[0]): Promise<string> {
  let text = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((text += String(chunk)), true));
  try {
    expect(await policy(options)).toBe(0);
  } finally {
    spy.mockRestore();
  }
  return text;
}

afterEach(() => setLang(undefined));

describe('packaging/policies/', () => {
  it('holds exactly the files cpsd policy makes for the placeholder origin, byte for byte', () => {
    const shipped = Object.fromEntries(
      files(SHIPPED)
        .filter((f) => !f.endsWith('README.md'))
        .map((f) => [relative(SHIPPED, f), readFileSync(f, 'utf8')]),
    );
    const made = Object.fromEntries(policyFiles([PLACEHOLDER_ORIGIN], undefined, undefined, PLACEHOLDER_MODULE).map((f) => [f.file, f.content]));
    expect(Object.keys(shipped).sort()).toEqual(Object.keys(made).sort());
    for (const [file, content] of Object.entries(made)) expect(shipped[file], file).toBe(content);
  });

  it('has a README that names every shipped file', () => {
    const readme = readFileSync(join(SHIPPED, 'README.md'), 'utf8');
    expect(policyFiles([PLACEHOLDER_ORIGIN]).filter((f) => !readme.includes(f.file)).map((f) => f.file)).toEqual([]);
  });

  it('prints one file alone, as it is shipped, ready to be redirected into place', async () => {
    const text = await printed({ origin: [PLACEHOLDER_ORIGIN], browser: 'chrome', format: 'linux' });
    expect(text).toBe(readFileSync(join(SHIPPED, 'linux/chrome/cpsd.json'), 'utf8'));
  });

  it('names each file and where it goes when it prints several, in the person’s language', async () => {
    setLang('fr');
    const text = await printed({ origin: [PLACEHOLDER_ORIGIN], browser: 'edge' });
    expect(text).toContain('# ==> linux/edge/cpsd.json  (à déposer : /etc/opt/edge/policies/managed/cpsd.json)');
    expect(text).toContain('# ==> windows/edge.reg  (à déposer : HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge)');
    expect(text).toContain('# ==> macos/edge.mobileconfig  (à déposer : MDM: com.microsoft.Edge)');
    expect(text).not.toContain('firefox');
  });
});

describe('the policies for several origins', () => {
  const origins = ['https://dpi.chu.example', 'https://rdv.chu.example:8443'];

  it('lists every origin in both Chromium policies of the managed JSON', () => {
    const json = JSON.parse(policyFiles(origins, ['chrome'], ['linux'])[0]?.content ?? '') as unknown;
    expect(json).toEqual({ LocalNetworkAccessAllowedForUrls: origins, LoopbackNetworkAllowedForUrls: origins });
  });

  it('gives Firefox the host names only (SkipDomains), once each', () => {
    const json = JSON.parse(policyFiles([...origins, 'https://dpi.chu.example:9443'], ['firefox'], ['linux'])[0]?.content ?? '') as unknown;
    expect(json).toEqual({ policies: { LocalNetworkAccess: { SkipDomains: ['dpi.chu.example', 'rdv.chu.example'] } } });
  });

  it('gives Firefox the PKCS#11 module (SecurityDevices) with --pkcs11-module, in each format, and nothing to the others', async () => {
    const module = '/opt/cpsd/libcpsd-pkcs11.so';
    const json = JSON.parse(await printed({ origin: origins, browser: 'firefox', format: 'linux', pkcs11Module: module })) as unknown;
    expect(json).toEqual({ policies: { LocalNetworkAccess: { SkipDomains: ['dpi.chu.example', 'rdv.chu.example'] }, SecurityDevices: { cpsd: module } } });
    expect(windowsReg('firefox', origins, 'C:\\cpsd\\cpsd-pkcs11.dll')).toContain('[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Mozilla\\Firefox\\SecurityDevices]\r\n"cpsd"="C:\\\\cpsd\\\\cpsd-pkcs11.dll"\r\n');
    expect(macosProfile('firefox', origins, module)).toMatch(/<key>SecurityDevices<\/key>\s*<dict>\s*<key>cpsd<\/key>\s*<string>\/opt\/cpsd\/libcpsd-pkcs11\.so<\/string>/);
    expect(policyFiles(origins, ['chrome'], undefined, module).map((f) => f.content).join('')).not.toMatch(/SecurityDevices|libcpsd/);
    expect(await printed({ origin: origins, browser: 'firefox', format: 'linux' })).not.toContain('SecurityDevices');
  });

  it('numbers the values of each Windows list policy 1, 2… under HKLM\\SOFTWARE\\Policies, with CRLF line ends', () => {
    const reg = windowsReg('edge', origins);
    expect(reg.split('\r\n')).toEqual([
      'Windows Registry Editor Version 5.00',
      '',
      '[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Edge\\LocalNetworkAccessAllowedForUrls]',
      '"1"="https://dpi.chu.example"',
      '"2"="https://rdv.chu.example:8443"',
      '',
      '[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Edge\\LoopbackNetworkAllowedForUrls]',
      '"1"="https://dpi.chu.example"',
      '"2"="https://rdv.chu.example:8443"',
      '',
    ]);
    expect(windowsReg('firefox', origins)).toContain('[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Mozilla\\Firefox\\LocalNetworkAccess\\SkipDomains]\r\n"1"="dpi.chu.example"\r\n"2"="rdv.chu.example"\r\n');
  });

  it('makes macOS profiles with the browser’s preference domain, and Firefox’s policies switched on', () => {
    expect(macosProfile('chrome', origins)).toMatch(/<key>PayloadType<\/key>\s*<string>com\.google\.Chrome<\/string>/);
    expect(macosProfile('edge', origins)).toMatch(/<key>PayloadType<\/key>\s*<string>com\.microsoft\.Edge<\/string>/);
    expect(macosProfile('firefox', origins)).toMatch(/<key>EnterprisePoliciesEnabled<\/key>\s*<true\/>\s*<key>LocalNetworkAccess<\/key>\s*<dict>\s*<key>SkipDomains<\/key>/);
  });

  it('keeps a profile’s UUIDs for the same origins and changes them for others (MDM replaces it in place)', () => {
    const uuids = (o: string[]): string[] => [...macosProfile('chrome', o).matchAll(/[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}/g)].map((m) => m[0]);
    expect(uuids(origins)).toHaveLength(2);
    expect(uuids(origins)).toEqual(uuids([...origins]));
    expect(uuids(origins)).not.toEqual(uuids([origins[0] ?? '']));
  });
});

describe('the origins cpsd policy accepts', () => {
  it('takes https origins and normalises them (case, default port, IDN)', () => {
    expect(['HTTPS://DPI.Hopital.example:443/', 'https://hôpital.example:8443'].map(policyOrigin)).toEqual(['https://dpi.hopital.example', 'https://xn--hpital-ixa.example:8443']);
  });

  it('takes http://localhost for development', () => {
    expect(['http://localhost:8080', 'http://127.0.0.1:3000'].map(policyOrigin)).toEqual(['http://localhost:8080', 'http://127.0.0.1:3000']);
  });

  it('refuses plain http on another host', () => {
    expect(() => policyOrigin('http://dpi.hopital.example')).toThrow(expect.objectContaining({ code: 'POLICY_ORIGIN_INVALID', problem: 'not-https' }));
  });

  it('refuses a URL with a path, a query or a user', () => {
    for (const url of ['https://dpi.hopital.example/login', 'https://dpi.hopital.example?x=1', 'https://me@dpi.hopital.example']) {
      expect(() => policyOrigin(url), url).toThrow(expect.objectContaining({ problem: 'not-origin' }));
    }
  });

  it('refuses what is not a URL, and other schemes', () => {
    expect(() => policyOrigin('dpi.hopital.example')).toThrow(expect.objectContaining({ problem: 'not-url' }));
    expect(() => policyOrigin('ftp://dpi.hopital.example')).toThrow(expect.objectContaining({ problem: 'not-https' }));
    expect(() => policyOrigin('ftp://x')).toThrow(PolicyOriginError);
  });

  it('tells the person why on the command line, in French or English', () => {
    setLang('fr');
    expect(() => originOption('http://dpi.hopital.example')).toThrow(new InvalidArgumentError('doit être une origine https (http seulement pour localhost, en développement) : http://dpi.hopital.example'));
    setLang('en');
    expect(() => originOption('https://dpi.hopital.example/x')).toThrow(new InvalidArgumentError('an origin is scheme://host[:port] only, without path, query or user: https://dpi.hopital.example/x'));
  });

  it('collects a repeated --origin once each', () => {
    expect(originOption('https://b.example', originOption('https://a.example', originOption('https://A.example')))).toEqual(['https://a.example', 'https://b.example']);
  });
});

describe('installedPolicies (what cpsd doctor reports)', () => {
  /** A machine root with the files `cpsd policy` prints for these origins, put where the browsers read them. */
  function machine(origins: string[], browsers: Parameters<typeof policyFiles>[1]): string {
    const root = mkdtempSync(join(tmpdir(), 'cpsd-policies-'));
    for (const f of policyFiles(origins, browsers, ['linux'])) {
      const path = join(root, f.target);
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, f.content);
    }
    return root;
  }

  it('finds none on a machine without policies', () => {
    expect(installedPolicies(mkdtempSync(join(tmpdir(), 'cpsd-empty-')))).toEqual([]);
  });

  it('finds the Chromium file and the origins it allows', () => {
    const root = machine(['https://dpi.chu.example'], ['chromium']);
    expect(installedPolicies(root)).toEqual([{ browser: 'chromium', file: join(root, '/etc/chromium/policies/managed/cpsd.json'), allowed: ['https://dpi.chu.example'] }]);
  });

  it('finds the Firefox policies.json and its skipped domains', () => {
    const root = machine(['https://dpi.chu.example'], ['firefox']);
    expect(installedPolicies(root)).toEqual([{ browser: 'firefox', file: join(root, '/etc/firefox/policies/policies.json'), allowed: ['dpi.chu.example'] }]);
  });

  it('passes over a browser policy file that allows nothing of ours', () => {
    const root = mkdtempSync(join(tmpdir(), 'cpsd-other-'));
    mkdirSync(join(root, 'etc/chromium/policies/managed'), { recursive: true });
    writeFileSync(join(root, 'etc/chromium/policies/managed/homepage.json'), '{"HomepageLocation":"https://intranet.example"}');
    writeFileSync(join(root, 'etc/chromium/policies/managed/broken.json'), '{');
    expect(installedPolicies(root)).toEqual([]);
  });
});
