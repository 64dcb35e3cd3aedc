#!/bin/bash
# Bug: a shim that gives every O_TRUNC'ed file a new inode breaks everyone
# who holds the file open or has hard links to it.  A file nobody maps must
# be truncated in place, as without truncguard: an ELF library nobody has
# loaded, and a plain text file.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim

# An ELF shared library that no process maps.  An fd opened before the
# write and a hard link made before it must both see the new content: that
# proves the same inode, which an inode number (reusable) could not.
# run_alone: only where every process can be inspected is "nobody maps it"
# provable; otherwise the shim rightly plays safe and replaces the file.
LIB=$T/libunmapped.so
fresh_copy "$V1" "$LIB"
must ln "$LIB" "$T/hardlink.so"
exec 3<"$LIB"
old=$(inode "$LIB")
log_reset
run_alone "$TG_CMD" cp "$V2" "$LIB" || fail "truncguard cp over an unmapped library failed"
expect_same_content "$LIB" "$V2"
expect_same_content /proc/$$/fd/3 "$V2" "an fd opened before the write"
expect_same_content "$T/hardlink.so" "$V2" "a hard link made before the write"
[ "$(inode "$LIB")" = "$old" ] || fail "the inode number changed: $old -> $(inode "$LIB")"
expect_no_log "replaced file="
expect_no_log "note file="
exec 3<&-
ok "an unmapped ELF library is truncated in place"

# A text file, written by cp and by a shell redirection.
TXT=$T/notes.txt
echo "old text" >"$TXT"
echo "new text, longer than the old one" >"$T/new.txt"
must ln "$TXT" "$T/notes-link.txt"
exec 3<"$TXT"
log_reset
"$TG_CMD" cp "$T/new.txt" "$TXT" || fail "truncguard cp over a text file failed"
expect_same_content /proc/$$/fd/3 "$T/new.txt" "an fd opened before cp"
expect_same_content "$T/notes-link.txt" "$T/new.txt" "a hard link, after cp"
"$TG_CMD" bash -c 'echo redirected > "$1"' bash "$TXT" || fail "truncguard bash redirection failed"
[ "$(cat /proc/$$/fd/3)" = redirected ] || fail "an fd opened before the redirection does not see its output"
[ "$(cat "$T/notes-link.txt")" = redirected ] || fail "a hard link does not see the redirection's output"
expect_no_log "replaced file="
exec 3<&-
ok "a text file is truncated in place"
