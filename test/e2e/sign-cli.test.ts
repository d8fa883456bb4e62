/**
 * `cpsd sign` and `cpsd verify-signature` through the real pcscd + vpcd with the virtual CPS3 and CPS4
 * cards, the signed files judged by independent programs: poppler's pdfsig (NSS: the test root trusted,
 * the OCSP responder at the certificates' AIA, in a namespace of its own), `openssl cms -verify`, and qpdf
 * (a PDF with object streams and a cross-reference stream, first signed by pdfsig -add-signature); and
 * the documented sessions of docs/cli.md and docs/signing.md, run as they are written.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../sim/cps/fixtures.js';
import { docBlocks } from '../helpers/doc-blocks.js';
import { VPCD_READER } from '../helpers/pcscd.js';
import { nss } from '../helpers/nss.js';
import { PKI, pdfsigSignatures, pdfsigWithOcsp, samplePdf, trustingDb } from '../helpers/sign.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const CLI = fileURLToPath(new URL('../../dist/cli/cpsd.js', import.meta.url));
const INTERMEDIATE_DER = join(PKI, 'intermediate.der');
const dir = mkdtempSync(join(tmpdir(), 'cpsd-sign-cli-'));
const cacheHome = join(dir, 'cache');
const vr = useVirtualReader();
let db: string;

beforeAll(() => {
  db = trustingDb(join(dir, 'nssdb'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** The built CLI, the PIN (if any) as one line of standard input, as a script gives it. */
function cpsd(args: string[], input = '', env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: { ...process.env, XDG_CACHE_HOME: cacheHome, LANG: 'C', ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input);
  });
}

const sign = (file: string, extra: string[] = [], pin = '1234\n', env: Record<string, string> = {}): Promise<Result> =>
  cpsd(['sign', file, '--reader', VPCD_READER, '--chain', INTERMEDIATE_DER, ...extra], pin, env);

const file = (name: string, bytes: Uint8Array | string): string => {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
};

async function triesLeft(): Promise<number> {
  const r = await cpsd(['status', '--json', '--reader', VPCD_READER]);
  return (JSON.parse(r.stdout) as { pin: { triesLeft: number } }).pin.triesLeft;
}

/** pdfsig's "Signature Validation:" lines, in file order. */
const validations = (report: string): string[] => pdfsigSignatures(report).map((s) => /Signature Validation: (.*)/.exec(s)?.[1] ?? '?');

describe.each([
  ['doctor', 'CPS3'],
  ['nurse', 'CPS4'],
])('cpsd sign with the %s card (%s)', (profile, generation) => {
  const holder = loadProfile(profile).holder;
  const pdf = join(dir, `${profile}.pdf`);
  const text = join(dir, `${profile}.txt`);
  let original: Buffer;
  let signed: Result;
  let cosigned: Result;
  let cades: Result;
  let reports: string[];

  beforeAll(async () => {
    expect(loadProfile(profile).generation).toBe(generation);
    original = Buffer.from(await samplePdf({ pages: 2, text: `Ordonnance ${profile}` }));
    writeFileSync(pdf, original);
    writeFileSync(text, `Compte rendu ${profile}\n`);
    await vr.insert({ profile });
    signed = await sign(pdf, ['--reason', 'Ordonnance', '--location', 'Paris']);
    cosigned = await sign(join(dir, `${profile}-signed.pdf`));
    cades = await sign(text, ['--json']);
    await vr.remove();
    reports = pdfsigWithOcsp([join(dir, `${profile}-signed.pdf`), join(dir, `${profile}-signed-signed.pdf`)], db, dir);
  }, 90_000);

  it('signs the PDF into FILE-signed.pdf and says so, the input untouched', () => {
    expect(signed.stderr).toBe('');
    expect(signed.code).toBe(0);
    expect(signed.stdout).toBe(`Signed (PAdES) by ${holder.firstName} ${holder.lastName}: ${join(dir, `${profile}-signed.pdf`)}\n`);
    expect(readFileSync(pdf).equals(original)).toBe(true);
    // An incremental update: every byte of the original first.
    expect(readFileSync(join(dir, `${profile}-signed.pdf`)).subarray(0, original.length).equals(original)).toBe(true);
  });

  it('pdfsig: valid, ETSI.CAdES.detached, the holder as signer, trusted, whole document', () => {
    const [one, ...more] = pdfsigSignatures(reports[0] as string);
    expect(more).toHaveLength(0);
    expect(one).toContain('Signature Validation: Signature is Valid.');
    expect(one).toContain('Signature Type: ETSI.CAdES.detached');
    expect(one).toContain(`SN=${holder.lastName}`);
    expect(one).toContain(`givenName=${holder.firstName}`);
    expect(one).toContain('Certificate Validation: Certificate is Trusted.');
    expect(one).toContain('Total document signed');
  });

  it('pdfsig: a co-signature of the signed PDF keeps the first one valid', () => {
    expect(cosigned.code).toBe(0);
    const both = pdfsigSignatures(reports[1] as string);
    expect(validations(reports[1] as string)).toEqual(['Signature is Valid.', 'Signature is Valid.']);
    expect(both[0]).toContain('Not total document signed');
    expect(both[1]).toContain('Total document signed');
  });

  it('CAdES: FILE.p7s that openssl cms -verify accepts against the test root, and refuses for a changed file', () => {
    expect(cades.code).toBe(0);
    expect(JSON.parse(cades.stdout)).toEqual({ ok: true, file: `${text}.p7s`, format: 'cades', signer: { surname: holder.lastName, givenName: holder.firstName, nationalId: holder.idNat } });
    const rootPem = join(dir, 'root.pem');
    nss(['openssl', 'x509', '-inform', 'der', '-in', join(PKI, 'root.der'), '-out', rootPem]);
    const verify = (content: string): string => {
      try {
        return execFileSync('openssl', ['cms', '-verify', '-binary', '-content', content, '-inform', 'DER', '-in', `${text}.p7s`, '-CAfile', rootPem, '-out', '/dev/null'], { encoding: 'utf8', stdio: 'pipe' });
      } catch (error) {
        return `failed: ${String((error as { stderr?: string }).stderr)}`;
      }
    };
    expect(verify(text)).not.toMatch(/^failed/);
    expect(verify(file(`${profile}-changed.txt`, `Compte rendu ${profile}!\n`))).toContain('CMS Verification failure');
  });

  it('cpsd verify-signature names the holder and the time of each signature of the co-signed PDF', async () => {
    const r = await cpsd(['verify-signature', join(dir, `${profile}-signed-signed.pdf`), '--trust', PKI, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { valid: boolean; format: string; signatures: { field: string; holder: { surname: string; nationalId: string }; claimedSigningTime: string; coversWholeDocument: boolean }[] };
    expect(report).toMatchObject({ valid: true, format: 'pades' });
    expect(report.signatures.map((s) => [s.field, s.holder.surname, s.holder.nationalId, s.coversWholeDocument])).toEqual([
      ['Signature1', holder.lastName, holder.idNat, false],
      ['Signature2', holder.lastName, holder.idNat, true],
    ]);
    for (const s of report.signatures) expect(Math.abs(Date.parse(s.claimedSigningTime) - Date.now())).toBeLessThan(120_000);
  });

  it('cpsd verify-signature of the .p7s (content found beside it): valid, the holder named', async () => {
    const r = await cpsd(['verify-signature', `${text}.p7s`, '--trust', PKI]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`valid signature of ${holder.firstName} ${holder.lastName} (${holder.idNat})`);
    expect(r.stdout).toMatch(/signing time \(claimed by the signer\): \d{4}-\d\d-\d\dT/);
  });
});

/** An NSS database holding the pharmacist card's test signing key and certificate, for pdfsig -add-signature. */
function keyDb(): string {
  const path = join(dir, 'keydb');
  if (existsSync(path)) return `sql:${path}`;
  mkdirSync(path);
  nss(['certutil', '-N', '-d', `sql:${path}`, '--empty-password']);
  const certPem = join(dir, 'pharmacist.pem');
  nss(['openssl', 'x509', '-inform', 'der', '-in', join(PKI, 'cards/pharmacist/sign.der'), '-out', certPem]);
  const p12 = join(dir, 'pharmacist.p12');
  nss(['openssl', 'pkcs12', '-export', '-inkey', join(PKI, 'cards/pharmacist/sign.key.pem'), '-in', certPem, '-name', 'pharmacist', '-passout', 'pass:', '-out', p12]);
  nss(['pk12util', '-i', p12, '-d', `sql:${path}`, '-W', '']);
  return `sql:${path}`;
}

describe.each([
  ['a cross-reference stream (object streams by qpdf)', 'stream'],
  ['a cross-reference table', 'table'],
] as const)('cpsd sign: a PDF with %s, already signed by pdfsig -add-signature', (_, kind) => {
  let signedByPoppler: string;
  let cosignedFile: string;
  let cosigned: Result;
  let report: string;

  beforeAll(async () => {
    // pdfsig -add-signature signs (the pharmacist's test key) by an incremental update of the PDF's own
    // kind (another XRef stream after qpdf's), and ends the file with CR LF, which its signature covers.
    const plain = file(`${kind}-plain.pdf`, await samplePdf());
    const input = join(dir, `${kind}-input.pdf`);
    if (kind === 'stream') execFileSync('qpdf', ['--object-streams=generate', plain, input]);
    else writeFileSync(input, readFileSync(plain));
    signedByPoppler = join(dir, `${kind}-poppler.pdf`);
    nss(['pdfsig', '-nssdir', keyDb(), '-add-signature', '-nick', 'pharmacist', '-new-signature-field-name', 'Pharmacien', input, signedByPoppler]);
    cosignedFile = join(dir, `${kind}-poppler-signed.pdf`);
    await vr.insert({ profile: 'doctor' });
    cosigned = await sign(signedByPoppler);
    await vr.remove();
    [report] = pdfsigWithOcsp([cosignedFile], db, dir) as [string];
  }, 90_000);

  it('the PDF signed by poppler is of that kind, and ends with CR LF', () => {
    const bytes = readFileSync(signedByPoppler).toString('latin1');
    const startxref = Number(/startxref\s+(\d+)\s+%%EOF\r\n$/.exec(bytes)?.[1]);
    if (kind === 'stream') {
      expect(bytes).toContain('/Type /ObjStm');
      expect(bytes.slice(startxref, startxref + 200)).toMatch(/^\d+ 0 obj\s*<<[^]*\/Type\s*\/XRef/);
    } else {
      expect(bytes.slice(startxref, startxref + 4)).toBe('xref');
    }
  });

  it('cpsd co-signs it by an incremental update: every signed byte is kept', () => {
    expect(cosigned.stderr).toBe('');
    expect(cosigned.code).toBe(0);
    const before = readFileSync(signedByPoppler);
    expect(readFileSync(cosignedFile).subarray(0, before.length).equals(before)).toBe(true);
  });

  it('pdfsig: the first signature is still valid, the second valid and covering the whole file', () => {
    expect(validations(report)).toEqual(['Signature is Valid.', 'Signature is Valid.']);
    const [first, second] = pdfsigSignatures(report);
    expect(first).toContain('Signature Field Name: Pharmacien');
    expect(first).toContain('Not total document signed');
    expect(second).toContain('Signature Type: ETSI.CAdES.detached');
    expect(second).toContain('SN=MEDECIN-TEST');
    expect(second).toContain('Total document signed');
  });

  it('qpdf --check finds the signed file sound', () => {
    const out = execFileSync('qpdf', ['--check', cosignedFile], { encoding: 'utf8' });
    expect(out).toContain('No syntax or stream encoding errors found');
  });
});

describe('cpsd sign and verify-signature refuse, with typed errors', () => {
  it('a wrong PIN costs exactly one try, says how many are left, and writes nothing', async () => {
    const pdf = file('wrong-pin.pdf', await samplePdf());
    await vr.insert({ profile: 'doctor' });
    const r = await sign(pdf, [], '9999\n');
    expect(r.code).toBe(8);
    expect(r.stderr).toContain('wrong PIN: 2 tries left [PIN_INCORRECT]');
    expect(await triesLeft()).toBe(2);
    expect(existsSync(join(dir, 'wrong-pin-signed.pdf'))).toBe(false);
  });

  it('a file named .pdf that is not a PDF: PDF_INVALID before any PIN is tried', async () => {
    const notPdf = file('not-a.pdf', 'Bonjour\n');
    await vr.insert({ profile: 'doctor' });
    const r = await sign(notPdf, [], '9999\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('this file is not a PDF, or the PDF is damaged [PDF_INVALID]');
    expect(await triesLeft()).toBe(3);
  });

  it('an encrypted PDF (qpdf --encrypt): PDF_ENCRYPTED', async () => {
    const encrypted = join(dir, 'encrypted.pdf');
    execFileSync('qpdf', ['--encrypt', 'user', 'owner', '256', '--', file('to-encrypt.pdf', await samplePdf()), encrypted]);
    await vr.insert({ profile: 'doctor' });
    const r = await sign(encrypted);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[PDF_ENCRYPTED]');
    expect(existsSync(join(dir, 'encrypted-signed.pdf'))).toBe(false);
  });

  it('a damaged PDF (truncated): PDF_INVALID', async () => {
    const whole = await samplePdf();
    const truncated = file('truncated.pdf', whole.subarray(0, whole.length - 300));
    await vr.insert({ profile: 'doctor' });
    const r = await sign(truncated);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[PDF_INVALID]');
  });

  it('a missing file: exit 1 naming it', async () => {
    const r = await sign(join(dir, 'absent.pdf'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot read the file ${join(dir, 'absent.pdf')} [ENOENT]`);
  });

  it('a contactless CPS3 has no signing key: NO_SIGNING_KEY, exit 6', async () => {
    const pdf = file('contactless.pdf', await samplePdf());
    await vr.insert({ profile: 'pharmacist', personality: 'cps3-cl' });
    const r = await sign(pdf);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('[NO_SIGNING_KEY]');
  });

  it('a card that is not a CPx card: UNSUPPORTED_CARD with its ATR, exit 6', async () => {
    const pdf = file('not-cpx.pdf', await samplePdf());
    await vr.insert();
    const r = await sign(pdf);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('[UNSUPPORTED_CARD]');
    expect(existsSync(join(dir, 'not-cpx-signed.pdf'))).toBe(false);
  });

  it('an existing output file is not replaced without --force: OUTPUT_EXISTS, exit 2', async () => {
    const pdf = file('exists.pdf', await samplePdf());
    const out = file('exists-signed.pdf', 'keep me');
    const r = await sign(pdf);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('[OUTPUT_EXISTS]');
    expect(readFileSync(out, 'utf8')).toBe('keep me');
  });

  it('in French when LANG says so', async () => {
    const pdf = file('fr.pdf', await samplePdf());
    await vr.insert({ profile: 'doctor' });
    const r = await sign(pdf, ['-o', join(dir, 'fr-signé.pdf')], '1234\n', { LANG: 'fr_FR.UTF-8' });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Signé (PAdES) par JEANNE MEDECIN-TEST : ${join(dir, 'fr-signé.pdf')}\n`);
    expect(statSync(join(dir, 'fr-signé.pdf')).size).toBeGreaterThan(statSync(pdf).size);
  });

  it('verify-signature: the signature of a revoked card (CRL in the trust folder): CERT_REVOKED, exit 9', async () => {
    const pdf = file('revoked.pdf', await samplePdf());
    await vr.insert({ profile: 'revoked' });
    expect((await sign(pdf)).code).toBe(0);
    const r = await cpsd(['verify-signature', join(dir, 'revoked-signed.pdf'), '--trust', PKI]);
    expect(r.code).toBe(9);
    expect(r.stderr).toContain('[CERT_REVOKED]');
  });

  it('verify-signature: one byte changed in the signed range: SIGNATURE_INVALID, exit 1', async () => {
    const pdf = file('tampered.pdf', await samplePdf());
    await vr.insert({ profile: 'doctor' });
    expect((await sign(pdf)).code).toBe(0);
    const bytes = readFileSync(join(dir, 'tampered-signed.pdf'));
    const at = bytes.indexOf(0x0a) + 2; // in the binary comment of line 2, which no parser reads
    bytes[at] = (bytes[at] as number) ^ 0x01;
    const r = await cpsd(['verify-signature', file('tampered-changed.pdf', bytes), '--trust', PKI]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[SIGNATURE_INVALID]');
  });

  it('verify-signature: a PDF without signature: DOCUMENT_NOT_SIGNED', async () => {
    const r = await cpsd(['verify-signature', file('unsigned.pdf', await samplePdf()), '--trust', PKI]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the document has no signature [DOCUMENT_NOT_SIGNED]');
  });
});

/**
 * The `<!-- run: cli-sign -->` blocks of docs/cli.md and docs/signing.md, run command by command in a
 * folder of their own (ordonnance.pdf, compte-rendu.txt, fixtures/pki), `cpsd` being this build, the PIN
 * 1234 on standard input where the documented terminal shows `PIN: ****`; stdout and stderr are compared
 * with the documented lines, `…` standing for anything.
 */
describe('the documented cpsd sign sessions run as shown', () => {
  const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  async function runBlocks(doc: string): Promise<void> {
    const blocks = docBlocks(doc).filter((b) => b.run === 'cli-sign');
    expect(blocks.length, `${doc}: run: cli-sign blocks`).toBeGreaterThan(0);
    const work = mkdtempSync(join(dir, 'doc-'));
    mkdirSync(join(work, 'fixtures/pki'), { recursive: true });
    for (const name of readdirSync(PKI)) if (statSync(join(PKI, name)).isFile()) symlinkSync(join(PKI, name), join(work, 'fixtures/pki', name));
    nss(['openssl', 'x509', '-inform', 'der', '-in', join(PKI, 'root.der'), '-out', join(work, 'fixtures/pki/root.pem')]);
    writeFileSync(join(work, 'ordonnance.pdf'), await samplePdf({ text: 'Ordonnance' }));
    writeFileSync(join(work, 'compte-rendu.txt'), 'Compte rendu\n');
    const bin = join(work, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'cpsd'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`, { mode: 0o755 });
    await vr.insert({ profile: 'doctor' });
    for (const block of blocks) {
      const steps = block.code.split(/^\$ /m).slice(1);
      for (const step of steps) {
        const [command = '', ...lines] = step.split('\n');
        const expected = lines.filter((l) => l !== 'PIN: ****').join('\n').trim();
        const r = spawnSync('bash', ['-c', `{ ${command} ; } 2>&1`], {
          cwd: work,
          input: '1234\n',
          encoding: 'utf8',
          env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, XDG_CACHE_HOME: cacheHome, LANG: 'C' },
        });
        const pattern = new RegExp(`^${expected.split('…').map(escape).join('[\\s\\S]*?')}$`);
        expect(r.stdout.trim(), `${block.where}: $ ${command}`).toMatch(pattern);
      }
    }
  }

  it('docs/cli.md: cpsd sign and cpsd verify-signature', async () => {
    await runBlocks('docs/cli.md');
  });

  it('docs/signing.md: from the command line, the .p7s judged by openssl', async () => {
    await runBlocks('docs/signing.md');
  });
});
