#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option, type Help } from 'commander';
import { CpsdError } from '../core/errors.js';
import { fromHex } from '../core/bytes.js';
import { hasOwn } from '../core/own.js';
import { PERSONALITIES, checkedAtr, type PersonalityName } from '../sim/cps/personality.js';
import { certs, type CertsOptions } from './commands/certs.js';
import { doctor } from './commands/doctor.js';
import { identity } from './commands/identity.js';
import type { IdpCommandOptions } from './commands/idp.js';
import { pin } from './commands/pin.js';
import { pkcs11, type Pkcs11Options } from './commands/pkcs11.js';
import { proxy, type ProxyCommandOptions } from './commands/proxy.js';
import { POLICY_BROWSERS, POLICY_FORMATS, originOption, policy, type PolicyOptions } from './commands/policy.js';
import { readers } from './commands/readers.js';
import { serve, type ServeOptions } from './commands/serve.js';
import { service, type ServiceOptions } from './commands/service.js';
import { sign, verifySignature, type SignOptions, type VerifySignatureOptions } from './commands/sign.js';
import { sim, type SimOptions } from './commands/sim.js';
import { status } from './commands/status.js';
import { formatError } from './errors.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import { LANGS, langFromArgv, setLang, t, type MessageKey } from '../core/i18n.js';
import type { CommonOptions } from './output.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(t('arg.port'));
  return n;
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(t('arg.positive'));
  return n;
}

function personality(value: string): PersonalityName {
  if (!hasOwn(PERSONALITIES, value)) throw new InvalidArgumentError(t('arg.personality', { values: Object.keys(PERSONALITIES).join(', ') }));
  return value as PersonalityName;
}

/** An ATR in hex, spaces or colons allowed; well formed (ISO 7816-3, TCK right). */
function atrOption(value: string): Uint8Array {
  const hex = value.replace(/[\s:]/g, '');
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new InvalidArgumentError(t('arg.atrHex', { example: '3BAC00402A001225006480000310009000' }));
  try {
    return checkedAtr(fromHex(hex));
  } catch (error) {
    throw new InvalidArgumentError(t('arg.atrInvalid', { detail: error instanceof CpsdError ? error.message : String(error) }));
  }
}

function slot(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 15) throw new InvalidArgumentError(t('arg.slot'));
  return n;
}

function fail(error: unknown): number {
  process.stderr.write(formatError(error));
  return exitCodeFor(error);
}

/** A command-line error of commander, in the person's language, commander's own text kept as the detail. */
function usageError(error: CommanderError): void {
  const quoted = /'([^']+)'/.exec(error.message)?.[1] ?? '';
  const key: MessageKey =
    error.code === 'commander.unknownOption'
      ? 'usage.unknownOption'
      : error.code === 'commander.unknownCommand'
        ? 'usage.unknownCommand'
        : error.code === 'commander.optionMissingArgument'
          ? 'usage.missingValue'
          : error.code === 'commander.invalidArgument'
            ? 'usage.invalidValue'
            : error.code === 'commander.excessArguments'
              ? 'usage.tooManyArguments'
              : 'usage.other';
  const detail = error.message.replace(/^error: /, '');
  process.stderr.write(`cpsd: ${t(key, { option: quoted, command: quoted })}\n  ${t('error.detail', { detail })}\n  ${t('usage.seeHelp')}\n`);
}

/** commander's help in the person's language: titles, and the "(default: …)" of options. */
function localisedHelp(): Partial<Help> {
  const titles: Readonly<Record<string, MessageKey>> = {
    'Usage:': 'help.title.usage',
    'Options:': 'help.title.options',
    'Global Options:': 'help.title.globalOptions',
    'Commands:': 'help.title.commands',
    'Arguments:': 'help.title.arguments',
  };
  return {
    showGlobalOptions: true,
    styleTitle: (title: string): string => {
      const key = titles[title];
      return key ? t(key) : title;
    },
    optionDescription: (option: Option): string => {
      const extra: string[] = [];
      if (option.argChoices) extra.push(t('help.choices', { values: option.argChoices.join(', ') }));
      const showDefault = option.required || option.optional || (option.isBoolean() && typeof option.defaultValue === 'boolean');
      if (option.defaultValue !== undefined && showDefault) {
        extra.push(t('help.default', { value: option.defaultValueDescription ?? JSON.stringify(option.defaultValue) }));
      }
      return extra.length > 0 ? `${option.description} (${extra.join(', ')})` : option.description;
    },
  };
}

/** The program; its texts are in the language of `--lang`, else of the environment (set before building it). */
/** False for the commands that run until stopped (serve, sim, proxy, idp). */
let oneShot = true;

export function buildProgram(): Command {
  const program = new Command('cpsd')
    .description(t('help.program'))
    .version(pkg.version, '-V, --version', t('help.version'))
    .helpOption('-h, --help', t('help.help'))
    .helpCommand('help [command]', t('help.help'))
    .configureHelp(localisedHelp())
    .addOption(new Option('--lang <lang>', t('help.lang')).choices(LANGS))
    .exitOverride()
    // Errors are written once, localised, by the catch below; help and version go out as commander writes them.
    .configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: () => undefined });

  program
    .command('readers')
    .description(t('help.readers'))
    .option('--json', t('help.readers.json'))
    .option('--reader <name>', t('help.readers.reader'))
    .action(async (options: { json?: boolean; reader?: string }) => {
      process.exitCode = await readers(options).catch(fail);
    });

  program
    .command('sim')
    .description(t('help.sim'))
    .option('--slot <n>', t('help.sim.slot'), slot, 0)
    .option('--vpcd-host <host>', t('help.sim.vpcdHost'), '127.0.0.1')
    .option('--vpcd-port <port>', t('help.sim.vpcdPort'), port)
    .option('--profile <name>', t('help.sim.profile'), 'doctor')
    .option('--personality <name>', t('help.sim.personality'), personality)
    .option('--atr <hex>', t('help.sim.atr'), atrOption)
    .option('--list-profiles', t('help.sim.listProfiles'))
    .action(async (options: SimOptions) => {
      oneShot = false;
      process.exitCode = await sim(options).catch(fail);
    });

  const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
  const common = (c: Command): Command =>
    c
      .option('--json', t('help.common.json'))
      .option('--reader <name>', t('help.common.reader'))
      .option('--no-cache', t('help.common.noCache'));

  common(program.command('status').description(t('help.status'))).action(async (o: CommonOptions) => {
    process.exitCode = await status(o).catch(fail);
  });

  common(program.command('identity').description(t('help.identity')))
    .option('--situations', t('help.identity.situations'))
    .option('--allow-last-try', t('help.identity.allowLastTry'))
    .action(async (o: CommonOptions & { situations?: boolean; allowLastTry?: boolean }) => {
      process.exitCode = await identity(o).catch(fail);
    });

  common(program.command('certs').description(t('help.certs')))
    .option('--pem', t('help.certs.pem'))
    .option('--verify', t('help.certs.verify'))
    .option('--trust <file>', t('help.certs.trust'), collect)
    .option('--crl <file>', t('help.certs.crl'), collect)
    .action(async (o: CertsOptions) => {
      process.exitCode = await certs(o).catch(fail);
    });

  const pinCommand = program.command('pin').description(t('help.pin'));
  const pinHelp = { verify: 'help.pin.verify', change: 'help.pin.change', unblock: 'help.pin.unblock' } as const;
  for (const action of ['verify', 'change', 'unblock'] as const) {
    const c = pinCommand.command(action).description(t(pinHelp[action]));
    common(c)
      .option('--allow-last-try', t('help.pin.allowLastTry'))
      .action(async (o: CommonOptions & { allowLastTry?: boolean }) => {
        process.exitCode = await pin(action, o).catch(fail);
      });
  }

  common(program.command('sign').description(t('help.sign')))
    .argument('<file>', t('help.sign.file'))
    .option('-o, --output <file>', t('help.sign.output'))
    .addOption(new Option('--format <format>', t('help.sign.format')).choices(['pades', 'cades']))
    .option('--name <text>', t('help.sign.name'))
    .option('--reason <text>', t('help.sign.reason'))
    .option('--location <text>', t('help.sign.location'))
    .option('--chain <file>', t('help.sign.chain'), collect)
    .option('--force', t('help.sign.force'))
    .option('--allow-last-try', t('help.pin.allowLastTry'))
    .action(async (file: string, o: SignOptions) => {
      process.exitCode = await sign(file, o).catch(fail);
    });

  program
    .command('verify-signature')
    .description(t('help.verifySignature'))
    .argument('<file>', t('help.verifySignature.file'))
    .requiredOption('--trust <path>', t('help.verifySignature.trust'), collect)
    .option('--content <file>', t('help.verifySignature.content'))
    .option('--json', t('help.verifySignature.json'))
    .action(async (file: string, o: VerifySignatureOptions) => {
      process.exitCode = await verifySignature(file, o).catch(fail);
    });

  common(program.command('doctor').description(t('help.doctor')))
    .option('--trust <file>', t('help.doctor.trust'), collect)
    .option('--crl <file>', t('help.doctor.crl'), collect)
    .option('--bundle <file>', t('help.doctor.bundle'))
    .action(async (o: CommonOptions & { trust?: string[]; crl?: string[]; bundle?: string }) => {
      process.exitCode = await doctor(o).catch(fail);
    });

  program
    .command('serve')
    .description(t('help.serve'))
    .option('--port <port>', t('help.serve.port'), port)
    .option('--allow-origin <url>', t('help.serve.allowOrigin'), collect)
    .option('--allow-http-localhost', t('help.serve.allowHttpLocalhost'))
    .option('--config <file>', t('help.serve.config'), collect)
    .option('--sim <profile>', t('help.serve.sim'))
    .option('--personality <name>', t('help.serve.personality'), personality)
    .option('--atr <hex>', t('help.serve.atr'), atrOption)
    .action(async (o: ServeOptions) => {
      oneShot = false;
      process.exitCode = await serve(o).catch(fail);
    });

  program
    .command('idp')
    .description(t('help.idp'))
    .option('--port <port>', t('help.idp.port'), port, 9000)
    .option('--sim <profile>', t('help.idp.sim'))
    .option('--daemon-port <port>', t('help.idp.daemonPort'), port)
    .option('--clients <file>', t('help.idp.clients'))
    .option('--trust-dir <dir>', t('help.idp.trustDir'))
    .option('--issuer <url>', t('help.idp.issuer'))
    .option('--demo-redirect-uri <url>', t('help.idp.demoRedirectUri'))
    .option('--config <file>', t('help.idp.config'))
    .option('--redis <url>', t('help.idp.redis'))
    .option('--rotate-keys <jwks>', t('help.idp.rotateKeys'))
    .option('--keep <n>', t('help.idp.keep'), positive)
    .action(async (o: IdpCommandOptions) => {
      oneShot = false;
      // Loaded on demand: oidc-provider warns about Node 20 as soon as it is imported, and only `cpsd idp` needs it.
      const { idp } = await import('./commands/idp.js');
      process.exitCode = await idp(o).catch(fail);
    });

  program
    .command('proxy')
    .description(t('help.proxy'))
    .option('--port <port>', t('help.proxy.port'), port)
    .option('--config <file>', t('help.proxy.config'), collect)
    .option('--runtime-root <dir>', t('help.proxy.runtimeRoot'))
    .action(async (o: ProxyCommandOptions) => {
      oneShot = false;
      process.exitCode = await proxy(o).catch(fail);
    });

  const serviceCommand = program.command('service').description(t('help.service'));
  for (const action of ['install', 'uninstall'] as const) {
    serviceCommand
      .command(action)
      .description(t(action === 'install' ? 'help.service.install' : 'help.service.uninstall'))
      .option('--user', t('help.service.user'))
      .option('--dry-run', t('help.service.dryRun'))
      .addOption(new Option('--platform <platform>', t('help.service.platform')).choices(['linux', 'darwin', 'win32']))
      .option('--root <dir>', t('help.service.root'))
      .action(async (o: ServiceOptions) => {
        process.exitCode = await service(action, o).catch(fail);
      });
  }

  const pkcs11Command = program.command('pkcs11').description(t('help.pkcs11'));
  for (const action of ['install', 'uninstall'] as const) {
    pkcs11Command
      .command(action)
      .description(t(action === 'install' ? 'help.pkcs11.install' : 'help.pkcs11.uninstall'))
      .option('--user', t('help.pkcs11.user'))
      .option('--dry-run', t('help.pkcs11.dryRun'))
      .option('--module <path>', t('help.pkcs11.module'))
      .option('--root <dir>', t('help.pkcs11.root'))
      .action(async (o: Pkcs11Options) => {
        process.exitCode = await pkcs11(action, o).catch(fail);
      });
  }

  program
    .command('policy')
    .description(t('help.policy'))
    .requiredOption('--origin <url>', t('help.policy.origin'), originOption)
    .addOption(new Option('--browser <name>', t('help.policy.browser')).choices([...POLICY_BROWSERS, 'all']).default('all'))
    .addOption(new Option('--format <system>', t('help.policy.format')).choices(POLICY_FORMATS))
    .option('--out <dir>', t('help.policy.out'))
    .option('--pkcs11-module <path>', t('help.policy.pkcs11Module'))
    .action(async (o: PolicyOptions) => {
      process.exitCode = await policy(o).catch(fail);
    });

  return program;
}

/**
 * The first word of `args` that names no command where a command is expected, if any. commander answers
 * `cpsd frobnicate --help` with the global help and exit 0: a typo in a script would look like success.
 */
function unknownCommand(program: Command, args: readonly string[]): string | undefined {
  let command = program;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') return undefined;
    if (arg.startsWith('-')) {
      // An option with a separate value (`--lang fr`) takes the next word too.
      const option = command.options.find((o) => o.long === arg || o.short === arg);
      if (option && (option.required || option.optional)) i++;
      continue;
    }
    if (command.commands.length === 0 || arg === 'help') return undefined;
    const next = command.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!next) return arg;
    command = next;
  }
  return undefined;
}

// `--lang` decides before anything is built or printed (the help texts included).
setLang(langFromArgv(process.argv.slice(2)));
try {
  const program = buildProgram();
  const unknown = unknownCommand(program, process.argv.slice(2));
  if (unknown !== undefined) throw new CommanderError(ExitCode.USAGE, 'commander.unknownCommand', `error: unknown command '${unknown}'`);
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    if (error.exitCode !== 0 && error.code !== 'commander.help' && error.code !== 'commander.helpDisplayed') usageError(error);
    process.exitCode = error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  } else {
    process.exitCode = fail(error);
  }
}
// A one-shot command has said all it had to say: a handle something left open (a PC/SC context the
// binding keeps polling) must not keep a technician's terminal waiting. `serve` and `sim` run until stopped.
if (oneShot) setTimeout(() => process.exit(), 2000).unref();
