#!/bin/bash
# Bug: with fs.protected_regular on, the kernel refuses an O_CREAT open (a
# shell's `>`, fopen "w") of an existing file in a sticky directory that
# belongs neither to the opener nor to the directory's owner, root included
# (EACCES): it protects root from writing into a file another user planted
# in /tmp. truncguard made the new inode itself and renamed it over the
# name, which root may do in a sticky directory: root's `cat lib > /tmp/x`
# succeeded, and the planted name held root's content in a file owned by
# the other user.
# Each case: the same write without truncguard first (refused at level 1 or
# 2; at level 0 it kills the victim), then under truncguard: the kernel's
# answer, the victim alive, the file intact, no temp file; and where the
# kernel allows the open (level 0, a writer without O_CREAT such as cp, a
# group-writable directory at level 1) truncguard replaces the file as usual.
# fs.protected_regular is a global setting: it is changed only around each
# write, and put back at exit.
. "$(dirname "$0")/rlib.sh"
need_victims
need_root "fs.protected_regular and files of another user"
need_shim
SYSCTL=/proc/sys/fs/protected_regular
[ -w "$SYSCTL" ] || skip "$SYSCTL can't be written here"
SAVED=$(cat "$SYSCTL") || skip "$SYSCTL can't be read"
trap 'echo "$SAVED" >"$SYSCTL"; _r_cleanup' EXIT
export TRUNCGUARD_DEBUG=rewrites,decisions

must mkdir -m 1777 "$T/tmp"
must chmod 1777 "$T/tmp"
must mkdir -m 1770 "$T/grp"
must chmod 1770 "$T/grp"
must chown 0:65534 "$T/grp"

# at LEVEL CMD...: CMD with fs.protected_regular at LEVEL.
at() {
  local level=$1
  shift
  echo "$level" >"$SYSCTL" || fail "cannot set $SYSCTL to $level"
  "$@"
  local st=$?
  echo "$SAVED" >"$SYSCTL"
  return $st
}
planted() { fresh_copy "$V1" "$1"; must chown 65534:65534 "$1"; }
# A shell's "cat SRC > DST": an open with O_CREAT|O_TRUNC (cp's has no O_CREAT).
printf '#!/bin/sh\ncat "$1" > "$2"\n' >"$T/redirect" && chmod 755 "$T/redirect" || fail "cannot write $T/redirect"

# refused_at LEVEL LIB: the redirection is refused with and without truncguard.
refused_at() {
  local level=$1 lib=$2 what="root's > over nobody's file in ${2%/*} (level $1)" old
  planted "$lib"
  start_victim "$lib"
  r_run control at "$level" "$T/redirect" "$V2" "$lib"
  stop_victim
  [ "$R_STATUS" -ne 0 ] && grep -q "Permission denied" "$T/control.out" ||
    fail "control: $what without truncguard was not refused: $(r_out control)"
  expect_survived "control: $what without truncguard"
  ok "control: the kernel refuses $what: $(head -n1 "$T/control.out")"
  planted "$lib"
  old=$(inode "$lib")
  start_victim "$lib"
  log_reset
  r_run refused at "$level" "$TG_CMD" "$T/redirect" "$V2" "$lib"
  stop_victim
  expect_kernel_refused refused "$what under truncguard" "$lib" "$old" "Permission denied"
  expect_log "decision file=$lib: pass (O_CREAT of another user's file in a sticky directory, which fs.protected_regular refuses"
  expect_no_temp "${lib%/*}"
}

# replaced_at LEVEL LIB WRITER: "WRITER $V2 LIB", which the kernel allows:
# without truncguard the victim dies, under truncguard it lives and the name
# has a new inode.
replaced_at() {
  local level=$1 lib=$2 writer=$3 what="root's ${3##*/} over nobody's file in ${2%/*} (level $1)"
  planted "$lib"
  start_victim "$lib"
  r_run control at "$level" "$writer" "$V2" "$lib"
  stop_victim
  [ "$R_STATUS" -eq 0 ] || fail "control: $what failed: $(r_out control)"
  expect_killed "control: $what without truncguard"
  planted "$lib"
  R_WRITER=$writer control_replaced "$what" "$lib" at "$level"
}

refused_at 1 "$T/tmp/libvictim.so"
refused_at 2 "$T/tmp/libvictim.so"
refused_at 2 "$T/grp/libvictim.so"
replaced_at 0 "$T/tmp/libvictim.so" "$T/redirect"
replaced_at 1 "$T/grp/libvictim.so" "$T/redirect"
replaced_at 2 "$T/tmp/libvictim.so" cp

# Where /proc shows no sys (systemd's ProcSubset=pid: a proc mounted with
# subset=pid), the level can't be read and the kernel's default, 0, is
# assumed (README): the redirection the kernel refuses at level 2 (above)
# replaces the file under truncguard. Control: the same proc mount without
# truncguard, refused.
subset_pid() { unshare -m sh -c 'mount -t proc -o subset=pid proc /proc && [ ! -e /proc/sys ] && exec "$@"' _ "$@"; }
if subset_pid true 2>/dev/null; then
  planted "$T/tmp/libvictim.so"
  r_run control at 2 subset_pid "$T/redirect" "$V2" "$T/tmp/libvictim.so"
  [ "$R_STATUS" -ne 0 ] && grep -q "Permission denied" "$T/control.out" ||
    fail "control: root's > over nobody's file in $T/tmp (level 2, proc subset=pid) was not refused: $(r_out control)"
  planted "$T/tmp/libvictim.so"
  R_WRITER=$T/redirect control_replaced "root's > over nobody's file in $T/tmp (level 2, /proc without sys)" "$T/tmp/libvictim.so" at 2 subset_pid
else
  note "no proc mount with subset=pid here (Linux 5.8+, a mount namespace): /proc without sys not tested"
fi
