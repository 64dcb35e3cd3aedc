#!/bin/bash
# Bug: another process holds a write lease on a file (Samba's kernel oplocks,
# an F_SETLEASE cache). The guard's open to read the header began the lease
# break and, with O_NONBLOCK, got EWOULDBLOCK for the 4 ms it tried: the file
# counted as unreadable, hence as maybe a library in use, and wherever some
# process can't be inspected (or with scope elf):
#  - `echo new > FILE` replaced the text file with a new inode at once, while
#    the holder was still flushing what it had cached (into the old inode);
#  - a write in place (`1<>FILE`) failed with ETXTBSY;
#  - coreutils' `truncate`, which opens O_NONBLOCK, failed with ETXTBSY
#    instead of the kernel's EAGAIN.
# Without truncguard the writer's open waits until the holder has flushed
# and let go (a blocking open), or fails with EAGAIN (an O_NONBLOCK one).
# Now the guard's look waits as the writer's own open would, or gives the
# O_NONBLOCK caller the kernel's answer (EINTR where a signal ends the wait). Each writer is run without and with
# truncguard (scopes system and elf), against the holder of rtool lease-hold
# (which appends "flushed" before it lets go): the same status, inode and
# content, and the holder sees exactly one lease break.
. "$(dirname "$0")/rlib.sh"
need_shim

# hold_and_write NAME CMD...: the holder takes its lease on a fresh
# $T/shared (text), CMD runs, the holder ends. RESULT: what came of it.
hold_and_write() {
  local name=$1 old
  shift
  seq 1 100 >"$T/shared"
  old=$(inode "$T/shared")
  _start_bg "$T/ready" "$T/$name.holder" "$TG_RTOOL" lease-hold "$T/shared" 300 "$T/ready"
  r_run "$name" "$@"
  wait "$BG_PID"
  RESULT="status=$R_STATUS inode=$([ "$(inode "$T/shared")" = "$old" ] && echo kept || echo new)"
  RESULT+=" content=$(head -c 8 "$T/shared" | tr '\n' ' ')...$(tail -c 12 "$T/shared" | tr '\n' ' ')"
  RESULT+=" holder: $(tr '\n' ' ' <"$T/$name.holder")"
}

check_writer() {
  local what=$1 plain scope
  shift
  hold_and_write plain "$@"
  plain=$RESULT
  case $plain in
    *"inode=kept"*"breaks after=1 ") ;;
    *) fail "control ($what): without truncguard: $plain $(r_out plain)" ;;
  esac
  for scope in system elf; do
    log_reset
    hold_and_write guarded "$TG_CMD" --scope=$scope --debug=decisions "$@"
    [ "$RESULT" = "$plain" ] ||
      fail "$what, scope $scope: under truncguard: $RESULT $(r_out guarded)
  without truncguard: $plain $(tg_log)"
  done
  ok "$what: as without truncguard, under both scopes ($plain)"
}

check_writer "a truncating open waits for the holder's flush, then truncates in place" sh -c "echo new > $T/shared"
check_writer "a write in place waits, then writes over the flushed file" sh -c "printf NEW 1<>$T/shared"
check_writer "truncate (an O_NONBLOCK open) gets the kernel's EAGAIN" truncate -s 10 "$T/shared"
# A signal handled without SA_RESTART (python's handlers) while the open
# waits: it fails with EINTR (python's exit status 4), not EAGAIN (11), as
# the kernel's own open would.
if command -v python3 >/dev/null; then
  check_writer "an open whose wait a signal interrupts gets EINTR" python3 -c '
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
signal.signal(signal.SIGALRM, lambda *a: None)
signal.setitimer(signal.ITIMER_REAL, 0.1)
fd = libc.open(sys.argv[1].encode(), os.O_WRONLY | os.O_TRUNC)
sys.exit(ctypes.get_errno() if fd < 0 else 0)' "$T/shared"
else
  note "SKIP the interrupted open: python3 is not installed"
fi
expect_log "decision file=$T/shared: pass (another process's lease on it is being broken, and the open does not wait (O_NONBLOCK) or its wait was interrupted: it fails as the kernel's own open would (EWOULDBLOCK, EINTR), truncating nothing) [open]"

# README ("What its look at a file shows to others", Leases): a read lease
# is not broken by the look, only by the write itself; and a writer without
# write permission fails its own open before any lease is broken, while its
# look, if it may read the file, breaks a write lease first (the documented
# difference). The holder (python, root) takes the lease on a text file of
# root's (0644) and counts the lease-break signals; nobody writes it with
# `>` (EACCES); control: root's own write breaks the read lease.
if [ "$(id -u)" -eq 0 ] && command -v python3 >/dev/null; then
  nobody_copies
  # lease_breaks KIND CMD...: the lease-break signals a KIND (read, write)
  # lease on a fresh $T/leased got while CMD ran.
  lease_breaks() {
    local kind=$1
    shift
    seq 1 100 >"$T/leased"
    chmod 644 "$T/leased"
    rm -f "$T/leased.ready"
    python3 -c '
import fcntl, os, signal, sys, time
breaks = 0
def on_break(sig, frame):
    global breaks
    breaks += 1
signal.signal(signal.SIGIO, on_break)
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK if sys.argv[2] == "read" else fcntl.F_WRLCK)
open(sys.argv[3], "w").close()
while not os.path.exists(sys.argv[4]) and not breaks:
    time.sleep(0.01)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
print(breaks)' "$T/leased" "$kind" "$T/leased.ready" "$T/leased.done" >"$T/leased.out" 2>&1 &
    local holder=$! i
    _tg_pids+=("$holder")
    rm -f "$T/leased.done"
    for i in $(seq 500); do [ -e "$T/leased.ready" ] && break; sleep 0.01; done
    [ -e "$T/leased.ready" ] || fail "the lease holder did not start: $(cat "$T/leased.out")"
    "$@" >"$T/leased.writer" 2>&1
    touch "$T/leased.done"
    wait "$holder" || fail "the lease holder failed: $(cat "$T/leased.out")"
    cat "$T/leased.out"
  }
  n=$(lease_breaks read sh -c "echo x > $T/leased")
  [ "$n" = 1 ] || fail "control: root's write broke the read lease $n times, expected once"
  # refused_write KIND WANT: nobody's `>`, without truncguard (no break) and
  # under it (WANT breaks), refused both times (EACCES).
  refused_write() {
    n=$(lease_breaks "$1" as_nobody sh -c "echo x > $T/leased")
    [ "$n" = 0 ] || fail "control: nobody's refused write broke the $1 lease $n times"
    n=$(lease_breaks "$1" as_nobody "$TG_CMD_N" sh -c "echo x > $T/leased")
    grep -q "Permission denied" "$T/leased.writer" || fail "nobody's write under truncguard ($1 lease): $(cat "$T/leased.writer")"
    [ "$n" = "$2" ] || fail "nobody's refused write under truncguard: its look broke the $1 lease $n times, expected $2"
  }
  refused_write read 0
  ok "a read lease: not broken by the look of a refused write (root's write breaks it)"
  refused_write write 1
  ok "a write lease: the look of a write refused for its permission breaks it (documented), without truncguard not"
else
  note "SKIP the read lease: needs root and python3"
fi
