/**
 * A real X display for browsers driven as a person would: Xvfb on a free display number, windows found
 * by their title with xdotool, keys typed into whatever has the focus, screenshots of the whole screen
 * with ImageMagick's `import`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface Display {
  /** ":N", for DISPLAY. */
  readonly name: string;
  /** Runs xdotool on this display; rejects with its stderr when it fails or outlives `timeoutMs`. */
  xdotool(args: string[], timeoutMs?: number): Promise<string>;
  /** Window ids whose title matches `pattern` (a regex for xdotool), waited for up to `timeoutMs`. */
  waitWindow(pattern: string, timeoutMs?: number): Promise<string[]>;
  /** The titles of all windows that have one, for assertions and failure messages. */
  titles(): Promise<string[]>;
  /** Waits until some window's title matches `re`, and returns that title. */
  waitTitle(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Types text with xdotool into the focused window (a PIN never goes to a log: nothing here logs). */
  type(text: string): Promise<void>;
  key(...keys: string[]): Promise<void>;
  screenshot(path: string): Promise<void>;
  /** The colour of one screen pixel as [r, g, b] (0-255). */
  pixel(x: number, y: number): Promise<[number, number, number]>;
  stop(): Promise<void>;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args[0] ?? ''}: ${error.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Starts Xvfb on the first display number from 90 that has no X socket yet. */
export async function startXvfb(size = '1280x900x24'): Promise<Display> {
  let n = 90;
  while (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) n++;
  const name = `:${n}`;
  const child: ChildProcess = spawn('Xvfb', [name, '-screen', '0', size, '-nolisten', 'tcp'], { stdio: 'ignore' });
  const until = Date.now() + 10_000;
  while (!existsSync(`/tmp/.X11-unix/X${n}`)) {
    if (child.exitCode !== null || Date.now() > until) throw new Error(`Xvfb ${name} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const env = { ...process.env, DISPLAY: name };
  const xdotool = (args: string[], timeoutMs = 10_000): Promise<string> => run('xdotool', args, env, timeoutMs);
  const titles = async (): Promise<string[]> => {
    const ids = (await xdotool(['search', '--name', '.']).catch(() => '')).split('\n').filter(Boolean);
    const names = await Promise.all(ids.map((id) => xdotool(['getwindowname', id]).then((s) => s.trim(), () => '')));
    return [...new Set(names.filter(Boolean))];
  };
  return {
    name,
    xdotool,
    titles,
    async waitWindow(pattern, timeoutMs = 20_000) {
      const out = await xdotool(['search', '--sync', '--onlyvisible', '--name', pattern], timeoutMs).catch(async (error: unknown) => {
        throw new Error(`no window titled /${pattern}/ within ${timeoutMs} ms; windows: ${JSON.stringify(await titles())}\n${String(error)}`);
      });
      return out.split('\n').filter(Boolean);
    },
    async waitTitle(re, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const all = await titles();
        const found = all.find((t) => re.test(t));
        if (found) return found;
        if (Date.now() > until) throw new Error(`no window title matching ${re} within ${timeoutMs} ms; windows: ${JSON.stringify(all)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async type(text) {
      await xdotool(['type', '--delay', '30', text]);
    },
    async key(...keys) {
      await xdotool(['key', '--delay', '100', ...keys]);
    },
    async screenshot(path) {
      await run('import', ['-window', 'root', path], env, 15_000);
    },
    async pixel(x, y) {
      const out = await run('import', ['-window', 'root', '-crop', `1x1+${x}+${y}`, '-depth', '8', 'txt:-'], env, 15_000);
      const m = /\((\d+),(\d+),(\d+)/.exec(out.split('\n')[1] ?? '');
      if (!m) throw new Error(`import: no pixel in ${out}`);
      return [Number(m[1]), Number(m[2]), Number(m[3])];
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
