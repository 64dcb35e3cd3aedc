#!/bin/bash
# CI collects what truncguard protected: with --json (TRUNCGUARD_LOG_FORMAT=json)
# every log line is one JSON object with stable field names, file names
# escaped as in the text log, and nothing else on the line.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
command -v python3 >/dev/null || skip "python3 is needed to parse the JSON"

LIB=$T/lib"$(printf 'x\ny')".so
fresh_copy "$V1" "$LIB"
must ln "$LIB" "$T/other-name.so"
start_victim "$LIB"
log_reset
"$TG_CMD" --json --debug=all cp "$V2" "$LIB" || fail "truncguard --json cp failed"
stop_victim
expect_survived "truncguard --json cp"
cat "$TG_LOG".* >"$T/json.log"

python3 - "$T/json.log" "$LIB" "$VICTIM_PID" <<'PY' || fail "the JSON log is not what was expected: $(cat "$T/json.log")"
import json, sys
path, lib, victim = sys.argv[1], sys.argv[2], int(sys.argv[3])
events = [json.loads(line) for line in open(path)]  # every line parses on its own
kinds = [e["event"] for e in events]
assert all(isinstance(e["pid"], int) for e in events), "pid is a number on every line"
def no_null(v):  # a field whose value is unknown is left out, never null (docs/ci.md)
    return v is not None and all(map(no_null, v.values() if isinstance(v, dict) else v if isinstance(v, list) else []))
assert all(map(no_null, events)), [e for e in events if not no_null(e)]
escaped = lib.replace("\n", "\\n")
decision = next(e for e in events if e["event"] == "decision")
assert decision["action"] == "act" and decision["reason"] == "mapped executable", decision
assert decision["file"] == escaped, (decision["file"], escaped)
assert decision["entry"] in ("open", "openat", "open64", "openat64"), decision
r = next(e for e in events if e["event"] == "replaced")
assert r["file"] == escaped and r["mode"] == "replace", r
assert isinstance(r["old_ino"], int) and isinstance(r["new_ino"], int) and r["old_ino"] != r["new_ino"], r
assert r["mapped_by"] == [{"pid": victim, "comm": "victim"}], r["mapped_by"]
assert r["mapped_by_total"] == 1 and r["mapped_by_self"] is False, r
note = next(e for e in events if e["event"] == "note")
assert note["note"] == "hard_links" and "2 hard links" in note["message"], note
bt = next(e for e in events if e["event"] == "backtrace")
assert any(f["object"].endswith("/cp") or "cp" in f["object"] for f in bt["frames"]), bt
assert "file" not in bt and "entry" not in bt, bt  # (man 7: file on every event but warning and backtrace)
print("ok: events", kinds)
PY
ok "every line is a JSON object with the expected fields"

# Text truncguard composed (a warning quoting a bad value) is escaped once, the
# same as in the text log: no doubled backslashes.
env -u TRUNCGUARD_LOG TRUNCGUARD_SCOPE='bad\x' TRUNCGUARD_LOG_FORMAT=json LD_PRELOAD=$TG_SHIM /bin/true 2>"$T/warn.json" ||
  fail "/bin/true failed"
python3 -c '
import json, sys
w = json.loads(open(sys.argv[1]).readline())
assert w["event"] == "warning" and "file" not in w, w
assert "TRUNCGUARD_SCOPE=bad\\\\x (expected" in w["message"], w["message"]
' "$T/warn.json" || fail "the warning is escaped twice in JSON: $(cat "$T/warn.json")"
ok "composed messages are escaped once in JSON, as in the text log"

# A published event's entry is what ended the file: an exit is not a close
# (dash's exec >FILE; cat: no close, _exit; the entry said "close").
fresh_copy "$V1" "$T/atomic.so"
old=$(inode "$T/atomic.so")
rm -f "$T"/atomic.json.*
env TRUNCGUARD_LOG="$T/atomic.json" "$TG_CMD" --json -m atomic --scope=elf dash -c 'exec >"$1"; cat "$2"' _ "$T/atomic.so" "$V2" ||
  fail "dash under truncguard --json -m atomic failed"
cmp -s "$T/atomic.so" "$V2" || fail "dash under -m atomic: the file was not published"
cat "$T"/atomic.json.* | python3 -c '
import json, sys
p = [e for e in map(json.loads, sys.stdin) if e["event"] == "published"]
assert len(p) == 1 and p[0]["entry"] == "exit" and p[0]["mode"] == "atomic", p
assert p[0]["old_ino"] == int(sys.argv[1]) and p[0]["new_ino"] == int(sys.argv[2]), p
' "$old" "$(inode "$T/atomic.so")" || fail "the published event at exit: $(cat "$T"/atomic.json.*)"
ok "a file published at exit is a published event whose entry is exit"

# mapped_by lists up to 8 processes, mapped_by_total counts them all (man 7,
# "THE JSON LOG"). Ten victims.
fresh_copy "$V1" "$T/many.so"
many=()
for i in $(seq 10); do start_victim "$T/many.so"; many+=("$VICTIM_PID:$VICTIM_READY"); done
log_reset
"$TG_CMD" --json cp "$V2" "$T/many.so" || fail "truncguard --json cp of a library ten victims run failed"
for v in "${many[@]}"; do
  VICTIM_PID=${v%%:*} VICTIM_READY=${v#*:}
  stop_victim
  [ "$VICTIM_STATUS" -eq 0 ] || fail "a victim of the library ten processes run $(describe_status "$VICTIM_STATUS")"
done
cat "$TG_LOG".* | python3 -c '
import json, sys
r = [e for e in map(json.loads, sys.stdin) if e["event"] == "replaced"]
assert len(r) == 1, r
r = r[0]
pids = set(int(p) for p in sys.argv[1:])
assert len(r["mapped_by"]) == 8 and r["mapped_by_total"] == 10, r
assert {m["pid"] for m in r["mapped_by"]} <= pids and len({m["pid"] for m in r["mapped_by"]}) == 8, (r, pids)
' "${many[@]%%:*}" || fail "ten victims: mapped_by is not 8 of them with mapped_by_total 10: $(tg_log)"
ok "ten victims: mapped_by lists 8 of them, mapped_by_total says 10"

# scope elf: the reason is "ELF shared object or executable (scope elf)", and
# nobody is listed (nobody was looked for). dry-run: a would_replace without
# new_ino, and the file untouched.
fresh_copy "$V1" "$T/elf.so"
old=$(inode "$T/elf.so")
log_reset
"$TG_CMD" --json --scope=elf cp "$V2" "$T/elf.so" || fail "truncguard --json --scope=elf cp failed"
"$TG_CMD" --json --scope=elf -m dry-run cp "$V1" "$T/elf.so" || fail "truncguard --json -m dry-run cp failed"
new=$(inode "$T/elf.so")
cmp -s "$T/elf.so" "$V1" || fail "the dry-run cp did not write the file"
cat "$TG_LOG".* | python3 -c '
import json, sys
old, new = int(sys.argv[1]), int(sys.argv[2])
e = [json.loads(l) for l in sys.stdin]
r = [x for x in e if x["event"] == "replaced"]
assert len(r) == 1 and r[0]["reason"] == "ELF shared object or executable (scope elf)", r
assert r[0]["old_ino"] == old and r[0]["new_ino"] == new and r[0]["mapped_by"] == [] and r[0]["mapped_by_total"] == 0, r
w = [x for x in e if x["event"] == "would_replace"]
assert len(w) == 1 and w[0]["mode"] == "dry-run" and w[0]["old_ino"] == new and "new_ino" not in w[0], w
assert w[0]["reason"] == "ELF shared object or executable (scope elf)" and w[0]["kept_bytes"] == 0, w
' "$old" "$new" || fail "scope elf / dry-run JSON events: $(tg_log)"
ok "scope elf: reason \"ELF shared object or executable (scope elf)\"; dry-run: would_replace without new_ino"

# A write in place (dd conv=notrunc): kept_bytes is the old content the new
# inode starts with, all of it here.
fresh_copy "$V1" "$T/inplace.so"
log_reset
"$TG_CMD" --json --scope=elf dd if="$V2" of="$T/inplace.so" bs=512 count=1 conv=notrunc status=none ||
  fail "truncguard --json dd conv=notrunc failed"
log_lines '"event":"replaced"' "\"kept_bytes\":$(stat -c %s "$V1")," >/dev/null ||
  fail "dd conv=notrunc: no replaced event with kept_bytes $(stat -c %s "$V1"): $(tg_log)"
ok "a write in place: kept_bytes is the size of the old content"

# A failure is reported in JSON too, with its errno.
need_root "a writer running as nobody (the escaping above was checked)"
chmod 0755 "$T"
# (0755 whatever the umask: under 077 nobody could not reach the file at all)
mkdir -m 0755 "$T/ro" && fresh_copy "$V1" "$T/ro/lib.so" && chmod 0666 "$T/ro/lib.so"
start_victim "$T/ro/lib.so"
log_reset
nobody_copies
as_nobody env LD_PRELOAD="$TG_SHIM_N" TRUNCGUARD_LOG_FORMAT=json TRUNCGUARD_LOG="$TG_LOG" \
  cp "$V2" "$T/ro/lib.so" 2>"$T/cp.err" && fail "cp as nobody into a directory it can't write should fail"
stop_victim
expect_survived "cp as nobody"
cat "$TG_LOG".* | python3 -c '
import json, sys
e = [json.loads(l) for l in sys.stdin]
f = next(x for x in e if x["event"] == "cannot_protect")
assert f["errno"] == 13 and f["error"] == "Permission denied" and f["fallback"] == "etxtbsy", f
assert f["step"] == "cannot create a temporary file in the directory" and "message" not in f, f
' || fail "no cannot_protect JSON event: $(cat "$TG_LOG".*)"
ok "a failure is a cannot_protect object with errno, error, step and fallback"

# nobody replaces a library root's victim runs (a directory nobody may write):
# it can't read root's maps, nor take a lease on a file it does not own, so
# the file counts as in use. The event counts those processes in uninspected
# (the victim among them) and gives the reason (truncguard(7)).
mkdir -m 0777 "$T/open" && fresh_copy "$V1" "$T/open/lib.so" && chmod 0666 "$T/open/lib.so"
start_victim "$T/open/lib.so"
log_reset
as_nobody env LD_PRELOAD="$TG_SHIM_N" TRUNCGUARD_LOG_FORMAT=json TRUNCGUARD_LOG="$TG_LOG" \
  cp "$V2" "$T/open/lib.so" 2>"$T/cp.err" || fail "cp as nobody into a directory it may write failed: $(cat "$T/cp.err")"
stop_victim
expect_survived "cp as nobody over root's victim's library"
cat "$TG_LOG".* | python3 -c '
import json, sys
r = [e for e in map(json.loads, sys.stdin) if e["event"] == "replaced"]
assert len(r) == 1 and r[0]["uninspected"] >= 1 and r[0]["mapped_by"] == [] and r[0]["mapped_by_total"] == 0, r
assert r[0]["reason"] == "some processes could not be inspected: replace unless proven unmapped", r
' || fail "no replaced event counting the uninspected processes: $(tg_log)"
ok "processes the writer can't inspect: uninspected counts them, with its reason"

# The log file can't be opened (a directory that does not exist): the lines go
# to stderr, and so does the warning that says why, as a warning object like
# every other warning in this format (it was a text line among the objects,
# and a reader parsing stderr line by line broke on it).
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
LD_PRELOAD=$TG_SHIM TRUNCGUARD_LOG_FORMAT=json TRUNCGUARD_LOG="$T/no/such/dir/log" cp "$V2" "$LIB" 2>"$T/cp.err" ||
  fail "cp with an unopenable log failed: $(cat -- "$T/cp.err")"
stop_victim
expect_survived "cp with an unopenable JSON log"
python3 - "$T/cp.err" "$T/no/such/dir/log" <<'PY' || fail "stderr is not JSON objects with the warning: $(cat -- "$T/cp.err")"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]  # every line parses on its own
w = next(e for e in events if e["event"] == "warning")
assert w["message"].startswith("cannot open the log file " + sys.argv[2] + ".") and "file" not in w, w
assert w["message"].endswith(": No such file or directory; logging to stderr"), w
assert any(e["event"] == "replaced" for e in events), events
PY
ok "an unopenable log file: the warning and the lines on stderr, each a JSON object"

# mapped_by lists up to 8 processes, mapped_by_total counts them all
# (docs/ci.md's table), and the text line says "and N more".
MANY=$T/libmany.so
fresh_copy "$V1" "$MANY"
pids=() readies=() outs=()
for i in $(seq 10); do start_victim "$MANY"; pids+=("$VICTIM_PID"); readies+=("$VICTIM_READY"); outs+=("$VICTIM_OUT"); done
log_reset
"$TG_CMD" --json cp "$V2" "$MANY" || fail "truncguard --json cp over a library 10 victims run failed"
cat "$TG_LOG".* >"$T/many.json"
for i in $(seq 0 9); do
  VICTIM_PID=${pids[$i]} VICTIM_READY=${readies[$i]} VICTIM_OUT=${outs[$i]}
  stop_victim
  expect_survived "victim $i of 10"
done
python3 - "$T/many.json" "${pids[@]}" <<'PY' || fail "mapped_by with 10 victims: $(cat "$T/many.json")"
import json, sys
pids = set(map(int, sys.argv[2:]))
r = next(e for e in map(json.loads, open(sys.argv[1])) if e["event"] == "replaced")
assert r["mapped_by_total"] == 10 and len(r["mapped_by"]) == 8, r
assert {m["pid"] for m in r["mapped_by"]} <= pids and all(m["comm"] == "victim" for m in r["mapped_by"]), r
PY
ok "10 victims: mapped_by lists 8, mapped_by_total is 10"

# ... and the text line names 8 and says "and N more" of the others: nine
# victims, "and 1 more" (no test read that part of the sentence).
fresh_copy "$V1" "$MANY"
pids=() readies=() outs=()
for i in $(seq 9); do start_victim "$MANY"; pids+=("$VICTIM_PID"); readies+=("$VICTIM_READY"); outs+=("$VICTIM_OUT"); done
log_reset
"$TG_CMD" cp "$V2" "$MANY" || fail "truncguard cp over a library 9 victims run failed"
for i in $(seq 0 8); do
  VICTIM_PID=${pids[$i]} VICTIM_READY=${readies[$i]} VICTIM_OUT=${outs[$i]}
  stop_victim
  expect_survived "victim $i of 9"
done
line=$(log_lines "replaced file=$MANY [ino ") || fail "9 victims: no replaced line: $(tg_log)"
[ "$(grep -o 'pid [0-9]* (victim)' <<<"$line" | grep -c .)" = 8 ] && [[ $line == *"(victim) and 1 more" ]] ||
  fail "9 victims: the replaced line does not name 8 and say \"and 1 more\": $line"
ok "9 victims: the text line names 8 and says \"and 1 more\""
