#!/bin/bash
# The truncguard command and the shim across exec, at their edges: the
# wrapped command's status and arguments, LD_PRELOAD and settings handed to
# it, the children it starts (which ones stay protected, which can't), the
# atomic-mode hand-over at exec, and who/stale with odd arguments.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
LIB=$T/libvictim.so
export V2 LIB
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

# ---- Atomic mode: the hand-over variable never reaches a grandchild.
# bash defines its own getenv/unsetenv (for its variable table), so the
# shim's unsetenv in bash's constructor removed nothing: every program bash
# started got TRUNCGUARD_PENDING and adopted fds that were not its own, and
# its exit logged "cannot protect ... the new content is lost" (it was not).
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
log_reset
leak=$("$TG_CMD" -m atomic --scope=elf bash -c \
  'exec >"$LIB"; exec bash -c "LD_PRELOAD= printenv TRUNCGUARD_PENDING >&2; cat \"\$V2\"; true"' 2>&1) ||
  fail "the atomic writer through bash failed: $leak"
[ -z "$leak" ] || fail "bash passed the hand-over on to its child: TRUNCGUARD_PENDING=$leak"
expect_no_log "cannot protect"
[ "$(inode "$LIB")" != "$old" ] && cmp -s "$LIB" "$V2" || fail "the file handed over to bash was not published as v2"
ok "atomic hand-over to bash: published once, by bash; its children neither see nor adopt it"

# An entry whose directory fd is not open in the new image (a stale copy of
# the variable) is not adopted: no publication, and no error line about it.
echo old >"$T/target"
log_reset
python3 - "$T" "7:9:1:$(hex target):$(hex "$T/target");" "$TG_SHIM" <<'PY' || fail "python could not exec"
import os, sys
d, entry, shim = sys.argv[1:]
fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o644)   # an unnamed inode at fd 7; fd 9 closed
os.write(fd, b"forged\n")
os.dup2(fd, 7)
os.execve("/bin/true", ["true"], dict(os.environ, LD_PRELOAD=shim, TRUNCGUARD_PENDING=entry))
PY
[ "$(cat "$T/target")" = old ] || fail "a stale hand-over entry was published over target"
expect_no_log "cannot protect"
ok "a hand-over entry whose directory fd is closed is ignored quietly"
