#!/bin/bash
# Bug: POSIX record locks (fcntl F_SETLK, lockf) belong to the process, and
# any close() of any fd on the file releases them. The guard opened the file
# to read its header and closed that fd, so a program that held a lock on a
# file and opened or truncated it again lost the lock: another process could
# then take it. Measured with SQLite: while connection 1 of a process was in
# an exclusive transaction, its second connection to the same database
# released the lock, and another process began its own exclusive transaction.
#  - lock_holder: a lock held through fd A stays held after open O_RDWR,
#    O_WRONLY, O_TRUNC, ftruncate(A) and fopen "r+" of the same file, each
#    checked by a child that tries to take it. Control: its close2 step (the
#    program closes a second fd itself) releases it, with or without
#    truncguard, so the child's check does see a released lock.
#  - lock_holder --ofd and --flock: OFD locks and flock() locks, which only
#    the close of their own fd releases, are kept the same way.
# Bug: the fd the guard keeps on such a file was closed by the program's
# closefrom, close_range or loop of close above its own fds (a daemon going
# on), and that close released the program's lock, which it still held
# through its own fd: another process took it.
#  - lock_holder: ftruncate(A), then closefrom(A+1), close_range(A+1, ~0U)
#    or close() of every number above A: the lock stays held (control: the
#    same without truncguard);
#  - ftruncate(A), then dup2(A, A+1), the number of the fd kept, and close
#    of that dup: the close succeeds (and releases the lock), as without
#    truncguard (it failed with EBADF: the number was still taken for ours).
#  - ftruncate(A), then a dup2 onto that number that fails (from an fd not
#    open): the number stays ours, so the program's close of it fails EBADF
#    and the lock is held (the failed dup2 made it forgotten: that close
#    succeeded, closing the kept fd, and released the lock).
#  - ftruncate(A), then an exec of itself (A without FD_CLOEXEC: POSIX locks
#    survive an exec): the new image still holds the lock, and once it
#    closes A, it holds as many fds as without truncguard (the kept fd was
#    handed over, then closed with the lock's release). It lost the lock: the
#    kept fd is close-on-exec, and its close at the exec released it.
#  - a replaced O_RDWR open (libc's, no O_CLOEXEC) of a locked library, the
#    lock let go, then an exec: the fd truncguard kept on the old file is
#    close-on-exec, so the new program has one fd on the library, as
#    without truncguard.
#  - SQLite through python3 (if it has the sqlite3 module), as above; its
#    control: after connection 1 commits, the other process gets the lock.
. "$(dirname "$0")/lib.sh"
[ -x "$TG_LOCK_HOLDER" ] || fail "no lock_holder at $TG_LOCK_HOLDER"
need_shim
STEPS="rdwr wronly trunc ftruncate fopen"

"$TG_LOCK_HOLDER" "$T/data" $STEPS close2 >"$T/plain.out" 2>&1
st=$?
[ "$st" -eq 1 ] && [ "$(grep -c ': held$' "$T/plain.out")" -eq 5 ] && grep -q '^close2: released$' "$T/plain.out" ||
  fail "control: without truncguard, lock_holder exited $st: $(cat "$T/plain.out")"
ok "control: without truncguard every step keeps the lock, and the program's own close releases it"

for how in preload command; do
  log_reset
  if [ "$how" = preload ]; then
    LD_PRELOAD=$TG_SHIM TRUNCGUARD_DEBUG=decisions "$TG_LOCK_HOLDER" "$T/data" $STEPS close2 >"$T/$how.out" 2>&1
  else
    "$TG_CMD" --debug=decisions "$TG_LOCK_HOLDER" "$T/data" $STEPS close2 >"$T/$how.out" 2>&1
  fi
  st=$?
  [ "$st" -eq 1 ] && [ "$(grep -c ': held$' "$T/$how.out")" -eq 5 ] && grep -q '^close2: released$' "$T/$how.out" ||
    fail "under truncguard ($how), lock_holder exited $st: $(cat "$T/$how.out") $(tg_log)"
  expect_log "decision file=$T/data: pass (not an ELF shared object or executable) [open]"
  ok "under truncguard ($how): each write was examined, and the lock held through every one"
done

# An O_RDWR open is looked at through the program's own new fd; where the
# file may be code (an unused ELF library here), that fd is closed and the
# look goes on by name, as for every other write: that close must not
# release the program's lock either.
need_victims
LOCK_HOLDER_CONTENT=$V1 "$TG_LOCK_HOLDER" "$T/lib.so" rdwr close2 >"$T/plain.out" 2>&1
[ $? -eq 1 ] && grep -q '^rdwr: held$' "$T/plain.out" && grep -q '^close2: released$' "$T/plain.out" ||
  fail "control: without truncguard, an ELF file's rdwr and close2: $(cat "$T/plain.out")"
log_reset
# (--scope=self: lock_holder's checking child, which opens the file O_RDWR
# while its parent holds it open, would otherwise give it a new inode.)
LOCK_HOLDER_CONTENT=$V1 "$TG_CMD" --scope=self --debug=decisions "$TG_LOCK_HOLDER" "$T/lib.so" rdwr close2 >"$T/tg.out" 2>&1
[ $? -eq 1 ] && grep -q '^rdwr: held$' "$T/tg.out" && grep -q '^close2: released$' "$T/tg.out" ||
  fail "under truncguard, an O_RDWR open of a locked ELF file released the lock: $(cat "$T/tg.out") $(tg_log)"
expect_log "decision file=$T/lib.so: pass (" "[open]"
ok "an O_RDWR open of a locked ELF library (looked at again by name): the lock held"

# Each such open kept (parked) one more fd while the lock was held: the
# program's own, which could not be closed without releasing the lock, while
# the look by name read the file through the fd kept at the first open. Four
# opens of the locked library, their fds kept, cost truncguard's eight fds
# where the look by name before cost one (one per open up to the table's 64,
# then leaked: EMFILE for a daemon that reopens the file it keeps locked).
# Now the program's fd is kept as its own, and the open's answer where the
# look lets it pass: one fd of truncguard's, as before.
# counted FILE: "countfds" before and after four rdwr (the program's fds).
counted() {
  local before after
  before=$(sed -n 's/^countfds: \([0-9]*\) fds$/\1/p' "$1" | head -n 1)
  after=$(sed -n 's/^countfds: \([0-9]*\) fds$/\1/p' "$1" | tail -n 1)
  echo $((after - before))
}
LOCK_HOLDER_CONTENT=$V1 "$TG_LOCK_HOLDER" "$T/lib.so" countfds rdwr rdwr rdwr rdwr countfds >"$T/plain.out" 2>&1 ||
  fail "control: without truncguard, four rdwr of a locked ELF file: $(cat "$T/plain.out")"
[ "$(counted "$T/plain.out")" = 4 ] || fail "control: four rdwr opened $(counted "$T/plain.out") fds: $(cat "$T/plain.out")"
log_reset
LOCK_HOLDER_CONTENT=$V1 "$TG_CMD" --scope=self "$TG_LOCK_HOLDER" "$T/lib.so" countfds rdwr rdwr rdwr rdwr countfds >"$T/tg.out" 2>&1 ||
  fail "under truncguard, four rdwr of a locked ELF file: $(cat "$T/tg.out") $(tg_log)"
n=$(counted "$T/tg.out")
[ "$n" -le 5 ] || fail "under truncguard, four O_RDWR opens of a locked ELF library took $n fds (4 without truncguard): one kept per open"
ok "four O_RDWR opens of a locked ELF library: $n fds (4 without truncguard), the lock held"

# Those opens pass, and the look read the file through the program's fd
# without O_NOATIME: the file's atime, older than its mtime, moved.
LOCK_HOLDER_CONTENT=$V1 "$TG_LOCK_HOLDER" "$T/lib.so" oldatime rdwr >"$T/plain.out" 2>&1 ||
  fail "control: without truncguard, oldatime rdwr: $(cat "$T/plain.out")"
[ "$(stat -c %X "$T/lib.so")" = 978307200 ] || fail "control: the atime moved without truncguard: $(stat "$T/lib.so")"
LOCK_HOLDER_CONTENT=$V1 "$TG_CMD" --scope=self "$TG_LOCK_HOLDER" "$T/lib.so" oldatime rdwr >"$T/tg.out" 2>&1 ||
  fail "under truncguard, oldatime rdwr: $(cat "$T/tg.out")"
[ "$(stat -c %X "$T/lib.so")" = 978307200 ] ||
  fail "under truncguard, an O_RDWR open of a locked ELF library moved its atime: $(stat -c %x "$T/lib.so")"
ok "an O_RDWR open of a locked ELF library that passes leaves its atime"

# The same open replaced (the file mapped executable by the program itself,
# scope self): its fd, on the locked file, was kept through the look, and the
# look read the file through an fd of its own, kept too at the end (it could
# not be closed either): two fds of truncguard's where one did. Now the look
# reads the file through the program's fd, which alone is kept.
LOCK_HOLDER_CONTENT=$V1 "$TG_LOCK_HOLDER" "$T/lib.so" countfds rdwrx countfds >"$T/plain.out" 2>&1 ||
  fail "control: without truncguard, rdwrx of a locked ELF file: $(cat "$T/plain.out")"
[ "$(counted "$T/plain.out")" = 1 ] || fail "control: rdwrx opened $(counted "$T/plain.out") fds: $(cat "$T/plain.out")"
# (The name then holds the new file, which the last check, by name, finds
# unlocked: exit 1. The log on stderr: a log file's fd would be counted.)
LOCK_HOLDER_CONTENT=$V1 env -u TRUNCGUARD_LOG "$TG_CMD" --scope=self "$TG_LOCK_HOLDER" "$T/lib.so" countfds rdwrx countfds >"$T/tg.out" 2>&1
grep -q '^rdwrx: held$' "$T/tg.out" || fail "under truncguard, rdwrx of a locked ELF file: $(cat "$T/tg.out")"
grep -q "replaced file=$T/lib.so" "$T/tg.out" || fail "under truncguard, rdwrx of a locked ELF file was not replaced: $(cat "$T/tg.out")"
n=$(counted "$T/tg.out")
[ "$n" -le 2 ] || fail "under truncguard, a replaced O_RDWR open of a locked ELF library took $n fds (1 without truncguard): two kept"
ok "a replaced O_RDWR open of a locked ELF library: $n fds (1 without truncguard), the lock held"

# Where such an open passes (dry-run here), the fd the program gets is the
# one the look read the file through: the lease the look tries on the file
# set its F_SETSIG (SIGURG), which stayed (F_GETSIG 23, where it is 0).
grep -q '^rdwrx: F_GETSIG 0$' "$T/plain.out" || fail "control: rdwrx's F_GETSIG: $(cat "$T/plain.out")"
LOCK_HOLDER_CONTENT=$V1 "$TG_CMD" --mode=dry-run "$TG_LOCK_HOLDER" "$T/lib.so" rdwrx >"$T/tg.out" 2>&1 ||
  fail "under truncguard (dry-run), rdwrx of a locked ELF file: $(cat "$T/tg.out")"
grep -q '^rdwrx: F_GETSIG 0$' "$T/tg.out" ||
  fail "under truncguard (dry-run), the fd of an O_RDWR open of a locked ELF library lost its signal: $(cat "$T/tg.out")"
ok "an O_RDWR open of a locked ELF library that passes: the program's fd as opened (F_GETSIG 0)"

# A handler that siglongjmps out of such an open while the look by name has
# not yet begun its work (an alarm() timing the open out; here a seccomp
# filter traps the look's stat of the path, deterministically) left the
# thread's note of the program's fd behind (t_programs_fd). The program then
# closes that fd, which it never got, a text file takes the number, and the
# program truncates the library it maps: the look read the text file through
# the stale note as the library ("not code") and let the truncation through
# (A's file: 0 bytes). The fd now goes with the look's own WriteIntent, and
# is read through only while it is the file at the name.
if [ "$(uname -m)" = x86_64 ]; then
  LOCK_HOLDER_CONTENT=$V1 "$TG_LOCK_HOLDER" "$T/lib.so" rdwrjump >"$T/plain.out" 2>&1 ||
    fail "control: without truncguard, rdwrjump: $(cat "$T/plain.out")"
  grep -q '^rdwrjump: not jumped$' "$T/plain.out" && grep -q "^rdwrjump: A's file 0 bytes$" "$T/plain.out" ||
    fail "control: without truncguard, rdwrjump did not truncate the library: $(cat "$T/plain.out")"
  log_reset
  LOCK_HOLDER_CONTENT=$V1 "$TG_CMD" --scope=self "$TG_LOCK_HOLDER" "$T/lib.so" rdwrjump >"$T/tg.out" 2>&1 ||
    fail "under truncguard, rdwrjump: $(cat "$T/tg.out") $(tg_log)"
  grep -q '^rdwrjump: jumped$' "$T/tg.out" || fail "under truncguard, rdwrjump's open was not jumped out of: $(cat "$T/tg.out")"
  size=$(stat -c %s "$V1")
  grep -q "^rdwrjump: A's file $size bytes$" "$T/tg.out" ||
    fail "after a jump out of an O_RDWR open's look, the library the program maps was truncated in place: $(cat "$T/tg.out") $(tg_log)"
  expect_log "replaced file=$T/lib.so ["
  ok "a jump out of an O_RDWR open's look leaves the later writes of the thread protected"

  # A handler that opens another locked ELF file O_RDWR in the middle of
  # that look (the filter traps its stat; the handler makes it) had its own
  # look clear the thread's note of the program's fd: the look then opened
  # the file itself and kept that fd too (4 fds where 3: the open's answer,
  # the program's fd kept, the handler's fd). Without truncguard no stat is
  # made: the one open's fd.
  LOCK_HOLDER_CONTENT=$V1 "$TG_LOCK_HOLDER" "$T/lib.so" rdwrnest >"$T/plain.out" 2>&1 ||
    fail "control: without truncguard, rdwrnest: $(cat "$T/plain.out")"
  grep -q '^rdwrnest: 1 fds more$' "$T/plain.out" || fail "control: rdwrnest: $(cat "$T/plain.out")"
  LOCK_HOLDER_CONTENT=$V1 env -u TRUNCGUARD_LOG "$TG_CMD" --scope=self "$TG_LOCK_HOLDER" "$T/lib.so" rdwrnest >"$T/tg.out" 2>&1 ||
    fail "under truncguard, rdwrnest: $(cat "$T/tg.out")"
  grep -q '^rdwrnest: the handler opened$' "$T/tg.out" && grep -q "replaced file=$T/lib.so " "$T/tg.out" ||
    fail "under truncguard, rdwrnest: no handler ran in the look, or no replacement: $(cat "$T/tg.out")"
  n=$(sed -n 's/^rdwrnest: \([0-9]*\) fds more$/\1/p' "$T/tg.out")
  [ "${n:-9}" -le 3 ] ||
    fail "a handler's O_RDWR open of a locked ELF file inside the look at another: $n fds more where 3 (the look kept an fd of its own)"
  ok "a handler's O_RDWR open inside the look at another: $n fds (the look still read through the program's fd)"
fi

for close in closefrom closerange closeloop; do
  "$TG_LOCK_HOLDER" "$T/data" ftruncate "$close" >"$T/plain.out" 2>&1 ||
    fail "control: without truncguard, ftruncate then $close: $(cat "$T/plain.out")"
  "$TG_CMD" "$TG_LOCK_HOLDER" "$T/data" ftruncate "$close" >"$T/tg.out" 2>&1 ||
    fail "under truncguard, ftruncate then $close released the lock: $(cat "$T/tg.out") $(tg_log)"
  # The kept fd's number is not the program's: its close fails (EBADF), as without truncguard.
  [ "$(grep '^closeloop: [0-9]* closed' "$T/tg.out")" = "$(grep '^closeloop: [0-9]* closed' "$T/plain.out")" ] ||
    fail "ftruncate, then $close: $(grep '^closeloop: [0-9]* closed' "$T/tg.out") under truncguard, $(grep '^closeloop: [0-9]* closed' "$T/plain.out") without"
  ok "ftruncate, then $close above the lock's fd: the lock held, with and without truncguard"
done
"$TG_LOCK_HOLDER" "$T/data" ftruncate dup2over >"$T/plain.out" 2>&1
[ $? -eq 1 ] && grep -q '^dup2over: released$' "$T/plain.out" || fail "control: dup2 over the next number: $(cat "$T/plain.out")"
"$TG_CMD" "$TG_LOCK_HOLDER" "$T/data" ftruncate dup2over >"$T/tg.out" 2>&1
[ $? -eq 1 ] && grep -q '^dup2over: released$' "$T/tg.out" ||
  fail "under truncguard, dup2 over the kept fd's number, then its close: $(cat "$T/tg.out") $(tg_log)"
ok "dup2 over the kept fd's number, then close: as without truncguard (the close succeeds, the lock released)"
"$TG_LOCK_HOLDER" "$T/data" ftruncate dup2fail >"$T/plain.out" 2>&1 ||
  fail "control: without truncguard, a failed dup2 onto the next number, then its close: $(cat "$T/plain.out")"
"$TG_CMD" "$TG_LOCK_HOLDER" "$T/data" ftruncate dup2fail >"$T/tg.out" 2>&1 ||
  fail "under truncguard, a failed dup2 onto the kept fd's number, then its close: $(cat "$T/tg.out") $(tg_log)"
ok "a dup2 onto the kept fd's number that fails: the number stays truncguard's (its close EBADF), the lock held"
"$TG_LOCK_HOLDER" "$T/data" ftruncate exec countfds closeA countfds >"$T/plain.out" 2>&1
[ $? -eq 1 ] && grep -q '^exec: held$' "$T/plain.out" && grep -q '^closeA: released$' "$T/plain.out" ||
  fail "control: without truncguard, ftruncate, exec, close A: $(cat "$T/plain.out")"
"$TG_CMD" "$TG_LOCK_HOLDER" "$T/data" ftruncate exec countfds closeA countfds >"$T/tg.out" 2>&1
[ $? -eq 1 ] && grep -q '^exec: held$' "$T/tg.out" && grep -q '^closeA: released$' "$T/tg.out" ||
  fail "under truncguard, ftruncate then an exec: $(cat "$T/tg.out") $(tg_log)"
[ "$(grep countfds: "$T/tg.out" | tail -1)" = "$(grep countfds: "$T/plain.out" | tail -1)" ] ||
  fail "after the exec and the close of A, fds left open: $(grep countfds: "$T/tg.out") (without truncguard: $(grep countfds: "$T/plain.out"))"
ok "ftruncate, then an exec: the lock held in the new image, the kept fd closed with A's close there, as without truncguard"

# A forked child closes the kept fds it inherits (docs/guarantees.md, "POSIX
# record locks": POSIX locks are not inherited): it has the fds it would have
# without truncguard, while the parent keeps its own and its lock.
"$TG_LOCK_HOLDER" "$T/data" ftruncate fork >"$T/plain.out" 2>&1 ||
  fail "control: without truncguard, ftruncate then fork: $(cat "$T/plain.out")"
"$TG_CMD" "$TG_LOCK_HOLDER" "$T/data" ftruncate countfds fork >"$T/tg.out" 2>&1 ||
  fail "under truncguard, ftruncate then fork: $(cat "$T/tg.out") $(tg_log)"
tg_fds=$(sed -n 's/^countfds: \([0-9]*\) fds$/\1/p' "$T/tg.out")
plain_fds=$("$TG_LOCK_HOLDER" "$T/data" countfds | sed -n 's/^countfds: \([0-9]*\) fds$/\1/p')
[ "${tg_fds:-0}" -gt "${plain_fds:-0}" ] ||
  fail "under truncguard, no fd kept after the ftruncate of a locked file, so the fork proves nothing: $(cat "$T/tg.out")"
child=$(grep '^fork: the child has' "$T/tg.out")
[ -n "$child" ] && [ "$child" = "$(grep '^fork: the child has' "$T/plain.out")" ] ||
  fail "a forked child of a program with a kept fd: '$child' under truncguard, '$(grep '^fork: the child has' "$T/plain.out")' without"
grep -q '^fork: held$' "$T/tg.out" || fail "under truncguard, the fork released the parent's lock: $(cat "$T/tg.out")"
ok "ftruncate, then fork: the child closed the kept fd it inherited ($child, as without truncguard), the parent's lock held"

# A replaced O_RDWR open (no O_CLOEXEC) of a library a victim runs, which the
# program holds a POSIX lock on: the program's fd from the real open, on the
# old file, is kept while the lock is held, close-on-exec (the program's
# own fd, as it asked, is on the new file). Once the lock is let go, an exec
# leaves no fd on the old file: one fd on the library in the new program,
# as without truncguard.
cat >"$T/fdexec.py" <<'PY'
import ctypes, fcntl, os, sys
lib = sys.argv[1]
a = os.open(lib, os.O_RDONLY | os.O_CLOEXEC)
fcntl.lockf(a, fcntl.LOCK_SH)
# libc's open: python's adds O_CLOEXEC. This fd goes on into the exec.
if ctypes.CDLL(None, use_errno=True).open(lib.encode(), os.O_RDWR) < 0:
    sys.exit("open: " + os.strerror(ctypes.get_errno()))
fcntl.lockf(a, fcntl.LOCK_UN)
count = """import os, sys
def on_lib(n):
    try:
        return os.readlink("/proc/self/fd/%d" % n).startswith(sys.argv[1])
    except OSError:
        return False
print(sum(on_lib(n) for n in range(1024)))"""
os.execv(sys.executable, [sys.executable, "-c", count, lib])
PY
for how in plain guarded; do
  fresh_copy "$V1" "$T/lib.so"
  start_victim "$T/lib.so"
  log_reset
  if [ $how = plain ]; then python3 "$T/fdexec.py" "$T/lib.so" >"$T/fdexec.$how" 2>&1
  else "$TG_CMD" python3 "$T/fdexec.py" "$T/lib.so" >"$T/fdexec.$how" 2>&1; fi
  stop_victim
  [ "$(cat "$T/fdexec.$how")" = 1 ] || fail "$how: an O_RDWR open of a locked library, unlocked, then an exec: fds on it: $(cat "$T/fdexec.$how")"
done
expect_log "replaced file=$T/lib.so [ino "
ok "a replaced O_RDWR open of a locked library, the lock let go, then an exec: one fd on the library, as without truncguard"

# The lock still held at the exec: the kept fd is handed over through
# TRUNCGUARD_KEPT_FDS, which the library in the new program removes from its
# environment at start (truncguard(7)): in the block the kernel gave it, not
# in its environ, nor in what its own children get.
fresh_copy "$V1" "$T/lib.so"
start_victim "$T/lib.so"
"$TG_CMD" python3 -c '
import ctypes, fcntl, os, sys
lib = sys.argv[1]
a = os.open(lib, os.O_RDONLY)
fcntl.lockf(a, fcntl.LOCK_SH)
if ctypes.CDLL(None, use_errno=True).open(lib.encode(), os.O_RDWR) < 0:
    sys.exit("open: " + os.strerror(ctypes.get_errno()))
os.execv(sys.executable, [sys.executable, "-c", """import os
print("given", b"TRUNCGUARD_KEPT_FDS=" in open("/proc/self/environ", "rb").read())
print("environ", "TRUNCGUARD_KEPT_FDS" in os.environ)
os.system("env | grep -c ^TRUNCGUARD_KEPT_FDS= >/dev/null && echo child yes || echo child no")"""])' "$T/lib.so" >"$T/kept.out" 2>&1
stop_victim
[ "$(tr '\n' ' ' <"$T/kept.out")" = "given True environ False child no " ] ||
  fail "a lock held at the exec: expected TRUNCGUARD_KEPT_FDS given to the new program and removed from its environment: $(cat "$T/kept.out")"
ok "a lock held at the exec: the kept fd handed over in TRUNCGUARD_KEPT_FDS, removed from the new program's environment at start"

# ... to a new image that can't load truncguard (static): it keeps the kept
# fd as one it does not know of, and the lock (docs/guarantees.md, "POSIX
# record locks"). A python writer locks a 200-byte file through an
# inheritable fd, shrinks it (the look's fd kept), and execs a static program
# that counts its fds on the file and asks another process to lock it.
cat >"$T/lsfd.c" <<'EOF'
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char** argv) {
  DIR* d = opendir("/proc/self/fd");
  struct dirent* e;
  int n = 0;
  char p[300], t[PATH_MAX];
  while (argc == 2 && d && (e = readdir(d))) {
    snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
    ssize_t l = readlink(p, t, sizeof t - 1);
    if (l > 0 && (t[l] = 0, strcmp(t, argv[1]) == 0)) n++;
  }
  pid_t c = fork();
  if (c == 0) {
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int fd = open(argv[1], O_RDWR);
    _exit(fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0 ? 0 : 1);
  }
  int st = 0;
  waitpid(c, &st, 0);
  printf("%d fds, %s\n", n, WEXITSTATUS(st) ? "held" : "released");
  return 0;
}
EOF
if gcc -static -o "$T/lsfd" "$T/lsfd.c" 2>/dev/null; then
  static_exec() {
    head -c 200 /dev/zero | tr '\0' x >"$T/sdata"
    "$@" python3 -c '
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.set_inheritable(fd, True)
fcntl.lockf(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 100)
os.execv(sys.argv[2], [sys.argv[2], sys.argv[1]])' "$T/sdata" "$T/lsfd"
  }
  plain=$(static_exec)
  tg=$(static_exec "$TG_CMD")
  [ "$plain" = "1 fds, held" ] || fail "control: a static program exec'ed with a lock held: $plain"
  [ "$tg" = "2 fds, held" ] ||
    fail "under truncguard, a static program exec'ed with a lock held and a kept fd: '$tg' (without truncguard: '$plain')"
  ok "a lock held at an exec of a static program: the kept fd stays open there, unknown to it, and the lock held ($tg; without truncguard: $plain)"
else
  note "a static program could not be built (no static libc): the exec of a static image with a kept fd was not checked"
fi

# OFD locks (F_OFD_SETLK) and flock() belong to the program's open file
# description, not to the process: no other fd's close releases them, and the
# look's close can't. Each step keeps them, close2 too; closing fd A itself
# releases them (the control: the child does see a released lock).
for kind in ofd flock; do
  for how in plain guarded; do
    if [ $how = plain ]; then
      "$TG_LOCK_HOLDER" --$kind "$T/data" $STEPS close2 closeA >"$T/$kind.$how.out" 2>&1
    else
      log_reset
      "$TG_CMD" --debug=decisions "$TG_LOCK_HOLDER" --$kind "$T/data" $STEPS close2 closeA >"$T/$kind.$how.out" 2>&1
    fi
    st=$?
    [ "$st" -eq 1 ] && [ "$(grep -c ': held$' "$T/$kind.$how.out")" -eq 6 ] &&
      grep -q '^closeA: released$' "$T/$kind.$how.out" ||
      fail "$kind lock, $how: lock_holder exited $st: $(cat "$T/$kind.$how.out")"
  done
  expect_log "decision file=$T/data: pass (not an ELF shared object or executable) [open]"
  ok "$kind lock: held through every write with and without truncguard; closing its own fd releases it (the control)"
done

if python3 -c 'import sqlite3' 2>/dev/null; then
  cat >"$T/sq.py" <<'PY'
import sqlite3, subprocess, sys
db = sys.argv[1]
c1 = sqlite3.connect(db, isolation_level=None, timeout=0)
c1.execute("create table t(x)")
c1.execute("begin exclusive")
c1.execute("insert into t values (1)")
c2 = sqlite3.connect(db, timeout=0)  # a second connection opens the file again
try:
    c2.execute("select count(*) from t").fetchall()
    print("second connection read the table")
except sqlite3.OperationalError as e:
    print("second connection:", e)
def other_process_takes_the_lock():
    probe = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)\nc.execute('begin exclusive')"
    return subprocess.run([sys.executable, "-c", probe, db], capture_output=True).returncode == 0
took = other_process_takes_the_lock()
print("another process:", "took the lock" if took else "was locked out")
c1.execute("commit")  # the control: now it must get the lock
if not other_process_takes_the_lock():
    print("control: after the commit, another process still could not take the lock")
    sys.exit(2)
sys.exit(1 if took else 0)
PY
  rm -f "$T/t.db"*
  python3 "$T/sq.py" "$T/t.db" >"$T/sq.plain" 2>&1 || fail "control: without truncguard: $(cat "$T/sq.plain")"
  rm -f "$T/t.db"*
  "$TG_CMD" python3 "$T/sq.py" "$T/t.db" >"$T/sq.tg" 2>&1 ||
    fail "SQLite under truncguard: another process took the lock of an exclusive transaction: $(cat "$T/sq.tg")"
  ok "SQLite under truncguard: a second connection leaves the first one's exclusive lock in place ($(tail -n1 "$T/sq.tg"))"
else
  note "python3 has no sqlite3 module here: the SQLite case was not run"
fi
