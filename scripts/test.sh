#!/usr/bin/env bash
# Builds and runs every test (unit and end-to-end), then prints one line:
#   N passed, N failed, N skipped
# with the counts from this run. Exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh || { echo "0 passed, 1 failed"; echo "build failed" >&2; exit 1; }

rm -f build/meson-logs/testlog.json
meson test -C build --print-errorlogs "$@"
status=$?

# meson writes one JSON object per test: count what really ran.
if [ ! -s build/meson-logs/testlog.json ]; then
  echo "no test results found in build/meson-logs/testlog.json" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
read -r passed failed skipped < <(python3 - <<'PY'
import json
p = f = s = 0
with open("build/meson-logs/testlog.json") as log:
    for line in log:
        r = json.loads(line)["result"]
        if r == "OK": p += 1
        elif r == "SKIP": s += 1
        else: f += 1   # FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, EXPECTEDFAIL
print(p, f, s)
PY
)
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
