#!/bin/bash
# A program that times its writes out with a timer signal whose handler
# siglongjmps out of them (alarm()-guarded code), in the middle of truncguard's
# work as often as not. Every write after that is still protected: the
# library the program then loads and overwrites keeps running its old code;
# the shim leaves no fd and no temp file behind. (Before, each jump out of the
# shim left its re-entry count up: from the second on, every write of that
# thread went through unprotected; and its fds and a temp file stayed.)
# Only a program that has a handler of its own pays for that hold: one that
# installs none (cp) makes no signal-mask call more under truncguard, one
# that does (dd: SIGINFO, SIGUSR1) one pair per examined write.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
[ -x "$TG_JUMP_WRITER" ] || fail "no jump writer at $TG_JUMP_WRITER"
LIB=$T/libvictim.so

jump_round() {  # jump_round [WRAPPER...]: 1000 interrupted copies of v1, then v2 over the loaded library
  fresh_copy "$V1" "$LIB"
  "$@" "$TG_JUMP_WRITER" "$LIB" "$V1" 1000 "$V2" "${INSTALLER:-sigaction}" >"$T/out" 2>"$T/err"
  WRITER_STATUS=$?
}

jump_round
[ "$WRITER_STATUS" -ne 2 ] || fail "control: the jump writer failed: $(cat "$T/err")"
if [ "$WRITER_STATUS" -eq 0 ] && grep -q "still version 1" "$T/out"; then
  fail "control: without truncguard the program's library kept its code: the test proves nothing"
fi
ok "control: without truncguard the last write changes the code the program runs ($(describe_status "$WRITER_STATUS"))"

log_reset
jump_round "$TG_CMD"
[ "$WRITER_STATUS" -eq 0 ] ||
  fail "under truncguard the jump writer $(describe_status "$WRITER_STATUS"): $(cat "$T/out" "$T/err")"
grep -q "still version 1" "$T/out" ||
  fail "under truncguard the last write changed the program's code in place: $(cat "$T/out")"
jumps=$(sed -n 's/^jumped \([0-9]*\) of .*/\1/p' "$T/out")
[ "${jumps:-0}" -ge 5 ] || skip "only ${jumps:-0} of 1000 writes were interrupted: too few to tell"
ok "after $jumps jumps out of writes, the last write still gave the library a new inode"
read -r before after < <(sed -n 's/^fds: \([0-9]*\) -> \([0-9]*\)$/\1 \2/p' "$T/out")
[ -n "$before" ] && [ "$before" -eq "$after" ] || fail "the shim left fds behind: $(grep fds: "$T/out")"
left=$(ls -A "$T" | grep '\.tg-' || true)
[ -z "$left" ] || fail "temp files left behind: $left"
ok "no fd and no temp file left behind"
expect_log "replaced file=$LIB ["
expect_log_well_formed

# The handler installed through each of glibc's other ways in: each must turn
# the hold on as sigaction does (interpose.cpp notes the handler in each);
# syscall(SYS_rt_sigaction) too (x86-64: the writer brings its own restorer).
installers=(__sigaction signal bsd_signal ssignal sysv_signal __sysv_signal sigset)
[ "$(uname -m)" = x86_64 ] && installers+=(syscall)
for INSTALLER in "${installers[@]}"; do
  jump_round
  [ "$WRITER_STATUS" -ne 2 ] || fail "control ($INSTALLER): the jump writer failed: $(cat "$T/err")"
  [ "$WRITER_STATUS" -ne 0 ] || ! grep -q "still version 1" "$T/out" ||
    fail "control ($INSTALLER): without truncguard the program's library kept its code"
  jump_round "$TG_CMD"
  [ "$WRITER_STATUS" -eq 0 ] && grep -q "still version 1" "$T/out" ||
    fail "handler installed by $INSTALLER: under truncguard the jump writer $(describe_status "$WRITER_STATUS"): $(cat "$T/out" "$T/err")"
  # (a handler that never ran would leave nothing to prove)
  jumps=$(sed -n 's/^jumped \([0-9]*\) of .*/\1/p' "$T/out")
  [ "${jumps:-0}" -ge 5 ] || fail "handler installed by $INSTALLER: only ${jumps:-0} of 1000 writes were jumped out of"
  read -r before after < <(sed -n 's/^fds: \([0-9]*\) -> \([0-9]*\)$/\1 \2/p' "$T/out")
  [ -n "$before" ] && [ "$before" -eq "$after" ] ||
    fail "handler installed by $INSTALLER: the shim left fds behind: $(grep fds: "$T/out")"
  left=$(ls -A "$T" | grep '\.tg-' || true)
  [ -z "$left" ] || fail "handler installed by $INSTALLER: temp files left behind: $left"
done
unset INSTALLER
ok "a handler installed by ${installers[*]}: protected the same way, no fd and no temp file left"

# Atomic mode: the close publishes. (The program's own fds left by a jump
# right after its open returned keep their files pending, and the directory
# fd with them: no fd count here. They fill the table of pending files
# sooner or later, after which writes are replaced at open; at exit they are
# older than what the name holds, and are not published over it.) The name
# ends with the last write's whole content, whichever way it got there.
log_reset
TRUNCGUARD_MODE=atomic jump_round "$TG_CMD"
[ "$WRITER_STATUS" -eq 0 ] ||
  fail "atomic mode: the jump writer $(describe_status "$WRITER_STATUS"): $(cat "$T/out" "$T/err")"
grep -q "still version 1" "$T/out" || fail "atomic mode: the last write changed the program's code in place"
left=$(ls -A "$T" | grep '\.tg-' || true)
[ -z "$left" ] || fail "atomic mode: new files left at their temp names, never published: $left"
expect_same_content "$LIB" "$V2" "atomic mode: the name after the last write"
expect_log "replaced file=$LIB [" "(mode atomic)"
ok "atomic mode: the last write's whole file is at the name (no jumped-out file published over it); no temp name left"

# The hold's price, only where a handler exists: rt_sigprocmask calls of a
# copy over a 201-byte text file (examined: read for its header, passed).
mask_calls() {  # mask_calls [WRAPPER...] -- CMD...: rt_sigprocmask calls of the whole command
  local pre=()
  while [ "$1" != -- ]; do pre+=("$1"); shift; done
  shift
  cp "$T/src.txt" "$T/dst.txt"
  strace -f -qq -e trace=rt_sigprocmask -o "$T/mask.st" "${pre[@]}" "$@" >/dev/null 2>&1 ||
    fail "strace $*: $(cat "$T/mask.st")"
  grep -c 'rt_sigprocmask(' "$T/mask.st"
}
if shim_has_asan; then
  note "signal-mask calls: not counted (an ASan build of the shim brings the sanitizer's own)"
else
  command -v strace >/dev/null || fail "no strace (scripts/setup.sh installs it)"
  printf '%0200d\n' 0 >"$T/src.txt"
  plain=$(mask_calls -- cp "$T/src.txt" "$T/dst.txt")
  shim=$(mask_calls env LD_PRELOAD="$TG_SHIM" -- cp "$T/src.txt" "$T/dst.txt")
  [ "$shim" -eq "$plain" ] || fail "cp installs no handler, yet truncguard made $((shim - plain)) signal-mask calls"
  plain=$(mask_calls -- dd if="$T/src.txt" of="$T/dst.txt" status=none)
  shim=$(mask_calls env LD_PRELOAD="$TG_SHIM" -- dd if="$T/src.txt" of="$T/dst.txt" status=none)
  [ "$shim" -eq $((plain + 2)) ] ||
    fail "dd has handlers: its examined write should hold them (2 calls more), got $plain -> $shim"
  ok "cp (no handler) makes no signal-mask call more under truncguard; dd (handlers) one pair for its write"
fi
