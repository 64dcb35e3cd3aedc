#!/bin/bash
# Failure paths on read-only filesystems (root, in a private mount namespace).
#  1. The directory is on a read-only mount, but the library itself is a
#     writable file bound in from elsewhere: the write is allowed, yet no new
#     inode can be made next to it -> ETXTBSY + log, the name intact.
#  2. The whole filesystem is read-only: the kernel itself refuses the
#     write (EROFS), which can't truncate anything either: truncguard must
#     pass the call through untouched (the caller sees EROFS, not ETXTBSY)
#     and say why in the decisions log.  The victim lives, the name intact.
# Control: the same directory, writable -> replaced.
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_victims
need_mount_ns
need_shim

# A small filesystem of its own, so "read-only" touches nothing else.
r_tmpfs "$T/fs" "size=8m"
must mkdir -m 0755 "$T/fs/lib" "$T/fs/elsewhere"
LIB=$T/fs/lib/libvictim.so

# Control: writable.
fresh_copy "$V1" "$LIB"
control_replaced "a writable directory" "$LIB"

# 1. Read-only directory, writable file bound over the name.
fresh_copy "$V1" "$LIB"
fresh_copy "$V1" "$T/fs/elsewhere/libvictim.so"
r_mount --bind "$T/fs/lib" "$T/fs/lib"
r_mount -o remount,bind,ro "$T/fs/lib"
r_tmpfs "$T/rw" "size=8m"
fresh_copy "$V1" "$T/rw/libvictim.so"
r_mount --bind "$T/rw/libvictim.so" "$LIB"
touch "$T/fs/lib/probe" 2>/dev/null && fail "setup: $T/fs/lib is still writable"
[ -w "$LIB" ] && : >>"$LIB" || fail "setup: the bound-in $LIB is not writable"
refused "a writable library in a read-only directory" "$LIB" \
  "cannot create a temporary file in the directory" "Read-only file system"
expect_same_content "$T/rw/libvictim.so" "$V1" "the bound file's source"
umount "$LIB" && umount "$T/fs/lib" || fail "cannot undo the bind mounts"

# 2. The whole filesystem read-only.
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
r_mount -o remount,ro "$T/fs"
start_victim "$LIB"
log_reset
r_run rofs env TRUNCGUARD_DEBUG=decisions,rewrites "$TG_CMD" cp "$V2" "$LIB"
stop_victim
expect_kernel_refused rofs "read-only filesystem" "$LIB" "$old" "Read-only file system"
