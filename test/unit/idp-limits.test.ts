/** cpsd-idp's login rate limit: per client address and minute; behind the reverse proxy, per X-Forwarded-For. */
import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../idp/limits.js';
import { startIdp, type RunningIdp } from '../../idp/server.js';

describe('RateLimiter', () => {
  it('allows perMinute attempts, refuses the next, and starts over a minute later', () => {
    let now = 0;
    const limiter = new RateLimiter(2, () => now);
    expect([limiter.allow('a'), limiter.allow('a'), limiter.allow('a')]).toEqual([true, true, false]);
    expect(limiter.allow('b')).toBe(true);
    now = 60_000;
    expect(limiter.allow('a')).toBe(true);
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => new RateLimiter(0)).toThrow(RangeError);
  });
});

describe('the interaction endpoints', () => {
  let idp: RunningIdp | undefined;
  afterEach(async () => idp?.close());

  const KEY = 'limits-cookie-key-0123456789abcdef0123';
  const start = async (behindProxy: boolean): Promise<RunningIdp> =>
    (idp = await startIdp({
      port: 0,
      clients: [{ client_id: 'c', client_secret: 's', redirect_uris: ['http://localhost:1/cb'] }],
      trust: { trustAnchors: [] },
      daemonPort: 1,
      allowHttpLocalhost: true,
      cookieKeys: [KEY],
      loginsPerMinute: 3,
      behindProxy,
      audit: () => undefined,
    }));
  /** A POST that passes Origin and CSRF (the HMAC of the uid under the first cookie key), as the page's would. */
  const post = (running: RunningIdp, headers: Record<string, string> = {}): Promise<number> =>
    fetch(`${running.issuer}/interaction/uid1/nonce`, {
      method: 'POST',
      headers: { Origin: running.issuer, 'X-CSRF': createHmac('sha256', KEY).update('csrf:uid1').digest('base64url'), ...headers },
    }).then((r) => r.status);

  it('answers 429 after loginsPerMinute attempts from one address', async () => {
    const running = await start(false);
    const statuses = [await post(running), await post(running), await post(running), await post(running)];
    // 404: no interaction cookie (past the limit check); then 429.
    expect(statuses).toEqual([404, 404, 404, 429]);
  });

  it('counts per X-Forwarded-For address behind the reverse proxy', async () => {
    const running = await start(true);
    for (let i = 0; i < 3; i++) await post(running, { 'X-Forwarded-For': '10.0.0.1' });
    expect(await post(running, { 'X-Forwarded-For': '10.0.0.1' })).toBe(429);
    // The proxy appends its client: the right-most address counts, whatever the client wrote before it.
    expect(await post(running, { 'X-Forwarded-For': '10.0.0.1, 192.168.1.1' })).toBe(404);
    expect(await post(running, { 'X-Forwarded-For': '192.168.1.9, 10.0.0.1' })).toBe(429);
  });

  it('does not believe X-Forwarded-For when not behind a proxy', async () => {
    const running = await start(false);
    for (let i = 0; i < 3; i++) await post(running, { 'X-Forwarded-For': `10.0.0.${i}` });
    expect(await post(running, { 'X-Forwarded-For': '10.0.0.9' })).toBe(429);
  });
});
