#!/bin/bash
# A scan that can't read some processes' maps proves nothing about them:
# `who` and `stale` must count and name them, and say so in the exit status,
# never skip them silently. As nobody, root's processes can't be inspected:
#  - root's victim, whose library was replaced, is uninspected: `stale` finds
#    nothing and exits 3 (not 0), naming the victim's pid on stderr and in
#    the JSON; `who` on its library exits 3 (not 1);
#  - nobody's own victim with a replaced library is still found: exit 1.
. "$(dirname "$0")/../e2e/lib.sh"
need_victims
need_root "to run the scan as another user (nobody)"
command -v python3 >/dev/null || skip "python3 is needed to parse the JSON output"

nobody_copies   # $TG_CMD_N: a truncguard nobody can run
cp "$TG_VICTIM" "$T/bin/victim" && chmod 755 "$T/bin/victim" || fail "cannot copy the victim"

# Root's victim, its library replaced.
LIB=$T/root-lib.so
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
R=$VICTIM_PID
R_READY=$VICTIM_READY
"$TG_CMD" cp "$V2" "$LIB" 2>/dev/null || fail "truncguard cp failed"

out=$(as_nobody "$TG_CMD_N" stale 2>"$T/stale.err")
st=$?
[ "$st" -ne 0 ] || fail "stale as nobody exited 0 (\"nothing stale\") although root's processes could not be inspected: $out"
if [ "$st" -eq 3 ]; then
  ok "stale as nobody: exit 3, nothing found among the processes it could read"
elif [ "$st" -eq 1 ]; then
  note "stale as nobody found some stale process of nobody's on this machine (exit 1): $out"
else
  fail "stale as nobody exited $st: $out $(cat "$T/stale.err")"
fi
grep -Eq "[0-9]+ process(es)? could not be inspected" "$T/stale.err" ||
  fail "stale as nobody does not say that processes could not be inspected: $(cat "$T/stale.err")"
grep -q "pid $R (victim)" "$T/stale.err" || grep -q " and [0-9]* more" "$T/stale.err" ||
  fail "stale as nobody names neither the uninspected victim (pid $R) nor how many more: $(cat "$T/stale.err")"
ok "stale as nobody says what it could not inspect: $(head -n 1 "$T/stale.err")"

as_nobody "$TG_CMD_N" stale --json >"$T/stale.json" 2>/dev/null
python3 - "$T/stale.json" "$R" <<'PY' || fail "stale --json as nobody: $(cat "$T/stale.json")"
import json, sys
d = json.load(open(sys.argv[1]))
victim = int(sys.argv[2])
assert d["uninspected"] > 0 and d["uninspected"] == len(d["uninspected_processes"]), d
assert victim in [p["pid"] for p in d["uninspected_processes"]], "the victim is not listed as uninspected"
assert victim not in [p["pid"] for p in d["processes"]]
PY
ok "stale --json as nobody lists the victim among uninspected_processes"

out=$(as_nobody "$TG_CMD_N" who "$LIB" 2>"$T/who.err")
st=$?
[ "$st" -eq 3 ] || fail "who as nobody on root's victim's library exited $st, expected 3 (not found, some uninspected): $out"
grep -q "could not be inspected" "$T/who.err" || fail "who as nobody does not warn: $(cat "$T/who.err")"
# Its advice: root, or the owner, except where the owner is refused too
# (a set-ID program; an undumpable process, as ssh-agent makes itself:
# seen as nobody, a python of nobody's own after prctl(PR_SET_DUMPABLE, 0)).
grep -qF "Run as root to inspect them (or as their owner, unless they run a set-user-ID or set-group-ID program, or made themselves undumpable" "$T/who.err" ||
  fail "who as nobody: the advice does not say whom the owner can't read: $(cat "$T/who.err")"
# One FILE asked about: "this file", not "these files".
grep -qF "may map this file too" "$T/who.err" || fail "who as nobody on one file: $(cat "$T/who.err")"
ok "who as nobody: exit 3 and a warning, not a false \"nobody maps it\""

# nobody's own victim, library replaced: visible to nobody.
mkdir -m 1777 "$T/nb"
NLIB=$T/nb/lib.so
cp "$V1" "$NLIB" && chmod 644 "$NLIB"
chmod 777 "$T/nb"
# setpriv itself (not the as_nobody function, which would fork a subshell), so
# that $BG_PID is the victim's pid.
_start_bg "$T/nb/ready" "$T/nb.out" setpriv --reuid=65534 --regid=65534 --clear-groups -- \
  "$T/bin/victim" "$NLIB" "$TG_VICTIM_MS" "$T/nb/ready"
N=$BG_PID
"$TG_CMD" cp "$V2" "$NLIB" 2>/dev/null || fail "truncguard cp over nobody's victim's library failed"
out=$(as_nobody "$TG_CMD_N" stale 2>"$T/stale.err")
st=$?
[ "$st" -eq 1 ] || fail "stale as nobody with nobody's own stale victim exited $st, expected 1: $out"
awk -v p="$N" '$2 == p && $5 == "deleted"' <<<"$out" | grep -q . ||
  fail "stale as nobody does not list nobody's victim (pid $N): $out"
grep -q "could not be inspected" "$T/stale.err" || fail "the partial scan is not reported when something was found"
ok "stale as nobody lists nobody's stale victim (exit 1) and still reports the uninspected ones"
# The same user is not enough (truncguard(1), "Processes that can't be
# inspected"): a setgid program nobody started (its effective group root)
# can't be traced by nobody, nor its maps read: uninspected, with its
# library replaced, where nobody's plain victim above is listed.
must cp "$TG_VICTIM" "$T/bin/sgid_victim"
chown 0:0 "$T/bin/sgid_victim" && chmod 2755 "$T/bin/sgid_victim" || fail "cannot make a setgid victim"
SLIB=$T/nb/slib.so
cp "$V1" "$SLIB" && chmod 644 "$SLIB"
_start_bg "$T/nb/sready" "$T/nb.sout" setpriv --reuid=65534 --regid=65534 --clear-groups -- \
  "$T/bin/sgid_victim" "$SLIB" "$TG_VICTIM_MS" "$T/nb/sready"
G=$BG_PID
if [ "$(awk '/^Gid:/ {print $3}' "/proc/$G/status")" = 0 ]; then
  "$TG_CMD" cp "$V2" "$SLIB" 2>/dev/null || fail "truncguard cp over the setgid victim's library failed"
  as_nobody "$TG_CMD_N" stale --json >"$T/stale.json" 2>"$T/stale.err"
  # The advice doesn't send nobody to the owner of this one: it is nobody.
  grep -qF "Run as root to inspect them (or as their owner, unless they run a set-user-ID or set-group-ID program, or made themselves undumpable, as ssh-agent does)." "$T/stale.err" ||
    fail "stale as nobody, a setgid victim among the uninspected: the advice is not as expected: $(cat "$T/stale.err")"
  python3 - "$T/stale.json" "$G" "$N" <<'PY' || fail "stale --json as nobody, nobody's setgid victim: $(cat "$T/stale.json")"
import json, sys
d = json.load(open(sys.argv[1]))
g, n = int(sys.argv[2]), int(sys.argv[3])
assert g in [p["pid"] for p in d["uninspected_processes"]], "the setgid victim is not uninspected"
assert g not in [p["pid"] for p in d["processes"]]
assert n in [p["pid"] for p in d["processes"]], "control: nobody's plain victim is not listed"
PY
  ok "stale as nobody: nobody's own setgid victim is uninspected (its maps can't be read), the plain one listed"
else
  note "the setgid victim does not run with group root (a nosuid mount?): not tested"
fi
rm -f "$T/nb/sready"

# stale --json describes a process's user by name, or by number where the
# uid has none (truncguard(7)): nobody's victim, and one of uid 4242.
if getent passwd 4242 >/dev/null; then
  note "uid 4242 has a name here: a user without a name was not checked"
else
  cp "$V1" "$T/nb/lib2.so" && chmod 644 "$T/nb/lib2.so" || fail "setup: lib2.so"
  _start_bg "$T/nb/ready2" "$T/nb2.out" setpriv --reuid=4242 --regid=4242 --clear-groups -- \
    "$T/bin/victim" "$T/nb/lib2.so" "$TG_VICTIM_MS" "$T/nb/ready2"
  U=$BG_PID
  "$TG_CMD" cp "$V2" "$T/nb/lib2.so" 2>/dev/null || fail "truncguard cp over uid 4242's victim's library failed"
  "$TG_CMD" stale --json >"$T/root-stale.json" 2>/dev/null
  python3 - "$T/root-stale.json" "$N" "$U" <<'PY' || fail "stale --json: the users are not as documented: $(cat "$T/root-stale.json")"
import json, sys
by_pid = {p["pid"]: p for p in json.load(open(sys.argv[1]))["processes"]}
n, u = by_pid[int(sys.argv[2])], by_pid[int(sys.argv[3])]
assert (n["user"], n["uid"]) == ("nobody", 65534), n
assert (u["user"], u["uid"]) == ("4242", 4242), u
PY
  ok "stale --json: a user by name (nobody), or by number where it has none (4242)"
  rm -f "$T/nb/ready2"
fi

rm -f "$T/nb/ready" "$R_READY"
wait

# Even root is refused a process of a user namespace it has no say in (in a
# sandbox, often PID 1): a file nobody maps then gets 3, not 1, and the
# warning names the process (README). In a PID namespace of our own (every
# process there known: bash as PID 1, a sleep), `who` run as root of a new
# user namespace can read neither. Control: as the real root, 1.
cat >"$T/userns.sh" <<'INNER'
TG=$1 F=$2
sleep 60 & S=$!
export TRUNCGUARD_SCOPE=namespace
"$TG" who "$F" >/dev/null 2>&1; echo "control $?"
unshare --user --map-root-user "$TG" who "$F" >/dev/null 2>"$3"; echo "userns $? sleep $S"
kill $S
INNER
if ! unshare --pid --fork --mount-proc true 2>/dev/null || ! unshare --user --map-root-user true 2>/dev/null; then
  note "root refused in a user namespace: skipped (no PID or user namespace can be made here)"
else
  out=$(unshare --pid --fork --mount-proc bash "$T/userns.sh" "$TG_CMD" "$V1" "$T/userns.err" 2>&1)
  grep -qx "control 1" <<<"$out" || fail "control: who in a PID namespace of our own, as root: $out"
  s=$(sed -n 's/^userns 3 sleep \([0-9]*\)$/\1/p' <<<"$out")
  [ -n "$s" ] || fail "who as root of a user namespace, processes outside it: expected exit 3: $out $(cat "$T/userns.err")"
  grep -qF "2 processes could not be inspected (no permission to read /proc/PID/maps): pid 1 (bash), pid $s (sleep)." "$T/userns.err" &&
    grep -qF "Even root is refused" "$T/userns.err" ||
    fail "who as root of a user namespace: the warning does not name pid 1 and the sleep (pid $s): $(cat "$T/userns.err")"
  ok "root of a user namespace refused two processes outside it: exit 3 (as the real root: 1), and the warning names them"
fi

# Root without CAP_SYS_PTRACE (Docker's default set) is refused other users'
# processes as any user is: the warning names the missing capability and how
# to grant it, not "another user namespace, or a security module". A sleep of
# nobody's; root with the capability (control) finds it, root without it
# (nor CAP_SYS_ADMIN, CAP_PERFMON: with either, kernel 6.18 let root read
# them all the same) gets 3 and that advice.
if ! setpriv --bounding-set -sys_ptrace,-sys_admin,-perfmon true 2>/dev/null; then
  note "root without CAP_SYS_PTRACE: skipped (setpriv can't drop it here)"
else
  cp /bin/sleep "$T/bin/nsleep" && chmod 755 "$T/bin/nsleep" || fail "cannot copy sleep"
  setpriv --reuid=65534 --regid=65534 --clear-groups -- "$T/bin/nsleep" 300 >/dev/null 2>&1 &
  NS=$!  # setpriv execs the sleep: its pid
  for _ in $(seq 100); do grep -q nsleep "/proc/$NS/maps" 2>/dev/null && break; sleep 0.05; done
  "$TG_CMD" who -q "$T/bin/nsleep" || fail "control: root with CAP_SYS_PTRACE does not find nobody's sleep (exit $?)"
  setpriv --bounding-set -sys_ptrace,-sys_admin,-perfmon "$TG_CMD" who "$T/bin/nsleep" >/dev/null 2>"$T/noptrace.err"
  st=$?
  kill "$NS"
  [ "$st" -eq 3 ] && grep -qF "lacks CAP_SYS_PTRACE" "$T/noptrace.err" &&
    grep -qF -- "--cap-add=SYS_PTRACE" "$T/noptrace.err" ||
    fail "who as root without CAP_SYS_PTRACE: exit $st, $(cat "$T/noptrace.err")"
  ok "root without CAP_SYS_PTRACE: exit 3, and the warning says which capability to grant"
fi
