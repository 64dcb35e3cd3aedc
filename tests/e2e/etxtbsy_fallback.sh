#!/bin/bash
# An unprivileged writer may write the library (mode 0666) but not create a
# file next to it (root's directory), so no new inode can be made.  Then
# truncguard must refuse the write with ETXTBSY ("Text file busy", as for a
# running executable) rather than kill the victim, unless told to truncate.
. "$(dirname "$0")/lib.sh"
need_victims
need_root "a root-owned directory and a writer running as nobody"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"

as_nobody true || skip "cannot switch to uid 65534 with setpriv"

must mkdir -m 0755 "$T/sys"
LIB=$T/sys/libvictim.so
prepare() { fresh_copy "$V1" "$LIB"; must chmod 0666 "$LIB"; }
as_nobody test -r "$V2" || fail "nobody cannot read $V2"

# Control: as nobody, without truncguard, cp kills the (root) victim.
prepare
start_victim "$LIB"
as_nobody cp "$V2" "$LIB" || fail "control: cp as nobody failed"
stop_victim
expect_killed "control: cp as nobody without truncguard"

need_shim
nobody_copies

# Default (on-fail=etxtbsy): the write is refused, the victim lives.
prepare
start_victim "$LIB"
log_reset
if as_nobody "$TG_CMD_N" cp "$V2" "$LIB" 2>"$T/cp.err"; then
  fail "truncguard cp as nobody succeeded; expected \"Text file busy\""
fi
grep -q "Text file busy" "$T/cp.err" ||
  fail "cp as nobody failed, but not with \"Text file busy\": $(cat "$T/cp.err")"
ok "cp as nobody fails with: $(cat "$T/cp.err")"
stop_victim
expect_survived "truncguard cp as nobody (refused)"
expect_same_content "$LIB" "$V1" "the library after the refused write"
expect_log "cannot protect file=$LIB: " "; failing with ETXTBSY"
ok "the log says why:$(log_lines "cannot protect file=" | cut -d: -f2-)"

# on-fail=truncate: the old behaviour, the victim dies, the log says so.
prepare
start_victim "$LIB"
log_reset
TRUNCGUARD_ON_FAIL=truncate as_nobody "$TG_CMD_N" cp "$V2" "$LIB" ||
  fail "cp as nobody with TRUNCGUARD_ON_FAIL=truncate failed"
stop_victim
expect_killed "truncguard cp as nobody with on-fail=truncate"
expect_same_content "$LIB" "$V2"
expect_log "cannot protect file=$LIB: " "; truncating anyway (TRUNCGUARD_ON_FAIL=truncate)"
ok "the log says it truncated anyway"

# The same in the JSON log: fallback truncate, and no message (truncguard(7)).
prepare
start_victim "$LIB"
log_reset
TRUNCGUARD_ON_FAIL=truncate TRUNCGUARD_LOG_FORMAT=json as_nobody "$TG_CMD_N" cp "$V2" "$LIB" ||
  fail "cp as nobody with TRUNCGUARD_ON_FAIL=truncate (JSON log) failed"
stop_victim
expect_killed "truncguard cp as nobody with on-fail=truncate (JSON log)"
log_lines '"event":"cannot_protect"' '"fallback":"truncate"' >/dev/null || fail "no cannot_protect with fallback truncate: $(tg_log)"
! tg_log | grep -q '"message"' || fail "fallback truncate: the event has a message: $(tg_log)"
ok "the JSON event says fallback truncate"
