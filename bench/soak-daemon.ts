/**
 * The daemon `bench:soak` measures: the real `cpsd serve --sim doctor` code path (cli/commands/serve.ts),
 * in its own process, with a memory probe on the IPC channel. Not a user command.
 *
 *   node [flags] dist/bench/soak-daemon.js <config.json>    (started by bench/soak.ts)
 */
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';
import { serve } from '../cli/commands/serve.js';

export interface MemoryProbe {
  /** Resident set as the process has it, before any collection. */
  rss: number;
  /** After a full collection (when --expose-gc): what is still referenced. */
  heapUsed: number;
  /** V8's young generation, as sized now. */
  newSpace: number;
  /** Resident part of the C allocator's main heap (Linux: the [heap] mapping); -1 elsewhere. */
  mallocHeap: number;
  /** Resident set after that collection. */
  rssAfterGc: number;
}

function mallocHeap(): number {
  try {
    const smaps = readFileSync('/proc/self/smaps', 'utf8');
    const at = smaps.search(/ \[heap\]\n/);
    if (at < 0) return 0;
    return Number(/\nRss:\s+(\d+) kB/.exec(smaps.slice(at))?.[1] ?? 0) * 1024;
  } catch {
    return -1;
  }
}

process.on('message', (message) => {
  if (message !== 'memory') return;
  const rss = process.memoryUsage.rss();
  global.gc?.();
  const probe: MemoryProbe = {
    rss,
    heapUsed: process.memoryUsage().heapUsed,
    newSpace: getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0,
    mallocHeap: mallocHeap(),
    rssAfterGc: process.memoryUsage.rss(),
  };
  process.send?.(probe);
});

await serve({ sim: 'doctor', config: [process.argv[2] ?? ''] });
process.disconnect?.();
