// cpsd browser SDK: plain ESM, no dependencies (types in cpsd.d.ts). Talks to the local cpsd daemon
// over ws://127.0.0.1:<port> (docs/protocol.md); the PIN is typed in the daemon's own PIN page, which
// this SDK opens in a popup from the user's click.

export const DEFAULT_PORT = 24821;

/** Errors a page can act on; `code` is stable. */
export class CpsdError extends Error {
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'CpsdError';
    this.code = code;
    Object.assign(this, details);
  }
}

/** The state of the browser's Local Network Access permission, 'denied' first ('unknown' without the API). */
async function localNetworkState() {
  const states = [];
  for (const name of ['loopback-network', 'local-network-access', 'local-network']) {
    try {
      states.push((await navigator.permissions.query({ name })).state);
    } catch {
      // unknown permission name in this browser
    }
  }
  return states.includes('denied') ? 'denied' : states.includes('prompt') ? 'prompt' : states[0] ?? 'unknown';
}

async function localNetworkDenied() {
  // Chrome/Edge Local Network Access: a denied permission is detectable where the API exists.
  return (await localNetworkState()) === 'denied';
}

/** Why the WebSocket could not open: daemon absent, browser refusal, or our origin not allowed. */
async function diagnose(port) {
  if (await localNetworkDenied()) {
    return new CpsdError('LOCAL_NETWORK_DENIED', 'the browser blocks access to the local cpsd service (Local Network Access)');
  }
  try {
    // An opaque request: it succeeds whenever something answers on the port.
    await fetch(`http://127.0.0.1:${port}/`, { mode: 'no-cors', cache: 'no-store' });
    return new CpsdError('ORIGIN_NOT_ALLOWED', `cpsd is running but does not accept this site (${location.origin}); ask IT to allow it`);
  } catch {
    return new CpsdError('DAEMON_UNREACHABLE', 'the cpsd service is not running on this computer');
  }
}

export class CpsdClient {
  #ws;
  #next = 1;
  #waiting = new Map();
  #listeners = new Map();

  constructor(ws) {
    this.#ws = ws;
    ws.addEventListener('message', (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.method) {
        for (const fn of this.#listeners.get(msg.method) ?? []) fn(msg.params);
        return;
      }
      const pending = this.#waiting.get(msg.id);
      if (!pending) return;
      this.#waiting.delete(msg.id);
      if (msg.error) pending.reject(new CpsdError(msg.error.data?.code ?? 'INTERNAL', msg.error.message, msg.error.data ?? {}));
      else pending.resolve(msg.result);
    });
    ws.addEventListener('close', () => {
      for (const p of this.#waiting.values()) p.reject(new CpsdError('DAEMON_UNREACHABLE', 'the connection to cpsd closed'));
      this.#waiting.clear();
    });
  }

  /** `readers.changed`, `card.inserted`, `card.removed`, `pin.required`; returns an unsubscribe function. */
  on(event, fn) {
    const list = this.#listeners.get(event) ?? [];
    list.push(fn);
    this.#listeners.set(event, list);
    return () => this.#listeners.set(event, (this.#listeners.get(event) ?? []).filter((f) => f !== fn));
  }

  call(method, params = {}, { timeoutMs = 180_000 } = {}) {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new CpsdError('TIMEOUT', `${method} took too long`));
      }, timeoutMs);
      this.#waiting.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.#ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  /** The readers, which hold a supported CPx card, and which show the same card (`readers.list`). */
  async readers() {
    return (await this.call('readers.list')).readers;
  }

  /**
   * Gets a web-eid:1.0 token for the server's nonce. Call it from a click handler with a popup opened
   * by `openPinWindow()` (or let `authenticate()` below do both). `reader`: the reader the holder chose
   * when several hold a CPS card (default: the daemon's choice, the first free CPx card by contact).
   * `situations: true`: resolves to `{ token, identity, situations }` instead of the token alone (the
   * holder's card identity and practice situations, read with the same PIN entry; `situations` is null
   * with `situationsError` when the card could not give them). They are not covered by the card's
   * signature: a server treats them as what the workstation says (docs/integration.md).
   */
  async authenticate(nonce, { popup, reader, situations } = {}) {
    const off = this.#pinWindow(popup);
    try {
      const params = { nonce };
      if (reader !== undefined) params.reader = reader;
      if (situations === true) params.situations = true;
      return await this.call('auth.authenticate', params);
    } finally {
      off();
      if (popup && !popup.closed) popup.close();
    }
  }

  /** The card's signing (non-repudiation) certificate, base64 DER (`card.certificates`; no PIN needed). */
  async signingCertificate({ reader } = {}) {
    const { signing } = await this.call('card.certificates', reader !== undefined ? { reader } : {});
    if (!signing) throw new CpsdError('CARD_ERROR', 'the card holds no signing certificate');
    return signing;
  }

  /**
   * Has the card sign the hash the editor's server prepared (`cpsd/sign`), with its signing key: the PIN is
   * typed in the daemon's window, which shows `document`, the hash, the certificate used and this page's
   * origin. `hash`: base64url (prepare's `hashBase64url`), base64 or bytes; or a function given the card's
   * signing certificate that returns it (the server's prepare step, which needs that certificate).
   * Resolves to `{ signature, signerCertificate }` (base64): `signature` is what the server's finish step
   * takes. Bad input is an `INVALID_REQUEST` CpsdError with `field` (nothing is sent to the daemon).
   */
  async signDocument({ hash, document, hashAlgorithm = 'SHA-256', reader, popup } = {}) {
    const shown = checkSignOptions({ hash, document, hashAlgorithm });
    const off = this.#pinWindow(popup);
    try {
      const value = typeof hash === 'function' ? await hash(await this.signingCertificate({ reader })) : hash;
      const params = { hash: hashParam(value, hashAlgorithm), hashAlgorithm, document: shown };
      if (reader !== undefined) params.reader = reader;
      const { signature, certificate } = await this.call('sign.hash', params);
      if (!certificate) throw new CpsdError('CARD_ERROR', 'the card holds no signing certificate');
      return { signature, signerCertificate: certificate };
    } finally {
      off();
      if (popup && !popup.closed) popup.close();
    }
  }

  /** Points the PIN window (`popup`, or a new one) to the daemon's PIN page when it asks; returns the unsubscribe. */
  #pinWindow(popup) {
    return this.on('pin.required', ({ url, pinPad }) => {
      if (pinPad) {
        // The PIN is typed on the reader itself: no window needed.
        if (popup && !popup.closed) popup.close();
        return;
      }
      if (popup && !popup.closed) popup.location.href = url;
      else window.open(url, 'cpsd-pin', 'popup,width=460,height=420');
    });
  }

  close() {
    this.#ws.close();
  }
}

/** Bytes of each hash algorithm `sign.hash` takes. */
const HASH_BYTES = { 'SHA-256': 32, 'SHA-1': 20 };

const invalid = (field, message) => new CpsdError('INVALID_REQUEST', message, { field });

/** The hash as base64url, checked against its algorithm's length. */
function hashParam(hash, hashAlgorithm) {
  let bytes;
  if (hash instanceof Uint8Array || hash instanceof ArrayBuffer) bytes = new Uint8Array(hash);
  else if (typeof hash === 'string' && /^[A-Za-z0-9_-]+={0,2}$|^[A-Za-z0-9+/]+={0,2}$/.test(hash) && hash.length <= 512) {
    try {
      bytes = Uint8Array.from(atob(hash.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
    } catch {
      // not base64 after all (a length no encoding gives)
    }
  }
  if (!bytes) throw invalid('hash', 'the hash must be base64url (prepare\'s hashBase64url), base64 or bytes');
  const expected = HASH_BYTES[hashAlgorithm];
  if (bytes.length !== expected) throw invalid('hash', `a ${hashAlgorithm} hash is ${expected} bytes, not ${bytes.length}`);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A size as the holder reads it, in the browser's language ("48 kB", "48 ko"). */
function sizeText(size) {
  const [value, unit] = size < 1000 ? [size, 'byte'] : size < 1e6 ? [size / 1e3, 'kilobyte'] : [size / 1e6, 'megabyte'];
  return new Intl.NumberFormat(undefined, { style: 'unit', unit, unitDisplay: 'short', maximumFractionDigits: value < 10 ? 1 : 0 }).format(value);
}

/**
 * Checks what `signDocument` was given; returns the text the PIN window shows for the document (its name,
 * then its type and size when given: "Ordonnance.pdf (application/pdf, 48 kB)", 128 characters at most).
 */
function checkSignOptions({ hash, document, hashAlgorithm }) {
  if (typeof hashAlgorithm !== 'string' || !Object.hasOwn(HASH_BYTES, hashAlgorithm)) throw invalid('hashAlgorithm', 'hashAlgorithm must be SHA-256 or SHA-1');
  if (typeof hash !== 'function') hashParam(hash, hashAlgorithm);
  const doc = typeof document === 'string' ? { name: document } : document;
  const text = (v) => typeof v === 'string' && v.trim() !== '' && !/\p{Cc}/u.test(v);
  if (!doc || typeof doc !== 'object' || !text(doc.name)) throw invalid('document', 'document: the name of what is signed, shown in the PIN window, is required (no control characters)');
  if (doc.type !== undefined && !text(doc.type)) throw invalid('document', 'document.type must be a non-empty text');
  if (doc.size !== undefined && !(Number.isSafeInteger(doc.size) && doc.size >= 0)) throw invalid('document', 'document.size must be a number of bytes');
  const details = [doc.type, doc.size === undefined ? undefined : sizeText(doc.size)].filter((d) => d !== undefined);
  const shown = details.length > 0 ? `${doc.name} (${details.join(', ')})` : doc.name;
  if (shown.length > 128) throw invalid('document', `what the PIN window shows of the document is 128 characters at most (${shown.length})`);
  return shown;
}

export function connect({ port = DEFAULT_PORT, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    let ws;
    try {
      ws = new WebSocket(`ws://127.0.0.1:${port}`);
    } catch (error) {
      reject(new CpsdError('DAEMON_UNREACHABLE', String(error)));
      return;
    }
    const timer = setTimeout(async () => {
      ws.close();
      // A connection neither open nor refused while the permission is still to be asked: the browser
      // (Firefox) holds it on its Local Network Access prompt.
      reject(
        (await localNetworkState()) === 'prompt'
          ? new CpsdError('LOCAL_NETWORK_DENIED', 'the browser is waiting for permission to reach the local cpsd service: allow it, or ask IT to allow this site')
          : new CpsdError('TIMEOUT', 'cpsd did not answer'),
      );
    }, timeoutMs);
    ws.addEventListener('open', () => {
      clearTimeout(timer);
      resolve(new CpsdClient(ws));
    });
    ws.addEventListener('error', async () => {
      clearTimeout(timer);
      reject(await diagnose(port));
    });
  });
}

/** Opens the (empty) PIN window now, inside the user's click, so that popup blockers let it through. */
export function openPinWindow() {
  const popup = window.open('about:blank', 'cpsd-pin', 'popup,width=460,height=420');
  if (popup) popup.document.title = 'cpsd';
  return popup ?? undefined;
}

/**
 * One call from a click handler: opens the PIN window, connects (to `options.port`), has the card sign
 * (as `CpsdClient.signDocument`), closes. Bad input fails before any window opens.
 */
export async function signDocument(options = {}) {
  checkSignOptions({ hash: options.hash, document: options.document, hashAlgorithm: options.hashAlgorithm ?? 'SHA-256' });
  const popup = openPinWindow();
  try {
    const client = await connect(options);
    try {
      return await client.signDocument({ hash: options.hash, document: options.document, hashAlgorithm: options.hashAlgorithm ?? 'SHA-256', reader: options.reader, popup });
    } finally {
      client.close();
    }
  } finally {
    if (popup && !popup.closed) popup.close();
  }
}

/** One call from a click handler: connect, authenticate with the nonce, close (`situations`: as `CpsdClient.authenticate`). */
export async function authenticate(nonce, options = {}) {
  const popup = openPinWindow();
  try {
    const client = await connect(options);
    try {
      return await client.authenticate(nonce, { popup, reader: options.reader, situations: options.situations });
    } finally {
      client.close();
    }
  } finally {
    if (popup && !popup.closed) popup.close();
  }
}
