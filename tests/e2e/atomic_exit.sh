#!/bin/bash
# Bug: in atomic mode the new file is published at the writer's last close,
# or at exit(). A program that ends with _exit() skips exit()'s destructors,
# and the kernel closes its fds where the shim can't see it: the file was
# never published (exit status 0, the old file still at the name). dash,
# Debian's /bin/sh, always ends with _exit(), so `exec >lib.so; cat new.so`
# in a sh script lost the write. _exit and _Exit now publish, as exit() does.
#  - dash: `exec >lib.so; cat v2` (control: without truncguard it kills the
#    victim); under truncguard -m atomic the victim survives, a fresh process
#    loads version 2, the log says it was published;
#  - python's os._exit (glibc's _exit) after writing the file itself;
#  - a forked child's _exit publishes nothing of its parent's: the name
#    keeps version 1 until the parent, which goes on writing, closes it;
#  - python ending with libc's syscall(SYS_exit_group, 0), as _exit() does
#    (it was not published: version 1 stayed at the name).
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
command -v dash >/dev/null || skip "dash is not installed"
LIB=$T/lib.so

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
V2=$V2 dash -c 'exec >"$1"; cat "$V2"' _ "$LIB" || fail "control: dash failed"
sleep 0.2
stop_victim
expect_killed "control: dash's exec >lib.so without truncguard"

fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
V2=$V2 "$TG_CMD" -m atomic dash -c 'exec >"$1"; cat "$V2"' _ "$LIB" || fail "dash under truncguard failed: $(tg_log)"
stop_victim
expect_survived "dash's exec >lib.so under truncguard -m atomic"
expect_version "$LIB" 2
expect_log "published file=$LIB [ino $old -> " "(mode atomic): the writer exits"
ok "dash ended with _exit(): the file was published"

command -v python3 >/dev/null || skip "python3 is not installed: the os._exit and fork cases were not run"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
"$TG_CMD" -m atomic --scope=elf python3 - "$LIB" "$V2" <<'PY' || fail "python's os._exit case failed: $(tg_log)"
import os, sys
lib, new = sys.argv[1], open(sys.argv[2], "rb").read()
fd = os.open(lib, os.O_WRONLY | os.O_TRUNC)
half = len(new) // 2
os.write(fd, new[:half])
pid = os.fork()
if pid == 0:
    os._exit(0)  # the child's copy of the fd goes with it: nothing is published
os.waitpid(pid, 0)
if open(lib, "rb").read() == new[:half]:
    print("the child's _exit published the parent's half-written file", file=sys.stderr)
    sys.exit(1)
os.write(fd, new[half:])
os._exit(0)  # no close: the kernel closes it
PY
stop_victim
expect_survived "python: os.fork, the child's os._exit, then the parent's os._exit under -m atomic"
expect_version "$LIB" 2
ok "a forked child's _exit published nothing; the parent's _exit published the whole file"

# syscall(SYS_exit_group) is _exit() by number: it publishes too.
case $(uname -m) in
  x86_64) exit_nr=231 ;;
  aarch64) exit_nr=94 ;;
  *) skip "no SYS_exit_group number known for $(uname -m)" ;;
esac
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
"$TG_CMD" -m atomic python3 - "$LIB" "$V2" "$exit_nr" <<'PY' || fail "python's syscall(SYS_exit_group) case failed: $(tg_log)"
import ctypes, os, sys
lib, new, nr = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3])
fd = os.open(lib, os.O_WRONLY | os.O_TRUNC)
while new:
    new = new[os.write(fd, new):]
ctypes.CDLL(None).syscall(nr, 0)  # no close: the kernel closes it
PY
stop_victim
expect_survived "python: syscall(SYS_exit_group) under -m atomic"
expect_version "$LIB" 2
expect_log "published file=$LIB [ino " "(mode atomic): the writer exits"
ok "syscall(SYS_exit_group) published the whole file"

# _Exit, the C99 name truncguard(7) lists beside _exit (its own symbol in
# glibc, which a program may call by that name): it publishes too.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
"$TG_CMD" -m atomic python3 - "$LIB" "$V2" <<'PY' || fail "python's _Exit case failed: $(tg_log)"
import ctypes, os, sys
lib, new = sys.argv[1], open(sys.argv[2], "rb").read()
fd = os.open(lib, os.O_WRONLY | os.O_TRUNC)
while new:
    new = new[os.write(fd, new):]
ctypes.CDLL(None)._Exit(0)  # no close: the kernel closes it
PY
stop_victim
expect_survived "python: _Exit under -m atomic"
expect_version "$LIB" 2
expect_log "published file=$LIB [ino " "(mode atomic): the writer exits"
ok "_Exit published the whole file"
