#!/bin/bash
# Many threads of one program overwrite four loaded libraries (and two text
# files) at the same time, again and again. Every victim survives, every write
# succeeds, every file ends with the new content, no temp file is left.
. "$(dirname "$0")/lib.sh"
need_victims
[ -x "$TG_THREADS" ] || fail "no thread writer at $TG_THREADS"

libs=("$T/lib0.so" "$T/lib1.so" "$T/lib2.so" "$T/lib3.so")
texts=("$T/a.txt" "$T/b.txt")

run_round() {  # run_round [WRAPPER...]: victims on each lib, 8 threads x 5 rounds
  local i pids=() readies=() outs=() st
  for i in "${!libs[@]}"; do
    fresh_copy "$V1" "${libs[$i]}"
    start_victim "${libs[$i]}"
    pids+=("$VICTIM_PID") readies+=("$VICTIM_READY") outs+=("$VICTIM_OUT")
  done
  for f in "${texts[@]}"; do echo "old text" >"$f"; done
  "$@" "$TG_THREADS" 8 5 "$V2" "${libs[@]}" "${texts[@]}" 2>"$T/threads.err"
  WRITER_STATUS=$?
  VICTIM_STATUSES=()
  for i in "${!pids[@]}"; do
    VICTIM_PID=${pids[$i]} VICTIM_READY=${readies[$i]} VICTIM_OUT=${outs[$i]}
    stop_victim
    VICTIM_STATUSES+=("$VICTIM_STATUS:${outs[$i]}")
  done
}

run_round
for s in "${VICTIM_STATUSES[@]}"; do
  VICTIM_STATUS=${s%%:*} VICTIM_KIND=victim
  expect_killed "control: 8 threads writing without truncguard"
done

need_shim
log_reset
run_round "$TG_CMD"
[ "$WRITER_STATUS" -eq 0 ] || fail "the thread writer failed under truncguard: $(cat "$T/threads.err")"
for s in "${VICTIM_STATUSES[@]}"; do
  VICTIM_STATUS=${s%%:*} VICTIM_OUT=${s#*:} VICTIM_KIND=victim
  expect_survived "8 threads writing under truncguard"
done
for f in "${libs[@]}" "${texts[@]}"; do expect_same_content "$f" "$V2"; done
ok "every file has the new content"
left=$(ls -A "$T" | grep '\.tg-' || true)
[ -z "$left" ] || fail "temp files left behind: $left"
ok "no temp file left behind"
for l in "${libs[@]}"; do expect_log "replaced file=$l ["; done
expect_log_well_formed
ok "each library was replaced at least once, and every log line is well formed"
