#!/bin/bash
# "Who overwrote our library?" TRUNCGUARD_DEBUG=backtrace prints where the
# protected write came from: the writing program's own functions, not the shim's.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
LIB=$T/libvictim.so
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
TRUNCGUARD_DEBUG=rewrites,backtrace "$TG_CMD" "$TG_WRITER" fopen "$LIB" "$V2" >/dev/null ||
  fail "the writer failed under truncguard"
stop_victim
expect_survived "the writer under truncguard"
expect_log "replaced file=$LIB ["
expect_log "backtrace:"
n=$(tg_log | grep -c "backtrace:")
[ "$n" -eq 1 ] || fail "one replacement printed $n backtraces, expected 1"
expect_log "  #0 0x" "(${TG_WRITER})"
expect_log " main+0x" "(${TG_WRITER})"
if grep -q "libtruncguard" <<<"$(tg_log)"; then fail "the backtrace shows the shim's own frames"; fi
ok "the backtrace names the writer's main() and no shim frames"
