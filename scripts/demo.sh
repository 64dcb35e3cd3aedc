#!/usr/bin/env bash
# The live demonstration, on real processes:
#   1. a running program has libfoo.so (version 1) loaded and calls into it;
#   2. plain `cp` of version 2 over it kills the program;
#   3. `truncguard cp` of version 2 over it: the program keeps running;
#   4. a fresh process loads version 2; the log says what was protected.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh

B=$PWD/build
VICTIM=$B/tests/victim/victim
V1=$B/tests/victim/libvictim_v1.so
V2=$B/tests/victim/libvictim_v2.so
TRUNCGUARD=$B/shim/truncguard
unset LD_PRELOAD TRUNCGUARD_SCOPE TRUNCGUARD_MODE TRUNCGUARD_ON_FAIL TRUNCGUARD_DEBUG TRUNCGUARD_LOG

dir=$(mktemp -d /tmp/truncguard-demo.XXXXXX)
victim_pid=
cleanup() {
  [ -n "$victim_pid" ] && kill "$victim_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
mkdir "$dir/lib"
LIB=$dir/lib/libfoo.so
# ld.so splits LD_PRELOAD at spaces and colons, and the command refuses a
# library path holding one: from a build tree under such a path (a clone in
# "~/My Projects"), run copies, the command and its library side by side.
if [[ $B == *[\ :]* ]]; then
  mkdir "$dir/bin"
  cp "$TRUNCGUARD" "$B/shim/libtruncguard.so" "$dir/bin/"
  TRUNCGUARD=$dir/bin/truncguard
fi

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '  $ %s\n' "$*"; "$@"; }

start_victim() {
  rm -f "$dir/ready"
  "$VICTIM" "$LIB" 30000 "$dir/ready" >"$dir/victim.out" 2>&1 &
  victim_pid=$!
  for _ in $(seq 200); do [ -e "$dir/ready" ] && break; sleep 0.01; done
  [ -e "$dir/ready" ] || { echo "the victim did not start:"; cat "$dir/victim.out"; exit 1; }
  echo "  victim (pid $victim_pid): $(head -n1 "$dir/victim.out")"
  echo "  inode of libfoo.so: $(stat -c %i "$LIB")"
}

# Lets the victim run into the new file's pages, then reports how it ended.
finish_victim() {
  sleep 0.3
  rm -f "$dir/ready"  # asks it to stop
  local status=0
  wait "$victim_pid" || status=$?
  victim_pid=
  if [ "$status" -gt 128 ]; then
    echo "  => the victim was KILLED by SIG$(kill -l $((status - 128))) (exit status $status)"
  else
    echo "  => the victim is alive and exited normally (status $status): $(tail -n1 "$dir/victim.out")"
  fi
  return 0
}

bold "1. Without truncguard: plain cp over a loaded library"
run cp "$V1" "$LIB"
start_victim
run cp "$V2" "$LIB"
finish_victim

bold "2. With truncguard: the same cp"
run cp "$V1" "$LIB"
start_victim
run "$TRUNCGUARD" cp "$V2" "$LIB"
echo "  inode of libfoo.so now: $(stat -c %i "$LIB")"
finish_victim

bold "3. A fresh process loads the new file"
run "$VICTIM" --once "$LIB"

bold "4. Dry run with the decisions log: what truncguard would do, and why"
run cp "$V1" "$LIB"
start_victim
run "$TRUNCGUARD" --mode=dry-run --debug=decisions,rewrites cp "$V2" "$LIB" || true
finish_victim
echo
echo "The log lines above start with the writer's PID, as glibc's LD_DEBUG does."
