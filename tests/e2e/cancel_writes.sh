#!/bin/bash
# Threads cancelled (pthread_cancel, deferred) in the middle of their writes.
# A thread whose open waits on another process's write lease (Samba's
# oplocks) is cancelled there, as without truncguard: truncguard's short
# waits are cancellation points as the program's own open is, and the
# thread ends. (Before, truncguard held the thread's signals there, glibc's
# SIGCANCEL too, and glibc waited for that signal forever: the thread hung.)
# Then eight threads rewriting libraries, cancelled at random for 3 s: no
# hang, no failed write.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
[ -x "$TG_CANCEL_WRITER" ] || fail "no cancel writer at $TG_CANCEL_WRITER"
LIB=$T/libleased.so

leased() {  # leased [WRAPPER...]: 10 cancelled opens of $LIB, each waiting on a lease
  fresh_copy "$V1" "$LIB"
  "$@" "$TG_CANCEL_WRITER" --leased "$V2" 10 "$LIB" >"$T/out" 2>"$T/err"
  WRITER_STATUS=$?
  [ "$WRITER_STATUS" -ne 77 ] || skip "no write lease can be had here: $(cat "$T/err")"
}

leased
[ "$WRITER_STATUS" -eq 0 ] || fail "control: without truncguard: $(describe_status "$WRITER_STATUS"): $(cat "$T/err")"
ok "control: without truncguard each thread cancelled while its open waited on a lease ended"
leased "$TG_CMD"
[ "$WRITER_STATUS" -eq 0 ] ||
  fail "under truncguard a thread cancelled while its open waited on a lease: $(describe_status "$WRITER_STATUS"): $(cat "$T/err")"
ok "under truncguard too: $(cat "$T/out")"

libs=("$T/lib0.so" "$T/lib1.so")
for l in "${libs[@]}"; do fresh_copy "$V1" "$l"; done
log_reset
"$TG_CMD" "$TG_CANCEL_WRITER" "$V2" 3 "${libs[@]}" >"$T/out" 2>"$T/err" ||
  fail "eight threads cancelled at random under truncguard: $(cat "$T/out" "$T/err")"
ok "eight threads cancelled at random for 3 s: no hang, no failed write ($(cat "$T/out"))"
left=$(ls -A "$T" | grep '\.tg-' || true)
[ -z "$left" ] || fail "temp files left behind: $left"
expect_log_well_formed

# The same where every write is acted on (scope elf: no lease, no scan; above,
# where every process can be inspected, nobody maps the libraries and each
# write goes through in place), so that the cancels land in replacements.
for l in "${libs[@]}"; do fresh_copy "$V1" "$l"; done
log_reset
TRUNCGUARD_SCOPE=elf "$TG_CMD" "$TG_CANCEL_WRITER" "$V2" 3 "${libs[@]}" >"$T/out" 2>"$T/err" ||
  fail "eight threads cancelled at random under truncguard, scope elf: $(cat "$T/out" "$T/err")"
log_lines "replaced file=$T/lib" >/dev/null || fail "scope elf: no write was acted on: $(tg_log | head -n 5)"
left=$(ls -A "$T" | grep '\.tg-' || true)
[ -z "$left" ] || fail "scope elf: temp files left behind: $left"
ok "scope elf, every write replaced, threads cancelled at random for 3 s: no hang, no failed write, no temp file ($(cat "$T/out"))"
expect_log_well_formed
