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

# ---- Atomic mode: a pending file is handed over at exec only to a program
# that will load the shim. One exec'ed with an environment that does not
# preload it (env -i, env -u LD_PRELOAD, an envp of the program's own) was
# handed the file anyway, and nothing ever published it: the writer exited 0
# and the name kept the old file. Now it is published at that exec (a note
# says so) and the program writes on into it at the name.
for how in 'env -i /bin/cat "$V2"' 'env -u LD_PRELOAD cat "$V2"' \
           'python3 -c "import os, sys; os.execve(\"/bin/cat\", [\"cat\", sys.argv[1]], {})" "$V2"'; do
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  log_reset
  "$TG_CMD" -m atomic --scope=elf bash -c "exec >\"\$LIB\"; exec $how" || fail "atomic, exec $how: failed"
  [ "$(inode "$LIB")" != "$old" ] && cmp -s "$LIB" "$V2" ||
    fail "atomic, exec $how: the name holds $(stat -c %s "$LIB") bytes at inode $(inode "$LIB") (was $old), not v2: the write was lost"
  expect_log "note file=$LIB is published at exec" "does not preload truncguard"
  ok "atomic, exec $how (no LD_PRELOAD): published at exec, v2 at the name"
done
# The same hand-over where the environment names the shim another way (a
# symlink to it, kept by the program's own envp) still waits for the close.
ln -s "$TG_SHIM" "$T/libtg-link.so"
fresh_copy "$V1" "$LIB"
log_reset
"$TG_CMD" -m atomic --scope=elf python3 -c '
import os, sys
fd = os.open(os.environ["LIB"], os.O_WRONLY | os.O_TRUNC)
os.dup2(fd, 1)
os.execve("/bin/cat", ["cat", os.environ["V2"]],
          {"LD_PRELOAD": sys.argv[1], "TRUNCGUARD_LOG": os.environ["TRUNCGUARD_LOG"]})' "$T/libtg-link.so" ||
  fail "atomic, execve with LD_PRELOAD through a symlink: failed"
cmp -s "$LIB" "$V2" || fail "atomic, execve with LD_PRELOAD through a symlink: the name does not hold v2"
expect_no_log "published at exec"
pub=$(log_lines "published file=$LIB") || fail "no published line"
[ "$(grep -c . <<<"$pub")" -eq 1 ] || fail "published more than once: $pub"
ok "atomic, execve with the shim preloaded through a symlink: handed over, published once at cat's close"
