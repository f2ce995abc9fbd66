#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver (Debian packages `chromium`
# and `chromium-driver`) for the dashboard's browser test
# (`cargo test -p switchyard-tests --test e2e dashboard`).
#
# Idempotent: does nothing when both are already there. Needs root (or sudo)
# and a Debian/Ubuntu apt; the test itself fails with a pointer to this
# script when the browser is missing.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "install-browser: chromium and chromedriver already installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-browser: need root (or sudo) to apt-get install chromium chromium-driver" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends chromium chromium-driver

/usr/bin/chromium --version
/usr/bin/chromedriver --version
