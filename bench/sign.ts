/**
 * `npm run bench:sign`: server-side prepare + finish of a PAdES signature for a 1 MB and a 50 MB PDF
 * (p50 of a few runs), and the process's peak memory; the card's part is the virtual card's signature of
 * the 32-byte hash (the card never sees the PDF). Then what one `cpsd sign` costs at the card: its two
 * card jobs (the signing certificate; same card + PIN + signature) run on the virtual CPS3 and CPS4, the
 * APDUs and bytes counted at the card and the card time modelled as a real CPS3's (sim/cps/faults.ts);
 * and the same for a `sign.hash` through the daemon (PIN in the request: its look job, then its PIN job).
 * Figures printed, never asserted.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PDFDocument } from 'pdf-lib';
import { InProcessBackend } from '../cards/backends.js';
import { openCard } from '../cards/index.js';
import { Pin } from '../cards/pin.js';
import { MemoryCardCache } from '../cards/public-data.js';
import { signHashOnCard, signerOf } from '../cli/commands/sign.js';
import { connectDaemon } from '../daemon/client.js';
import { DEFAULTS } from '../daemon/config.js';
import { Logger } from '../daemon/log.js';
import { CpsdServer } from '../daemon/server.js';
import { CPS3_TIMING } from '../sim/cps/faults.js';
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

/** APDUs, bytes (command + response) and RSA operations at the card, as the card counts them. */
interface Count {
  apdus: number;
  bytes: number;
  rsa: number;
}

/** One `cpsd sign` at the card: the same two card jobs as the command (cli/commands/sign.ts), the PIN typed. */
async function cliSignature(profile: string, cache: MemoryCardCache): Promise<Count> {
  const v = fixtureCard(profile);
  const count: Count = { apdus: 0, bytes: 0, rsa: 0 };
  const counted = openCard(
    {
      transmit: async (c) => {
        const r = await v.transmit(c);
        count.apdus++;
        count.bytes += c.length + r.length;
        if ((c[1] === 0x88 || c[1] === 0x2a) && r.length > 200) count.rsa++;
        return r;
      },
    },
    v.atr,
  );
  const signer = await signerOf(counted, cache);
  // A fresh connection for the second job, as the command's card session opens one per job.
  const again = openCard(
    {
      transmit: async (c) => {
        const r = await v.transmit(c);
        count.apdus++;
        count.bytes += c.length + r.length;
        if ((c[1] === 0x88 || c[1] === 0x2a) && r.length > 200) count.rsa++;
        return r;
      },
    },
    v.atr,
  );
  await signHashOnCard(again, signer, randomBytes(32), { value: new Pin('1234') }, false);
  return count;
}

const modelled = (c: Count): number => c.bytes * (CPS3_TIMING.microsPerByte / 1000) + c.rsa * CPS3_TIMING.rsaMillis;
console.log('\none cpsd sign at the card (certificate job + PIN and signature job), counted at the virtual card');
console.log(`card time model: ${CPS3_TIMING.microsPerByte} µs per byte on the T=0 link + ${CPS3_TIMING.rsaMillis} ms per RSA-2048 operation`);
for (const [profile, generation] of [['doctor', 'CPS3'], ['nurse', 'CPS4']] as const) {
  const cache = new MemoryCardCache();
  const first = await cliSignature(profile, cache);
  const seen = await cliSignature(profile, cache);
  for (const [when, c] of [['card never seen', first], ['card seen before', seen]] as const) {
    console.log(`${generation} (${profile}), ${when}: ${c.apdus} APDUs, ${c.bytes} bytes, ${c.rsa} RSA, card time ${(modelled(c) / 1000).toFixed(2)} s`);
  }
}

/** `sign.hash` through the daemon (its own card cache, in memory), counted at the card: never seen, then seen before. */
async function daemonSignatures(profile: string): Promise<[Count, Count]> {
  const v = fixtureCard(profile);
  const count: Count = { apdus: 0, bytes: 0, rsa: 0 };
  const counted = {
    atr: v.atr,
    transmit: (c: Uint8Array): Uint8Array => {
      const r = v.transmit(c);
      count.apdus++;
      count.bytes += c.length + r.length;
      if ((c[1] === 0x88 || c[1] === 0x2a) && r.length > 200) count.rsa++;
      return r;
    },
    reset: (): void => v.reset(),
  };
  const server = new CpsdServer({ ...DEFAULTS, port: 0, allowPinInRequest: true }, new InProcessBackend(counted), new Logger('error', () => undefined));
  await server.listen();
  const rpc = await connectDaemon(server.port);
  const runs: Count[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      Object.assign(count, { apdus: 0, bytes: 0, rsa: 0 });
      const m = await rpc.call('sign.hash', { hash: randomBytes(32).toString('base64url'), hashAlgorithm: 'SHA-256', pin: '1234' });
      if (m.error) throw new Error(JSON.stringify(m.error));
      runs.push({ ...count });
    }
  } finally {
    await rpc.close();
    await server.close();
  }
  return [runs[0] as Count, runs[1] as Count];
}

console.log('\nsign.hash through the daemon (look job + PIN job, PIN in the request), counted at the virtual card');
for (const [profile, generation] of [['doctor', 'CPS3'], ['nurse', 'CPS4']] as const) {
  const [first, seen] = await daemonSignatures(profile);
  for (const [when, c] of [['card never seen', first], ['card seen before', seen]] as const) {
    console.log(`${generation} (${profile}), ${when}: ${c.apdus} APDUs, ${c.bytes} bytes, ${c.rsa} RSA, card time ${(modelled(c) / 1000).toFixed(2)} s`);
  }
}
