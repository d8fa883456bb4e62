/**
 * Reads what identifies a card and its holder — serial, certificates, public data objects — with a
 * cache per card serial invalidated by EF_ACTUA, as Cryptolib does: a card seen before costs EF.SN.ICC
 * and EF_ACTUA only. PIN-protected objects are never cached and never written to disk.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fromHex, toHex } from '../apdu/errors.js';
import type { CardObjects, CpsCard } from './card.js';
import type { Pkcs15Object } from './pkcs15.js';

/** The public objects an identity needs; the others are read on demand. */
export const IDENTITY_LABELS: readonly string[] = ['CPS_ID_CARD', 'CPS_INFO_PS'];

export interface PublicCardData {
  serial: string;
  generation: string;
  interface: string;
  /** EF_ACTUA content (hex), null on a card never updated. */
  actua: string | null;
  authCertificate: Uint8Array | undefined;
  signCertificate: Uint8Array | undefined;
  /** Public data objects by label (CPS_ID_CARD, CPS_NAME_PS, CPS_INFO_PS…). */
  data: Record<string, Uint8Array>;
  /** Labels of the PIN-protected objects present (their content is never cached). */
  privateLabels: string[];
  fromCache: boolean;
}

interface CachedObject {
  label: string;
  id?: string;
  path?: string;
  private: boolean;
}

interface CachedObjects {
  application: string;
  auth: { certificate?: { label: string; id?: string; path: string }; keyReference?: number };
  sign: { certificate?: { label: string; id?: string; path: string }; keyReference?: number };
  pin: CardObjects['pin'];
  dataObjects: CachedObject[];
}

function objectsToJson(o: CardObjects): CachedObjects {
  const ref = (r: CardObjects['auth']) => ({
    ...(r.certificate ? { certificate: { label: r.certificate.label, path: toHex(r.certificate.path), ...(r.certificate.id ? { id: toHex(r.certificate.id) } : {}) } } : {}),
    ...(r.keyReference === undefined ? {} : { keyReference: r.keyReference }),
  });
  return {
    application: toHex(o.application),
    auth: ref(o.auth),
    sign: ref(o.sign),
    pin: o.pin,
    dataObjects: o.dataObjects.map((d) => ({ label: d.label, private: d.private, ...(d.id ? { id: toHex(d.id) } : {}), ...(d.path ? { path: toHex(d.path) } : {}) })),
  };
}

function objectsFromJson(o: CachedObjects): CardObjects {
  const ref = (r: CachedObjects['auth']): CardObjects['auth'] => ({
    certificate: r.certificate
      ? { label: r.certificate.label, path: fromHex(r.certificate.path), id: r.certificate.id ? fromHex(r.certificate.id) : undefined }
      : undefined,
    keyReference: r.keyReference,
  });
  return {
    application: fromHex(o.application),
    auth: ref(o.auth),
    sign: ref(o.sign),
    pin: o.pin,
    dataObjects: o.dataObjects.map(
      (d): Pkcs15Object => ({ label: d.label, private: d.private, id: d.id ? fromHex(d.id) : undefined, path: d.path ? fromHex(d.path) : undefined }),
    ),
  };
}

interface CacheFile {
  version: 1;
  serial: string;
  generation: string;
  interface: string;
  actua: string | null;
  auth?: string;
  sign?: string;
  data: Record<string, string>;
  privateLabels: string[];
  objects?: CachedObjects;
}

export interface CardCache {
  get(serial: string, iface: string): CacheFile | undefined;
  put(entry: CacheFile): void;
}

/** The default on-disk cache: $XDG_CACHE_HOME/cpsd/cards or ~/.cache/cpsd/cards, files mode 0600. */
export class FileCardCache implements CardCache {
  readonly dir: string;

  constructor(dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cpsd', 'cards')) {
    this.dir = dir;
  }

  #file(serial: string, iface: string): string {
    if (!/^[0-9A-F]+$/.test(serial)) throw new TypeError('serial must be hex');
    return join(this.dir, `${serial}-${iface}.json`);
  }

  get(serial: string, iface: string): CacheFile | undefined {
    try {
      const entry = JSON.parse(readFileSync(this.#file(serial, iface), 'utf8')) as CacheFile;
      return entry.version === 1 && entry.serial === serial ? entry : undefined;
    } catch {
      return undefined; // absent or unreadable: read the card
    }
  }

  put(entry: CacheFile): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = this.#file(entry.serial, entry.interface);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    renameSync(tmp, file); // atomic: a reader never sees half a file
  }
}

export class MemoryCardCache implements CardCache {
  readonly #map = new Map<string, CacheFile>();
  get(serial: string, iface: string): CacheFile | undefined {
    return this.#map.get(`${serial}-${iface}`);
  }
  put(entry: CacheFile): void {
    this.#map.set(`${entry.serial}-${entry.interface}`, entry);
  }
}

export async function readPublicData(
  card: CpsCard,
  cache?: CardCache,
  labels: readonly string[] = IDENTITY_LABELS,
): Promise<PublicCardData> {
  const serial = await card.serial();
  const actuaBytes = await card.actua();
  const actua = actuaBytes ? toHex(actuaBytes) : null;
  const hit = cache?.get(serial, card.kind.interface);
  if (hit && hit.actua === actua) {
    if (hit.objects) card.useObjects(objectsFromJson(hit.objects));
    return {
      serial,
      generation: hit.generation,
      interface: hit.interface,
      actua,
      authCertificate: hit.auth ? fromHex(hit.auth) : undefined,
      signCertificate: hit.sign ? fromHex(hit.sign) : undefined,
      data: Object.fromEntries(Object.entries(hit.data).map(([k, v]) => [k, fromHex(v)])),
      privateLabels: hit.privateLabels,
      fromCache: true,
    };
  }
  const objects = await card.objects();
  const authCertificate = objects.auth.certificate ? await card.certificate('auth') : undefined;
  const signCertificate = objects.sign.certificate ? await card.certificate('sign') : undefined;
  const data: Record<string, Uint8Array> = {};
  const privateLabels: string[] = [];
  for (const d of objects.dataObjects) {
    if (d.private) {
      privateLabels.push(d.label);
      continue;
    }
    if (!labels.includes(d.label)) continue;
    const value = await card.dataObject(d.label);
    if (value) data[d.label] = value;
  }
  const result: PublicCardData = {
    serial,
    generation: card.kind.generation,
    interface: card.kind.interface,
    actua,
    authCertificate,
    signCertificate,
    data,
    privateLabels,
    fromCache: false,
  };
  cache?.put({
    version: 1,
    serial,
    generation: result.generation,
    interface: result.interface,
    actua,
    ...(authCertificate ? { auth: toHex(authCertificate) } : {}),
    ...(signCertificate ? { sign: toHex(signCertificate) } : {}),
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, toHex(v)])),
    privateLabels,
    objects: objectsToJson(objects),
  });
  return result;
}
