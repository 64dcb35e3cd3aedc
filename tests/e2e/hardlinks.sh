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

# Three names: the note's plural (it said "the other names" of one name too).
THIRD=$T/libvictim-third-name.so
prepare_lib() { rm -f "$OTHER" "$THIRD"; must ln "$LIB" "$OTHER"; must ln "$LIB" "$THIRD"; }
prove_protection copy_v2
expect_log "note file=$LIB has 3 hard links; the other names keep the old content"
expect_same_content "$THIRD" "$V1" "the third hard link"
ok "three names: the other two keep the old content and the log says so"
