/**
 * An application folder laid out as docs/integration.md says ("What you need"): its node_modules link
 * to this repository (as `cpsd`) and to the packages it already has, in place of `npm install`; the doc's
 * TypeScript is type-checked and compiled as a developer's build would, then run with Node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import ts from 'typescript';
import { ROOT } from './doc-blocks.js';

const LINKED = ['express', 'express-session', 'ws', 'redis', '@types/node', '@types/express', '@types/express-session', '@types/ws'];

/** A fresh folder whose node_modules hold `cpsd` (this repository, built) and the packages the doc names. */
export function appFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cpsd-docs-app-'));
  mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
  symlinkSync(ROOT, join(dir, 'node_modules', 'cpsd'), 'dir');
  for (const name of LINKED) symlinkSync(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'doc-app', private: true, type: 'module' }));
  return dir;
}

/** Removes the folder (its node_modules links, not what they point to). */
export function removeAppFolder(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function write(dir: string, file: string, text: string): string {
  const path = join(dir, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return path;
}

/** The type errors of `file` (strict, NodeNext, as this project compiles): empty when it type-checks. */
export function typeErrors(file: string): string[] {
  const program = ts.createProgram([file], {
    strict: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts'],
    types: ['node'],
    noEmit: true,
    skipLibCheck: true,
  });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    return `${where ? `${where.line + 1}:${where.character + 1} ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}

/** TypeScript to the ESM JavaScript Node runs (what `tsc` emits, without the types). */
export function compile(code: string): string {
  return ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
}

export interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves when stdout contains `text`; rejects if the process ends first or after `ms`. */
  waitFor(text: string, ms?: number): Promise<void>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

export function run(dir: string, args: string[], env: Record<string, string>, command = process.execPath): Run {
  const child = spawn(command, args, { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) w();
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (text, ms = 15_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${text}" within ${ms} ms; stdout: ${out}; stderr: ${err}`)), ms);
        const check = (): void => {
          if (!out.includes(text)) return;
          clearTimeout(timer);
          resolve();
        };
        waiters.push(check);
        void exited.then((code) => {
          clearTimeout(timer);
          if (out.includes(text)) resolve();
          else reject(new Error(`exited (${code}) before "${text}"; stdout: ${out}; stderr: ${err}`));
        });
        check();
      }),
  };
}

/** A TCP port free right now on 127.0.0.1 (for a server that must know its origin before it starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
