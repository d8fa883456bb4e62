/** The daemon's RPC client (daemon/client.ts) as tests use it: positional origin, calls left pending when a tab closes. */
import { connectDaemon, type RpcClient, type RpcClientOptions } from '../../daemon/client.js';

export type { RpcAnswer, RpcClient } from '../../daemon/client.js';

export function rpcClient(port: number, origin: string | null = null, options: Omit<RpcClientOptions, 'origin'> = {}): Promise<RpcClient> {
  return connectDaemon(port, { pendingOnClose: 'keep', ...options, origin });
}
