#!/bin/bash
# The truncguard command itself: help and version, clear errors for bad
# usage, the wrapped command's exit status passed through unchanged, and
# every option turned into the environment setting the shim reads.
. "$(dirname "$0")/lib.sh"
need_shim

# --help: exit 0 and every option documented.
help=$("$TG_CMD" --help 2>&1) || fail "truncguard --help exited $?"
for opt in --scope --mode --on-fail --debug --log --help --version; do
  grep -q -- "$opt" <<<"$help" || fail "--help does not mention $opt"
done
ok "--help mentions every option"

# --version
ver=$("$TG_CMD" --version 2>&1) || fail "truncguard --version exited $?"
grep -Eq '[0-9]+\.[0-9]+' <<<"$ver" || fail "--version prints no version number: $ver"
ok "--version: $ver"
# The short forms (truncguard(1)): -h and -V print what --help and --version do.
[ "$("$TG_CMD" -h 2>&1)" = "$help" ] || fail "truncguard -h does not print the --help text (exit $?)"
[ "$("$TG_CMD" -V 2>&1)" = "$ver" ] || fail "truncguard -V does not print the version (exit $?)"
ok "-h and -V: the same as --help and --version"

# --debug=help: the categories on stdout, exit 0, with or without a command
# (which is not run), as LD_DEBUG=help.
for cmd in "" "touch $T/ran"; do
  out=$("$TG_CMD" --debug=help $cmd 2>"$T/help.err")
  st=$?
  [ "$st" -eq 0 ] || fail "truncguard --debug=help${cmd:+ $cmd} exited $st: $(cat "$T/help.err")"
  for cat in rewrites reloads decisions backtrace bindings files; do
    grep -q "^  $cat " <<<"$out" || fail "truncguard --debug=help${cmd:+ $cmd} does not list $cat on stdout: $out"
  done
  [ -e "$T/ran" ] && fail "truncguard --debug=help $cmd ran the command"
done
ok "--debug=help lists the categories on stdout and exits 0, without running the command"

# The wrapped command's exit status, and its death by a signal, pass through.
"$TG_CMD" sh -c 'exit 7'
st=$?
[ "$st" -eq 7 ] || fail "truncguard sh -c 'exit 7' exited $st"
"$TG_CMD" sh -c 'kill -TERM $$'
st=$?
[ "$st" -eq $((128 + 15)) ] || fail "a wrapped command killed by SIGTERM gave $(describe_status $st)"
"$TG_CMD" true || fail "truncguard true exited $?"
ok "exit statuses pass through"

# Unknown option: non-zero, and the message names the option.
err=$("$TG_CMD" --bogus-option true 2>&1) && fail "truncguard --bogus-option true succeeded"
grep -q -- "--bogus-option" <<<"$err" || fail "the error for an unknown option does not name it: $err"
ok "unknown option: $err"

# A bad value for a known option.
err=$("$TG_CMD" --mode=bogus-mode true 2>&1) && fail "truncguard --mode=bogus-mode true succeeded"
grep -q -- "bogus-mode" <<<"$err" || fail "the error for --mode=bogus-mode does not name the value: $err"
ok "bad value: $err"

# No command: a usage error, not a crash or a silent success.
err=$("$TG_CMD" 2>&1) && fail "truncguard without a command succeeded"
st=$?
[ "$st" -lt 128 ] || fail "truncguard without a command $(describe_status $st)"
# A usage message, or a one-line error pointing to --help (GNU style).
grep -Eqi "usage|--help" <<<"$err" || fail "truncguard without a command gives no usage message: $err"
# ... that says what is missing (truncguard(1): 125 for a usage error).
[ "$st" -eq 125 ] && grep -qF "no command given: name the command to run" <<<"$err" ||
  fail "truncguard without a command: exit $st, $err"
ok "no command: exit $st, $err"
# --log with an empty name (--log="$UNSET"): a usage error, nothing run.
err=$("$TG_CMD" --log= touch "$T/ran" 2>&1)
st=$?
[ "$st" -eq 125 ] && [ ! -e "$T/ran" ] && grep -qF -- "--log needs a file name" <<<"$err" ||
  fail "truncguard --log= touch: exit $st, $err"
# A relative --log from a directory since removed can't be made absolute.
mkdir "$T/gone"
err=$(cd "$T/gone" && rmdir "$T/gone" && "$TG_CMD" --log=x touch "$T/ran" 2>&1)
st=$?
[ "$st" -eq 125 ] && [ ! -e "$T/ran" ] && grep -qF -- "cannot resolve --log 'x': No such file or directory" <<<"$err" ||
  fail "truncguard --log=x in a removed directory: exit $st, $err"
ok "--log with an empty name, and a relative one in a removed directory: 125, nothing run"

# A command that does not exist: non-zero, and the message names it.
err=$("$TG_CMD" /nonexistent/tg-no-such-command 2>&1) && fail "a missing command succeeded"
grep -q "tg-no-such-command" <<<"$err" || fail "the error for a missing command does not name it: $err"
ok "missing command: $err"

# "--" ends the options: a command that looks like an option.
printf '#!/bin/sh\necho dashed ran\n' >"$T/--mode=x"
chmod 755 "$T/--mode=x"
out=$(cd "$T" && PATH=$T:$PATH "$TG_CMD" -- --mode=x 2>&1) || fail "truncguard -- --mode=x failed: $out"
[ "$out" = "dashed ran" ] || fail "truncguard -- --mode=x printed: $out"
ok "-- ends the options"

# Every option sets the environment the shim reads.
env_of() { "$TG_CMD" "$@" env | grep '^TRUNCGUARD_'; }
check_env() {
  local want=$1 got
  shift
  got=$(env_of "$@") || fail "truncguard $* env failed or set no TRUNCGUARD_ variable"
  grep -qxF -- "$want" <<<"$got" || fail "truncguard $* env: \"$want\" not in: $got"
}
check_env TRUNCGUARD_SCOPE=self --scope=self
check_env TRUNCGUARD_SCOPE=elf --scope=elf
check_env TRUNCGUARD_MODE=unlink --mode=unlink
check_env TRUNCGUARD_MODE=dry-run --mode=dry-run
check_env TRUNCGUARD_ON_FAIL=truncate --on-fail=truncate
check_env TRUNCGUARD_DEBUG=decisions --debug=decisions
check_env "TRUNCGUARD_LOG=$T/cmdlog" --log="$T/cmdlog"
check_env TRUNCGUARD_MODE=unlink --scope=elf --mode=unlink
check_env TRUNCGUARD_SCOPE=elf --scope=elf --mode=unlink
check_env TRUNCGUARD_SCOPE=namespace --scope=namespace
check_env TRUNCGUARD_RELOAD=fresh --reload=fresh
check_env TRUNCGUARD_LOG_FORMAT=json --log-format=json
check_env TRUNCGUARD_LOG_FORMAT=json --json
# The short forms (README, "Settings").
check_env TRUNCGUARD_SCOPE=self -s self
check_env TRUNCGUARD_MODE=atomic -m atomic
check_env TRUNCGUARD_DEBUG=files -d files
check_env "TRUNCGUARD_LOG=$T/cmdlog" -l "$T/cmdlog"
ok "options set TRUNCGUARD_SCOPE, _MODE, _ON_FAIL, _RELOAD, _DEBUG, _LOG_FORMAT, _LOG, in long and short forms"

# And the child really runs with the shim preloaded.
grep -q "libtruncguard\.so" <<<"$("$TG_CMD" cat /proc/self/maps)" ||
  fail "the shim is not mapped in the wrapped command"
ok "the wrapped command has the shim loaded"

# A library of another version than the command (a command copied without
# its library, which found an older one installed; an install half
# upgraded): the settings the command passes may be unknown to it, and each
# process said so alone, in the library's words, without saying why (an
# older library: "unknown TRUNCGUARD_SCOPE=namespace", or ld.so's "undefined
# symbol: la_version" for --audit). The command now says it once; the
# command still runs. Control: its own build's library, no warning.
mkdir -p "$T/skew"
must cp "$TG_CMD" "$T/skew/truncguard"
own=$(shim_hand_over_version)
for v in "$own" $((own + 1)) 0; do
  shim_of_version "$v" "$T/skew/libtruncguard.so"
  rm -f "$T/skew/ran"
  err=$("$T/skew/truncguard" sh -c 'touch "$1/ran"; sh -c "true"' sh "$T/skew" 2>&1 >/dev/null) ||
    fail "truncguard with a library of version $v: the command failed: $err"
  [ -e "$T/skew/ran" ] || fail "truncguard with a library of version $v did not run the command: $err"
  [ "$v" = "$own" ] || [ "$(grep -c . <<<"$err")" -eq 1 ] ||
    fail "truncguard with a library of version $v: expected one warning (from the command), got: $err"
  case $v in
    "$own") [ -z "$err" ] || fail "truncguard with its own version's library warned: $err" ;;
    0) grep -qF "is not of this command's version (it has no truncguard version note" <<<"$err" ||
         fail "truncguard with a library older than the note: no clear warning: $err" ;;
    *) grep -qF "$T/skew/libtruncguard.so is not of this command's version (its hand-over version is $v, this command's $own)" <<<"$err" ||
         fail "truncguard with a library of version $v: no clear warning: $err" ;;
  esac
done
ok "a library of another version than the command: one warning from the command, which still runs the command"

# A FIFO at the library's name next to the command: the command blocked for
# good opening it (the version check's read; ld.so's in the program would
# have too). Only a regular file is taken for the library now: the next
# place is tried, and without one the command says it can't find it.
mkdir -p "$T/fifo"
must cp "$TG_CMD" "$T/fifo/truncguard"
must mkfifo "$T/fifo/libtruncguard.so"
out=$(timeout 10 "$T/fifo/truncguard" --print-library 2>&1); st=$?
[ "$st" -ne 124 ] || fail "a FIFO at the library's name: the command blocked (killed after 10 s)"
[[ $out != "$T/fifo/libtruncguard.so"* ]] || fail "a FIFO at the library's name was taken for the library: $out"
ok "a FIFO at the library's name: not taken for it, no block (status $st: ${out%%$'\n'*})"
