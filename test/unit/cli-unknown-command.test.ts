/**
 * An unknown command is a usage error, help asked or not (issue #20.6): the built CLI as a person runs it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../cli/exit-codes.js';

const CLI = fileURLToPath(new URL('../../dist/cli/cpsd.js', import.meta.url));

function cpsd(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, LANG: 'C', LC_ALL: '', LC_MESSAGES: '' } });
}

describe('an unknown command', () => {
  it('with --help says so and exits with the usage code', () => {
    const run = cpsd('frobnicate', '--help');
    expect(run.status).toBe(ExitCode.USAGE);
    expect(run.stderr).toContain('unknown command frobnicate');
    expect(run.stdout).toBe('');
  });

  it('with -h says so and exits with the usage code', () => {
    expect(cpsd('frobnicate', '-h').status).toBe(ExitCode.USAGE);
  });

  it('with --help says so in French', () => {
    const run = cpsd('--lang', 'fr', 'frobnicate', '--help');
    expect(run.status).toBe(ExitCode.USAGE);
    expect(run.stderr).toContain('commande inconnue frobnicate');
  });

  it('without --help says so and exits with the usage code', () => {
    const run = cpsd('frobnicate');
    expect(run.status).toBe(ExitCode.USAGE);
    expect(run.stderr).toContain('unknown command frobnicate');
  });

  it('under a command with subcommands, with --help, says so', () => {
    const run = cpsd('pin', 'frobnicate', '--help');
    expect(run.status).toBe(ExitCode.USAGE);
    expect(run.stderr).toContain('unknown command frobnicate');
  });
});

describe('a known command', () => {
  it('with --help prints its help and exits 0', () => {
    const run = cpsd('pin', 'verify', '--help');
    expect(run.status).toBe(ExitCode.OK);
    expect(run.stdout).toContain('--allow-last-try');
  });

  it('help without a command prints the global help and exits 0', () => {
    const run = cpsd('--help');
    expect(run.status).toBe(ExitCode.OK);
    expect(run.stdout).toContain('doctor');
  });
});
