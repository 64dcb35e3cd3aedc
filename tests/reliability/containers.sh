#!/bin/bash
# Writers in containers and chroots, on a volume that a process outside runs
# code from:
#  - /proc that is no proc filesystem: a chroot without /proc mounted (its
#    empty directory), or a tmpfs over it. It lists no process, which must
#    not read as "nobody maps it": the library counts as in use and is
#    replaced; a file nobody has open still passes (the lease proves it);
#    `truncguard who` says it can't see processes (exit 2).
# Each with its control: without truncguard the victim dies.
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_victims
need_mount_ns
need_shim

LIB=$T/app/libvictim.so
mkdir -m 755 "$T/app"

# ------------------------------------------------ /proc: no proc filesystem

# no_proc HOW CMD...: CMD in a mount namespace of its own whose /proc is the
# directory under it (HOW=empty: a chroot without /proc) or a tmpfs (HOW=tmpfs).
no_proc() {
  local how=$1
  shift
  unshare -m --propagation private -- sh -c '
    if [ "$1" = empty ]; then umount -l /proc; else mount -t tmpfs tg-masked /proc; fi || exit 99
    shift
    exec "$@"' sh "$how" "$@"
}
no_proc empty test ! -e /proc/self || skip "cannot unmount /proc in a mount namespace of its own"

for how in empty tmpfs; do
  note "---- /proc: $how"
  fresh_copy "$V1" "$LIB"
  victim_write control no_proc "$how" cp "$V2" "$LIB"
  expect_control_broken "cp, /proc $how" control

  fresh_copy "$V1" "$LIB"
  victim_write tgcp no_proc "$how" env LD_PRELOAD="$TG_SHIM" cp "$V2" "$LIB"
  expect_new_inode "/proc $how: cp under truncguard" tgcp
  expect_log "replaced file=$LIB [ino $OLD_INO -> $NEW_INO] (mode replace); mapped executable by nobody known: /proc could not be read"
  ok "/proc $how: $(log_lines "replaced file=$LIB" | cut -f2-)"

  # Nobody has it open: the lease still proves it, and the write goes through.
  old=$(inode "$LIB")
  log_reset
  r_run unused no_proc "$how" env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_DEBUG=decisions cp "$V1" "$LIB"
  [ "$R_STATUS" -eq 0 ] || fail "/proc $how: cp over an unused library failed: $(r_out unused)"
  [ "$(inode "$LIB")" = "$old" ] || fail "/proc $how: an unused library was replaced: $(tg_log)"
  expect_log "decision file=$LIB: pass (no process has it open or mapped (the kernel granted a write lease))"
  ok "/proc $how: a library nobody has open is written in place (the lease proves it)"

  r_run who no_proc "$how" "$TG_CMD" who "$LIB"
  [ "$R_STATUS" -eq 2 ] || fail "/proc $how: truncguard who exited $R_STATUS, expected 2: $(r_out who)"
  grep -q "cannot read /proc: not mounted, not a proc filesystem" "$T/who.out" ||
    fail "/proc $how: truncguard who does not say why: $(r_out who)"
  ok "/proc $how: truncguard who exits 2: $(head -n1 "$T/who.out")"
done
