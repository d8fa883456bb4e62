/** What the documentation states about the code, checked against the code. */
import { CKR_OF } from '../../pkcs11/ckr.js';
import { CKR } from '../../pkcs11/constants.js';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { pkcs11 } from '../../cli/commands/pkcs11.js';
import { setLang } from '../../core/i18n.js';
import { docBlocks } from '../helpers/doc-blocks.js';
import { ATR_ROWS } from '../../cards/atr-table.js';
import { InProcessBackend } from '../../cards/backends.js';
import { CardSessions } from '../../cards/session.js';
import { CardTwins } from '../../cards/twins.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { exitCodeOf } from '../../cli/exit-codes.js';
import { CPSD_ERROR_CODES } from '../../core/errors.js';
import { protocolCode } from '../../daemon/protocol.js';

const doc = (name: string): string => readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8');

/** The rows of the first Markdown table after `marker`, as cells. */
function tableAfter(text: string, marker: string): string[][] {
  const lines = text.slice(text.indexOf(marker)).split('\n').slice(1);
  const rows = [];
  for (const line of lines) {
    if (!line.startsWith('|')) {
      if (rows.length > 0) break;
      continue;
    }
    rows.push(line.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return rows.slice(2); // header and separator
}

describe('docs/driver.md', () => {
  it('lists every ATR row of cards/atr-table.ts with its ATR and mask, and no other', () => {
    const rows = tableAfter(doc('driver.md'), '<!-- atr-rows');
    const documented = rows.map(([name, atr, mask]) => ({
      name,
      atr: atr?.replace(/`/g, ''),
      mask: mask === 'exact' ? 'exact' : mask?.replace(/`/g, ''),
    }));
    const actual = ATR_ROWS.map((r) => ({ name: r.name, atr: r.atr, mask: /^F+$/.test(r.mask) ? 'exact' : r.mask }));
    expect(documented).toEqual(actual);
  });
});

describe('docs/errors.md', () => {
  const text = doc('errors.md');
  const final = tableAfter(text, '<!-- error-codes');

  it('gives every code its protocol code, exit code and CKR_ value, as the code maps them, in the order of CPSD_ERROR_CODES', () => {
    const documented = final.map(([code, protocol, exit, ckr]) => [code?.replace(/`/g, ''), protocol?.replace(/`/g, ''), Number(exit), ckr?.replace(/`/g, '')]);
    const ckrName = (v: number): string => `CKR_${Object.entries(CKR).find(([, n]) => n === v)?.[0] ?? '?'}`;
    expect(documented).toEqual(CPSD_ERROR_CODES.map((c) => [c, protocolCode(c), exitCodeOf(c), ckrName(CKR_OF[c])]));
  });

  it('explains every code in a table of its layer (class and when)', () => {
    const layers = text.slice(0, text.indexOf('<!-- error-codes'));
    const explained = new Set([...layers.matchAll(/^\| ([^|]+)\|/gm)].flatMap((m) => [...(m[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((c) => c[1])));
    expect(CPSD_ERROR_CODES.filter((c) => !explained.has(c))).toEqual([]);
    expect([...explained].filter((c) => !(CPSD_ERROR_CODES as readonly string[]).includes(c ?? ''))).toEqual([]);
  });
});

describe('client/cpsd.d.ts', () => {
  it('ReaderInfo names exactly the fields readers.list sends', async () => {
    const dts = readFileSync(new URL('../../client/cpsd.d.ts', import.meta.url), 'utf8');
    const body = /export interface ReaderInfo \{([\s\S]*?)\n\}/.exec(dts)?.[1] ?? '';
    const declared = [...body.matchAll(/^\s+(\w+)\??:/gm)].map((m) => m[1]).sort();
    const sessions = new CardSessions(new InProcessBackend(fixtureCard('doctor')));
    const twins = new CardTwins(sessions);
    const [sent] = await twins.placements();
    twins.close();
    await sessions.close();
    expect(declared).toEqual(Object.keys(sent ?? {}).sort());
  });
});

describe('docs/pkcs11.md: the `cpsd pkcs11 install --dry-run` examples', () => {
  const blocks = docBlocks('docs/pkcs11.md').filter((b) => b.run === 'dry-run');

  it('has the examples, English and French, for this user and for every user', () => {
    expect(blocks.map((b) => b.code.split('\n')[0])).toEqual([
      '$ cpsd pkcs11 install --user --dry-run',
      '$ sudo cpsd pkcs11 install --dry-run',
      '$ cpsd --lang fr pkcs11 install --user --dry-run',
    ]);
  });

  it.each(blocks.map((b) => [b.where, b] as const))('%s prints what the command prints (a HOME /home/jeanne with one Firefox profile, the system below an empty root)', async (_where, block) => {
    const [command = '', ...expected] = block.code.split('\n');
    const args = command.replace(/^\$ (sudo )?cpsd /, '').split(' ');
    // Everything below a temporary folder T, printed without T: /home/jeanne, /etc, the module's place.
    const t = mkdtempSync(join(tmpdir(), 'cpsd-doc-p11-'));
    const home = join(t, 'home/jeanne');
    const profile = join(home, '.mozilla/firefox/abcd1234.default-esr');
    mkdirSync(profile, { recursive: true });
    writeFileSync(join(profile, 'cert9.db'), '');
    writeFileSync(join(home, '.mozilla/firefox/profiles.ini'), '[Profile0]\nName=default-esr\nIsRelative=1\nPath=abcd1234.default-esr\n');
    const module = join(t, '/usr/lib/node_modules/cpsd/pkcs11/module/libcpsd-pkcs11.so');
    mkdirSync(dirname(module), { recursive: true });
    writeFileSync(module, '');
    const env = { HOME: process.env.HOME, XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME };
    process.env.HOME = home;
    delete process.env.XDG_CONFIG_HOME;
    setLang(args[0] === '--lang' ? (args[1] as 'fr') : 'en');
    let text = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((text += String(chunk)), true));
    // As the prompt says: `sudo` runs as root, else the user (uid 1000) runs it.
    const uid = vi.spyOn(process, 'getuid').mockReturnValue(command.includes('sudo ') ? 0 : 1000);
    try {
      const code = await pkcs11('install', { user: args.includes('--user'), dryRun: args.includes('--dry-run'), module, root: t });
      expect(code).toBe(0);
    } finally {
      spy.mockRestore();
      uid.mockRestore();
      setLang(undefined);
      Object.assign(process.env, env);
      if (env.XDG_CONFIG_HOME === undefined) delete process.env.XDG_CONFIG_HOME;
      rmSync(t, { recursive: true, force: true });
    }
    expect(text.split(t).join('').trimEnd().split('\n')).toEqual(expected);
  });
});
