#!/usr/bin/env bash
# Quick start: installs what cpsd needs, builds it, starts pcscd with a virtual reader, inserts the
# virtual CPS card (profile "doctor"), starts the demo page (login, document signing) on http://localhost:8080 and runs the
# daemon in the foreground (Ctrl-C stops everything). Test PIN: 1234.
# Run as root (or with sudo) from a clone of the repository. Without pcscd (no root), the daemon runs
# with the in-process virtual card instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir=/usr
PORT="${CPSD_PORT:-24821}"
DEMO_PORT="${CPSD_DEMO_PORT:-8080}"
ORIGIN="http://localhost:$DEMO_PORT"
bash scripts/setup-system.sh
npm ci --no-fund --no-audit
npm run build
node dist/examples/demo/server.js --port "$DEMO_PORT" --daemon-port "$PORT" &
demo=$!
trap 'kill $demo 2>/dev/null || true' EXIT
echo "Demo login page: $ORIGIN (test PIN 1234)" >&2
if bash scripts/start-pcscd.sh >/dev/null; then
  host=127.0.0.1
  ip route show table local 127.0.0.2/32 2>/dev/null | grep -q quickack && host=127.0.0.2
  node dist/cli/cpsd.js sim --profile doctor --vpcd-host "$host" &
  sim=$!
  trap 'kill $sim $demo 2>/dev/null || true' EXIT
  # pcscd polls vpcd about every 400 ms before it reports the card: wait for it (5 s at most).
  for _ in $(seq 1 20); do
    node dist/cli/cpsd.js readers --json 2>/dev/null | grep -q '"cardPresent": true' && break
    sleep 0.25
  done
  node dist/cli/cpsd.js readers
  node dist/cli/cpsd.js identity
  node dist/cli/cpsd.js serve --port "$PORT" --allow-http-localhost --allow-origin "$ORIGIN"
else
  echo "pcscd could not be started: using the in-process virtual card" >&2
  node dist/cli/cpsd.js serve --sim doctor --port "$PORT" --allow-http-localhost --allow-origin "$ORIGIN"
fi
