#!/bin/bash
# Bug: the replaced library had a second hard link; after the replacement
# that other name silently keeps the old content.  That cannot be helped
# (a new inode has one name), but it must be said in the log.
. "$(dirname "$0")/lib.sh"
need_victims

LIB=$T/libvictim.so
OTHER=$T/libvictim-other-name.so
prepare_lib() { rm -f "$OTHER"; must ln "$LIB" "$OTHER"; }
copy_v2() { "$@" cp "$V2" "$LIB"; }

prove_protection copy_v2

expect_log "note file=$LIB has 2 hard links; the other name keeps the old content"
expect_same_content "$OTHER" "$V1" "the other hard link"
ok "the other name keeps the old content and the log says so"

# A write in place that changes no byte already there (truncate -s +N, which
# opens O_WRONLY without O_TRUNC) still replaces a library in use at the open
# (docs/guarantees.md, "What is not guaranteed"): the result, the old content
# and the new zeros, is on a new inode with the old mode; the other hard link
# stays on the old inode, its size unchanged.
fresh_copy "$V1" "$LIB"
chmod 751 "$LIB"
prepare_lib
old=$(inode "$LIB")
size=$(stat -c %s "$LIB")
start_victim "$LIB"
log_reset
"$TG_CMD" truncate -s +4096 "$LIB" || fail "truncate -s +4096 under truncguard failed: $(tg_log)"
stop_victim
expect_survived "truncate -s +4096 of a library in use"
[ "$(inode "$LIB")" != "$old" ] && [ "$(inode "$OTHER")" = "$old" ] ||
  fail "truncate -s +4096: the name is at inode $(inode "$LIB"), the other link at $(inode "$OTHER") (was $old for both)"
[ "$(stat -c '%s %a %h' "$LIB")" = "$((size + 4096)) 751 1" ] && [ "$(stat -c %s "$OTHER")" = "$size" ] ||
  fail "truncate -s +4096: the name $(stat -c '%s bytes, mode %a, %h links' "$LIB"), the other link $(stat -c %s "$OTHER") bytes (was $size, mode 751)"
cmp -s -n "$size" "$LIB" "$V1" && [ "$(tail -c 4096 "$LIB" | tr -d '\0' | wc -c)" -eq 0 ] ||
  fail "truncate -s +4096: the new inode does not hold the old content and 4096 zeros"
expect_log "replaced file=$LIB [ino $old -> $(inode "$LIB")]" "kept $size bytes of the old content"
expect_log "note file=$LIB has 2 hard links; the other name keeps the old content"
ok "truncate -s +4096 of a library in use: a new inode with the old content and mode, the other hard link on the old one"

# Three names: the note's plural (it said "the other names" of one name too).
THIRD=$T/libvictim-third-name.so
prepare_lib() { rm -f "$OTHER" "$THIRD"; must ln "$LIB" "$OTHER"; must ln "$LIB" "$THIRD"; }
prove_protection copy_v2
expect_log "note file=$LIB has 3 hard links; the other names keep the old content"
expect_same_content "$THIRD" "$V1" "the third hard link"
ok "three names: the other two keep the old content and the log says so"
