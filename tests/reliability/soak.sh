#!/bin/bash
# Soak: a library is replaced SOAK_ROUNDS (500) times with "truncguard cp",
# alternating v1 and v2, while victims call into it non-stop (a new victim
# loads the current file every 100 rounds, so every victim's inode gets
# replaced under it) and SOAK_LOADERS (2) processes read it and dlopen it by
# name in a loop, counting ENOENT, failed loads, crashes and partial files.
#
# Per mode in SOAK_MODES (default "replace atomic"; a mode the shim does not
# know is skipped with the reason):
#   every mode: no victim dies, no cp fails, no loader gets ENOENT, no temp
#     file is left, the name ends with the last version written;
#   atomic: no loader ever sees a partial file (read or dlopen) either.
#   replace renames the new inode over the name when cp opens it, so a
#     loader may see a partial file: counted and reported, not failed.
# SOAK_SCOPE (default elf): every cp takes the protected path, so the soak
# measures the modes and not the timing of the scan.
# Victims live until released (lib.sh's default of 20 s is shorter than a
# soak on a loaded machine: the first victim then stopped on its own and
# counted as dead). Set before lib.sh, which keeps a value already there.
: "${TG_VICTIM_MS:=120000}"
. "$(dirname "$0")/rlib.sh"
need_victims
need_shim
: "${SOAK_MODES:=replace atomic}" "${SOAK_ROUNDS:=500}" "${SOAK_LOADERS:=2}" "${SOAK_SCOPE:=elf}"

D=$T/soak
must mkdir "$D"
LIB=$D/libfoo.so
ran=0

soak() {
  local mode=$1 stop=$T/stop.$1 i pids=() loaders=() st cp_failed=0 first_cp_error="" victims=() readies=() outs=()
  rm -f "$stop"
  fresh_copy "$V1" "$LIB"
  for ((i = 0; i < SOAK_LOADERS; i++)); do
    "$TG_RTOOL" loader "$LIB" "$V1" "$V2" "$stop" "$T/loader.$mode.$i" 2>"$T/loader.$mode.$i.err" &
    loaders+=($!)
    _tg_pids+=($!)
  done
  log_reset
  local start=$SECONDS last=$V1
  for ((i = 1; i <= SOAK_ROUNDS; i++)); do
    if (( (i - 1) % 100 == 0 )); then
      start_victim "$LIB"
      victims+=("$VICTIM_PID") readies+=("$VICTIM_READY") outs+=("$VICTIM_OUT")
    fi
    if (( i % 2 )); then last=$V2; else last=$V1; fi
    if ! TRUNCGUARD_MODE=$mode "$TG_CMD" --scope="$SOAK_SCOPE" cp "$last" "$LIB" 2>"$T/cp.err"; then
      cp_failed=$((cp_failed + 1))
      [ -n "$first_cp_error" ] || first_cp_error=$(head -n1 "$T/cp.err")
    fi
  done
  local took=$((SECONDS - start))
  : >"$stop"
  for i in "${!loaders[@]}"; do
    wait "${loaders[$i]}"
    st=$?
    [ "$st" -eq 0 ] || fail "mode $mode: loader $i $(describe_status "$st"): $(cat "$T/loader.$mode.$i.err")"
  done
  local dead=0
  for i in "${!victims[@]}"; do
    VICTIM_PID=${victims[$i]} VICTIM_READY=${readies[$i]} VICTIM_OUT=${outs[$i]}
    stop_victim
    if [ "$VICTIM_STATUS" -ne 0 ] || ! grep -q released "$VICTIM_OUT"; then
      dead=$((dead + 1))
      echo "mode $mode: victim $i $(describe_status "$VICTIM_STATUS"): $(tail -n1 "$VICTIM_OUT")" >&2
    fi
  done

  # Sum the loaders' counts.
  local k sum
  declare -A total=()
  for k in iterations loads enoent failed bad_version crashes reads read_enoent partial; do
    sum=0
    for ((i = 0; i < SOAK_LOADERS; i++)); do
      sum=$((sum + $(sed -n "s/^$k=//p" "$T/loader.$mode.$i")))
    done
    total[$k]=$sum
  done
  local first_failure first_partial replaced
  first_failure=$(sed -n 's/^first_failure=//p' "$T"/loader."$mode".[0-9]* | grep -v '^$' | head -n1)
  first_partial=$(sed -n 's/^first_partial=//p' "$T"/loader."$mode".[0-9]* | grep -v '^$' | head -n1)
  replaced=$(log_lines "replaced file=$LIB" | wc -l)

  note "mode $mode: $SOAK_ROUNDS replacements in ${took}s, $replaced logged as replaced; ${#victims[@]} victims, $dead died; cp failures: $cp_failed"
  note "mode $mode: loaders: ${total[iterations]} rounds; dlopen: ${total[loads]} ok, ${total[enoent]} ENOENT, ${total[failed]} failed, ${total[crashes]} crashed, ${total[bad_version]} bad version; reads: ${total[reads]}, ${total[read_enoent]} ENOENT, ${total[partial]} partial"
  [ -z "$first_failure" ] || note "mode $mode: first failed load: $first_failure"
  [ -z "$first_partial" ] || note "mode $mode: first partial read: $first_partial"

  [ "$dead" -eq 0 ] || fail "mode $mode: $dead victim(s) died"
  ok "mode $mode: all ${#victims[@]} victims survived"
  [ "$cp_failed" -eq 0 ] || fail "mode $mode: $cp_failed cp runs failed; first: $first_cp_error"
  [ "$replaced" -eq "$SOAK_ROUNDS" ] || fail "mode $mode: $replaced of $SOAK_ROUNDS writes were logged as replaced"
  [ "${total[enoent]}" -eq 0 ] && [ "${total[read_enoent]}" -eq 0 ] ||
    fail "mode $mode: the loaders found the name missing (${total[enoent]} dlopen, ${total[read_enoent]} reads)"
  ok "mode $mode: no loader ever found the name missing"
  [ "${total[bad_version]}" -eq 0 ] || fail "mode $mode: ${total[bad_version]} loads returned a bad version"
  if [ "$mode" = atomic ]; then
    [ "${total[partial]}" -eq 0 ] && [ "${total[failed]}" -eq 0 ] && [ "${total[crashes]}" -eq 0 ] ||
      fail "mode atomic: a loader saw a partial file: ${total[partial]} partial reads, ${total[failed]} failed and ${total[crashes]} crashed loads"
    ok "mode atomic: no loader ever saw a partial file"
  fi
  expect_same_content "$LIB" "$last" "the library after the soak"
  expect_no_temp "$D"
  expect_log_well_formed
  ran=$((ran + 1))
}

skipped=()
for mode in $SOAK_MODES; do
  if ! mode_supported "$mode"; then
    note "mode $mode: skipped: the shim does not know TRUNCGUARD_MODE=$mode yet (it warns \"unknown TRUNCGUARD_MODE\")"
    skipped+=("$mode")
    continue
  fi
  soak "$mode"
done
[ "$ran" -gt 0 ] || skip "no mode to run: ${skipped[*]} unknown to the shim"
