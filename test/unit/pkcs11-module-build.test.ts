/**
 * The C module builds the ways it ships, each judged by the toolchain: gcc with -Wall -Wextra -Werror,
 * exporting the Cryptoki functions and nothing else; the AddressSanitizer + UBSan build the end-to-end
 * tests load with CPSD_PKCS11_ASAN=1; and Windows with mingw-w64, a DLL exporting C_GetFunctionList.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const SOURCE = fileURLToPath(new URL('../../pkcs11/module', import.meta.url));
// A copy, so that parallel builds never race on the tree's own outputs.
const dir = mkdtempSync(join(tmpdir(), 'cpsd-module-build-'));
cpSync(SOURCE, dir, { recursive: true, filter: (p) => !/\.(so|dll|dylib|o)$/.test(p) });

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function make(target: string): { status: number | null; out: string } {
  const r = spawnSync('make', ['-C', dir, target], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

// Compilers on a busy machine: a build is not a timing test.
describe('libcpsd-pkcs11', { timeout: 60_000 }, () => {
  it('builds with -Wall -Wextra -Werror and exports only C_* functions', () => {
    const r = make('check-exports');
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/-Wall -Wextra -Werror/);
    const symbols = execFileSync('nm', ['-D', '--defined-only', join(dir, 'libcpsd-pkcs11.so')], { encoding: 'utf8' });
    const exported = symbols.split('\n').map((l) => l.trim().split(/\s+/)[2]).filter(Boolean);
    expect(exported).toContain('C_GetFunctionList');
    expect(exported.filter((s) => !s?.startsWith('C_'))).toEqual([]);
    // Cryptoki 2.40's 68 functions.
    expect(exported).toHaveLength(68);
  });

  it('links against nothing but libc (and pthread)', () => {
    make('all');
    const needed = execFileSync('objdump', ['-p', join(dir, 'libcpsd-pkcs11.so')], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes('NEEDED'))
      .map((l) => l.trim().split(/\s+/)[1]);
    expect(needed.filter((n) => !/^(libc|libpthread)\.so/.test(n ?? ''))).toEqual([]);
  });

  it('builds with AddressSanitizer and UBSan', () => {
    const r = make('asan');
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('-fsanitize=address,undefined');
  });

  it('compiles for Windows with x86_64-w64-mingw32-gcc into a DLL that exports C_GetFunctionList', () => {
    const r = make('windows');
    expect(r.status, r.out).toBe(0);
    const dump = execFileSync('x86_64-w64-mingw32-objdump', ['-p', join(dir, 'cpsd-pkcs11.dll')], { encoding: 'utf8' });
    expect(dump).toMatch(/\bC_GetFunctionList\b/);
    expect(dump).toMatch(/DLL Name: WS2_32\.dll/i);
  });
});
