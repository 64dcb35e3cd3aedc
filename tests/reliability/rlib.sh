# Helpers for the reliability tests, on top of tests/e2e/lib.sh.  Source it
# first:
#   . "$(dirname "$0")/rlib.sh"
# A test that mounts things sets R_MOUNT_NS=1 before sourcing: as root, it
# then runs in its own mount namespace (unshare -m), so its mounts are
# private and vanish with it.

# A test that needs every process it sees to be inspectable sets R_PID_NS=1:
# as root, it then runs in its own PID and mount namespaces with its own /proc.
if [ "${R_PID_NS:-}" = 1 ] && [ -z "${R_IN_PID_NS:-}" ] && [ "$(id -u)" -eq 0 ] &&
   unshare -p -m --fork --mount-proc --propagation private true 2>/dev/null; then
  R_IN_PID_NS=1 R_IN_MOUNT_NS=1 exec unshare -p -m --fork --mount-proc --propagation private -- bash "$0" "$@"
fi
if [ "${R_MOUNT_NS:-}" = 1 ] && [ -z "${R_IN_MOUNT_NS:-}" ] && [ "$(id -u)" -eq 0 ] &&
   unshare -m --propagation private true 2>/dev/null; then
  R_IN_MOUNT_NS=1 exec unshare -m --propagation private -- bash "$0" "$@"
fi

. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

: "${TG_RTOOL:=$TG_BUILD/tests/reliability/rtool}"
[ -x "$TG_RTOOL" ] || fail "helper program not built: $TG_RTOOL"

# ------------------------------------------------------------ mounts, cleanup

# Mount points to undo (innermost last) and files to make mutable again,
# before lib.sh removes $T.
_r_mounts=()
_r_attrs=()
_r_cleanup() {
  local i
  for ((i = ${#_r_attrs[@]} - 1; i >= 0; i--)); do
    chattr -i -a -- "${_r_attrs[$i]}" 2>/dev/null
  done
  for ((i = ${#_r_mounts[@]} - 1; i >= 0; i--)); do
    umount -l -- "${_r_mounts[$i]}" 2>/dev/null
  done
  _tg_cleanup
}
trap _r_cleanup EXIT

# need_pid_ns: skip unless this test runs in its own PID namespace (R_PID_NS).
need_pid_ns() {
  need_root "a PID namespace with its own /proc"
  [ -n "${R_IN_PID_NS:-}" ] || skip "cannot make a PID namespace with its own /proc (unshare -p -m --mount-proc)"
}

# need_mount_ns: skip unless this test runs in its own mount namespace.
need_mount_ns() {
  need_root "mounts (in a private mount namespace)"
  [ -n "${R_IN_MOUNT_NS:-}" ] || skip "cannot make a private mount namespace (unshare -m)"
}

# r_mount ARGS... MOUNTPOINT: mount, and undo it at exit.
r_mount() {
  mount "$@" || fail "setup step failed: mount $*"
  _r_mounts+=("${!#}")
}

# r_tmpfs DIR OPTIONS: a fresh tmpfs at DIR (created), mode 0755.
r_tmpfs() {
  mkdir -p -- "$1"
  r_mount -t tmpfs -o "mode=0755,$2" tg-reliability "$1"
}

# r_btrfs DIR: a fresh btrfs image (200 MiB, sparse) loop-mounted at DIR
# (created), undone at exit; skips the test where btrfs can't be had here.
r_btrfs() {
  command -v mkfs.btrfs >/dev/null || skip "mkfs.btrfs missing (Debian package btrfs-progs; scripts/setup.sh installs it)"
  grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null || skip "this kernel has no btrfs"
  truncate -s 200M "$T/btrfs.img"
  mkfs.btrfs -q -f "$T/btrfs.img" >"$T/mkfs.out" 2>&1 || fail "setup: mkfs.btrfs: $(cat "$T/mkfs.out")"
  mkdir -p -- "$1"
  mount -o loop "$T/btrfs.img" "$1" 2>"$T/mount.err" || skip "cannot mount a btrfs image here: $(cat "$T/mount.err")"
  _r_mounts+=("$1")
}

# r_chattr FLAGS FILE: chattr, undone at exit (an immutable file can't be removed).
r_chattr() {
  chattr "$1" -- "$2" || return 1
  _r_attrs+=("$2")
}

# r_acl FILE access|default ID [GROUP MASK]: FILE gets the access or default
# POSIX ACL "user::rwx user:ID:rwx group::r-x mask::rwx other::r-x" (setfacl
# -m, with no acl package needed; GROUP and MASK: the group:: and mask::
# permissions in octal, 5 and 7 if not given); as an access ACL, the mode
# shows the mask: rwxrwxr-x.
r_acl() {
  python3 -c '
import os, struct, sys
e = lambda tag, perm, id: struct.pack("<HHI", tag, perm, id)
all = 0xffffffff
group, mask = (int(sys.argv[4]), int(sys.argv[5])) if len(sys.argv) > 5 else (5, 7)
acl = struct.pack("<I", 2) + e(1, 7, all) + e(2, 7, int(sys.argv[3])) + e(4, group, all) + e(0x10, mask, all) + e(0x20, 5, all)
os.setxattr(sys.argv[1], "system.posix_acl_" + sys.argv[2], acl)' "$@"
}

# ------------------------------------------------------------ running writers

# r_run NAME CMD...: run CMD, stdout+stderr to $T/NAME.out; sets R_STATUS.
r_run() {
  local name=$1
  shift
  "$@" >"$T/$name.out" 2>&1
  R_STATUS=$?
}
r_out() { cat -- "$T/$1.out"; }

# victim_write NAME CMD...: a victim loads $LIB (prepared by the caller), CMD
# runs (r_run NAME), the victim is released (VICTIM_STATUS). OLD_INO: the
# inode of $LIB before.
victim_write() {
  local name=$1
  shift
  OLD_INO=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  r_run "$name" "$@"
  stop_victim
}

# ----------------------------------------------------------------- invariants

# expect_control_broken WHAT NAME: after victim_write NAME without
# truncguard: the writer succeeded, and the victim did not come through.
expect_control_broken() {
  [ "$R_STATUS" -eq 0 ] || fail "control ($1): the writer failed: $(r_out "$2")"
  expect_broken "control: $1, without truncguard"
}

# expect_new_inode WHAT NAME: after victim_write NAME under truncguard: the
# writer succeeded, the victim survived, $LIB is a new inode (NEW_INO) with
# the content of $V2.
expect_new_inode() {
  [ "$R_STATUS" -eq 0 ] || fail "$1: the writer failed under truncguard: $(r_out "$2")"
  expect_survived "$1"
  NEW_INO=$(inode "$LIB")
  [ "$NEW_INO" != "$OLD_INO" ] || fail "$1: $LIB kept inode $OLD_INO: it was written in place: $(tg_log)"
  expect_same_content "$LIB" "$V2"
}

# expect_kernel_refused NAME WHAT LIB OLD ERRTEXT: after r_run NAME (the
# writer under truncguard with the decisions category) and stop_victim: the
# kernel refused the write itself (ERRTEXT in the writer's output), the shim
# let the call through (nothing to protect: nothing can be written), the
# victim lives and LIB is still inode OLD with the old content.
expect_kernel_refused() {
  local name=$1 what=$2 lib=$3 old=$4 err=$5
  [ "$R_STATUS" -ne 0 ] || fail "$what: the write succeeded"
  grep -q -- "$err" "$T/$name.out" || fail "$what: the write failed, but not with \"$err\": $(r_out "$name")"
  ok "$what: the kernel's own answer reaches the caller: $(head -n1 "$T/$name.out")"
  expect_survived "$what"
  expect_intact "$lib" "$old" "$V1"
  expect_no_log "replaced file=$lib"
  expect_log "decision file=$lib: pass ("
  ok "the decisions log says: $(log_lines "decision file=$lib" | head -n1 | cut -f2-)"
}

# expect_no_temp DIR: no ".NAME.tg-XXXX" file left in DIR.
expect_no_temp() {
  local left
  left=$(ls -A -- "$1" | grep '\.tg-' || true)
  [ -z "$left" ] || fail "temp file(s) left behind in $1: $left"
  ok "no temp file left in ${1##*/}"
}

# expect_intact LIB OLD_INODE ORIGINAL: the name still holds the very same
# file, complete.
expect_intact() {
  [ -e "$1" ] || fail "$1 is gone"
  [ "$(inode "$1")" = "$2" ] || fail "$1 is no longer inode $2"
  expect_same_content "$1" "$3" "$1 (must be untouched)"
  ok "${1##*/} is intact (inode $2, the original content)"
}

# expect_complete LIB V1 V2: the name holds all of V1 or all of V2.
expect_complete() {
  [ -e "$1" ] || fail "$1 is gone"
  cmp -s -- "$1" "$2" || cmp -s -- "$1" "$3" ||
    fail "$1 holds neither version completely ($(stat -c %s -- "$1") bytes; v1 $(stat -c %s -- "$2"), v2 $(stat -c %s -- "$3"))"
}

# expect_etxtbsy RUN WHAT: the writer run as RUN (r_run) failed with "Text file busy".
expect_etxtbsy() {
  [ "$R_STATUS" -ne 0 ] || fail "$2: the write succeeded; expected \"Text file busy\""
  grep -q "Text file busy" "$T/$1.out" || fail "$2: failed, but not with \"Text file busy\": $(r_out "$1")"
  ok "$2: refused with: $(head -n1 "$T/$1.out")"
}

# expect_cannot_protect LIB STEP ERROR: the log line of the fallback.
expect_cannot_protect() {
  expect_log "cannot protect file=$1: $2: $3; failing with ETXTBSY"
  ok "the log says: cannot protect ...: $2: $3; failing with ETXTBSY"
}

# mode_supported MODE: the shim knows TRUNCGUARD_MODE=MODE (no "unknown" warning).
mode_supported() {
  local out
  out=$(env -u TRUNCGUARD_LOG TRUNCGUARD_MODE="$1" LD_PRELOAD="$TG_SHIM" /bin/true 2>&1)
  ! grep -q "unknown TRUNCGUARD_MODE" <<<"$out"
}

# control_replaced WHAT LIB [WRAPPER...]: the control case of a failure path:
# with the condition absent, the same write protects the victim.  LIB must
# hold a fresh copy of $V1, ready; runs "WRAPPER truncguard cp $V2 LIB"
# (truncguard: $TG_CMD_N if set by nobody_copies, else $TG_CMD; cp: $R_WRITER
# if set, a program taking cp's two arguments).
control_replaced() {
  local what=$1 lib=$2 old new
  shift 2
  old=$(inode "$lib")
  start_victim "$lib"
  log_reset
  r_run control "$@" "${TG_CMD_N:-$TG_CMD}" "${R_WRITER:-cp}" "$V2" "$lib"
  [ "$R_STATUS" -eq 0 ] || fail "control ($what): truncguard cp failed: $(r_out control)"
  stop_victim
  expect_survived "control ($what)"
  expect_same_content "$lib" "$V2"
  new=$(inode "$lib")
  [ "$new" != "$old" ] || fail "control ($what): $lib kept inode $old"
  expect_log "replaced file=$lib [ino $old -> $new]"
  ok "control ($what): replaced, inode $old -> $new"
}

# refused WHAT LIB STEP ERROR [WRAPPER...]: the failure path itself: LIB holds
# a fresh copy of $V1 that a victim is about to load; "WRAPPER truncguard cp
# $V2 LIB" must fail, the victim live on, LIB stay the same complete file, no
# temp file be left, and the log say "cannot protect file=LIB: STEP: ERROR".
# In mode replace (and unlink) the open fails with ETXTBSY.  In mode atomic a
# failure to publish at close must still reach the writer (cp exits non-zero);
# AT_OPEN=WHY: one that the open can foresee (the publishing rename would
# fail), which fails the open with ETXTBSY, after the note "cannot be
# published atomically here (WHY); nor replaced at open, which needs the
# same rename" (it said "replaced at open instead", which never followed).
refused() {
  local what=$1 lib=$2 step=$3 err=$4 old mode=${TRUNCGUARD_MODE:-replace}
  shift 4
  what="$what (mode $mode)"
  old=$(inode "$lib")
  start_victim "$lib"
  log_reset
  r_run refused "$@" "${TG_CMD_N:-$TG_CMD}" cp "$V2" "$lib"
  stop_victim
  if [ "$mode" = atomic ] && [ -n "${AT_OPEN:-}" ]; then
    expect_log "note file=$lib cannot be published atomically here ($AT_OPEN); nor replaced at open, which needs the same rename"
    expect_etxtbsy refused "$what"
  elif [ "$mode" = atomic ] && ! grep -q "Text file busy" "$T/refused.out"; then
    [ "$R_STATUS" -ne 0 ] ||
      fail "$what: cp exited 0, but its file was never published (the writer was not told): $(log_lines "cannot protect file=$lib" | cut -f2-)"
    ok "$what: refused at close with: $(head -n1 "$T/refused.out")"
  else
    expect_etxtbsy refused "$what"
  fi
  expect_survived "$what"
  expect_intact "$lib" "$old" "$V1"
  expect_no_temp "$(dirname -- "$lib")"
  if [ "$mode" = atomic ]; then
    expect_log "cannot protect file=$lib: " ": $err"
    ok "the log says: $(log_lines "cannot protect file=$lib" | tail -n1 | cut -f2-)"
  else
    expect_cannot_protect "$lib" "$step" "$err"
  fi
}

# each_mode FUNCTION: runs FUNCTION once per mode in $FAILPATH_MODES (default
# "replace atomic") with TRUNCGUARD_MODE exported; a mode the shim does not
# know is skipped with a note.
each_mode() {
  local mode
  for mode in ${FAILPATH_MODES:-replace atomic}; do
    if ! mode_supported "$mode"; then
      note "mode $mode: skipped, the shim does not know TRUNCGUARD_MODE=$mode yet"
      continue
    fi
    note "---- mode $mode"
    TRUNCGUARD_MODE=$mode "$1"
  done
}
