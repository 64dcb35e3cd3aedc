#!/usr/bin/env bash
# Installs the dependencies if needed, configures build/ once, and builds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
