/**
 * Finds or starts the machine's pcscd with a vpcd reader, and can kill and restart it.
 * pcscd is one per machine (/run/pcscd/pcscd.comm), so the e2e project runs its files one at a time.
 * Missing pcscd or vpcd is a failure, never a skip: `bash .ci/run` installs them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { listening } from './sockets.js';

export const VPCD_PORT = 35963;
export const VPCD_READER = 'Virtual PCD 00 00';
export const VPCD_HOST = process.env.VPCD_HOST ?? '127.0.0.1';
const SOCKET = '/run/pcscd/pcscd.comm';
const PID_FILE = '/run/pcscd/pcscd.pid';
const DRIVER = '/usr/lib/pcsc/drivers/serial/libifdvpcd.so';

let owned: ChildProcess | undefined;

function pcscdPid(): number | undefined {
  try {
    // pcscd writes "PID\n\0": take the digits only.
    const pid = Number(/\d+/.exec(readFileSync(PID_FILE, 'utf8'))?.[0]);
    if (Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`)) return pid;
  } catch {
    // no pid file
  }
  return undefined;
}


export function pcscdReady(): boolean {
  return pcscdPid() !== undefined && existsSync(SOCKET) && listening(VPCD_PORT);
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function startPcscd(): ChildProcess {
  if (!existsSync(DRIVER)) {
    throw new Error(`vpcd driver missing (${DRIVER}): install vsmartcard-vpcd (bash .ci/run does)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'cpsd-pcscd-'));
  writeFileSync(
    join(dir, 'vpcd'),
    ['FRIENDLYNAME "Virtual PCD"', 'DEVICENAME /dev/null:0x8C7B', `LIBPATH ${DRIVER}`, 'CHANNELID 0x8C7B', ''].join('\n'),
  );
  const child = spawn('pcscd', ['--foreground', '--config', dir], { stdio: 'ignore' });
  child.on('error', () => {
    // reported by ensurePcscd's wait below (ENOENT when pcscd is not installed)
  });
  return child;
}

/** Uses the running pcscd (CI starts one) or starts one. Resolves when vpcd listens. */
export async function ensurePcscd(): Promise<void> {
  if (pcscdReady()) return;
  owned = startPcscd();
  const child = owned;
  let failed = false;
  child.once('error', () => (failed = true));
  child.once('exit', () => (failed = true));
  await waitFor(() => failed || pcscdReady(), 5000, 'pcscd and vpcd to listen');
  if (failed) throw new Error('pcscd could not be started: install pcscd and vsmartcard-vpcd (bash .ci/run does)');
}

/** Kills the running pcscd (ours or not) and waits until it is gone. */
export async function killPcscd(): Promise<void> {
  const pid = pcscdPid();
  if (pid === undefined) return;
  process.kill(pid, 'SIGTERM');
  try {
    await waitFor(() => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'), 3000, 'pcscd to exit');
  } catch {
    process.kill(pid, 'SIGKILL');
  }
  await waitFor(() => !listening(VPCD_PORT), 3000, 'vpcd port to close');
}

/** Starts a fresh pcscd after `killPcscd`. */
export async function startAgain(): Promise<void> {
  await ensurePcscd();
}

/** Called at the end of a run: leaves a pcscd running if we replaced the machine's one. */
export function ownedPcscd(): ChildProcess | undefined {
  return owned;
}
