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

# In the JSON log (truncguard(7)): the event would_replace, mode dry-run,
# the old inode and no new one, the victim named.
if command -v python3 >/dev/null; then
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  TRUNCGUARD_MODE=dry-run "$TG_CMD" --json cp "$V2" "$LIB" || fail "cp under mode=dry-run --json failed"
  stop_victim
  expect_killed "cp under mode=dry-run --json"
  tg_log | python3 -c '
import json, sys
lib, old, victim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
events = [json.loads(l) for l in sys.stdin]
assert not [e for e in events if e["event"] == "replaced"], events
[w] = [e for e in events if e["event"] == "would_replace"]
assert w["file"] == lib and w["mode"] == "dry-run" and w["old_ino"] == old and "new_ino" not in w, w
assert w["entry"] in ("open", "openat", "open64", "openat64") and {"pid": victim, "comm": "victim"} in w["mapped_by"], w' \
    "$LIB" "$old" "$VICTIM_PID" || fail "no would_replace JSON event as documented: $(tg_log)"
  ok "dry-run in JSON: a would_replace event, mode dry-run, the old inode, no new one, the victim named"
fi
