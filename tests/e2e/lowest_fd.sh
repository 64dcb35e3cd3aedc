#!/bin/bash
# An open returns the lowest free fd number (POSIX), and programs rely on it:
# close(1), then open() points stdout at a file (the old way, before exec);
# a program closes a number in the middle of its own fds and opens again.
# Under truncguard, an open that gives the library a new inode returns the
# number the same program gets without truncguard, in every mode; and the
# shim's own long-lived fds (the directory kept for an atomic publication,
# the log file) hold none of the numbers the program's next opens get. Each
# case runs the same writer without truncguard first: the numbers to expect,
# and the proof that the write kills the victim.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
LIB=$T/libvictim.so

# writer CLOSE CLOEXEC REPORT [CMD...]: a python program that opens six fds
# on /dev/null (3..8), closes the fds in CLOSE (a comma-separated list),
# opens $LIB with libc's open(O_WRONLY|O_TRUNC), plus O_CLOEXEC if CLOEXEC is
# 1, opens eight more files, writes $V2 through the library's fd and closes
# it. REPORT gets one line: the fd numbers it got, the library's fd flags
# (F_GETFD) and file status flags (F_GETFL), and whether the name held $V2
# after the close.
writer() {
  local close=$1 cloexec=$2 report=$3
  shift 3
  "$@" python3 -c '
import ctypes, fcntl, os, sys
close, cloexec, lib, new, report = sys.argv[1:6]
libc = ctypes.CDLL(None, use_errno=True)
data = open(new, "rb").read()
mine = [os.open("/dev/null", os.O_RDONLY) for _ in range(6)]
for n in close.split(","):
    os.close(int(n))
fd = libc.open(lib.encode(), os.O_WRONLY | os.O_TRUNC | (os.O_CLOEXEC if cloexec == "1" else 0))
if fd < 0:
    sys.exit("open: " + os.strerror(ctypes.get_errno()))
got = "fd=%d fdflags=%d flags=%o" % (fd, fcntl.fcntl(fd, fcntl.F_GETFD), fcntl.fcntl(fd, fcntl.F_GETFL))
later = [os.open("/dev/null", os.O_RDONLY) for _ in range(8)]
os.write(fd, data)       # for CLOSE 1: what the program writes to its stdout
os.close(fd)
published = open(lib, "rb").read() == data
with open(report, "w") as f:
    print(got, "next:", *later, "new content at the name" if published else "NOT the new content", file=f)' \
    "$close" "$cloexec" "$LIB" "$V2" "$report"
}

# check MODE CLOSE CLOEXEC [stderr]: the control, then the writer under
# truncguard in MODE, its log in a file (or on its stderr, fd 2).
check() {
  local mode=$1 close=$2 cloexec=$3 log=${4:-file} want got
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  writer "$close" "$cloexec" "$T/control.txt" 2>"$T/py.err" || fail "control: close($close): $(cat "$T/py.err")"
  stop_victim
  expect_killed "control: close($close), then open(O_TRUNC) without truncguard"
  want=$(cat "$T/control.txt")
  [[ "$want" == "fd=${close%%,*} "* ]] || fail "control: close($close), then open gave: $want"

  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  log_reset
  if [ "$log" = stderr ]; then
    writer "$close" "$cloexec" "$T/guarded.txt" env -u TRUNCGUARD_LOG TRUNCGUARD_MODE="$mode" "$TG_CMD" \
      2>"$T/py.err" || fail "mode $mode, close($close), log on stderr: $(cat "$T/py.err")"
  else
    writer "$close" "$cloexec" "$T/guarded.txt" env TRUNCGUARD_MODE="$mode" "$TG_CMD" 2>"$T/py.err" ||
      fail "mode $mode, close($close): $(cat "$T/py.err")"
  fi
  stop_victim
  expect_survived "mode $mode: close($close), then open(O_TRUNC)"
  expect_version "$LIB" 2
  if [ "$log" = file ]; then
    expect_log "replaced file=$LIB [ino " "(mode $mode)"
    [ "$mode" != atomic ] || expect_log "published file=$LIB [ino "
  fi
  got=$(cat "$T/guarded.txt")
  [ "$got" = "$want" ] || fail "mode $mode, close($close), then open: $got; without truncguard: $want"
  ok "mode $mode: close($close), then open: $got, as without truncguard (log: $log)"
}

for mode in replace unlink atomic; do
  check "$mode" 1 0   # stdout pointed at the file, inherited by what it execs
  check "$mode" 0 1
  check "$mode" 4 1   # in the middle of the program's own fds
  # The log on stderr, which the program closed: a daemon's close(0..2), then
  # opens; or close(2), the library getting fd 2. No line of the shim's may
  # go into the library through that number (stderr is the library then).
  check "$mode" 0,1,2 1 stderr
  check "$mode" 2 1 stderr
done

# While the library at fd 2 is pending (atomic mode, the log on stderr), or
# once it is replaced there (modes replace and unlink), no line at all goes
# to fd 2, not only the library's own: here the decision
# line of a text file the program truncates meanwhile (TRUNCGUARD_DEBUG=
# decisions). The name must then hold v2 exactly.
pending_stderr() {  # pending_stderr REPORT [CMD...]
  local report=$1
  shift
  "$@" python3 -c '
import os, sys
lib, new, text, report = sys.argv[1:5]
data = open(new, "rb").read()
os.close(2)
fd = os.open(lib, os.O_WRONLY | os.O_TRUNC)
os.close(os.open(text, os.O_WRONLY | os.O_TRUNC))
os.write(fd, data)
os.close(fd)
with open(report, "w") as f:
    print("fd=%d" % fd, "new content at the name" if open(lib, "rb").read() == data else "NOT the new content", file=f)' \
    "$LIB" "$V2" "$T/text.txt" "$report"
}
echo text >"$T/text.txt"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
pending_stderr "$T/control.txt" || fail "control: close(2), open, another file's truncation"
stop_victim
expect_killed "control: close(2), then open(O_TRUNC) and another file's truncation, without truncguard"
# In modes replace and unlink the write has returned by then, and fd 2 is
# the new library at the name: the line went into it (before the fix), the
# program's write after it, and the name held neither version.
want=$(cat "$T/control.txt")
for mode in atomic replace unlink; do
  echo text >"$T/text.txt"
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  pending_stderr "$T/guarded.txt" env -u TRUNCGUARD_LOG TRUNCGUARD_DEBUG=decisions TRUNCGUARD_MODE=$mode "$TG_CMD" ||
    fail "mode $mode, close(2), then open and another file's truncation, log on stderr"
  stop_victim
  expect_survived "mode $mode: close(2), then open(O_TRUNC) and another file's truncation"
  got=$(cat "$T/guarded.txt")
  [ "$got" = "$want" ] || fail "mode $mode, a line logged while fd 2 holds the library: $got; without truncguard: $want"
  ok "mode $mode: no line logged into the library at fd 2 (another file's decision line): $got"
done

# The same where fd 2 moves to the new inode: the program opened the library
# at fd 2 before the victim loaded it, and truncates it through that fd.
ftruncate_stderr() {  # ftruncate_stderr REPORT [CMD...]
  local report=$1
  shift
  rm -rf "$T/opened" "$T/go"
  "$@" python3 -c '
import os, sys, time
lib, new, text, report, opened, go = sys.argv[1:7]
data = open(new, "rb").read()
os.close(2)
fd = os.open(lib, os.O_RDWR)
os.mkdir(opened)  # not an open: its decision line would go into fd 2
while not os.path.exists(go):
    time.sleep(0.01)
os.ftruncate(fd, 0)
os.close(os.open(text, os.O_WRONLY | os.O_TRUNC))
os.write(fd, data)  # at offset 0, where a line put there would have moved it
os.close(fd)
with open(report, "w") as f:
    print("fd=%d" % fd, "new content at the name" if open(lib, "rb").read() == data else "NOT the new content", file=f)' \
    "$LIB" "$V2" "$T/text.txt" "$report" "$T/opened" "$T/go" &
  local writer=$!
  local i
  for i in $(seq 500); do [ -e "$T/opened" ] && break; sleep 0.01; done
  [ -e "$T/opened" ] || fail "the writer did not open the library"
  start_victim "$LIB"
  touch "$T/go"
  wait "$writer"
}
echo text >"$T/text.txt"
fresh_copy "$V1" "$LIB"
ftruncate_stderr "$T/control.txt" || fail "control: close(2), open, victim, ftruncate(2)"
stop_victim
expect_killed "control: close(2), open(O_RDWR), then ftruncate(2, 0) once the victim runs it, without truncguard"
want=$(cat "$T/control.txt")
echo text >"$T/text.txt"
fresh_copy "$V1" "$LIB"
must ln -f "$LIB" "$T/old.so"  # the victim's inode, after its name is the new file's
ftruncate_stderr "$T/guarded.txt" env -u TRUNCGUARD_LOG TRUNCGUARD_DEBUG=decisions "$TG_CMD" ||
  fail "close(2), open, victim, ftruncate(2), log on stderr"
stop_victim
expect_survived "close(2), open(O_RDWR), then ftruncate(2, 0) once the victim runs it"
# The ftruncate's own decision line went through fd 2 before the fd moved:
# into the library the victim runs.
cmp -s "$T/old.so" "$V1" || fail "ftruncate(2): a line was written into the old library, which the victim runs: $(head -c 120 "$T/old.so" | tr -c '[:print:]' .)"
got=$(cat "$T/guarded.txt")
[ "$got" = "$want" ] || fail "ftruncate(2): a line logged while fd 2 holds the new library: $got; without truncguard: $want"
ok "ftruncate(2): no line logged into the new library at fd 2 (another file's decision line): $got"

# An O_RDWR open that fd 2 gets, of a file plainly not code, is looked at
# through that fd after the open: its decision line is the open's own, and
# must not go into the program's file either (an O_WRONLY open's is logged
# before the open, while fd 2 is still closed).
echo "the program's text" >"$T/own.txt"
env -u TRUNCGUARD_LOG TRUNCGUARD_DEBUG=decisions "$TG_CMD" python3 -c '
import os, sys
os.close(2)
fd = os.open(sys.argv[1], os.O_RDWR)
os.close(fd)
print(fd)' "$T/own.txt" >"$T/own.fd" || fail "close(2), then an O_RDWR open of a text file"
[ "$(cat "$T/own.fd")" = 2 ] || fail "the O_RDWR open got fd $(cat "$T/own.fd"), not 2"
[ "$(cat "$T/own.txt")" = "the program's text" ] ||
  fail "an O_RDWR open at fd 2: its decision line went into the program's file: $(cat "$T/own.txt")"
ok "an O_RDWR open at fd 2 (looked at through that fd): its decision line is not written into the file"

# A small fd limit, every number in its upper half in use: the directory fd
# atomic mode keeps can't have a high number, and takes the lowest free one
# (documented). The open is not refused for it: the writer still gets the
# lowest free number, and the file is published at its close.
full_writer() {  # full_writer REPORT [CMD...]
  local report=$1
  shift
  "$@" python3 -c '
import os, resource, sys
lib, new, report = sys.argv[1:4]
data = open(new, "rb").read()
resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))
held = []
try:
    while True:
        held.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
for n in range(3, 9):
    os.close(n)          # six free, all low
fd = os.open(lib, os.O_WRONLY | os.O_TRUNC)
os.write(fd, data)
os.close(fd)
published = open(lib, "rb").read() == data
with open(report, "w") as f:
    print("fd=%d" % fd, "new content at the name" if published else "NOT the new content", file=f)' \
    "$LIB" "$V2" "$report"
}
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
full_writer "$T/control.txt" 2>"$T/py.err" || fail "control: the writer at its fd limit: $(cat "$T/py.err")"
stop_victim
expect_killed "control: the writer at its fd limit, without truncguard"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
full_writer "$T/guarded.txt" env TRUNCGUARD_MODE=atomic "$TG_CMD" 2>"$T/py.err" ||
  fail "mode atomic, the writer at its fd limit: $(cat "$T/py.err")"
stop_victim
expect_survived "mode atomic, the writer at its fd limit"
expect_version "$LIB" 2
expect_log "published file=$LIB [ino "
want=$(cat "$T/control.txt")
got=$(cat "$T/guarded.txt")
[ "$got" = "$want" ] || fail "mode atomic, the writer at its fd limit: $got; without truncguard: $want"
ok "mode atomic, the writer at its fd limit: $got, as without truncguard; published at close"
