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
import { fromHex, toHex } from '../../apdu/errors.js';
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
