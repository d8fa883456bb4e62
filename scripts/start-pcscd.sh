#!/usr/bin/env bash
# Makes sure pcscd runs with a vpcd virtual reader ("Virtual PCD 00 00" on TCP 35963, "… 00 01" on 35964).
# Uses the running pcscd when there is one; otherwise starts one in the foreground as a background job
# (not --auto-exit: without socket activation nothing would restart it) and prints its PID.
# Also sets the loopback quickack route so the card side can avoid vpcd 3.3's 40 ms delayed-ACK stall.
set -euo pipefail
if ip route replace local 127.0.0.2/32 dev lo table local scope host src 127.0.0.1 quickack 1 2>/dev/null; then
  echo "quickack route set: virtual cards connect to 127.0.0.2" >&2
else
  echo "warning: cannot set the quickack route (needs root): about 44 ms per APDU through vpcd" >&2
fi
listening() { grep -q ':8C7B .* 0A ' /proc/net/tcp 2>/dev/null; }
if [ -S /run/pcscd/pcscd.comm ] && listening; then
  echo "pcscd already running with vpcd" >&2
  exit 0
fi
conf=$(mktemp -d)
printf '%s\n' 'FRIENDLYNAME "Virtual PCD"' 'DEVICENAME   /dev/null:0x8C7B' \
  'LIBPATH      /usr/lib/pcsc/drivers/serial/libifdvpcd.so' 'CHANNELID    0x8C7B' > "$conf/vpcd"
nohup pcscd --foreground --config "$conf" > "$conf/pcscd.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do  # never probe 35963 by connecting: that would insert a card
  [ -S /run/pcscd/pcscd.comm ] && listening && { echo "$pid"; exit 0; }
  kill -0 "$pid" 2>/dev/null || { cat "$conf/pcscd.log" >&2; exit 1; }
  sleep 0.05
done
echo "pcscd did not come up; log: $conf/pcscd.log" >&2
exit 1
