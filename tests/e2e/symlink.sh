#!/bin/bash
# Bug: the library is reached through a symlink (link.so -> real/...).
# Replacing "the name" must not turn the symlink into a regular file; the
# target, which the victim has mapped, is what gets the new inode.
. "$(dirname "$0")/lib.sh"
need_victims

must mkdir "$T/real"
LINK=$T/link.so
must ln -s real/libvictim.so "$LINK"
LIB=$T/real/libvictim.so     # the file: fresh copies of v1 go here
VICTIM_LIB=$LINK             # the victim dlopen's the link path
LIB_IN_LOG=$LINK             # and the writer names the link too
copy_v2() { "$@" cp "$V2" "$LINK"; }

prove_protection copy_v2

[ -L "$LINK" ] || fail "$LINK is no longer a symlink"
[ "$(readlink "$LINK")" = real/libvictim.so ] ||
  fail "$LINK now points to \"$(readlink "$LINK")\", expected real/libvictim.so"
expect_same_content "$LINK" "$V2"
ok "the symlink is untouched and its target has the new content"
