/**
 * docs/idp.md against the code: its complete configuration example (the ```json block after
 * `<!-- idp-config-example -->`, with the clients and cookie-keys files it names) is accepted by
 * idp/config.ts readIdpConfig and names every setting; the reference table names every setting; every
 * `cpsd idp` option the document names is one cli/cpsd.ts registers for the idp command, and every such
 * option is in the document's option tables; its links to its own sections and to the other docs' sections
 * lead somewhere.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../daemon/config.js';
import { readIdpConfig } from '../../idp/config.js';
import { generatedJwks } from '../../idp/keys.js';
import { AccountStore, createProvider } from '../../idp/provider.js';
import { MemoryKeyValueStore } from '../../idp/store.js';

const ROOT = new URL('../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, ROOT), 'utf8');
const DOC = read('docs/idp.md');

/** The body of the ```json block right after `marker` (only blank lines between them). */
function jsonAfter(marker: string): unknown {
  const at = DOC.indexOf(marker);
  if (at < 0) throw new Error(`docs/idp.md has no ${marker}`);
  const block = /^\s*```json\n([\s\S]*?)\n```/.exec(DOC.slice(at + marker.length));
  if (!block) throw new Error(`docs/idp.md: no \`\`\`json block right after ${marker}`);
  return JSON.parse(block[1] ?? '') as unknown;
}

/** The text of the document without its fenced blocks, and the lines of those blocks. */
function split(text: string): { prose: string; fenced: string[] } {
  const prose: string[] = [];
  const fenced: string[] = [];
  let inside = false;
  for (const line of text.split('\n')) {
    if (/^```/.test(line)) inside = !inside;
    else (inside ? fenced : prose).push(line);
  }
  return { prose: prose.join('\n'), fenced };
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
const anchors = (text: string): Set<string> => new Set(split(text).prose.split('\n').flatMap((l) => /^#{1,6} (.+)$/.exec(l)?.[1] ?? []).map(slug));

/** The long flags (`--port`) in the first argument of `.option(…)`, `.requiredOption(…)`, `.addOption(new Option(…))`. */
function flagsOf(call: ts.CallExpression, method: string): string[] {
  let arg: ts.Expression | undefined = call.arguments[method === 'version' ? 1 : 0];
  if (method === 'addOption' && arg && ts.isNewExpression(arg)) arg = arg.arguments?.[0];
  if (!arg || !ts.isStringLiteralLike(arg)) return [];
  return [...arg.text.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]);
}

/** The options registered on the chain that starts at `start` (the calls made on its result, in order). */
function chainOptions(start: ts.Expression): string[] {
  const flags: string[] = [];
  let node: ts.Node = start;
  while (ts.isPropertyAccessExpression(node.parent) && ts.isCallExpression(node.parent.parent) && node.parent.parent.expression === node.parent) {
    const method = node.parent.name.text;
    if (['option', 'requiredOption', 'addOption', 'version', 'helpOption'].includes(method)) flags.push(...flagsOf(node.parent.parent, method));
    node = node.parent.parent;
  }
  return flags;
}

/** From cli/cpsd.ts's syntax tree: the idp command's options, and the program's own (global) ones. */
function cliOptions(): { idp: string[]; global: string[] } {
  const source = ts.createSourceFile('cli/cpsd.ts', read('cli/cpsd.ts'), ts.ScriptTarget.Latest, true);
  let idp: string[] | undefined;
  let global: string[] | undefined;
  const visit = (node: ts.Node): void => {
    const isCall = (name: string, arg: string): boolean =>
      ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) && node.expression.name.text === name && node.arguments[0] !== undefined && ts.isStringLiteral(node.arguments[0]) && node.arguments[0].text === arg;
    if (isCall('command', 'idp')) idp = chainOptions(node as ts.CallExpression);
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Command' && node.arguments?.[0] && ts.isStringLiteral(node.arguments[0]) && node.arguments[0].text === 'cpsd') {
      global = chainOptions(node);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  if (!idp || idp.length === 0) throw new Error("cli/cpsd.ts: no .command('idp') with options found");
  if (!global) throw new Error("cli/cpsd.ts: no new Command('cpsd') found");
  // commander's own help option is on every command.
  return { idp, global: [...global, '--help'] };
}

/** Every `--flag` written after "cpsd idp" (or "cpsd.js idp", "cpsd --lang xx idp") in a code span or a line of a fenced block. */
function documentedIdpOptions(): string[] {
  const { prose, fenced } = split(DOC);
  const spans = [...prose.matchAll(/`([^`]+)`/g)].map((m) => (m[1] ?? '').replace(/\s+/g, ' '));
  const found: string[] = [];
  for (const text of [...spans, ...fenced]) {
    for (const m of text.matchAll(/\bcpsd(?:\.js)?(?: --lang \S+)? idp\b([^&|;]*)/g)) found.push(...[...(m[1] ?? '').matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((f) => f[0]));
  }
  return [...new Set(found)];
}

describe('docs/idp.md: the configuration example', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cpsd-idp-docs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes a file of the example where it names it (a relative path: the example is for /etc/cpsd-idp/). */
  const place = (key: string, name: unknown, content: string): void => {
    if (typeof name !== 'string') return;
    if (isAbsolute(name)) throw new Error(`the example's "${key}" should be relative to the configuration file, not ${name}`);
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  };

  const example = jsonAfter('<!-- idp-config-example -->') as Record<string, unknown>;
  const file = join(dir, 'idp.json');

  /** The settings readIdpConfig knows, as its own refusal of an unknown key lists them. */
  const known = (): string[] => {
    const probe = join(dir, 'probe.json');
    writeFileSync(probe, JSON.stringify({ 'not-a-setting': true }));
    try {
      readIdpConfig(probe);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).code).toBe('CONFIG_INVALID');
      const list = /\(one of: ([^)]+)\)/.exec((error as Error).message)?.[1];
      if (list) return list.split(', ');
    }
    throw new Error('readIdpConfig did not refuse an unknown key with the list of its settings');
  };

  beforeAll(() => {
    writeFileSync(file, JSON.stringify(example, null, 2));
    place('keys', example.keys, JSON.stringify(generatedJwks()));
    if (typeof example.clients === 'string') place('clients', example.clients, JSON.stringify(jsonAfter('<!-- idp-clients-example -->')));
    if (typeof example.cookieKeys === 'string') place('cookieKeys', example.cookieKeys, JSON.stringify(jsonAfter('<!-- idp-cookie-keys-example -->')));
    const trustDir = (example.trust as { dir?: unknown } | undefined)?.dir;
    if (typeof trustDir !== 'string' || isAbsolute(trustDir)) throw new Error('the example\'s "trust.dir" should be a relative path');
    const pki = new URL('fixtures/pki/', ROOT);
    for (const sub of ['anchors', 'intermediates', 'crls']) mkdirSync(join(dir, trustDir, sub), { recursive: true });
    copyFileSync(new URL('root.der', pki), join(dir, trustDir, 'anchors', 'root.der'));
    copyFileSync(new URL('intermediate.der', pki), join(dir, trustDir, 'intermediates', 'intermediate.der'));
    for (const crl of readdirSync(pki).filter((n) => n.endsWith('.crl'))) copyFileSync(new URL(crl, pki), join(dir, trustDir, 'crls', crl));
  });

  it('is accepted by readIdpConfig, with the JWKS, clients, cookie keys and trust folder it names', () => {
    const config = readIdpConfig(file);
    expect(config.issuer).toBe(example.issuer);
    expect(config.trust.trustAnchors).toHaveLength(1);
    expect(config.clients.length).toBeGreaterThan(0);
    expect(config.upstream?.redirectUri).toBe(new URL('/upstream/callback', String(example.issuer)).href);
  });

  it('holds client metadata that oidc-provider takes (each client found, redirect_uris kept)', async () => {
    const config = readIdpConfig(file);
    const provider = createProvider({ issuer: config.issuer, clients: config.clients, accounts: new AccountStore(new MemoryKeyValueStore()), jwks: config.jwks, cookieKeys: config.cookieKeys });
    for (const metadata of config.clients) {
      const client = await provider.Client.find(String(metadata.client_id));
      expect(client, String(metadata.client_id)).toBeDefined();
      expect(client?.redirectUris).toEqual(metadata.redirect_uris);
    }
  });

  it('names every setting of readIdpConfig, and the reference table explains each one', () => {
    const settings = known();
    expect(settings.length).toBeGreaterThan(5);
    expect(settings.filter((k) => !(k in example))).toEqual([]);
    // The English table and the French one, each on its own.
    const section = DOC.slice(DOC.indexOf('<!-- idp-config-keys -->'), DOC.indexOf('## 5.'));
    const tables: string[] = [];
    let previous = '';
    for (const line of section.split('\n')) {
      if (line.startsWith('|')) {
        if (previous.startsWith('|')) tables[tables.length - 1] += `\n${line}`;
        else tables.push(line);
      }
      previous = line;
    }
    expect(tables).toHaveLength(2);
    // The nested settings, from readIdpConfig's own reads (listen.host, trust.revocation, upstream.clientId…).
    const code = read('idp/config.ts');
    const nested = (variable: string, group: string): string[] => [...new Set([...code.matchAll(new RegExp(`\\b${variable}\\.(\\w+)`, 'g'))].map((m) => `${group}.${m[1]}`))];
    const groups = [nested('listen', 'listen'), nested('trustRaw', 'trust'), nested('u', 'upstream')];
    for (const group of groups) expect(group.length, 'a group of nested settings read by idp/config.ts').toBeGreaterThan(1);
    for (const table of tables) {
      const rows = new Set(table.split('\n').filter((l) => l.startsWith('| `')).flatMap((l) => [...(l.split('|')[1] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1])));
      // A setting is explained by its own row or by the rows of its members (listen.host, listen.port).
      const unexplained = settings.filter((k) => !rows.has(k) && ![...rows].some((r) => r?.startsWith(`${k}.`)));
      expect([...unexplained, ...groups.flat().filter((k) => !rows.has(k))]).toEqual([]);
    }
    // redis: both members of its object form in the example.
    const redisKeys = nested('r', 'redis').map((k) => k.slice('redis.'.length));
    expect(redisKeys.length).toBeGreaterThan(1);
    expect(redisKeys.filter((k) => !(k in (example.redis as Record<string, unknown>)))).toEqual([]);
  });

  it('is refused with CONFIG_INVALID naming the file and the key when a key is unknown', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ...example, lisen: {} }));
    expect(() => readIdpConfig(bad)).toThrow(ConfigError);
    expect(() => readIdpConfig(bad)).toThrow(/bad\.json: "lisen" is not a setting/);
  });
});

describe('docs/idp.md: the cpsd idp options', () => {
  const cli = cliOptions();

  it('names only options that cli/cpsd.ts registers for `cpsd idp`', () => {
    const named = documentedIdpOptions();
    expect(named.length).toBeGreaterThan(5);
    expect(named.filter((o) => !cli.idp.includes(o) && !cli.global.includes(o))).toEqual([]);
  });

  it('lists every option of `cpsd idp` in its option tables, English and French', () => {
    const rows = DOC.split('\n').filter((l) => l.startsWith('| `--')).map((l) => /^\| `(--[a-z][a-z-]*)/.exec(l)?.[1] ?? '');
    expect(rows.filter((o) => !cli.idp.includes(o))).toEqual([]);
    expect(cli.idp.filter((o) => rows.filter((r) => r === o).length < 2)).toEqual([]);
  });
});

describe('docs/idp.md: links', () => {
  it('points at sections that exist, in itself and in the other docs', () => {
    const missing: string[] = [];
    for (const m of split(DOC).prose.matchAll(/\]\(([a-z-]*\.md)?#([^)]+)\)/g)) {
      const [, file, anchor] = m;
      // performance.md's "cpsd-idp logins" section is written separately: the file must exist.
      if (file === 'performance.md') {
        if (!existsSync(new URL(`docs/${file}`, ROOT))) missing.push(`${file}`);
        continue;
      }
      if (!anchors(file ? read(`docs/${file}`) : DOC).has(anchor ?? '')) missing.push(`${file ?? ''}#${anchor ?? ''}`);
    }
    expect(missing).toEqual([]);
  });
});

describe('docs/idp.md: logout everywhere (section 15)', () => {
  /** The body of the fenced block right after `marker`. */
  const blockAfter = (marker: string): string => /^\s*```[a-z]*\n([\s\S]*?)\n```/.exec(DOC.slice(DOC.indexOf(marker) + marker.length))?.[1] ?? '';

  it('shows the logout token checks word for word as the tested relying party has them (test/helpers/idp-rp.ts)', () => {
    const shown = blockAfter('<!-- idp-rp-logout-token -->');
    expect(shown).toMatch(/^export async function validateLogoutToken/);
    expect(read('test/helpers/idp-rp.ts')).toContain(shown);
  });

  it('gives back-channel logout members that readIdpConfig and oidc-provider take, for the openid-client and Apache applications', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cpsd-idp-docs-logout-'));
    try {
      mkdirSync(join(dir, 'trust', 'anchors'), { recursive: true });
      copyFileSync(new URL('fixtures/pki/root.der', ROOT), join(dir, 'trust', 'anchors', 'root.der'));
      writeFileSync(join(dir, 'jwks.json'), JSON.stringify(generatedJwks()));
      const dpi = (jsonAfter('<!-- idp-clients-example -->') as Record<string, unknown>[]).find((c) => c.client_id === 'dpi');
      const clients = [{ ...dpi, ...(jsonAfter('<!-- idp-rp-client -->') as Record<string, unknown>) }, jsonAfter('<!-- idp-apache-client -->')];
      const file = join(dir, 'idp.json');
      writeFileSync(file, JSON.stringify({ issuer: 'https://idp.hopital.example', clients, keys: 'jwks.json', cookieKeys: ['0123456789abcdef0123456789abcdef'], trust: { dir: 'trust' } }));
      const config = readIdpConfig(file);
      const provider = createProvider({ issuer: config.issuer, clients: config.clients, accounts: new AccountStore(new MemoryKeyValueStore()), jwks: config.jwks, cookieKeys: config.cookieKeys });
      for (const metadata of config.clients) {
        const client = await provider.Client.find(String(metadata.client_id));
        expect(client?.backchannelLogoutUri, String(metadata.client_id)).toBe(metadata.backchannel_logout_uri);
        expect(client?.postLogoutRedirectUris).toEqual(metadata.post_logout_redirect_uris);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
