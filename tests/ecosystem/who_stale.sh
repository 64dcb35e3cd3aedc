#!/bin/bash
# `truncguard who` and `truncguard stale` against real processes, as an
# operator uses them after a deploy:
#  - a victim that loaded a library is listed by `who`: executable mapping,
#    the current inode;
#  - after `truncguard cp` over it, `who` shows the victim on the replaced
#    inode and a fresh process on the current one; `stale` lists the victim
#    (the kernel names its library "(deleted)") and not the fresh process;
#  - a process that maps the file as data shows as "data";
#  - PROCMAP_QUERY and the maps text give the same answers;
#  - in a PID namespace of our own (every process inspectable; with
#    TRUNCGUARD_SCOPE=namespace, so the processes outside it don't make the
#    answer incomplete), the exit statuses: stale 0 when nothing is stale, 1
#    when something is; who 0/1;
#    and the two ways a file can go stale without "(deleted)": a file
#    mounted over its path (replaced), a directory mounted over (missing).
. "$(dirname "$0")/../e2e/lib.sh"
SRC=${TG_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
need_victims
need_shim
command -v python3 >/dev/null || skip "python3 is needed to parse the JSON output"

mkdir -p "$T/lib"
LIB=$T/lib/libfoo.so
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
A=$VICTIM_PID
A_READY=$VICTIM_READY
A_OUT=$VICTIM_OUT

# row PID OUTPUT: the table row of PID (who: first column; stale: second).
who_row() { awk -v p="$1" '$1 == p' <<<"$2"; }
stale_row() { awk -v p="$1" '$2 == p' <<<"$2"; }

# --------------------------------------------------------------- who, before
out=$("$TG_CMD" who "$LIB" 2>"$T/who.err")
st=$?
[ "$st" -eq 0 ] || fail "truncguard who $LIB exited $st, expected 0 (a victim maps it): $out $(cat "$T/who.err")"
grep -qF "$LIB (inode $old on " <<<"$out" || fail "who does not head the table with the file and its inode $old: $out"
row=$(who_row "$A" "$out")
[ -n "$row" ] || fail "who does not list the victim (pid $A): $out"
read -r _ user comm maps file unit <<<"$row"
[ "$comm" = victim ] && [ "$maps" = exec ] && [ "$file" = current ] && [ "$user" = "$(id -un)" ] ||
  fail "who's row for the victim is \"$row\", expected: $A $(id -un) victim exec current"
ok "who lists the victim: $row"

# ------------------------------------------------- a deploy under truncguard
log_reset
"$TG_CMD" cp "$V2" "$LIB" || fail "truncguard cp over the victim's library failed"
new=$(inode "$LIB")
[ "$new" != "$old" ] || fail "truncguard cp kept inode $old: it was truncated in place"
start_victim "$LIB"
B=$VICTIM_PID
B_READY=$VICTIM_READY

# start_data_mapper FILE NAME: a python process that maps FILE read-only (as
# data), ready; its pid in MAPPER_PID.
# (start_data_mapper FILE NAME FILE2: it maps FILE2 too.)
start_data_mapper() {
  python3 - "$1" "$T/$2.ready" ${3:+"$3"} <<'PY' >"$T/$2.out" 2>&1 &
import mmap, sys, time
files = [open(f, "rb") for f in [sys.argv[1]] + sys.argv[3:]]
maps = [mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) for f in files]
open(sys.argv[2], "w").close()
time.sleep(30)
PY
  MAPPER_PID=$!
  _tg_pids+=("$MAPPER_PID")
  for ((i = 0; i < 500; i++)); do [ -e "$T/$2.ready" ] && break; sleep 0.01; done
  [ -e "$T/$2.ready" ] || fail "the $2 did not start: $(cat "$T/$2.out")"
}
# A data-only mapping of the new file, by a process that is not a victim.
start_data_mapper "$LIB" mapper
M=$MAPPER_PID
# ... and one of both the new file and the replaced one (through the
# victim's /proc/PID/map_files, which needs root), which who --json lists
# twice.
M2=
if [ "$(id -u)" -eq 0 ]; then
  range=$(awk -v f="$LIB (deleted)" 'substr($0, length($0) - length(f) + 1) == f {print $1; exit}' "/proc/$A/maps")
  [ -n "$range" ] || fail "setup: the victim's maps do not name $LIB deleted: $(grep -F "$LIB" "/proc/$A/maps")"
  start_data_mapper "$LIB" both_mapper "/proc/$A/map_files/$range"
  M2=$MAPPER_PID
else
  note "not root: no process maps both the current and the replaced file (who --json lists it twice: not checked)"
fi

for how in "" --text-maps; do
  label=${how:-PROCMAP_QUERY}
  out=$("$TG_CMD" who $how "$LIB" 2>"$T/who.err")
  st=$?
  [ "$st" -eq 0 ] || fail "who ($label) after the deploy exited $st: $out"
  read -r _ _ _ maps file _ <<<"$(who_row "$A" "$out")"
  [ "$maps $file" = "exec replaced" ] ||
    fail "who ($label): the old victim should run the replaced inode: $(who_row "$A" "$out") in: $out"
  grep -E "^ +$A .*replaced \(inode $old, deleted\)" <<<"$out" >/dev/null ||
    fail "who ($label) does not name the old inode $old for the victim: $out"
  read -r _ _ _ maps file _ <<<"$(who_row "$B" "$out")"
  [ "$maps $file" = "exec current" ] || fail "who ($label): the fresh victim should run the current inode: $out"
  read -r _ _ comm maps file _ <<<"$(who_row "$M" "$out")"
  [ "$maps $file" = "data current" ] || fail "who ($label): the python mapper should be a data mapping: $out"
  grep -qF "$new" <<<"$out" || fail "who ($label) does not show the new inode $new: $out"
  ok "who ($label): old victim on the replaced inode, fresh victim on the current one, the mapper as data"

  out=$("$TG_CMD" stale $how 2>"$T/stale.err")
  st=$?
  [ "$st" -eq 1 ] || fail "stale ($label) exited $st, expected 1 (the old victim runs a replaced library): $out"
  row=$(stale_row "$A" "$out")
  [ -n "$row" ] || fail "stale ($label) does not list the old victim (pid $A): $out"
  read -r _ _ _ comm why path <<<"$row"
  [ "$comm $why $path" = "victim deleted $LIB" ] ||
    fail "stale ($label): the victim's row is \"$row\", expected victim deleted $LIB"
  [ -z "$(stale_row "$B" "$out")" ] || fail "stale ($label) lists the fresh victim (pid $B), which runs the new file: $out"
  [ -z "$(stale_row "$M" "$out")" ] || fail "stale ($label) lists the data mapper (pid $M)"
  grep -q "Restart by hand" <<<"$out" || fail "stale ($label) says nothing about what to restart: $out"
  ok "stale ($label) lists the old victim, not the fresh one: $row"
done

# A deleted file mapped as data only (a log, a cache) needs no restart: stale
# lists code. Control: the maps name the mapper's file deleted.
echo data >"$T/data.bin"
start_data_mapper "$T/data.bin" data_mapper
D=$MAPPER_PID
rm "$T/data.bin"
grep -qF "$T/data.bin (deleted)" "/proc/$D/maps" || fail "control: the maps do not name the data file deleted: $(grep -F "$T" "/proc/$D/maps")"
out=$("$TG_CMD" stale 2>/dev/null)
[ -z "$(stale_row "$D" "$out")" ] || fail "stale lists a process whose deleted file is mapped as data only (pid $D): $out"
kill "$D" 2>/dev/null
ok "stale leaves out a deleted file mapped as data only"

# Memory files, SysV and POSIX shared memory mapped executable (a JIT's code,
# "(deleted)" in the maps) are left out (truncguard(1)); control: the same
# process's deleted regular file mapped executable is listed.
cat >"$T/pseudo.py" <<'PY'
import ctypes, mmap, os, sys, time
# Maps executable: a memfd, a SysV segment, a POSIX shm file (then unlinked),
# and, unless "no-control", a regular file, then deleted. Ready file, sleep.
ready, regular = sys.argv[1], sys.argv[2]
keep, made = [], []
try:   # (vm.memfd_noexec may refuse it)
    fd = os.memfd_create("tg-jit")
    os.write(fd, b"\xc3" * 4096)
    keep.append(mmap.mmap(fd, 4096, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_EXEC)); made.append("memfd")
except OSError:
    pass
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
shmid = libc.shmget(0, 4096, 0o1600)   # IPC_PRIVATE, IPC_CREAT | 0600
if shmid >= 0:
    addr = libc.shmat(shmid, None, 0o100000)   # SHM_EXEC
    libc.shmctl(shmid, 0, None)                # IPC_RMID: gone once detached
    if addr not in (None, ctypes.c_void_p(-1).value): made.append("sysv")
try:
    p = "/dev/shm/tg-pseudo-%d" % os.getpid()
    f = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)
    os.write(f, b"\xc3" * 4096)
    keep.append(mmap.mmap(f, 4096, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_EXEC)); made.append("posix")
    os.unlink(p)
except OSError:
    pass
if regular != "no-control":
    f = os.open(regular, os.O_RDONLY)
    keep.append(mmap.mmap(f, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_EXEC))
    os.unlink(regular)
open(ready, "w").write(" ".join(made) or "nothing")
time.sleep(30)
PY
cp "$V1" "$T/reg.so"
python3 "$T/pseudo.py" "$T/pseudo.ready" "$T/reg.so" >"$T/pseudo.out" 2>&1 &
PS=$!
_tg_pids+=("$PS")
for ((i = 0; i < 500; i++)); do [ -s "$T/pseudo.ready" ] && break; sleep 0.01; done
[ -s "$T/pseudo.ready" ] || fail "the pseudo-file mapper did not start: $(cat "$T/pseudo.out")"
for how in "" --text-maps; do
  rows=$(stale_row "$PS" "$("$TG_CMD" stale $how 2>/dev/null)")
  grep -qE " deleted +$T/reg\.so\$" <<<"$rows" || fail "control: stale $how does not list the mapper's deleted regular file: $rows"
  [ "$(grep -c . <<<"$rows")" -eq 1 ] || fail "stale $how lists a pseudo-file ($(cat "$T/pseudo.ready")) of the mapper: $rows"
done
kill "$PS" 2>/dev/null
if [ "$(cat "$T/pseudo.ready")" = nothing ]; then
  note "no memfd, SysV or POSIX shared memory can be mapped executable here: pseudo-files not tested"
else
  ok "stale leaves out executable mappings of $(cat "$T/pseudo.ready") (control: a deleted regular file is listed)"
fi

# ------------------------------------------------------------------ JSON
# (A symlink to it, and a name where nothing is, are given too: "path" is the
# file's, symlinks resolved; a missing file has neither dev nor ino.)
must ln -s lib/libfoo.so "$T/link.so"
"$TG_CMD" who --json "$T/link.so" "$T/lib/none.so" >"$T/who.json" 2>/dev/null || fail "who --json exited $?"
"$TG_CMD" stale --json >"$T/stale.json" 2>/dev/null
st=$?
[ "$st" -eq 1 ] || fail "stale --json exited $st, expected 1"
python3 - "$T/who.json" "$T/stale.json" "$LIB" "$A" "$B" "$M" "$old" "$new" "$(stat -c '%Hd:%Ld' "$LIB")" \
  "$(id -un)" "$(id -u)" "$(readlink -f "$TG_VICTIM")" "$T" "$M2" <<'PY' ||
import json, sys
who_path, stale_path, lib = sys.argv[1:4]
a, b, m, old, new = map(int, sys.argv[4:9])
dev, user, uid, exe, tdir = sys.argv[9], sys.argv[10], int(sys.argv[11]), sys.argv[12], sys.argv[13]
who = json.load(open(who_path))
[f, none] = who["files"]
assert f["file"] == tdir + "/link.so" and f["path"] == lib and f["exists"] is True and f["ino"] == new, f
assert f["dev"] == dev, (f, dev)
assert none == {"file": tdir + "/lib/none.so", "path": tdir + "/lib/none.so", "exists": False, "processes": []}, none
procs = {(p["pid"], p["ino"]): p for p in f["processes"]}
pa = procs[(a, old)]
assert pa["inode"] == "replaced" and pa["mapping"] == "exec" and pa["comm"] == "victim", pa
assert pa["user"] == user and pa["uid"] == uid and pa["exe"] == exe and pa["dev"] == dev, pa
if sys.argv[14]:
    m2 = sorted((p["inode"], p["mapping"], p["ino"]) for p in f["processes"] if p["pid"] == int(sys.argv[14]))
    assert m2 == [("current", "data", new), ("replaced", "data", old)], m2
assert procs[(b, new)]["inode"] == "current" and procs[(b, new)]["mapping"] == "exec"
assert procs[(m, new)]["mapping"] == "data"
for p in f["processes"]:
    for k in ("pid", "user", "uid", "comm", "exe", "unit", "unit_manager", "mapping", "inode", "dev", "ino"):
        assert k in p, (k, p)
assert isinstance(who["inspected"], int) and who["inspected"] > 0
assert who["uninspected"] == len(who["uninspected_processes"])
stale = json.load(open(stale_path))
by_pid = {p["pid"]: p for p in stale["processes"]}
assert a in by_pid and b not in by_pid and m not in by_pid, sorted(by_pid)
files = by_pid[a]["files"]
assert {"path": lib, "why": "deleted", "ino": old} == {k: files[0][k] for k in ("path", "why", "ino")}, files
assert isinstance(stale["units"], list) and stale["uninspected"] == len(stale["uninspected_processes"])
print("ok: JSON of who and stale as documented")
PY
  fail "the JSON of who/stale is not what was expected: $(cat "$T/who.json" "$T/stale.json")"

# ------------------------------------------------- what to restart, by unit
# truncguard(1): "the summary prints the systemctl restart command for the
# services, and lists the processes to restart by hand". The old victim,
# outside any unit (here), is to be restarted by hand; moved into a cgroup named as
# a service (the hierarchy stale reads: systemd's v1 one where it is
# mounted, else the unified one), it is in that unit's row, and the summary
# restarts the unit with systemctl, no longer by hand.
if grep -q ':name=systemd:' /proc/self/cgroup; then
  cg_root=$(findmnt -rno TARGET -t cgroup -O name=systemd | head -n 1)
else
  cg_root=$(findmnt -rno TARGET -t cgroup2 | head -n 1)
fi
unit=tg-stale-$$.service
out=$("$TG_CMD" stale 2>/dev/null)
before=$(stale_row "$A" "$out" | awk '{print $1}')
[ -n "$before" ] && [ "$before" != "$unit" ] && ! grep -q "restart.* $unit" <<<"$out" ||
  fail "control: stale before the move (pid $A in ${before:-no row}): $out"
# (where the tests run in a systemd unit, the victim is in it: by hand only outside any)
[ "$before" != - ] || grep -q "^Restart by hand.* pid $A (victim)" <<<"$out" ||
  fail "control: the stale victim outside any unit (pid $A) is not to be restarted by hand: $out"
moved=
if [ "$(id -u)" -eq 0 ] && [ -n "$cg_root" ] && mkdir "$cg_root/$unit" 2>/dev/null; then
  CG=$cg_root/$unit
  trap '_tg_cleanup; rmdir "$CG" 2>/dev/null' EXIT
  # (a delegated or threaded hierarchy may refuse the move: then not tested)
  if echo "$A" 2>/dev/null >"$CG/cgroup.procs"; then moved=1; else rmdir "$CG" 2>/dev/null; fi
fi
if [ -n "$moved" ]; then
  out=$("$TG_CMD" stale 2>/dev/null)
  [ "$(stale_row "$A" "$out" | awk '{print $1}')" = "$unit" ] || fail "stale does not show the victim (pid $A) in $unit: $out"
  grep -qE "^  systemctl restart( .*)? $unit( |\$)" <<<"$out" || fail "stale's summary does not restart $unit with systemctl: $out"
  grep -q "^Restart by hand.* pid $A " <<<"$out" && fail "stale's summary still restarts pid $A by hand, in $unit: $out"
  # who's last column: "the systemd unit of the process"
  out=$("$TG_CMD" who "$LIB" 2>/dev/null)
  [ "$(who_row "$A" "$out" | awk '{print $NF}')" = "$unit" ] || fail "who does not show the victim (pid $A) in $unit: $out"
  "$TG_CMD" stale --json >"$T/stale.json" 2>/dev/null
  python3 - "$T/stale.json" "$unit" "$A" <<'PY' || fail "stale --json does not list $unit with the victim: $(cat "$T/stale.json")"
import json, sys
units = json.load(open(sys.argv[1]))["units"]
assert {"unit": sys.argv[2], "manager": None, "pids": [int(sys.argv[3])]} in units, units
PY
  ok "stale: a stale process in $unit is restarted with systemctl restart $unit (and in the JSON units; who shows its unit); outside any unit, by hand"
  # A unit of a user's manager (user@UID.service holds them): restarted
  # through that manager, named by user (truncguard(1): systemctl --user -M
  # USER@), not with the system's systemctl restart.
  UCG=$CG/user@65534.service/app.slice/tg-user-$$.service
  if mkdir -p "$UCG" 2>/dev/null && echo "$A" 2>/dev/null >"$UCG/cgroup.procs"; then
    out=$("$TG_CMD" stale 2>/dev/null)
    echo "$A" >"$CG/cgroup.procs"
    rmdir "$UCG" "$CG/user@65534.service/app.slice" "$CG/user@65534.service"
    grep -A1 -xF "Restart (units of user@65534.service):" <<<"$out" | grep -qxF "  systemctl --user -M nobody@ restart tg-user-$$.service" ||
      fail "stale's summary for a user unit: $out"
    ok "stale: a stale process in a user's unit is restarted through its manager (systemctl --user -M nobody@)"
  else
    rmdir "$UCG" "$CG/user@65534.service/app.slice" "$CG/user@65534.service" 2>/dev/null
    note "stale's user-unit restart line: not tested (the nested cgroup could not be made)"
  fi
  # A cgroup named by whoever made it (a user's delegated subtree, a
  # container's root) is no unit systemd could have: its name, shell
  # syntax included, must not become a systemctl line to paste. The victim
  # is to be restarted by hand, its cgroup named escaped.
  BCG=$cg_root/'tg-bad;echo PASTED;.service'
  if mkdir "$BCG" 2>/dev/null && echo "$A" 2>/dev/null >"$BCG/cgroup.procs"; then
    out=$("$TG_CMD" stale 2>/dev/null)
    echo "$A" >"$CG/cgroup.procs"
    rmdir "$BCG"
    ! grep -q "systemctl.*PASTED" <<<"$out" && grep -q "^Restart by hand.* pid $A (victim) in tg-bad;echo PASTED;.service" <<<"$out" ||
      fail "stale's summary for a cgroup whose name is no unit name: $out"
    ok "stale: a cgroup named with shell syntax gets no systemctl line (restart by hand)"
  else
    rmdir "$BCG" 2>/dev/null
    note "stale with a cgroup named as no unit: not tested (it could not be made)"
  fi
else
  note "stale's systemctl restart line: not tested (no cgroup can be made here, or the victim moved into one)"
fi

# The victim itself was unharmed by all this.
VICTIM_PID=$A VICTIM_READY=$A_READY VICTIM_OUT=$A_OUT
stop_victim
expect_survived "the victim whose library was replaced"
VICTIM_PID=$B VICTIM_READY=$B_READY
stop_victim

# ------------------------------------- exit statuses, in a namespace of our own
# Outside, other processes (other tests' victims, the host's) may be stale or
# uninspectable: the exit status would depend on them. In a new PID namespace
# (with its own /proc and mount table) we know every process.
if ! unshare --pid --fork --mount-proc true 2>/dev/null; then
  skip "no PID namespace can be made here: the exit statuses 0 and 1 of a complete scan were not checked (the listings above were)"
fi
mkdir -p "$T/ns/d"
cat >"$T/ns/inside.sh" <<'EOF'
#!/bin/bash
# Runs as PID 1 of a new PID namespace: every process here is ours.
set -u
TG_CMD=$1 VICTIM=$2 V1=$3 V2=$4 D=$5 DOC=$6
export TRUNCGUARD_SCOPE=namespace  # the processes outside this namespace don't count
err() { echo "inside: $*" >&2; exit 1; }
expect() {  # expect STATUS CMD...: with -q, the status answers and nothing is printed
  local want=$1 st
  shift
  "$@" >"$D/last.out" 2>&1
  st=$?
  [ "$st" -eq "$want" ] || err "$* exited $st, expected $want: $(cat "$D/last.out")"
  [ ! -s "$D/last.out" ] || err "$* printed something with -q: $(cat "$D/last.out")"
}
victim() {  # victim LIB READY: start, wait until ready
  "$VICTIM" "$1" 20000 "$2" >"$2.out" 2>&1 &
  for ((i = 0; i < 1000; i++)); do [ -e "$2" ] && return 0; sleep 0.01; done
  err "victim on $1 not ready: $(cat "$2.out")"
}
cp "$V1" "$D/lib.so"
expect 0 "$TG_CMD" stale -q
out=$("$TG_CMD" stale 2>&1)
grep -qxE "No process runs code from a replaced or deleted file \([1-9][0-9]* inspected\)\." <<<"$out" ||
  err "stale with nothing stale does not say so: $out"
expect 1 "$TG_CMD" who -q "$D/lib.so"
victim "$D/lib.so" "$D/ready1"
vpid=$!
expect 0 "$TG_CMD" who -q "$D/lib.so"
expect 0 "$TG_CMD" stale -q
"$TG_CMD" cp "$V2" "$D/lib.so" 2>/dev/null || err "truncguard cp failed"
expect 1 "$TG_CMD" stale -q
expect 0 "$TG_CMD" who -q "$D/lib.so"
# The stale victim in a cgroup named as a systemd service (docs/systemd.md,
# "After the deploy"; docs/ci.md's `case` block, run as written, with a
# systemctl that records what it is asked): its unit in the table, the
# "Restart:" line, and the block restarts that unit. Bug: the block ran
# `truncguard stale --json > stale.json` then `case $? in`: under `set -e`
# (the shell step above, GitHub Actions' bash -e) the status 1 of stale
# processes ended the script there, failing the step and restarting nothing.
cg=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
unit=tg-ci-$(basename "$(dirname "$(dirname "$D")")" | tr -c 'a-zA-Z0-9\n' -).service  # ($$ is 1 here)
if [ -n "$cg" ] && mkdir "$cg/$unit" && echo "$vpid" >"$cg/$unit/cgroup.procs"; then
  trap 'kill "$vpid" 2>/dev/null; wait; rmdir "$cg/$unit"' EXIT
  "$TG_CMD" stale >"$D/units.out" 2>&1
  grep -Eq "^$unit +$vpid .* deleted +$D/lib.so\$" "$D/units.out" || err "stale does not list the victim in $unit: $(cat "$D/units.out")"
  grep -qx "1 process runs code from replaced or deleted files." "$D/units.out" && grep -q "^UNIT  *PID  *USER  *COMMAND  *WHY  *FILE$" "$D/units.out" ||
    err "stale's table or count is not as docs/systemd.md shows it: $(cat "$D/units.out")"
  grep -A1 -x "Restart:" "$D/units.out" | grep -qx "  systemctl restart $unit" ||
    err "stale does not say 'systemctl restart $unit': $(cat "$D/units.out")"
  if command -v jq >/dev/null; then
    mkdir -p "$D/stub" "$D/ci"
    printf '#!/bin/sh\necho "$@" >>"%s"\n' "$D/systemctl.args" >"$D/stub/systemctl" && chmod +x "$D/stub/systemctl"
    sed -n '/^\(st=0\|truncguard stale --json > stale.json\)/,/^esac$/p' "$DOC" >"$D/ci/block.sh"
    [ -s "$D/ci/block.sh" ] || err "no 'truncguard stale --json' case block in $DOC"
    (cd "$D/ci" && PATH=$D/stub:$(dirname "$TG_CMD"):$PATH sh -e block.sh) >"$D/ci.out" 2>&1 ||
      err "docs/ci.md's case block failed: $(cat "$D/ci.out")"
    [ "$(cat "$D/systemctl.args" 2>/dev/null)" = "restart $unit" ] ||
      err "docs/ci.md's case block ran systemctl '$(cat "$D/systemctl.args" 2>/dev/null)', expected 'restart $unit'"
    echo "ci.md case block: ok"
  fi
  echo "units: ok"
else
  echo "no cgroup could be made here: stale's units were not checked"
fi
rm -f "$D/ready1"; wait
trap - EXIT
[ -d "$cg/$unit" ] && rmdir "$cg/$unit"
expect 0 "$TG_CMD" stale -q
# A library renamed away (`mv lib.so lib.so.old`) before a new one is put at
# the name: its mapping is named lib.so.old, which is still there, so stale
# does not list it (docs/guarantees.md, "What is not guaranteed"); once
# lib.so.old is removed, it does.
cp "$V1" "$D/mv.so"
victim "$D/mv.so" "$D/ready5"
mv "$D/mv.so" "$D/mv.so.old" && cp "$V2" "$D/mv.so" || err "mv setup"
expect 0 "$TG_CMD" stale -q
rm "$D/mv.so.old"
expect 1 "$TG_CMD" stale -q
rm -f "$D/ready5"; wait
echo "exit statuses: ok"

# A file mounted over the path: the victim's mapping is not "(deleted)",
# but the path now leads to another inode.
if mount --bind "$V2" "$D/lib.so" 2>/dev/null; then
  umount "$D/lib.so"
  cp "$V1" "$D/lib.so"
  victim "$D/lib.so" "$D/ready2"
  mount --bind "$V2" "$D/lib.so" || err "bind mount failed"
  "$TG_CMD" stale >"$D/stale.out" 2>&1
  st=$?
  [ "$st" -eq 1 ] || err "stale with a file mounted over the victim's library exited $st: $(cat "$D/stale.out")"
  grep -Eq " replaced +$D/lib.so\$" "$D/stale.out" || err "stale does not say replaced: $(cat "$D/stale.out")"
  umount "$D/lib.so"
  # A directory mounted over the library's directory: nothing at the path.
  mkdir -p "$D/sub"
  cp "$V1" "$D/sub/lib.so"
  victim "$D/sub/lib.so" "$D/ready3"
  mount -t tmpfs none "$D/sub" || err "tmpfs mount failed"
  "$TG_CMD" stale >"$D/stale.out" 2>&1
  st=$?
  [ "$st" -eq 1 ] || err "stale with the directory hidden exited $st: $(cat "$D/stale.out")"
  grep -Eq " missing +$D/sub/lib.so\$" "$D/stale.out" || err "stale does not say missing: $(cat "$D/stale.out")"
  umount "$D/sub"
  # A file where the library's directory was (the path gives ENOTDIR): missing too.
  mkdir -p "$D/top/sub"
  cp "$V1" "$D/top/sub/lib.so"
  victim "$D/top/sub/lib.so" "$D/ready4"
  mount -t tmpfs none "$D/top" || err "tmpfs mount failed"
  : >"$D/top/sub"
  "$TG_CMD" stale >"$D/stale.out" 2>&1
  st=$?
  [ "$st" -eq 1 ] || err "stale with a file where the library's directory was exited $st: $(cat "$D/stale.out")"
  grep -Eq " missing +$D/top/sub/lib.so\$" "$D/stale.out" || err "stale does not say missing (ENOTDIR): $(cat "$D/stale.out")"
  umount "$D/top"
  rm -f "$D/ready2" "$D/ready3" "$D/ready4"; wait
  echo "replaced and missing: ok"
else
  echo "no bind mount here: the replaced/missing cases were not checked"
fi
EOF
unshare --pid --fork --mount-proc bash "$T/ns/inside.sh" "$TG_CMD" "$TG_VICTIM" "$V1" "$V2" "$T/ns/d" "$SRC/docs/ci.md" >"$T/ns.out" 2>&1 ||
  fail "in a PID namespace of our own: $(cat "$T/ns.out")"
grep -q "exit statuses: ok" "$T/ns.out" || fail "the namespace script did not finish: $(cat "$T/ns.out")"
ok "alone in a PID namespace: stale 0, then 1 after the deploy, 0 when the victim is gone; who 1, then 0; -q prints nothing"
if grep -q "units: ok" "$T/ns.out"; then
  ok "stale: a victim in a cgroup named as a service is listed under its unit, with 'systemctl restart UNIT'"
  grep -q "ci.md case block: ok" "$T/ns.out" && ok "docs/ci.md's 'truncguard stale --json' case block, under sh -e, restarts that unit"
else
  note "$(grep "cgroup" "$T/ns.out")"
fi
if grep -q "replaced and missing: ok" "$T/ns.out"; then
  ok "stale: a file mounted over the path is 'replaced', a directory mounted over it 'missing', a file where its directory was 'missing'"
else
  note "$(tail -n 1 "$T/ns.out")"
fi
