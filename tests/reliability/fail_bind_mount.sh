#!/bin/bash
# Failure path: the library's name is a bind mount of a file from another
# filesystem (mount --bind FILE NAME).  A new inode can be made in the
# directory, but rename() over a mount point fails (EBUSY) -> refused + log,
# the temp file removed, the bound file intact (mode atomic: foreseen at the
# open, which fails, not at the close).  Control: the same name without the
# bind mount is replaced.  Each mode in FAILPATH_MODES.
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_victims
need_mount_ns
need_shim

r_tmpfs "$T/other" "size=4m"
must mkdir -m 0755 "$T/lib"
LIB=$T/lib/libvictim.so

cases() {
  fresh_copy "$V1" "$LIB"
  control_replaced "an ordinary file" "$LIB"

  fresh_copy "$V1" "$T/other/libvictim.so"
  fresh_copy "$V1" "$LIB"
  r_mount --bind "$T/other/libvictim.so" "$LIB"
  [ "$(stat -c %d "$LIB")" != "$(stat -c %d "$T/lib")" ] || fail "setup: the bind mount is on the same device"
  AT_OPEN="the name is a mount point (a file mounted over it)" refused "a library bind-mounted from another filesystem" "$LIB" \
    "cannot rename the new file over the name" "Device or resource busy"
  expect_same_content "$T/other/libvictim.so" "$V1" "the bind mount's source"
  umount "$LIB" || fail "cannot undo the bind mount"
}
each_mode cases
