/** Listening TCP sockets as the kernel lists them (/proc/net/tcp{,6}): no probe connection needed. */
import { existsSync, readFileSync } from 'node:fs';

/** Local addresses (kernel hex, e.g. 0100007F for 127.0.0.1) of the sockets listening on `port`. */
export function listeningAddresses(port: number): string[] {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(hex) && fields[3] === '0A') out.push(fields[1].slice(0, -hex.length)); // 0A: LISTEN
    }
  }
  return out;
}

export function listening(port: number): boolean {
  return listeningAddresses(port).length > 0;
}
