#!/bin/bash
# Bad settings never break the host program: an unknown value gives one clear
# warning and the default; TRUNCGUARD_DEBUG=help lists the categories and exits
# like LD_DEBUG=help; a log file that can't be opened falls back to stderr.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
unset TRUNCGUARD_LOG
LIB=$T/libvictim.so

# An unknown mode: warned about once, and the default (replace) protects.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
TRUNCGUARD_MODE=bogus LD_PRELOAD=$TG_SHIM cp "$V2" "$LIB" 2>"$T/cp.err" || fail "cp failed: $(cat "$T/cp.err")"
stop_victim
expect_survived "cp with TRUNCGUARD_MODE=bogus"
n=$(grep -c 'warning: unknown TRUNCGUARD_MODE=bogus (expected replace, atomic, unlink or dry-run); using replace' "$T/cp.err")
[ "$n" -eq 1 ] || fail "expected one warning about TRUNCGUARD_MODE, got $n: $(cat "$T/cp.err")"
grep -q "replaced file=$LIB " "$T/cp.err" || fail "no replaced line on stderr: $(cat "$T/cp.err")"
grep -qP '^ {0,9}\d+:\twarning: ' "$T/cp.err" || fail "the warning is not in LD_DEBUG's form"
ok "an unknown mode gives one warning and the default protects"

# A TRUNCGUARD_DEBUG that names no known category (a typo in a systemd
# drop-in) keeps the default categories, as an unknown value of any other
# setting does: the protected write is still logged (it logged nothing but
# the warning). A known word next to an unknown one applies, as in LD_DEBUG.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
TRUNCGUARD_DEBUG=rewrite LD_PRELOAD=$TG_SHIM cp "$V2" "$LIB" 2>"$T/cp.err" || fail "cp failed: $(cat "$T/cp.err")"
stop_victim
expect_survived "cp with TRUNCGUARD_DEBUG=rewrite"
grep -q "debug option \`rewrite' unknown; try TRUNCGUARD_DEBUG=help" "$T/cp.err" ||
  fail "no warning for TRUNCGUARD_DEBUG=rewrite: $(cat "$T/cp.err")"
grep -q "replaced file=$LIB " "$T/cp.err" ||
  fail "TRUNCGUARD_DEBUG=rewrite silenced the default categories: no replaced line: $(cat "$T/cp.err")"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
TRUNCGUARD_DEBUG=rewrite,decisions LD_PRELOAD=$TG_SHIM cp "$V2" "$LIB" 2>"$T/cp.err" || fail "cp failed: $(cat "$T/cp.err")"
stop_victim
expect_survived "cp with TRUNCGUARD_DEBUG=rewrite,decisions"
grep -q "decision file=$LIB: act " "$T/cp.err" || fail "the known word of rewrite,decisions was dropped: $(cat "$T/cp.err")"
grep -q "replaced file=" "$T/cp.err" && fail "rewrite,decisions logged rewrites, which it does not name: $(cat "$T/cp.err")"
ok "a debug list naming no known category keeps the default (the replaced line); known words apply"

# Each bad variable is named; values are escaped (a newline can't forge a line).
TRUNCGUARD_SCOPE=$'sys\ntem' TRUNCGUARD_ON_FAIL=$'\xff' TRUNCGUARD_DEBUG=rewrites,verbose \
  LD_PRELOAD=$TG_SHIM /bin/true 2>"$T/true.err" || fail "/bin/true failed with bad settings"
grep -q 'unknown TRUNCGUARD_SCOPE=sys\\ntem (expected system, namespace, self or elf); using system' "$T/true.err" ||
  fail "no escaped warning for TRUNCGUARD_SCOPE: $(cat "$T/true.err")"
grep -q 'unknown TRUNCGUARD_ON_FAIL=\\xff' "$T/true.err" || fail "no escaped warning for TRUNCGUARD_ON_FAIL"
grep -q "debug option \`verbose' unknown; try TRUNCGUARD_DEBUG=help" "$T/true.err" ||
  fail "no warning for the unknown debug category"
[ "$(wc -l <"$T/true.err")" -eq 3 ] || fail "expected exactly 3 lines: $(cat "$T/true.err")"
ok "every bad setting named once, values escaped"

# Warnings are printed whatever the categories (README, "Settings"), as
# errors are (reliability fail_immutable): TRUNCGUARD_DEBUG=none too.
TRUNCGUARD_DEBUG=none TRUNCGUARD_MODE=bogus LD_PRELOAD=$TG_SHIM /bin/true 2>"$T/none.err" ||
  fail "/bin/true failed with TRUNCGUARD_DEBUG=none TRUNCGUARD_MODE=bogus"
grep -q 'warning: unknown TRUNCGUARD_MODE=bogus' "$T/none.err" && [ "$(wc -l <"$T/none.err")" -eq 1 ] ||
  fail "TRUNCGUARD_DEBUG=none: expected the one warning about TRUNCGUARD_MODE: [$(cat "$T/none.err")]"
ok "TRUNCGUARD_DEBUG=none still prints a warning"

# "one warning line in the log" (truncguard(7)): with TRUNCGUARD_LOG set, in
# FILE.PID like every other line, nothing on stderr.
TRUNCGUARD_LOG=$T/warnlog TRUNCGUARD_MODE=bogus LD_PRELOAD=$TG_SHIM /bin/true 2>"$T/warn.err" ||
  fail "/bin/true failed with TRUNCGUARD_MODE=bogus and a log file"
[ "$(cat "$T"/warnlog.* 2>/dev/null | grep -c 'warning: unknown TRUNCGUARD_MODE=bogus')" -eq 1 ] && [ ! -s "$T/warn.err" ] ||
  fail "TRUNCGUARD_MODE=bogus with TRUNCGUARD_LOG: expected the warning in the log file only; file: [$(cat "$T"/warnlog.* 2>/dev/null)], stderr: [$(cat "$T/warn.err")]"
ok "with TRUNCGUARD_LOG, the warning about a bad setting is in the log file, not on stderr"

# Each unknown debug word gets its warning, as LD_DEBUG=foo,bar gives two
# (only the first was named).
TRUNCGUARD_DEBUG=foo,bar LD_PRELOAD=$TG_SHIM /bin/true 2>"$T/two.err" || fail "/bin/true failed with TRUNCGUARD_DEBUG=foo,bar"
grep -q "debug option \`foo' unknown" "$T/two.err" && grep -q "debug option \`bar' unknown" "$T/two.err" &&
  [ "$(wc -l <"$T/two.err")" -eq 2 ] || fail "TRUNCGUARD_DEBUG=foo,bar: expected a warning for each: $(cat -- "$T/two.err")"
ok "each unknown debug word gets its warning, as in LD_DEBUG"

# A very long value is cut, not overflowed.
TRUNCGUARD_MODE=$(printf 'x%.0s' $(seq 5000)) LD_PRELOAD=$TG_SHIM /bin/true 2>"$T/long.err" ||
  fail "a 5000-character setting broke the program"
grep -q 'unknown TRUNCGUARD_MODE=xxx.*\.\.\. (expected' "$T/long.err" || fail "long value not cut: $(head -c 300 "$T/long.err")"
ok "a 5000-character value is cut short in the warning"

# TRUNCGUARD_DEBUG=help: the list, then exit 0 before main (as LD_DEBUG=help).
out=$(TRUNCGUARD_DEBUG=help LD_PRELOAD=$TG_SHIM /bin/sh -c 'echo main ran' 2>&1)
st=$?
[ $st -eq 0 ] || fail "TRUNCGUARD_DEBUG=help exited $st"
for c in rewrites decisions backtrace all none; do
  echo "$out" | grep -q "^ *[0-9]*:	  $c " || fail "help does not list $c: $out"
done
echo "$out" | grep -q "main ran" && fail "the program ran after TRUNCGUARD_DEBUG=help"
# backtrace also says where a stale library's open handles were opened (the
# README's advice for a stale line); its help line said only protected writes.
echo "$out" | grep -q "^ *[0-9]*:	  backtrace .*where each handle still open on a stale library was opened" ||
  fail "help: the backtrace category does not mention where handles were opened: $out"
# On standard error (truncguard(7)), nothing on standard output.
TRUNCGUARD_DEBUG=help LD_PRELOAD=$TG_SHIM /bin/true >"$T/help.out" 2>"$T/help.err"
[ ! -s "$T/help.out" ] && grep -q "^ *[0-9]*:	  rewrites " "$T/help.err" ||
  fail "TRUNCGUARD_DEBUG=help: expected the list on stderr only; stdout: [$(cat "$T/help.out")], stderr: [$(cat "$T/help.err")]"
ok "TRUNCGUARD_DEBUG=help lists the categories and exits"

# With TRUNCGUARD_LOG set (a unit's or a CI job's environment), the list
# still goes to stderr, as LD_DEBUG=help ignores LD_DEBUG_OUTPUT: it went
# into FILE.PID, and the person who asked saw nothing, the program not run.
out=$(TRUNCGUARD_LOG=$T/helplog TRUNCGUARD_DEBUG=help LD_PRELOAD=$TG_SHIM /bin/sh -c 'echo main ran' 2>&1)
st=$?
[ $st -eq 0 ] || fail "TRUNCGUARD_DEBUG=help with TRUNCGUARD_LOG exited $st"
echo "$out" | grep -q "^ *[0-9]*:	  rewrites " ||
  fail "TRUNCGUARD_DEBUG=help with TRUNCGUARD_LOG printed no list: [$out]; the log file: $(cat "$T"/helplog.* 2>/dev/null)"
ls "$T"/helplog.* >/dev/null 2>&1 && fail "TRUNCGUARD_DEBUG=help wrote into the log file: $(cat "$T"/helplog.*)"
ok "TRUNCGUARD_DEBUG=help with TRUNCGUARD_LOG: the list on stderr, no log file"

# A log file that can't be opened: one warning, the log goes to stderr.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
TRUNCGUARD_LOG=$T/no/such/dir/log LD_PRELOAD=$TG_SHIM cp "$V2" "$LIB" 2>"$T/cp2.err" || fail "cp failed"
stop_victim
expect_survived "cp with an unopenable TRUNCGUARD_LOG"
grep -q "warning: cannot open the log file $T/no/such/dir/log.[0-9]*: No such file or directory; logging to stderr" "$T/cp2.err" ||
  fail "no warning about the log file: $(cat "$T/cp2.err")"
grep -q "replaced file=$LIB " "$T/cp2.err" || fail "the log line did not fall back to stderr"
ok "an unopenable log file falls back to stderr, with one warning"
# One warning per process, not one per line: python copies three times (scope
# elf: each copy protected).
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
TRUNCGUARD_LOG=$T/no/such/dir/log TRUNCGUARD_SCOPE=elf LD_PRELOAD=$TG_SHIM python3 -c '
import sys
for _ in range(3):
    with open(sys.argv[1], "wb") as f: f.write(open(sys.argv[2], "rb").read())' "$LIB" "$V2" 2>"$T/py.err" ||
  fail "python's three copies with an unopenable TRUNCGUARD_LOG failed: $(cat "$T/py.err")"
stop_victim
expect_survived "python's three copies with an unopenable TRUNCGUARD_LOG"
[ "$(grep -c "replaced file=$LIB " "$T/py.err")" -eq 3 ] && [ "$(grep -c 'cannot open the log file' "$T/py.err")" -eq 1 ] ||
  fail "three copies, an unopenable log file: expected three lines on stderr after one warning: $(cat "$T/py.err")"
ok "three lines of one process, an unopenable log file: all on stderr, after one warning"

# planted_log WHAT PLANT ERROR: someone who may write the log's directory put
# something at FILE.PID (PLANT: a command line for bash, given that name as
# $1, and $T/precious as $P): the writer (cp, under a time limit) still protects the victim, the
# lines go to stderr after one warning ending in ERROR, and $T/precious,
# the file some plants point to, is unchanged.
planted_log() {
  local what=$1 plant=$2 err=$3
  fresh_copy "$V1" "$LIB"
  echo "precious" >"$T/precious"
  start_victim "$LIB"
  P=$T/precious timeout 20 bash -c 'set -- "$1.$$" "$@"; '"$plant"' || exit 99
    exec env TRUNCGUARD_LOG="$2" LD_PRELOAD="$3" cp "$4" "$5"' _ "$T/trap" "$TG_SHIM" "$V2" "$LIB" 2>"$T/cp3.err"
  local st=$?
  [ "$st" -ne 124 ] || fail "cp hung with $what at the log's name"
  [ "$st" -eq 0 ] || fail "cp failed (exit $st): $(cat "$T/cp3.err")"
  stop_victim
  expect_survived "cp with $what at the log's name"
  [ "$(cat "$T/precious")" = "precious" ] || fail "the log was written into another file through $what"
  grep -q "warning: cannot open the log file $T/trap.[0-9]*: $err; logging to stderr" "$T/cp3.err" ||
    fail "no warning about $what at the log's name: $(cat "$T/cp3.err")"
  grep -q "replaced file=$LIB " "$T/cp3.err" || fail "the log line did not fall back to stderr"
  ok "$what at the log's name: one warning, the log on stderr"
  rm -f "$T"/trap.*
}
# Never through a symlink (O_NOFOLLOW), as LD_DEBUG_OUTPUT.
planted_log "a symlink" 'ln -s "$P" "$1"' "Too many levels of symbolic links"
# A FIFO blocked the open until someone read it: the writer hung; with its
# reader there, the lines went to whoever reads it.
planted_log "a FIFO" 'mkfifo "$1"' "No such device or address"
planted_log "a FIFO with a reader" 'mkfifo "$1" && exec 3<>"$1"' "not a regular file with one name"
# A hard link (made by root here; by anyone where fs.protected_hardlinks is
# off) sent the lines into the other name's file.
planted_log "a hard link" 'ln "$P" "$1"' "not a regular file with one name"
