#!/bin/bash
# Bug: "cp new-daemon /usr/sbin/daemon" while the daemon runs fails with
# "Text file busy" (the kernel protects running executables).  Under
# truncguard the update goes through: the name gets a new inode, the
# running daemon keeps its old one, and the next start runs version 2.
. "$(dirname "$0")/lib.sh"
need_victims

must mkdir "$T/bin"
DAEMON=$T/bin/daemon
must cp "$TG_DAEMON_V1" "$DAEMON"
must cp "$TG_DAEMON_V2" "$T/daemon_v2"
start_daemon "$DAEMON"

# Control: the kernel refuses to write a running executable.
if cp "$T/daemon_v2" "$DAEMON" 2>"$T/cp.err"; then
  fail "control: plain cp over a running executable succeeded"
fi
grep -q "Text file busy" "$T/cp.err" ||
  fail "control: plain cp failed, but not with \"Text file busy\": $(cat "$T/cp.err")"
expect_same_content "$DAEMON" "$TG_DAEMON_V1" "the daemon after the refused cp"
ok "control: plain cp fails with \"Text file busy\" and changes nothing"

# The same daemon, still running: truncguard replaces its file.
need_shim
old=$(inode "$DAEMON")
log_reset
"$TG_CMD" cp "$T/daemon_v2" "$DAEMON" 2>"$T/cp.err" ||
  fail "truncguard cp over a running executable failed: $(cat "$T/cp.err")"
new=$(inode "$DAEMON")
[ "$new" != "$old" ] || fail "the name $DAEMON kept inode $old"
stop_victim
expect_survived "truncguard cp over the running daemon"
got=$("$DAEMON" --version) || fail "$DAEMON --version failed"
[ "$got" = "daemon version 2" ] || fail "$DAEMON --version says \"$got\", expected \"daemon version 2\""
ok "the next start runs version 2"
expect_log "replaced file=$DAEMON [ino $old -> $new] (mode replace); mapped executable by " "pid $VICTIM_PID ("
ok "the log names the daemon's pid"

# A write in place for reading and writing (a shell's `1<>`: O_RDWR, no
# O_TRUNC) is looked at after the program's own open, through its fd. The
# kernel refuses that open for a running executable (ETXTBSY): the guard must
# then take its usual way (a copy at the name, which the write goes to), not
# hand the refusal back.
start_daemon "$DAEMON"
if sh -c ": 1<>'$DAEMON'" 2>"$T/rdwr.err"; then
  fail "control: a plain \`1<>\` of a running executable succeeded"
fi
grep -q "Text file busy" "$T/rdwr.err" || fail "control: \`1<>\` failed, but not with ETXTBSY: $(cat "$T/rdwr.err")"
ok "control: a plain \`1<>\` of the running daemon fails with \"Text file busy\""
old=$(inode "$DAEMON")
log_reset
"$TG_CMD" sh -c ": 1<>'$DAEMON'" 2>"$T/rdwr.err" ||
  fail "truncguard: \`1<>\` of a running executable failed: $(cat "$T/rdwr.err") $(tg_log)"
new=$(inode "$DAEMON")
[ "$new" != "$old" ] || fail "\`1<>\`: the name $DAEMON kept inode $old"
expect_same_content "$DAEMON" "$TG_DAEMON_V2" "the daemon's file after \`1<>\`"
stop_victim
expect_survived "\`1<>\` of the running daemon"
ok "\`1<>\` of a running executable went to a copy at the name"

# The same open's errno: the kernel's ETXTBSY, met on the way, is not the
# caller's to see; an open that succeeds leaves errno as it was (it was left
# ETXTBSY, which a program that checks errno after a success takes for an
# error).
start_daemon "$DAEMON"
"$TG_CMD" python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
ctypes.set_errno(4242)
fd = libc.open(sys.argv[1].encode(), os.O_RDWR)
print("fd" if fd >= 0 else "failed", ctypes.get_errno())' "$DAEMON" >"$T/errno.out" 2>"$T/errno.err" ||
  fail "open(O_RDWR) of a running executable under truncguard: $(cat "$T/errno.err")"
stop_victim
expect_survived "open(O_RDWR) of the running daemon"
[ "$(cat "$T/errno.out")" = "fd 4242" ] ||
  fail "open(O_RDWR) of a running executable: expected an fd and errno untouched (4242), got: $(cat "$T/errno.out")"
ok "open(O_RDWR) of a running executable: an fd, errno untouched"
