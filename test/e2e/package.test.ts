/**
 * The package as a user gets it: `npm pack` (prepack builds), installed from the tarball into an empty
 * folder, then `cpsd --help`, `cpsd serve --sim doctor` answering a hello and an identity over
 * WebSocket, and `import … from 'cpsd/verify'`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rpcClient } from '../helpers/rpc.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'cpsd-package-'));
const app = join(work, 'app');
let tarball = '';
let files: string[] = [];
let child: ChildProcess | undefined;

beforeAll(() => {
  // `npm test` built dist/ already; prepack would build it again under the other test projects' feet.
  execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', work, '--silent'], { cwd: ROOT, stdio: 'pipe' });
  tarball = join(work, readdirSync(work).find((f) => f.endsWith('.tgz')) ?? 'missing.tgz');
  files = execFileSync('tar', ['tzf', tarball]).toString().trim().split('\n');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-fund', '--no-audit', '--silent', tarball], { cwd: app, stdio: 'pipe', env: { ...process.env, npm_config_nodedir: '/usr' } });
}, 240_000);

afterAll(() => {
  child?.kill('SIGTERM');
});

const cpsd = join(app, 'node_modules', '.bin', 'cpsd');

describe('the packed cpsd, installed in an empty folder', () => {
  it('ships the build, the client, the TEST fixtures and the docs, not the benches nor the PKI generator', () => {
    expect(files).toContain('package/dist/cli/cpsd.js');
    expect(files).toContain('package/client/cpsd.js');
    expect(files).toContain('package/fixtures/pki/README.md');
    expect(files).toContain('package/fixtures/profiles/doctor.json');
    expect(files).toContain('package/docs/protocol.md');
    expect(files.filter((f) => f.startsWith('package/dist/bench/') || f.includes('make-pki'))).toEqual([]);
  });

  it('builds before packing (prepack), so that a fresh clone packs a working package', () => {
    const pkg = JSON.parse(execFileSync('npm', ['pkg', 'get', 'scripts.prepack'], { cwd: ROOT }).toString()) as string;
    expect(pkg).toBe('npm run build');
  });

  it('answers cpsd --help', () => {
    expect(execFileSync(cpsd, ['--help'], { cwd: app }).toString()).toContain('Usage: cpsd');
  });

  it('built its PKCS#11 module at install, and cpsd pkcs11 install registers that one', () => {
    const home = mkdtempSync(join(tmpdir(), 'cpsd-package-home-'));
    const out = execFileSync(cpsd, ['--lang', 'en', 'pkcs11', 'install', '--user', '--dry-run'], { cwd: app, env: { ...process.env, HOME: home } }).toString();
    const module = join(app, 'node_modules/cpsd/pkcs11/module/libcpsd-pkcs11.so');
    expect(out).toContain(`PKCS#11 module: ${module}\n`);
    expect(out).toContain(`would run modutil -dbdir sql:${home}/.pki/nssdb -add cpsd -libfile ${module} -force`);
    expect(execFileSync('nm', ['-D', '--defined-only', module]).toString()).toMatch(/ T C_GetFunctionList$/m);
  });

  it('serves the virtual card: hello and card.identity over WebSocket', async () => {
    const port = 25500 + Math.floor(Math.random() * 400);
    const serve = spawn(cpsd, ['serve', '--sim', 'doctor', '--port', String(port)], { cwd: app, stdio: ['ignore', 'ignore', 'pipe'] });
    child = serve;
    await new Promise<void>((resolve, reject) => {
      serve.stderr?.on('data', (d: Buffer) => d.toString().includes('listening on') && resolve());
      serve.once('exit', (code) => reject(new Error(`cpsd serve exited with ${String(code)}`)));
    });
    const rpc = await rpcClient(port);
    expect((await rpc.call('hello')).result).toMatchObject({ protocol: 'cpsd/1' });
    expect((await rpc.call('card.identity')).result).toMatchObject({ nationalId: '899700012349' });
    await rpc.close();
  });

  it('exports cpsd/verify and cpsd/client', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', "const v = await import('cpsd/verify'); const c = await import('cpsd/client'); console.log(typeof v.verify, typeof v.validateCertificate, typeof c.connect)"], { cwd: app }).toString();
    expect(out.trim()).toBe('function function function');
  });
});
