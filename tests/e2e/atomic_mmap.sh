#!/bin/bash
# Bug: in atomic mode a writer that writes the file through a shared mapping
# after closing its fd (open O_RDWR|O_TRUNC, ftruncate to the size, mmap
# MAP_SHARED, close, copy into the mapping, munmap: a common way to write a
# file) had it published at the close: the name held the new file before its
# content, all zeros, and a process starting then loaded that. The close now
# keeps the file pending while this process maps it shared and writable; it
# is published at the munmap that ends the last such mapping (or at exit).
#  - control: without truncguard the write kills the victim;
#  - under truncguard -m atomic (python through ctypes: libc's mmap, close,
#    munmap): half-way through the copy, after the close and the munmap of
#    other memory (an anonymous mapping, as malloc makes: not the file's),
#    the name holds the complete old file and a fresh process loads
#    version 1; after the munmap of the file's mapping,
#    before the writer exits, the name holds the complete new file; the victim
#    survives.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
command -v python3 >/dev/null || skip "python3 is not installed"
LIB=$T/lib.so

# mmap_writer [TRUNCGUARD ARGS...]: writes v2 as above, creating $T/half
# after the close and half the copy, and $T/unmapped after the munmap, each
# time waiting for $T/go (removed by the test) before going on.
mmap_writer() {
  rm -f "$T/half" "$T/unmapped" "$T/go"
  "$@" python3 - "$LIB" "$V2" "$T" <<'PY' &
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
lib, new, t = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3]
def step(name):
    open(os.path.join(t, name), "w").close()
    for _ in range(1000):
        if os.path.exists(os.path.join(t, "go")):
            os.unlink(os.path.join(t, "go"))
            return
        time.sleep(0.01)
    sys.exit("nobody said go after " + name)
fd = os.open(lib, os.O_RDWR | os.O_TRUNC)
os.ftruncate(fd, len(new))
p = libc.mmap(None, len(new), 3, 1, fd, 0)  # PROT_READ|PROT_WRITE, MAP_SHARED
if p in (None, ctypes.c_void_p(-1).value):
    sys.exit("mmap failed: " + os.strerror(ctypes.get_errno()))
if libc.close(fd) != 0:
    sys.exit("close failed: " + os.strerror(ctypes.get_errno()))
half = len(new) // 2
ctypes.memmove(p, new, half)
# Other memory mapped and unmapped meanwhile (as malloc does for a large
# block): not the file's mapping, which goes on.
q = libc.mmap(None, 65536, 3, 0x22, -1, 0)  # MAP_PRIVATE|MAP_ANONYMOUS
if q in (None, ctypes.c_void_p(-1).value) or libc.munmap(ctypes.c_void_p(q), 65536) != 0:
    sys.exit("anonymous mmap/munmap failed")
step("half")
ctypes.memmove(p + half, new[half:], len(new) - half)
if libc.munmap(ctypes.c_void_p(p), len(new)) != 0:
    sys.exit("munmap failed")
step("unmapped")
PY
  WRITER=$!
}
wait_for() {  # wait_for FILE
  for _ in $(seq 500); do [ -e "$1" ] && return; sleep 0.01; done
  fail "the writer did not reach $(basename "$1")"
}

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
mmap_writer env
wait_for "$T/half"; touch "$T/go"
wait_for "$T/unmapped"; touch "$T/go"
wait "$WRITER" || fail "control: the mmap writer failed"
stop_victim
expect_killed "control: the mmap writer without truncguard"

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
mmap_writer "$TG_CMD" -m atomic
wait_for "$T/half"
cmp -s "$LIB" "$V1" || fail "after the close, half-way through the copy, the name does not hold the complete old file"
got=$("$TG_VICTIM" --once "$LIB" 2>&1)
[ "$got" = "version 1" ] || fail "a process starting half-way through the copy got \"$got\", expected \"version 1\""
touch "$T/go"
wait_for "$T/unmapped"
expect_same_content "$LIB" "$V2"
touch "$T/go"
wait "$WRITER" || fail "the mmap writer under truncguard failed: $(tg_log)"
stop_victim
expect_survived "the mmap writer under truncguard -m atomic"
expect_version "$LIB" 2
expect_log "published file=$LIB [ino " "(mode atomic): the writer's shared mapping of it ended"
ok "close, then writes through a shared mapping: published at the munmap, never before its content"
