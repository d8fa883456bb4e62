/**
 * Document signatures with the in-process virtual card (the card signs the hash as `sign.hash` has it
 * sign), and the independent judges: poppler's pdfsig with an NSS database, and openssl cms.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { openCard } from '../../cards/index.js';
import { Pin } from '../../cards/pin.js';
import { fixtureCard, loadProfile, profileNames } from '../../sim/cps/fixtures.js';
import { nss, nssDb } from './nss.js';
import { ROOT } from './public-site.js';

export const PKI = join(ROOT, 'fixtures/pki');
export const ROOT_CA = readFileSync(join(PKI, 'root.der'));
export const INTERMEDIATE = readFileSync(join(PKI, 'intermediate.der'));

/** A card of a fixture profile, its PIN verified: signs a SHA-256 with its signing (or authentication) key. */
export async function virtualSigner(profile: string): Promise<{
  signCertificate: Uint8Array;
  authCertificate: Uint8Array;
  sign: (hash: Uint8Array) => Promise<Uint8Array>;
  signWithAuthenticationKey: (hash: Uint8Array) => Promise<Uint8Array>;
}> {
  const virtual = fixtureCard(profile);
  const card = openCard({ transmit: async (c) => virtual.transmit(c) }, virtual.atr);
  await card.verifyPin(new Pin(loadProfile(profile).pin));
  const signCertificate = await card.certificate('sign');
  const authCertificate = await card.certificate('auth');
  return {
    signCertificate,
    authCertificate,
    // sign.hash: PSO: COMPUTE DIGITAL SIGNATURE over the hash, PKCS#1 v1.5 (daemon/methods.ts).
    sign: (hash) => card.sign('sha256', { digest: hash }),
    signWithAuthenticationKey: (hash) => card.authenticate(Uint8Array.from([...Buffer.from('3031300d060960864801650304020105000420', 'hex'), ...hash])),
  };
}

/** A PDF of `pages` pages made by pdf-lib; `xrefStreams` keeps pdf-lib's default cross-reference streams. */
export async function samplePdf(options: { pages?: number; text?: string; xrefStreams?: boolean } = {}): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (let i = 0; i < (options.pages ?? 1); i++) {
    doc.addPage([595, 842]).drawText(`${options.text ?? 'Ordonnance'} — page ${i + 1}`, { x: 50, y: 780, size: 14, font });
  }
  return doc.save({ useObjectStreams: options.xrefStreams === true });
}

/** An NSS database trusting the test IGC-Santé root (as a PDF reader's would), the intermediate known. */
export function trustingDb(dir: string): string {
  const db = nssDb(dir);
  nss(['certutil', '-A', '-d', db, '-n', 'igc-sante-root', '-t', 'CT,C,C', '-i', join(PKI, 'root.der')]);
  nss(['certutil', '-A', '-d', db, '-n', 'igc-sante-fort-personnes', '-t', ',,', '-i', join(PKI, 'intermediate.der')]);
  return db;
}

/** pdfsig's report (it exits non-zero on an invalid signature: the output is what is judged). */
export function pdfsig(file: string, db: string): string {
  const r = spawnSync('pdfsig', ['-nssdir', db, file], { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`;
}

/** The report of each signature, "Signature #1:" … split. */
export function pdfsigSignatures(report: string): string[] {
  return report.split(/^Signature #\d+:$/m).slice(1);
}

/**
 * pdfsig's reports on `files`, with the IGC-Santé OCSP responder reachable at the certificates' own AIA
 * (http://igc-sante.test/ocsp): pdfsig asks it (NSS refuses a certificate whose responder cannot be
 * reached, and its -no-ocsp refuses them all), so `openssl ocsp` answers from an index of the fixture
 * cards' signing certificates (profile `revoked`: revoked). In a network and mount namespace of their
 * own (root, as in CI): port 80 and /etc/hosts there are nobody else's.
 */
export function pdfsigWithOcsp(files: readonly string[], db: string, dir: string): string[] {
  const index = profileNames()
    .filter((p) => existsSync(join(PKI, 'cards', p, 'sign.der')))
    .map((p) => {
      const serial = nss(['openssl', 'x509', '-inform', 'der', '-in', join(PKI, 'cards', p, 'sign.der'), '-noout', '-serial']).trim().split('=')[1] as string;
      return p === 'revoked' ? `R\t491231235959Z\t250601000000Z,keyCompromise\t${serial}\tunknown\t/CN=${p}` : `V\t491231235959Z\t\t${serial}\tunknown\t/CN=${p}`;
    });
  writeFileSync(join(dir, 'index.txt'), `${index.join('\n')}\n`);
  writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost igc-sante.test\n');
  const pem = (der: string, out: string): string => (nss(['openssl', 'x509', '-inform', 'der', '-in', join(PKI, der), '-out', join(dir, out)]), join(dir, out));
  const script = [
    'set -e',
    'ip link set lo up',
    `mount --bind ${join(dir, 'hosts')} /etc/hosts`,
    `openssl ocsp -index ${join(dir, 'index.txt')} -port 80 -rsigner ${pem('ocsp-responder.der', 'responder.pem')} -rkey ${join(PKI, 'ocsp-responder.key.pem')} -CA ${pem('intermediate.der', 'intermediate.pem')} -nmin 60 -ignore_err >${join(dir, 'ocsp.log')} 2>&1 &`,
    'trap "kill $!" EXIT',
    // Listening? (ss, not a probe connection: the responder serves one connection at a time.)
    'for i in $(seq 200); do ss -ltn | grep -q ":80 " && break; sleep 0.05; done',
    'for f in "$@"; do echo "=== $f"; timeout 30 pdfsig -nssdir "' + db + '" "$f" 2>&1 || true; done',
  ].join('\n');
  const r = spawnSync('unshare', ['-mn', 'bash', '-c', script, 'pdfsig', ...files], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`pdfsig in its namespace failed (${r.status}): ${r.stderr}`);
  return r.stdout.split(/^=== .*$/m).slice(1);
}
