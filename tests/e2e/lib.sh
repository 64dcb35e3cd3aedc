# Shared helpers for the end-to-end tests.  Source it first:
#   . "$(dirname "$0")/lib.sh"
# It gives every test a private directory $T (removed on exit, with every
# process the test started), the paths of the programs under test, and
# assertions that print one clear "FAIL: ..." line.
#
# Paths come from the environment (meson's test() sets them); run by hand,
# they default to the meson build directory $TG_BUILD (default: build/).
# TG_KEEP=1 keeps $T for a post-mortem.

set -u -o pipefail

TEST_NAME=$(basename "$0" .sh)
_tg_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${TG_BUILD:=$(cd "$_tg_here/../.." && pwd)/build}"
: "${TG_CMD:=$TG_BUILD/shim/truncguard}"
: "${TG_SHIM:=$TG_BUILD/shim/libtruncguard.so}"
: "${TG_VICTIM:=$TG_BUILD/tests/victim/victim}"
: "${TG_SELFWRITER:=$TG_BUILD/tests/victim/selfwriter}"
: "${TG_LIB_V1:=$TG_BUILD/tests/victim/libvictim_v1.so}"
: "${TG_LIB_V2:=$TG_BUILD/tests/victim/libvictim_v2.so}"
: "${TG_DAEMON_V1:=$TG_BUILD/tests/victim/daemon_v1}"
: "${TG_DAEMON_V2:=$TG_BUILD/tests/victim/daemon_v2}"
: "${TG_MARKER_LIB:=$TG_BUILD/tests/victim/libpreload_marker.so}"
: "${TG_WRITER:=$TG_BUILD/tests/writers/writer}"
: "${TG_EARLY_LIB:=$TG_BUILD/tests/writers/libearly_writer.so}"
: "${TG_THREADS:=$TG_BUILD/tests/writers/thread_writer}"
: "${TG_FD_TRUNCATOR:=$TG_BUILD/tests/writers/fd_truncator}"
: "${TG_LOCK_HOLDER:=$TG_BUILD/tests/writers/lock_holder}"
: "${TG_PASSMATRIX:=$TG_BUILD/tests/writers/passmatrix}"
: "${TG_JUMP_WRITER:=$TG_BUILD/tests/writers/jump_writer}"
: "${TG_FORK_WRITER:=$TG_BUILD/tests/writers/fork_writer}"
: "${TG_CANCEL_WRITER:=$TG_BUILD/tests/writers/cancel_writer}"
: "${TG_VFORK_SYSCALL:=$TG_BUILD/tests/writers/vfork_syscall}"
: "${TG_BAD_EXEC:=$TG_BUILD/tests/writers/bad_exec}"
: "${TG_CHOWN_WITNESS_LIB:=$TG_BUILD/tests/writers/libchown_witness.so}"
# How long a victim runs if nobody releases it.  Tests release it by removing
# its ready file, so this is only a safety net; it is long on purpose: a
# victim that merely outlived the writer must not look like a survivor.
: "${TG_VICTIM_MS:=20000}"

# fds 0-2 open, if only on /dev/null: with stdin closed (`meson test <&-`, a
# CI runner's), the next open took fd 0, and the programs under test counted
# their free fds wrong (invisible's "emfile1" had none: ETXTBSY, documented
# for no fd at all, where the matrix expected a truncate).
for _tg_d in 0 1 2; do
  { : >&"$_tg_d"; } 2>/dev/null || eval "exec $_tg_d<>/dev/null"
done

# A test sees only the settings it sets itself.
unset LD_PRELOAD TRUNCGUARD_SCOPE TRUNCGUARD_MODE TRUNCGUARD_ON_FAIL \
      TRUNCGUARD_DEBUG TRUNCGUARD_LOG
export LC_ALL=C
# The administrator's tools the tests run as root (mkfs.*, losetup, chroot,
# xfs_io...) are in the sbin directories, which a minimal PATH (env -i, cron:
# /usr/bin:/bin) leaves out: those tests skipped, "mkfs.btrfs missing".
for _tg_d in /usr/local/sbin /usr/sbin /sbin; do
  [[ :$PATH: == *:$_tg_d:* ]] || PATH=$PATH:$_tg_d
done

# ---------------------------------------------------------------- reporting

# The logs and victim outputs, shown when a test fails.
_tg_dump() {
  local f
  for f in "$T"/logs/log.* "$T"/*.out; do
    [ -e "$f" ] || continue
    echo "---- ${f#"$T"/}" >&2
    tail -n 30 -- "$f" >&2
  done
}

fail() {
  echo "FAIL: $TEST_NAME: $*" >&2
  _tg_dump
  exit 1
}

skip() {
  echo "SKIP: $TEST_NAME: $*"
  exit 77
}

ok() { echo "ok: $*"; }
note() { echo "# $*"; }

# must CMD...: a setup step that has to work.
must() {
  "$@" || fail "setup step failed (exit $?): $*"
}

# "exit N" or "killed by SIGxxx" for a wait status.
describe_status() {
  if [ "$1" -gt 128 ]; then
    echo "killed by SIG$(kill -l $(($1 - 128)) 2>/dev/null || echo "?$(($1 - 128))")"
  else
    echo "exit $1"
  fi
}

# ------------------------------------------------------ private dir, cleanup

_tg_pids=()
_tg_cleanup() {
  local p
  for p in "${_tg_pids[@]}"; do
    kill -KILL "$p" 2>/dev/null
  done
  wait 2>/dev/null
  if [ -n "${TG_KEEP:-}" ]; then
    tg_disown_dir "$T"
    echo "# kept $T" >&2
  else
    rm -rf -- "$T"
  fi
}

. "$_tg_here/private_dir.sh"
tg_remove_stale tg-e2e- tg-reload-
T=$(mktemp -d /tmp/tg-e2e-"$TEST_NAME".XXXXXX) || { echo "FAIL: mktemp" >&2; exit 1; }
chmod 755 "$T"          # an unprivileged writer must be able to get in
tg_own_dir "$T" || { echo "FAIL: cannot lock $T/.harness-owner" >&2; rm -rf -- "$T"; exit 1; }
trap _tg_cleanup EXIT
trap 'exit 130' INT TERM
cd "$T" || fail "cannot cd to $T"
. "$_tg_here/preload_copies.sh"
preload_copies TG_CMD TG_SHIM TG_MARKER_LIB TG_EARLY_LIB TG_CHOWN_WITNESS_LIB

# Log of the shim: TRUNCGUARD_LOG=$TG_LOG writes $TG_LOG.PID, one file per
# writing process.  The directory is world-writable for unprivileged writers.
mkdir -m 1777 "$T/logs" && chmod 1777 "$T/logs"
TG_LOG=$T/logs/log
export TRUNCGUARD_LOG=$TG_LOG

# --------------------------------------------------------- prerequisites

need_victims() {
  local f
  for f in "$TG_VICTIM" "$TG_SELFWRITER" "$TG_LIB_V1" "$TG_LIB_V2" \
           "$TG_DAEMON_V1" "$TG_DAEMON_V2" "$TG_MARKER_LIB"; do
    [ -e "$f" ] || fail "victim program not built: $f (run meson compile)"
  done
  # Private copies: tests never write to the build tree.
  V1=$T/v1.so
  V2=$T/v2.so
  must cp "$TG_LIB_V1" "$V1"
  must cp "$TG_LIB_V2" "$V2"
  chmod 644 "$V1" "$V2"
  cmp -s "$V1" "$V2" && fail "libvictim_v1.so and libvictim_v2.so are identical"
}

need_shim() {
  [ -x "$TG_CMD" ] || fail "truncguard command not built: $TG_CMD"
  [ -r "$TG_SHIM" ] || fail "shim library not built: $TG_SHIM"
}

# as_nobody CMD...: run CMD as uid/gid 65534 (tests that need root only).
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }

# nobody_copies: copies of the command and the shim that an unprivileged user
# can run. The build tree may sit under a private (0700) directory, as CI's
# fresh clone does, and ld.so silently ignores a preload it can't read.
# Sets TG_CMD_N and TG_SHIM_N (the command finds the library next to itself).
nobody_copies() {
  mkdir -p -m 755 "$T/bin"
  must cp "$TG_CMD" "$T/bin/truncguard"
  must cp "$TG_SHIM" "$T/bin/libtruncguard.so"
  chmod 755 "$T/bin/truncguard" "$T/bin/libtruncguard.so"
  TG_CMD_N=$T/bin/truncguard
  TG_SHIM_N=$T/bin/libtruncguard.so
  as_nobody test -x "$TG_CMD_N" -a -r "$TG_SHIM_N" || fail "nobody cannot use $T/bin even so"
}

# shim_of_version V OUT: OUT is a copy of the shim whose ELF note says it
# reads hand-over version V (elf_probe.hpp), or, for V=0, carries no such
# note (a build older than it): another build, as far as the note tells.
# shim_hand_over_version: the version the shim's own note says.
shim_of_version() { shim_note "$@" || fail "cannot make a copy of the shim of version $1"; }
shim_hand_over_version() { shim_note || fail "cannot read the shim's hand-over version"; }
shim_note() {
  python3 - "$TG_SHIM" "$@" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read()
# The first: the note itself, near the file's start (the debug info may repeat it).
m = re.search(rb"\x0b\0\0\0\x04\0\0\0\x01\0\0\0truncguard\0\0(....)", data, re.S)
assert m, "the shim has no hand-over note"
if len(sys.argv) == 2:
    print(int.from_bytes(m.group(1), "little"))
    sys.exit()
version, out = int(sys.argv[2]), sys.argv[3]
new = m.group(0)[:12] + (b"truncguarX\0\0" if version == 0 else b"truncguard\0\0") + version.to_bytes(4, "little")
open(out, "wb").write(data[:m.start()] + new + data[m.end():])
PY
}

# shim_has_asan: the shim is a sanitizer build, which brings the ASan
# runtime into every program it is preloaded into.
shim_has_asan() { grep -qa 'libasan\.so' "$TG_SHIM"; }

# In a sanitizer build the shim brings the ASan runtime in as its dependency.
# ASan looks up ld.so's _dl_get_tls_static_info with RTLD_NEXT at start-up, so
# ld.so must come after it in the lookup order; a program that names
# ld-linux-x86-64.so.2 among its own NEEDED libraries (gcc, ld.gold, ld.lld,
# the nodejs.org build of node) puts ld.so before it, and ASan calls a null
# pointer before main. Such writers are skipped there, with $NO_ASAN.
NO_ASAN="it lists ld.so as a NEEDED library: the ASan runtime the sanitizer build's shim brings can't start in it"
asan_cannot_start() {
  shim_has_asan || return 1
  readelf -d "$(command -v "$1")" 2>/dev/null | grep -q 'NEEDED.*\[ld-linux'
}

need_root() {
  [ "$(id -u)" -eq 0 ] || skip "needs root: $*"
}

# ------------------------------------------------------------- victims

# _start_bg READYFILE OUTFILE CMD...: start CMD in the background and wait
# (bounded) until it creates READYFILE.  Sets BG_PID.  A CMD that ends with
# status 77 first says what it needs is missing here: the test skips.
_start_bg() {
  local ready=$1 out=$2 i
  shift 2
  rm -f -- "$ready"
  "$@" >"$out" 2>&1 &
  BG_PID=$!
  _tg_pids+=("$BG_PID")
  for ((i = 0; i < 1000; i++)); do    # up to 10 s
    [ -e "$ready" ] && return 0
    if ! kill -0 "$BG_PID" 2>/dev/null; then
      wait "$BG_PID"
      local st=$?
      [ "$st" -eq 77 ] && skip "$* can't run here: $(cat -- "$out")"
      fail "$* ended ($(describe_status $st)) before it was ready: $(cat -- "$out")"
    fi
    sleep 0.01
  done
  fail "$* not ready after 10 s"
}

_tg_nvictims=0

# start_victim LIB: a process that dlopen'ed LIB and keeps calling it.
# Sets VICTIM_PID, VICTIM_READY, VICTIM_OUT.
start_victim() {
  _tg_nvictims=$((_tg_nvictims + 1))
  VICTIM_READY=$T/ready.$_tg_nvictims
  VICTIM_OUT=$T/victim.$_tg_nvictims.out
  _start_bg "$VICTIM_READY" "$VICTIM_OUT" "$TG_VICTIM" "$1" "$TG_VICTIM_MS" "$VICTIM_READY"
  VICTIM_PID=$BG_PID
  VICTIM_KIND=victim
}

# start_daemon EXE: a running executable.  Same variables as start_victim.
start_daemon() {
  _tg_nvictims=$((_tg_nvictims + 1))
  VICTIM_READY=$T/ready.$_tg_nvictims
  VICTIM_OUT=$T/daemon.$_tg_nvictims.out
  _start_bg "$VICTIM_READY" "$VICTIM_OUT" "$1" "$TG_VICTIM_MS" "$VICTIM_READY"
  VICTIM_PID=$BG_PID
  VICTIM_KIND=daemon
}

# stop_victim: release the victim (remove its ready file) and reap it.
# Sets VICTIM_STATUS.  A victim killed by the writer is already dead.
stop_victim() {
  rm -f -- "$VICTIM_READY"
  wait "$VICTIM_PID" 2>/dev/null
  VICTIM_STATUS=$?
}

# expect_survived WHAT: the victim ran on, released by us, with its old code.
expect_survived() {
  [ "$VICTIM_STATUS" -eq 0 ] ||
    fail "$1: the $VICTIM_KIND $(describe_status "$VICTIM_STATUS"), expected exit 0"
  grep -q "released" "$VICTIM_OUT" ||
    fail "$1: the $VICTIM_KIND stopped on its own, not when released: the write may have come after it ended"
  ok "$1: the $VICTIM_KIND survived"
}

# expect_killed WHAT: the unprotected case really destroys the victim, so the
# protected case cannot pass by luck.
expect_killed() {
  if [ "$VICTIM_STATUS" -le 128 ]; then
    fail "$1: the $VICTIM_KIND $(describe_status "$VICTIM_STATUS"), expected death by a signal"
  fi
  ok "$1: the $VICTIM_KIND was $(describe_status "$VICTIM_STATUS")"
}

# expect_broken WHAT: for writes in place, without truncguard the victim must
# not come through: killed by a signal, or it saw its code change (exit 3).
expect_broken() {
  if [ "$VICTIM_STATUS" -le 128 ] && [ "$VICTIM_STATUS" -ne 3 ]; then
    fail "$1: the victim $(describe_status "$VICTIM_STATUS"), expected a signal or exit 3 (code changed)"
  fi
  ok "$1: the victim $(describe_status "$VICTIM_STATUS")"
}

# check_writer NAME WRITER...: a write in place of $V1's copy at $LIB while a
# victim runs it: without truncguard the victim is broken; under "$TG_CMD"
# it survives, the name has a new inode and the log names the victim. The
# writer's stdout goes to $T/writer.out.
check_writer() {
  local name=$1 old new
  shift
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  "$@" >"$T/writer.out" || fail "control: $name failed"
  sleep 0.2
  stop_victim
  expect_broken "control: $name without truncguard"

  need_shim
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  "$TG_CMD" "$@" >"$T/writer.out" || fail "$name under truncguard failed"
  sleep 0.2
  stop_victim
  expect_survived "$name under truncguard"
  new=$(inode "$LIB")
  [ "$new" != "$old" ] || fail "$name: the name kept inode $old: it was written in place"
  expect_log "replaced file=$LIB [ino $old -> $new] (mode replace); mapped executable by " "pid $VICTIM_PID ("
}

# writer_then_victim WHAT PREFIX VICTIM_LIB CMD...: a writer that holds its
# fd before anyone maps the file, and writes only after a victim does. CMD
# runs in the background and must create PREFIX.ready once its fd is open,
# then wait for PREFIX.go; a victim then maps VICTIM_LIB, the writer goes on
# and ends, and the victim is stopped (VICTIM_STATUS). The writer's stdout
# is in PREFIX.out, its stderr in PREFIX.err.
writer_then_victim() {
  local what=$1 prefix=$2 vlib=$3 wpid i
  shift 3
  rm -f -- "$prefix.ready" "$prefix.go"
  "$@" >"$prefix.out" 2>"$prefix.err" &
  wpid=$!
  for ((i = 0; i < 500; i++)); do [ -e "$prefix.ready" ] && break; sleep 0.01; done
  [ -e "$prefix.ready" ] || fail "$what did not start: $(cat -- "$prefix.err")"
  start_victim "$vlib"
  touch -- "$prefix.go"
  wait "$wpid" || fail "$what failed: $(cat -- "$prefix.err")"
  sleep 0.2
  stop_victim
}

# expect_fd_kept WHAT OUT: fd_truncator's report in OUT says its fd kept
# offset 100, its flags (it prints flags=0xffffffff when F_GETFL changed)
# and FD_CLOEXEC.
expect_fd_kept() {
  grep -q '^offset=100 flags=0x[0-9a-f]* cloexec=1$' "$2" && ! grep -q 'flags=0xffffffff' "$2" ||
    fail "$1: the fd lost its offset, flags or close-on-exec bit: $(cat -- "$2")"
}

# expect_version LIB N: what a fresh process loads from LIB.
expect_version() {
  local got
  got=$("$TG_VICTIM" --once "$1" 2>&1)
  [ "$got" = "version $2" ] ||
    fail "a fresh process loading $1 got \"$got\", expected \"version $2\""
  ok "a fresh process loads version $2"
}

# ----------------------------------------------------------- files, inodes

# other_fs_dir DIR: sets OTHER_FS to a new directory on another filesystem
# than DIR's (a tmpfs at /dev/shm, where /tmp is not one), removed on exit;
# empty where there is none.
other_fs_dir() {
  OTHER_FS=
  if [ -d /dev/shm ] && [ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$1")" ] &&
     OTHER_FS=$(mktemp -d /dev/shm/tg-e2e-"$TEST_NAME".XXXXXX 2>/dev/null); then
    trap 'rm -rf -- "$OTHER_FS"; _tg_cleanup' EXIT
  else
    OTHER_FS=
  fi
}

inode() { stat -c %i -- "$1" || fail "cannot stat $1"; }

# fresh_copy SRC DST: DST becomes a new inode with SRC's content.
fresh_copy() {
  rm -f -- "$2"
  must cp -- "$1" "$2"
}

expect_same_content() {
  cmp -s -- "$1" "$2" || fail "${3:-$1}: content differs from $2"
}

# ----------------------------------------------------- who can be inspected

# The pids whose /proc/PID/maps this user cannot open.  The shim cannot
# prove that such a process does not map a file, so (by the contract) it
# treats an ELF shared object as possibly in use.  Permission is checked at
# open(), so open the file rather than test it.
uninspectable_processes() {
  local p
  for p in /proc/[0-9]*; do
    { : <"$p/maps"; } 2>/dev/null || { [ -e "$p" ] && echo "${p#/proc/}"; }
  done
}

# run_alone CMD...: run CMD where every process it can see is inspectable,
# so "nobody maps this file" is provable.  Normally that is here; if some
# process is uninspectable (e.g. a sandbox's pid 1), in a new pid namespace
# with its own /proc, with TRUNCGUARD_SCOPE=namespace (the processes outside
# it would count as uninspected too).  Skips the test if neither is possible.
run_alone() {
  local hidden
  hidden=$(uninspectable_processes | head -n 8 | paste -sd ' ')
  if [ -z "$hidden" ]; then
    "$@"
    return
  fi
  local ns
  for ns in "--pid" "--user --map-root-user --pid"; do
    # shellcheck disable=SC2086  # two ways to ask for the namespace
    if unshare $ns --fork --mount-proc true 2>/dev/null; then
      note "processes $hidden cannot be inspected: running \"${*##*/}\" in its own pid namespace"
      unshare $ns --fork --mount-proc env TRUNCGUARD_SCOPE=namespace "$@"
      return
    fi
  done
  skip "processes $hidden cannot be inspected and no pid namespace can be made: an unmapped file cannot be proven unmapped"
}

# --------------------------------------------------------------- the log

log_reset() { rm -f -- "$TG_LOG".*; }
tg_log() { cat -- "$TG_LOG".* 2>/dev/null; }

# long_lib_dir: sets LONG_DIR to a directory under $T whose path is over
# 1,100 bytes (five components of 220), holding copies of the marker library
# and of the shim under their own names: preload entries longer than the
# shim's 1 KiB buffer, which ld.so loads all the same.
long_lib_dir() {
  LONG_DIR=$T/long
  for _ in 1 2 3 4 5; do LONG_DIR=$LONG_DIR/$(printf 'd%.0s' $(seq 220)); done
  mkdir -p "$LONG_DIR" || fail "cannot make a directory of ${#LONG_DIR} bytes"
  cp "$TG_MARKER_LIB" "$LONG_DIR/${TG_MARKER_LIB##*/}" && cp "$TG_SHIM" "$LONG_DIR/${TG_SHIM##*/}" ||
    fail "cannot copy into $LONG_DIR"
}

# log_lines SUBSTRING...: the log lines that contain every SUBSTRING.
log_lines() {
  local lines s
  lines=$(tg_log) || return 1
  for s in "$@"; do
    lines=$(grep -F -- "$s" <<<"$lines") || return 1
  done
  printf '%s\n' "$lines"
}

expect_log() {
  log_lines "$@" >/dev/null ||
    fail "no log line contains all of: $(printf '[%s] ' "$@")"
  expect_log_well_formed
}

# expect_note_key KEY: the log, written as JSON (TRUNCGUARD_LOG_FORMAT=json),
# has a note with the key KEY (README, docs/ci.md): the text log shows none.
expect_note_key() {
  command -v python3 >/dev/null || { note "SKIP the JSON log's note key $1: python3 is not installed"; return; }
  tg_log | python3 -c '
import json, sys
sys.exit(not any(e.get("event") == "note" and e.get("note") == sys.argv[1] for e in map(json.loads, sys.stdin)))' "$1" ||
    fail "the JSON log has no note with the key $1: $(tg_log)"
  ok "the JSON log's note has the key $1"
}

expect_no_log() {
  local l
  if l=$(log_lines "$@"); then
    fail "unexpected log line: $l"
  fi
}

# Every line starts with the pid in 10 columns, a colon and a tab, as
# LD_DEBUG does; a raw newline inside a path would break that.
expect_log_well_formed() {
  local bad
  bad=$(tg_log | LC_ALL=C awk 'substr($0, 1, 10) !~ /^ *[0-9]+$/ || substr($0, 11, 2) != ":\t"')
  [ -z "$bad" ] || fail "malformed log line(s): $bad"
}

# --------------------------------------------------------- the core scenario

_tg_prepare_lib() {
  if declare -F prepare_lib >/dev/null; then prepare_lib; fi
}

# prove_protection WRITER [WRAPPER...]
# WRITER is a shell function that writes $V2 over $LIB, running its command
# after "$@" (so "$@" can be a wrapper, e.g. "$TG_CMD").
#  1. control: a victim has $LIB loaded, WRITER runs without truncguard:
#     the victim must die by a signal.
#  2. the same under WRAPPER (default "$TG_CMD"): the victim lives on,
#     a fresh process loads version 2, the name has a new inode, and the log
#     says "replaced file=$LIB [ino OLD -> NEW] (mode replace)" naming the
#     victim's pid.  $LIB_IN_LOG overrides how the log spells $LIB, and
#     the victim loads $VICTIM_LIB (default $LIB).
# If the test defines a function prepare_lib, it runs after each fresh copy
# of $LIB, before the victim loads it.
prove_protection() {
  local writer=$1 old new st how w
  shift
  [ $# -gt 0 ] || set -- "$TG_CMD"
  how=$(for w in "$@"; do printf '%s ' "${w##*/}"; done)
  how=${how% }

  fresh_copy "$V1" "$LIB"
  _tg_prepare_lib
  start_victim "${VICTIM_LIB:-$LIB}"
  $writer
  st=$?
  [ "$st" -eq 0 ] || fail "control: $writer without truncguard failed (exit $st)"
  stop_victim
  expect_killed "control: $writer without truncguard"

  need_shim
  fresh_copy "$V1" "$LIB"
  _tg_prepare_lib
  old=$(inode "$LIB")
  start_victim "${VICTIM_LIB:-$LIB}"
  log_reset
  $writer "$@"
  st=$?
  [ "$st" -eq 0 ] || fail "$writer under $how failed (exit $st)"
  stop_victim
  expect_survived "$writer under $how"
  expect_version "$LIB" 2
  expect_same_content "$LIB" "$V2"
  new=$(inode "$LIB")
  [ "$new" != "$old" ] || fail "the name $LIB kept inode $old: it was truncated in place"
  expect_log "replaced file=${LIB_IN_LOG:-$LIB} [ino $old -> $new] (mode replace); mapped executable by " \
             "pid $VICTIM_PID ("
  ok "the log names ${LIB_IN_LOG:-$LIB}, the inodes and the victim's pid"
}
