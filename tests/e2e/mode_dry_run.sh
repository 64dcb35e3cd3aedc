#!/bin/bash
# TRUNCGUARD_MODE=dry-run only says what it would do.  It must change
# nothing: the write truncates the file in place and the victim dies, exactly
# as without truncguard, while the log names the file and the victim.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim

LIB=$T/libvictim.so
fresh_copy "$V1" "$LIB"
exec 3<"$LIB"           # to prove the same inode got the new content
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
TRUNCGUARD_MODE=dry-run "$TG_CMD" cp "$V2" "$LIB" || fail "cp under mode=dry-run failed"
stop_victim
expect_killed "cp under mode=dry-run"
expect_log "would replace file=$LIB [ino $old] (mode dry-run); mapped executable by " "pid $VICTIM_PID ("
expect_no_log "replaced file="
expect_same_content /proc/$$/fd/3 "$V2" "an fd opened before the write (same inode)"
exec 3<&-
ok "dry-run logged \"would replace\" and changed nothing"
