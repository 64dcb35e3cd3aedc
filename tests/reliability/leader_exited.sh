#!/bin/bash
# A process whose main thread exited while another thread runs on (a daemon
# whose main() ends in pthread_exit) still runs its libraries, but its
# /proc/PID/maps reads empty, as a kernel thread's: the kernel answers for the
# thread group leader, which has no memory any more. The maps of its other
# threads (/proc/PID/task/TID/maps) are the process's.
#  - control: a plain cp over the library kills the victim;
#  - `truncguard who` lists it (exit 0; it said "no process maps it", exit 1);
#  - `truncguard cp` names it and replaces the library: it survives (it
#    used to say "no process maps it executable", truncate, and the victim
#    died of SIGSEGV); `truncguard stale` then lists it (exit 1);
#  - the first thread listed after the main one may be exiting (no memory
#    any more, but not yet reaped; held so here by a tracer that never
#    reaps it): the scan and who look at the next one (they read that
#    thread's empty maps, called the victim gone and truncated the library);
#  - a writer whose main thread exited names its fd through its thread:
#    its ftruncate of the library replaces it (it failed with ETXTBSY, "cannot
#    read the file's name"); the control, without truncguard, dies.
# In a PID namespace of its own with its own /proc and scope namespace, as
# snapshot_reuse: every process there can be inspected, so a scan that misses
# the victim answers "nobody" (on the host, one uninspectable process makes
# every ELF library count as in use, which would hide the miss).
R_PID_NS=1
. "$(dirname "$0")/rlib.sh"
need_pid_ns
need_victims
need_shim
export TRUNCGUARD_SCOPE=namespace

LIB=$T/libleader.so

# start_leader_victim [traced]: a victim on $LIB whose calls run on a second
# thread, once its main thread has exited and its maps read empty. traced:
# its first thread after the main one exits, held as a zombie by a tracer
# (TRACER_PID) that never reaps it.
start_leader_victim() {
  local i state= tid=
  fresh_copy "$V1" "$LIB"
  TG_VICTIM_LEADER_EXITS=${1:-1} start_victim "$LIB"
  if [ "${1:-}" = traced ]; then
    for ((i = 0; i < 500 && ${#tid} == 0; i++)); do  # made after the ready file
      tid=$(grep -lx traced "/proc/$VICTIM_PID/task/"*/comm 2>/dev/null | cut -d/ -f5)
      [ -n "$tid" ] || sleep 0.01
    done
    [ -n "$tid" ] || fail "the victim has no thread named traced"
    "$TG_RTOOL" ptrace-hold "$tid" >"$T/tracer.out" 2>&1 &
    TRACER_PID=$!
    _tg_pids+=("$TRACER_PID")  # killed by the cleanup on failure: the victim can then be reaped
    for ((i = 0; i < 500; i++)); do
      state=$(awk '/^State:/ { print $2 }' "/proc/$VICTIM_PID/task/$tid/status")
      [ "$state" = Z ] && break
      sleep 0.01
    done
    [ "$state" = Z ] || fail "the victim's traced thread did not exit (state $state; $(cat "$T/tracer.out"))"
  fi
  for ((i = 0; i < 500; i++)); do
    state=$(awk '/^State:/ { print $2 }' "/proc/$VICTIM_PID/status")
    [ "$state" = Z ] && break
    sleep 0.01
  done
  [ "$state" = Z ] || fail "the victim's main thread did not exit (state $state)"
  [ -z "$(cat "/proc/$VICTIM_PID/maps")" ] ||
    fail "the victim's /proc/PID/maps is not empty: the case of this test does not arise here"
}

start_leader_victim
cp "$V2" "$LIB"
stop_victim
expect_killed "control: cp over the library of a victim whose main thread exited"

start_leader_victim
for how in "" --text-maps; do
  out=$("$TG_CMD" who $how "$LIB" 2>&1)
  st=$?
  [ "$st" -eq 0 ] || fail "truncguard who $how exited $st, expected 0 (the victim maps it): $out"
  awk -v p="$VICTIM_PID" '$1 == p && $4 == "exec" && $5 == "current"' <<<"$out" | grep -q . ||
    fail "truncguard who $how does not list the victim (pid $VICTIM_PID) as exec current: $out"
  ok "truncguard who ${how:-(PROCMAP_QUERY)} lists the victim whose main thread exited"
done
# Its exe link went with its main thread: who names it through a live thread.
out=$("$TG_CMD" who --json "$LIB" 2>&1)
grep -qF "\"pid\":$VICTIM_PID,\"user\":" <<<"$out" || fail "who --json does not list the victim: $out"
grep -qF "\"exe\":\"$(readlink -f "$TG_VICTIM")\"" <<<"$out" ||
  fail "who --json does not give the exe of the victim whose main thread exited ($TG_VICTIM): $out"
ok "truncguard who --json gives its exe, through a live thread"

log_reset
"$TG_CMD" cp "$V2" "$LIB" || fail "truncguard cp failed"
expect_log "replaced file=$LIB" "mapped executable by pid $VICTIM_PID"
out=$("$TG_CMD" stale 2>&1)
st=$?
[ "$st" -eq 1 ] || fail "truncguard stale exited $st, expected 1 (the victim runs the replaced library): $out"
awk -v p="$VICTIM_PID" -v f="$LIB" '$2 == p && $5 == "deleted" && $6 == f' <<<"$out" | grep -q . ||
  fail "truncguard stale does not list the victim (pid $VICTIM_PID): $out"
ok "truncguard stale lists it after the deploy"
stop_victim
expect_survived "truncguard cp over the library of a victim whose main thread exited"

# stop_traced_victim: the tracer goes (the thread it held is reaped), then the victim.
stop_traced_victim() {
  kill "$TRACER_PID"
  wait "$TRACER_PID" 2>/dev/null
  stop_victim
}

start_leader_victim traced
cp "$V2" "$LIB"
stop_traced_victim
expect_killed "control: cp over the library of a victim whose first thread after the main one is exiting"

start_leader_victim traced
out=$("$TG_CMD" who "$LIB" 2>&1)
st=$?
[ "$st" -eq 0 ] || fail "truncguard who exited $st, expected 0 (the victim maps it): $out"
log_reset
"$TG_CMD" cp "$V2" "$LIB" || fail "truncguard cp failed"
expect_log "replaced file=$LIB" "mapped executable by pid $VICTIM_PID"
stop_traced_victim
expect_survived "truncguard cp over the library of a victim whose first thread after the main one is exiting"

# A writer whose main thread exited: its fds are named through the calling
# thread's /proc/thread-self/fd (/proc/self/fd is empty: "cannot read the
# file's name", ETXTBSY). ftruncate(fd, 0) of a library a victim runs.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
out=$("$TG_RTOOL" main-thread-exits ftruncate-fd 3 0 3<>"$LIB" 2>&1)
stop_victim
expect_killed "control: ftruncate by a writer whose main thread exited ($out)"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
out=$(LD_PRELOAD=$TG_SHIM "$TG_RTOOL" main-thread-exits ftruncate-fd 3 0 3<>"$LIB" 2>&1)
[ "$out" = ok ] || fail "the ftruncate of a writer whose main thread exited, under truncguard: $out; log: $(tg_log)"
expect_log "replaced file=$LIB" "mapped executable by pid $VICTIM_PID"
stop_victim
expect_survived "ftruncate by a writer whose main thread exited, under truncguard"
