/**
 * Limits that cannot be turned against users: connection slots per class (local applications cannot
 * take the slots of web pages, nor one origin all of them), token buckets per connection and per
 * origin (local applications share one bucket), invalid frames paid for like requests.
 */

export type ConnectionClass = 'web' | 'local';

class Bucket {
  #tokens: number;
  #last = Date.now();

  constructor(private readonly rate: number) {
    this.#tokens = rate;
  }

  take(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(this.rate, this.#tokens + ((now - this.#last) / 1000) * this.rate);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

export interface LimitOptions {
  maxConnections: number;
  maxLocalConnections: number;
  ratePerSecond: number;
}

export class Limits {
  readonly #options: LimitOptions;
  readonly #open = { web: 0, local: 0 };
  readonly #perOrigin = new Map<string, number>();
  readonly #originBuckets = new Map<string, Bucket>();

  constructor(options: LimitOptions) {
    this.#options = options;
  }

  /** Whether a connection of `origin` would get a slot now (takes nothing: the handshake may still fail). */
  room(origin: string | null): 'ok' | 'full' {
    const cls: ConnectionClass = origin === null ? 'local' : 'web';
    const max = cls === 'local' ? this.#options.maxLocalConnections : this.#options.maxConnections;
    if (this.#open[cls] >= max) return 'full';
    // One origin gets at most three quarters of the web slots, so it cannot lock the others out.
    if (origin !== null && (this.#perOrigin.get(origin) ?? 0) >= Math.max(1, Math.ceil((max * 3) / 4))) return 'full';
    return 'ok';
  }

  /** Takes a connection slot for a connection that exists (give it back with `release`), or says why not. */
  admit(origin: string | null): 'ok' | 'full' {
    if (this.room(origin) === 'full') return 'full';
    const cls: ConnectionClass = origin === null ? 'local' : 'web';
    this.#open[cls]++;
    if (origin !== null) this.#perOrigin.set(origin, (this.#perOrigin.get(origin) ?? 0) + 1);
    return 'ok';
  }

  release(origin: string | null): void {
    const cls: ConnectionClass = origin === null ? 'local' : 'web';
    this.#open[cls] = Math.max(0, this.#open[cls] - 1);
    if (origin !== null) {
      const n = (this.#perOrigin.get(origin) ?? 1) - 1;
      if (n > 0) this.#perOrigin.set(origin, n);
      else {
        this.#perOrigin.delete(origin);
        this.#originBuckets.delete(origin);
      }
    }
  }

  /** A bucket for one connection. */
  connectionBucket(): Bucket {
    return new Bucket(this.#options.ratePerSecond);
  }

  /** Every message, valid or not, takes a token from its connection and from its origin's bucket. */
  allow(connection: Bucket, origin: string | null): boolean {
    if (!connection.take()) return false;
    const key = origin ?? 'local applications';
    let shared = this.#originBuckets.get(key);
    if (!shared) {
      shared = new Bucket(this.#options.ratePerSecond * 4);
      this.#originBuckets.set(key, shared);
    }
    return shared.take();
  }
}

export type { Bucket };
