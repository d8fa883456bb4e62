/**
 * How cpsd-idp's Node process runs (the systemd unit of docs/idp.md, `npm run bench:idp`).
 *
 * `--v8-pool-size=0`: V8's helper threads (concurrent marking, parallel scavenges) sized to the machine
 * (one less than its cores) instead of Node's fixed 4. On a 2-core machine four GC helpers compete with
 * the IdP's own thread for the cores: bench:idp at 8 logins in flight, p99 43.2–49.2 ms (median 45.1)
 * with the default against 38.1–45.8 ms (median 41.7) with it, five interleaved runs each (docs/performance.md).
 * It can only be given on the command line: the pool is made before any script runs.
 */
export const IDP_NODE_FLAGS: readonly string[] = ['--v8-pool-size=0'];
