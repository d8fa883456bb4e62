/**
 * The service units start the daemon so that memory a flood took is given back (issue #20.5,
 * daemon/runtime.ts; the figures are bench:soak's). Here: the units carry the settings, and V8 itself
 * says the young generation stays bounded with them and grows without them.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { launchAgent, systemdUnit } from '../../cli/commands/service.js';
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from '../../daemon/runtime.js';

/** Allocates young objects that survive a while, as a flood's connections do; prints the young generation's size. */
const CHURN = `
const v8 = require('node:v8');
const keep = [];
for (let i = 0; i < 2e6; i++) { keep.push({ i }); if (keep.length > 20000) keep.splice(0, 10000); }
console.log(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);
`;

function youngGeneration(flags: readonly string[]): number {
  const run = spawnSync(process.execPath, [...flags, '-e', CHURN], { encoding: 'utf8', timeout: 20_000 });
  expect(run.status).toBe(0);
  return Number(run.stdout.trim());
}

describe('the daemon as the service units start it', () => {
  it('systemd: the Node flags and the allocator setting', () => {
    const unit = systemdUnit();
    expect(unit).toMatch(/^ExecStart=\S+ --max-semi-space-size=2 \S+ serve$/m);
    expect(unit).toContain('\nEnvironment=MALLOC_MMAP_THRESHOLD_=32768\n');
  });

  it('launchd: the Node flags', () => {
    expect(launchAgent()).toMatch(/<string>[^<]*node[^<]*<\/string><string>--max-semi-space-size=2<\/string><string>[^<]*cpsd\.js<\/string><string>serve<\/string>/);
  });

  it('keeps V8’s young generation within 4 MiB under churn', () => {
    expect(youngGeneration(DAEMON_NODE_FLAGS)).toBeLessThanOrEqual(4 * 1024 * 1024);
  });

  it('(control) without the flags V8’s young generation grows beyond it', () => {
    expect(youngGeneration([])).toBeGreaterThan(4 * 1024 * 1024);
  });

  it('names only settings Node and glibc read', () => {
    expect(Object.keys(DAEMON_ENV)).toEqual(['MALLOC_MMAP_THRESHOLD_']);
    const run = spawnSync(process.execPath, [...DAEMON_NODE_FLAGS, '-e', '0'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
  });
});
