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

# While the library at fd 2 is pending (atomic mode, the log on stderr), no
# line at all goes to fd 2, not only the library's own: here the decision
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
echo text >"$T/text.txt"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
pending_stderr "$T/guarded.txt" env -u TRUNCGUARD_LOG TRUNCGUARD_DEBUG=decisions TRUNCGUARD_MODE=atomic "$TG_CMD" ||
  fail "mode atomic, close(2), then open and another file's truncation, log on stderr"
stop_victim
expect_survived "mode atomic: close(2), then open(O_TRUNC) and another file's truncation"
want=$(cat "$T/control.txt")
got=$(cat "$T/guarded.txt")
[ "$got" = "$want" ] || fail "mode atomic, a line logged while fd 2 is pending: $got; without truncguard: $want"
ok "mode atomic: no line logged into the library pending at fd 2 (another file's decision line): $got"

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
