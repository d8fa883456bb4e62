/** What the documentation states about the code, checked against the code. */
import { CKR_OF } from '../../pkcs11/ckr.js';
import { CKR } from '../../pkcs11/constants.js';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
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
