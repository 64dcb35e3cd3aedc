#!/bin/bash
# truncguard deployed in /etc/ld.so.preload (which ld.so loads into every
# dynamic program, whatever its environment) rather than LD_PRELOAD: a file
# pending in atomic mode when its writer execs cat (the shell's
# `exec >lib.so; exec cat v2`) is handed over to cat, whose library
# publishes it at its close, even with `env -i`. It was published at the
# exec instead, empty, cat writing into it at the name (seen half-written),
# with a note that the environment did not preload truncguard, which was
# false. /etc is an overlay of its own in this test's mount namespace.
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_root "mounts an overlay over /etc in a mount namespace of its own"
need_victims
need_shim
[ "${R_IN_MOUNT_NS:-}" = 1 ] || skip "no mount namespace of our own (unshare -m)"
mkdir -p "$T/etc-upper" "$T/etc-work"
r_mount -t overlay tg-etc -o "lowerdir=/etc,upperdir=$T/etc-upper,workdir=$T/etc-work" /etc
LIB=$T/libvictim.so
printf '# truncguard, for every program\n%s\n' "$TG_SHIM" >/etc/ld.so.preload
# (env -i keeps the log's place, and ASan's options for a sanitizer build.)
for how in "" "env -i TRUNCGUARD_LOG=$TG_LOG ASAN_OPTIONS=${ASAN_OPTIONS:-}"; do
  label=${how:+env -i}
  label=${label:-plain}
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  TRUNCGUARD_MODE=atomic bash -c 'exec >"$1"; exec '"$how"' /bin/cat "$2"' _ "$LIB" "$V2" ||
    fail "$label: the writer failed"
  stop_victim
  expect_survived "$label exec"
  [ "$(inode "$LIB")" != "$old" ] && cmp -s "$LIB" "$V2" ||
    fail "$label: the name holds $(stat -c %s "$LIB") bytes at inode $(inode "$LIB") (was $old), not v2"
  expect_no_log "published at exec"
  pub=$(log_lines "published file=$LIB") || fail "$label: no published line"
  [ "$(grep -c . <<<"$pub")" -eq 1 ] || fail "$label: published more than once: $pub"
done
ok "truncguard in /etc/ld.so.preload: a pending file is handed over at exec (env -i too), published once at cat's close"
# exec_cat_unpreloaded LABEL: with /etc/ld.so.preload as the caller wrote
# it, bash preloading the shim writes v2 into $LIB through a pending file,
# then execs cat through `env -u LD_PRELOAD` (no LD_PRELOAD at cat's exec):
# the name must end with v2.
exec_cat_unpreloaded() {
  fresh_copy "$V1" "$LIB"
  log_reset
  LD_PRELOAD=$TG_SHIM TRUNCGUARD_MODE=atomic TRUNCGUARD_SCOPE=elf bash -c 'exec >"$1"; exec env -u LD_PRELOAD /bin/cat "$2"' _ "$LIB" "$V2" ||
    fail "$1: the writer failed"
  cmp -s "$LIB" "$V2" ||
    fail "$1: the name holds $(stat -c %s "$LIB") bytes, not v2: handed over to a cat that did not load truncguard, the content lost"
}
# Control: with /etc/ld.so.preload naming another library only (and no
# LD_PRELOAD), the file is published at the exec, with the note.
printf '%s\n' "$TG_MARKER_LIB" >/etc/ld.so.preload
exec_cat_unpreloaded control
expect_log "note file=$LIB is published at exec" "does not preload truncguard"
ok "control: /etc/ld.so.preload without truncguard: published at the exec, with the note"
# ld.so reads /etc/ld.so.preload up to its first NUL byte outside a comment
# (it splits it with strsep, which stops there): an entry after one is never
# loaded. The shim took the NUL for a space, found itself after it, and
# handed the file over to cat, which did not load truncguard: exit 0 and
# the new content lost, the old file at the name. It is published at the
# exec. (A NUL inside a comment is blanked with it, as ld.so does.)
printf '%s\0%s\n' "$TG_MARKER_LIB" "$TG_SHIM" >/etc/ld.so.preload
exec_cat_unpreloaded "NUL"
expect_log "note file=$LIB is published at exec" "does not preload truncguard"
printf '# a comment with a NUL: \0 still a comment\n%s\n' "$TG_SHIM" >/etc/ld.so.preload
exec_cat_unpreloaded "NUL in a comment"
expect_no_log "published at exec"
ok "/etc/ld.so.preload read up to its first NUL outside a comment, as ld.so reads it: an entry after it is not taken for truncguard"
# The note says where the other library was named: a file at truncguard's
# name (libtruncguard.so, here a harmless library) in /etc/ld.so.preload,
# with no LD_PRELOAD at all, was reported as "its LD_PRELOAD names
# truncguard's path", which cat's environment did not have.
mkdir -p "$T/other"
cp "$TG_MARKER_LIB" "$T/other/${TG_SHIM##*/}" || fail "cannot copy the marker library"
printf '%s\n' "$T/other/${TG_SHIM##*/}" >/etc/ld.so.preload
exec_cat_unpreloaded "another file at truncguard's name in /etc/ld.so.preload"
expect_log "note file=$LIB is published at exec" "/etc/ld.so.preload names truncguard's path"
expect_no_log "its LD_PRELOAD names"
ok "a file at truncguard's name in /etc/ld.so.preload: published at the exec, the note naming /etc/ld.so.preload, not LD_PRELOAD"
# A /etc/ld.so.preload of more than 1 KiB (a commented header, many entries)
# naming truncguard: the shim read only files of up to 1,023 bytes, and took
# a longer one for not naming it: the file was published at the exec (seen
# half-written), the note saying the program's environment did not preload
# truncguard, which ld.so did. It is now read in pieces, as long as it is; an
# entry across the end of a piece, or after 2 KiB of comment, is found.
# (The second pad puts the entry across the end of the shim's third piece of
# 1,023 bytes.)
header=$(printf '# %0.s-------------------------------------------------------------\n' $(seq 40))
for pad in 0 $((3 * 1023 - 10 - ${#header} - 1)); do
  printf '%s\n%*s%s\n' "$header" "$pad" "" "$TG_SHIM" >/etc/ld.so.preload
  exec_cat_unpreloaded "a $(stat -c %s /etc/ld.so.preload)-byte /etc/ld.so.preload"
  expect_no_log "published at exec"
  pub=$(log_lines "published file=$LIB") || fail "no published line"
  [ "$(grep -c . <<<"$pub")" -eq 1 ] || fail "published more than once: $pub"
done
ok "a /etc/ld.so.preload of more than 1 KiB naming truncguard (after a long comment, across 1,024 bytes): handed over, published once at cat's close"
# An entry longer than the shim's 1 KiB buffer (ld.so loads it all the same):
# taken for truncguard "in doubt", a long path to another library got the
# file handed over to a cat that never loaded truncguard, the content lost.
# It is known by its last part: the marker's, published at the exec; a copy
# of the shim under its own name, handed over.
long_lib_dir
long=$LONG_DIR
printf '%s %s\n' "$TG_MARKER_LIB" "$long/${TG_MARKER_LIB##*/}" >/etc/ld.so.preload
exec_cat_unpreloaded "a ${#long}-byte path to another library in /etc/ld.so.preload"
expect_log "note file=$LIB is published at exec" "does not preload truncguard"
printf '%s %s\n' "$TG_MARKER_LIB" "$long/${TG_SHIM##*/}" >/etc/ld.so.preload
exec_cat_unpreloaded "a ${#long}-byte path to truncguard in /etc/ld.so.preload"
expect_no_log "published at exec"
ok "an entry of over 1 KiB in /etc/ld.so.preload: known by its last part (another library: published at the exec; truncguard's name: handed over)"
