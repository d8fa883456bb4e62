/** HTTP requests written byte for byte on a socket: header layouts no HTTP client library would send. */
import { connect } from 'node:net';

/** A valid WebSocket handshake's headers (RFC 6455 §4.1), before any test's changes. */
export const UPGRADE_HEADERS: readonly string[] = ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='];

/** Sends `requestLine` and `headers` as they are, returns the status code of the answer (0: closed without one). */
export function rawRequest(port: number, requestLine: string, headers: readonly string[], host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let answer = '';
    const done = (): void => {
      socket.destroy();
      resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0));
    };
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
      if (answer.includes('\r\n')) done();
    });
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', reject);
    socket.write(`${requestLine}\r\n${headers.join('\r\n')}\r\n\r\n`);
  });
}
