#!/usr/bin/env bash
# Builds and runs every test (unit, end-to-end, reliability...), then prints
# one line:
#   N passed, N failed, N skipped
# with the counts from this run. Exits non-zero if anything failed.
#
#   scripts/test.sh                             build/, every test
#   scripts/test.sh --sanitize=address,undefined  build-asan/ (ASan+UBSan), every test
#   scripts/test.sh --sanitize=thread           build-tsan/ (TSan): the tests that can
#                                               run under it (suites unit, concurrency)
# Other arguments go to `meson test` (e.g. --suite reliability, a test name).
set -uo pipefail
cd "$(dirname "$0")/.."

sanitize=
args=()
for a in "$@"; do
  case $a in
    --sanitize=*) sanitize=${a#--sanitize=} ;;
    *) args+=("$a") ;;
  esac
done

if [ -z "$sanitize" ]; then
  B=build
  scripts/build.sh || { echo "0 passed, 1 failed, 0 skipped"; echo "build failed" >&2; exit 1; }
else
  case $sanitize in
    address,undefined | undefined,address) B=build-asan ;;
    thread) B=build-tsan ;;
    *) B=build-${sanitize//,/-} ;;
  esac
  scripts/setup.sh || { echo "0 passed, 1 failed, 0 skipped"; echo "setup failed" >&2; exit 1; }
  # A sanitizer finding must fail the test that hit it: UBSan would otherwise
  # print and go on. Victims are built without sanitizers whatever this says
  # (tests/victim/meson.build).
  recover=()
  [ "$sanitize" = thread ] || recover=(-Dc_args=-fno-sanitize-recover=all -Dcpp_args=-fno-sanitize-recover=all)
  . scripts/builddir.sh
  forget_other_tree "$B"
  if [ -f "$B/build.ninja" ]; then
    # One set up by another meson version refuses `meson configure`
    # ("incompatible with the current version"): set up again.
    meson configure "$B" -Db_sanitize="$sanitize" "${recover[@]}" >/dev/null 2>&1 ||
      meson setup --reconfigure "$B" -Db_sanitize="$sanitize" "${recover[@]}" >/dev/null
  else
    meson setup "$B" -Db_sanitize="$sanitize" "${recover[@]}" >/dev/null
  fi || { echo "0 passed, 1 failed, 0 skipped"; echo "meson setup of $B failed" >&2; exit 1; }
  meson compile -C "$B" >/dev/null ||
    { echo "0 passed, 1 failed, 0 skipped"; echo "build of $B failed" >&2; exit 1; }
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:print_summary=1}
  # The tests that preload the shim set their own ASAN_OPTIONS (the shim goes
  # into programs built without ASan); these are for the others.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_summary=1:detect_leaks=1}
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:history_size=4}
  # TSan can't follow the shim into programs built without it (cp, bash...):
  # only the tests that link the core themselves.
  if [ "$sanitize" = thread ] && [ ${#args[@]} -eq 0 ]; then
    args=(--suite unit --suite concurrency)
  fi
  echo "# $B: -Db_sanitize=$sanitize ${args[*]}"
fi

rm -f "$B/meson-logs/testlog.json"
meson test -C "$B" --print-errorlogs "${args[@]}"
status=$?

# meson writes one JSON object per test: count what really ran.
if [ ! -s "$B/meson-logs/testlog.json" ]; then
  echo "no test results found in $B/meson-logs/testlog.json" >&2
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi
read -r passed failed skipped < <(python3 - "$B/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
with open(sys.argv[1]) as log:
    for line in log:
        r = json.loads(line)["result"]
        if r == "OK": p += 1
        elif r == "SKIP": s += 1
        else: f += 1   # FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, EXPECTEDFAIL
print(p, f, s)
PY
)
if [ -z "$failed" ]; then  # (another meson run wrote the same log meanwhile)
  echo "the test results in $B/meson-logs/testlog.json could not be read" >&2
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
