#!/bin/bash
# overlayfs, as in containers: the library lives in an overlay mount. A
# mapping of an overlay file holds the file underneath (the upper layer's),
# so no open file is left on the overlay inode, and the kernel grants a write
# lease on a library a program is running: the lease proves nothing there.
# Control: cp without truncguard kills the victim. Under truncguard the /proc
# scan must find the victim (the maps show the overlay inode) and replace.
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_victims
need_mount_ns

mkdir -p "$T/ov/lower" "$T/ov/upper" "$T/ov/work" "$T/ov/merged"
mount -t overlay overlay -o "lowerdir=$T/ov/lower,upperdir=$T/ov/upper,workdir=$T/ov/work" "$T/ov/merged" \
  2>"$T/mount.err" || skip "no overlayfs here: $(cat "$T/mount.err")"
_r_mounts+=("$T/ov/merged")
[ "$(stat -f -c %T "$T/ov/merged")" = overlayfs ] || fail "setup: $T/ov/merged is not an overlay mount"
LIB=$T/ov/merged/libvictim.so

copy_v2() { "$@" cp "$V2" "$LIB"; }
prove_protection copy_v2
ok "overlayfs: the write lease was not taken as proof; the scan found the victim"
