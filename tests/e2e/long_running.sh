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
. "$(dirname "$0")/lib.sh"
need_shim
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
