/**
 * `cpsd policy --origin URL…`: the browser policies that let IT's web applications reach the local daemon
 * through the browsers' Local Network Access checks (docs/install.md, "Browsers managed by IT"), for
 * Chromium, Chrome, Edge and Firefox, as Linux managed files, Windows .reg files and macOS profiles.
 *
 * This module is the one source of truth: packaging/policies/ holds what it prints for PLACEHOLDER_ORIGIN
 * (test/unit/policy.test.ts checks that they are identical). The files' contents are data, in English,
 * the same whatever the language of the CLI: only the lines around them go through the catalogue.
 *
 * Policies (sources in packaging/policies/README.md):
 * - Chromium, Chrome, Edge: `LocalNetworkAccessAllowedForUrls` (Chrome ≥ 139, Edge ≥ 140; every Local
 *   Network Access check) and `LoopbackNetworkAllowedForUrls` (Chrome and Edge ≥ 146; requests to the
 *   device itself only), lists of URL patterns: here the exact origins.
 * - Firefox: `LocalNetworkAccess.SkipDomains` (Firefox ≥ 145, ESR ≥ 153), a list of host names; with
 *   `--pkcs11-module PATH`, also `SecurityDevices` {"cpsd": PATH}: Firefox loads the PKCS#11 module
 *   (docs/pkcs11.md; `cpsd pkcs11 install` merges it into the machine's policies.json itself).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { ExitCode } from '../exit-codes.js';
import { t, type MessageKey } from '../../core/i18n.js';
import { out } from '../output.js';

export const POLICY_BROWSERS = ['chromium', 'chrome', 'edge', 'firefox'] as const;
export const POLICY_FORMATS = ['linux', 'windows', 'macos'] as const;
export type PolicyBrowser = (typeof POLICY_BROWSERS)[number];
export type PolicyFormat = (typeof POLICY_FORMATS)[number];

/** The origin of the files shipped in packaging/policies/ (`.example` is reserved: it never resolves). */
export const PLACEHOLDER_ORIGIN = 'https://dpi.hopital.example';

/** The Chromium-family policies, each a list of URL patterns (the origins). */
export const CHROMIUM_POLICIES = ['LocalNetworkAccessAllowedForUrls', 'LoopbackNetworkAllowedForUrls'] as const;

/** Why an --origin is refused: each reason has its message in the catalogue. */
export type OriginProblem = 'not-url' | 'not-origin' | 'not-https';

export class PolicyOriginError extends Error {
  readonly code = 'POLICY_ORIGIN_INVALID';
  constructor(
    readonly value: string,
    readonly problem: OriginProblem,
  ) {
    super(`${problem}: ${JSON.stringify(value)}`);
    this.name = 'PolicyOriginError';
  }
}

const ORIGIN_MESSAGES: Readonly<Record<OriginProblem, MessageKey>> = {
  'not-url': 'arg.origin.notUrl',
  'not-origin': 'arg.origin.notOrigin',
  'not-https': 'arg.origin.notHttps',
};

/**
 * An origin IT may pre-approve: https://host[:port], or http://localhost (127.0.0.1, [::1]) for
 * development, the same rule as the daemon's allowedOrigins. Returns it normalised (lower case, no
 * default port, IDN in punycode).
 */
export function policyOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new PolicyOriginError(value, 'not-url');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new PolicyOriginError(value, 'not-https');
  if (url.origin === 'null' || url.pathname !== '/' || url.search || url.hash || url.username || url.password || value.trim().endsWith('?') || value.trim().endsWith('#')) {
    throw new PolicyOriginError(value, 'not-origin');
  }
  const local = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
  if (url.protocol !== 'https:' && !local) throw new PolicyOriginError(value, 'not-https');
  return url.origin;
}

/** commander's parser for a repeated `--origin`: validated, in the person's language when refused. */
export function originOption(value: string, previous: string[] = []): string[] {
  try {
    const origin = policyOrigin(value);
    return previous.includes(origin) ? previous : [...previous, origin];
  } catch (error) {
    if (error instanceof PolicyOriginError) throw new InvalidArgumentError(t(ORIGIN_MESSAGES[error.problem], { value }));
    throw error;
  }
}

/** One policy file: where it sits in packaging/policies/ and where IT puts it. */
export interface PolicyFile {
  browser: PolicyBrowser;
  format: PolicyFormat;
  /** Relative path in packaging/policies/ (and under `--out`). */
  file: string;
  /** Where it goes on the workstation, or how it is deployed. */
  target: string;
  content: string;
}

const LINUX_TARGET: Readonly<Record<PolicyBrowser, string>> = {
  chromium: '/etc/chromium/policies/managed/cpsd.json',
  chrome: '/etc/opt/chrome/policies/managed/cpsd.json',
  edge: '/etc/opt/edge/policies/managed/cpsd.json',
  // Mozilla's system-wide location, which Debian's firefox-esr reads (not /etc/firefox-esr/policies/:
  // test/e2e/lna.test.ts shows both).
  firefox: '/etc/firefox/policies/policies.json',
};

/** Where each browser reads machine policies on Linux (Firefox also from its distribution folder). */
const LINUX_POLICY_PLACES: Readonly<Record<PolicyBrowser, readonly string[]>> = {
  chromium: ['/etc/chromium/policies/managed'],
  chrome: ['/etc/opt/chrome/policies/managed'],
  edge: ['/etc/opt/edge/policies/managed'],
  firefox: ['/etc/firefox/policies/policies.json', '/usr/lib/firefox-esr/distribution/policies.json', '/usr/lib/firefox/distribution/policies.json'],
};

export interface InstalledPolicy {
  browser: PolicyBrowser;
  file: string;
  /** What the file lets reach the local network: Chromium URL patterns, Firefox host names. */
  allowed: string[];
}

/**
 * The Local Network Access policies installed on this machine (Linux: the managed-policy files; on
 * Windows and macOS policies live in the registry and configuration profiles: undefined, not looked for).
 * Only files that allow something are listed (a browser's other policies are none of ours).
 */
export function installedPolicies(root = '/'): InstalledPolicy[] | undefined {
  if (process.platform !== 'linux') return undefined;
  const found: InstalledPolicy[] = [];
  for (const browser of POLICY_BROWSERS) {
    for (const place of LINUX_POLICY_PLACES[browser]) {
      const path = join(root, place);
      const files = place.endsWith('.json') ? (existsSync(path) ? [path] : []) : existsSync(path) ? readdirSync(path).filter((f) => f.endsWith('.json')).map((f) => join(path, f)) : [];
      for (const file of files) {
        let allowed: string[] = [];
        try {
          const policy = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
          allowed =
            browser === 'firefox'
              ? strings((((policy.policies as Record<string, unknown> | undefined)?.LocalNetworkAccess as Record<string, unknown> | undefined) ?? {}).SkipDomains)
              : [...new Set(CHROMIUM_POLICIES.flatMap((name) => strings(policy[name])))];
        } catch {
          // unreadable or not JSON: listed, allowing nothing
        }
        if (allowed.length > 0) found.push({ browser, file, allowed });
      }
    }
  }
  return found;
}

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);

const REGISTRY_KEY: Readonly<Record<PolicyBrowser, string>> = {
  chromium: 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Chromium',
  chrome: 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Google\\Chrome',
  edge: 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Edge',
  firefox: 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Mozilla\\Firefox',
};

/** The macOS preference domain of each browser (the PayloadType of its managed preferences). */
const MAC_DOMAIN: Readonly<Record<PolicyBrowser, string>> = {
  chromium: 'org.chromium.Chromium',
  chrome: 'com.google.Chrome',
  edge: 'com.microsoft.Edge',
  firefox: 'org.mozilla.firefox',
};

const BROWSER_NAME: Readonly<Record<PolicyBrowser, string>> = {
  chromium: 'Chromium',
  chrome: 'Google Chrome',
  edge: 'Microsoft Edge',
  firefox: 'Mozilla Firefox',
};

/** Firefox's SkipDomains are host names (no scheme, no port). */
export function firefoxDomains(origins: readonly string[]): string[] {
  return [...new Set(origins.map((o) => new URL(o).hostname))];
}

/** Chromium, Chrome, Edge on Linux: a file of the managed-policy folder. */
export function chromiumJson(origins: readonly string[]): string {
  return `${JSON.stringify(Object.fromEntries(CHROMIUM_POLICIES.map((name) => [name, [...origins]])), null, 2)}\n`;
}

/**
 * Where the shipped kit (packaging/policies/) says the module is: npm's global folder (`npm install -g
 * cpsd`; prefix /usr with Node.js from its Debian packages, as docs/install.md; /usr/local with Homebrew
 * on an Intel Mac), a machine-wide folder on Windows. Placeholders like the origin: IT puts its own path (`cpsd policy --pkcs11-module PATH`).
 */
export const PLACEHOLDER_MODULE: Readonly<Record<PolicyFormat, string>> = {
  linux: '/usr/lib/node_modules/cpsd/pkcs11/module/libcpsd-pkcs11.so',
  windows: 'C:\\Program Files\\cpsd\\cpsd-pkcs11.dll',
  macos: '/usr/local/lib/node_modules/cpsd/pkcs11/module/libcpsd-pkcs11.dylib',
};

/** The name Firefox shows the module under (Settings › Security Devices), as `cpsd pkcs11 install` registers it. */
const SECURITY_DEVICE = 'cpsd';

/** Firefox's policies.json (Linux; also `distribution/policies.json` next to the program elsewhere). */
export function firefoxJson(origins: readonly string[], pkcs11Module?: string): string {
  const policies: Record<string, unknown> = { LocalNetworkAccess: { SkipDomains: firefoxDomains(origins) } };
  if (pkcs11Module !== undefined) policies.SecurityDevices = { [SECURITY_DEVICE]: pkcs11Module };
  return `${JSON.stringify({ policies }, null, 2)}\n`;
}

/** A .reg string: backslashes and quotes escaped. */
const regString = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** A list policy as Windows keeps it: a key whose values are named 1, 2, 3… (REG_SZ). */
function regList(key: string, values: readonly string[]): string[] {
  return [`[${key}]`, ...values.map((v, i) => `"${i + 1}"=${regString(v)}`), ''];
}

/** Windows: a .reg file for `reg import` or a GPO's registry preferences; CRLF line ends, as regedit writes. */
export function windowsReg(browser: PolicyBrowser, origins: readonly string[], pkcs11Module?: string): string {
  const key = REGISTRY_KEY[browser];
  const lines =
    browser === 'firefox'
      ? [
          ...regList(`${key}\\LocalNetworkAccess\\SkipDomains`, firefoxDomains(origins)),
          // SecurityDevices: one value per module, its name → its path.
          ...(pkcs11Module === undefined ? [] : [`[${key}\\SecurityDevices]`, `${regString(SECURITY_DEVICE)}=${regString(pkcs11Module)}`, '']),
        ]
      : CHROMIUM_POLICIES.flatMap((name) => regList(`${key}\\${name}`, origins));
  return ['Windows Registry Editor Version 5.00', '', ...lines].join('\r\n');
}

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A stable UUID for a profile: the same browser and origins give the same profile (MDM updates in place). */
function stableUuid(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\n')).digest('hex').toUpperCase();
  const variant = ((parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16).toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** macOS: a configuration profile (Jamf, Intune, Apple Business Manager…) with the browser's managed preferences. */
export function macosProfile(browser: PolicyBrowser, origins: readonly string[], pkcs11Module?: string): string {
  const strings = (indent: string, values: readonly string[]): string[] => [`${indent}<array>`, ...values.map((v) => `${indent}\t<string>${xml(v)}</string>`), `${indent}</array>`];
  const settings =
    browser === 'firefox'
      ? [
          '\t\t\t<key>EnterprisePoliciesEnabled</key>',
          '\t\t\t<true/>',
          '\t\t\t<key>LocalNetworkAccess</key>',
          '\t\t\t<dict>',
          '\t\t\t\t<key>SkipDomains</key>',
          ...strings('\t\t\t\t', firefoxDomains(origins)),
          '\t\t\t</dict>',
          ...(pkcs11Module === undefined ? [] : ['\t\t\t<key>SecurityDevices</key>', '\t\t\t<dict>', `\t\t\t\t<key>${SECURITY_DEVICE}</key>`, `\t\t\t\t<string>${xml(pkcs11Module)}</string>`, '\t\t\t</dict>']),
        ]
      : CHROMIUM_POLICIES.flatMap((name) => [`\t\t\t<key>${name}</key>`, ...strings('\t\t\t', origins)]);
  const id = `fr.cpsd.policy.${browser}`;
  const name = BROWSER_NAME[browser];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    '<dict>',
    '\t<key>PayloadContent</key>',
    '\t<array>',
    '\t\t<dict>',
    '\t\t\t<key>PayloadDisplayName</key>',
    `\t\t\t<string>${xml(name)}: local network access for cpsd</string>`,
    '\t\t\t<key>PayloadIdentifier</key>',
    `\t\t\t<string>${id}.settings</string>`,
    '\t\t\t<key>PayloadType</key>',
    `\t\t\t<string>${MAC_DOMAIN[browser]}</string>`,
    '\t\t\t<key>PayloadUUID</key>',
    `\t\t\t<string>${stableUuid(id, 'settings', ...origins)}</string>`,
    '\t\t\t<key>PayloadVersion</key>',
    '\t\t\t<integer>1</integer>',
    ...settings,
    '\t\t</dict>',
    '\t</array>',
    '\t<key>PayloadDescription</key>',
    `\t<string>Lets these web applications reach the cpsd smart-card service on this Mac (ws://127.0.0.1) through ${xml(name)}'s local network access checks: ${xml(origins.join(', '))}</string>`,
    '\t<key>PayloadDisplayName</key>',
    `\t<string>cpsd: ${xml(name)} local network access</string>`,
    '\t<key>PayloadIdentifier</key>',
    `\t<string>${id}</string>`,
    '\t<key>PayloadOrganization</key>',
    '\t<string>cpsd</string>',
    '\t<key>PayloadScope</key>',
    '\t<string>System</string>',
    '\t<key>PayloadType</key>',
    '\t<string>Configuration</string>',
    '\t<key>PayloadUUID</key>',
    `\t<string>${stableUuid(id, ...origins)}</string>`,
    '\t<key>PayloadVersion</key>',
    '\t<integer>1</integer>',
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}

/** Where a file goes, in technical words only (the line that names it is in the person's language). */
const WINDOWS_TARGET = (browser: PolicyBrowser): string => REGISTRY_KEY[browser].replace('HKEY_LOCAL_MACHINE', 'HKLM');
const MAC_TARGET = (browser: PolicyBrowser): string => `MDM: ${MAC_DOMAIN[browser]}`;

/** Every file for these origins, browsers and formats, in the layout of packaging/policies/. */
export function policyFiles(
  origins: readonly string[],
  browsers: readonly PolicyBrowser[] = POLICY_BROWSERS,
  formats: readonly PolicyFormat[] = POLICY_FORMATS,
  /** Firefox's SecurityDevices: the PKCS#11 module's path, one for every format or one per format. */
  pkcs11Module?: string | Readonly<Record<PolicyFormat, string>>,
): PolicyFile[] {
  const module = (format: PolicyFormat): string | undefined => (typeof pkcs11Module === 'string' ? pkcs11Module : pkcs11Module?.[format]);
  if (origins.length === 0) throw new PolicyOriginError('', 'not-url');
  const files: PolicyFile[] = [];
  for (const format of formats) {
    for (const browser of browsers) {
      if (format === 'linux') {
        const content = browser === 'firefox' ? firefoxJson(origins, module(format)) : chromiumJson(origins);
        const target = LINUX_TARGET[browser];
        files.push({ browser, format, file: `linux/${browser}/${target.split('/').pop() ?? ''}`, target, content });
      } else if (format === 'windows') {
        files.push({ browser, format, file: `windows/${browser}.reg`, target: WINDOWS_TARGET(browser), content: windowsReg(browser, origins, module(format)) });
      } else {
        files.push({ browser, format, file: `macos/${browser}.mobileconfig`, target: MAC_TARGET(browser), content: macosProfile(browser, origins, module(format)) });
      }
    }
  }
  return files;
}

export interface PolicyOptions {
  /** Validated by originOption. */
  origin: string[];
  browser?: PolicyBrowser | 'all';
  format?: PolicyFormat;
  /** Write the files there, in packaging/policies/'s layout, instead of printing them. */
  out?: string;
  /** Firefox also loads this PKCS#11 module (SecurityDevices). */
  pkcs11Module?: string;
}

/**
 * Prints the policies. One file: its content alone (ready for `> /etc/…`); several: each after a line
 * naming it and where it goes. With --out: writes them and says where.
 */
export async function policy(options: PolicyOptions): Promise<number> {
  const browsers = !options.browser || options.browser === 'all' ? POLICY_BROWSERS : [options.browser];
  const formats = options.format ? [options.format] : POLICY_FORMATS;
  const files = policyFiles(options.origin, browsers, formats, options.pkcs11Module);
  if (options.out !== undefined) {
    for (const f of files) {
      const path = join(options.out, f.file);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, f.content);
      out(t('policy.written', { path, target: f.target }));
    }
  } else if (files.length === 1) {
    process.stdout.write(files[0]?.content ?? '');
  } else {
    for (const f of files) {
      out(t('policy.file', { file: f.file, target: f.target }));
      process.stdout.write(f.content.endsWith('\n') ? f.content : `${f.content}\r\n`);
      out('');
    }
  }
  return ExitCode.OK;
}
