#!/usr/bin/env bash
# Installs the Debian packages cpsd needs to build and to run its tests against the real PC/SC stack.
# libpcsclite-dev must be there before `npm ci`: the pcsclite addon compiles against it.
# vsmartcard-vpcd is a test/demo dependency only: its virtual reader listens on all interfaces.
# chromium drives the end-to-end login test (test/e2e/browser.test.ts) through playwright-core.
# firefox-esr drives the Local Network Access tests with Chromium (test/e2e/lna.test.ts), through puppeteer-core
# over WebDriver BiDi (no browser download).
# openssl judges the trust layer (openssl verify, openssl ocsp as a real OCSP responder); redis-server backs
# the shared nonce store's tests (test/trust/); redis-sentinel, Sentinel failover under cpsd-idp (test/e2e/idp-failover.test.ts). tmux captures `cpsd doctor` as a terminal shows it
# (test/e2e/doctor-screens.test.ts). systemd gives systemd-analyze and systemctl, which judge `cpsd service`
# (test/e2e/service.test.ts); it is not started.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# The PKCS#11 module (pkcs11/module, C) is built with gcc and make, and for Windows with mingw-w64 (CI checks it
# compiles). Independent programs judge it: pkcs11-tool (opensc), certutil/modutil/selfserv/tstclnt
# (libnss3-tools), the libp11 engine for openssl s_client (libengine-pkcs11-openssl), p11tool and gnutls-cli
# (gnutls-bin, through p11-kit's .module file), keytool and SunPKCS11 (openjdk-17-jdk-headless), pdfsig
# (poppler-utils), qpdf (PDFs with cross-reference streams for the signing tests), nginx as the site that
# requires a client certificate, and the browsers' own PIN dialogs in a real X server (xvfb, xdotool). Apache
# httpd with mod_auth_openidc is a relying party nobody here wrote, for cpsd-idp's back-channel logout
# (test/e2e/idp-logout.test.ts); it is started by the test, never as a service.
PACKAGES=(pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools opensc iproute2 chromium firefox-esr openssl redis-server redis-sentinel tmux systemd
  gcc make libc6-dev gcc-mingw-w64-x86-64 libnss3-tools libengine-pkcs11-openssl gnutls-bin p11-kit openjdk-17-jdk-headless
  poppler-utils qpdf nginx xvfb xdotool python3-pykcs11 imagemagick apache2 libapache2-mod-auth-openidc)
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
node_ok() { command -v node >/dev/null && node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=19)?0:1)'; }
# Debian 13 ships Node.js 20.19; on older releases install Node >= 20.19 first (e.g. from NodeSource).
if ! command -v node >/dev/null; then apt-get install -y -q --no-install-recommends nodejs npm; fi
if ! node_ok; then
  echo "cpsd needs Node.js >= 20.19 (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
