#!/bin/sh
# The upload page in headless Chromium (meson test serve_browser).
# Skipped (77) only when Debian's chromium or the npm package is missing:
#   apt-get install chromium nodejs npm
#   npm ci --prefix tests/serve/browser
set -eu
here=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  echo "SKIP: $CHROMIUM not installed (apt-get install chromium)"; exit 77
fi
if ! command -v node >/dev/null 2>&1; then
  echo "SKIP: node not installed (apt-get install nodejs)"; exit 77
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
  echo "SKIP: playwright-core not installed (npm ci --prefix tests/serve/browser)"; exit 77
fi
export CHROMIUM
exec node "$here/upload.test.mjs"
