#!/bin/bash
# A deploy that runs in a PID namespace of its own (a container, `unshare -p`,
# systemd's PrivatePIDs=) with its own /proc sees only the processes of that
# namespace. A library it overwrites may be run by a process outside it (a
# volume shared with the host): "nobody in here maps it" is not "nobody maps
# it". Those processes count as not inspected, so an ELF file whose lease is
# refused is replaced. Control: a plain cp in the namespace kills the victim
# outside. Scope namespace leaves them out, as documented (the victim outside
# dies: the test shows the scope does what it says). `truncguard who` says its
# answer is incomplete there (exit 3, outside_pid_namespace), unless
# TRUNCGUARD_SCOPE=namespace, and not on the host. In a PID namespace on the
# host's /proc, who does not take the process whose pid there is its own in
# its namespace for itself.
. "$(dirname "$0")/rlib.sh"
need_root "a PID namespace with its own /proc"
need_victims
need_shim
in_ns() { unshare -p -m --fork --mount-proc --propagation private -- "$@"; }
in_ns true 2>/dev/null || skip "cannot make a PID namespace with its own /proc (unshare -p -m --mount-proc)"

LIB=$T/lib.so

# The control: without truncguard, cp in the namespace kills the victim outside.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
in_ns cp "$V2" "$LIB" || fail "control: cp in the PID namespace failed"
sleep 0.2
stop_victim
expect_killed "control: cp in its own PID namespace over a library a process outside runs"

# Under truncguard (scope system, the default): replaced, and the log says why.
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
in_ns "$TG_CMD" cp "$V2" "$LIB" || fail "truncguard cp in the PID namespace failed: $(tg_log)"
sleep 0.2
stop_victim
expect_survived "truncguard cp in its own PID namespace"
[ "$(inode "$LIB")" != "$old" ] || fail "the library was truncated in place: $(tg_log)"
expect_version "$LIB" 2
expect_log "replaced file=$LIB [ino $old -> " \
  "no readable process, but the processes outside this PID namespace could not be inspected and it is an ELF"
ok "the processes outside the namespace counted as not inspected: the library was replaced"

# The same in JSON: the line says so in a field of its own.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
in_ns "$TG_CMD" --json cp "$V2" "$LIB" || fail "truncguard --json cp failed: $(tg_log)"
stop_victim
expect_survived "truncguard --json cp in its own PID namespace"
grep -h '"event":"replaced"' "$TG_LOG".* | grep -q '"outside_pid_namespace":true' ||
  fail "no JSON replaced line with \"outside_pid_namespace\":true: $(tg_log)"
ok "JSON: \"outside_pid_namespace\":true"

# A writer that also can't read some processes in here (nobody, with a
# process of another user in the namespace): the line names both, as
# truncguard(7) quotes it ("..., nor those outside this PID namespace, and
# it is ...").
if command -v setpriv >/dev/null && as_nobody true; then
  nobody_copies
  must mkdir -m 0755 "$T/nb"
  must chown 65534:65534 "$T/nb"
  NLIB=$T/nb/libvictim.so
  fresh_copy "$V1" "$NLIB"
  must chown 65534:65534 "$NLIB"
  start_victim "$NLIB"
  in_ns sh -c 'setpriv --reuid=65533 --regid=65533 --clear-groups sleep 20 & sleep 0.3
    setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; st=$?; kill $!; exit $st' _ \
    env TRUNCGUARD_LOG= "$TG_CMD_N" cp "$V2" "$NLIB" >"$T/nb.out" 2>&1 || fail "nobody's truncguard cp in the namespace failed: $(cat "$T/nb.out")"
  stop_victim
  expect_survived "nobody's truncguard cp in its own PID namespace"
  grep -qE "replaced file=$NLIB .*mapped executable by no readable process, but [0-9]+ process(es)? could not be inspected, nor those outside this PID namespace, and it is an ELF shared object$" "$T/nb.out" ||
    fail "nobody in the namespace: not the documented wording: $(cat "$T/nb.out")"
  ok "uninspected processes in the namespace and those outside it: the line names both"
fi

# Scope namespace: only the processes in here count, as documented; the
# victim outside is not protected, and the decision says why.
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
in_ns "$TG_CMD" --scope=namespace --debug=decisions cp "$V2" "$LIB" || fail "truncguard --scope=namespace cp failed"
sleep 0.2
stop_victim
expect_killed "scope namespace, a victim outside the namespace"
expect_log "decision file=$LIB: pass (no process maps it executable)"
ok "scope namespace left the processes outside the namespace out, as documented"

# ... nor does it say they were left out: a library the writer itself maps
# (selfwriter) is replaced, and the JSON line has no outside_pid_namespace
# field. Control: the same in scope system has it.
for scope in system namespace; do
  fresh_copy "$V1" "$LIB"
  log_reset
  in_ns "$TG_CMD" --scope="$scope" --json "$TG_SELFWRITER" "$LIB" "$V2" >"$T/self.$scope.out" 2>&1 ||
    fail "scope $scope: selfwriter in the PID namespace failed: $(cat "$T/self.$scope.out") $(tg_log)"
  line=$(grep -h '"event":"replaced"' "$TG_LOG".* | grep -F '"mapped_by_self":true') ||
    fail "scope $scope: no JSON replaced line for the writer's own library: $(tg_log)"
  case $scope in
    system) grep -qF '"outside_pid_namespace":true' <<<"$line" || fail "control: scope system: no outside_pid_namespace: $line" ;;
    namespace) grep -qF 'outside_pid_namespace' <<<"$line" && fail "scope namespace: the line names the processes outside: $line" ;;
  esac
done
ok "scope namespace: the replaced line of the writer's own library says nothing of processes outside (scope system does)"

# who: incomplete inside the namespace (exit 3, a warning, the JSON field)...
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
out=$(in_ns "$TG_CMD" who --json "$LIB" 2>"$T/who.err")
st=$?
stop_victim
[ "$st" -eq 3 ] || fail "truncguard who in the namespace exited $st, expected 3 (incomplete): $out $(cat "$T/who.err")"
grep -q '"outside_pid_namespace":true' <<<"$out" || fail "who's JSON does not say outside_pid_namespace: $out"
grep -q "lists the processes of one PID namespace" "$T/who.err" || fail "who does not warn: $(cat "$T/who.err")"
grep -qF "or set TRUNCGUARD_SCOPE=namespace if nothing outside runs this file." "$T/who.err" ||
  fail "who's warning does not give the setting that answers for the namespace: $(cat "$T/who.err")"
ok "truncguard who in the namespace: exit 3, outside_pid_namespace, and a warning"
out=$(in_ns env TRUNCGUARD_SCOPE=namespace "$TG_CMD" who --json "$LIB" 2>"$T/who.err")
st=$?
[ "$st" -eq 1 ] || fail "TRUNCGUARD_SCOPE=namespace truncguard who exited $st, expected 1 (nobody in here): $out $(cat "$T/who.err")"
grep -q '"outside_pid_namespace":false' <<<"$out" || fail "with scope namespace, who still counts the processes outside: $out"
ok "TRUNCGUARD_SCOPE=namespace truncguard who in the namespace: complete for this namespace (exit 1, nobody in it)"
# stale the same (truncguard(1), "Processes that can't be inspected"): in the
# namespace, where nothing is stale, exit 3, the warning and the JSON field;
# with TRUNCGUARD_SCOPE=namespace, exit 0.
out=$(in_ns "$TG_CMD" stale --json 2>"$T/stale.err")
st=$?
[ "$st" -eq 3 ] && grep -q '"outside_pid_namespace":true' <<<"$out" &&
  grep -q "stale: /proc lists the processes of one PID namespace" "$T/stale.err" &&
  grep -qF "TRUNCGUARD_SCOPE=namespace if only this namespace's processes are yours to restart." "$T/stale.err" ||
  fail "truncguard stale in the namespace: exit $st (expected 3), $out $(cat "$T/stale.err")"
out=$(in_ns env TRUNCGUARD_SCOPE=namespace "$TG_CMD" stale --json 2>"$T/stale.err")
st=$?
[ "$st" -eq 0 ] && grep -q '"outside_pid_namespace":false' <<<"$out" ||
  fail "TRUNCGUARD_SCOPE=namespace truncguard stale in the namespace: exit $st (expected 0), $out $(cat "$T/stale.err")"
ok "truncguard stale in the namespace: exit 3, outside_pid_namespace, a warning; with TRUNCGUARD_SCOPE=namespace, exit 0"

# ... and not on the host, where /proc lists every PID namespace.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
out=$("$TG_CMD" who --json "$LIB" 2>"$T/who.err")
stop_victim
grep -q '"outside_pid_namespace":false' <<<"$out" || fail "who on the host says outside_pid_namespace: $out"
grep -q "pid $VICTIM_PID\|\"pid\":$VICTIM_PID" <<<"$out" || fail "who on the host does not list the victim: $out"
ok "truncguard who on the host: outside_pid_namespace false, the victim listed"

# who in a PID namespace without a /proc of its own (unshare -p, no
# --mount-proc): /proc is the host's, where the command's own pid in its
# namespace is some other process's. Made the victim's (ns_last_pid): who
# still lists the victim (it skipped it, taking it for itself: "no process
# maps it").
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
out=$(unshare -p --fork -- bash -c 'echo $(($1 - 1)) >/proc/sys/kernel/ns_last_pid || exit 77
  "$2" who "$3"; st=$?; exit $st' - "$VICTIM_PID" "$TG_CMD" "$LIB" 2>/dev/null)
st=$?
stop_victim
[ "$st" -ne 77 ] || skip "cannot set ns_last_pid in a new PID namespace"
grep -qE "^ +$VICTIM_PID .* exec +current" <<<"$out" ||
  fail "who in a PID namespace on the host's /proc (its own pid there $VICTIM_PID, the victim's) does not list the victim: exit $st, $out"
ok "who in a PID namespace on the host's /proc lists the victim whose pid it has in its namespace"
