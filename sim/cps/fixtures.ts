/** Loads a card profile and its test PKI material from fixtures/ (see fixtures/make-pki.ts). */
import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CpsdError } from '../../core/errors.js';
import { fromHex } from '../../core/bytes.js';
import { VirtualCpsCard, type VirtualCpsCardOptions } from './card.js';
import { personalise, type CardMaterial } from './layout.js';
import type { CardProfile } from './profile.js';

/** fixtures/ of the repository, from the sources (sim/cps) or the build (dist/sim/cps). */
export function fixturesDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const up of ['../..', '../../..']) {
    const dir = resolve(here, up, 'fixtures');
    if (existsSync(join(dir, 'profiles'))) return dir;
  }
  throw new Error(`fixtures/ not found from ${here}`);
}

export class UnknownProfileError extends CpsdError {
  readonly code = 'PROFILE_NOT_FOUND';
}

export function profileNames(dir = fixturesDir()): string[] {
  return readdirSync(join(dir, 'profiles'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5))
    .sort();
}

export function loadProfile(name: string, dir = fixturesDir()): CardProfile {
  if (!/^[a-z0-9-]+$/.test(name) || !profileNames(dir).includes(name)) {
    throw new UnknownProfileError(`unknown card profile ${JSON.stringify(name)}; known: ${profileNames(dir).join(', ')}`);
  }
  return JSON.parse(readFileSync(join(dir, 'profiles', `${name}.json`), 'utf8')) as CardProfile;
}

export function loadMaterial(name: string, dir = fixturesDir()): CardMaterial {
  const card = join(dir, 'pki', 'cards', name);
  const der = (f: string): Uint8Array => new Uint8Array(readFileSync(join(card, `${f}.der`)));
  const key = (f: string) => createPrivateKey(readFileSync(join(card, `${f}.key.pem`)));
  return {
    authCert: der('auth'),
    authKey: key('auth'),
    signCert: der('sign'),
    signKey: key('sign'),
    techCert: der('tech-auth'),
    techKey: key('tech-auth'),
  };
}

/** A fresh virtual card for a fixture profile; the personality defaults to the profile's generation. */
export function fixtureCard(name: string, options: VirtualCpsCardOptions = {}): VirtualCpsCard {
  const profile = loadProfile(name);
  const personality = options.personality ?? (profile.generation === 'CPS4' ? 'cps4' : 'cps3');
  const atr = options.atr ?? (profile.atr ? fromHex(profile.atr) : undefined);
  return new VirtualCpsCard(personalise(profile, loadMaterial(name)), { ...options, personality, atr });
}
