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

# writer CLOSE REPORT [CMD...]: a python program that opens six fds on
# /dev/null (3..8), closes the fds in CLOSE (a comma-separated list), opens
# $LIB with O_WRONLY|O_TRUNC, opens eight more files, writes $V2 through the
# library's fd and closes it. REPORT gets one line: the fd numbers it got,
# the library's fd flags, and whether the name held $V2 after the close.
writer() {
  local close=$1 report=$2
  shift 2
  "$@" python3 -c '
import fcntl, os, sys
close, lib, new, report = sys.argv[1:5]
data = open(new, "rb").read()
mine = [os.open("/dev/null", os.O_RDONLY) for _ in range(6)]
for n in close.split(","):
    os.close(int(n))
fd = os.open(lib, os.O_WRONLY | os.O_TRUNC)
got = "fd=%d fdflags=%d" % (fd, fcntl.fcntl(fd, fcntl.F_GETFD))
later = [os.open("/dev/null", os.O_RDONLY) for _ in range(8)]
os.write(fd, data)       # for CLOSE 1: what the program writes to its stdout
os.close(fd)
published = open(lib, "rb").read() == data
with open(report, "w") as f:
    print(got, "next:", *later, "new content at the name" if published else "NOT the new content", file=f)' \
    "$close" "$LIB" "$V2" "$report"
}

# check MODE CLOSE: the control, then the writer under truncguard in MODE.
check() {
  local mode=$1 close=$2 want got
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  writer "$close" "$T/control.txt" 2>"$T/py.err" || fail "control: close($close): $(cat "$T/py.err")"
  stop_victim
  expect_killed "control: close($close), then open(O_TRUNC) without truncguard"
  want=$(cat "$T/control.txt")
  [[ "$want" == "fd=${close%%,*} "* ]] || fail "control: close($close), then open gave: $want"

  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  log_reset
  writer "$close" "$T/guarded.txt" env TRUNCGUARD_MODE="$mode" "$TG_CMD" 2>"$T/py.err" ||
    fail "mode $mode, close($close): $(cat "$T/py.err")"
  stop_victim
  expect_survived "mode $mode: close($close), then open(O_TRUNC)"
  expect_version "$LIB" 2
  expect_log "replaced file=$LIB [ino " "(mode $mode)"
  [ "$mode" != atomic ] || expect_log "published file=$LIB [ino "
  got=$(cat "$T/guarded.txt")
  [ "$got" = "$want" ] || fail "mode $mode, close($close), then open: $got; without truncguard: $want"
  ok "mode $mode: close($close), then open: $got, as without truncguard"
}

for mode in replace unlink; do
  for close in 1 0 4; do
    check "$mode" "$close"
  done
done
