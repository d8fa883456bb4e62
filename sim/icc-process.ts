/**
 * Runs the test card in its own process, driven over the fork IPC channel. End-to-end tests keep the
 * card out of the process that calls PC/SC: with both in one event loop, a blocking PC/SC call that
 * waits for the card can deadlock (see docs/testing.md).
 *
 * Requests: { id, op: 'insert', host?, port?, atr? (hex: a field variant), profile?, personality?, faults? } | { id, op: 'remove' }
 *           | { id, op: 'stats' }. With `profile`, the card is the virtual CPS card of that fixture profile;
 *           without, the small T=0 test card.
 * Replies:  { id, ok: true, stats? } | { id, ok: false, error }.
 */
import { fromHex } from '../core/bytes.js';
import { FaultyCard, type FaultOptions } from './cps/faults.js';
import { fixtureCard } from './cps/fixtures.js';
import type { PersonalityName } from './cps/personality.js';
import { TestCard } from './test-card.js';
import { VpcdConnector, type VirtualCard } from './vpcd.js';

interface Request {
  id: number;
  op: 'insert' | 'remove' | 'stats';
  host?: string;
  port?: number;
  atr?: string;
  profile?: string;
  personality?: PersonalityName;
  faults?: FaultOptions;
}

let connector: VpcdConnector | undefined;
let card: (VirtualCard & { commands: number }) | undefined;
/** What the card itself saw: APDUs and bytes both ways (command + response incl. SW), since insertion. */
const seen = { apdus: 0, bytes: 0, rsa: 0 };

/** Counts at the card, below vpcd's framing: the figure a T=0 link would carry. */
function counting(inner: VirtualCard): VirtualCard {
  return {
    atr: inner.atr,
    reset: () => inner.reset?.(),
    powerOff: () => inner.powerOff?.(),
    transmit: async (command: Uint8Array) => {
      const response = await inner.transmit(command);
      seen.apdus++;
      seen.bytes += command.length + response.length;
      // RSA private-key operations (INTERNAL AUTHENTICATE, PSO CDS, PSO DECIPHER) that produced a result.
      const ins = command[1];
      const p1p2 = ((command[2] ?? 0) << 8) | (command[3] ?? 0);
      const done = response.length >= 2 && (response[response.length - 2] === 0x90 || response[response.length - 2] === 0x61);
      if (done && (ins === 0x88 || (ins === 0x2a && (p1p2 === 0x9e9a || p1p2 === 0x8086)))) seen.rsa++;
      return response;
    },
  };
}

async function handle(request: Request): Promise<Record<string, unknown>> {
  switch (request.op) {
    case 'insert': {
      if (connector?.inserted) throw new Error('a card is already inserted');
      card = request.profile
        ? fixtureCard(request.profile, { personality: request.personality, atr: request.atr ? fromHex(request.atr) : undefined })
        : new TestCard(request.atr ? fromHex(request.atr) : undefined);
      const options: { host?: string; port?: number } = {};
      if (request.host) options.host = request.host;
      if (request.port) options.port = request.port;
      seen.apdus = 0;
      seen.bytes = 0;
      seen.rsa = 0;
      const inserted: VirtualCard = counting(
        request.faults ? new FaultyCard(card, request.faults, () => void connector?.remove()) : card,
      );
      connector = await VpcdConnector.insert(inserted, options);
      return {};
    }
    case 'remove':
      await connector?.remove();
      connector = undefined;
      return {};
    case 'stats':
      return { stats: { ...connector?.stats, commands: card?.commands ?? 0, cardApdus: seen.apdus, cardBytes: seen.bytes, cardRsa: seen.rsa } };
  }
}

process.on('message', (message: Request) => {
  handle(message).then(
    (result) => process.send?.({ id: message.id, ok: true, ...result }),
    (error: unknown) => process.send?.({ id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
});
process.on('disconnect', () => process.exit(0));
