#!/bin/bash
# A long-running daemon with the shim preloaded (a systemd unit's
# Environment=LD_PRELOAD=...): what it does for weeks must not wear truncguard
# out, nor truncguard the daemon.
#  - Bug: a daemon that rewrites a file it keeps locked (lockf, fcntl F_SETLK:
#    a pidfile, a state file rewritten with ftruncate + write) gained one open
#    fd per rewrite: the guard's own fd on the file can't be closed while the
#    lock is held (it would release the lock), and each rewrite opened and
#    parked another one, until EMFILE. Measured: 300 rewrites, 299 more fds.
#    Now the parked fd is read again: the daemon ends with at most one more
#    fd than without truncguard, and its lock still held (a child can't take
#    it; control: after the daemon unlocks, the child can).
#  - Bug: the same daemon starting a child after each rewrite (vfork, the
#    child closes its copy of the locked file's fd) gained one fd per child:
#    the vfork child's close freed the parent's slot (shared memory) and
#    closed only its own copy of the kept fd (lock_holder's vfork step).
#  - Bug: TRUNCGUARD_LOG's FILE.PID rotated by logrotate's `create` (renamed
#    away, a new FILE.PID made; later compressed and deleted) kept receiving
#    the daemon's lines in the old file for the rest of its life: lost with it.
#    Now each line goes to the file at the name: a protected write after the
#    rotation is logged in the new FILE.PID, after a deletion in a FILE.PID
#    made again, and where the name can't be opened (a FIFO there) in the
#    old file, as before (never stderr, never lost). Control: the same writes
#    without truncguard kill the victim.
. "$(dirname "$0")/lib.sh"
need_shim
need_victims
command -v python3 >/dev/null || skip "python3 is not installed"

# --- 1. a file kept locked, rewritten 300 times ---------------------------
cat >"$T/locked_rewrites.py" <<'PY'
import fcntl, os, subprocess, sys
path, n = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_EX)
def fds(): return len(os.listdir('/proc/self/fd'))
def child_gets_lock():
    probe = "import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\ntry:\n  fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept OSError:\n  sys.exit(1)"
    return subprocess.run([sys.executable, "-c", probe, path], env={}).returncode == 0
os.pwrite(fd, b'state\n' * 20, 0)
before = fds()
for i in range(n):
    os.ftruncate(fd, 0)
    os.pwrite(fd, b'state %d\n' % i * 20, 0)
after = fds()
held = not child_gets_lock()
fcntl.lockf(fd, fcntl.LOCK_UN)
released = child_gets_lock()
print(f"fds {before} -> {after}; lock held: {held}; after unlock a child takes it: {released}")
sys.exit(0 if held and released and after - before <= 1 else 1)
PY
python3 "$T/locked_rewrites.py" "$T/plain.state" 300 >"$T/plain.out" 2>&1 ||
  fail "control: without truncguard: $(cat "$T/plain.out")"
ok "control: without truncguard, $(cat "$T/plain.out")"
LD_PRELOAD=$TG_SHIM python3 "$T/locked_rewrites.py" "$T/tg.state" 300 >"$T/tg.out" 2>&1 ||
  fail "under truncguard, 300 rewrites of a file kept locked: $(cat "$T/tg.out") $(tg_log)"
ok "under truncguard, $(cat "$T/tg.out")"

[ -x "$TG_LOCK_HOLDER" ] || fail "no lock_holder at $TG_LOCK_HOLDER"
"$TG_LOCK_HOLDER" "$T/plain.vfork" vfork >"$T/plain.vfork.out" 2>&1 ||
  fail "control: without truncguard, lock_holder vfork: $(cat "$T/plain.vfork.out")"
LD_PRELOAD=$TG_SHIM "$TG_LOCK_HOLDER" "$T/tg.vfork" vfork >"$T/tg.vfork.out" 2>&1 ||
  fail "under truncguard, rewrites of a locked file with a vfork child after each: $(cat "$T/tg.vfork.out")"
grep -q '^vfork: held$' "$T/tg.vfork.out" || fail "under truncguard, the lock went: $(cat "$T/tg.vfork.out")"
ok "under truncguard, a vfork child after each rewrite: $(head -n1 "$T/tg.vfork.out"), lock held (without: $(head -n1 "$T/plain.vfork.out"))"

# --- 2. the log file rotated under a running writer -----------------------
# A daemon that copies a file over another on each request (shutil.copyfile:
# open "wb", O_TRUNC), answering "done".
cat >"$T/copier.py" <<'PY'
import shutil, sys
for line in sys.stdin:
    src, dst = line.split()
    shutil.copyfile(src, dst)
    print("done", flush=True)
PY
LIB=$T/lib/libfoo.so
mkdir -p "$T/lib"

# copy_once: a victim runs $LIB (v1); the copier writes v2 over it.
copy_once() {
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  echo "$V2 $LIB" >&"${COPIER[1]}"
  local answer
  read -r -t 10 answer <&"${COPIER[0]}" || fail "the copier did not answer"
  [ "$answer" = done ] || fail "the copier answered: $answer"
  stop_victim
}

coproc COPIER { exec python3 "$T/copier.py"; }
_tg_pids+=("$COPIER_PID")
copy_once
expect_killed "control: the copier without truncguard"
eval "exec ${COPIER[1]}>&-"
wait "$COPIER_PID"

coproc COPIER { LD_PRELOAD=$TG_SHIM exec python3 "$T/copier.py"; }
_tg_pids+=("$COPIER_PID")
PLOG=$TG_LOG.$COPIER_PID
lines_in() { grep -c "replaced file=$LIB " "$1" 2>/dev/null; }

copy_once
expect_survived "before any rotation"
[ "$(lines_in "$PLOG")" = 1 ] || fail "before any rotation: $PLOG has $(lines_in "$PLOG") replaced lines, not 1"

mv "$PLOG" "$PLOG.1" && : >"$PLOG"    # logrotate's `create`
copy_once
expect_survived "after a rotation with create"
[ "$(lines_in "$PLOG")" = 1 ] && [ "$(lines_in "$PLOG.1")" = 1 ] ||
  fail "after a rotation with create: the new $PLOG has $(lines_in "$PLOG") replaced lines (want 1), the rotated one $(lines_in "$PLOG.1") (want 1)"
ok "after a rotation with create, the line went to the new file"

mv "$PLOG" "$PLOG.2" && rm -f "$PLOG.2"   # rotated, compressed, deleted: no file at the name
copy_once
expect_survived "after the log file was rotated and deleted"
[ "$(lines_in "$PLOG")" = 1 ] ||
  fail "after the log file was rotated and deleted: $PLOG has $(lines_in "$PLOG") replaced lines (want 1: made again)"
ok "after the log file was rotated and deleted, it was made again with the line"

mv "$PLOG" "$PLOG.3" && mkfifo "$PLOG"    # the name can't be written
copy_once
expect_survived "with a FIFO at the log file's name"
[ "$(lines_in "$PLOG.3")" = 2 ] ||
  fail "with a FIFO at the log's name: the old file $PLOG.3 has $(lines_in "$PLOG.3") replaced lines (want 2: it keeps them)"
ok "where the new name can't be opened, the lines still go to the old file"
eval "exec ${COPIER[1]}>&-"
wait "$COPIER_PID"
