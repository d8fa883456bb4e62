/**
 * NSS's own tools as the judge of the module: an NSS database with libcpsd-pkcs11.so registered by
 * modutil (as Chromium's is), and a TLS server (selfserv) that requires a client certificate from the
 * test IGC-Santé CA, with a server certificate of its own made by openssl.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './public-site.js';

export function nss(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): string {
  return execFileSync(args[0] as string, args.slice(1), { env: options.env ?? process.env, input: options.input ?? '', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** An empty NSS database in `dir`. */
export function nssDb(dir: string): string {
  mkdirSync(dir, { recursive: true });
  nss(['certutil', '-N', '-d', `sql:${dir}`, '--empty-password']);
  return `sql:${dir}`;
}

/**
 * A key and certificate for localhost (PEM), made by openssl and issued by a CA of its own (`ca`): browsers
 * refuse a self-signed CA certificate as a site's own (Firefox: CA_CERT_USED_AS_END_ENTITY).
 */
export function serverCertificate(dir: string): { key: string; cert: string; ca: string } {
  mkdirSync(dir, { recursive: true });
  const caKey = join(dir, 'server-ca.key.pem');
  const ca = join(dir, 'server-ca.cert.pem');
  const key = join(dir, 'server.key.pem');
  const cert = join(dir, 'server.cert.pem');
  nss(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=cpsd test site CA', '-keyout', caKey, '-out', ca]);
  nss(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-CA', ca, '-CAkey', caKey,
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'extendedKeyUsage=serverAuth', '-keyout', key, '-out', cert]);
  return { key, cert, ca };
}

/** The test IGC-Santé root and intermediate as PEM files, for servers that check client certificates. */
export function igcSanteBundle(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const out = join(dir, 'igc-sante-test.pem');
  const pem = ['root.der', 'intermediate.der']
    .map((f) => nss(['openssl', 'x509', '-inform', 'der', '-in', join(ROOT, 'fixtures/pki', f)]))
    .join('');
  writeFileSync(out, pem);
  return out;
}

/** An NSS database for selfserv: its certificate as "server", the IGC-Santé test CAs trusted for clients. */
export function serverDb(dir: string): string {
  const db = nssDb(join(dir, 'server-db'));
  const { key, cert } = serverCertificate(dir);
  const p12 = join(dir, 'server.p12');
  nss(['openssl', 'pkcs12', '-export', '-inkey', key, '-in', cert, '-name', 'server', '-passout', 'pass:', '-out', p12]);
  nss(['pk12util', '-i', p12, '-d', db, '-W', '']);
  nss(['certutil', '-A', '-d', db, '-n', 'igc-sante-root', '-t', 'CT,,', '-i', join(ROOT, 'fixtures/pki/root.der')]);
  nss(['certutil', '-A', '-d', db, '-n', 'igc-sante-fort-personnes', '-t', ',,', '-i', join(ROOT, 'fixtures/pki/intermediate.der')]);
  return db;
}
