/** The protocol's error vocabulary is the same in the code, the protocol doc and the browser SDK's types. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../daemon/protocol.js';

const read = (path: string): string => readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8');

describe('protocol error codes', () => {
  it('are each documented in the error table of docs/protocol.md', () => {
    const doc = read('docs/protocol.md');
    const table = doc.slice(doc.indexOf('| data.code |'), doc.indexOf('## Configuration'));
    // ORIGIN_NOT_ALLOWED is never a message (a refused origin is an HTTP 403), and the doc says so.
    for (const code of ERROR_CODES) expect(code === 'ORIGIN_NOT_ALLOWED' ? doc : table, code).toContain(`\`${code}\``);
  });

  it('documents no code the daemon does not have', () => {
    const doc = read('docs/protocol.md');
    const table = doc.slice(doc.indexOf('| data.code |'), doc.indexOf('## Configuration'));
    const listed = [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(listed.filter((c) => !(ERROR_CODES as readonly string[]).includes(c ?? ''))).toEqual([]);
  });

  it('are each in the browser SDK’s CpsdErrorCode type', () => {
    const dts = read('client/cpsd.d.ts');
    const union = dts.slice(dts.indexOf('export type CpsdErrorCode'), dts.indexOf(';', dts.indexOf('export type CpsdErrorCode')));
    for (const code of ERROR_CODES) expect(union, code).toContain(`'${code}'`);
  });
});
