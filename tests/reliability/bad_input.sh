#!/bin/bash
# Bad input.  What truncguard must protect, it protects whatever the path
# looks like; what it must not touch passes through exactly as without it
# (same result, same errno, same inode, no "replaced" line):
#  - names with a newline and bytes that are not UTF-8; a path of
#    PATH_MAX - 1 bytes and a final name of NAME_MAX bytes; PATH_MAX bytes;
#  - relative names: openat() with a real directory fd, and the cwd;
#  - O_PATH (with O_WRONLY|O_TRUNC: the kernel ignores both), O_DIRECTORY,
#    a FIFO (O_WRONLY|O_TRUNC|O_NONBLOCK, with and without a reader),
#    /dev/null, /proc/PID/comm.
. "$(dirname "$0")/rlib.sh"
need_victims
need_shim
R=$TG_RTOOL

# protected WHAT LIB [LIB_IN_LOG] -- CMD...: a victim has LIB loaded; CMD
# (which writes $V2 over LIB through the shim) must give LIB a new inode with
# v2, the victim survive, the log name LIB_IN_LOG (or a prefix of it).
protected() {
  local what=$1 lib=$2 in_log=$3 old new
  shift 4
  fresh_copy "$V1" "$lib"
  old=$(inode "$lib")
  start_victim "$lib"
  log_reset
  r_run prot "$@"
  stop_victim
  [ "$R_STATUS" -eq 0 ] || fail "$what: the write failed: $(r_out prot)"
  expect_survived "$what"
  expect_same_content "$lib" "$V2"
  new=$(inode "$lib")
  [ "$new" != "$old" ] || fail "$what: written in place (inode $old)"
  expect_log "replaced file=$in_log" " [ino $old -> $new] (mode "
  expect_no_temp "$(dirname -- "$lib")"
  ok "$what: replaced, inode $old -> $new"
}

# same_as_without WHAT CMD...: CMD's output is the same with the shim
# (preloaded) as without, and the shim logs nothing but decisions.
same_as_without() {
  local what=$1 without with
  shift
  without=$("$@" 2>&1)
  log_reset
  with=$(TRUNCGUARD_DEBUG=decisions LD_PRELOAD=$TG_SHIM "$@" 2>&1)
  [ "$with" = "$without" ] || fail "$what: with truncguard \"$with\", without \"$without\""
  local other
  other=$(tg_log | grep -v "	decision file=" || true)
  [ -z "$other" ] || fail "$what: unexpected log lines: $other"
  ok "$what: same as without truncguard: $with"
}

# ------------------------------------------------------------------- names
odd=$T/$'odd\nname\xff\x01.so'
protected "a name with a newline, 0xff and 0x01" "$odd" "$T/odd\\nname\\xff\\x01.so" -- "$TG_CMD" cp "$V2" "$odd"
if tg_log | grep -q "^name"; then fail "a raw newline reached the log: $(tg_log)"; fi
ok "the log escapes the name: $(log_lines "replaced file=" | cut -f2- | cut -c1-120)"

odd_txt=$T/$'text\nfile\xfe.txt'
echo "old text" >"$odd_txt"
old=$(inode "$odd_txt")
log_reset
"$TG_CMD" cp "$V2" "$odd_txt" || fail "cp over an unmapped oddly named file failed"
[ "$(inode "$odd_txt")" = "$old" ] || fail "an unmapped file with an odd name got a new inode"
expect_no_log "replaced file="
ok "the same odd name, not an ELF file: written in place, untouched by truncguard"

# A path of PATH_MAX - 1 bytes: directories of 200 bytes, then a final name
# that brings the total to exactly 4095.
deep=$T
seg=$(printf 'd%.0s' $(seq 200))
while [ $(( ${#deep} + 201 + 60 )) -lt 4095 ]; do deep=$deep/$seg; done
must mkdir -p "$deep"
base_len=$((4095 - ${#deep} - 1))
long=$deep/$(printf 'L%.0s' $(seq "$base_len"))
[ ${#long} -eq 4095 ] || fail "setup: the long path has ${#long} bytes"
protected "a path of 4095 bytes (PATH_MAX - 1)" "$long" "$T/dddd" -- "$TG_CMD" cp "$V2" "$long"
expect_log_well_formed
ok "the log line for it is well formed ($(log_lines "replaced file=" | head -n1 | wc -c) bytes)"
# The name in the line is cut to 1,535 bytes, "..." at its end (README, "The log").
line=$(log_lines "replaced file=" | head -n1)
name=${line#*replaced file=}
name=${name%% \[ino *}
[ ${#name} -eq 1535 ] && [ "${name: -3}" = "..." ] && [ "${name:0:${#T}}" = "$T" ] ||
  fail "the long name in the log: ${#name} bytes, ending \"${name: -10}\" (expected 1535, ending ...)"
ok "the name in the log is cut to 1535 bytes, ending with ..."
# In the JSON format alike (README): the "file" field, the same 1,535 bytes.
if command -v python3 >/dev/null; then
  log_reset
  "$TG_CMD" --json --scope=elf cp "$V2" "$long" || fail "truncguard --json cp over the 4095-byte path failed"
  tg_log | python3 -c '
import json, sys
prefix = sys.argv[1]
r = next(e for e in map(json.loads, sys.stdin) if e["event"] == "replaced")
assert len(r["file"]) == 1535 and r["file"].endswith("...") and r["file"].startswith(prefix), (len(r["file"]), r["file"][-10:])
' "$T" || fail "the long name in the JSON log is not cut to 1535 bytes ending with ...: $(tg_log | head -c 300)"
  ok "the name in the JSON log is cut to 1535 bytes, ending with ..."
fi

toolong=$long/x
without=$(cp "$V2" "$toolong" 2>&1); st1=$?
with=$("$TG_CMD" cp "$V2" "$toolong" 2>&1); st2=$?
[ "$st1" -ne 0 ] && [ "$st1" -eq "$st2" ] && [ "$with" = "$without" ] ||
  fail "a path of 4097 bytes: with truncguard ($st2) \"$with\", without ($st1) \"$without\""
ok "a path longer than PATH_MAX: the same error as without: ...${with: -40}"

name_max=$T/$(printf 'n%.0s' $(seq 252)).so
protected "a final name of 255 bytes (NAME_MAX)" "$name_max" "$name_max" -- "$TG_CMD" cp "$V2" "$name_max"

# ---------------------------------------------------------- relative names
must mkdir "$T/rel"
protected "openat() with a real directory fd" "$T/rel/lib.so" "lib.so" -- \
  "$TG_CMD" "$R" openat-copy "$T/rel" lib.so "$V2"
protected "a name relative to the cwd" "$T/rel/lib.so" "lib.so" -- \
  bash -c 'cd "$1" && "$2" cp "$3" lib.so' _ "$T/rel" "$TG_CMD" "$V2"
protected "a name with .. in it" "$T/rel/lib.so" "$T/rel/../rel/lib.so" -- \
  "$TG_CMD" cp "$V2" "$T/rel/../rel/lib.so"

# ------------------------------------------------------------ pass-through
LIB=$T/lib.so
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
same_as_without "O_PATH|O_WRONLY|O_TRUNC on a loaded library" "$R" open WRONLY,TRUNC,PATH "$LIB"
same_as_without "O_DIRECTORY|O_WRONLY|O_TRUNC on a loaded library" "$R" open WRONLY,TRUNC,DIRECTORY "$LIB"
same_as_without "O_DIRECTORY|O_RDWR|O_TRUNC on a directory" "$R" open RDWR,TRUNC,DIRECTORY "$T/rel"
same_as_without "O_WRONLY|O_TRUNC on a directory" "$R" open WRONLY,TRUNC "$T/rel"
same_as_without "O_WRONLY|O_TRUNC|O_NOFOLLOW on a symlink to it" \
  bash -c 'ln -sf "$1" "$2" && "$3" open WRONLY,TRUNC,NOFOLLOW "$2"' _ "$LIB" "$T/link.so" "$R"
stop_victim
expect_survived "a victim while O_PATH/O_DIRECTORY/O_NOFOLLOW opens passed by"
expect_intact "$LIB" "$old" "$V1"

fifo=$T/fifo
must mkfifo "$fifo"
same_as_without "a FIFO, O_WRONLY|O_TRUNC|O_NONBLOCK, no reader" "$R" open WRONLY,TRUNC,NONBLOCK "$fifo"
exec {keep}<>"$fifo"   # a reader (and a writer) on it
same_as_without "a FIFO, O_WRONLY|O_TRUNC|O_NONBLOCK, with a reader" \
  bash -c '"$1" open WRONLY,TRUNC,NONBLOCK "$2" | sed "s/ino=[0-9]*/ino=N/"' _ "$R" "$fifo"
exec {keep}>&-
[ -p "$fifo" ] || fail "the FIFO is no longer a FIFO"

same_as_without "/dev/null, O_WRONLY|O_TRUNC" bash -c '"$1" open WRONLY,TRUNC /dev/null >/dev/null && echo fine' _ "$R"
same_as_without "a shell redirection to /dev/null" bash -c 'echo x >/dev/null && echo fine'
[ -c /dev/null ] || fail "/dev/null is no longer a character device"
same_as_without "/proc/PID/comm, written and read back" \
  bash -c 'echo tg-comm-test >"/proc/$$/comm" && cat "/proc/$$/comm"'
ok "/dev/null is still a character device"
