#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { CpsdError } from '../core/errors.js';
import { fromHex } from '../core/bytes.js';
import { PERSONALITIES, checkedAtr, type PersonalityName } from '../sim/cps/personality.js';
import { certs, type CertsOptions } from './commands/certs.js';
import { doctor } from './commands/doctor.js';
import { identity } from './commands/identity.js';
import { pin } from './commands/pin.js';
import { readers } from './commands/readers.js';
import { serve, type ServeOptions } from './commands/serve.js';
import { sim, type SimOptions } from './commands/sim.js';
import { status } from './commands/status.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import type { CommonOptions } from './output.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a TCP port (1-65535)');
  return n;
}

function personality(value: string): PersonalityName {
  if (!(value in PERSONALITIES)) throw new InvalidArgumentError(`must be one of ${Object.keys(PERSONALITIES).join(', ')}`);
  return value as PersonalityName;
}

/** An ATR in hex, spaces or colons allowed; well formed (ISO 7816-3, TCK right). */
function atrOption(value: string): Uint8Array {
  const hex = value.replace(/[\s:]/g, '');
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new InvalidArgumentError('must be hex bytes, e.g. 3BAC00402A001225006480000310009000');
  try {
    return checkedAtr(fromHex(hex));
  } catch (error) {
    throw new InvalidArgumentError(error instanceof CpsdError ? error.message : String(error));
  }
}

function slot(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 15) throw new InvalidArgumentError('must be a slot number (0-15)');
  return n;
}

function fail(error: unknown): number {
  const message = error instanceof Error ? error.message : String(error);
  const code = typeof error === 'object' && error !== null && 'code' in error ? ` [${String(error.code)}]` : '';
  process.stderr.write(`cpsd: ${message}${code}\n`);
  return exitCodeFor(error);
}

export function buildProgram(): Command {
  const program = new Command('cpsd')
    .description('Middleware for French health-professional smart cards (CPS, CPE, CPF, CPA)')
    .version(pkg.version)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('readers')
    .description('list the smart-card readers and the card in each')
    .option('--json', 'machine-readable output: [{ name, cardPresent, atr }]')
    .option('--reader <name>', 'only this reader')
    .action(async (options: { json?: boolean; reader?: string }) => {
      process.exitCode = await readers(options).catch(fail);
    });

  program
    .command('sim')
    .description('plug a virtual card into vsmartcard vpcd (test and demo use)')
    .option('--slot <n>', 'vpcd slot: 0 for "Virtual PCD 00 00", 1 for "… 00 01"', slot, 0)
    .option('--vpcd-host <host>', 'vpcd address', '127.0.0.1')
    .option('--vpcd-port <port>', 'vpcd TCP port (default 35963 + slot)', port)
    .option('--profile <name>', 'card profile from fixtures/profiles, or "test-card"', 'doctor')
    .option('--personality <name>', 'cps3 | cps3-cl | cps4 (default: from the profile)', personality)
    .option('--atr <hex>', "present this ATR (a field variant) instead of the personality's", atrOption)
    .option('--list-profiles', 'list the card profiles and exit')
    .action(async (options: SimOptions) => {
      process.exitCode = await sim(options).catch(fail);
    });

  const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
  const common = (c: Command): Command =>
    c
      .option('--json', 'machine-readable output (docs/cli.md)')
      .option('--reader <name>', 'use this reader (default: the first one holding a card)')
      .option('--no-cache', 'read everything from the card, ignoring the public-data cache');

  common(program.command('status').description('card type, serial and PIN tries left')).action(async (o: CommonOptions) => {
    process.exitCode = await status(o).catch(fail);
  });

  common(program.command('identity').description('who holds the card: national id, names, profession, specialty'))
    .option('--situations', 'also the practice situations (asks for the PIN)')
    .option('--allow-last-try', 'with --situations: try the PIN even when one try is left')
    .action(async (o: CommonOptions & { situations?: boolean; allowLastTry?: boolean }) => {
      process.exitCode = await identity(o).catch(fail);
    });

  common(program.command('certs').description('the authentication and signature certificates'))
    .option('--pem', 'print the certificates in PEM')
    .option('--verify', 'check validity, chain (--trust) and revocation (--crl)')
    .option('--trust <file>', 'trusted root or intermediate certificate, PEM or DER (repeatable)', collect)
    .option('--crl <file>', 'DER CRL signed by a trusted certificate (repeatable)', collect)
    .action(async (o: CertsOptions) => {
      process.exitCode = await certs(o).catch(fail);
    });

  const pinCommand = program.command('pin').description('verify, change or unblock the PIN (prompted, never on the command line)');
  for (const action of ['verify', 'change', 'unblock'] as const) {
    const c = pinCommand.command(action).description(
      action === 'verify' ? 'check the PIN' : action === 'change' ? 'change the PIN' : 'unblock with the 8-digit unblocking code and set a new PIN',
    );
    common(c)
      .option('--allow-last-try', 'try even when only one try is left')
      .action(async (o: CommonOptions & { allowLastTry?: boolean }) => {
        process.exitCode = await pin(action, o).catch(fail);
      });
  }

  common(program.command('doctor').description('diagnose the PC/SC service, reader, card, PIN and certificates'))
    .option('--trust <file>', 'trusted certificate for the chain check (repeatable)', collect)
    .option('--crl <file>', 'DER CRL (repeatable)', collect)
    .option('--bundle <file>', 'write a redacted support archive (no PIN, no identity)')
    .action(async (o: CommonOptions & { trust?: string[]; crl?: string[]; bundle?: string }) => {
      process.exitCode = await doctor(o).catch(fail);
    });

  program
    .command('serve')
    .description('run the daemon: WebSocket API on 127.0.0.1 and ::1 (docs/protocol.md)')
    .option('--port <port>', 'TCP port (default 24821)', port)
    .option('--allow-origin <url>', 'allow this https origin (repeatable)', collect)
    .option('--allow-http-localhost', 'also allow http://localhost origins (development)')
    .option('--config <file>', 'configuration file (repeatable; default /etc/cpsd/config.json then ~/.config/cpsd/config.json)', collect)
    .option('--sim <profile>', 'use the in-process virtual card of this profile instead of PC/SC')
    .option('--personality <name>', 'with --sim: cps3 | cps3-cl | cps4', personality)
    .option('--atr <hex>', 'with --sim: present this ATR instead of the personality\'s', atrOption)
    .action(async (o: ServeOptions) => {
      process.exitCode = await serve(o).catch(fail);
    });

  return program;
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  } else {
    process.exitCode = fail(error);
  }
}
