#!/bin/bash
# TRUNCGUARD_MODE=atomic: the new content appears at the name only when the
# writer closes it. A process that starts while the copy is half written loads
# the complete OLD file (in replace mode it would find the half-written new one);
# a writer that dies mid-copy leaves the old file and no temp file behind.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
export TRUNCGUARD_MODE=atomic
LIB=$T/libvictim.so
half=4096

# 1. The classic case: cp over a running victim.
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
"$TG_CMD" cp "$V2" "$LIB" || fail "truncguard cp in atomic mode failed"
stop_victim
expect_survived "cp in atomic mode"
expect_version "$LIB" 2
new=$(inode "$LIB")
[ "$new" != "$old" ] || fail "the name kept inode $old"
expect_log "replaced file=$LIB [ino $old -> $new] (mode atomic); mapped executable by " "pid $VICTIM_PID (" \
  "published when the writer closes it"
expect_log "published file=$LIB [ino $old -> $new] (mode atomic): the writer closed it"
ok "cp in atomic mode: the victim survived, a fresh process loads v2, logged at open and at publish"

# 2. Mid-copy, the name still holds the complete old file. The writer is a
#    shell holding the file open on fd 3 (exec 3>), writing half, pausing.
slow_write() {  # slow_write MODE: writes half of v2, waits for $T/go, writes the rest
  rm -f "$T/half" "$T/go"
  TRUNCGUARD_MODE=$1 "$TG_CMD" bash -c '
    exec 3>"$1"
    head -c '"$half"' "$2" >&3
    touch "$3/half"
    for _ in $(seq 500); do [ -e "$3/go" ] && break; sleep 0.01; done
    tail -c +'"$((half + 1))"' "$2" >&3
    exec 3>&-' _ "$LIB" "$V2" "$T" &
  WRITER=$!
  for _ in $(seq 500); do [ -e "$T/half" ] && break; sleep 0.01; done
  [ -e "$T/half" ] || fail "the slow writer did not get half way"
}

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
slow_write replace
mid=$(stat -c %s "$LIB")
touch "$T/go"; wait "$WRITER" || fail "the slow writer failed in replace mode"
stop_victim
expect_survived "slow writer in replace mode"
[ "$mid" -eq "$half" ] || fail "control: mid-copy in replace mode the name held $mid bytes, expected the partial $half"
ok "control: in replace mode, mid-copy the name holds the partial new file ($mid bytes)"

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
slow_write atomic
cmp -s "$LIB" "$V1" || fail "atomic: mid-copy the name does not hold the complete old file"
got=$("$TG_VICTIM" --once "$LIB" 2>&1)
[ "$got" = "version 1" ] || fail "atomic: a process starting mid-copy got \"$got\", expected the old \"version 1\""
# Until it is published the new file has no name (README): its fd's link
# reads DIR/#INODE (deleted), and its link count is 0.
pending=$(readlink "/proc/$WRITER/fd/3")
pino=$(stat -L -c %i "/proc/$WRITER/fd/3")
[ "$pending" = "$T/#$pino (deleted)" ] && [ "$(stat -L -c %h "/proc/$WRITER/fd/3")" = 0 ] ||
  fail "atomic: mid-copy the writer's fd names \"$pending\", $(stat -L -c %h "/proc/$WRITER/fd/3") links; expected \"$T/#$pino (deleted)\", 0"
touch "$T/go"; wait "$WRITER" || fail "the slow writer failed in atomic mode"
stop_victim
expect_survived "slow writer in atomic mode"
expect_same_content "$LIB" "$V2"
[ "$(inode "$LIB")" = "$pino" ] || fail "atomic: the file published is not the one the writer's fd had"
ok "atomic: mid-copy the name holds the complete old file, the writer's file no name; after close, the complete new one"

# 3. Shell redirection: bash opens, dup2s onto stdout, closes, execs cat. The
#    pending file is handed to cat across exec and published when cat ends.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
"$TG_CMD" bash -c 'cat "$1" > "$2"' _ "$V2" "$LIB" || fail "redirection in atomic mode failed"
stop_victim
expect_survived "redirection in atomic mode"
expect_same_content "$LIB" "$V2"
pub=$(log_lines "published file=$LIB") || fail "no published line"
[ "$(echo "$pub" | wc -l)" -eq 1 ] || fail "published more than once: $pub"
# At the end: at cat's close (handed over), not at bash's exec of cat.
[[ "$pub" == *"(mode atomic): the writer closed it"* ]] || fail "not published at cat's close: $pub"
ok "a redirection through dup2 and exec publishes once, when cat is done"

# 4. A writer killed mid-copy: the old file stays, nothing is left behind.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
slow_write atomic
pkill -KILL -P "$WRITER" bash 2>/dev/null; kill -KILL "$WRITER" 2>/dev/null
wait "$WRITER" 2>/dev/null
sleep 0.1
stop_victim
expect_survived "a writer killed mid-copy"
expect_same_content "$LIB" "$V1" "the name after the writer was killed"
left=$(ls -A "$T" | grep '\.tg-' || true)
[ -z "$left" ] || fail "temp files left behind: $left"
ok "a writer killed mid-copy leaves the old file intact and no temp file"

# 5. exit() without close publishes; a forked child's close does not.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
"$TG_CMD" python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
pid = os.fork()
if pid == 0:
    os.close(fd)          # the child closes its copy: must not publish
    os._exit(0)
os.waitpid(pid, 0)
assert open(sys.argv[1], "rb").read() == open(sys.argv[3], "rb").read(), "published by the child"
os.write(fd, open(sys.argv[2], "rb").read())
sys.exit(0)               # no close: exit publishes' "$LIB" "$V2" "$V1" 2>"$T/py.err" ||
  fail "fork/exit case failed: $(cat "$T/py.err")"
stop_victim
expect_survived "the fork/exit writer"
expect_same_content "$LIB" "$V2"
ok "a forked child's close publishes nothing; exit() without close publishes"

# 6. close_range and closefrom close the writer's fd inside the kernel: the
#    file is published when they are called (checked before _exit, which
#    publishes nothing), and the next file the program opens is not affected.
for how in close_range closefrom; do
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  log_reset
  "$TG_CMD" python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_TRUNC)
os.write(fd, open(sys.argv[3], "rb").read())
if sys.argv[1] == "close_range":
    assert libc.close_range(fd, fd, 0) == 0, os.strerror(ctypes.get_errno())
else:
    libc.closefrom(fd)
assert open(sys.argv[2], "rb").read() == open(sys.argv[3], "rb").read(), "not published by " + sys.argv[1]
os._exit(0)' "$how" "$LIB" "$V2" 2>"$T/py.err" || fail "$how: $(cat "$T/py.err")"
  stop_victim
  expect_survived "the $how writer"
  expect_same_content "$LIB" "$V2"
  expect_log "published file=$LIB [ino "
  ok "$how publishes the pending file before closing it"
done

# 7. A program that closes the shim's directory fd (a loop closing every fd
#    but its own) and reuses the number for another directory: the pending
#    file is never linked there; it is not published (the close says EBADF),
#    the old file stays.
fresh_copy "$V1" "$LIB"
mkdir -p "$T/elsewhere"
start_victim "$LIB"
log_reset
"$TG_CMD" python3 -c '
import os, sys
lib, new, elsewhere = sys.argv[1:4]
fd = os.open(lib, os.O_WRONLY | os.O_TRUNC)
os.write(fd, open(new, "rb").read())
mine = {0, 1, 2, fd}
for n in os.listdir("/proc/self/fd"):
    n = int(n)
    if n not in mine and os.path.realpath("/proc/self/fd/%d" % n) == os.path.dirname(lib):
        os.close(n)                       # the shim s directory fd, then its number reused
        os.dup2(os.open(elsewhere, os.O_RDONLY | os.O_DIRECTORY), n)
        break
else:
    sys.exit("no directory fd found")
try:
    os.close(fd)
    sys.exit("close succeeded")
except OSError as e:
    print(e.strerror)
try:
    os.fstat(n)
except OSError:
    sys.exit("the program s own fd %d (the reused number) was closed" % n)' "$LIB" "$V2" "$T/elsewhere" >"$T/py.out" 2>"$T/py.err" || fail "dirfd case: $(cat "$T/py.err" "$T/py.out")"
stop_victim
expect_survived "the writer whose directory fd was reused"
[ -z "$(ls -A "$T/elsewhere")" ] || fail "the pending file was linked into another directory: $(ls -A "$T/elsewhere")"
expect_same_content "$LIB" "$V1"
expect_log "directory's fd was closed behind truncguard's back"
ok "a reused directory fd number: nothing linked elsewhere, the old file intact, the program's fd at that number left open, the close says $(cat "$T/py.out")"

# 8. A program that closes every fd above its own (closefrom, close_range up
#    to ~0, as a server does before it goes on, or a close loop up to the fd
#    limit) while its file is pending: the directory fd truncguard keeps is not
#    the program's, and stays open; every fd of the program's in the range is
#    closed; the file is published at its close.
for how in closefrom close_range; do
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  log_reset
  "$TG_CMD" python3 -c '
import ctypes, fcntl, os, sys
how, lib, new = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(lib, os.O_WRONLY | os.O_TRUNC)
mine = [os.open("/dev/null", os.O_RDONLY) for _ in range(3)]
above = max([fd] + mine) + 1
extra = os.dup2(mine[0], above + 20)   # the program s own, inside the range
if how == "closefrom":
    libc.closefrom(above)
else:
    # Its errors are the kernel ones: bad flags, an empty range (nothing closed).
    for first, last, flags in ((above, 0xFFFFFFFF, 0x40000000), (above, above - 1, 0)):
        assert libc.close_range(first, last, flags) == -1 and ctypes.get_errno() == 22, "close_range: not EINVAL"
    fcntl.fcntl(extra, fcntl.F_GETFD)
    assert libc.close_range(above, 0xFFFFFFFF, 0) == 0, os.strerror(ctypes.get_errno())
try:
    fcntl.fcntl(extra, fcntl.F_GETFD)
    sys.exit("fd %d of the program survived %s" % (extra, how))
except OSError:
    pass
os.write(fd, open(new, "rb").read())
os.close(fd)
assert open(lib, "rb").read() == open(new, "rb").read(), "not published at close"' "$how" "$LIB" "$V2" \
    2>"$T/py.err" || fail "$how above the program's fds: $(cat "$T/py.err")"
  stop_victim
  expect_survived "$how above the program's fds"
  expect_same_content "$LIB" "$V2"
  expect_log "published file=$LIB [ino "
  ok "$how above the program's own fds: the program's fds in the range closed, the file published at close"
done

# 9. dup3 and close_range with flags the kernel refuses (EINVAL) close
#    nothing, by libc and by syscall(): the file is not published there (it
#    was: the half-written file at the name while the writer went on).
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
"$TG_CMD" python3 -c '
import ctypes, os, sys
lib, old, new = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
nr = {"x86_64": (292, 436), "aarch64": (24, 436)}[os.uname().machine]  # SYS_dup3, SYS_close_range
fd = os.open(lib, os.O_WRONLY | os.O_TRUNC)
data = open(new, "rb").read()
os.write(fd, data[:4096])
other = os.open("/dev/null", os.O_RDONLY)
calls = {"dup3": lambda: libc.dup3(other, fd, 0x1234), "syscall(SYS_dup3)": lambda: libc.syscall(nr[0], other, fd, 0x1234),
         "close_range": lambda: libc.close_range(fd, fd, 0x80), "syscall(SYS_close_range)": lambda: libc.syscall(nr[1], fd, fd, 0x80)}
for name, call in calls.items():
    assert call() == -1 and ctypes.get_errno() == 22, name + ": not EINVAL"
    assert open(lib, "rb").read() == open(old, "rb").read(), "published by a failed " + name
os.write(fd, data[4096:])
os.close(fd)
assert open(lib, "rb").read() == data, "not published at close"' "$LIB" "$V1" "$V2" 2>"$T/py.err" ||
  fail "failed dup3/close_range: $(cat "$T/py.err")"
stop_victim
expect_survived "the writer whose dup3 and close_range failed"
expect_same_content "$LIB" "$V2"
ok "dup3 and close_range that fail (bad flags), by libc and by syscall(): nothing published until the close"

# A stream writing the library is pointed elsewhere by freopen: glibc closes
# the library's fd inside libc, where close() never sees it. That is the
# writer's last close: it publishes (the new content was lost, the old file
# left, with "closed without close()" in the log).
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
"$TG_WRITER" freopen_away "$LIB" "$V2" >/dev/null || fail "control: freopen_away failed"
sleep 0.2
stop_victim
expect_broken "control: fopen, then freopen elsewhere, without truncguard"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
"$TG_CMD" "$TG_WRITER" freopen_away "$LIB" "$V2" >/dev/null || fail "freopen_away under truncguard failed"
stop_victim
expect_survived "fopen, then freopen elsewhere"
expect_same_content "$LIB" "$V2"
expect_log "published file=$LIB [ino "
ok "a stream freopen'ed elsewhere publishes the file it was writing"

# A close truncguard can't see (a syscall instruction of the program's own)
# of the pending file's last fd loses the new content: the writer exits 0,
# the old file stays at the name, and at exit the log says so (truncguard(7),
# LIMITS). Control: without truncguard the write kills the victim.
case $(uname -m) in
  x86_64 | aarch64)
    fresh_copy "$V1" "$LIB"
    start_victim "$LIB"
    "$TG_WRITER" raw_close "$LIB" "$V2" >/dev/null || fail "control: raw_close failed"
    stop_victim
    expect_killed "control: a write closed by a syscall instruction, without truncguard"
    fresh_copy "$V1" "$LIB"
    old=$(inode "$LIB")
    start_victim "$LIB"
    log_reset
    "$TG_CMD" "$TG_WRITER" raw_close "$LIB" "$V2" >/dev/null || fail "raw_close under truncguard failed"
    stop_victim
    expect_survived "a write closed by a syscall instruction"
    [ "$(inode "$LIB")" = "$old" ] || fail "a close truncguard can't see: the name holds another file: $(tg_log)"
    expect_same_content "$LIB" "$V1"
    expect_log "cannot protect file=$LIB: the writer's fd no longer refers to the new file (closed without close()): Bad file descriptor; the old file is unchanged and the new content is lost"
    ok "a close by a syscall instruction: the new content lost, the old file at the name, and the log says so at exit" ;;
  *) note "skip a close by a syscall instruction: no inline system call for $(uname -m)" ;;
esac

# freopen(NULL, mode, stream) reopens the stream's own file (glibc: through
# /proc/self/fd) and closes its old fd inside libc too: the pending file is
# published there first, as at fclose (the half written so far at the name
# right after the freopen), and the rest goes into it.
freopen_null() {  # freopen_null MODE [CMD...]
  local mode=$1
  shift
  "$@" python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fopen.restype = libc.freopen.restype = ctypes.c_void_p
libc.freopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
libc.fwrite.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
libc.fseek.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_int]
libc.fclose.argtypes = [ctypes.c_void_p]
lib, mode, new = sys.argv[1], sys.argv[2].encode(), open(sys.argv[3], "rb").read()
half = len(new) // 2
f = libc.fopen(lib.encode(), b"w")
libc.fwrite(new[:half], 1, half, f)
f = libc.freopen(None, mode, f)
if not f:
    sys.exit("freopen: " + os.strerror(ctypes.get_errno()))
print("after freopen:", "the half written" if open(lib, "rb").read() == new[:half] else "not the half written")
libc.fseek(f, half, 0)
libc.fwrite(new[half:], 1, len(new) - half, f)
if libc.fclose(f) != 0:
    sys.exit("fclose: " + os.strerror(ctypes.get_errno()))' "$LIB" "$mode" "$V2"
}
for m in a r+; do
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  freopen_null "$m" >/dev/null || fail "control: fopen, then freopen(NULL, \"$m\"), failed"
  stop_victim
  expect_killed "control: fopen, then freopen(NULL, \"$m\"), without truncguard"
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  log_reset
  got=$(freopen_null "$m" "$TG_CMD") || fail "freopen(NULL, \"$m\") under truncguard failed: $(tg_log)"
  stop_victim
  expect_survived "fopen, then freopen(NULL, \"$m\")"
  [ "$got" = "after freopen: the half written" ] || fail "freopen(NULL, \"$m\") of a pending file did not publish it: $got"
  expect_same_content "$LIB" "$V2"
  ok "freopen(NULL, \"$m\") of a pending stream publishes it first; the rest lands in it"
done

# A writer that closes its fd with syscall(SYS_close, fd), not close(): libuv
# does (node's fs.writeFileSync, copyFileSync...), to stay clear of close's
# cancellation point. That close publishes as close() does (the new content
# was lost: exit 0, the old file at the name, "closed without close()" in the
# log). node where it is installed; python calling libc's syscall() through
# ctypes, as any program may, everywhere.
node_write() { "$@" node -e 'const fs = require("fs"); fs.writeFileSync(process.argv[1], fs.readFileSync(process.argv[2]))' "$LIB" "$V2"; }
node_copy() { "$@" node -e 'require("fs").copyFileSync(process.argv[2], process.argv[1])' "$LIB" "$V2"; }
py_syscall_close() {
  "$@" python3 -c '
import ctypes, os, platform, sys
nr = {"x86_64": 3, "aarch64": 57}[platform.machine()]  # SYS_close
data = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
while data:
    data = data[os.write(fd, data):]
if ctypes.CDLL(None, use_errno=True).syscall(nr, fd) != 0:
    sys.exit("syscall(SYS_close) failed: " + os.strerror(ctypes.get_errno()))' "$LIB" "$V2"
}
raw_closers=(py_syscall_close)
case $(uname -m) in x86_64|aarch64) ;; *) raw_closers=(); note "skip python syscall(SYS_close): no SYS_close number known for $(uname -m)" ;; esac
if ! command -v node >/dev/null; then
  note "skip node: not installed"
elif asan_cannot_start node; then
  note "skip node: $NO_ASAN"
else
  raw_closers+=(node_write node_copy)
fi
[ ${#raw_closers[@]} -gt 0 ] || skip "no writer that closes with syscall(SYS_close) can run here"
for w in "${raw_closers[@]}"; do
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  $w || fail "control: $w failed"
  stop_victim
  expect_killed "control: $w without truncguard"
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  $w "$TG_CMD" || fail "$w under truncguard failed"
  stop_victim
  expect_survived "$w in atomic mode"
  expect_version "$LIB" 2
  expect_same_content "$LIB" "$V2"
  new=$(inode "$LIB")
  expect_log "published file=$LIB [ino $old -> $new] (mode atomic): the writer closed it"
  ok "$w: its syscall(SYS_close) published the file"
done

# Another name for the pending fd publishes nothing before the writer's last
# close, which publishes the whole file (published earlier, the half-written
# file was at the name while the writer went on):
# - dup2(fd, fd): the kernel closes nothing (dup2 returns fd), and the writer
#   goes on through fd;
# - a dup (dup, fcntl F_DUPFD_CLOEXEC): the close of the first fd is not the
#   writer's last; it goes on through the dup.
for how in dup2-self dup F_DUPFD_CLOEXEC; do
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  start_victim "$LIB"
  "$TG_CMD" python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
how, lib, data = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read()
fd = os.open(lib, os.O_WRONLY | os.O_TRUNC)
os.write(fd, data[:len(data) // 2])
if how == "dup2-self":
    d = libc.dup2(fd, fd)
    if d != fd:
        sys.exit("dup2(fd, fd) returned %d, not fd %d" % (d, fd))
else:
    d = libc.dup(fd) if how == "dup" else libc.fcntl(fd, 1030, 0)  # F_DUPFD_CLOEXEC
    if d < 0:
        sys.exit(how + ": " + os.strerror(ctypes.get_errno()))
    os.close(fd)
print("ino", os.stat(lib).st_ino)
os.write(d, data[len(data) // 2:])
os.close(d)' "$how" "$LIB" "$V2" >"$T/dupclose.out" 2>"$T/dupclose.err" || fail "$how writer: $(cat "$T/dupclose.err")"
  stop_victim
  expect_survived "$how of a pending fd, then the last close"
  [ "$(cat "$T/dupclose.out")" = "ino $old" ] ||
    fail "$how of a pending fd: published before the last close (expected the old inode $old at the name, got: $(cat "$T/dupclose.out"))"
  [ "$(inode "$LIB")" != "$old" ] || fail "$how: the file was never published"
  expect_same_content "$LIB" "$V2"
  ok "$how of a pending fd publishes nothing; the last close publishes the whole file"
done

# Until the writer closes it, the name shows the old file, also to the
# writer (README, "Atomic mode"): what it does to the file by name then
# (chmod) is done to the old one, and the new file keeps the mode it got at
# the open. In replace mode (the control) the chmod reaches the new file.
chmod_before_close() {  # chmod_before_close MODE: prints what the writer saw by name, then the result
  fresh_copy "$V1" "$LIB"
  chmod 0644 "$LIB"
  "$TG_CMD" -m "$1" --scope=elf python3 -c '
import os, sys
with open(sys.argv[1], "wb") as f:
    f.write(open(sys.argv[2], "rb").read()); f.flush()
    os.chmod(sys.argv[1], 0o700)
    st = os.stat(sys.argv[1])
    print("by name before close: %o %d" % (st.st_mode & 0o777, st.st_size))' "$LIB" "$V2" ||
    fail "mode $1: the writer that chmods by name before its close failed"
  echo "after: $(stat -c '%a %s' "$LIB")"
}
[ "$(chmod_before_close replace | paste -sd' ')" = "by name before close: 700 $(stat -c %s "$V2") after: 700 $(stat -c %s "$V2")" ] ||
  fail "control: replace mode, chmod by name before the close: $(chmod_before_close replace | paste -sd' ')"
got=$(chmod_before_close atomic | paste -sd' ')
[ "$got" = "by name before close: 700 $(stat -c %s "$V1") after: 644 $(stat -c %s "$V2")" ] ||
  fail "atomic: chmod by name before the close: $got; expected the old file ($(stat -c %s "$V1") bytes) to get 700, the new one to keep 644"
expect_same_content "$LIB" "$V2"
ok "atomic: before the close the name is the old file, also to the writer: its chmod goes there, the new file keeps its mode"

# A name that is missing at open is created as usual and can be seen
# half-written (docs/guarantees.md, "What is not guaranteed"): nothing to
# keep, so nothing pending; the open passes (no such file).
rm -f -- "$T/newlib.so"
log_reset
out=$("$TG_CMD" --debug=rewrites,decisions python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)
os.write(fd, b"half")
print(open(sys.argv[1], "rb").read().decode())
os.write(fd, b", then the rest")
os.close(fd)' "$T/newlib.so") || fail "a new name in atomic mode: the writer failed"
[ "$out" = half ] || fail "a new name in atomic mode: mid-write, the name held '$out', expected 'half'"
[ "$(cat "$T/newlib.so")" = "half, then the rest" ] || fail "a new name in atomic mode: $(cat "$T/newlib.so")"
expect_log "decision file=$T/newlib.so: pass (no such file)"
tg_log | grep -F "file=$T/newlib.so" | grep -q "published\|replaced" && fail "a new name in atomic mode was made pending: $(tg_log)"
ok "atomic: a name missing at open is created as usual, seen half-written by others"

# An O_NOFOLLOW open's fd does not show O_NOFOLLOW in F_GETFL (it is a reopen
# through /proc/self/fd, which O_NOFOLLOW refuses: docs/guarantees.md, "What
# is not guaranteed"); the rest of its flags as asked. Control: the same open
# of a file truncguard lets through shows it.
getfl() {  # getfl FILE [CMD...]: F_GETFL of an O_WRONLY|O_TRUNC|O_NOFOLLOW open of FILE, in octal
  local file=$1
  shift
  "$@" python3 -c 'import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
print(oct(fcntl.fcntl(fd, fcntl.F_GETFL)))' "$file"
}
seq 1 100 >"$T/plain.txt"
plain=$(getfl "$T/plain.txt" "$TG_CMD") || fail "O_NOFOLLOW open of a text file failed"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
pending=$(getfl "$LIB" "$TG_CMD") || fail "O_NOFOLLOW open of a library in use, atomic mode, failed"
stop_victim
expect_survived "an O_NOFOLLOW open in atomic mode"
expect_log "published file=$LIB [ino "
[ $((8#${plain#0o} & 8#400000)) -ne 0 ] || fail "control: F_GETFL of a plain O_NOFOLLOW open ($plain) shows no O_NOFOLLOW"
[ "$pending" = "$(printf '0o%o' $((8#${plain#0o} & ~8#400000)))" ] ||
  fail "atomic: F_GETFL of the O_NOFOLLOW open is $pending, expected $plain without O_NOFOLLOW"
ok "atomic: an O_NOFOLLOW open's fd shows $pending (no O_NOFOLLOW); a plain one $plain"
