#!/bin/bash
# A program rewrites a library nobody maps (truncguard proves that with a
# write lease, held for microseconds) in one thread, while its main thread
# forks children that live 400 ms without exec (a prefork server). A child
# forked while the lease was held shares the leased open file: the lease
# must end when truncguard is done with it, not when that child exits.
# (Before, the close alone was to end it: the lease lived on in the child,
# and the writer's next open waited for the child, up to lease-break-time,
# 45 s: a vfork child that wrote the file hung its parent that long.)
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
[ -x "$TG_FORK_WRITER" ] || fail "no fork writer at $TG_FORK_WRITER"
LIB=$T/libunused.so

slowest() {  # slowest [WRAPPER...]: the fork writer for 3 s; sets SLOWEST_MS
  fresh_copy "$V1" "$LIB"
  "$@" "$TG_FORK_WRITER" "$LIB" "$V2" 3 400 >"$T/out" 2>"$T/err" ||
    fail "the fork writer failed: $(cat "$T/out" "$T/err")"
  SLOWEST_MS=$(sed -n 's/.*slowest write \([0-9]*\) ms$/\1/p' "$T/out")
  [ -n "$SLOWEST_MS" ] || fail "no result from the fork writer: $(cat "$T/out")"
}

slowest
[ "$SLOWEST_MS" -lt 200 ] || skip "even without truncguard a write took $SLOWEST_MS ms here: too loaded to tell"
ok "control: without truncguard the slowest write took $SLOWEST_MS ms ($(cat "$T/out"))"

log_reset
TRUNCGUARD_DEBUG=decisions slowest "$TG_CMD"
log_lines "file=$LIB" "the kernel granted a write lease" >/dev/null ||
  skip "no write lease was granted on $LIB here (the filesystem refuses leases): nothing to test"
[ "$SLOWEST_MS" -lt 200 ] ||
  fail "under truncguard a write waited $SLOWEST_MS ms for a forked child's copy of the lease ($(cat "$T/out"))"
ok "under truncguard the slowest write took $SLOWEST_MS ms: no lease outlived truncguard's look ($(cat "$T/out"))"
expect_log_well_formed
