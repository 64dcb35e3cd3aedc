#!/bin/bash
# Bug: "cp new.so lib.so" over a library a running service has dlopen'ed
# truncates the mapped file and the service dies (SIGSEGV/SIGBUS).
# Under truncguard the service keeps its old code and new processes get v2.
. "$(dirname "$0")/lib.sh"
need_victims

LIB=$T/libvictim.so
copy_v2() { "$@" cp "$V2" "$LIB"; }

prove_protection copy_v2

# Identical content (a reinstall of the same version): the truncation alone
# kills, as truncguard(7) says ("even if the new content is identical"): the
# control's victim dies by a signal; under truncguard it lives, the name a
# new inode with the same bytes.
check_writer "cp of identical content" cp "$V1" "$LIB"
expect_same_content "$LIB" "$V1"
ok "cp of identical content: the control's victim killed, under truncguard alive, the same bytes at a new inode"
