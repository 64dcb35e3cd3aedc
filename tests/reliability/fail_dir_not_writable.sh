#!/bin/bash
# Failure path: the writer (nobody) may write the library but not its
# directory, so no new inode can be made next to it.  The write is refused
# with ETXTBSY and a log line; the victim lives; the name keeps the same,
# complete file; no temp file is left.  Control: the same writer in a
# directory it may write gets the new inode.  Each mode in FAILPATH_MODES.
. "$(dirname "$0")/rlib.sh"
need_victims
need_root "a root-owned directory and a writer running as nobody"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
as_nobody true || skip "cannot switch to uid 65534 with setpriv"
need_shim
nobody_copies
must mkdir -m 0755 "$T/mine" "$T/sys"
must chown 65534:65534 "$T/mine"

cases() {
  # Control: nobody's own directory.
  fresh_copy "$V1" "$T/mine/libvictim.so"
  must chown 65534:65534 "$T/mine/libvictim.so"
  control_replaced "nobody writes its own directory" "$T/mine/libvictim.so" as_nobody

  # Failure: nobody's file in root's directory.
  fresh_copy "$V1" "$T/sys/libvictim.so"
  must chown 65534:65534 "$T/sys/libvictim.so"
  refused "nobody's library in a directory nobody can't write" "$T/sys/libvictim.so" \
    "cannot create a temporary file in the directory" "Permission denied" as_nobody
}
each_mode cases
