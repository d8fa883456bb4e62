/**
 * Where the user's daemon serves the PKCS#11 module (docs/pkcs11-protocol.md, "Transport"): a socket in
 * a directory only that user may enter, so that no other account even reaches the peer check.
 */
import { lstatSync, mkdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ConfigError } from '../daemon/config.js';

export const SOCKET_ENV = 'CPSD_PKCS11_SOCKET';

export function pkcs11SocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env[SOCKET_ENV]) return env[SOCKET_ENV];
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'cpsd', 'pkcs11.sock');
  return join(tmpdir(), `cpsd-${process.getuid?.() ?? 'user'}`, 'pkcs11.sock');
}

/** Creates the socket's directory 0700, or checks that the existing one is ours and closed to others. */
export function prepareSocketDirectory(socketPath: string): void {
  const dir = dirname(socketPath);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory()) throw new ConfigError(`${dir} is not a directory`);
  if (uid !== undefined && st.uid !== uid) throw new ConfigError(`${dir} belongs to another user: the PKCS#11 socket cannot be served there`);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}
