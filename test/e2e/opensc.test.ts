/**
 * OpenSC, unmodified, as the independent judge of the virtual CPS card: pcscd → vpcd → the card in a
 * child process, read by opensc-tool, pkcs15-tool and pkcs11-tool (OpenSC's own PKCS#11 module), and
 * the signature checked by openssl.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CardChannel } from '../../apdu/channel.js';
import { CommandApdu } from '../../apdu/command.js';
import { fromHex, toHex } from '../../core/bytes.js';
import { PcscTransport } from '../../apdu/pcsc/index.js';
import { loadMaterial, loadProfile } from '../../sim/cps/fixtures.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';
import { VPCD_READER } from '../helpers/pcscd.js';

const run = promisify(execFile);
const AUTH_ID = 'e828bd080f8025000001ff001002';
const SIGN_ID = 'e828bd080f8025000001ff001001';
const vr = useVirtualReader();
const work = mkdtempSync(join(tmpdir(), 'cpsd-opensc-'));

function pkcs11Module(): string {
  for (const dir of ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib']) {
    const path = join(dir, 'opensc-pkcs11.so');
    if (existsSync(path)) return path;
  }
  const found = readdirSync('/usr/lib').find((d) => existsSync(join('/usr/lib', d, 'opensc-pkcs11.so')));
  if (!found) throw new Error('opensc-pkcs11.so not found: install opensc (bash .ci/run does)');
  return join('/usr/lib', found, 'opensc-pkcs11.so');
}

const insert = (profile: string): Promise<void> => vr.insert({ profile });

async function tool(command: string, args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(command, args, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    // A failing tool is part of some tests: hand its output back with the exit code.
    const e = error as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? '', stderr: `${e.stderr ?? ''}\nexit ${String(e.code)}` };
  }
}




describe('OpenSC reads the virtual CPS3', () => {
  it('recognises it as an IAS/ECC CPx card', async () => {
    await insert('doctor');
    const { stdout, stderr } = await tool('opensc-tool', ['--reader', '0', '--name'], { OPENSC_DEBUG: '3' });
    expect(stdout.trim()).toBe('IAS-ECC');
    expect(stderr).toContain("'IAS/ECC CPx' card matched");
  });

  it('lists both certificates with our subjects and returns DER identical to the fixtures', async () => {
    await insert('doctor');
    const list = await tool('pkcs15-tool', ['--reader', '0', '--list-certificates']);
    expect(list.stdout).toContain('X.509 Certificate [CPS_SIG_CERT]');
    expect(list.stdout).toContain('X.509 Certificate [CPS_AUT_CERT]');
    expect(list.stdout).toContain(`ID             : ${AUTH_ID}`);
    const material = loadMaterial('doctor');
    for (const [id, der] of [
      [AUTH_ID, material.authCert],
      [SIGN_ID, material.signCert],
    ] as const) {
      const { stdout } = await tool('pkcs15-tool', ['--reader', '0', '--read-certificate', id]);
      const read = new X509Certificate(stdout);
      expect(Buffer.from(read.raw).equals(Buffer.from(der))).toBe(true);
      expect(read.subject).toContain(`CN=${loadProfile('doctor').holder.idNat}`);
    }
  });

  it('agrees with what cpsd reads itself through PC/SC', async () => {
    await insert('pharmacist');
    const { stdout } = await tool('pkcs15-tool', ['--reader', '0', '--read-certificate', AUTH_ID]);
    const connection = await vr.service.connect(VPCD_READER, { share: 'shared', protocols: ['T0', 'T1'] });
    try {
      const card = new CardChannel(new PcscTransport(connection));
      const select = await card.transmit(new CommandApdu({ cla: 0, ins: 0xa4, p1: 0x09, p2: 0x04, data: fromHex('3F0000013001') }));
      const size = (select.data[4] ?? 0) * 256 + (select.data[5] ?? 0); // 62 L 80 02 <size>
      const parts: Uint8Array[] = [];
      for (let offset = 0; offset < size; offset += 256) {
        const r = await card.transmit(new CommandApdu({ cla: 0, ins: 0xb0, p1: offset >> 8, p2: offset & 0xff, ne: Math.min(256, size - offset) }));
        parts.push(r.check().data);
      }
      expect(toHex(Buffer.concat(parts))).toBe(toHex(new X509Certificate(stdout).raw));
    } finally {
      await connection.disconnect('reset');
    }
  });

  it('lists the two private keys with the CPS references and usages', async () => {
    await insert('doctor');
    const { stdout } = await tool('pkcs15-tool', ['--reader', '0', '--list-keys']);
    expect(stdout).toMatch(/Private RSA Key \[CPS_PRIV_SIG\][\s\S]*Usage\s+: \[0x200\], nonRepudiation[\s\S]*Key ref\s+: 129 \(0x81\)/);
    expect(stdout).toMatch(/Private RSA Key \[CPS_PRIV_AUT\][\s\S]*Usage\s+: \[0x06\], decrypt, sign[\s\S]*Key ref\s+: 130 \(0x82\)/);
  });

  it('signs with the authentication key through OpenSC PKCS#11 after the PIN, and openssl verifies it', async () => {
    await insert('doctor');
    const input = join(work, 'challenge.bin');
    const signature = join(work, 'challenge.sig');
    writeFileSync(input, 'origin-bound challenge');
    const { stderr } = await tool('pkcs11-tool', [
      '--module', pkcs11Module(), '--slot-index', '0', '--login', '--pin', '1234',
      '--sign', '-m', 'RSA-PKCS', '--id', AUTH_ID, '-i', input, '-o', signature,
    ]); // prettier-ignore
    expect(stderr).not.toContain('error');
    const cert = join(work, 'auth.der');
    writeFileSync(cert, loadMaterial('doctor').authCert);
    const pub = join(work, 'auth.pub.pem');
    writeFileSync(pub, new X509Certificate(loadMaterial('doctor').authCert).publicKey.export({ type: 'spki', format: 'pem' }));
    const verified = await tool('openssl', [
      'pkeyutl', '-verify', '-pubin', '-inkey', pub, '-in', input, '-sigfile', signature, '-pkeyopt', 'rsa_padding_mode:pkcs1',
    ]); // prettier-ignore
    expect(verified.stdout).toContain('Signature Verified Successfully');
  });

  it('reports the tries left after wrong PINs as the card counts them', async () => {
    await insert('doctor');
    const module = pkcs11Module();
    const flags = async (): Promise<string> => (await tool('pkcs11-tool', ['--module', module, '-L'])).stdout.split('Slot 1')[0] ?? '';
    expect(await flags()).not.toContain('count low');
    const wrong = await tool('pkcs15-tool', ['--reader', '0', '--verify-pin', '--pin', '9999']);
    expect(wrong.stdout + wrong.stderr).toContain('PIN code or key incorrect');
    expect(await flags()).toContain('user PIN count low');
    await tool('pkcs15-tool', ['--reader', '0', '--verify-pin', '--pin', '9999']);
    expect(await flags()).toContain('final user PIN try');
    // cpsd's own reading of the counter agrees: VERIFY without data never spends a try.
    const connection = await vr.service.connect(VPCD_READER, { share: 'shared', protocols: ['T0', 'T1'] });
    try {
      const status = await new CardChannel(new PcscTransport(connection)).transmit(new CommandApdu({ cla: 0, ins: 0x20, p1: 0, p2: 1 }));
      expect(status.sw).toBe(0x63c1);
    } finally {
      await connection.disconnect('reset');
    }
    await tool('pkcs15-tool', ['--reader', '0', '--verify-pin', '--pin', '9999']);
    expect(await flags()).toContain('user PIN locked');
  });
});

/**
 * The APDUs as they crossed pcscd, from OpenSC's debug log (OPENSC_DEBUG=3): "Outgoing APDU (n bytes):"
 * or "Incoming APDU (n bytes):", then lines of up to 16 hex bytes followed by their ASCII.
 */
function wire(log: string): string[] {
  const apdus: string[] = [];
  for (const m of log.matchAll(/(Outgoing|Incoming) APDU \((\d+) bytes\):\n((?:[^\n]+\n)*)/g)) {
    const n = Number(m[2]);
    const bytes: string[] = [];
    // The byte count bounds the hex: the ASCII column may itself look like hex ("61 27 a'").
    for (const line of (m[3] ?? '').split('\n')) {
      bytes.push(...line.split(' ').slice(0, Math.min(16, n - bytes.length)));
    }
    if (bytes.length !== n || !bytes.every((b) => /^[0-9A-F]{2}$/.test(b))) throw new Error(`unparsed APDU log: ${m[0]}`);
    apdus.push(`${m[1] === 'Outgoing' ? '>' : '<'} ${bytes.join('')}`);
  }
  return apdus;
}

/** The exchange from the last time `command` went out, so that the card init APDUs are left aside. */
function from(log: string, command: string): string[] {
  const apdus = wire(log);
  const start = apdus.lastIndexOf(`> ${command}`);
  if (start < 0) throw new Error(`${command} not sent; saw ${apdus.join(', ')}`);
  return apdus.slice(start);
}

/** The data opensc-tool prints after "Received (SW1=…, SW2=…):" for the APDU it printed as `sent` (hex columns only). */
function printed(stdout: string, sent: string): string {
  const block = stdout.split(`Sending: ${sent} \n`)[1]?.split('Sending:')[0] ?? '';
  return block
    .split('\n')
    .slice(1)
    .map((line) => line.slice(0, 48).replace(/ /g, ''))
    .join('');
}

describe('OpenSC sees the virtual CPS3 answer as a T=0 card (61xx, GET RESPONSE, 6Cxx)', () => {
  // EF.SN.ICC's FCP as dumped from a real CPS3 (docs/card-facts.md §2.2, OSC-I2275): 0x27 = 39 bytes.
  const FCP = '6225' + '8002000C' + '820101' + '8302D003' + '8801E0' + 'A112' + '8C077BFFFFFFFFFF00' + '9C077BFFFFFFFFFF00' + '8A0105';
  const SELECT = '00A40904043F00D003';
  const debug = { OPENSC_DEBUG: '3' };

  it('answers SELECT 3F00/D003 P2=04 without Le with 61 27, which OpenSC itself reports as 9000 without data', async () => {
    await insert('doctor');
    const { stdout, stderr } = await tool('opensc-tool', ['--reader', '0', '-s', '00:A4:09:04:04:3F:00:D0:03'], debug);
    expect(from(stderr, SELECT)).toEqual([`> ${SELECT}`, '< 6127']);
    // OpenSC's sc_transmit drops 61xx data for an APDU without Le (case 3) and reports 9000.
    expect(stdout).toContain('Sending: 00 A4 09 04 04 3F 00 D0 03 \nReceived (SW1=0x90, SW2=0x00)\n');
  });

  it('hands the FCP over on GET RESPONSE 00 C0 00 00 27 after that SELECT, with 9000', async () => {
    await insert('doctor');
    const args = ['--reader', '0', '-s', '00:A4:09:04:04:3F:00:D0:03', '-s', '00:C0:00:00:27'];
    const { stdout, stderr } = await tool('opensc-tool', args, debug);
    expect(from(stderr, SELECT)).toEqual([`> ${SELECT}`, '< 6127', '> 00C0000027', `< ${FCP}9000`]);
    expect(stdout).toContain('Sending: 00 C0 00 00 27 \nReceived (SW1=0x90, SW2=0x00):\n');
    expect(printed(stdout, '00 C0 00 00 27')).toBe(FCP);
  });

  it('lets OpenSC fetch the FCP through 61 27 when SELECT carries Le (sent without Le on T=0)', async () => {
    await insert('doctor');
    const { stdout, stderr } = await tool('opensc-tool', ['--reader', '0', '-s', '00:A4:09:04:04:3F:00:D0:03:00'], debug);
    expect(from(stderr, SELECT)).toEqual([`> ${SELECT}`, '< 6127', '> 00C0000027', `< ${FCP}9000`]);
    expect(printed(stdout, '00 A4 09 04 04 3F 00 D0 03 00')).toBe(FCP);
  });

  it('answers GET RESPONSE with a wrong Le with 6C 27, and OpenSC gets the FCP by sending Le=27', async () => {
    await insert('doctor');
    const args = ['--reader', '0', '-s', '00:A4:09:04:04:3F:00:D0:03', '-s', '00:C0:00:00:30'];
    const { stdout, stderr } = await tool('opensc-tool', args, debug);
    expect(from(stderr, SELECT)).toEqual([`> ${SELECT}`, '< 6127', '> 00C0000030', '< 6C27', '> 00C0000027', `< ${FCP}9000`]);
    expect(printed(stdout, '00 C0 00 00 30')).toBe(FCP);
  });

  it('answers SELECT 3F00/D003 P2=0C (no FCP) with 9000 and nothing else', async () => {
    await insert('doctor');
    const { stderr } = await tool('opensc-tool', ['--reader', '0', '-s', '00:A4:09:0C:04:3F:00:D0:03'], debug);
    expect(from(stderr, '00A4090C043F00D003')).toEqual(['> 00A4090C043F00D003', '< 9000']);
  });
});
