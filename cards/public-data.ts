/**
 * Reads what identifies a card and its holder — serial, certificates, public data objects — with a
 * cache per card serial invalidated by EF_ACTUA, as Cryptolib does: a card seen before costs EF.SN.ICC
 * and EF_ACTUA only. Only what the caller needs is read (a login skips the signing certificate); what
 * is read later is added to the card's entry. PIN-protected objects are never cached nor written to disk.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fromHex, toHex } from '../core/bytes.js';
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
  /** Undefined when the card has none, or when it was not asked for and is not cached yet. */
  signCertificate: Uint8Array | undefined;
  /** Public data objects by label (CPS_ID_CARD, CPS_NAME_PS, CPS_INFO_PS…). */
  data: Record<string, Uint8Array>;
  /** Labels of the PIN-protected objects in the DODF as far as it was read (their content is never cached). */
  privateLabels: string[];
  /** The card was known (cache entry valid for its EF_ACTUA); anything it lacked was read and added. */
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
  /** The DODF beyond dataObjects, not read yet (absent: read to its end). */
  dataObjectsRest?: { path: string; offset: number; pending: string };
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
    ...(o.dataObjectsRest
      ? { dataObjectsRest: { path: toHex(o.dataObjectsRest.path), offset: o.dataObjectsRest.offset, pending: toHex(o.dataObjectsRest.pending) } }
      : {}),
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
    dataObjectsRest: o.dataObjectsRest
      ? { path: fromHex(o.dataObjectsRest.path), offset: o.dataObjectsRest.offset, pending: fromHex(o.dataObjectsRest.pending) }
      : undefined,
  };
}

interface CacheFile {
  version: 1;
  serial: string;
  generation: string;
  interface: string;
  actua: string | null;
  auth?: string;
  /** Absent until read, even when the card has one (objects.sign.certificate tells). */
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

export interface PublicDataOptions {
  /**
   * Read the signing certificate when the cache does not hold it yet (about 1.2 s of card time on a
   * CPS3). Default true, as before; an identity or a login needs only the authentication certificate.
   */
  signCertificate?: boolean;
  /** The public data objects to read; default IDENTITY_LABELS, what holderIdentity uses. */
  labels?: readonly string[];
}

/**
 * The card's serial, certificates and public data objects, from the cache when EF_ACTUA says the card
 * is unchanged. Reads only what is asked: what a card seen before lacks in its cache entry (the signing
 * certificate, another label) is read then and added to the entry.
 */
export async function readPublicData(card: CpsCard, cache?: CardCache, options: PublicDataOptions = {}): Promise<PublicCardData> {
  const wantSign = options.signCertificate ?? true;
  const labels = options.labels ?? IDENTITY_LABELS;
  const serial = await card.serial();
  const actuaBytes = await card.actua();
  const actua = actuaBytes ? toHex(actuaBytes) : null;
  const hit = cache?.get(serial, card.kind.interface);
  // An entry without the directories cannot be completed: read the card again.
  if (hit?.objects && hit.actua === actua) {
    const cached = objectsFromJson(hit.objects);
    card.useObjects(cached);
    const entry: CacheFile = { ...hit, data: { ...hit.data } };
    let added = false;
    if (wantSign && entry.sign === undefined && cached.sign.certificate) {
      entry.sign = toHex(await card.certificate('sign'));
      added = true;
    }
    added = (await readLabels(card, entry, labels)) || added;
    const objects = await card.objects(); // the same object unless the DODF was read on
    if (objects !== cached) Object.assign(entry, directoriesOf(objects));
    if (added || objects !== cached) cache?.put(entry);
    return resultOf(entry, true);
  }
  const objects = await card.objects();
  const entry: CacheFile = {
    version: 1,
    serial,
    generation: card.kind.generation,
    interface: card.kind.interface,
    actua,
    data: {},
    ...directoriesOf(objects),
  };
  if (objects.auth.certificate) entry.auth = toHex(await card.certificate('auth'));
  if (wantSign && objects.sign.certificate) entry.sign = toHex(await card.certificate('sign'));
  await readLabels(card, entry, labels);
  Object.assign(entry, directoriesOf(await card.objects())); // with the DODF entries read for the labels
  cache?.put(entry);
  return resultOf(entry, false);
}

/** A card as an earlier job of the same command left it: what a later job needs to go on with it. */
export interface SeenCard {
  serial: string;
  /** Its directories (read, or from its cache entry checked by EF_ACTUA), as the driver knew them. */
  objects: CardObjects;
}

/** What a job leaves for a later one: call after readPublicData (the directories are then known, no APDU). */
export async function seenCard(card: CpsCard, data: PublicCardData): Promise<SeenCard> {
  return { serial: data.serial, objects: await card.objects() };
}

/**
 * In a later job, whether the card is still the one `seen` names: EF.SN.ICC only (one APDU), and on the
 * same serial the driver takes the directories already known instead of walking them. The chip serial
 * names the card, so its certificates and keys are those read or checked seconds before; EF_ACTUA is not
 * read again: it marks updates of the situation data, which a signature does not depend on. Another card:
 * false, and nothing else was sent to it.
 */
export async function resumeCard(card: CpsCard, seen: SeenCard): Promise<boolean> {
  if ((await card.serial()) !== seen.serial) return false;
  card.useObjects(seen.objects);
  return true;
}

/** Reads the wanted public objects the entry lacks; PIN-protected ones never, even with the PIN verified. */
async function readLabels(card: CpsCard, entry: CacheFile, labels: readonly string[]): Promise<boolean> {
  let added = false;
  const wanted = labels.filter((l) => entry.data[l] === undefined);
  if (wanted.length === 0) return false;
  for (const d of await card.findDataObjects(wanted)) {
    if (d.private || !d.path) continue;
    const value = await card.dataObject(d.label);
    if (!value) continue;
    entry.data[d.label] = toHex(value);
    added = true;
  }
  return added;
}

/** The directories as cached, and the PIN-protected labels they list (as far as the DODF was read). */
function directoriesOf(objects: CardObjects): Pick<CacheFile, 'objects' | 'privateLabels'> {
  return { objects: objectsToJson(objects), privateLabels: objects.dataObjects.filter((d) => d.private).map((d) => d.label) };
}

function resultOf(entry: CacheFile, fromCache: boolean): PublicCardData {
  return {
    serial: entry.serial,
    generation: entry.generation,
    interface: entry.interface,
    actua: entry.actua,
    authCertificate: entry.auth === undefined ? undefined : fromHex(entry.auth),
    signCertificate: entry.sign === undefined ? undefined : fromHex(entry.sign),
    data: Object.fromEntries(Object.entries(entry.data).map(([k, v]) => [k, fromHex(v)])),
    privateLabels: entry.privateLabels,
    fromCache,
  };
}
