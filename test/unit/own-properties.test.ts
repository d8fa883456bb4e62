/**
 * Names that are members of Object.prototype (`constructor`, `toString`, `__proto__`…) are names like any
 * other in what comes from outside: unknown parameters, settings, codes and roles (issue #20.3).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { InProcessBackend } from '../../cards/backends.js';
import { DEFAULTS, validateConfig } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { errorPage } from '../../idp/pages.js';
import { upstreamClaims } from '../../idp/upstream.js';
import { fill } from '../../core/i18n.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { rpcClient, type RpcClient } from '../helpers/rpc.js';

const ORIGIN = 'https://app.example';
const NONCE = Buffer.alloc(32, 7).toString('base64');
let server: CpsdServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function connect(): Promise<RpcClient> {
  server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN] }, new InProcessBackend(fixtureCard('doctor')), new Logger('error', () => undefined));
  await server.listen();
  return rpcClient(server.port, ORIGIN);
}

/** Sends `params` as written (JSON.parse makes `__proto__` an own member, as it does in the daemon). */
async function errorCode(rpc: RpcClient, method: string, params: string): Promise<unknown> {
  const answer = new Promise<{ error?: { data: { code: string } } }>((resolve) => rpc.ws.once('message', (d: Buffer) => resolve(JSON.parse(d.toString()) as { error?: { data: { code: string } } })));
  rpc.ws.send(`{"jsonrpc":"2.0","id":1,"method":${JSON.stringify(method)},"params":${params}}`);
  return (await answer).error?.data.code;
}

describe('the daemon refuses a parameter named like an Object.prototype member', () => {
  for (const name of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
    it(`hello with "${name}"`, async () => {
      expect(await errorCode(await connect(), 'hello', `{"${name}":1}`)).toBe('INVALID_REQUEST');
    });
  }

  it('card.status with "valueOf"', async () => {
    expect(await errorCode(await connect(), 'card.status', '{"valueOf":1}')).toBe('INVALID_REQUEST');
  });

  it('auth.authenticate with an extra "constructor"', async () => {
    expect(await errorCode(await connect(), 'auth.authenticate', `{"nonce":"${NONCE}","constructor":1}`)).toBe('INVALID_REQUEST');
  });
});

describe('configuration files', () => {
  for (const name of ['constructor', 'toString', '__proto__']) {
    it(`refuse a setting named "${name}"`, () => {
      expect(() => validateConfig(JSON.parse(`{"${name}":1}`), 'config.json')).toThrow(`unknown setting "${name}"`);
    });
  }
});

describe('IdP inputs', () => {
  it('an upstream role "constructor" names no profession', () => {
    const claims = upstreamClaims({ SubjectNameID: '810109876543', given_name: 'LOUIS', family_name: 'PHARMACIEN-TEST', SubjectRole: ['constructor^1.2.250.1.71.1.2.7'] });
    expect(JSON.parse(JSON.stringify(claims))).toEqual(claims);
    expect(Object.values(claims).some((v) => typeof v === 'function')).toBe(false);
  });

  it('an error page for the code "toString" is the generic one', () => {
    expect(errorPage('en', 'toString', undefined)).toContain(errorPage('en', 'no_such_code', undefined).match(/<p id="error"[^>]*>[^<]*/)?.[0].replace('no_such_code', 'toString'));
  });
});

describe('the CLI', () => {
  it('leaves a placeholder named like a prototype member as it is', () => {
    expect(fill('{constructor} {n}', { n: 1 })).toBe('{constructor} 1');
  });

  it('refuses --personality constructor as an unknown personality (usage, exit 2)', () => {
    const cli = fileURLToPath(new URL('../../dist/cli/cpsd.js', import.meta.url));
    const run = spawnSync(process.execPath, [cli, 'sim', '--personality', 'constructor', '--list-profiles', '--lang', 'en'], { encoding: 'utf8', timeout: 10_000 });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('cps3');
  });
});
