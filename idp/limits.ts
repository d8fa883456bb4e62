/**
 * Login attempts per client address and minute, per instance (a fixed window: enough to stop a script
 * hammering the interaction endpoints; the card's own PIN counter protects the PIN). Behind a load
 * balancer each instance counts its own share; the reverse proxy is the place for a global limit.
 */
export class RateLimiter {
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(
    readonly perMinute: number,
    readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(perMinute) || perMinute < 1) throw new RangeError(`perMinute must be a positive integer, not ${perMinute}`);
  }

  /** Counts one attempt; false when the address is over its limit for this minute. */
  allow(address: string): boolean {
    const now = this.now();
    let window = this.#windows.get(address);
    if (!window || now - window.start >= 60_000) {
      window = { start: now, count: 0 };
      this.#windows.set(address, window);
      // Forget the windows that are over as we go, so the map cannot grow without bound.
      if (this.#windows.size > 10_000) for (const [a, w] of this.#windows) if (now - w.start >= 60_000) this.#windows.delete(a);
    }
    window.count += 1;
    return window.count <= this.perMinute;
  }
}
