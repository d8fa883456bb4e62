/**
 * Applications that bring their own crypto stack, each loading libcpsd-pkcs11.so its own way, judged by
 * what they and an independent peer say: OpenSSL (libp11 engine) and GnuTLS (p11-kit's .module file)
 * complete client authentication to nginx (a client certificate from the test IGC-Santé CA required),
 * Java's SunPKCS11 signs and openssl verifies, poppler's pdfsig signs a PDF with the signature key
 * and then reports the signature valid. Through the real pcscd + vpcd, `cpsd serve` as a process.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMaterial } from '../../sim/cps/fixtures.js';
import { startSite, type Site } from '../helpers/nginx.js';
import { nss, nssDb } from '../helpers/nss.js';
import { Pkcs11Daemon } from '../helpers/pkcs11-daemon.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const PIN = '1234';
const TOKEN = 'CPS3 JEANNE MEDECIN-TEST';
const vr = useVirtualReader();
let daemon: Pkcs11Daemon;
let site: Site;

beforeAll(async () => {
  daemon = new Pkcs11Daemon();
  await daemon.start();
  site = await startSite(join(daemon.dir, 'site'));
}, 60_000);

afterAll(async () => {
  await site?.stop();
  await daemon?.stop();
  daemon?.cleanup();
});

function pem(der: Uint8Array): string {
  return `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
}

/** The PKCS#15 label of the authentication certificate, as the token shows it. */
async function authLabel(): Promise<string> {
  const r = await daemon.pkcs11Tool(['-O', '--type', 'cert']);
  const labels = [...r.stdout.matchAll(/label:\s*(.+)/g)].map((m) => (m[1] as string).trim());
  const label = labels.find((l) => /AUT/i.test(l));
  if (!label) throw new Error(`no authentication certificate label in:\n${r.stdout}`);
  return label;
}

describe('OpenSSL through the libp11 engine', () => {
  function engineConfig(): string {
    const engine = execFileSync('openssl', ['version', '-e'], { encoding: 'utf8' }).match(/ENGINESDIR: "(.*)"/)?.[1] as string;
    const conf = join(daemon.dir, 'openssl-pkcs11.cnf');
    writeFileSync(
      conf,
      `openssl_conf = init\n[init]\nengines = engines\n[engines]\npkcs11 = pkcs11\n[pkcs11]\nengine_id = pkcs11\ndynamic_path = ${join(engine, 'pkcs11.so')}\nMODULE_PATH = ${daemon.module}\ninit = 0\n`,
    );
    return conf;
  }

  async function sClient(port: number, token: string, extra: string[]): Promise<{ stdout: string; stderr: string }> {
    const certFile = join(daemon.dir, 'auth.pem');
    writeFileSync(certFile, pem(loadMaterial('doctor').authCert));
    const key = `pkcs11:token=${encodeURIComponent(token)};object=${encodeURIComponent(await authLabel())};type=private;pin-value=${PIN}`;
    return daemon.tool('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-engine', 'pkcs11', '-keyform', 'engine', '-key', key, '-cert', certFile, '-quiet', '-ign_eof', ...extra], {
      env: { OPENSSL_CONF: engineConfig() },
      input: 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n',
      timeoutMs: 60_000,
    });
  }

  it('CPS3: openssl s_client authenticates to nginx at TLS 1.2, restricted to PKCS#1 v1.5 signatures, and nginx names the holder', async () => {
    await vr.insert({ profile: 'doctor' });
    // OpenSSL signs TLS 1.2's CertificateVerify with RSA-PSS when both sides can: a CPS3 cannot (docs/pkcs11.md).
    const r = await sClient(site.tls12, TOKEN, ['-tls1_2', '-client_sigalgs', 'RSA+SHA256:RSA+SHA384:RSA+SHA512']);
    expect(r.stdout, r.stderr).toContain('Connect&eacute; : ');
    expect(r.stdout).toContain('CN=899700012349');
    expect(r.stdout).toContain('TLSv1.2 SUCCESS');
  });

  it('CPS3: without that restriction OpenSSL asks for RSA-PSS, and the module says the card cannot (CKR_MECHANISM_INVALID)', async () => {
    await vr.insert({ profile: 'doctor' });
    const r = await sClient(site.tls12, TOKEN, ['-tls1_2']);
    expect(r.stdout).not.toContain('CN=899700012349');
    expect(r.stderr).toMatch(/Mechanism invalid/);
  });

  it('CPS4: openssl s_client authenticates at TLS 1.3 (RSA-PSS by the card)', async () => {
    await vr.insert({ profile: 'doctor', personality: 'cps4' });
    const r = await sClient(site.tls13, 'CPS4 JEANNE MEDECIN-TEST', ['-tls1_3']);
    expect(r.stdout, r.stderr).toContain('CN=899700012349');
    expect(r.stdout).toContain('TLSv1.3 SUCCESS');
  });
});

describe('GnuTLS through p11-kit', () => {
  /**
   * Registers the module with p11-kit as `cpsd pkcs11 install` does: p11-kit reads no user configuration
   * in a program running as root (CI), so there it is the system file, removed after the test.
   */
  function p11kitModule(): { env: Record<string, string>; remove: () => void } {
    const root = process.getuid?.() === 0;
    const home = join(daemon.dir, 'gnutls-home');
    const dir = root ? '/etc/pkcs11/modules' : join(home, '.config', 'pkcs11', 'modules');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'cpsd-test.module');
    writeFileSync(file, `module: ${daemon.module}\n`);
    return { env: root ? {} : { HOME: home, XDG_CONFIG_HOME: join(home, '.config') }, remove: () => rmSync(file, { force: true }) };
  }

  it('p11tool --list-all shows the card\'s certificates through the .module file', async () => {
    await vr.insert({ profile: 'doctor' });
    const p11kit = p11kitModule();
    const r = await daemon.tool('p11tool', ['--list-all', `pkcs11:token=${encodeURIComponent(TOKEN)}`], { env: p11kit.env }).finally(p11kit.remove);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.match(/Type: X\.509 Certificate/g)).toHaveLength(2);
  });

  // Debian's opensc registers its own module with p11-kit: loaded beside ours it keeps a connection to the
  // card, and the daemon's exclusive PIN job then waits for it (docs/pkcs11.md, "OpenSC beside cpsd").
  // gnutls-cli is therefore given the module itself (--provider) for the handshake.
  it('gnutls-cli authenticates to nginx at TLS 1.2 with the card\'s key by pkcs11: URI', async () => {
    await vr.insert({ profile: 'doctor' });
    const label = encodeURIComponent(await authLabel());
    const uri = `pkcs11:token=${encodeURIComponent(TOKEN)};object=${label}`;
    const r = await daemon.tool(
      'gnutls-cli',
      ['--provider', daemon.module, '--no-ca-verification', '--x509certfile', `${uri};type=cert`, '--x509keyfile', `${uri};type=private?pin-value=${PIN}`, '--port', String(site.tls12), '127.0.0.1'],
      { env: { GNUTLS_PIN: PIN }, input: 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n', timeoutMs: 60_000 },
    );
    expect(r.stdout, r.stderr).toContain('CN=899700012349');
    expect(r.stdout).toMatch(/TLSv1\.2 SUCCESS/);
  });
});

describe('Java SunPKCS11', () => {
  it('keytool -list -storetype PKCS11 lists both keys as private-key entries', async () => {
    await vr.insert({ profile: 'doctor' });
    const cfg = join(daemon.dir, 'java-pkcs11.cfg');
    writeFileSync(cfg, `name = cpsd\nlibrary = ${daemon.module}\n`);
    const r = await daemon.tool('keytool', ['-list', '-storetype', 'PKCS11', '-providerClass', 'sun.security.pkcs11.SunPKCS11', '-providerArg', cfg, '-storepass', PIN], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.match(/PrivateKeyEntry/g)).toHaveLength(2);
  });

  it('signs with SHA256withRSA, a signature openssl verifies with the authentication certificate', async () => {
    await vr.insert({ profile: 'doctor' });
    const cfg = join(daemon.dir, 'java-pkcs11.cfg');
    writeFileSync(cfg, `name = cpsd\nlibrary = ${daemon.module}\n`);
    const input = join(daemon.dir, 'java-in.txt');
    const sig = join(daemon.dir, 'java.sig');
    writeFileSync(input, 'ordonnance 42');
    const source = fileURLToPath(new URL('java/Pkcs11Sign.java', import.meta.url));
    const r = await daemon.tool('java', [source, cfg, PIN, await authLabel(), input, sig], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    const certFile = join(daemon.dir, 'java-auth.pem');
    writeFileSync(certFile, pem(loadMaterial('doctor').authCert));
    const pub = join(daemon.dir, 'java-auth.pub.pem');
    execFileSync('openssl', ['x509', '-in', certFile, '-pubkey', '-noout', '-out', pub]);
    const verified = execFileSync('openssl', ['dgst', '-sha256', '-verify', pub, '-signature', sig, input], { encoding: 'utf8' });
    expect(verified.trim()).toBe('Verified OK');
  });
});

/** A one-page PDF with a correct cross-reference table. */
function minimalPdf(): Buffer {
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    '<< /Length 44 >>\nstream\nBT /F1 18 Tf 72 760 Td (Compte rendu) Tj ET\nendstream',
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let body = '%PDF-1.7\n';
  const offsets: number[] = [];
  objects.forEach((o, i) => {
    offsets.push(Buffer.byteLength(body));
    body += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = Buffer.byteLength(body);
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}

describe('poppler pdfsig', () => {
  it('signs a PDF with the signature key (its own PIN), and pdfsig then reports the signature valid', async () => {
    await vr.insert({ profile: 'doctor' });
    const db = nssDb(join(daemon.dir, 'pdfsig-db'));
    nss(['modutil', '-dbdir', db, '-add', 'cpsd', '-libfile', daemon.module, '-force'], { env: daemon.env() });
    nss(['certutil', '-A', '-d', db, '-n', 'igc-sante-root', '-t', 'CT,C,C', '-i', fileURLToPath(new URL('../../fixtures/pki/root.der', import.meta.url))]);
    nss(['certutil', '-A', '-d', db, '-n', 'igc-sante-fort-personnes', '-t', ',,', '-i', fileURLToPath(new URL('../../fixtures/pki/intermediate.der', import.meta.url))]);
    const nicks = await daemon.tool('pdfsig', ['-nssdir', db, '-nss-pwd', PIN, '-list-nicks']);
    const nick = nicks.stdout.split('\n').map((l) => l.trim()).find((l) => l.startsWith(`${TOKEN}:`) && /SIG/i.test(l));
    expect(nick, nicks.stdout + nicks.stderr).toBeDefined();
    const input = join(daemon.dir, 'report.pdf');
    const output = join(daemon.dir, 'report-signed.pdf');
    writeFileSync(input, minimalPdf());
    const signed = await daemon.tool('pdfsig', ['-nssdir', db, '-nss-pwd', PIN, '-kpw', PIN, '-add-signature', '-nick', nick as string, '-reason', 'Compte rendu', input, output], { timeoutMs: 60_000 });
    expect(signed.code, signed.stderr + signed.stdout).toBe(0);
    const check = await daemon.tool('pdfsig', ['-nssdir', db, '-no-ocsp', output]);
    expect(check.stdout, check.stderr).toContain('Signature Validation: Signature is Valid.');
    expect(check.stdout).toContain('Signer full Distinguished Name');
    expect(readFileSync(output).length).toBeGreaterThan(minimalPdf().length);
  });
});
