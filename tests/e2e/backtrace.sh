#!/bin/bash
# "Who overwrote our library?" TRUNCGUARD_DEBUG=backtrace prints where the
# protected write came from: the writing program's own functions, not the shim's.
# Without libunwind (loaded only for this category) the library is protected
# just the same, and one warning says why there is no backtrace.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
LIB=$T/libvictim.so
# A copy: the log cuts an object's path of over 1.5 KiB ("..."), which a
# build tree's may be (a clone under a long path).
WRITER=$T/writer
must cp "$TG_WRITER" "$WRITER"

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
"$WRITER" fopen "$LIB" "$V2" >/dev/null || fail "control: the writer failed"
stop_victim
expect_killed "control: the writer without truncguard"

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
TRUNCGUARD_DEBUG=rewrites,backtrace "$TG_CMD" "$WRITER" fopen "$LIB" "$V2" >/dev/null ||
  fail "the writer failed under truncguard"
stop_victim
expect_survived "the writer under truncguard"
expect_log "replaced file=$LIB ["
expect_log "backtrace:"
n=$(tg_log | grep -c "backtrace:")
[ "$n" -eq 1 ] || fail "one replacement printed $n backtraces, expected 1"
expect_log "  #0 0x" "(${WRITER})"
expect_log " main+0x" "(${WRITER})"
if grep -q "libtruncguard" <<<"$(tg_log)"; then fail "the backtrace shows the shim's own frames"; fi
ok "the backtrace names the writer's main() and no shim frames"

# In JSON (truncguard(7)): frames of {frame, ip, symbol, object}, numbered
# from 0, the address a hex string, "name+0xoffset"; in a stripped copy of
# the writer, "??+0xoffset" into it. (--scope=elf: no victim needed.)
writers=("$WRITER")
if command -v strip >/dev/null; then must strip -o "$T/stripped" "$WRITER"; writers+=("$T/stripped"); fi
for w in "${writers[@]}"; do
  fresh_copy "$V1" "$LIB"
  log_reset
  "$TG_CMD" --json --scope=elf --debug=rewrites,backtrace "$w" fopen "$LIB" "$V2" >/dev/null || fail "$w under truncguard --json failed"
  tg_log | python3 -c '
import json, re, sys
w, stripped = sys.argv[1], sys.argv[1].endswith("/stripped")
[bt] = [e for e in map(json.loads, sys.stdin) if e["event"] == "backtrace"]
fr = bt["frames"]
assert [f["frame"] for f in fr] == list(range(len(fr))) and fr, fr
for f in fr:
    assert set(f) == {"frame", "ip", "symbol", "object"} and re.fullmatch(r"0x[0-9a-f]+", f["ip"]), f
    assert re.fullmatch(r".+\+0x[0-9a-f]+", f["symbol"]), f
mine = [f["symbol"] for f in fr if f["object"] == w]
assert mine, fr
if stripped: assert all(s.startswith("??+0x") for s in mine), mine
else: assert any(s.startswith("main+0x") for s in mine), mine
' "$w" || fail "$w: the JSON backtrace is not as documented: $(tg_log)"
done
ok "the JSON backtrace: frames numbered from 0, hex ip, name+0xoffset (??+0xoffset when stripped), the object"

# The writer found through PATH, as `truncguard cp` runs cp: its argv[0] is
# "writer". glibc's dladdr names the main program by argv[0] (the other
# objects by path), and the backtrace said "(writer)"; it names the path.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
PATH=$T:$PATH TRUNCGUARD_DEBUG=rewrites,backtrace "$TG_CMD" writer fopen "$LIB" "$V2" >/dev/null ||
  fail "the writer (through PATH) failed under truncguard"
stop_victim
expect_survived "the writer through PATH under truncguard"
expect_log " main+0x" "(${WRITER})"
if grep -q "(writer)" <<<"$(tg_log)"; then fail "a frame names the program by its argv[0]: $(tg_log)"; fi
ok "the writer run through PATH: its frames name its path, not its argv[0]"
# Run by ld.so (`ld.so PROGRAM`), /proc/self/exe is ld.so: the writer's frames
# keep its path as given, never ld.so's.
ldso=$(readelf -lW "$WRITER" | sed -n 's/.*interpreter: \(.*\)]$/\1/p')
if [ -x "$ldso" ]; then
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  log_reset
  LD_PRELOAD=$TG_SHIM TRUNCGUARD_DEBUG=rewrites,backtrace "$ldso" "$WRITER" fopen "$LIB" "$V2" >/dev/null ||
    fail "the writer run by $ldso failed"
  stop_victim
  expect_survived "the writer run by $ldso with the shim"
  expect_log " main+0x" "(${WRITER})"
  ok "the writer run by $ldso: its frames name its path, not ld.so's"
fi

# A child made without fork()'s atfork handlers (glibc's _Fork, a raw
# clone(SIGCHLD)) has its own copy of the memory, as a fork child: its
# protected write gets its backtrace. (The refusal meant for vfork children,
# which share the parent's memory, misfired there with a warning that called
# it a vfork child.)
PYHOWS="_Fork clone"
command -v python3 >/dev/null || { echo "skipped part: python3 is not installed"; PYHOWS=; }
for how in $PYHOWS; do
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  log_reset
  TRUNCGUARD_DEBUG=rewrites,backtrace "$TG_CMD" python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
how, lib, src = sys.argv[1:4]
pid = libc._Fork() if how == "_Fork" else libc.syscall(56, 17, 0, 0, 0, 0)  # SYS_clone, SIGCHLD
if pid == 0:
    with open(lib, "wb") as f: f.write(open(src, "rb").read())
    os._exit(0)
if pid < 0: sys.exit(how + ": " + os.strerror(ctypes.get_errno()))
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))' "$how" "$LIB" "$V2" || fail "$how: the writer failed: $(tg_log)"
  stop_victim
  expect_survived "the $how child's write under truncguard"
  expect_same_content "$LIB" "$V2" "$how: $LIB"
  expect_no_log "backtrace not taken"
  expect_log "backtrace:"
  expect_log "  #0 0x"
  ok "a child made by $how, not sharing its parent's memory, has its backtrace"
done
# Where the kernel can't tell (kcmp denied by a seccomp filter), the
# backtrace is refused as in a vfork child; the write is protected all the same.
RTOOL=${TG_RTOOL:-$TG_BUILD/tests/reliability/rtool}
if [ -n "$PYHOWS" ] && [ -x "$RTOOL" ]; then
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  log_reset
  TRUNCGUARD_DEBUG=rewrites,backtrace "$TG_CMD" "$RTOOL" deny kcmp:ENOSYS python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
pid = libc._Fork()
if pid == 0:
    with open(sys.argv[1], "wb") as f: f.write(open(sys.argv[2], "rb").read())
    os._exit(0)
if pid < 0: sys.exit("_Fork: " + os.strerror(ctypes.get_errno()))
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))' "$LIB" "$V2" || fail "_Fork, kcmp denied: the writer failed: $(tg_log)"
  stop_victim
  expect_survived "the _Fork child's write under truncguard, kcmp denied"
  expect_same_content "$LIB" "$V2" "_Fork, kcmp denied: $LIB"
  expect_log "warning: backtrace not taken in a vfork child"
  if tg_log | grep -q "backtrace:"; then fail "_Fork, kcmp denied: a backtrace was taken where the kernel could not tell"; fi
  ok "a child made by _Fork, kcmp denied: its backtrace refused, as where the memory may be shared"
fi

# A broken libunwind.so.8 found through LD_LIBRARY_PATH, in a directory whose
# name has a newline: glibc's reason names that file, escaped in the warning
# (a raw newline there split the line; expect_log checks every line's prefix).
U=$T/$'un\nwind'
mkdir -p "$U" && echo garbage >"$U/libunwind.so.8" || fail "setup: a broken libunwind.so.8 in $U"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
LD_LIBRARY_PATH=$U TRUNCGUARD_DEBUG=rewrites,backtrace "$TG_CMD" "$WRITER" fopen "$LIB" "$V2" >/dev/null ||
  fail "the writer failed under truncguard, a broken libunwind.so.8 in LD_LIBRARY_PATH"
stop_victim
expect_survived "the writer under truncguard, a broken libunwind.so.8 in LD_LIBRARY_PATH"
expect_log "warning: backtrace unavailable: cannot load libunwind.so.8 ($T/un\\nwind/libunwind.so.8: "
ok "a broken libunwind.so.8 in a directory named with a newline: the warning escapes its name"

# A frame's function is named by its symbol, which may hold any bytes:
# libodd_caller.so's holds ESC [7m (python calls open through it). Escaped
# in the frame's line, as its object is (it was printed raw).
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
TRUNCGUARD_DEBUG=rewrites,backtrace "$TG_CMD" python3 -c '
import ctypes, os, sys
odd = getattr(ctypes.CDLL(sys.argv[2]), "tg_call\x1b[7modd")
odd.restype, odd.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
fd = odd(ctypes.cast(ctypes.CDLL(None).open, ctypes.c_void_p).value, sys.argv[1].encode(), os.O_WRONLY | os.O_TRUNC)
assert fd >= 0
os.write(fd, open(sys.argv[3], "rb").read())' "$LIB" "$TG_ODD_CALLER_LIB" "$V2" ||
  fail "python writing through libodd_caller.so under truncguard failed"
stop_victim
expect_survived "python writing through libodd_caller.so"
expect_log " tg_call\x1b[7modd+0x" "($TG_ODD_CALLER_LIB)"
! tg_log | grep -q $'\x1b' || fail "a raw ESC in the backtrace: $(tg_log | cat -v)"
ok "a backtrace frame whose symbol holds an escape sequence: escaped"

# libunwind missing or broken, in a private mount namespace (root only):
# broken, /dev/null bound over it; missing, hidden by an overlay's whiteout.
UNWIND=$(ldconfig -p | sed -n 's/^[[:space:]]*libunwind\.so\.8 (libc6,x86-64) => //p' | head -n1)
if [ "$(id -u)" -ne 0 ] || [ -z "$UNWIND" ] || ! unshare -m --propagation private true 2>/dev/null; then
  echo "skipped part: libunwind unavailable (needs root, unshare -m and libunwind.so.8 in ldconfig's cache)"
  exit 0
fi
# no_unwind broken|missing CMD...: CMD without a usable libunwind.so.8 (exit 99: could not be arranged).
no_unwind() {
  local how=$1
  shift
  unshare -m --propagation private -- bash -c '
    if [ "$1" = broken ]; then mount --bind /dev/null "$2"
    else rm -rf "$3" && mkdir -p "$3/up" "$3/work" && mknod "$3/up/${2##*/}" c 0 0 &&
      mount -t overlay overlay -o "lowerdir=${2%/*},upperdir=$3/up,workdir=$3/work" "${2%/*}"
    fi 2>/dev/null || exit 99
    shift 3 && exec "$@"' _ "$how" "$UNWIND" "$T/no-unwind" "$@"
}
for how in broken missing; do
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  log_reset
  no_unwind $how env TRUNCGUARD_DEBUG=rewrites,backtrace "$TG_CMD" "$WRITER" fopen "$LIB" "$V2" >/dev/null
  st=$?
  stop_victim
  if [ "$st" -eq 99 ] && [ $how = missing ]; then
    echo "skipped part: libunwind missing (no overlay mount here)"
    continue
  fi
  [ "$st" -eq 0 ] || fail "the writer failed under truncguard, libunwind $how"
  expect_survived "the writer under truncguard, libunwind $how"
  expect_log "replaced file=$LIB ["
  expect_log "warning: backtrace unavailable: cannot load libunwind.so.8 ("
  [ $how = broken ] || expect_log "warning: backtrace unavailable: cannot load libunwind.so.8 (libunwind.so.8: cannot open shared object file: No such file or directory)"
  n=$(tg_log | grep -c "backtrace unavailable")
  [ "$n" -eq 1 ] || fail "libunwind $how: $n 'backtrace unavailable' warnings, expected 1"
  if tg_log | grep -q "backtrace:"; then fail "a backtrace was printed, libunwind $how"; fi
  ok "libunwind $how: protected, and one warning: $(log_lines "backtrace unavailable" | cut -f2-)"
done
# One warning per process, however many writes it protects: python copies
# over the library three times (scope elf: each one protected, not only the
# first, after which the name is a file nobody maps).
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
no_unwind broken env TRUNCGUARD_DEBUG=rewrites,backtrace TRUNCGUARD_SCOPE=elf "$TG_CMD" python3 -c '
import sys
for _ in range(3):
    with open(sys.argv[1], "wb") as f: f.write(open(sys.argv[2], "rb").read())' "$LIB" "$V2" ||
  fail "python under truncguard without libunwind failed"
stop_victim
expect_survived "python's three writes under truncguard, libunwind unavailable"
n=$(log_lines "replaced file=$LIB [" | wc -l)
[ "$n" -eq 3 ] || fail "python's three writes without libunwind: $n replaced lines, expected 3"
n=$(tg_log | grep -c "backtrace unavailable")
[ "$n" -eq 1 ] || fail "three writes without libunwind: $n 'backtrace unavailable' warnings, expected 1"
ok "without libunwind, three writes in one process: three replaced, one warning"
