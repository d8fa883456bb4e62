/**
 * Secret input: on a terminal, read without echo; otherwise one line of standard input (for IT
 * scripts). Never from the command line, where `ps` and shell history would show it.
 */
import { createInterface } from 'node:readline';
import { CpsdError } from '../core/errors.js';
import { Pin } from '../cards/pin.js';

export class NoInputError extends CpsdError {
  readonly code = 'NO_INPUT';
}

let stdinLines: AsyncIterator<string> | undefined;

/** A PIN or unblocking code typed by the person, as a value that never prints. */
export async function readPin(prompt: string): Promise<Pin> {
  return new Pin(await readSecret(prompt));
}

async function readSecret(prompt: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) {
    stdinLines ??= createInterface({ input, terminal: false })[Symbol.asyncIterator]();
    const next = await stdinLines.next();
    if (next.done) throw new NoInputError('no secret on standard input');
    return next.value.trim();
  }
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const onData = (chunk: Buffer): void => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            input.off('data', onData);
            process.stderr.write('\n');
            resolve(value);
            return;
          }
          if (ch === '\u0003') {
            input.off('data', onData);
            process.stderr.write('\n');
            reject(new NoInputError('cancelled'));
            return;
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else value += ch;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
  }
}
