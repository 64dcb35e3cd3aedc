#!/bin/bash
# Writers in containers and chroots, on a volume that a process outside runs
# code from:
#  - a chroot with /proc mounted (the host's PID namespace), the volume bound
#    in at another path (/deploy): the scan matches device and inode, and
#    names the program outside.
#  - /proc that is no proc filesystem: a chroot without /proc mounted (its
#    empty directory), or a tmpfs over it. It lists no process, which must
#    not read as "nobody maps it": the library counts as in use and is
#    replaced; a file nobody has open still passes (the lease proves it);
#    `truncguard who` says it can't see processes (exit 2). The command
#    finds its library without /proc/self/exe. An fd opened before the
#    program mapped the library can't be named without /proc/self/fd: its
#    ftruncate fails with ETXTBSY and the log says why (a read-write fd,
#    whose header says ELF); a write-only fd's ftruncate of a text file
#    (`truncate -s`) goes through as without truncguard. In atomic mode the
#    new file, which /proc/thread-self/fd can't name, is linked in by its fd.
#  - a user namespace (rootless containers): the old file's ACL names a user
#    not mapped there, so it can't be copied; the new file must not then
#    give more than the old one did (the mode's group bits are the ACL's
#    mask; the directory's default ACL), and the log says so. With ids that
#    are mapped, the ACL is copied as it is. A world-writable library of an
#    owner outside the namespace (shown there as 65534): the new file is the
#    writer's, and the log says the owner is not mapped, not "not permitted".
# Each with its control: without truncguard the victim dies.
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_victims
need_mount_ns
need_shim

LIB=$T/app/libvictim.so
mkdir -m 755 "$T/app"

# ------------------------------------------ a chroot, the volume elsewhere

# A root on a tmpfs: the system's /usr (and /bin, /lib... as they are: links
# into it, or bound), the command's directory at its own path, the log
# directory, the library's directory at /deploy, and a fresh /proc.
ROOT=$T/root
r_tmpfs "$ROOT" ""
for d in bin sbin lib lib32 lib64 usr; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$ROOT/$d"
  elif [ -d "/$d" ]; then mkdir "$ROOT/$d" && r_mount --bind "/$d" "$ROOT/$d"; fi
done
for d in "$(dirname -- "$TG_CMD")" "$T/logs"; do mkdir -p "$ROOT$d" && r_mount --bind "$d" "$ROOT$d"; done
mkdir "$ROOT/deploy" "$ROOT/proc"
r_mount --bind "$T/app" "$ROOT/deploy"
r_mount -t proc proc "$ROOT/proc"
chroot "$ROOT" /bin/true || skip "cannot run programs in a chroot built from /usr"
cp "$V2" "$T/app/v2.so"

fresh_copy "$V1" "$LIB"
victim_write control chroot "$ROOT" cp /deploy/v2.so /deploy/libvictim.so
expect_control_broken "cp in a chroot" control
fresh_copy "$V1" "$LIB"
victim_write tgcp chroot "$ROOT" "$TG_CMD" cp /deploy/v2.so /deploy/libvictim.so
expect_new_inode "cp in a chroot under truncguard" tgcp
expect_log "replaced file=/deploy/libvictim.so [ino $OLD_INO -> $NEW_INO] (mode replace); mapped executable by pid $VICTIM_PID ("
ok "a chroot, the library at /deploy: $(log_lines "replaced file=/deploy" | cut -f2-)"

# ------------------------------------------------ /proc: no proc filesystem

# no_proc HOW CMD...: CMD in a mount namespace of its own whose /proc is the
# directory under it (HOW=empty: a chroot without /proc) or a tmpfs (HOW=tmpfs).
no_proc() {
  local how=$1
  shift
  unshare -m --propagation private -- sh -c '
    if [ "$1" = empty ]; then umount -l /proc; else mount -t tmpfs tg-masked /proc; fi || exit 99
    shift
    exec "$@"' sh "$how" "$@"
}
no_proc empty test ! -e /proc/self || skip "cannot unmount /proc in a mount namespace of its own"

proc_cases() {  # proc_cases HOW
  local how=$1 old lib
  note "---- /proc: $how"
  fresh_copy "$V1" "$LIB"
  victim_write control no_proc "$how" cp "$V2" "$LIB"
  expect_control_broken "cp, /proc $how" control

  lib=$(no_proc "$how" "$TG_CMD" --print-library 2>"$T/lib.err") && [ "$lib" = "$("$TG_CMD" --print-library)" ] ||
    fail "/proc $how: truncguard --print-library printed \"$lib\": $(cat "$T/lib.err")"
  ok "/proc $how: the command finds its library next to itself"

  fresh_copy "$V1" "$LIB"
  victim_write tgcp no_proc "$how" "$TG_CMD" cp "$V2" "$LIB"
  expect_new_inode "/proc $how: cp under truncguard" tgcp
  expect_log "replaced file=$LIB [ino $OLD_INO -> $NEW_INO] (mode replace); mapped executable by nobody known: /proc could not be read"
  ok "/proc $how: $(log_lines "replaced file=$LIB" | cut -f2-)"

  # Scope self: the writer's own maps can't be read either, and the log
  # says so (README, "The log"); an ELF file counts as mapped by it.
  fresh_copy "$V1" "$LIB"
  victim_write tgself no_proc "$how" "$TG_CMD" -s self cp "$V2" "$LIB"
  expect_new_inode "/proc $how: cp under truncguard -s self" tgself
  expect_log "replaced file=$LIB [ino $OLD_INO -> $NEW_INO] (mode replace); mapped executable by nobody known: this process's own maps could not be read, and it is an ELF shared object"
  ok "/proc $how, scope self: $(log_lines "replaced file=$LIB" | cut -f2-)"
  # ... and the JSON event's reason (truncguard(7)); no victim needed.
  fresh_copy "$V1" "$LIB"
  log_reset
  r_run tgselfjson no_proc "$how" "$TG_CMD" --json -s self cp "$V2" "$LIB"
  [ "$R_STATUS" -eq 0 ] || fail "/proc $how: cp under truncguard --json -s self: $(r_out tgselfjson)"
  log_lines '"event":"replaced"' "\"reason\":\"this process's own maps could not be read: replace unless proven unmapped\"" >/dev/null ||
    fail "/proc $how, scope self: no replaced event with its reason: $(tg_log)"

  # Atomic mode: the unnamed new file is linked in at the close without
  # /proc/thread-self/fd to name it: by its fd (linkat AT_EMPTY_PATH).
  fresh_copy "$V1" "$LIB"
  victim_write tgatomic no_proc "$how" "$TG_CMD" -m atomic cp "$V2" "$LIB"
  expect_new_inode "/proc $how: cp under truncguard -m atomic" tgatomic
  expect_log "published file=$LIB [ino $OLD_INO -> $NEW_INO] (mode atomic): the writer closed it"
  expect_no_temp "$T/app"
  ok "/proc $how, mode atomic: published at the close, linked in by its fd"

  # Nobody has it open: the lease still proves it, and the write goes through.
  old=$(inode "$LIB")
  log_reset
  r_run unused no_proc "$how" env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_DEBUG=decisions cp "$V1" "$LIB"
  [ "$R_STATUS" -eq 0 ] || fail "/proc $how: cp over an unused library failed: $(r_out unused)"
  [ "$(inode "$LIB")" = "$old" ] || fail "/proc $how: an unused library was replaced: $(tg_log)"
  expect_log "decision file=$LIB: pass (no process has it open or mapped (the kernel granted a write lease))"
  ok "/proc $how: a library nobody has open is written in place (the lease proves it)"

  # ftruncate through an fd opened while nobody mapped the library.
  fresh_copy "$V1" "$LIB"
  writer_then_victim fd_truncator "$T/trunc" "$LIB" no_proc "$how" "$TG_FD_TRUNCATOR" "$LIB" "$V2" "$T/trunc.ready" "$T/trunc.go"
  expect_killed "control: ftruncate without truncguard, /proc $how"
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  log_reset
  writer_then_victim fd_truncator "$T/trunc" "$LIB" no_proc "$how" sh -c '"$@"; echo $? >"$0"' "$T/trunc.status" \
    env LD_PRELOAD="$TG_SHIM" "$TG_FD_TRUNCATOR" "$LIB" "$V2" "$T/trunc.ready" "$T/trunc.go"
  expect_survived "/proc $how: ftruncate under truncguard"
  [ "$(cat "$T/trunc.status")" = 1 ] && grep -q "ftruncate: Text file busy" "$T/trunc.err" ||
    fail "/proc $how: ftruncate under truncguard: exit $(cat "$T/trunc.status"), expected ETXTBSY: $(cat "$T/trunc.err")"
  expect_intact "$LIB" "$old" "$V1"
  expect_log "cannot protect file=fd " ": cannot read the file's name (/proc/thread-self/fd): No such file or directory; failing with ETXTBSY"
  ok "/proc $how: ftruncate refused: $(log_lines "cannot protect file=fd" | cut -f2-)"
  # ... but through a write-only fd (docs/guarantees.md, "What is not
  # guaranteed") the file can be neither read nor named: not examined, it
  # truncates (the victim dies, as without truncguard), the decisions log
  # saying why.
  if command -v python3 >/dev/null; then
    fresh_copy "$V1" "$LIB"
    log_reset
    writer_then_victim "a write-only ftruncate" "$T/wronly" "$LIB" no_proc "$how" \
      env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_DEBUG=decisions python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
open(sys.argv[2] + ".ready", "w").close()
while not os.path.exists(sys.argv[2] + ".go"):
    time.sleep(0.01)
os.ftruncate(fd, 0)' "$LIB" "$T/wronly"
    expect_killed "/proc $how: ftruncate through a write-only fd under truncguard"
    [ ! -s "$LIB" ] || fail "/proc $how: ftruncate through a write-only fd did not truncate: $(stat -c %s -- "$LIB") bytes"
    expect_log "decision file=fd " ": pass (without /proc, the file of this write-only fd can be neither read nor named: the real call answers) [ftruncate"
    ok "/proc $how: ftruncate through a write-only fd truncates, as documented: $(log_lines "decision file=fd" | cut -f2-)"
  fi
  seq 1000 >"$T/notes.txt"
  r_run trunc no_proc "$how" env LD_PRELOAD="$TG_SHIM" truncate -s 10 "$T/notes.txt"
  [ "$R_STATUS" -eq 0 ] && [ "$(stat -c %s -- "$T/notes.txt")" = 10 ] ||
    fail "/proc $how: truncate -s 10 of a text file: $(describe_status "$R_STATUS"): $(r_out trunc)"
  ok "/proc $how: truncate -s of a text file (a write-only fd) goes through"
  # ... an ELF file's too: through a write-only fd it is not examined
  # (truncguard(7), LIMITS), and the decision says why.
  fresh_copy "$V1" "$T/app/unmapped.so"
  log_reset
  r_run truncelf no_proc "$how" env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_DEBUG=decisions truncate -s 10 "$T/app/unmapped.so"
  [ "$R_STATUS" -eq 0 ] && [ "$(stat -c %s -- "$T/app/unmapped.so")" = 10 ] ||
    fail "/proc $how: truncate -s 10 of an ELF file: $(describe_status "$R_STATUS"): $(r_out truncelf)"
  expect_log "decision file=fd " ": pass (without /proc, the file of this write-only fd can be neither read nor named: the real call answers)"
  ok "/proc $how: truncate -s of an ELF file through a write-only fd: not examined, and the decision says so"

  r_run who no_proc "$how" "$TG_CMD" who "$LIB"
  [ "$R_STATUS" -eq 2 ] || fail "/proc $how: truncguard who exited $R_STATUS, expected 2: $(r_out who)"
  grep -q "cannot read /proc: not mounted, not a proc filesystem" "$T/who.out" ||
    fail "/proc $how: truncguard who does not say why: $(r_out who)"
  ok "/proc $how: truncguard who exits 2: $(head -n1 "$T/who.out")"
  # (truncguard(1), EXIT STATUS of stale: 2, "/proc unreadable")
  r_run stale no_proc "$how" "$TG_CMD" stale
  [ "$R_STATUS" -eq 2 ] && grep -q "truncguard stale: cannot read /proc: not mounted, not a proc filesystem" "$T/stale.out" ||
    fail "/proc $how: truncguard stale exited $R_STATUS, expected 2 and why: $(r_out stale)"
  ok "/proc $how: truncguard stale exits 2: $(head -n1 "$T/stale.out")"
}
# An ASan build can't run without /proc: its runtime reads its options from
# /proc/self/environ, and LeakSanitizer's check at exit lists /proc/self/task.
if [ -n "${ASAN_OPTIONS:-}" ]; then
  note "/proc cases skipped: a sanitizer build's runtime needs /proc"
else
  proc_cases empty
  proc_cases tmpfs
fi

# ------------------------------------------ user namespace: ACLs, unmapped ids

as_nobody true || skip "cannot switch to uid 65534 with setpriv"
as_nobody unshare -U -r true 2>/dev/null || skip "nobody cannot make a user namespace (unshare -U -r)"
python3 -c '' || skip "python3 is needed to set ACLs"
nobody_copies
chown nobody "$T/app"
for v in "$V1" "$V2"; do cp "$v" "$T/app/${v##*/}.src"; done
SRC=$T/app/${V2##*/}.src
chmod 644 "$T/app/"*.src
# A default ACL on the directory, for another user: a new file inherits it.
r_acl "$T/app" default 4321 2>"$T/acl.err" || skip "no ACLs on $T: $(cat "$T/acl.err")"

# acl_copy ID [GROUP MASK]: a fresh copy of the library, nobody's, with an
# access ACL for user ID (rwxrwxr-x, of which the owning group gets r-x; with
# GROUP and MASK: group:: and mask:: of those permissions).
acl_copy() {
  fresh_copy "$V1" "$LIB"
  chown nobody:nogroup "$LIB"
  chmod 775 "$LIB"
  r_acl "$LIB" access "$@" || fail "setup: cannot set the ACL of $LIB"
}
acl_of() { getfattr --absolute-names -n system.posix_acl_access -e hex -- "$1" 2>/dev/null | grep =; }
# in_userns CMD...: as a rootless container runs it: nobody, root of a user
# namespace of its own (only nobody's id is mapped there).
in_userns() { as_nobody unshare -U -r -- "$@"; }

acl_cases() {
  local mode=${TRUNCGUARD_MODE:-replace} before
  acl_copy 1234
  victim_write control in_userns cp "$SRC" "$LIB"
  expect_control_broken "cp in a user namespace" control

  # User 1234 is not mapped in the namespace: the ACL can't be copied.
  acl_copy 1234
  victim_write tgcp in_userns env LD_PRELOAD="$TG_SHIM_N" TRUNCGUARD_LOG="$TG_LOG" cp "$SRC" "$LIB"
  expect_new_inode "$mode: cp under truncguard in a user namespace" tgcp
  expect_no_temp "$T/app"
  [ "$(stat -c %a -- "$LIB")" = 755 ] ||
    fail "$mode: the new file has mode $(stat -c %a -- "$LIB"): the owning group had r-x, now it has more"
  [ -z "$(acl_of "$LIB")" ] ||
    fail "$mode: the new file has an ACL the old one did not give (the directory's default?): $(acl_of "$LIB")"
  expect_log "note file=$LIB its ACL could not be copied: the new file has none, and mode 0755 (the owning group keeps what the ACL gave it) instead of 0775"
  ok "$mode: the ACL for an unmapped user was not copied: mode 755, no ACL, and the log says so"
  # group::rwx within mask::r-x: the owning group had r-x, not rwx.
  acl_copy 1234 7 5
  victim_write tgcp in_userns env LD_PRELOAD="$TG_SHIM_N" TRUNCGUARD_LOG="$TG_LOG" cp "$SRC" "$LIB"
  expect_new_inode "$mode: cp under truncguard in a user namespace, group:: above mask::" tgcp
  [ "$(stat -c %a -- "$LIB")" = 755 ] ||
    fail "$mode: group::rwx, mask::r-x: the new file has mode $(stat -c %a -- "$LIB"): the owning group had r-x, now it has more"
  ok "$mode: group::rwx within mask::r-x: the new file's group bits are r-x"

  # Nobody's own id is mapped (root of the namespace): the ACL is copied.
  acl_copy 65534
  before=$(acl_of "$LIB")
  victim_write tgcp in_userns env LD_PRELOAD="$TG_SHIM_N" TRUNCGUARD_LOG="$TG_LOG" cp "$SRC" "$LIB"
  expect_new_inode "$mode: cp under truncguard, an ACL of mapped ids" tgcp
  [ "$(acl_of "$LIB")" = "$before" ] && [ "$(stat -c %a -- "$LIB")" = 775 ] ||
    fail "$mode: the ACL of mapped ids was not kept: $(stat -c %a -- "$LIB") $(acl_of "$LIB"), was 775 $before"
  expect_no_log "could not be copied"
  ok "$mode: an ACL of mapped ids is copied as it is"
}
each_mode acl_cases

# The owner of a world-writable library (no ACL) is outside the namespace.
foreign_copy() {
  fresh_copy "$V1" "$LIB"
  must setfattr -x system.posix_acl_access "$LIB"  # the one the directory's default gave it
  must chown 1234:1234 "$LIB"
  must chmod 666 "$LIB"
}
foreign_copy
victim_write control in_userns cp "$SRC" "$LIB"
expect_control_broken "cp in a user namespace, a library of an unmapped owner" control
foreign_copy
victim_write tgcp in_userns env LD_PRELOAD="$TG_SHIM_N" TRUNCGUARD_LOG="$TG_LOG" cp "$SRC" "$LIB"
expect_new_inode "cp under truncguard in a user namespace, a library of an unmapped owner" tgcp
[ "$(stat -c %u:%g:%a -- "$LIB")" = 65534:65534:666 ] ||
  fail "the new file is $(stat -c %u:%g:%a -- "$LIB"), expected the writer's (65534:65534) and mode 666"
expect_log "note file=$LIB owner 65534:65534 could not be kept (not mapped in this user namespace: the real owner is outside it); the new file is owned by 0:0"
ok "an owner outside the namespace: the new file is the writer's, and the log says why"
