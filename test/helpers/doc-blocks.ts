/**
 * The fenced code blocks of a Markdown document, each with the HTML comment that says how it is run
 * (`<!-- run: KIND … -->`) or why it is not (`<!-- not run: REASON -->`), and the matcher that compares a
 * daemon's answer with a documented one (docs/protocol.md: `…` is any characters, `24821` the port, in a string or as a number).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface DocBlock {
  /** e.g. docs/protocol.md:54 (the line of the opening fence). */
  where: string;
  lang: string;
  /** The first word after `run:` (page, server, rpc…), or null when not run. */
  run: string | null;
  /** What the marker says after the kind (or, for `not run`, the reason). */
  note: string;
  notRun: boolean;
  code: string;
}

const MARKER = /^<!-- (run|not run): ?(.*?) -->$/;

export function docBlocks(file: string): DocBlock[] {
  const lines = readFileSync(`${ROOT}${file}`, 'utf8').split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i] ?? '');
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i] ?? '');
    let m = start - 1;
    while (m >= 0 && (lines[m] ?? '').trim() === '') m--;
    const marker = MARKER.exec(lines[m] ?? '');
    const notRun = marker?.[1] === 'not run';
    const text = marker?.[2] ?? '';
    const kind = marker && !notRun ? (/^[a-z-]+/.exec(text)?.[0] ?? '') : null;
    blocks.push({
      where: `${file}:${start + 1}`,
      lang: open[1] ?? '',
      run: marker ? kind : null,
      note: notRun ? text : text.slice(kind?.length ?? 0).replace(/^[\s,—-]+/, ''),
      notRun,
      code: body.join('\n'),
    });
  }
  return blocks;
}

export interface Step {
  dir: '→' | '←';
  /** The JSON text of the message (continuation lines joined). */
  text: string;
}

/** The `→` / `←` messages of a protocol example; lines in parentheses are prose and skipped. */
export function exchange(code: string): Step[] {
  const steps: Step[] = [];
  for (const line of code.split('\n')) {
    const head = /^([→←]) (.*)$/.exec(line);
    if (head) {
      steps.push({ dir: head[1] as Step['dir'], text: (head[2] ?? '').trim() });
      continue;
    }
    const t = line.trim();
    if (t === '' || t.startsWith('(')) continue;
    const last = steps[steps.length - 1];
    if (!last) throw new Error(`a line outside any message: ${line}`);
    last.text += t;
  }
  return steps;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Where `actual` differs from the documented `expected` (empty: it matches). */
export function mismatches(actual: unknown, expected: unknown, port: number, path = '$'): string[] {
  if (typeof expected === 'string') {
    if (typeof actual !== 'string') return [`${path}: ${JSON.stringify(actual)} is not a string`];
    const pattern = new RegExp(`^${expected.split('…').map((part) => escape(part).replaceAll('24821', String(port))).join('[\\s\\S]*')}$`);
    return pattern.test(actual) ? [] : [`${path}: ${JSON.stringify(actual)} does not match ${JSON.stringify(expected)}`];
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [`${path}: ${JSON.stringify(actual)} is not an array`];
    if (actual.length !== expected.length) return [`${path}: ${actual.length} elements, documented ${expected.length}: ${JSON.stringify(actual)}`];
    return expected.flatMap((e, i) => mismatches(actual[i], e, port, `${path}[${i}]`));
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return [`${path}: ${JSON.stringify(actual)} is not an object`];
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    const extra = Object.keys(a).filter((k) => !(k in e)).map((k) => `${path}.${k}: not documented (${JSON.stringify(a[k])})`);
    const missing = Object.keys(e).filter((k) => !(k in a)).map((k) => `${path}.${k}: documented, not sent`);
    return [...extra, ...missing, ...Object.keys(e).filter((k) => k in a).flatMap((k) => mismatches(a[k], e[k], port, `${path}.${k}`))];
  }
  // The documented port is the default one; the test's daemon listens where it could.
  if (expected === 24821 && actual === port) return [];
  return Object.is(actual, expected) ? [] : [`${path}: ${JSON.stringify(actual)}, documented ${JSON.stringify(expected)}`];
}
