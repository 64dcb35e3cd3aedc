#!/bin/bash
# Bug: the new inode was given the old owner first, then its mode and times.
# A writer with CAP_CHOWN but without CAP_FOWNER (root under `setpriv
# --bounding-set=-fowner`, a service with CapabilityBoundingSet= without it)
# may set a mode and times only on a file it owns: after the chown to the
# library's owner both failed (EPERM), and the library it replaced had mode
# 0600 and the times of truncguard's copy, where without truncguard the inode
# keeps its mode and times.
# Each case runs the writer without truncguard first (the file as the kernel
# leaves it; for cp the victim dies), then under truncguard (the victim
# lives, a new inode, the same owner, group, mode and, where the writer
# writes nothing, atime and mtime), in modes replace and atomic.
# Setuid bits, which the chown removes: set again by a writer with
# CAP_FOWNER; lost, and said in the log, without it (documented).
. "$(dirname "$0")/lib.sh"
need_victims
need_root "a writer that chowns the new inode to another user"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
no_fowner() { setpriv --inh-caps=-fowner --bounding-set=-fowner -- "$@"; }
# Control: the writer really lacks CAP_FOWNER (chmod of another's file fails).
must touch "$T/probe"
must chown 1234:5678 "$T/probe"
no_fowner chmod 600 "$T/probe" 2>/dev/null && skip "setpriv could not take CAP_FOWNER away"
ok "control: without CAP_FOWNER, root can't chmod a file of another user"
need_shim

LIB=$T/libvictim.so
# Owner, group, mode, access ACL (its xattr, in hex) and file capabilities.
metadata() {
  stat -c "%u:%g %a" -- "$LIB"
  getfattr --absolute-names -e hex -n system.posix_acl_access -- "$LIB" 2>/dev/null | grep =
  getcap -- "$LIB" 2>/dev/null | awk '{print $2}'
}
# "user::rwx user:1234:rwx group::r-x mask::rwx other::r-x", as setfacl -m
# would set it (no acl package needed): version 2, then {tag, perm, id} entries.
ACL_HEX=0x0200000001000700ffffffff02000700d204000004000500ffffffff10000700ffffffff20000500ffffffff
prepare() {  # prepare MODE: a fresh copy of v1 owned by 1234:5678, MODE, old times, $ACL, $CAPS
  fresh_copy "$V1" "$LIB"
  must chown 1234:5678 "$LIB"
  must chmod "$1" "$LIB"
  [ -z "${ACL:-}" ] || must setfattr -n system.posix_acl_access -v "$ACL_HEX" -- "$LIB"
  [ -z "${CAPS:-}" ] || must setcap "$CAPS" "$LIB"
  must touch -d '2001-02-03 04:05:06' -- "$LIB"
}
times() { stat -c "atime %x, mtime %y" -- "$LIB"; }
# same_times WHAT BEFORE: a writer that writes nothing leaves atime and mtime
# as they were once the victim had loaded the file (its read moves the atime).
same_times() {
  [ "$(times)" = "$2" ] || fail "$1: the times were \"$2\", they are \"$(times)\""
}

# check WHAT MODE RUNNER WITH_TIMES WRITER...: WRITER over $LIB, owned by
# 1234:5678 with MODE and old times, without and with truncguard.
check() {
  local what=$1 mode=$2 runner=$3 with_times=$4 kernel old got tgmode before
  shift 4
  prepare "$mode"
  start_victim "$LIB"
  before=$(times)
  $runner "$@" || fail "control: $what failed"
  stop_victim
  if [ -z "$with_times" ]; then expect_killed "control: $what"; else same_times "control: $what" "$before"; fi
  kernel=$(metadata)
  for tgmode in replace atomic; do
    prepare "$mode"
    old=$(inode "$LIB")
    start_victim "$LIB"
    before=$(times)
    log_reset
    TRUNCGUARD_MODE=$tgmode $runner "$TG_CMD" "$@" || fail "$what under truncguard ($tgmode) failed"
    stop_victim
    expect_survived "$what under truncguard ($tgmode)"
    [ "$(inode "$LIB")" != "$old" ] || fail "$what ($tgmode): $LIB kept inode $old"
    expect_log "replaced file=$LIB [ino $old -> " "(mode $tgmode)"
    got=$(metadata)
    [ "$got" = "$kernel" ] || fail "$what ($tgmode) of a $mode file: the new inode has \"${got//$'\n'/ }\", the kernel leaves \"${kernel//$'\n'/ }\""
    [ -z "$with_times" ] || same_times "$what ($tgmode)" "$before"
    ok "$what ($tgmode) of a $mode file: \"${got//$'\n'/ }\"${with_times:+, times kept}, as without truncguard"
  done
}
as_root() { "$@"; }

check "cp without CAP_FOWNER" 0751 no_fowner "" cp "$V2" "$LIB"
check "': 1<>' without CAP_FOWNER" 0751 no_fowner times sh -c ": 1<>'$LIB'"
check "': 1<>' by root" 4755 as_root times sh -c ": 1<>'$LIB'"
# File capabilities, which the chown removes: set after it (a write of no
# byte keeps them in place).
if command -v setcap >/dev/null && setcap cap_net_raw+ep "$T/probe" 2>/dev/null; then
  CAPS=cap_net_raw+ep check "': 1<>' by root of a file with capabilities" 0755 as_root times sh -c ": 1<>'$LIB'"
else
  note "SKIP capability part: setcap is missing or the file system of $T holds no security.capability"
fi
# An access ACL: setting it needs the owner or CAP_FOWNER too (it was lost).
if setfattr -n system.posix_acl_access -v "$ACL_HEX" -- "$T/probe" 2>/dev/null; then
  ACL=1 check "cp of a file with an ACL without CAP_FOWNER" 0751 no_fowner "" cp "$V2" "$LIB"
else
  note "SKIP ACL part: the file system of $T holds no POSIX ACLs"
fi

# The limit: a setuid file opened for writing by a writer without CAP_FOWNER.
# Without truncguard the inode keeps its setuid bit until a write; the new
# inode loses it at the chown, and the log says so.
fresh_copy "$V1" "$LIB"
must chown 1234:5678 "$LIB"
must chmod 4755 "$LIB"
start_victim "$LIB"
log_reset
no_fowner "$TG_CMD" sh -c ": 1<>'$LIB'" || fail "': 1<>' of a setuid file without CAP_FOWNER failed"
stop_victim
expect_survived "': 1<>' of a setuid file without CAP_FOWNER"
[ "$(stat -c %a "$LIB")" = 755 ] || fail "setuid file without CAP_FOWNER: mode $(stat -c %a "$LIB"), expected 755 (documented)"
expect_log "$LIB" "its setuid/setgid bits" "mode 0755 instead of 4755"
ok "a setuid file replaced by a writer without CAP_FOWNER: 0755, said in the log (documented)"
# The note's JSON key is setid (truncguard(7)); --scope=elf: no victim.
fresh_copy "$V1" "$LIB"
must chown 1234:5678 "$LIB"
must chmod 4755 "$LIB"
log_reset
no_fowner "$TG_CMD" --json --scope=elf sh -c ": 1<>'$LIB'" || fail "': 1<>' of a setuid file without CAP_FOWNER (JSON log) failed"
expect_note_key setid

# A sticky directory of another user (1234), a library of a third (5678):
# without CAP_FOWNER, no rename can put a new file at that name, and a file
# that took the library's owner can't be removed there either. Without
# truncguard the write goes in place and kills the victim; under truncguard
# it can't be protected: the open fails (ETXTBSY, logged), the name keeps the
# old file, and no temp file is left. (Atomic mode took the open, and at the
# close the rename failed: the new content was lost while `sh -c 'cat v2 >
# lib'` exited 0, and the linked temp file stayed, as it did in replace mode.)
must mkdir -m 1755 "$T/sticky"  # not world-writable: fs.protected_regular has no say
must chown 1234 "$T/sticky"
LIB=$T/sticky/libvictim.so
write_v2() { "$@" sh -c "cat '$V2' > '$LIB'"; }  # write_v2 RUNNER...
fresh_copy "$V1" "$LIB"
must chown 5678 "$LIB"
start_victim "$LIB"
write_v2 no_fowner || fail "control: the write in a sticky directory failed"
stop_victim
expect_killed "control: a write in a sticky directory without CAP_FOWNER"
for tgmode in replace atomic; do
  fresh_copy "$V1" "$LIB"
  must chown 5678 "$LIB"
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  TRUNCGUARD_MODE=$tgmode write_v2 no_fowner "$TG_CMD" 2>"$T/sticky.err" &&
    fail "sticky directory ($tgmode): the write succeeded, yet nothing can be renamed there: $(tg_log)"
  stop_victim
  expect_survived "a write in a sticky directory without CAP_FOWNER, under truncguard ($tgmode)"
  grep -q 'Text file busy' "$T/sticky.err" || fail "sticky directory ($tgmode): $(cat "$T/sticky.err")"
  [ "$(inode "$LIB")" = "$old" ] || fail "sticky directory ($tgmode): the name changed inode"
  expect_same_content "$LIB" "$V1"
  left=$(ls -A "$T/sticky")
  [ "$left" = libvictim.so ] || fail "sticky directory ($tgmode): files left behind: $left"
  expect_log "cannot protect file=$LIB: cannot rename the new file over the name: Operation not permitted; failing with ETXTBSY"
  ok "a sticky directory without CAP_FOWNER ($tgmode): ETXTBSY at the open, logged, the old file kept, nothing left behind"
done

# O_NOATIME needs the owner or CAP_FOWNER (EPERM otherwise). truncguard made
# the new file, the writer's own, and the open succeeded: an O_WRONLY|O_NOATIME
# open of another user's library in use by root without CAP_FOWNER gave an fd
# and a new inode at the name, where the kernel refuses it. Now the real call
# answers (EPERM), the name unchanged. Root with CAP_FOWNER still gets it
# replaced (the victim lives).
command -v python3 >/dev/null || skip "python3 is not installed (O_NOATIME part)"
LIB=$T/libvictim.so
noatime_open() {  # noatime_open RUNNER...: O_WRONLY|O_NOATIME, then with O_TRUNC
  "$@" python3 -c '
import os, sys
for flags in (os.O_WRONLY | os.O_NOATIME, os.O_WRONLY | os.O_TRUNC | os.O_NOATIME):
    try:
        os.close(os.open(sys.argv[1], flags))
        print("open: ok")
    except OSError as e:
        print("open:", e.strerror)' "$LIB"
}
prepare 0755
start_victim "$LIB"
noatime_open no_fowner >"$T/noatime.control" 2>&1
stop_victim
expect_survived "control: O_NOATIME opens without CAP_FOWNER, without truncguard"
[ "$(grep -c 'open: Operation not permitted' "$T/noatime.control")" = 2 ] ||
  fail "control: O_NOATIME without CAP_FOWNER: $(cat "$T/noatime.control")"
for tgmode in replace atomic; do
  prepare 0755
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  TRUNCGUARD_DEBUG=decisions,rewrites TRUNCGUARD_MODE=$tgmode noatime_open no_fowner "$TG_CMD" >"$T/noatime.tg" 2>&1
  stop_victim
  expect_survived "O_NOATIME opens without CAP_FOWNER, under truncguard ($tgmode)"
  diff "$T/noatime.control" "$T/noatime.tg" >&2 || fail "O_NOATIME without CAP_FOWNER ($tgmode): other results than without truncguard"
  [ "$(inode "$LIB")" = "$old" ] || fail "O_NOATIME without CAP_FOWNER ($tgmode): the name changed inode"
  [ "$(log_lines "decision file=$LIB: pass (O_NOATIME on a file the caller neither owns nor has CAP_FOWNER for: the real call answers (EPERM))" | grep -c .)" = 2 ] ||
    fail "O_NOATIME without CAP_FOWNER ($tgmode): expected its reason for both opens: $(tg_log)"
  ok "O_NOATIME opens without CAP_FOWNER ($tgmode): EPERM as without truncguard, the name unchanged"
done
prepare 0755
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
noatime_open as_root "$TG_CMD" >"$T/noatime.root" 2>&1
stop_victim
expect_survived "O_NOATIME opens by root with CAP_FOWNER, under truncguard"
[ "$(grep -c 'open: ok' "$T/noatime.root")" = 2 ] || fail "root's O_NOATIME opens: $(cat "$T/noatime.root")"
[ "$(inode "$LIB")" != "$old" ] || fail "root's O_NOATIME opens: the name kept inode $old"
expect_log "replaced file=$LIB [ino $old -> "
ok "O_NOATIME opens by root with CAP_FOWNER: replaced, the victim lives"
