/** cpsd-idp's Node settings: the unit that docs/idp.md gives and the bench run the IdP with the same flags. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IDP_NODE_FLAGS } from '../../idp/runtime.js';

describe('IDP_NODE_FLAGS', () => {
  it("are in docs/idp.md's systemd unit, between node and the script", () => {
    const doc = readFileSync(new URL('../../docs/idp.md', import.meta.url), 'utf8');
    const exec = /^ExecStart=(\S+) (.*) (\S+cpsd\.js) idp /m.exec(doc);
    expect(exec?.[2]?.split(' ')).toEqual([...IDP_NODE_FLAGS]);
  });

  it('are given to the process that bench:idp measures', () => {
    const bench = readFileSync(new URL('../../bench/idp.ts', import.meta.url), 'utf8');
    expect(bench).toMatch(/spawn\(process\.execPath, \[\.\.\.IDP_NODE_FLAGS,/);
  });
});
