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
    const off = this.on('pin.required', ({ url, pinPad }) => {
      if (pinPad) {
        // The PIN is typed on the reader itself: no window needed.
        if (popup && !popup.closed) popup.close();
        return;
      }
      if (popup && !popup.closed) popup.location.href = url;
      else window.open(url, 'cpsd-pin', 'popup,width=460,height=420');
    });
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

  close() {
    this.#ws.close();
  }
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
