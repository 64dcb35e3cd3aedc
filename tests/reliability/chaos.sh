#!/bin/bash
# Chaos: one real process, the shim preloaded, doing many things at once for
# CHAOS_SECONDS (2) per setting: writers rewriting libraries it maps (open
# O_TRUNC, in place, fopen, truncate), loads by another name and dlclose,
# fork children writing, vfork + exec, posix_spawn with file actions, dup2
# onto a watched fd, close_range, SIGUSR1 handlers that siglongjmp out of a
# write and SIGUSR2 handlers that rewrite a library (tests/reliability/chaos.c
# says what and how it checks). Two victim processes map two of the files.
# Per setting (the defaults; TRUNCGUARD_MODE=atomic with scope elf, every
# ELF write examined): chaos checks its files hold the last version written,
# whole, its fds are those it had, no child failed or hung; here: no victim
# died, no temp file is left, the log is well formed and says nothing failed.
# The seed is random and printed: CHAOS_SEED=N runs the same operations again
# (the threads' interleaving is the machine's).
. "$(dirname "$0")/rlib.sh"
need_victims
need_shim
: "${TG_CHAOS:=$TG_BUILD/tests/reliability/chaos}"
[ -x "$TG_CHAOS" ] || fail "helper program not built: $TG_CHAOS"
: "${CHAOS_SECONDS:=2}" "${CHAOS_SEED:=$((RANDOM * 32768 + RANDOM))}"
note "seed $CHAOS_SEED (CHAOS_SEED=$CHAOS_SEED reruns it)"
# The sanitizer build's shim in chaos (built without ASan: its siglongjmp is
# glibc's, which leaves ASan's redzones of the frames it skips poisoned): no
# jump out of the shim's own look at a file (ftruncate), only out of writes.
no_jump=()
if shim_has_asan; then
  no_jump=(CHAOS_NO_JUMP_IN_SHIM=1)
  note "sanitizer build: no jump out of the shim's look at a file"
fi

run() {
  local what=$1 dir=$T/$2 i victims=() readies=() outs=() st
  shift 2
  must mkdir -p "$dir"
  # The victims map the first version of own0.so and fork.so, as chaos does.
  for f in own0.so fork.so; do
    fresh_copy "$V1" "$dir/$f"
    start_victim "$dir/$f"
    victims+=("$VICTIM_PID") readies+=("$VICTIM_READY") outs+=("$VICTIM_OUT")
  done
  log_reset
  # timeout: a deadlock the driver's own watchdog can't report still ends.
  env "$@" "${no_jump[@]}" LD_PRELOAD="$TG_SHIM" timeout -k 5 90 "$TG_CHAOS" "$dir" "$V1" "$V2" "$CHAOS_SEED" "$CHAOS_SECONDS" \
    >"$T/chaos.out" 2>&1
  st=$?
  for i in "${!victims[@]}"; do
    VICTIM_PID=${victims[$i]} VICTIM_READY=${readies[$i]} VICTIM_OUT=${outs[$i]} VICTIM_KIND=victim
    stop_victim
    expect_survived "$what: victim of ${outs[$i]##*/}"
  done
  grep '^#' "$T/chaos.out" | sed "s/^# /# $what: /"
  [ "$st" -eq 0 ] || fail "$what: chaos $(describe_status "$st") (seed $CHAOS_SEED): $(grep -v '^#' "$T/chaos.out" | head -n 20)"
  ok "$what: $(tail -n1 "$T/chaos.out")"
  expect_no_temp "$dir"
  expect_log_well_formed
  # A failure the shim logs is one: only shared.so, written by several
  # threads at once, may meet a newer file at its name (the first to close
  # wins, documented).
  local bad
  bad=$(tg_log | cut -f2- | grep -E '^(cannot protect|warning|error)' |
    grep -v "^cannot protect file=$dir/shared.so: another file was put at the name since the writer opened it" | head -n 3)
  [ -z "$bad" ] || fail "$what: the log says: $bad"
  ok "$what: the log reports no failure ($(tg_log | wc -l) lines)"
}

run "defaults" replace
run "atomic, scope elf" atomic TRUNCGUARD_MODE=atomic TRUNCGUARD_SCOPE=elf
