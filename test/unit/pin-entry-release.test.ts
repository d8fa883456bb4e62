/**
 * A PIN entry that ends (its tab closed, the card pulled, the daemon stopping) releases everything it
 * holds at once: its timeout timer above all, which kept `cpsd serve` alive after SIGTERM (issue #20).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PinEntries, type PinRequest } from '../../daemon/pin-entry.js';
import { rpcClient } from '../helpers/rpc.js';

function request(signal: AbortSignal): PinRequest {
  return {
    origin: 'https://app.example',
    purpose: 'authentication',
    holder: 'MEDECIN-TEST',
    triesLeft: 3,
    rule: { minLength: 4, maxLength: 8 } as PinRequest['rule'],
    certificate: 'authentication',
    signal,
    announce: () => undefined,
  };
}

const entries = (): PinEntries => new PinEntries({ timeoutMs: 600_000, baseUrl: () => 'http://127.0.0.1:1', ownOrigins: () => [] });

afterEach(() => {
  vi.useRealTimers();
});

describe('a PIN entry that ends', () => {
  it('clears its timeout when its connection closes', async () => {
    vi.useFakeTimers();
    const pins = entries();
    const ac = new AbortController();
    const asked = pins.ask(request(ac.signal));
    expect(vi.getTimerCount()).toBe(1);
    ac.abort(new Error('the connection closed'));
    await expect(asked).rejects.toThrow('the connection closed');
    expect(pins.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('clears its timeout when the daemon stops', async () => {
    vi.useFakeTimers();
    const pins = entries();
    const asked = pins.ask(request(new AbortController().signal));
    pins.cancelAll(new Error('stopping'));
    await expect(asked).rejects.toThrow('stopping');
    expect(pins.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stops listening to its connection once it timed out', async () => {
    vi.useFakeTimers();
    const pins = entries();
    const signal = new AbortController().signal;
    const remove = vi.spyOn(signal, 'removeEventListener');
    const asked = pins.ask(request(signal));
    const outcome = expect(asked).rejects.toThrow('no PIN was entered in time');
    await vi.advanceTimersByTimeAsync(600_000);
    await outcome;
    // Otherwise the connection's signal holds the ended entry for as long as the tab stays open.
    expect(remove).toHaveBeenCalledWith('abort', expect.any(Function));
    expect(pins.size).toBe(0);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('cpsd serve', () => {
  it('exits on SIGTERM after a tab closed with its PIN window open', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cpsd-pin-release-'));
    const port = await freePort();
    // The longest PIN timeout there is: a timer left behind would keep the process for 10 minutes.
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ port, pinTimeoutMs: 600_000, pkcs11: false, logLevel: 'error' }));
    const child = spawn(process.execPath, ['dist/cli/cpsd.js', 'serve', '--sim', 'doctor', '--config', join(dir, 'config.json'), '--allow-origin', 'https://app.example'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, XDG_RUNTIME_DIR: dir },
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => d.toString().includes(String(port)) && resolve());
        child.once('exit', () => reject(new Error('cpsd serve exited before listening')));
      });
      const rpc = await rpcClient(port, 'https://app.example');
      void rpc.call('auth.authenticate', { nonce: Buffer.alloc(32, 7).toString('base64') });
      await rpc.next('pin.required');
      await rpc.close(); // the tab closes while its PIN window is open
      await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGTERM');
      // It exits in milliseconds; 5 s leaves room for a loaded machine and is far below the timeout.
      const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 5000))]);
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 20_000);
});
