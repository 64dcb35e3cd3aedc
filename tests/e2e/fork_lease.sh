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

run_writer() {  # run_writer [WRAPPER...]: the fork writer for 3 s; sets BROKEN (looks that saw a lease on the file being broken)
  fresh_copy "$V1" "$LIB"
  "$@" "$TG_FORK_WRITER" "$LIB" "$V2" 3 "${CHILD_MS:-400}" ${VFORK:+vfork} >"$T/out" 2>"$T/err" ||
    fail "the fork writer failed: $(cat "$T/out" "$T/err")"
  BROKEN=$(sed -n 's/.*leases broken \([0-9]*\),.*/\1/p' "$T/out")
  [ -n "$BROKEN" ] || fail "no result from the fork writer: $(cat "$T/out")"
}

# The writer's main thread reads /proc/locks between forks: a lease on the
# file in the state BREAKING is one an open of it waits for, which can only
# be one a write's look left behind in a child sharing its open file. A state,
# not a time: a loaded machine slows every write (one took 259 ms at load 8
# when this test read the slowest write) but breaks no lease.
run_writer
[ "$BROKEN" -eq 0 ] || fail "control: without truncguard a lease on the file was being broken $BROKEN times: something else takes leases here ($(cat "$T/out"))"
ok "control: without truncguard no lease on the file, ever being broken ($(cat "$T/out"))"

log_reset
TRUNCGUARD_DEBUG=decisions run_writer "$TG_CMD"
log_lines "file=$LIB" "the kernel granted a write lease" >/dev/null ||
  skip "no write lease was granted on $LIB here (the filesystem refuses leases): nothing to test"
[ "$BROKEN" -eq 0 ] ||
  fail "under truncguard a forked child's copy of the lease lived on, and an open of the file waited for it to be broken ($BROKEN looks saw it; $(cat "$T/out"))"
ok "under truncguard no lease outlived truncguard's look ($(cat "$T/out"))"
expect_log_well_formed

# The same with vfork (posix_spawn's way): the child, until it exits, holds a
# copy of the fd table, the fd truncguard took the lease through among it.
# Children of 20 ms, one after the other (the main thread waits for each).
VFORK=1 CHILD_MS=20 run_writer
[ "$BROKEN" -eq 0 ] || fail "control, vfork: without truncguard a lease on the file was being broken $BROKEN times ($(cat "$T/out"))"
log_reset
VFORK=1 CHILD_MS=20 TRUNCGUARD_DEBUG=decisions run_writer "$TG_CMD"
log_lines "file=$LIB" "the kernel granted a write lease" >/dev/null ||
  skip "vfork: no write lease was granted on $LIB here: nothing to test"
[ "$BROKEN" -eq 0 ] ||
  fail "vfork: under truncguard a vforked child's copy of the lease lived on, and an open of the file waited for it to be broken ($BROKEN looks saw it; $(cat "$T/out"))"
ok "vfork: under truncguard no lease outlived truncguard's look ($(cat "$T/out"))"
