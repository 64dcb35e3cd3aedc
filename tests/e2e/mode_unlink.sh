#!/bin/bash
# TRUNCGUARD_MODE=unlink gives the name a new inode by unlinking the old one
# first (as install(1) does) instead of rename: the victim must survive just
# the same, and the log must say which mode acted.
. "$(dirname "$0")/lib.sh"
need_victims

LIB=$T/libvictim.so
copy_v2() { "$@" cp "$V2" "$LIB"; }

# Control: plain cp kills the victim.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
copy_v2 || fail "control: cp failed"
stop_victim
expect_killed "control: plain cp"

need_shim
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
copy_v2 env TRUNCGUARD_MODE=unlink "$TG_CMD" || fail "cp under mode=unlink failed"
stop_victim
expect_survived "cp under mode=unlink"
expect_version "$LIB" 2
new=$(inode "$LIB")
[ "$new" != "$old" ] || fail "mode=unlink: the name kept inode $old"
expect_log "replaced file=$LIB [ino $old -> $new] (mode unlink); mapped executable by " "pid $VICTIM_PID ("
left=$(ls -A "$T" | grep '\.tg-' || true)
[ -z "$left" ] || fail "mode=unlink: the old file moved aside was left behind: $left"
ok "the log says (mode unlink); the old file moved aside is gone"
