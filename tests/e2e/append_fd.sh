#!/bin/bash
# An fd opened O_WRONLY|O_APPEND (">>", fopen "a") can only add bytes past the
# end of file, which no mapping runs: its open passes untouched and costs
# nothing. It is examined when it could change bytes already there: fcntl
# F_SETFL dropping O_APPEND, pwritev2 with RWF_NOAPPEND, fallocate punching a
# hole. Then, as for ftruncate, the fd moves to a copy (a new inode) first.
. "$(dirname "$0")/lib.sh"
need_victims
LIB=$T/libvictim.so

# 1. Appending alone: harmless even without truncguard, and left alone by it.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
"$TG_WRITER" append "$LIB" "$V2" >/dev/null || fail "control: append failed"
sleep 0.2
stop_victim
expect_survived "appending to the mapped library without truncguard"
need_shim
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
TRUNCGUARD_DEBUG=decisions,rewrites "$TG_CMD" "$TG_WRITER" append "$LIB" "$V2" >/dev/null || fail "append under truncguard failed"
sleep 0.2
stop_victim
expect_survived "appending under truncguard"
[ "$(inode "$LIB")" = "$old" ] || fail "append: the name got a new inode: an append was treated as a rewrite"
cat "$V1" "$V2" | cmp -s - "$LIB" || fail "append: the file is not the old content followed by the new"
expect_no_log "$LIB"
ok "an append passes untouched (same inode, no decision to log): its open is pass-through"

# 2. fcntl(F_SETFL) drops O_APPEND, then the whole file is rewritten in place.
check_writer "F_SETFL" "$TG_WRITER" append_setfl "$LIB" "$V2"
expect_same_content "$LIB" "$V2"
expect_version "$LIB" 2
grep -qx "flags=0x8001 cloexec=1" "$T/writer.out" ||
  fail "F_SETFL(0): expected O_WRONLY|O_LARGEFILE (0x8001) and close-on-exec kept, got: $(cat "$T/writer.out")"
ok "F_SETFL: the fd moved to the copy, kept close-on-exec and took the caller's new flags"

# 3. pwritev2(RWF_NOAPPEND) writes at offset 0 on the append-only fd.
check_writer "pwritev2(RWF_NOAPPEND)" "$TG_WRITER" append_noappend "$LIB" "$V2"
expect_same_content "$LIB" "$V2"
expect_version "$LIB" 2
n=$(tg_log | grep -c "replaced file=")
[ "$n" -eq 1 ] || fail "pwritev2: $n replacements for one writer's $(($(stat -c %s "$V2") / 4096 + 1)) calls, expected 1"
# The fd moved to the copy is still the writer's O_APPEND fd: without it, its
# next write() lands at its offset, over the file's start, not at the end.
grep -qx "flags=0x8401 cloexec=1" "$T/writer.out" ||
  fail "pwritev2: expected O_WRONLY|O_APPEND|O_LARGEFILE (0x8401) and close-on-exec kept, got: $(cat "$T/writer.out")"
ok "pwritev2(RWF_NOAPPEND): the first call moved the fd to a copy, the next ones wrote there; it kept O_APPEND"

# 3b. The same through glibc's other names truncguard(7) lists: __fcntl and
# pwritev64v2 (python's ctypes calls them by name).
cat >"$T/alias_write.py" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
how, lib, src = sys.argv[1:]
data = open(src, "rb").read()
fd = os.open(lib, os.O_WRONLY | os.O_APPEND)
if how == "__fcntl":
    if libc.__fcntl(fd, 4, 0) != 0:  # F_SETFL, O_APPEND dropped
        sys.exit("__fcntl: " + os.strerror(ctypes.get_errno()))
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)
else:
    class iovec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_char_p), ("len", ctypes.c_size_t)]
    iov = iovec(data, len(data))
    if libc.pwritev64v2(fd, ctypes.byref(iov), 1, ctypes.c_long(0), 0x20) != len(data):  # RWF_NOAPPEND
        sys.exit("pwritev64v2: " + os.strerror(ctypes.get_errno()))
PY
for how in __fcntl pwritev64v2; do
  check_writer "$how on an append-only fd" python3 "$T/alias_write.py" "$how" "$LIB" "$V2"
  cmp -s -n "$(stat -c %s "$V2")" "$LIB" "$V2" || fail "$how: the copy does not start with the new content"
  ok "$how on an append-only fd: the fd moved to a copy first, the victim alive"
done

# 4. fallocate punches a hole over the whole file.
check_writer "fallocate(PUNCH_HOLE)" "$TG_WRITER" append_punch "$LIB" "$V2"
size=$(stat -c %s "$V1")
[ "$(stat -c %s "$LIB")" = "$size" ] || fail "punch: the copy is not $size bytes"
cmp -s -n "$size" "$LIB" /dev/zero || fail "punch: the copy is not all zeros"
grep -qx "flags=0x8401 cloexec=1" "$T/writer.out" ||
  fail "punch: expected O_WRONLY|O_APPEND|O_LARGEFILE (0x8401) and close-on-exec kept, got: $(cat "$T/writer.out")"
ok "fallocate(PUNCH_HOLE): the hole was punched in the copy, through the fd, which kept O_APPEND"

# 4b. ... and zeroing, collapsing or inserting a range (truncguard(7)), each
# where this filesystem does it: the copy ends as the file would have.
cat >"$T/append_falloc.py" <<'PY'
import ctypes, os, sys
mode = {"zero": 0x10, "collapse": 0x08, "insert": 0x20}[sys.argv[1]]  # FALLOC_FL_*_RANGE
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND)
if libc.fallocate(fd, mode, ctypes.c_long(4096), ctypes.c_long(4096)) != 0:
    sys.exit("fallocate: " + os.strerror(ctypes.get_errno()))
PY
for how in zero collapse insert; do
  cp "$V1" "$T/expected" && chmod u+w "$T/expected" || fail "setup"
  if ! err=$(python3 "$T/append_falloc.py" "$how" "$T/expected" 2>&1); then
    note "fallocate $how range on an append-only fd: skipped here ($err)"
    continue
  fi
  check_writer "fallocate($how range) on an append-only fd" python3 "$T/append_falloc.py" "$how" "$LIB"
  cmp -s "$LIB" "$T/expected" || fail "fallocate($how range): the copy is not what the call makes of the file"
  ok "fallocate($how range) on an append-only fd: the fd moved to a copy first, the range changed there"
done

# 5. O_RDWR|O_APPEND (fopen "a+") is examined at its open, since it could map
# the file shared and write there: the copy-up must work with O_APPEND (the
# copy can't use copy_file_range into an O_APPEND fd).
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
"$TG_CMD" "$TG_WRITER" append_rdwr "$LIB" "$V2" >/dev/null || fail "append_rdwr under truncguard failed"
sleep 0.2
stop_victim
expect_survived "O_RDWR|O_APPEND under truncguard"
new=$(inode "$LIB")
[ "$new" != "$old" ] || fail "append_rdwr: the name kept inode $old"
cat "$V1" "$V2" | cmp -s - "$LIB" || fail "append_rdwr: the copy is not the old content followed by the new"
expect_log "replaced file=$LIB [ino $old -> $new] (mode replace); mapped executable by "
ok "O_RDWR|O_APPEND: copied up with the old content, the append landed after it"
