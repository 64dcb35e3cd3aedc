#!/bin/bash
# Bug: "dd conv=notrunc", "rsync --inplace" and scp-style open/write/ftruncate
# never truncate, yet they rewrite the pages a running program executes.
# Under truncguard the file is copied up first (a new inode with the old
# content, renamed over the name) and the writer writes into the copy.
. "$(dirname "$0")/lib.sh"
need_victims
LIB=$T/libvictim.so

# dd conv=notrunc: the new bytes over the old, in place, no truncation.
check_writer "dd conv=notrunc" dd if="$V2" of="$LIB" conv=notrunc status=none
expect_same_content "$LIB" "$V2"
expect_version "$LIB" 2
expect_log "kept $(stat -c %s "$V1") bytes of the old content"
ok "dd conv=notrunc: the copy kept the old bytes and took the new ones"

# truncate(2) to n by path: the new inode holds the old file's first n bytes,
# and the line says so (truncguard(7): "with the first n bytes for truncate(2)
# to n"; "; kept N bytes of the old content" for a truncate).
check_writer "truncate(2) to 4096" python3 -c 'import os, sys; os.truncate(sys.argv[1], 4096)' "$LIB"
[ "$(stat -c %s "$LIB")" = 4096 ] && cmp -s -n 4096 "$LIB" "$V1" ||
  fail "truncate(2) to 4096: the new file ($(stat -c %s "$LIB") bytes) is not the old file's first 4096 bytes"
expect_log "replaced file=$LIB " "; kept 4096 bytes of the old content"
ok "truncate(2) to 4096: the new inode has the old first 4096 bytes, and the line says kept 4096"
# To 1: one byte kept, and the line says "1 byte" (it said "1 bytes").
check_writer "truncate(2) to 1" python3 -c 'import os, sys; os.truncate(sys.argv[1], 1)' "$LIB"
[ "$(stat -c %s "$LIB")" = 1 ] || fail "truncate(2) to 1: the new file has $(stat -c %s "$LIB") bytes"
expect_log "replaced file=$LIB " "; kept 1 byte of the old content"
ok "truncate(2) to 1: the line says kept 1 byte"

# A truncate that does not shrink the file changes no byte: it is asked about
# (one stat) and passes, in place, with its decision logged (truncguard(7)).
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
TRUNCGUARD_DEBUG=decisions "$TG_CMD" python3 -c 'import os, sys; os.truncate(sys.argv[1], os.path.getsize(sys.argv[1]) + 4096)' "$LIB" ||
  fail "a growing truncate(2) under truncguard failed"
stop_victim
expect_survived "a growing truncate(2) under truncguard"
[ "$(inode "$LIB")" = "$old" ] || fail "a growing truncate(2): the name got a new inode"
expect_log "decision file=$LIB: pass (does not shrink the file) [truncate"
expect_no_log "replaced file="
ok "truncate(2) to a larger size: in place, its decision \"does not shrink the file\""

# A partial in-place patch of the code page (the second 4 KiB, where .text
# starts); everything else must be the OLD content, proving the copy-up copied it.
check_writer "a 4 KiB in-place patch of the code" \
  dd if="$V2" of="$LIB" bs=4096 skip=1 seek=1 count=1 conv=notrunc status=none
cmp -s -n 4096 "$LIB" "$V1" || fail "the first page is not the old content"
cmp -s -n 4096 -i 4096:4096 "$LIB" "$V2" || fail "the patched page is not v2's"
cmp -s -i 8192:8192 "$LIB" "$V1" || fail "the rest of the file is not the old content"
ok "a partial in-place patch lands on a full copy of the old file"

# fopen "r+" (python's open(..., "r+b") goes through open(O_RDWR)).
if command -v python3 >/dev/null; then
  check_writer "python r+b rewrite" python3 -c '
import sys
data = open(sys.argv[2], "rb").read()
with open(sys.argv[1], "r+b") as f:
    f.write(data)
    f.truncate()' "$LIB" "$V2"
  expect_same_content "$LIB" "$V2"
  ok "an r+ rewrite went to the copy"
  # libc's own fopen(path, "r+"), whose FILE* is glibc's (the look through
  # an fd after the open is for the entry points that return an fd).
  check_writer "fopen r+ rewrite" python3 -c '
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fopen.restype = ctypes.c_void_p
data = open(sys.argv[2], "rb").read()
f = libc.fopen(sys.argv[1].encode(), b"r+")
if not f or libc.fwrite(data, 1, len(data), ctypes.c_void_p(f)) != len(data) or libc.fclose(ctypes.c_void_p(f)) != 0:
    sys.exit("fopen r+: " + str(ctypes.get_errno()))' "$LIB" "$V2"
  cmp -s -n "$(stat -c %s "$V2")" "$LIB" "$V2" || fail "fopen r+: the copy does not start with the new content"
  ok "an fopen r+ rewrite went to the copy"
else
  note "python3 not found: the r+ case is covered by dd only"
fi

# scp's shape: open(O_WRONLY) without O_TRUNC, write, ftruncate to the size.
check_writer "open + write + ftruncate" "$TG_WRITER" open_notrunc "$LIB" "$V2"
expect_same_content "$LIB" "$V2"
expect_version "$LIB" 2
ok "open + write + ftruncate went to the copy"
