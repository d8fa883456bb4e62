/** Drives the test card living in a child process (dist/sim/icc-process.js, built by `npm test`). */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { VPCD_HOST, VPCD_PORT } from './pcscd.js';

const SCRIPT = fileURLToPath(new URL('../../dist/sim/icc-process.js', import.meta.url));

interface Reply {
  id: number;
  ok: boolean;
  error?: string;
  /** Counts since insertion; cardApdus/cardBytes/cardRsa as the card itself saw them (sim/icc-process.ts). */
  stats?: { apdus: number; bytesToCard: number; bytesFromCard: number; commands: number; cardApdus: number; cardBytes: number; cardRsa: number };
}

export class IccProcess {
  readonly #child: ChildProcess;
  #next = 0;
  readonly #waiting = new Map<number, (reply: Reply) => void>();

  constructor() {
    if (!existsSync(SCRIPT)) throw new Error(`${SCRIPT} is missing: run \`npm run build\` first (npm test does)`);
    this.#child = fork(SCRIPT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (reply: Reply) => {
      this.#waiting.get(reply.id)?.(reply);
      this.#waiting.delete(reply.id);
    });
  }

  #call(op: string, extra: Record<string, unknown> = {}): Promise<Reply> {
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, (reply) => (reply.ok ? resolve(reply) : reject(new Error(reply.error))));
      this.#child.send({ id, op, ...extra });
    });
  }

  /** Inserts the T=0 test card, or with `profile` the virtual CPS card of that fixture profile (`atr`: a variant). */
  async insert(
    options: {
      atr?: string;
      port?: number;
      profile?: string;
      personality?: 'cps3' | 'cps3-cl' | 'cps4';
      faults?: {
        removeAfter?: number;
        muteAfter?: number;
        garbleAfter?: number;
        stallAt?: { apdu: number; ms: number };
        /** Card time (sim/cps/faults.ts): e.g. a slow RSA operation to act during a signature. */
        timing?: { microsPerByte: number; rsaMillis: number };
        statusAt?: { ins: number; nth?: number; sw: number };
      };
    } = {},
  ): Promise<void> {
    await this.#call('insert', { host: VPCD_HOST, ...options, port: options.port ?? VPCD_PORT });
  }

  async remove(): Promise<void> {
    await this.#call('remove');
  }

  async stats(): Promise<NonNullable<Reply['stats']>> {
    const reply = await this.#call('stats');
    if (!reply.stats) throw new Error('no stats');
    return reply.stats;
  }

  close(): void {
    this.#child.disconnect();
    this.#child.kill();
  }
}
