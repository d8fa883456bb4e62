/**
 * docs/signing.md's example runs: its `sign-server` block (the editor's server) is written to a file as
 * it is, `cpsd/sign` pointed at this checkout, and driven with the virtual card as the workstation (the
 * card signs the hash as sign.hash does); pdfsig judges the PDF it returns.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { ROOT, docBlocks } from '../helpers/doc-blocks.js';
import { pdfsigWithOcsp, samplePdf, trustingDb, virtualSigner } from '../helpers/sign.js';

const dir = mkdtempSync(join(tmpdir(), 'cpsd-sign-docs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Example {
  prepare(pdf: Uint8Array, signingCertificate: string): Promise<{ hash: string; state: string }>;
  finish(state: string, signature: string, pdf: Uint8Array): Promise<Uint8Array>;
}

it('docs/signing.md: every block is run or says why not, and the editor\'s server example signs a PDF that pdfsig accepts', async () => {
  const blocks = docBlocks('docs/signing.md').filter((b) => b.lang === 'ts');
  for (const b of blocks) expect(b.run !== null || b.notRun, `${b.where}: <!-- run: … --> or <!-- not run: … -->`).toBe(true);
  const server = blocks.filter((b) => b.run === 'sign-server');
  expect(server).toHaveLength(1);
  const file = join(dir, 'server.ts');
  writeFileSync(file, (server[0]?.code ?? '').replace("from 'cpsd/sign'", `from ${JSON.stringify(join(ROOT, 'sign/index.js'))}`));
  const example = (await import(pathToFileURL(file).href)) as Example;

  const card = await virtualSigner('doctor');
  const pdf = await samplePdf({ text: 'Ordonnance Dupont' });
  const { hash, state } = await example.prepare(pdf, Buffer.from(card.signCertificate).toString('base64'));
  // The workstation: sign.hash answers base64 signature (daemon/methods.ts).
  const signature = Buffer.from(await card.sign(Buffer.from(hash, 'base64url'))).toString('base64');
  const signed = await example.finish(state, signature, pdf);
  writeFileSync(join(dir, 'signed.pdf'), signed);
  const [report] = pdfsigWithOcsp([join(dir, 'signed.pdf')], trustingDb(join(dir, 'db')), dir);
  expect(report).toContain('Signature is Valid.');
  expect(report).toContain('Certificate is Trusted.');
});
