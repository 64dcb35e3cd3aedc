#!/usr/bin/env bash
# Installs the dependencies if needed, configures build/ once, and builds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/builddir.sh
forget_other_tree build
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
