/**
 * How the daemon's Node process is started by the service units (`cpsd service install`, the LaunchAgent)
 * and by `bench:soak`: memory that a flood took is given back once it is over (docs/security.md, "A
 * flood of hostile frames").
 *
 * Measured with `npm run bench:soak` (12,000 hostile frames): without these settings the daemon's RSS
 * goes 72 → 108 MiB and stays there after 90 s idle (with them: 62 → 67 → 61), although the JavaScript
 * heap still in use after a full collection is within about 1 MiB of the start. Two things keep it:
 * - V8's young generation grows under the flood's allocation rate (8 → 32 MiB) and its pages stay
 *   resident after V8 shrinks it: `--max-semi-space-size=2` (MiB) bounds it; a daemon that answers a
 *   person's clicks never needs more;
 * - glibc's allocator keeps the holes the 64 KiB socket read buffers leave in its main heap (+7 MiB):
 *   allocations from 32 KiB up are mapped apart and unmapped when freed. Other C libraries ignore it.
 */

/** Node options before the script. */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/** Environment of the daemon's process. */
export const DAEMON_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '32768' };
