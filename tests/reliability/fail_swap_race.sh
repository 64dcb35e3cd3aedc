#!/bin/bash
# Failure path: the file is removed and swapped while it is being written.
# A writer overwrites lib.so again and again through the shim (scope elf:
# every write takes the protected path), while a swapper renames complete
# copies over the name, unlinks it, and links a complete copy back in, and a
# loader reads and dlopens the name in a loop.  Invariants: nobody crashes,
# every write either succeeds or finds the name missing (ENOENT), no temp file
# is left, the name ends up holding a complete file, and in mode atomic no
# reader ever sees a partial file (the swapper only ever shows complete ones).
# Each mode in FAILPATH_MODES (default "replace atomic").
. "$(dirname "$0")/rlib.sh"
need_victims
need_shim
: "${RACE_SECONDS:=2}"

D=$T/race
must mkdir "$D"
LIB=$D/lib.so

race() {
  local mode=$TRUNCGUARD_MODE stop=$T/stop.$TRUNCGUARD_MODE swapper loader
  rm -f "$stop" "$T/loader.out"
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  "$TG_RTOOL" swap-loop "$D" lib.so "$V1" "$V2" "$stop" >"$T/swapper.out" 2>&1 &
  swapper=$!
  "$TG_RTOOL" loader "$LIB" "$V1" "$V2" "$stop" "$T/loader.out" 2>"$T/loader.err" &
  loader=$!
  _tg_pids+=("$swapper" "$loader")
  log_reset
  # Batches of 50 writes for RACE_SECONDS; the first failed batch stops it.
  local until=$((SECONDS + RACE_SECONDS)) writes=0 missing=0 batch
  R_STATUS=0
  while [ "$SECONDS" -lt "$until" ] && [ "$R_STATUS" -eq 0 ]; do
    r_run writer "$TG_CMD" --scope=elf "$TG_RTOOL" write-loop "$LIB" "$V2" 50 0
    batch=$(tail -n1 "$T/writer.out")
    writes=$((writes + $(sed -n 's/.*writes=\([0-9]*\).*/\1/p' <<<"$batch")))
    missing=$((missing + $(sed -n 's/.*missing=\([0-9]*\).*/\1/p' <<<"$batch")))
  done
  : >"$stop"
  wait "$swapper"; local sst=$?
  wait "$loader"; local lst=$?
  stop_victim

  note "mode $mode: writer: $writes writes, $missing found the name missing; last batch: $(r_out writer | tail -n1)"
  note "mode $mode: swapper: $(tail -n1 "$T/swapper.out")"
  note "mode $mode: loader: $(paste -sd' ' "$T/loader.out" 2>/dev/null)"
  [ "$R_STATUS" -le 128 ] || fail "mode $mode: the writer was $(describe_status "$R_STATUS")"
  [ "$R_STATUS" -eq 0 ] || fail "mode $mode: writes failed: $(r_out writer)"
  ok "mode $mode: every write succeeded or found the name missing"
  [ "$sst" -eq 0 ] || fail "mode $mode: the swapper $(describe_status "$sst"): $(cat "$T/swapper.out")"
  [ "$lst" -eq 0 ] || fail "mode $mode: the loader $(describe_status "$lst"): $(cat "$T/loader.err")"
  expect_survived "mode $mode: the victim (its inode was swapped away early)"
  expect_no_temp "$D"
  if [ -e "$LIB" ]; then
    expect_complete "$LIB" "$V1" "$V2"
    ok "mode $mode: the name ends up holding a complete file"
  fi
  local partial crashes
  partial=$(sed -n 's/^partial=//p' "$T/loader.out")
  crashes=$(sed -n 's/^crashes=//p' "$T/loader.out")
  if [ "$mode" = atomic ]; then
    [ "$partial" = 0 ] && [ "$crashes" = 0 ] ||
      fail "mode atomic: a reader saw a partial file ($partial reads; $crashes loads crashed; first: $(sed -n 's/^first_partial=//p' "$T/loader.out"))"
    ok "mode atomic: no reader ever saw a partial file"
  else
    note "mode $mode: readers saw $partial partial files and $crashes loads crashed (expected: replace renames at open)"
  fi
  expect_log_well_formed
}
each_mode race
