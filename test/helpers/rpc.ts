/** A JSON-RPC client of the daemon for tests: calls, notifications, and the wire as it was seen. */
import WebSocket from 'ws';

export interface RpcAnswer {
  id?: number;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data: { code: string } & Record<string, unknown> };
}

export interface RpcClient {
  ws: WebSocket;
  call(method: string, params?: Record<string, unknown>): Promise<RpcAnswer>;
  /** The params of the first notification `method` (already received, or the next one). */
  next(method: string): Promise<Record<string, unknown>>;
  notifications: { method: string; params: Record<string, unknown> }[];
  /** Ids of the answers in the order they arrived. */
  answered: number[];
  close(): Promise<void>;
}

export interface RpcClientOptions {
  /** Where to connect (default 127.0.0.1). */
  host?: string;
  /** Sees every message as it came (for scans of the wire). */
  onMessage?: (text: string) => void;
}

export async function rpcClient(port: number, origin: string | null = null, options: RpcClientOptions = {}): Promise<RpcClient> {
  const ws = new WebSocket(`ws://${options.host ?? '127.0.0.1'}:${port}`, origin ? { origin } : {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode ?? 0}`)));
  });
  let id = 0;
  const waiting = new Map<number, (a: RpcAnswer) => void>();
  const notifications: RpcClient['notifications'] = [];
  const listeners: ((n: RpcClient['notifications'][number]) => void)[] = [];
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
      waiting.get(m.id)?.(m);
      waiting.delete(m.id);
    }
  });
  return {
    ws,
    notifications,
    answered,
    call: (method, params = {}) =>
      new Promise((resolve) => {
        const n = ++id;
        waiting.set(n, resolve);
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
        if (ws.readyState === ws.CLOSED) return resolve();
        ws.once('close', () => resolve());
        ws.close();
      }),
  };
}
