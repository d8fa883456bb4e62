/**
 * `cpsd doctor` as a technician sees it: run in a real terminal (tmux, detached, 150 columns), the
 * screen captured as text into test-output/doctor-fr.txt and doctor-en.txt, with the virtual card in
 * the vpcd reader of the machine's pcscd.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const CLI = fileURLToPath(new URL('../../dist/cli/cpsd.js', import.meta.url));
const OUT = fileURLToPath(new URL('../../test-output/', import.meta.url));
const home = mkdtempSync(join(tmpdir(), 'cpsd-screens-'));
/** A tmux server of our own: nothing of the machine's sessions is touched. */
const SOCKET = `cpsd-doctor-${process.pid}`;
const vr = useVirtualReader();

const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });

/** Runs `cpsd <args>` in a detached 150×60 terminal with `env`, and returns the screen once it is done. */
async function screen(env: Record<string, string>, args: string[]): Promise<string> {
  const session = `doctor-${Math.random().toString(16).slice(2, 8)}`;
  const vars = Object.entries({ XDG_CACHE_HOME: join(home, 'cache'), XDG_CONFIG_HOME: join(home, 'config'), LC_ALL: '', LC_MESSAGES: '', ...env }).map(([k, v]) => `${k}=${v}`);
  const command = ['env', ...vars, process.execPath, CLI, ...args].map((w) => `'${w.replace(/'/g, "'\\''")}'`).join(' ');
  tmux('new-session', '-d', '-s', session, '-x', '150', '-y', '60', `${command}; echo '-- end --'; sleep 60`);
  try {
    for (let i = 0; i < 300; i++) {
      const text = tmux('capture-pane', '-p', '-J', '-t', session);
      if (text.includes('-- end --')) return text.slice(0, text.indexOf('-- end --')).trimEnd() + '\n';
      await sleep(100);
    }
    throw new Error(`cpsd ${args.join(' ')} did not finish in the terminal`);
  } finally {
    tmux('kill-session', '-t', session);
  }
}

let fr = '';
let en = '';

beforeAll(async () => {
  await vr.insert({ profile: 'doctor' });
  fr = await screen({ LANG: 'fr_FR.UTF-8' }, ['doctor']);
  en = await screen({ LANG: 'fr_FR.UTF-8' }, ['--lang', 'en', 'doctor']);
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'doctor-fr.txt'), fr);
  writeFileSync(join(OUT, 'doctor-en.txt'), en);
}, 60_000);

describe('cpsd doctor in a terminal, in French (LANG=fr_FR.UTF-8)', () => {
  it('names the card and its reader in French', () => {
    expect(fr).toMatch(/\[ok\] +Carte: CPS3 \(IAS-ECC\) dans Virtual PCD 00 00/);
  });

  it('counts the PIN tries with the French plural', () => {
    expect(fr).toMatch(/\[ok\] +Code porteur: 3 essais restants sur 3/);
  });

  it('shows the vpcd reader without PIN pad, with its driver', () => {
    expect(fr).toContain('Virtual PCD 00 00: carte 3BAC00402A001225006480000310009000 ; clavier (PIN pad) : non ; pilote : libifdvpcd.so');
  });

  it('skips the certificates without --trust, saying why, in French', () => {
    expect(fr).toMatch(/\[ignoré\] Certificat d'authentification: aucun certificat de confiance donné \(--trust\)/);
  });

  it('gives French advice under the daemon warning', () => {
    expect(fr).toMatch(/\[alerte\] Service cpsd: cpsd n'est pas lancé sur le port \d+\n +→ lancez-le : systemctl --user start cpsd/);
  });

  it('ends with the PKCS#11 module: where it is, where it is registered, in French', () => {
    expect(fr).toMatch(/\[(ok|alerte)\] +Module PKCS#11: \/\S+\/libcpsd-pkcs11\.so(, déclaré dans | n'est déclaré nulle part)/);
  });

  it('has no English check line', () => {
    expect(fr).not.toMatch(/tries left|\[warn\]|\[skip\]|Checks/);
  });
});

describe('cpsd --lang en doctor in a terminal (--lang wins over LANG=fr)', () => {
  it('names the card and its reader in English', () => {
    expect(en).toMatch(/\[ok\] +Card: CPS3 \(IAS-ECC\) in Virtual PCD 00 00/);
  });

  it('counts the PIN tries in English', () => {
    expect(en).toMatch(/\[ok\] +PIN: 3 of 3 tries left/);
  });

  it('shows the versions of cpsd, Node.js, the OS and pcscd', () => {
    expect(en).toMatch(/Versions\n {2}cpsd +\d+\.\d+\.\d+\n {2}Node\.js +v\d+[^\n]*\n {2}OS +\S[^\n]*\n {2}pcscd +\S+/);
  });

  it('says where the configuration comes from when no daemon runs', () => {
    expect(en).toMatch(/Configuration: 0 allowed origins \(from the configuration files: no daemon answered\)/);
  });

  it('has no French check line', () => {
    expect(en).not.toMatch(/essais|Vérifications|\[ignoré\]/);
  });
});

describe('cpsd doctor in a terminal without a card', () => {
  it('shows the PIN and certificate checks as skipped: no card', async () => {
    await vr.remove();
    const text = await screen({ LANG: 'C' }, ['doctor']);
    expect(text.match(/\[skip\] (PIN|Authentication certificate|Signature certificate): no card/g)).toHaveLength(3);
  });
});
