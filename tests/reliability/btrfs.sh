#!/bin/bash
# btrfs (Fedora's and openSUSE's default): stat() gives a file the device of
# its subvolume, /proc/PID/maps the device of the filesystem (measured: 0:40
# and 0:41 for files in two subvolumes, 0:39 for both in the maps). A scan by
# stat()'s device and inode never finds the program that runs the library.
# truncguard asks the kernel how a mapping of the file appears instead.
#  1. cp over a library in a subvolume: the control kills the victim; under
#     truncguard the log names the victim's pid (found by the scan, not saved
#     by "some processes could not be inspected").
#  2. `truncguard who` lists the victim.
#  3. dlopen of a library already loaded, unchanged on disk: no "stale".
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_victims
need_mount_ns
need_shim
r_btrfs "$T/mnt"
btrfs subvolume create "$T/mnt/sub" >/dev/null || fail "setup: btrfs subvolume create"
LIB=$T/mnt/sub/libvictim.so

# 1. The scan must find the victim.
copy_v2() { "$@" cp "$V2" "$LIB"; }
prove_protection copy_v2

# 2. who
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
out=$("$TG_CMD" who "$LIB" 2>&1)
st=$?
stop_victim
[ "$st" -eq 0 ] || fail "truncguard who exited $st, expected 0 (the victim maps it): $out"
awk -v p="$VICTIM_PID" '$1 == p { found = 1 } END { exit !found }' <<<"$out" ||
  fail "truncguard who does not list the victim (pid $VICTIM_PID): $out"
ok "truncguard who lists the victim (pid $VICTIM_PID)"

# 3. No false "stale": the file on disk is the one loaded.
log_reset
"$TG_CMD" python3 -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1]); ctypes.CDLL(sys.argv[1])' "$LIB" ||
  fail "python3 could not load $LIB twice"
expect_no_log " stale: "  # the note, not a path holding the word
ok "dlopen of an unchanged library already loaded: no stale warning"
