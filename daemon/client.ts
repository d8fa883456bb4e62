/**
 * The daemon's JSON-RPC client for Node (local applications, the CLI, benches and tests): calls answered
 * by id, notifications kept and awaitable, the order answers arrived in. Node 20 has no global
 * WebSocket, hence `ws`. A local application connects without an Origin header (docs/protocol.md).
 */
import WebSocket from 'ws';

export interface RpcAnswer {
  id?: number;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data: { code: string } & Record<string, unknown> };
}

export interface RpcNotification {
  method: string;
  params: Record<string, unknown>;
}

export interface RpcClient {
  readonly ws: WebSocket;
  /** Sends a request; resolves with its answer (result or error), or rejects if the connection ends first. */
  call(method: string, params?: Record<string, unknown>): Promise<RpcAnswer>;
  /** The params of the first notification `method` (already received, or the next one). */
  next(method: string): Promise<Record<string, unknown>>;
  readonly notifications: RpcNotification[];
  /** Ids of the answers in the order they arrived. */
  readonly answered: number[];
  close(): Promise<void>;
}

export interface RpcClientOptions {
  /** Where the daemon listens (default 127.0.0.1). */
  host?: string;
  /** The Origin header a browser would send; none for a local application. */
  origin?: string | null;
  /** Gives up connecting after this long (default 5 s). */
  handshakeTimeoutMs?: number;
  /** Sees every message as it came (scans of the wire). */
  onMessage?: (text: string) => void;
  /**
   * What becomes of calls still unanswered when the connection closes: rejected (default), or left
   * pending (tests that close a tab on purpose and never await its call).
   */
  pendingOnClose?: 'reject' | 'keep';
}

/** Why the connection could not be made: the daemon is not there, or something else answered. */
export class DaemonConnectError extends Error {
  readonly reason: 'refused' | 'refused-handshake' | 'timeout' | 'other';

  constructor(reason: DaemonConnectError['reason'], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DaemonConnectError';
    this.reason = reason;
  }
}

export async function connectDaemon(port: number, options: RpcClientOptions = {}): Promise<RpcClient> {
  const url = `ws://${options.host ?? '127.0.0.1'}:${port}`;
  const ws = new WebSocket(url, { handshakeTimeout: options.handshakeTimeoutMs ?? 5000, ...(options.origin ? { origin: options.origin } : {}) });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', (e: NodeJS.ErrnoException) => {
      const reason = e.code === 'ECONNREFUSED' ? 'refused' : /timeout/i.test(e.message) ? 'timeout' : 'other';
      reject(new DaemonConnectError(reason, `cannot connect to ${url}: ${e.message}`, { cause: e }));
    });
    ws.once('unexpected-response', (_req, res) => {
      reject(new DaemonConnectError('refused-handshake', `${url} refused the WebSocket handshake: HTTP ${res.statusCode ?? 0}`));
      ws.terminate();
    });
  });
  ws.on('error', () => undefined); // a later socket error ends the pending calls through 'close'
  let id = 0;
  const waiting = new Map<number, { resolve: (a: RpcAnswer) => void; reject: (e: Error) => void }>();
  const notifications: RpcNotification[] = [];
  const listeners: ((n: RpcNotification) => void)[] = [];
  const answered: number[] = [];
  ws.on('message', (data) => {
    const text = data.toString();
    options.onMessage?.(text);
    const m = JSON.parse(text) as RpcAnswer & { method?: string; params?: Record<string, unknown> };
    if (m.method) {
      const n = { method: m.method, params: m.params ?? {} };
      notifications.push(n);
      for (const l of listeners) l(n);
    } else if (typeof m.id === 'number') {
      answered.push(m.id);
      waiting.get(m.id)?.resolve(m);
      waiting.delete(m.id);
    }
  });
  ws.on('close', () => {
    if (options.pendingOnClose === 'keep') return;
    for (const w of waiting.values()) w.reject(new Error('the connection to the daemon closed before the answer'));
    waiting.clear();
  });
  return {
    ws,
    notifications,
    answered,
    call: (method, params = {}) =>
      new Promise((resolve, reject) => {
        if (ws.readyState !== WebSocket.OPEN) return reject(new Error('the connection to the daemon is closed'));
        const n = ++id;
        waiting.set(n, { resolve, reject });
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: n, method, params }));
      }),
    next: (method) =>
      new Promise((resolve) => {
        const seen = notifications.find((n) => n.method === method);
        if (seen) return resolve(seen.params);
        listeners.push((n) => n.method === method && resolve(n.params));
      }),
    close: () =>
      new Promise((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) return resolve();
        ws.once('close', () => resolve());
        ws.close();
      }),
  };
}
