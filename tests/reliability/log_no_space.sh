#!/bin/bash
# TRUNCGUARD_LOG on a full filesystem: the log file is made (an inode is
# left) but takes no byte. cp over a library a victim runs is protected, and
# its `replaced` line, which was lost without a word (the write dropped), goes
# to stderr, after one warning that says why; the log file holds no part of
# it. In the JSON format too. Control: with room, the line is in the file
# and stderr is empty.
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_root "mounts a small tmpfs"
need_victims
need_shim
need_mount_ns
FULL=$T/full
r_tmpfs "$FULL" size=64k
LIB=$T/libvictim.so
# run_cp FORMAT: cp v2 over the library a victim runs, logging to $FULL/log.
run_cp() {
  rm -f -- "$FULL"/log.*
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  LD_PRELOAD=$TG_SHIM TRUNCGUARD_LOG=$FULL/log TRUNCGUARD_LOG_FORMAT=$1 cp "$V2" "$LIB" >"$T/out" 2>"$T/err"
  CP_STATUS=$?
  stop_victim
  [ "$CP_STATUS" -eq 0 ] || fail "$1: cp exited $CP_STATUS: $(cat -- "$T/err")"
  [ ! -s "$T/out" ] || fail "$1: cp wrote to stdout: $(cat -- "$T/out")"
  cmp -s "$LIB" "$V2" || fail "$1: the library does not hold v2"
}

run_cp text
expect_survived "control, room in the log's filesystem"
grep -qs "replaced file=$LIB " "$FULL"/log.* || fail "control: no replaced line in the log file"
[ ! -s "$T/err" ] || fail "control: stderr: $(cat -- "$T/err")"
ok "control: the line in the log file, stderr empty"

rm -f -- "$FULL"/log.*  # (run_cp's removal would free its page)
dd if=/dev/zero of="$FULL/fill" bs=4k 2>/dev/null  # until ENOSPC
[ "$(df -B1 --output=avail "$FULL" | tail -1 | tr -d ' ')" -eq 0 ] || fail "the tmpfs is not full"
for format in text json; do
  run_cp $format
  expect_survived "$format, the log's filesystem full"
  grep -q "cannot write the log file $FULL/log\.[0-9]*: No space left on device; logging to stderr" "$T/err" ||
    fail "$format: no warning on stderr: $(cat -- "$T/err")"
  [ "$(grep -c 'cannot write the log file' "$T/err")" -eq 1 ] || fail "$format: the warning more than once: $(cat -- "$T/err")"
  if [ $format = text ]; then
    grep -q "replaced file=$LIB " "$T/err" || fail "text: the replaced line is not on stderr: $(cat -- "$T/err")"
  else
    python3 -c '
import json, sys
events = [json.loads(l) for l in open(sys.argv[2])]  # every line, the warning too, an object
sys.exit(0 if any(e.get("event") == "replaced" and e.get("file") == sys.argv[1] for e in events) and
         any(e.get("event") == "warning" and "cannot write the log file" in e.get("message") for e in events) else 1)' "$LIB" "$T/err" ||
      fail "json: stderr is not JSON objects with the replaced one and the warning: $(cat -- "$T/err")"
  fi
  [ ! -s "$(ls "$FULL"/log.* 2>/dev/null | head -1)" ] || fail "$format: the log file holds part of a line"
  ok "$format: the log's filesystem full: the replaced line on stderr after one warning"
done

# One warning per process, however many lines follow it: python copies over
# the library three times (scope elf: each copy protected), three replaced
# lines on stderr, one warning.
rm -f -- "$FULL"/log.*
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
LD_PRELOAD=$TG_SHIM TRUNCGUARD_LOG=$FULL/log TRUNCGUARD_SCOPE=elf python3 -c '
import sys
for _ in range(3):
    with open(sys.argv[1], "wb") as f: f.write(open(sys.argv[2], "rb").read())' "$LIB" "$V2" 2>"$T/err" ||
  fail "python's three copies, the log's filesystem full: $(cat -- "$T/err")"
stop_victim
expect_survived "python's three copies, the log's filesystem full"
[ "$(grep -c "replaced file=$LIB " "$T/err")" -eq 3 ] || fail "three copies: not three replaced lines on stderr: $(cat -- "$T/err")"
[ "$(grep -c 'cannot write the log file' "$T/err")" -eq 1 ] || fail "three copies: not one warning: $(cat -- "$T/err")"
ok "three lines of one process, the log's filesystem full: all on stderr, after one warning"
