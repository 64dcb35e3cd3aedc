#!/bin/bash
# Bug: a file name with a newline or bytes that are not UTF-8 is still a
# valid Linux file name.  Protection must work for it, and the log must
# escape it (\n, \xHH) so one event stays one line.
. "$(dirname "$0")/lib.sh"
need_victims

LIB=$T/$'odd\nname\xff.so'
LIB_IN_LOG="$T/odd\\nname\\xff.so"
copy_v2() { "$@" cp "$V2" "$LIB"; }

prove_protection copy_v2

expect_log_well_formed
# The path's newline must not reach the log raw: no line may start with the
# rest of the name.
if grep -q "^name" <<<"$(tg_log)"; then
  fail "the log has a raw newline inside the path: $(tg_log)"
fi
ok "the log escapes the newline and the 0xff byte: $(log_lines "replaced file=")"
