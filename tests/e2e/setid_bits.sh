#!/bin/bash
# Bug: a truncation the kernel makes removes the file's privileges at once
# (do_truncate -> setattr_should_drop_suidgid, security.capability): setuid,
# and setgid on a group-executable file, for a writer without CAP_FSETID;
# file capabilities for every writer, root included. truncguard's new inode
# got them all back from the old file: `: > lib` or `truncate -s` by a
# group member left a setuid file (now the writer's own) at the name, and
# root's left the old file capabilities on the new content.
# Each case first runs the writer without truncguard (the victim dies, and
# the kernel's mode and capabilities are recorded), then under truncguard
# (the victim lives, a new inode, the same mode and capabilities).
. "$(dirname "$0")/lib.sh"
need_victims
need_root "setuid files of root's and a writer running as nobody"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
as_nobody true || skip "cannot switch to uid 65534 with setpriv"
need_shim
nobody_copies

must mkdir -m 0775 "$T/grp"
must chown 0:65534 "$T/grp"  # nobody's group may write here: a temp file can be made
LIB=$T/grp/libvictim.so

# prepare MODE [CAPS]: a fresh root-owned copy of v1, group nobody, MODE, CAPS.
prepare() {
  fresh_copy "$V1" "$LIB"
  must chown 0:65534 "$LIB"
  must chmod "$1" "$LIB"
  [ -z "${2:-}" ] || must setcap "$2" "$LIB"
}
privileges() { echo "$(stat -c %a "$LIB") $(getcap "$LIB" | awk '{print $2}')"; }

# check WHAT MODE CAPS RUNNER WRITER...: WRITER (a shell command line, run by
# RUNNER) over $LIB without and with truncguard.
check() {
  local what=$1 mode=$2 caps=$3 runner=$4 cmd=$5 kernel old new got
  prepare "$mode" "$caps"
  start_victim "$LIB"
  $runner sh -c "$cmd" || fail "control: $what failed"
  stop_victim
  expect_killed "control: $what"
  kernel=$(privileges)
  prepare "$mode" "$caps"
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  $runner "${TG_CMD_N}" sh -c "$cmd" || fail "$what under truncguard failed"
  stop_victim
  expect_survived "$what under truncguard"
  new=$(inode "$LIB")
  [ "$new" != "$old" ] || fail "$what: $LIB kept inode $old"
  expect_log "replaced file=$LIB [ino $old -> "
  got=$(privileges)
  [ "$got" = "$kernel" ] ||
    fail "$what of a $mode ${caps:+($caps) }file: the new inode has mode and capabilities \"$got\", the kernel leaves \"$kernel\""
  ok "$what of a $mode ${caps:+($caps) }file: \"$got\", as the kernel leaves it"
}
as_root() { "$@"; }

# Group-writable: nobody writes them as a member of their group. 2765 is
# setgid without group execute: a member keeps it.
for mode in 4775 2775 6775 2765; do
  check "nobody's ': >'" "$mode" "" as_nobody ": > $LIB"
  check "nobody's truncate -s 100" "$mode" "" as_nobody "truncate -s 100 $LIB"
done

if ! command -v setcap >/dev/null || ! setcap cap_net_raw+ep "$V2" 2>/dev/null; then
  note "SKIP capability part: setcap is missing or the file system of $T holds no security.capability"
else
  setcap -r "$V2"
  for cmd in ": > $LIB" "truncate -s 100 $LIB"; do
    check "root's '${cmd%% /*}'" 4755 cap_net_raw+ep as_root "$cmd"
  done
fi
