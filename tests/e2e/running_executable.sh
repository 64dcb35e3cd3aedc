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
