/** What the documentation states about the code, checked against the code. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ATR_ROWS } from '../../cards/atr-table.js';

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
