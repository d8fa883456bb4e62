#!/usr/bin/env bash
# Quick start: installs what cpsd needs, builds it, starts pcscd with a virtual reader, inserts the
# virtual test card and shows what cpsd sees. Run as root (or with sudo) from a clone of the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir=/usr
bash scripts/setup-system.sh
npm ci --no-fund --no-audit
npm run build
bash scripts/start-pcscd.sh >/dev/null
host=127.0.0.1
ip route show table local 127.0.0.2/32 2>/dev/null | grep -q quickack && host=127.0.0.2
node dist/cli/cpsd.js sim --vpcd-host "$host" &
sim=$!
trap 'kill $sim 2>/dev/null || true' EXIT
# pcscd polls vpcd about every 400 ms before it reports the card: wait for it (5 s at most).
for _ in $(seq 1 20); do
  node dist/cli/cpsd.js readers --json 2>/dev/null | grep -q '"cardPresent": true' && break
  sleep 0.25
done
node dist/cli/cpsd.js readers
