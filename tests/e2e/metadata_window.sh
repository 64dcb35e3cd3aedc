#!/bin/bash
# Bug: the new inode was given the old file's mode before its owner and
# group (so that a writer without CAP_FOWNER may still set it), and for that
# moment the mode's privileges were the writer's: root's copy of another
# user's setuid file, at a name in the directory (the library's own in unlink
# mode), was setuid root with that user's content, and a writer's copy of its
# own group-writable file of another group was writable by the writer's
# group, to whoever opened it then. Now the group comes first and setuid
# after the owner: at no moment is the new inode more than the old one was.
# (And in a setgid directory, whose group a new file takes, the library kept
# that group: root's own file was compared with root's group, not the new
# file's.)
# A preload listed after truncguard's (libchown_witness.so) records the new
# inode's owner, group and mode just before each chown (the last moment
# before the owner changes); each case first runs the writer without
# truncguard (the victim dies, the kernel leaves owner, group and mode).
. "$(dirname "$0")/lib.sh"
need_victims
need_root "a writer that gives the new inode to another user"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
as_nobody true || skip "cannot switch to uid 65534 with setpriv"
need_shim
[ -r "$TG_CHOWN_WITNESS_LIB" ] || fail "not built: $TG_CHOWN_WITNESS_LIB"
nobody_copies
must cp "$TG_CHOWN_WITNESS_LIB" "$T/bin/libchown_witness.so"
chmod 755 "$T/bin/libchown_witness.so"
export TG_CHOWN_WITNESS=$T/witness
as_root() { "$@"; }
# nobody, a member of group 5678 too (it may give its file that group).
nobody_in_5678() { setpriv --reuid=65534 --regid=65534 --groups=5678 -- "$@"; }

# check WHAT RUNNER CMD OWNER MODE: cp of v2 by RUNNER over $LIB, given
# OWNER (uid:gid) and MODE, without and with truncguard in each mode. At each
# chown the new inode may have setuid only with the final owner, setgid and
# group bits only with the final group.
check() {
  local what=$1 runner=$2 cmd=$3 owner=$4 mode=$5 kernel tgmode got line u g m
  prepare() { fresh_copy "$V1" "$LIB"; must chown "$owner" "$LIB"; must chmod "$mode" "$LIB"; }
  prepare
  start_victim "$LIB"
  $runner cp "$V2" "$LIB" || fail "control: $what failed"
  stop_victim
  expect_killed "control: $what"
  kernel=$(stat -c "%u:%g %a" -- "$LIB")
  for tgmode in replace unlink atomic; do
    prepare
    start_victim "$LIB"
    : >"$TG_CHOWN_WITNESS" && chmod 666 "$TG_CHOWN_WITNESS"  # (nobody's writer too)
    LD_PRELOAD=$T/bin/libchown_witness.so TRUNCGUARD_MODE=$tgmode $runner "$cmd" cp "$V2" "$LIB" ||
      fail "$what under truncguard ($tgmode) failed"
    stop_victim
    expect_survived "$what under truncguard ($tgmode)"
    got=$(stat -c "%u:%g %a" -- "$LIB")
    [ "$got" = "$kernel" ] || fail "$what ($tgmode): the new inode is \"$got\", the kernel leaves \"$kernel\""
    # Control: the witness saw the shim give the new inode its owner.
    [ -s "$TG_CHOWN_WITNESS" ] || fail "$what ($tgmode): the witness saw no chown"
    while read -r line; do
      u=${line%%:*} g=${line#*:} g=${g%% *} m=$((8#${line##* }))
      if { ((m & 04000)) && [ "$u" != "${owner%%:*}" ]; } || { ((m & 02070)) && [ "$g" != "${owner#*:}" ]; }; then
        fail "$what ($tgmode): before its chown the new inode was $line (uid:gid mode), more than the old file ($owner $mode) gives"
      fi
    done <"$TG_CHOWN_WITNESS"
    ok "$what ($tgmode): \"$got\" as without truncguard; before its chown: $(tr '\n' ' ' <"$TG_CHOWN_WITNESS")"
  done
}

LIB=$T/libvictim.so
check "root's cp over a setuid, setgid file of another user" as_root "$TG_CMD" 1234:5678 6775
must mkdir -m 0755 "$T/own"
must chown 65534 "$T/own"
LIB=$T/own/libvictim.so
check "cp by nobody over its group-writable file of group 5678" nobody_in_5678 "$TG_CMD_N" 65534:5678 0775
# A setgid directory gives a new file its group (5678): root's copy of its
# own group-writable library of group 0 took it and kept it (the group was
# compared with root's, not with the new file's), writable by group 5678.
must mkdir -m 2755 "$T/setgid"
must chgrp 5678 "$T/setgid"
LIB=$T/setgid/libvictim.so
check "root's cp over its 0775 file of group 0 in a setgid directory of group 5678" as_root "$TG_CMD" 0:0 0775
