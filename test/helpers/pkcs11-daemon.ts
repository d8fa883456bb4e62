/**
 * `cpsd serve` as a process on the real PC/SC stack, with its PKCS#11 socket in a folder of the test's
 * own, and the module built from pkcs11/module (the AddressSanitizer build with CPSD_PKCS11_ASAN=1).
 * Tools that load the module find the socket through CPSD_PKCS11_SOCKET.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, CLI } from './public-site.js';

export const MODULE = join(ROOT, 'pkcs11/module/libcpsd-pkcs11.so');
export const ASAN_MODULE = join(ROOT, 'pkcs11/module/libcpsd-pkcs11-asan.so');

/** The module under test: the ASan + UBSan build when CPSD_PKCS11_ASAN=1. */
export function moduleUnderTest(): string {
  const asan = process.env.CPSD_PKCS11_ASAN === '1';
  const path = asan ? ASAN_MODULE : MODULE;
  if (!existsSync(path)) {
    const r = spawnSync('make', ['-s', '-C', join(ROOT, 'pkcs11/module'), asan ? 'asan' : 'all'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the PKCS#11 module does not build: ${r.stderr}`);
  }
  return path;
}

/** What a process that loads the ASan build needs (the runtime first; leaks of the tools themselves ignored). */
export function asanEnv(): Record<string, string> {
  if (process.env.CPSD_PKCS11_ASAN !== '1') return {};
  const lib = spawnSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).stdout.trim();
  const ubsan = spawnSync('gcc', ['-print-file-name=libubsan.so'], { encoding: 'utf8' }).stdout.trim();
  return {
    LD_PRELOAD: `${lib} ${ubsan}`,
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0:halt_on_error=1:exitcode=86',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1:exitcode=86',
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface ToolResult {
  stdout: string;
  stderr: string;
  code: number;
}

export class Pkcs11Daemon {
  readonly dir = mkdtempSync(join(tmpdir(), 'cpsd-p11-e2e-'));
  readonly socket = join(this.dir, 'run', 'cpsd', 'pkcs11.sock');
  readonly module = moduleUnderTest();
  log = '';
  #child: ChildProcess | undefined;

  /** The environment a tool loading the module runs with. */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { ...process.env, CPSD_PKCS11_SOCKET: this.socket, ...asanEnv(), ...extra };
  }

  async start(args: string[] = []): Promise<void> {
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'serve', '--port', String(port), '--config', join(this.dir, 'none.json'), ...args], {
      env: { ...process.env, CPSD_PKCS11_SOCKET: this.socket, CPSD_CACHE_DIR: join(this.dir, 'cache') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    const until = Date.now() + 15_000;
    while (!this.log.includes('pkcs11-listening')) {
      if (child.exitCode !== null || Date.now() > until) throw new Error(`cpsd serve did not start:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGKILL: as if the daemon crashed. */
  kill(): void {
    this.#child?.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs a tool that loads the module; never throws (a failing tool is part of some tests). */
  tool(command: string, args: string[], options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
    return new Promise((resolve) => {
      const child = execFile(command, args, { env: this.env(options.env), maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 60_000 }, (error, stdout, stderr) => {
        const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 1) : 0;
        resolve({ stdout: String(stdout), stderr: String(stderr), code });
      });
      if (options.input !== undefined) child.stdin?.end(options.input);
      else child.stdin?.end();
    });
  }

  pkcs11Tool(args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<ToolResult> {
    return this.tool('pkcs11-tool', ['--module', this.module, ...args], options);
  }
}
