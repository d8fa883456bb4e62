/** redis-server for the tests (bench/redis-server.ts) and the node-redis clients they drive. */
import { createClient } from 'redis';

export { startRedis, stopRedis, type RedisProcess } from '../../bench/redis-server.js';

export type Client = ReturnType<typeof createClient>;

export async function connect(port: number): Promise<Client> {
  const client = createClient({ socket: { host: '127.0.0.1', port, connectTimeout: 2000, reconnectStrategy: 50 } });
  // node-redis reports connection trouble as 'error' events; unhandled, they would crash the run.
  client.on('error', () => {});
  await client.connect();
  return client;
}

