#!/bin/bash
# The hand-over of atomic-mode files across exec travels in the environment
# (TRUNCGUARD_PENDING). Nobody may use it to make a process rename a file of
# their choosing: only unnamed inodes are adopted, and never in setuid programs.
. "$(dirname "$0")/lib.sh"
need_shim
echo "precious" >"$T/target"
echo "attacker" >"$T/payload"
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
# fd 7: a named file; fd 8: the directory. Claim fd 7 should become "target".
entry="7:8:1:$(hex target):$(hex "$T/target");"
LD_PRELOAD=$TG_SHIM TRUNCGUARD_PENDING=$entry bash -c 'exec 7<"$1" 8<"$2"; exit 0' _ "$T/payload" "$T" ||
  fail "the shell failed"
[ "$(cat "$T/target")" = "precious" ] || fail "a named file handed in TRUNCGUARD_PENDING was published over target"
ok "a named (not unnamed) inode in TRUNCGUARD_PENDING is never published"
# The variable is not passed on to the program's children.
out=$(LD_PRELOAD=$TG_SHIM TRUNCGUARD_PENDING="garbage;;:::" bash -c 'printenv TRUNCGUARD_PENDING || echo unset')
[ "$out" = "unset" ] || fail "TRUNCGUARD_PENDING was passed on: $out"
ok "malformed TRUNCGUARD_PENDING is ignored and removed from the environment"
