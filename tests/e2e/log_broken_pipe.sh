#!/bin/bash
# The log goes to stderr, and stderr is a pipe whose reader is gone (a deploy
# run as `deploy 2>&1 | head`, a daemon whose log reader died): the shim's
# line must not kill the writer with SIGPIPE. cp and dd write nothing to
# stderr themselves: without truncguard the copy completes (and the victim
# dies); under truncguard it must complete too, the victim surviving.
# (Before: the writer died of SIGPIPE at the "replaced" line, between the new
# inode and its copy: exit 141 and the library left empty at its name.)
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
LIB=$T/libvictim.so

# with_broken_stderr CMD...: CMD with its stderr a pipe that has no reader.
with_broken_stderr() {
  rm -f "$T/pipe"
  mkfifo "$T/pipe" || fail "mkfifo"
  exec 4<>"$T/pipe" 5>"$T/pipe" 4<&-  # read-write first (no wait), then the reader goes
  "$@" 2>&5
  local st=$?
  exec 5>&-
  return $st
}

with_broken_stderr sh -c 'echo line >&2'
st=$?
[ "$st" -eq 141 ] || fail "control: a line to the broken stderr should kill by SIGPIPE, got $(describe_status "$st")"
ok "control: a write to that stderr kills its writer by SIGPIPE"

# over_victim CMD...: CMD while a victim runs a fresh v1 at LIB; sets ST.
over_victim() {
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  "$@"
  ST=$?
  stop_victim
}

for writer in "cp $V2 $LIB" "dd if=$V2 of=$LIB status=none"; do
  name=${writer%% *}
  over_victim with_broken_stderr $writer
  [ "$ST" -eq 0 ] || fail "control: $name without truncguard $(describe_status "$ST")"
  expect_killed "control: $name without truncguard"

  # The log really goes to stderr here: the line, with a readable stderr.
  over_victim env -u TRUNCGUARD_LOG LD_PRELOAD="$TG_SHIM" $writer 2>"$T/stderr"
  grep -q "replaced file=$LIB " "$T/stderr" || fail "$name: no log line on stderr: $(cat "$T/stderr")"
  ok "$name: with TRUNCGUARD_LOG unset, the \"replaced\" line goes to its stderr"

  over_victim with_broken_stderr env -u TRUNCGUARD_LOG LD_PRELOAD="$TG_SHIM" $writer
  [ "$ST" -eq 0 ] || fail "$name under truncguard, its stderr a broken pipe: $(describe_status "$ST")"
  expect_survived "$name under truncguard, log to a broken stderr"
  expect_same_content "$LIB" "$V2"
  ok "$name: exit 0, the whole new content at the name"
done

# SIGXFSZ, the other signal a write raises: a log file grown to the writer's
# RLIMIT_FSIZE (`ulimit -f`). The next line was refused with EFBIG and raised
# SIGXFSZ, which killed cp ("File size limit exceeded", exit 153) at its
# replaced line, between the new inode and its copy: the library left empty
# at its name. Now cp runs on, the line goes to stderr after a warning.
# The log file FILE.PID is made full beforehand: `exec` keeps the shell's pid.
size=$(stat -c %s -- "$V2")
limit_kib=$(( size / 1024 + 2 ))  # room for the library, none for the log
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
bash -c 'ulimit -f "$1" && head -c $(( $1 * 1024 )) /dev/zero >"$2.$$" &&
  exec env LD_PRELOAD="$3" TRUNCGUARD_LOG="$2" cp "$4" "$5"' _ "$limit_kib" "$T/full-log" "$TG_SHIM" "$V2" "$LIB" 2>"$T/stderr"
ST=$?
stop_victim
[ "$ST" -eq 0 ] || fail "cp, its log file at its RLIMIT_FSIZE: $(describe_status "$ST"): $(cat -- "$T/stderr")"
expect_survived "cp, its log file at its RLIMIT_FSIZE"
expect_same_content "$LIB" "$V2"
grep -q "warning: cannot write the log file $T/full-log\.[0-9]*: File too large; logging to stderr" "$T/stderr" &&
  grep -q "replaced file=$LIB " "$T/stderr" || fail "no warning and replaced line on stderr: $(cat -- "$T/stderr")"
ok "cp, its log file at its RLIMIT_FSIZE: no SIGXFSZ, exit 0, the new content at the name, the line on stderr"

# A program that blocks SIGPIPE itself: the one the line raised is taken
# back (the program never finds pending a SIGPIPE it did not cause), and one
# already pending (its own) is left. Python, SIGPIPE blocked, copies $V2 over
# the library; "own" first sends its thread one, "stderr" writes to its broken
# stderr itself (the control: the check sees a raised one). It prints the
# signals pending at the end.
pending_run() {
  with_broken_stderr env -u TRUNCGUARD_LOG LD_PRELOAD="$TG_SHIM" python3 -c '
import os, signal, sys, threading
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
if sys.argv[1] == "own": signal.pthread_kill(threading.get_ident(), signal.SIGPIPE)
if sys.argv[1] == "stderr":
    try: os.write(2, b"x\n")
    except BrokenPipeError: pass
with open(sys.argv[2], "wb") as f: f.write(open(sys.argv[3], "rb").read())
print(" ".join(sorted(s.name for s in signal.sigpending())) or "none")' "$1" "$LIB" "$V2" >"$T/pending.out"
}
if command -v python3 >/dev/null; then
  for how in none own stderr; do
    over_victim pending_run "$how"
    [ "$ST" -eq 0 ] || fail "python, SIGPIPE blocked ($how), stderr a broken pipe: $(describe_status "$ST")"
    expect_survived "python, SIGPIPE blocked ($how)"
    expect_same_content "$LIB" "$V2"
    want=SIGPIPE
    [ "$how" != none ] || want=none
    [ "$(cat "$T/pending.out")" = "$want" ] ||
      fail "python, SIGPIPE blocked ($how): pending at the end: $(cat "$T/pending.out"), expected $want"
  done
  ok "SIGPIPE blocked by the program: the line's own taken back, the program's own (and one its write raised) left pending"
else
  note "SIGPIPE blocked by the program: skipped (no python3)"
fi
