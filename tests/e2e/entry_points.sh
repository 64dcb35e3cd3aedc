#!/bin/bash
# Bug: a program reaches the kernel through open64, __openat_2, creat,
# fopen64, freopen, truncate... instead of plain open, and a wrapper that
# only knows open() lets it truncate a loaded library.  Each of the 19
# interposed entry points (glibc's public aliases __open, __open64 and
# _IO_fopen among them; the second loop closes __open's fd with __close,
# __open64's by __dup2 and _IO_fopen's stream with _IO_fclose, other
# aliases) must protect the victim by itself (its control
# case kills the victim), and the new fd must carry the flags asked for.
. "$(dirname "$0")/lib.sh"
need_victims
[ -x "$TG_WRITER" ] || fail "no writer at $TG_WRITER"

LIB=$T/libvictim.so
export TRUNCGUARD_DEBUG=rewrites,decisions

for ENTRY in open open64 __open __open64 openat openat64 creat creat64 __open_2 __open64_2 \
             __openat_2 __openat64_2 fopen fopen64 _IO_fopen freopen freopen64 truncate truncate64; do
  note "entry point $ENTRY"
  write_v2() { "$@" "$TG_WRITER" "$ENTRY" "$LIB" "$V2" >"$T/writer.out"; }
  prove_protection write_v2
  # The decision was taken in this very entry point (the log names it).
  expect_log "decision file=$LIB: act (mapped executable) [$ENTRY]"

  # The fd the program got has the status flags and close-on-exec bit that
  # the same call gives on an ordinary file without truncguard.
  protected=$(cat "$T/writer.out")
  must cp "$V1" "$T/plain.so"
  "$TG_WRITER" "$ENTRY" "$T/plain.so" "$V2" >"$T/plain.out" || fail "$ENTRY on a plain file failed"
  [ "$protected" = "$(cat "$T/plain.out")" ] ||
    fail "$ENTRY: the new fd has $protected, an ordinary open gives $(cat "$T/plain.out")"
  ok "$ENTRY: the new fd has the same flags as an ordinary open ($protected)"
done

# Atomic mode gives the caller an fd on an unnamed inode: it too has the flags
# an ordinary open gives (F_GETFL without O_TMPFILE's bits), and the file is
# published when the writer closes it. (The controls are above.)
for ENTRY in open open64 __open __open64 openat openat64 creat creat64 __open_2 __open64_2 \
             __openat_2 __openat64_2 fopen fopen64 _IO_fopen freopen freopen64; do
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  log_reset
  TRUNCGUARD_MODE=atomic "$TG_CMD" "$TG_WRITER" "$ENTRY" "$LIB" "$V2" >"$T/writer.out" ||
    fail "$ENTRY in atomic mode failed"
  stop_victim
  expect_survived "$ENTRY in atomic mode"
  expect_same_content "$LIB" "$V2"
  expect_log "published file=$LIB [ino "
  must cp "$V1" "$T/plain.so"
  "$TG_WRITER" "$ENTRY" "$T/plain.so" "$V2" >"$T/plain.out" || fail "$ENTRY on a plain file failed"
  [ "$(cat "$T/writer.out")" = "$(cat "$T/plain.out")" ] ||
    fail "$ENTRY in atomic mode: the new fd has $(cat "$T/writer.out"), an ordinary open gives $(cat "$T/plain.out")"
  ok "$ENTRY in atomic mode: published at close; the fd has the same flags as an ordinary open ($(cat "$T/plain.out"))"
done

# Not intercepted, as docs/guarantees.md says ("What is not guaranteed"):
# open_by_handle_at (a handle names no path to look at or put a new inode
# at) and syscall(SYS_openat2) (its RESOLVE_* rules would have to bind the
# shim's own opens) pass through: with O_TRUNC they truncate a library in use,
# and no line is logged about it.
if command -v python3 >/dev/null; then
  for how in open_by_handle_at openat2; do
    fresh_copy "$V1" "$LIB"
    start_victim "$LIB"
    log_reset
    "$TG_CMD" python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
path, how = sys.argv[1], sys.argv[2]
flags = os.O_WRONLY | os.O_TRUNC
if how == "open_by_handle_at":
    handle = ctypes.create_string_buffer(8 + 128)          # struct file_handle, 128 bytes of handle
    ctypes.c_uint.from_buffer(handle).value = 128
    mount_id = ctypes.c_int()
    if libc.name_to_handle_at(-100, path.encode(), handle, ctypes.byref(mount_id), 0) != 0:
        sys.exit("name_to_handle_at: " + os.strerror(ctypes.get_errno()))
    fd = libc.open_by_handle_at(os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY), handle, flags)
else:
    open_how = (ctypes.c_uint64 * 3)(flags, 0, 0)           # struct open_how: flags, mode, resolve
    fd = libc.syscall(437, -100, path.encode(), open_how, ctypes.sizeof(open_how))   # SYS_openat2
sys.exit(0 if fd >= 0 else how + ": " + os.strerror(ctypes.get_errno()))' "$LIB" "$how" >"$T/$how.out" 2>&1 ||
      fail "$how under truncguard failed: $(cat "$T/$how.out")"
    stop_victim
    expect_killed "$how with O_TRUNC of a library in use (not intercepted)"
    [ ! -s "$LIB" ] || fail "$how with O_TRUNC did not truncate $LIB"
    tg_log | grep -qF "file=$LIB" && fail "$how: a line was logged about $LIB: $(tg_log)"
    ok "$how passes through: it truncated the library in use, nothing logged"
  done
fi
