/**
 * `npm run bench:sign`: server-side prepare + finish of a PAdES signature for a 1 MB and a 50 MB PDF
 * (p50 of a few runs), and the process's peak memory; the card's part is the virtual card's signature of
 * the 32-byte hash (the card never sees the PDF). Figures printed, never asserted.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PDFDocument } from 'pdf-lib';
import { openCard } from '../cards/index.js';
import { Pin } from '../cards/pin.js';
import { fixtureCard, fixturesDir } from '../sim/cps/fixtures.js';
import { finishPdf, preparePdf } from '../sign/index.js';

async function pdfOf(bytes: number): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  doc.addPage();
  await doc.attach(randomBytes(bytes), 'data.bin', { mimeType: 'application/octet-stream' });
  return doc.save({ useObjectStreams: false });
}

const virtual = fixtureCard('doctor');
let apdus = 0;
const card = openCard({ transmit: async (c) => (apdus++, virtual.transmit(c)) }, virtual.atr);
await card.verifyPin(new Pin('1234'));
const certificate = await card.certificate('sign');
const intermediate = readFileSync(join(fixturesDir(), 'pki', 'intermediate.der'));

for (const mb of [1, 50]) {
  const pdf = await pdfOf(mb * 1024 * 1024);
  const times: number[] = [];
  let cardApdus = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const { hash, state } = await preparePdf(pdf, { signerCertificate: certificate, chain: [intermediate] });
    const t1 = performance.now();
    const before = apdus;
    const signature = await card.sign('sha256', { digest: hash });
    cardApdus = apdus - before;
    const t2 = performance.now();
    finishPdf(state, signature, pdf);
    times.push(t1 - t0 + (performance.now() - t2));
  }
  times.sort((a, b) => a - b);
  console.log(`${mb} MB PDF (${pdf.length} bytes): prepare + finish p50 ${times[2]?.toFixed(1)} ms; card: ${cardApdus} APDUs for the signature (PIN already verified); rss peak ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
}
