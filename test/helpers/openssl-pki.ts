/**
 * Hostile test PKIs built with the openssl command line only (never with the project's own PKI code), and
 * openssl itself as the oracle: `openssl verify` for paths and CRLs, `openssl ocsp` as a real responder.
 *
 * Every certificate is issued by `openssl ca` from a CSR, so that each issuer has a real database
 * (index.txt) that `openssl ca -revoke`, `openssl ca -gencrl` and `openssl ocsp -index` all share, and so that
 * notBefore/notAfter can be set freely (`-startdate`/`-enddate`: openssl 3.0's `x509` cannot).
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { listening } from './sockets.js';

const execFileAsync = promisify(execFile);

export const OID = {
  /** IGC-Santé person authentication certificate (card + PIN). */
  authPolicy: '1.2.250.1.213.1.7.2.1.1.1.1',
  /** The contactless technical certificate (no PIN). */
  contactlessPolicy: '1.2.250.1.213.1.7.2.1.1.1.9',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  smartcardLogon: '1.3.6.1.4.1.311.20.2.2',
  anyPolicy: '2.5.29.32.0',
} as const;

export interface Key {
  name: string;
  path: string;
  bits: number;
}

/** Anything openssl can read as a PEM file. */
export interface PemFile {
  pemPath: string;
}

export interface Cert extends PemFile {
  name: string;
  /** As given to `-subj`. */
  subject: string;
  derPath: string;
  pem: string;
  der: Uint8Array;
  /** Upper-case hex as in index.txt and `openssl x509 -serial` (a leading 00 byte is not part of it). */
  serial: string;
  key: Key;
  notBefore: Date;
  notAfter: Date;
}

export interface Crl extends PemFile {
  name: string;
  derPath: string;
  pem: string;
  der: Uint8Array;
}

export interface IssueSpec {
  /** File name stem, unique in the PKI. */
  name: string;
  /** `-subj` form: /C=FR/O=…/CN=…+SN=…+GN=… (a `+` makes a multi-valued RDN). */
  subject: string;
  key: Key;
  /** Body of the extension section (openssl x509v3_config lines). */
  extensions: string;
  /** Further config sections the extensions refer to (`@dir_sect`…). */
  sections?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** Signature digest: sha256 (default), sha1, md5. */
  md?: string;
  /** Hex serial; default 16 random bytes. */
  serial?: string;
  /** Force the serial's high bit (DER then needs a leading 00 byte: 17 octets). */
  highBit?: boolean;
  /** Record in the issuer's database (default true); false makes an OCSP responder answer "unknown". */
  record?: boolean;
}

const DAY = 86_400_000;

/** YYYYMMDDHHMMSSZ, what `openssl ca -startdate/-enddate/-crl_lastupdate` read. */
export function opensslTime(date: Date): string {
  return `${date.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

/** 16 random bytes, the first one never 00 (so the serial really is 16 octets), high bit random or forced. */
export function randomSerial(highBit?: boolean): string {
  const bytes = randomBytes(16);
  if (highBit === true) bytes[0] = (bytes[0] ?? 0) | 0x80;
  if (highBit === false) bytes[0] = (bytes[0] ?? 0) & 0x7f;
  if (bytes[0] === 0) bytes[0] = 0x01;
  return bytes.toString('hex').toUpperCase();
}

function openssl(args: readonly string[], cwd: string): string {
  const run = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 20_000 });
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${run.status}):\n${run.stderr}${run.stdout}`);
  return run.stdout;
}

function pemToDer(pem: string): Uint8Array {
  const body = /-----BEGIN [A-Z0-9 ]+-----([\s\S]*?)-----END /.exec(pem)?.[1];
  if (!body) throw new Error('no PEM block');
  return new Uint8Array(Buffer.from(body.replace(/\s+/g, ''), 'base64'));
}

/** Extension sections for an IGC-Santé-like CA certificate. */
export function caExtensions(o: {
  pathLen?: number;
  /** keyUsage value; default critical keyCertSign + cRLSign. */
  keyUsage?: string;
  /** basicConstraints value; default critical CA:TRUE (+ pathlen). */
  basicConstraints?: string;
  crl?: string;
  ocsp?: string;
  /** Extra lines (nameConstraints, unknown critical extensions…). */
  extra?: string;
} = {}): string {
  return [
    `basicConstraints = ${o.basicConstraints ?? `critical,CA:TRUE${o.pathLen === undefined ? '' : `,pathlen:${o.pathLen}`}`}`,
    `keyUsage = ${o.keyUsage ?? 'critical,keyCertSign,cRLSign'}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
    // anyPolicy, so that `openssl verify -policy … -explicit_policy` judges the leaf's policy alone.
    `certificatePolicies = ${OID.anyPolicy}`,
    ...(o.crl ? [`crlDistributionPoints = URI:${o.crl}`] : []),
    ...(o.ocsp ? [`authorityInfoAccess = OCSP;URI:${o.ocsp}`] : []),
    ...(o.extra ? [o.extra] : []),
  ].join('\n');
}

/** Extension section of an IGC-Santé person authentication certificate; each field can be replaced or dropped (null). */
export function leafExtensions(o: {
  keyUsage?: string | null;
  extendedKeyUsage?: string | null;
  policies?: string | null;
  crl?: string | null;
  ocsp?: string | null;
  extra?: string;
} = {}): string {
  const lines = [
    'basicConstraints = critical,CA:FALSE',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
  ];
  const keyUsage = o.keyUsage === undefined ? 'critical,digitalSignature,keyEncipherment' : o.keyUsage;
  const eku = o.extendedKeyUsage === undefined ? `${OID.clientAuth},${OID.smartcardLogon}` : o.extendedKeyUsage;
  const policies = o.policies === undefined ? OID.authPolicy : o.policies;
  if (keyUsage !== null) lines.push(`keyUsage = ${keyUsage}`);
  if (eku !== null) lines.push(`extendedKeyUsage = ${eku}`);
  if (policies !== null) lines.push(`certificatePolicies = ${policies}`);
  if (o.crl) lines.push(`crlDistributionPoints = URI:${o.crl}`);
  if (o.ocsp) lines.push(`authorityInfoAccess = OCSP;URI:${o.ocsp}`);
  if (o.extra) lines.push(o.extra);
  return lines.join('\n');
}

/** A delegated OCSP responder certificate (RFC 6960 §4.2.2.2): OCSPSigning EKU, no revocation check. */
export function responderExtensions(o: { extendedKeyUsage?: string | null } = {}): string {
  const eku = o.extendedKeyUsage === undefined ? 'OCSPSigning' : o.extendedKeyUsage;
  return [
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature',
    ...(eku === null ? [] : [`extendedKeyUsage = ${eku}`]),
    'noCheck = ignored',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
  ].join('\n');
}

/** A person's subject in the CPx layout: C, O, title, then one RDN CN=idNat+SN+GN. */
export function personSubject(o: { id?: string; surname?: string; given?: string; org?: string; title?: string } = {}): string {
  return `/C=FR/O=${o.org ?? 'IGC-SANTE TEST'}/title=${o.title ?? 'Médecin'}/CN=${o.id ?? '899700012349'}+SN=${o.surname ?? 'MEDECIN-TEST'}+GN=${o.given ?? 'JEANNE'}`;
}

export class OpensslPki {
  readonly dir: string;
  private readonly keys = new Map<string, Key>();
  private readonly names = new Set<string>();
  private scratch = 0;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static create(prefix = 'cpsd-trust-'): OpensslPki {
    return new OpensslPki(mkdtempSync(join(tmpdir(), prefix)));
  }

  /** RSA keys, generated in parallel (2048-bit keys take tens of ms each); a name already made is reused. */
  async makeKeys(specs: readonly (string | { name: string; bits: number })[]): Promise<Record<string, Key>> {
    const out: Record<string, Key> = {};
    await Promise.all(
      specs.map(async (spec) => {
        const { name, bits } = typeof spec === 'string' ? { name: spec, bits: 2048 } : spec;
        let key = this.keys.get(name);
        if (!key) {
          const path = join(this.dir, `${name}.key.pem`);
          await execFileAsync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${bits}`, '-out', path], { timeout: 60_000 });
          key = { name, path, bits };
          this.keys.set(name, key);
        }
        out[name] = key;
      }),
    );
    return out;
  }

  /** Same as makeKeys, for one key. */
  async key(name: string, bits = 2048): Promise<Key> {
    const made = await this.makeKeys([{ name, bits }]);
    return made[name] as Key;
  }

  /** The `openssl ca` database of an issuer, created on first use. */
  database(issuer: Cert): { dir: string; index: string } {
    const dir = join(this.dir, `db-${issuer.name}`);
    if (!existsSync(dir)) {
      mkdirSync(join(dir, 'new'), { recursive: true });
      writeFileSync(join(dir, 'index.txt'), '');
      writeFileSync(join(dir, 'index.txt.attr'), 'unique_subject = no\n');
      writeFileSync(join(dir, 'crlnumber'), '1000\n');
    }
    return { dir, index: join(dir, 'index.txt') };
  }

  private config(o: { db: string; index: string; issuer?: Cert; issuerKey: Key; extensions?: string; sections?: string; crlExtensions?: string }): string {
    const path = join(this.dir, `ca-${++this.scratch}.cnf`);
    writeFileSync(
      path,
      [
        '[ ca ]',
        'default_ca = ca_section',
        '[ ca_section ]',
        `database = ${o.index}`,
        `serial = ${o.db}/serial`,
        `crlnumber = ${o.db}/crlnumber`,
        `new_certs_dir = ${o.db}/new`,
        `certificate = ${o.issuer?.pemPath ?? join(this.dir, 'no-certificate.pem')}`,
        `private_key = ${o.issuerKey.path}`,
        'default_md = sha256',
        'default_days = 365',
        'default_crl_days = 7',
        'policy = policy_any',
        'unique_subject = no',
        'email_in_dn = no',
        'utf8 = yes',
        'string_mask = utf8only',
        '[ policy_any ]',
        'countryName = optional',
        '[ req ]',
        'distinguished_name = req_dn',
        'utf8 = yes',
        'string_mask = utf8only',
        '[ req_dn ]',
        '[ crl_ext ]',
        'authorityKeyIdentifier = keyid:always',
        o.crlExtensions ?? '',
        '[ ext ]',
        o.extensions ?? '',
        o.sections ?? '',
        '',
      ].join('\n'),
    );
    return path;
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new Error(`${name} is already used in this PKI`);
    this.names.add(name);
  }

  /** Issues a certificate with `openssl ca` (issuer 'self': self-signed with its own key, `-selfsign`). */
  issue(issuer: Cert | 'self', spec: IssueSpec): Cert {
    this.claim(spec.name);
    const self = issuer === 'self';
    const signerKey = self ? spec.key : issuer.key;
    const notBefore = spec.notBefore ?? new Date(Date.now() - DAY);
    const notAfter = spec.notAfter ?? new Date(Date.now() + 365 * DAY);
    // The issuer's own database, or a throwaway one: a self-signed certificate has no issuer yet,
    // and an unrecorded one must stay out of the index that CRLs and the OCSP responder read.
    let db: { dir: string; index: string };
    if (!self && spec.record !== false) db = this.database(issuer);
    else {
      const dir = join(this.dir, `scratch-db-${++this.scratch}`);
      mkdirSync(join(dir, 'new'), { recursive: true });
      writeFileSync(join(dir, 'index.txt'), '');
      writeFileSync(join(dir, 'index.txt.attr'), 'unique_subject = no\n');
      db = { dir, index: join(dir, 'index.txt') };
    }
    writeFileSync(join(db.dir, 'serial'), `${spec.serial ?? randomSerial(spec.highBit)}\n`);
    const cfg = this.config({
      db: db.dir,
      index: db.index,
      ...(self ? {} : { issuer }),
      issuerKey: signerKey,
      extensions: spec.extensions,
      ...(spec.sections ? { sections: spec.sections } : {}),
    });
    const csr = join(this.dir, `${spec.name}.csr`);
    const pemPath = join(this.dir, `${spec.name}.pem`);
    openssl(['req', '-new', '-config', cfg, '-key', spec.key.path, '-subj', spec.subject, '-utf8', '-out', csr], this.dir);
    openssl(
      [
        'ca', '-batch', '-notext', '-config', cfg, '-preserveDN', '-in', csr, '-out', pemPath,
        '-extensions', 'ext', '-md', spec.md ?? 'sha256',
        '-startdate', opensslTime(notBefore), '-enddate', opensslTime(notAfter),
        ...(self ? ['-selfsign', '-keyfile', spec.key.path] : []),
      ],
      this.dir,
    );
    const pem = readFileSync(pemPath, 'utf8');
    const der = pemToDer(pem);
    const derPath = join(this.dir, `${spec.name}.der`);
    writeFileSync(derPath, der);
    const serial = new X509Certificate(der).serialNumber.toUpperCase().replace(/^(00)+(?=[0-9A-F]{2})/, '');
    return { name: spec.name, subject: spec.subject, pemPath, derPath, pem, der, serial, key: spec.key, notBefore, notAfter };
  }

  /** `openssl ca -revoke`: marks the certificate revoked in its issuer's database. */
  revoke(issuer: Cert, cert: Cert, reason = 'keyCompromise'): void {
    const db = this.database(issuer);
    openssl(['ca', '-config', this.config({ db: db.dir, index: db.index, issuer, issuerKey: issuer.key }), '-revoke', cert.pemPath, '-crl_reason', reason], this.dir);
  }

  /** `openssl ca -gencrl` from the issuer's database as it is now (signed with the issuer's key unless `signer`). */
  crl(
    issuer: Cert,
    o: {
      name: string;
      lastUpdate?: Date;
      nextUpdate?: Date;
      md?: string;
      /** Lines added to the CRL's extensions (issuingDistributionPoint, an unknown critical one…). */
      extensions?: string;
      sections?: string;
    },
  ): Crl {
    this.claim(`crl:${o.name}`);
    const db = this.database(issuer);
    const cfg = this.config({
      db: db.dir,
      index: db.index,
      issuer,
      issuerKey: issuer.key,
      ...(o.extensions ? { crlExtensions: o.extensions } : {}),
      ...(o.sections ? { sections: o.sections } : {}),
    });
    const pemPath = join(this.dir, `${o.name}.crl.pem`);
    const lastUpdate = o.lastUpdate ?? new Date(Date.now() - 3_600_000);
    const nextUpdate = o.nextUpdate ?? new Date(lastUpdate.getTime() + 7 * DAY);
    openssl(
      [
        'ca', '-gencrl', '-config', cfg, '-crlexts', 'crl_ext', '-md', o.md ?? 'sha256', '-out', pemPath,
        '-crl_lastupdate', opensslTime(lastUpdate), '-crl_nextupdate', opensslTime(nextUpdate),
      ],
      this.dir,
    );
    const pem = readFileSync(pemPath, 'utf8');
    const der = pemToDer(pem);
    const derPath = join(this.dir, `${o.name}.crl`);
    writeFileSync(derPath, der);
    return { name: o.name, pemPath, derPath, pem, der };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface VerifyFiles {
  leaf: PemFile;
  trusted: readonly PemFile[];
  untrusted?: readonly PemFile[];
  crls?: readonly PemFile[];
}

export interface VerifyOracleOptions {
  /** -crl_check_all (default true); false: -crl_check, the leaf's CRL only. */
  crlCheckAll?: boolean;
  attime: Date;
  /** e.g. 'sslclient' (EKU clientAuth, keyUsage digitalSignature when present). */
  purpose?: string;
  /** With -explicit_policy: the leaf must carry this policy. */
  policy?: string;
  /** -auth_level: 1 refuses SHA-1 and MD5 signatures, 2 also RSA below 2048 bits. */
  authLevel?: number;
  /** -partial_chain: a trusted certificate that is not self-signed may end the path. */
  partialChain?: boolean;
}

export interface OracleVerdict {
  ok: boolean;
  /** openssl's "error N at D depth lookup: …" lines: what it refused and why. */
  errors: string[];
  output: string;
}

let bundles = 0;

/** `openssl verify -x509_strict -crl_check_all -CAfile … -untrusted … -CRLfile … -attime …`, nothing from the system store. */
export function opensslVerify(files: VerifyFiles, o: VerifyOracleOptions): OracleVerdict {
  const dir = mkdtempSync(join(tmpdir(), `cpsd-verify-${++bundles}-`));
  try {
    const write = (name: string, items: readonly PemFile[]): string => {
      const path = join(dir, name);
      writeFileSync(path, items.map((i) => readFileSync(i.pemPath, 'utf8')).join(''));
      return path;
    };
    const args = ['verify', '-x509_strict', '-no-CApath', '-no-CAstore', '-CAfile', write('trusted.pem', files.trusted)];
    if (files.untrusted && files.untrusted.length > 0) args.push('-untrusted', write('untrusted.pem', files.untrusted));
    args.push(o.crlCheckAll === false ? '-crl_check' : '-crl_check_all');
    if (files.crls && files.crls.length > 0) args.push('-CRLfile', write('crls.pem', files.crls));
    args.push('-attime', String(Math.floor(o.attime.getTime() / 1000)));
    if (o.purpose) args.push('-purpose', o.purpose);
    if (o.policy) args.push('-policy', o.policy, '-explicit_policy');
    if (o.authLevel !== undefined) args.push('-auth_level', String(o.authLevel));
    if (o.partialChain) args.push('-partial_chain');
    args.push(files.leaf.pemPath);
    const run = spawnSync('openssl', args, { encoding: 'utf8', timeout: 20_000 });
    if (run.error) throw run.error;
    const output = `${run.stdout}${run.stderr}`;
    const errors = [...output.matchAll(/^error \d+ at \d+ depth lookup: .*$/gm)].map((m) => m[0]);
    if (run.status === 0 && /: OK$/m.test(run.stdout)) return { ok: true, errors, output };
    // A failure without a verification error is the harness's fault (a file openssl could not load…), not a verdict.
    if (errors.length === 0) throw new Error(`openssl verify gave no verdict:\n${output}`);
    return { ok: false, errors, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface OcspVerdict {
  status: 'good' | 'revoked' | 'unknown' | undefined;
  /** "Response verify OK": signer authorised, nonce matched. */
  verified: boolean;
  output: string;
}

/**
 * What openssl's own OCSP client says about a certificate. Asynchronous: the responder may be a server
 * of this very process (the router), which a blocking spawnSync would starve.
 */
export async function opensslOcspQuery(o: { cert: PemFile; issuer: PemFile; url: string; trusted: readonly PemFile[]; untrusted?: readonly PemFile[] }): Promise<OcspVerdict> {
  const dir = mkdtempSync(join(tmpdir(), 'cpsd-ocsp-q-'));
  try {
    const trusted = join(dir, 'trusted.pem');
    writeFileSync(trusted, o.trusted.map((i) => readFileSync(i.pemPath, 'utf8')).join(''));
    const args = ['ocsp', '-issuer', o.issuer.pemPath, '-cert', o.cert.pemPath, '-url', o.url, '-CAfile', trusted, '-no-CApath', '-no-CAstore', '-timeout', '5'];
    if (o.untrusted && o.untrusted.length > 0) {
      const untrusted = join(dir, 'untrusted.pem');
      writeFileSync(untrusted, o.untrusted.map((i) => readFileSync(i.pemPath, 'utf8')).join(''));
      args.push('-verify_other', untrusted);
    }
    let output: string;
    try {
      const run = await execFileAsync('openssl', args, { encoding: 'utf8', timeout: 15_000 });
      output = `${run.stdout}${run.stderr}`;
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string };
      output = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    }
    const status = /: (good|revoked|unknown)$/m.exec(output)?.[1] as OcspVerdict['status'];
    return { status, verified: /^Response verify OK$/m.test(output), output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/* ------------------------------------------------------------------ network: loopback only ------ */

export const LOOPBACK = '127.0.0.1';

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}


export interface Responder {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** What openssl printed (stderr), for failure messages. */
  log(): string;
}

/**
 * `openssl ocsp` as a responder on a free port. openssl 3.0's `-port` takes no host and listens on every
 * address; clients only ever use 127.0.0.1, and the process is bounded by `timeout`, `-nrequest` and stop().
 */
export interface ResponderOptions {
  index: string;
  ca: PemFile;
  signer: Cert;
  /** nextUpdate = thisUpdate + nmin minutes (or ndays); without either openssl omits nextUpdate. */
  nmin?: number;
  ndays?: number;
  nrequest?: number;
  lifetimeSeconds?: number;
}

/** The port is free when picked but could be taken before openssl binds it: a few tries. */
export async function startOcspResponder(o: ResponderOptions): Promise<Responder> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startResponderOnce(o);
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function startResponderOnce(o: ResponderOptions): Promise<Responder> {
  const port = await freePort();
  const args = [
    '-s', 'TERM', String(o.lifetimeSeconds ?? 300),
    'openssl', 'ocsp', '-port', String(port), '-index', o.index, '-CA', o.ca.pemPath,
    '-rsigner', o.signer.pemPath, '-rkey', o.signer.key.path, '-nrequest', String(o.nrequest ?? 500),
  ];
  if (o.nmin !== undefined) args.push('-nmin', String(o.nmin));
  if (o.ndays !== undefined) args.push('-ndays', String(o.ndays));
  // Own process group, so that stop() ends timeout and openssl together, and nothing else.
  const child: ChildProcess = spawn('timeout', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', () => {
      exited = true;
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (exited || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return; // already gone
    }
    await Promise.race([exit, sleep(3000)]);
    if (!exited) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  const deadline = Date.now() + 10_000;
  while (!listening(port)) {
    if (exited) throw new Error(`openssl ocsp exited before listening:\n${log}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`openssl ocsp did not listen on ${port} within 10 s:\n${log}`);
    }
    await sleep(20);
  }
  return { url: `http://${LOOPBACK}:${port}`, port, stop, log: () => log };
}

export interface HttpStub {
  url: string;
  port: number;
  /** Paths requested, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** A node:http server on 127.0.0.1 answering with the handler (or 404). */
export async function startHttp(handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void, port = 0): Promise<HttpStub> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createHttpServer((req, res) => {
    requests.push(req.url ?? '');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks)));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, LOOPBACK, resolve);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `http://${LOOPBACK}:${address.port}`,
    port: address.port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Serves fixed bodies by path (DER CRLs as application/pkix-crl). */
export function startFileServer(files: ReadonlyMap<string, Uint8Array>, port = 0): Promise<HttpStub> {
  return startHttp((req, res) => {
    const body = files.get(new URL(req.url ?? '/', 'http://x').pathname);
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/pkix-crl', 'Content-Length': body.length }).end(body);
  }, port);
}

/** Accepts TCP connections and never answers: a responder that hangs. */
export async function startBlackhole(): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createNetServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `http://${LOOPBACK}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** DER TLV at offset: where its value starts and ends (definite lengths only, as DER has). */
function tlv(der: Uint8Array, offset: number): { tag: number; start: number; end: number } {
  const tag = der[offset] ?? 0;
  let length = der[offset + 1] ?? 0;
  let start = offset + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (der[start + i] ?? 0);
    start += n;
  }
  return { tag, start, end: start + length };
}

/** SHA-1 and SHA-256 of a CA's subjectPublicKey: the issuerKeyHash an OCSP request names it by. */
export function issuerKeyHashes(ca: Cert): Buffer[] {
  const spki = new Uint8Array(new X509Certificate(ca.der).publicKey.export({ type: 'spki', format: 'der' }));
  const outer = tlv(spki, 0);
  const algorithm = tlv(spki, outer.start);
  const bits = tlv(spki, algorithm.end);
  const key = spki.subarray(bits.start + 1, bits.end); // after the unused-bits octet
  return ['sha1', 'sha256'].map((h) => createHash(h).update(key).digest());
}

const NONCE_OID = Buffer.from('06092b0601050507300102', 'hex'); // id-pkix-ocsp-nonce

/**
 * The OCSP request with its nonce changed (last octet flipped, same length, so still valid DER), or
 * undefined when it carries no nonce. The responder then signs, correctly, an answer to another nonce.
 */
export function tamperOcspNonce(request: Uint8Array): Uint8Array | undefined {
  const der = Buffer.from(request);
  const at = der.indexOf(NONCE_OID);
  if (at < 0) return undefined;
  let next = at + NONCE_OID.length;
  if (der[next] === 0x01) next = tlv(der, next).end; // critical BOOLEAN
  const value = tlv(der, next); // extnValue OCTET STRING (its content: the nonce, or an OCTET STRING of it)
  if (value.tag !== 0x04 || value.end <= value.start) return undefined;
  der[value.end - 1] = (der[value.end - 1] ?? 0) ^ 0xff;
  return new Uint8Array(der);
}

export interface OcspRouterEntry {
  path: string;
  method: string;
  /** Name of the CA the request asks about, or undefined. */
  issuer: string | undefined;
  nonce: boolean;
  /** The nonce was changed before forwarding. */
  tampered: boolean;
}

export interface OcspRouter extends HttpStub {
  /** Sends requests about the CA's certificates to that responder URL (replacing any earlier route). */
  route(ca: Cert, responder: string): void;
  /** Change the nonce of requests before forwarding (the answer then echoes another nonce). */
  tamperNonce: boolean;
  log: OcspRouterEntry[];
}

/**
 * One loopback URL for every OCSP request, dispatched to the responder of the CA the request is about
 * (found by its issuerKeyHash), GET (RFC 6960 A.1) or POST alike; optionally tampers with the nonce.
 * Started before any certificate exists, since its URL goes into their AIA.
 */
export async function startOcspRouter(): Promise<OcspRouter> {
  const routes = new Map<string, { name: string; hashes: Buffer[]; target: string }>();
  const self: { router?: OcspRouter } = {}; // read by the handler, so that tamperNonce can be a plain property
  const stub = await startHttp((req, res, body) => {
    void (async () => {
      let request: Uint8Array = body;
      if (req.method === 'GET') {
        const tail = (req.url ?? '/').replace(/^\/designated/, '').replace(/^\//, '');
        request = new Uint8Array(Buffer.from(decodeURIComponent(tail), 'base64'));
      }
      const der = Buffer.from(request);
      const route = [...routes.values()].find((r) => r.hashes.some((h) => der.indexOf(h) >= 0));
      const entry = { path: req.url ?? '', method: req.method ?? '', issuer: route?.name, nonce: der.indexOf(NONCE_OID) >= 0, tampered: false };
      self.router?.log.push(entry);
      if (!route) {
        res.writeHead(404).end();
        return;
      }
      const tampered = self.router?.tamperNonce ? tamperOcspNonce(request) : undefined;
      if (tampered) {
        request = tampered;
        entry.tampered = true;
      }
      try {
        const answer = await fetch(`${route.target}/`, {
          method: 'POST',
          body: new Uint8Array(request),
          headers: { 'Content-Type': 'application/ocsp-request' },
          signal: AbortSignal.timeout(5000),
        });
        const bytes = new Uint8Array(await answer.arrayBuffer());
        res.writeHead(answer.status, { 'Content-Type': 'application/ocsp-response', 'Content-Length': bytes.length }).end(bytes);
      } catch {
        res.writeHead(502).end();
      }
    })();
  });
  const router: OcspRouter = Object.assign(stub, {
    route: (ca: Cert, target: string) => void routes.set(ca.name, { name: ca.name, hashes: issuerKeyHashes(ca), target }),
    tamperNonce: false,
    log: [] as OcspRouterEntry[],
  });
  self.router = router;
  return router;
}

/** Synchronous openssl call for tests that need a one-off command (e.g. printing a CRL). */
export function opensslText(args: readonly string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', timeout: 20_000 });
}
