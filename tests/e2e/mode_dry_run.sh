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

# In JSON, would_replace's kept_bytes is what the new file would start with
# (docs/ci.md's table: the old content a write in place or a truncate keeps),
# as the replaced line of the same write gives it: a write in place, the
# whole file; a truncate to 100 bytes, 100; an O_TRUNC open, 0. Bug: always 0
# in dry-run.
if command -v python3 >/dev/null; then
  size=$(stat -c %s "$V1")
  for how in "dd:$size" "trunc:100" "cp:0"; do
    want=${how#*:}
    for mode in replace dry-run; do
      fresh_copy "$V1" "$LIB"
      start_victim "$LIB"
      log_reset
      case ${how%%:*} in
        dd) "$TG_CMD" --json -m $mode dd if="$V2" of="$LIB" conv=notrunc status=none ;;
        trunc) "$TG_CMD" --json -m $mode python3 -c 'import os, sys; os.truncate(sys.argv[1], 100)' "$LIB" ;;
        cp) "$TG_CMD" --json -m $mode cp "$V2" "$LIB" ;;
      esac || fail "${how%%:*} under --json -m $mode failed"
      stop_victim
      got=$(tg_log | python3 -c 'import json, sys
print(next(e["kept_bytes"] for e in map(json.loads, sys.stdin) if e["event"] in ("replaced", "would_replace")))') ||
        fail "${how%%:*}, mode $mode: no replaced or would_replace line: $(tg_log)"
      [ "$got" = "$want" ] || fail "${how%%:*}, mode $mode: kept_bytes $got, expected $want: $(tg_log)"
    done
  done
  ok "kept_bytes in JSON: a write in place $size, a truncate to 100 bytes 100, an O_TRUNC open 0; the same in dry-run"
fi
