#!/bin/bash
# The CI snippets of docs/ci.md, run for real, and the JSON log as CI reads it:
#  - examples/ci/deploy-step.sh wraps a deploy (cp over two libraries that
#    victims run, one with a newline and a non-UTF-8 byte in its name, one
#    with a second hard link): the victims live, the step succeeds, the
#    summary names both files;
#  - every line of the JSON log parses on its own, with the documented
#    field names and types, and the odd name spelled as in the text log;
#  - examples/ci/truncguard-summary.py exits 1 on a cannot_protect event,
#    2 on a line that is not JSON, and skips text lines;
#  - examples/ci/github-actions.yml's "truncguard stale" step passes on exit
#    statuses 0, 1 and 3 and fails on 2, as its comment says;
#  - examples/ci/Makefile's install rule protects a victim of the installed
#    library (when make is installed).
. "$(dirname "$0")/../e2e/lib.sh"
need_victims
need_shim
command -v python3 >/dev/null || skip "python3 is needed to parse the JSON log"
SRC=${TG_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
EX=$SRC/examples/ci

# truncguard on PATH, as a CI runner would have it (the library next to it).
mkdir -p "$T/bin"
cp "$TG_CMD" "$TG_SHIM" "$T/bin/" || fail "cannot copy the command"
export PATH=$T/bin:$PATH

mkdir -p "$T/app/lib"
LIB=$T/app/lib/libfoo.so
ODD=$T/app/lib/$(printf 'libodd\n\377.so')
fresh_copy "$V1" "$LIB"
fresh_copy "$V1" "$ODD"
must ln "$LIB" "$T/app/lib/libfoo-link.so"
start_victim "$LIB"
A=$VICTIM_PID A_READY=$VICTIM_READY A_OUT=$VICTIM_OUT
start_victim "$ODD"
B=$VICTIM_PID B_READY=$VICTIM_READY B_OUT=$VICTIM_OUT

out=$(cd "$T" && TG_LOG_DIR=$T/ci-log sh "$EX/deploy-step.sh" \
        sh -c 'cp "$1" "$2" && cp "$1" "$3"' deploy "$V2" "$LIB" "$ODD" 2>&1)
st=$?
[ "$st" -eq 0 ] || fail "deploy-step.sh exited $st: $out"
grep -q "truncguard: 2 file(s) protected, 0 write(s) could not be protected" <<<"$out" ||
  fail "the summary does not count 2 protected files: $out"
grep -qF '`'"$LIB"'`' <<<"$out" || fail "the summary table does not name $LIB: $out"
grep -qF 'libodd\n\xff.so' <<<"$out" || fail "the summary does not name the odd file, escaped: $out"
grep -q "^| file | mode | inode | running it |" <<<"$out" || fail "the summary has no table: $out"
ok "deploy-step.sh: exit 0, summary: $(head -n 1 <<<"$out")"

# A deploy that needs no protection (no process runs what it writes) logs
# nothing, so no tg.PID file is made and the shell passes the pattern tg.*
# as it is: the step passes, and the summary says nothing was protected
# (it failed the step, exit 2: "cannot read .../tg.*").
fresh_copy "$V1" "$T/app/lib/libunused.so"
out=$(cd "$T" && TG_LOG_DIR=$T/quiet-log sh "$EX/deploy-step.sh" cp "$V2" "$T/app/lib/libunused.so" 2>&1)
st=$?
[ "$st" -eq 0 ] || fail "deploy-step.sh of an unused library exited $st: $out"
ls "$T"/quiet-log/tg.* >/dev/null 2>&1 && fail "the deploy of an unused library logged: $(cat "$T"/quiet-log/tg.*)"
grep -q "truncguard: 0 file(s) protected, 0 write(s) could not be protected" <<<"$out" ||
  fail "the summary of a deploy without a log: $out"
cmp -s "$V2" "$T/app/lib/libunused.so" || fail "the deploy did not write the unused library"
ok "deploy-step.sh of a library nobody runs: no log file, exit 0, summary: $(head -n 1 <<<"$out")"

VICTIM_PID=$A VICTIM_READY=$A_READY VICTIM_OUT=$A_OUT
stop_victim
expect_survived "the victim of libfoo.so"
VICTIM_PID=$B VICTIM_READY=$B_READY VICTIM_OUT=$B_OUT
stop_victim
expect_survived "the victim of the odd name"

# A log directory that can't be written: each process warns "cannot open the
# log file" and logs to its stderr. The summary counted nothing there and said
# "0 file(s) protected, 0 write(s) could not be protected", exit 0, whatever
# happened (with --on-fail=truncate, writes left unprotected went unseen).
# Now it says the log could not be written (exit 2), and deploy-step.sh
# stops before deploying.
mkdir -p "$T/ro-log"
if [ "$(id -u)" -eq 0 ]; then chattr +i "$T/ro-log" 2>/dev/null; else chmod 555 "$T/ro-log"; fi
if : >"$T/ro-log/probe" 2>/dev/null; then
  rm -f "$T/ro-log/probe"
  note "cannot make a directory that can't be written here: the unwritable log directory is not tested"
else
  ROLIB=$T/app/lib/libro.so
  fresh_copy "$V1" "$ROLIB"
  start_victim "$ROLIB"
  truncguard --json --log="$T/ro-log/tg" cp "$V2" "$ROLIB" 2>"$T/ro.err"
  st=$?
  out=$(python3 "$EX/truncguard-summary.py" "$T"/ro-log/tg.* 2>&1)
  sum_st=$?
  fresh_copy "$V1" "$T/app/lib/libro-deploy.so"
  step=$(cd "$T" && TG_LOG_DIR=$T/ro-log sh "$EX/deploy-step.sh" cp "$V2" "$T/app/lib/libro-deploy.so" 2>&1)
  step_st=$?
  chattr -i "$T/ro-log" 2>/dev/null; chmod 755 "$T/ro-log"
  stop_victim
  [ "$st" -eq 0 ] || fail "truncguard cp with an unwritable log directory exited $st: $(cat "$T/ro.err")"
  expect_survived "the victim of a deploy whose log could not be written"
  grep -q '"event":"replaced"' "$T/ro.err" || fail "the replaced line did not go to stderr: $(cat "$T/ro.err")"
  [ "$sum_st" -eq 2 ] || fail "the summary of a log that could not be written exited $sum_st, expected 2: $out"
  grep -q "^truncguard: the log could not be written ($T/ro-log can't be written)" <<<"$out" ||
    fail "the summary does not say the log could not be written: $out"
  ok "a log directory that can't be written: the summary says so, exit 2: $(head -n 1 <<<"$out")"
  [ "$step_st" -ne 0 ] || fail "deploy-step.sh with an unwritable log directory exited 0: $step"
  grep -q "cannot write the log directory $T/ro-log: not deploying" <<<"$step" || fail "deploy-step.sh does not say why: $step"
  cmp -s "$V1" "$T/app/lib/libro-deploy.so" || fail "deploy-step.sh deployed without a log"
  ok "deploy-step.sh with a log directory that can't be written: stops before deploying, says why"
fi

cat "$T"/ci-log/tg.* >"$T/all.json" || fail "deploy-step.sh left no log in $T/ci-log"
python3 - "$T/all.json" "$LIB" "$T/app/lib" "$A" "$B" <<'PY' || fail "the JSON log does not match the documented fields: $(cat "$T/all.json")"
import json, sys
path, lib, libdir, a, b = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
raw = open(path, "rb").read()
raw.decode("utf-8")                      # valid UTF-8 throughout
assert b"\t" not in raw and b"\x1b" not in raw
events = [json.loads(line) for line in raw.decode().splitlines()]   # one object per line
kinds = {"decision", "replaced", "would_replace", "published", "cannot_protect", "note", "warning", "backtrace"}
for e in events:
    assert isinstance(e, dict) and isinstance(e["pid"], int) and e["event"] in kinds, e
replaced = [e for e in events if e["event"] == "replaced"]
assert len(replaced) == 2, replaced
types = {"pid": int, "event": str, "file": str, "entry": str, "mode": str, "old_ino": int, "new_ino": int,
         "kept_bytes": int, "reason": str, "mapped_by_self": bool, "mapped_by": list,
         "mapped_by_total": int, "uninspected": int}
for e in replaced:
    for k, t in types.items():
        assert isinstance(e[k], t), (k, e)
    assert e["mode"] == "replace" and e["old_ino"] != e["new_ino"] and e["reason"] == "mapped executable", e
    assert e["entry"] in ("open", "openat", "open64", "openat64"), e
    for m in e["mapped_by"]:
        assert set(m) == {"pid", "comm"} and isinstance(m["pid"], int), m
by_file = {e["file"]: e for e in replaced}
assert by_file[lib]["mapped_by"] == [{"pid": a, "comm": "victim"}], by_file[lib]
odd = libdir + "/libodd\\n\\xff.so"     # escaped as in the text log: backslash-n, backslash-x-f-f
assert by_file[odd]["mapped_by"] == [{"pid": b, "comm": "victim"}], sorted(by_file)
note = [e for e in events if e["event"] == "note"]
assert any(n["note"] == "hard_links" and n["file"] == lib and isinstance(n["message"], str) for n in note), note
print("ok: %d JSON lines, all objects with the documented fields" % len(events))
PY
ok "the JSON log: one object per line, documented fields and types, names escaped as in the text log"

# docs/ci.md's jq lines ("What a CI job usually wants"), run as written in
# the log directory; and docs/systemd.md's journal filter on that log mixed
# with a program's own output (as the journal holds stderr).
if command -v jq >/dev/null; then
  mapfile -t jqs < <(grep -oP '^  \Kcat tg\.\* \| jq .*' "$SRC/docs/ci.md")
  [ "${#jqs[@]}" -eq 3 ] || fail "docs/ci.md has ${#jqs[@]} 'cat tg.* | jq' lines, expected 3"
  out=$(cd "$T/ci-log" && sh -c "${jqs[0]}") || fail "${jqs[0]} failed"
  [ "$(jq -c 'keys' <<<"$out" | sort -u)" = '["file","mapped_by","new_ino","old_ino"]' ] && [ "$(wc -l <<<"$out")" -eq 2 ] &&
    grep -qF "\"file\":\"$LIB\"" <<<"$out" || fail "${jqs[0]}: $out"
  out=$(cd "$T/ci-log" && sh -c "${jqs[1]}")
  [ -z "$out" ] || fail "${jqs[1]} with nothing unprotected: $out"
  mkdir -p "$T/failed-log" && cp "$T/all.json" "$T/failed-log/tg.1" &&
    printf '%s\n' '{"pid":1,"event":"cannot_protect","file":"/x.so"}' >"$T/failed-log/tg.2" || fail "cannot write $T/failed-log"
  out=$(cd "$T/failed-log" && sh -c "${jqs[1]}")
  [ "$out" = "some writes were NOT protected" ] || fail "${jqs[1]} with a cannot_protect line: '$out'"
  out=$(cd "$T/ci-log" && sh -c "${jqs[2]}")
  [ "$out" = "$(printf '%s\n' "$A" "$B" | sort -u)" ] || fail "${jqs[2]}: '$out', expected the victims $A and $B"
  journal=$(grep -m1 -oP 'journalctl -u app-deploy.service -o cat \| \Kjq .*"replaced"\)'"'" "$SRC/docs/systemd.md")
  [ -n "$journal" ] || fail "no journal filter for replaced lines in docs/systemd.md"
  out=$({ echo "the program's own line"; echo '{not json'; cat "$T/all.json"; echo 42; } | sh -c "$journal" 2>&1)
  st=$?
  [ "$st" -eq 0 ] && [ "$(wc -l <<<"$out")" -eq 2 ] && [ "$(jq -r .event <<<"$out" | sort -u)" = replaced ] ||
    fail "docs/systemd.md's '$journal' on mixed output: $out"
  # The whole block, as a step under bash -eo pipefail (GitHub's shell: bash):
  # with no log (nothing protected) it passes and prints nothing; with a log,
  # what its lines print. (The lines alone failed: cat of the bare pattern.)
  block=$(sed -n '/^if ls tg\.\* /,/^fi$/p' "$SRC/docs/ci.md")
  [ "$(wc -l <<<"$block")" -eq 5 ] || fail "docs/ci.md's jq block is not the if ... fi of 5 lines: $block"
  mkdir -p "$T/no-log"
  out=$(cd "$T/no-log" && bash -eo pipefail -c "$block" 2>&1) && [ -z "$out" ] ||
    fail "docs/ci.md's jq block with no log fails a pipefail step or prints: $out"
  out=$(cd "$T/ci-log" && bash -eo pipefail -c "$block" 2>&1) && grep -qF "\"file\":\"$LIB\"" <<<"$out" ||
    fail "docs/ci.md's jq block with a log: $out"
  # truncguard(1)'s line, the same way.
  man1=$(grep -oP '^if ls truncguard\.\* .*' "$SRC/man/truncguard.1.in" | sed 's/\\-/-/g')
  [ -n "$man1" ] || fail "no jq line in truncguard(1)"
  out=$(cd "$T/no-log" && bash -eo pipefail -c "$man1" 2>&1) && [ -z "$out" ] ||
    fail "truncguard(1)'s jq line with no log fails a pipefail step or prints: $out"
  mkdir -p "$T/man1-log" && cp "$T/all.json" "$T/man1-log/truncguard.1" || fail "cannot write $T/man1-log"
  out=$(cd "$T/man1-log" && bash -eo pipefail -c "$man1" 2>&1) && grep -qF '"event":"replaced"' <<<"$out" ||
    fail "truncguard(1)'s jq line with a log: $out"
  ok "docs/ci.md's three jq lines and docs/systemd.md's journal filter, run as written, give what they say; the block and truncguard(1)'s line pass a pipefail step with no log"
else
  note "jq is not installed: docs/ci.md's jq lines were not run"
fi

# The summary's exit statuses.
printf '%s\n' '{"pid":1,"event":"cannot_protect","file":"/x.so","entry":"openat","step":"cannot create a temporary file in the directory","error":"Permission denied","errno":13,"fallback":"etxtbsy"}' \
  '      7:	a text line' >"$T/failed.json"
out=$(python3 "$EX/truncguard-summary.py" "$T/failed.json")
st=$?
[ "$st" -eq 1 ] || fail "the summary of a log with cannot_protect exited $st, expected 1: $out"
grep -q "NOT PROTECTED: /x.so: cannot create a temporary file in the directory: Permission denied" <<<"$out" ||
  fail "the summary does not show the failure: $out"
grep -q "1 line(s) that are not JSON skipped" <<<"$out" || fail "the summary does not count the text line: $out"
echo '{"pid":1,"event":' >"$T/broken.json"
python3 "$EX/truncguard-summary.py" "$T/broken.json" >/dev/null 2>"$T/err"
st=$?
[ "$st" -eq 2 ] || fail "the summary of a broken line exited $st, expected 2"
grep -q "not JSON" "$T/err" || fail "the summary does not say the line is not JSON: $(cat "$T/err")"
# Its docstring: a log that can't be read is exit 2; "-" or no argument reads
# standard input; a dry run's row has no new inode, and a row names how many
# more processes run the file than mapped_by lists.
python3 "$EX/truncguard-summary.py" "$T/no-such.json" >/dev/null 2>"$T/err"
st=$?
[ "$st" -eq 2 ] && grep -q "cannot read $T/no-such.json: No such file or directory" "$T/err" ||
  fail "the summary of a log that can't be read: exit $st, $(cat "$T/err")"
printf '%s\n' '{"pid":1,"event":"would_replace","file":"/d.so","entry":"openat","mode":"dry-run","old_ino":7,"kept_bytes":0,"reason":"mapped executable","mapped_by_self":false,"mapped_by":[{"pid":5,"comm":"v"}],"mapped_by_total":3}' >"$T/dry.json"
for how in - none; do
  args=(-); [ "$how" = none ] && args=()
  out=$(python3 "$EX/truncguard-summary.py" "${args[@]}" <"$T/dry.json")
  st=$?
  [ "$st" -eq 0 ] && grep -qxF '| `/d.so` | dry-run | 7 -> (dry run) | 5 (v) and 2 more |' <<<"$out" ||
    fail "the summary of a dry run on standard input ($how): exit $st, $out"
done
ok "truncguard-summary.py: exit 1 on cannot_protect, 2 on broken JSON or a log it can't read, text lines skipped; standard input with - or no argument; a dry run's row"

# The GitHub Actions job's "What to restart" step, as the runner runs it
# (bash -e -o pipefail), with a truncguard that exits each status: 1 (stale
# processes) and 3 (some not inspected) pass, as the step's comment says, and
# 2 (an error) fails the job.
step=$(grep -oP '^\s*run: \K.*truncguard stale.*' "$EX/github-actions.yml")
[ -n "$step" ] || fail "no 'truncguard stale' step in examples/ci/github-actions.yml"
mkdir -p "$T/stub"
for status in 0 1 2 3; do
  printf '#!/bin/sh\nexit %s\n' "$status" >"$T/stub/truncguard" && chmod +x "$T/stub/truncguard" ||
    fail "cannot write a stub truncguard"
  if PATH=$T/stub:$PATH bash --noprofile --norc -eo pipefail -c "$step" >/dev/null 2>&1; then got=pass; else got=fail; fi
  want=pass
  [ "$status" = 2 ] && want=fail
  [ "$got" = "$want" ] ||
    fail "github-actions.yml's step '$step' should $want the job when truncguard stale exits $status; it did not"
done
ok "github-actions.yml: 'truncguard stale' statuses 0, 1 and 3 pass the step, 2 fails it"

# truncguard(7)'s EXAMPLES, "What a CI job protected", as written, in a step
# run as GitHub Actions runs it (bash -e -o pipefail): it names the library a
# victim runs, and where nothing needed protection (no log file) it prints
# nothing and passes (it ran jq on the pattern tg.* itself: "Could not open
# file", exit 2, the job failed).
if command -v make >/dev/null && command -v jq >/dev/null; then
  snippet=$(sed -e 's/\\-/-/g' "$SRC/man/truncguard.7.in" | sed -n '/^What a CI job protected/,/^\.fi/p' | sed -e '1,2d' -e '$d')
  [ "$(wc -l <<<"$snippet")" -eq 2 ] && grep -q '^truncguard --json' <<<"$snippet" ||
    fail "cannot find the CI example of truncguard(7): $snippet"
  mkdir -p "$T/man-ci"
  printf 'install:\n\tcp new.so libapp.so\n' >"$T/man-ci/Makefile"
  cp "$V2" "$T/man-ci/new.so" && cp "$V1" "$T/man-ci/libapp.so" || fail "setup: man-ci"
  start_victim "$T/man-ci/libapp.so"
  out=$(cd "$T/man-ci" && bash --noprofile --norc -eo pipefail -c "$snippet" 2>&1)
  st=$?
  stop_victim
  expect_survived "the victim of truncguard(7)'s CI example"
  [ "$st" -eq 0 ] && [ "$(tail -n 1 <<<"$out")" = libapp.so ] ||
    fail "truncguard(7)'s CI example exited $st, printed: $out (expected libapp.so)"
  rm -f "$T"/man-ci/tg.*
  out=$(cd "$T/man-ci" && bash --noprofile --norc -eo pipefail -c "$snippet" 2>&1)
  st=$?
  [ "$st" -eq 0 ] || fail "truncguard(7)'s CI example with nothing to protect exited $st: $out"
  ls "$T"/man-ci/tg.* >/dev/null 2>&1 && fail "a make install that protected nothing logged: $(cat "$T"/man-ci/tg.*)"
  [ "$out" = "cp new.so libapp.so" ] || fail "truncguard(7)'s CI example with nothing to protect printed: $out"
  ok "truncguard(7)'s CI example: names the library protected; nothing protected, no log: exit 0, nothing printed"
else
  note "make or jq is not installed: truncguard(7)'s CI example was not run"
fi

# The Makefile install rule, for real: a victim runs the installed library.
if ! command -v make >/dev/null; then
  note "make is not installed: the Makefile example was not run"
  exit 0
fi
mkdir -p "$T/mk"
cp "$EX/Makefile" "$T/mk/Makefile"
cp "$V1" "$T/mk/libapp.so"
cp "$TG_VICTIM" "$T/mk/app"
make -s -C "$T/mk" install DESTDIR="$T/stage" PREFIX=/usr TRUNCGUARD= >"$T/make.out" 2>&1 ||
  fail "make install (first, plain) failed: $(cat "$T/make.out")"
start_victim "$T/stage/usr/lib/libapp.so"
old=$(inode "$T/stage/usr/lib/libapp.so")
cp "$V2" "$T/mk/libapp.so"
# TRUNCGUARD_FLAGS as docs/ci.md writes it: $(CURDIR) is make's, a JSON log there.
make -s -C "$T/mk" install DESTDIR="$T/stage" PREFIX=/usr TRUNCGUARD_FLAGS='--json --log=$(CURDIR)/tg' >"$T/make.out" 2>&1 ||
  fail "make install under truncguard failed: $(cat "$T/make.out")"
stop_victim
expect_survived "the victim of the library make install replaced"
[ "$(inode "$T/stage/usr/lib/libapp.so")" != "$old" ] || fail "make install truncated the installed library in place"
grep -qF "\"event\":\"replaced\",\"file\":\"$T/stage/usr/lib/libapp.so\"" "$T"/mk/tg.* 2>/dev/null ||
  fail "make install TRUNCGUARD_FLAGS='--json --log=\$(CURDIR)/tg' left no JSON replaced line in $T/mk/tg.*: $(ls "$T/mk")"
expect_version "$T/stage/usr/lib/libapp.so" 2
ok "examples/ci/Makefile: make install protects the running victim, its JSON log in \$(CURDIR)/tg.PID"
# make install TRUNCGUARD= turns it off (docs/ci.md): the victim dies, as with a plain cp.
cp "$V1" "$T/mk/libapp.so"
make -s -C "$T/mk" install DESTDIR="$T/stage" PREFIX=/usr TRUNCGUARD= >"$T/make.out" 2>&1 || fail "make install TRUNCGUARD= failed: $(cat "$T/make.out")"
start_victim "$T/stage/usr/lib/libapp.so"
cp "$V2" "$T/mk/libapp.so"
make -s -C "$T/mk" install DESTDIR="$T/stage" PREFIX=/usr TRUNCGUARD= >"$T/make.out" 2>&1 || fail "make install TRUNCGUARD= failed: $(cat "$T/make.out")"
stop_victim
expect_killed "make install TRUNCGUARD= (truncguard off)"
