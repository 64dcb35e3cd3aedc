#!/bin/bash
# One walk of /proc serves a process that replaces many files (a deploy's
# `cp -r`): the guard keeps a snapshot of every executable mapping and reuses
# only the answers that lead to replacing, for up to 10 s. An answer that
# would let a write truncate is always taken fresh, so a program that mapped
# a library after the snapshot was made is still found.
#
# One writer process (bash, preloaded) truncates three libraries in turn:
#   A  mapped by victim 1 from the start: the first walk, the snapshot;
#   B  mapped by victim 2, started after that walk: not in the snapshot,
#      so a fresh walk must find it (a reused "nobody" would kill victim 2);
#   C  mapped by victim 3 from the start: answered from the snapshot, and the
#      log line says so (", per a scan N ms ago").
# Control: the same writer without truncguard kills all three.
#
# It runs in its own PID namespace with its own /proc, where every process
# can be inspected, with scope namespace (so the processes outside it don't
# count either). On the host one uninspectable process (pid 1 here) makes
# every ELF library count as in use, which would hide a wrong reuse.
#
# Then the limit: a writer that replaces A, waits 10.5 s and replaces C gets
# C's answer from a fresh walk.
R_PID_NS=1
. "$(dirname "$0")/rlib.sh"
need_pid_ns
need_victims
need_shim

A=$T/libA.so B=$T/libB.so C=$T/libC.so

# The writer: each library is opened with O_TRUNC by bash itself (exec N>),
# and filled by cat through the inherited fd. Between A and B it waits for
# the test to start victim 2.
cat >"$T/writer.sh" <<'EOF'
exec 3>"$1"; cat "$4" >&3; exec 3>&-
: >"$5/step1"
for ((i = 0; i < 500; i++)); do [ -e "$5/go" ] && break; sleep 0.01; done
[ -e "$5/go" ] || { echo "writer: no go after 5 s" >&2; exit 1; }
exec 4>"$2"; cat "$4" >&4; exec 4>&-
exec 5>"$3"; cat "$4" >&5; exec 5>&-
EOF

# run_deploy [PRELOAD]: the three victims and the writer; sets DEAD to the
# list of victims (A B C) that did not survive, and the PIDs as P_A, P_B, P_C.
run_deploy() {
  local v st
  rm -f "$T/step1" "$T/go"
  for v in A B C; do fresh_copy "$V1" "$T/lib$v.so"; done
  start_victim "$A"; P_A=$VICTIM_PID; R_A=$VICTIM_READY; O_A=$VICTIM_OUT
  start_victim "$C"; P_C=$VICTIM_PID; R_C=$VICTIM_READY; O_C=$VICTIM_OUT
  LD_PRELOAD=${1:-} TRUNCGUARD_SCOPE=namespace bash "$T/writer.sh" "$A" "$B" "$C" "$V2" "$T" >"$T/writer.out" 2>&1 &
  local writer=$!
  for ((i = 0; i < 1000; i++)); do [ -e "$T/step1" ] && break; sleep 0.01; done
  [ -e "$T/step1" ] || fail "the writer did not finish library A: $(cat "$T/writer.out")"
  start_victim "$B"; P_B=$VICTIM_PID; R_B=$VICTIM_READY; O_B=$VICTIM_OUT
  : >"$T/go"
  wait "$writer"
  st=$?
  [ "$st" -eq 0 ] || fail "the writer exited $st: $(cat "$T/writer.out")"
  sleep 0.2
  DEAD=
  for v in A B C; do
    eval "VICTIM_PID=\$P_$v VICTIM_READY=\$R_$v VICTIM_OUT=\$O_$v"
    stop_victim
    eval "S_$v=\$VICTIM_STATUS"
    [ "$VICTIM_STATUS" -eq 0 ] && grep -q released "$VICTIM_OUT" || DEAD="$DEAD $v"
  done
}

run_deploy
[ "$DEAD" = " A B C" ] || fail "control: without truncguard only [$DEAD ] died, expected [ A B C ]"
ok "control: without truncguard the writer kills all three victims ($(describe_status "$S_A"), $(describe_status "$S_B"), $(describe_status "$S_C"))"

log_reset
run_deploy "$TG_SHIM"
[ -z "$DEAD" ] || fail "under truncguard victim(s)$DEAD died (A: $(describe_status "$S_A"), B: $(describe_status "$S_B"), C: $(describe_status "$S_C")); log: $(tg_log)"
ok "under truncguard all three victims survived"
for v in A B C; do expect_version "$T/lib$v.so" 2; done

expect_log "replaced file=$A [ino " "mapped executable by pid $P_A ("
log_lines "replaced file=$A [ino " | grep -q "per a scan" && fail "A's answer says it was reused, but it came from the first walk: $(log_lines "replaced file=$A")"
ok "A: the first walk found victim 1 (pid $P_A)"

expect_log "replaced file=$B [ino " "mapped executable by pid $P_B ("
log_lines "replaced file=$B [ino " | grep -q "per a scan" && fail "B's answer was reused from the snapshot made before victim 2 started: $(log_lines "replaced file=$B")"
ok "B: not in the snapshot, so a fresh walk found victim 2 (pid $P_B), started after the first walk"

expect_log "replaced file=$C [ino " "mapped executable by pid $P_C (" ", per a scan " " ms ago"
ok "C: answered from the snapshot: $(log_lines "replaced file=$C" | sed 's/.*mapped executable by //')"

# The premise: nothing in this namespace was left uninspected, or every ELF
# file would count as in use whatever the snapshot says.
TRUNCGUARD_LOG_FORMAT=json run_deploy "$TG_SHIM"
[ -z "$DEAD" ] || fail "under truncguard (JSON log) victim(s)$DEAD died"
grep -h '"event":"replaced"' "$TG_LOG".* | grep -q '"uninspected":0,"scan_age_ms":' ||
  fail "no JSON replaced line with \"uninspected\":0 and scan_age_ms: $(tg_log)"
n=$(grep -h '"event":"replaced"' "$TG_LOG".* | grep -c '"scan_age_ms"')
[ "$n" -eq 1 ] || fail "$n JSON replaced lines carry scan_age_ms; only C's answer was reused: $(tg_log)"
grep -h '"event":"replaced"' "$TG_LOG".* | grep -v '"uninspected":0' &&
  fail "some process was left uninspected in the PID namespace: the test proves nothing here"
grep -h '"event":"replaced"' "$TG_LOG".* | grep '"outside_pid_namespace"' &&
  fail "scope namespace counted the processes outside the namespace: the test proves nothing here"
ok "JSON: every answer had 0 uninspected processes; the reused one carries scan_age_ms"

# The snapshot serves for 10 s at most: a writer that replaces A, pauses
# 10.5 s, then replaces C (no victim started in between) gets C's answer from
# a fresh walk, not from the snapshot the first walk made.
cat >"$T/slow_writer.sh" <<'EOF2'
exec 3>"$1"; cat "$3" >&3; exec 3>&-
sleep 10.5
exec 5>"$2"; cat "$3" >&5; exec 5>&-
EOF2
for v in A C; do fresh_copy "$V1" "$T/lib$v.so"; done
start_victim "$A"; P_A=$VICTIM_PID; R_A=$VICTIM_READY; O_A=$VICTIM_OUT
start_victim "$C"; P_C=$VICTIM_PID
log_reset
LD_PRELOAD=$TG_SHIM TRUNCGUARD_SCOPE=namespace bash "$T/slow_writer.sh" "$A" "$C" "$V2" >"$T/writer.out" 2>&1 ||
  fail "the slow writer failed: $(cat "$T/writer.out")"
stop_victim
expect_survived "victim 3, C replaced 10.5 s after the first walk"
VICTIM_PID=$P_A VICTIM_READY=$R_A VICTIM_OUT=$O_A
stop_victim
expect_survived "victim 1"
expect_log "replaced file=$C [ino " "mapped executable by pid $P_C ("
log_lines "replaced file=$C [ino " | grep -q "per a scan" &&
  fail "C's answer was reused from a snapshot over 10 s old: $(log_lines "replaced file=$C")"
ok "C, 10.5 s after the first walk: a fresh walk found victim 3 (the snapshot serves 10 s at most)"
