#!/bin/bash
# Faults injected into the acting path's own system calls (a seccomp filter,
# rtool deny, fails one call of the writer's with the errno given), where a
# victim runs the library being written. Whatever fails, the victim lives,
# the name holds one complete file (the old one, or the new one where the
# write succeeded), no temp file is left, and a log line says why.
#  - The caller's fd moved to the new file (ftruncate of an fd opened on the
#    library, `3<>lib`: its number must name the new inode) by a dup3 that
#    fails (EPERM): the name keeps the old file (mode unlink: it is put back),
#    the fd stays on it, and the write fails with ETXTBSY, the log giving
#    dup3's error. It failed with ETXTBSY while the name already held the new
#    inode (emptied: the caller's ftruncate to 0), and the log said EBADF
#    whatever the error was. A dup of the fd, moved before it, comes back. The rename over the name failing after the fd
#    moved (EIO), the fd goes back to the old file. Where no fd is left to
#    keep the old file open with (F_DUPFD refused: EMFILE), the fd moves after
#    the rename as before, and where it can't, a note says what is where;
#    so does one where the fd can't go back to the old file after the rename
#    failed, or its POSIX lock can't be taken again on the old file.
#  - The fd's offset not carried to the new file (lseek refused): the fd
#    does not move (it moved at offset 0, and the program's next write
#    landed over the new file's first bytes), and keeps the POSIX lock the
#    program holds through it (released: its offset was read before its
#    locks, which the shim's own fds' close released on the old file).
#  - A write in place whose new inode can't get the old file's times
#    (utimensat refused): a note `times` says so (nothing did).
#  - An ACL the new inode inherits from its directory's default ACL, where
#    the old file had none, that can't be removed (fremovexattr refused):
#    a note `acl` says so (nothing did).
#  - fopen with no memory left (rtool fopen-nomem: malloc fails) in atomic
#    mode: the stream can't be made on the new file; the fopen fails with
#    ENOMEM as without truncguard, and nothing is published (it was, empty).
#  - The rename and the removal of the temp file both failing (EIO): a note
#    (key temp_left) names the file left in the directory (nothing did); the
#    writer fails with ETXTBSY (atomic mode: its close, EIO).
#  - Atomic mode, the exec hand-over with fcntl(F_SETFD) refused: published
#    at the exec, with a note (the file was never published).
#  - Mode unlink where renameat2 has no RENAME_NOREPLACE (EINVAL, ENOSYS):
#    the old file is moved aside with a plain rename, and the write protected.
. "$(dirname "$0")/rlib.sh"
need_victims
need_shim
must mkdir "$T/lib"
LIB=$T/lib/libvictim.so

# run_denied NAME DENY-SPEC CMD...: r_run NAME CMD, under the filter
# DENY-SPEC (rtool deny) if it is not empty.
run_denied() {
  local name=$1 spec=$2
  shift 2
  if [ -n "$spec" ]; then r_run "$name" "$TG_RTOOL" deny "$spec" "$@"; else r_run "$name" "$@"; fi
}

# fd3_run NAME DENY-SPEC CMD...: CMD with fd 3 open on $LIB (a fresh copy of
# $V1 that a victim runs), run_denied.
fd3_run() {
  local name=$1 spec=$2
  shift 2
  fresh_copy "$V1" "$LIB"
  OLD_INO=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  exec 3<>"$LIB"
  run_denied "$name" "$spec" "$@"
  exec 3>&-
  stop_victim
}

# replaced_by NAME DENY-SPEC FILE CMD...: CMD writes FILE, which a victim runs
# (run_denied): it must succeed, the victim live on, and FILE be a new inode
# (OLD_INO: the old one's number).
replaced_by() {
  local name=$1 spec=$2 file=$3
  shift 3
  OLD_INO=$(inode "$file")
  start_victim "$file"
  log_reset
  run_denied "$name" "$spec" "$@"
  stop_victim
  [ "$R_STATUS" -eq 0 ] || fail "$name: ${*:2} failed: $(r_out "$name")"
  expect_survived "$name: ${*:2}"
  [ "$(inode "$file")" != "$OLD_INO" ] || fail "$name: ${*:2}: nothing was replaced"
}

# fd_write NAME MODE [DENY-SPEC]: `rtool ftruncate-fd-ino 3 0` on fd 3 (fd3_run)
# under truncguard in MODE. FD_TOOL: another rtool command taking FD LENGTH.
fd_write() { fd3_run "$1" "${3:-}" env TRUNCGUARD_MODE="$2" "$TG_CMD" "$TG_RTOOL" "${FD_TOOL:-ftruncate-fd-ino}" 3 0; }

# kept_old NAME WHAT STEP ERROR: after fd_write NAME: refused with ETXTBSY,
# the fd still on the old file, which is at the name, intact; the log says
# "cannot protect file=$LIB: STEP: ERROR".
kept_old() {
  [ "$(r_out "$1")" = "error=ETXTBSY ino=$OLD_INO" ] ||
    fail "$2: expected ETXTBSY and the fd still on the old file (inode $OLD_INO): $(r_out "$1")"
  expect_survived "$2"
  expect_intact "$LIB" "$OLD_INO" "$V1"
  expect_no_temp "$T/lib"
  expect_cannot_protect "$LIB" "$3" "$4"
}

# -------------------------------------------------- the caller's fd not moved

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
exec 3<>"$LIB"
r_run control "$TG_RTOOL" deny dup3:EPERM "$TG_RTOOL" ftruncate-fd 3 0
exec 3>&-
stop_victim
[ "$R_STATUS" -eq 0 ] || fail "control: ftruncate of fd 3 without truncguard failed: $(r_out control)"
expect_killed "control: ftruncate(3, 0) of the library without truncguard"

for mode in replace unlink; do
  fd_write moved "$mode"
  [ "$R_STATUS" -eq 0 ] || fail "mode $mode: ftruncate of fd 3 failed under truncguard: $(r_out moved)"
  expect_survived "ftruncate of fd 3 (mode $mode)"
  NEW_INO=$(inode "$LIB")
  [ "$NEW_INO" != "$OLD_INO" ] || fail "mode $mode: ftruncate of fd 3 truncated the library in place"
  [ "$(r_out moved)" = "ok ino=$NEW_INO" ] || fail "mode $mode: the fd is not on the new file (inode $NEW_INO): $(r_out moved)"
  [ "$(stat -c %s -- "$LIB")" = 0 ] || fail "mode $mode: ftruncate(3, 0) left $(stat -c %s -- "$LIB") bytes at the name"
  expect_log "replaced file=$LIB [ino $OLD_INO -> $NEW_INO] (mode $mode)"
  expect_no_temp "$T/lib"
  ok "control (mode $mode): ftruncate of fd 3 moves the fd to a new inode, emptied"
done

fd_write refused replace dup3:EPERM
kept_old refused "ftruncate of fd 3, dup3 denied (mode replace)" "cannot move the caller's fd to the new file" \
  "Operation not permitted"
fd_write refused unlink dup3:EPERM
kept_old refused "ftruncate of fd 3, dup3 denied (mode unlink)" "cannot move the caller's fd to the new file" \
  "Operation not permitted (the old file was put back)"

# The program holds a dup of fd 3 (F_DUPFD: the same open file description),
# which moves to the new file before fd 3; only the dup3 onto fd 3 refused,
# the dup must come back to the old file with it (it stayed on the new file,
# which no name reaches once dropped: the program's writes through it lost).
dups_write() {  # dups_write MODE: python truncates fd 3, prints fd 3's and its dup's inodes
  fd3_run "dups_$1" 'dup3=3:EPERM' env TRUNCGUARD_MODE="$1" "$TG_CMD" python3 -c '
import fcntl, os
dup = fcntl.fcntl(3, fcntl.F_DUPFD, 4)
try:
    os.ftruncate(3, 0)
    r = "ok"
except OSError as e:
    r = os.strerror(e.errno)
print(r, "fd3", os.fstat(3).st_ino, "dup", os.fstat(dup).st_ino)'
}
if command -v python3 >/dev/null; then
  for mode in replace unlink; do
    dups_write "$mode"
    [ "$(r_out "dups_$mode")" = "Text file busy fd3 $OLD_INO dup $OLD_INO" ] ||
      fail "mode $mode, dup3 onto fd 3 denied: expected ETXTBSY, fd 3 and its dup on the old file ($OLD_INO): $(r_out "dups_$mode")"
    expect_survived "ftruncate of fd 3 with a dup, dup3 onto fd 3 denied (mode $mode)"
    expect_intact "$LIB" "$OLD_INO" "$V1"
    expect_no_temp "$T/lib"
    ok "mode $mode, the move of fd 3 refused: its dup, moved first, is back on the old file too"
  done
else
  note "SKIP the dup's case: python3 is not installed"
fi

# Mode unlink, where the old file can't be put back either (its rename back
# over the new file fails: EIO): a note says the name holds the new file and
# under which temp name the old one, still the fd's, is kept.
fd_write noputback unlink dup3:EPERM,renameat:EIO
NEW_INO=$(inode "$LIB")
[ "$(r_out noputback)" = "error=ETXTBSY ino=$OLD_INO" ] && [ "$NEW_INO" != "$OLD_INO" ] ||
  fail "mode unlink, dup3 and the put-back failing: $(r_out noputback), at the name $NEW_INO"
expect_survived "ftruncate of fd 3, dup3 and the put-back failing (mode unlink)"
expect_cannot_protect "$LIB" "cannot move the caller's fd to the new file" "Operation not permitted"
aside=$(log_lines "note file=$LIB the name holds the new file [ino $NEW_INO], which was to take its place; the old file, still the caller's fd's, could not be put back (Input/output error): it is kept as " |
  sed -n 's/.* it is kept as \(.*\) in its directory$/\1/p')
[ -n "$aside" ] || fail "mode unlink, dup3 and the put-back failing: no note says where the old file is: $(tg_log)"
[ "$(inode "$T/lib/$aside")" = "$OLD_INO" ] || fail "mode unlink: $aside is not the old file: $(ls -ai "$T/lib")"
expect_same_content "$T/lib/$aside" "$V1"
must rm -f -- "$T/lib/$aside"
ok "mode unlink, dup3 and the put-back failing: the note says the old file is kept as $aside"

# The rename over the name fails once the fd has moved: it moves back.
fd_write norename replace renameat:EIO
kept_old norename "ftruncate of fd 3, the rename failing (EIO)" "cannot rename the new file over the name" \
  "Input/output error"
expect_no_log "note file=$LIB "

# The program's POSIX lock, taken through the fd, across the move: the fd's
# move off the old file (a dup3 over it, a close) releases every POSIX lock
# of the process there. It is taken again on the new file where the move
# stands; where the rename fails and the fd goes back to the old file, it
# must be taken again there (it was lost: another process could take it).
lock_write() { FD_TOOL=ftruncate-fd-lock fd_write "$@"; }  # as fd_write, with rtool ftruncate-fd-lock
for mode in replace unlink; do
  lock_write locked "$mode"
  NEW_INO=$(inode "$LIB")
  [ "$(r_out locked)" = "ok ino=$NEW_INO posix=held" ] && [ "$NEW_INO" != "$OLD_INO" ] ||
    fail "mode $mode: the POSIX lock did not move with the fd to the new file (inode $NEW_INO): $(r_out locked)"
  ok "control (mode $mode): the fd's POSIX lock is taken again on the new file"
done
lock_write lockback replace renameat:EIO
[ "$(r_out lockback)" = "error=ETXTBSY ino=$OLD_INO posix=held" ] ||
  fail "the rename failing: the fd back on the old file (inode $OLD_INO) must keep its POSIX lock: $(r_out lockback)"
expect_intact "$LIB" "$OLD_INO" "$V1"
ok "the rename failing: the fd is back on the old file with its POSIX lock"
# The move refused (dup3), and the POSIX lock, released on the old file by
# the shim's own fds' close, can't be taken again there either (F_SETLK
# refused; the program took it with F_SETLKW): the note says it was lost on
# the old file, where the fd still is.
lock_write lostold replace dup3:EPERM,fcntl=F_SETLK:EPERM
[ "$(r_out lostold)" = "error=ETXTBSY ino=$OLD_INO posix=released" ] ||
  fail "dup3 and F_SETLK refused: expected ETXTBSY, the fd on the old file, its lock lost: $(r_out lostold)"
expect_intact "$LIB" "$OLD_INO" "$V1"
expect_log "note file=$LIB 1 of the locks held through its fd could not be taken again on the old file"
ok "dup3 and F_SETLK refused: the note says the lock could not be taken again on the old file"
TRUNCGUARD_LOG_FORMAT=json lock_write lostold_json replace dup3:EPERM,fcntl=F_SETLK:EPERM
expect_note_key locks

# At the fd limit (rtool with-free-fds N: N numbers free below a hard limit
# of 64), for the N where the shim has an fd for the new file but none for
# `saved` nor for reading the fd's locks (/proc/thread-self/fdinfo): the fd
# moves after the rename, its POSIX lock released with no word said. A note
# (key locks) must say the locks could not be read.
fallbacks=0
for n in 3 4 5; do
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  log_reset
  exec 3<>"$LIB"
  r_run emfile "$TG_RTOOL" with-free-fds "$n" env TRUNCGUARD_MODE=replace "$TG_CMD" "$TG_RTOOL" ftruncate-fd-lock 3 0
  exec 3>&-
  stop_victim
  case $(r_out emfile) in
    "ok ino=$(inode "$LIB") posix=released")
      fallbacks=$((fallbacks + 1))
      expect_log "note file=$LIB the locks held through its fd could not be read (Too many open files): any it held on the old file are released"
      # Nor was there an fd to list the fd's dups with: the note says so,
      # not that kcmp or /proc is missing (both are here).
      expect_log "note file=$LIB its fd's duplicates (dup, F_DUPFD) could not be looked for (/proc/thread-self/fd: Too many open files): any stay on the old file"
      expect_no_log "no kcmp or no /proc" ;;
  esac
done
[ "$fallbacks" -gt 0 ] || fail "with 3 to 5 fds free, the fd never moved without its lock: the case is not reached"
ok "at the fd limit, an fd moved without its POSIX lock: notes say its locks and its dups could not be looked for, and why"

# Control: without kcmp (a seccomp filter), the fd moves, and the note names kcmp.
fd_write nokcmp replace kcmp:ENOSYS
[ "$R_STATUS" -eq 0 ] && [ "$(r_out nokcmp)" = "ok ino=$(inode "$LIB")" ] && [ "$(inode "$LIB")" != "$OLD_INO" ] ||
  fail "kcmp refused: ftruncate of fd 3 did not move it to the new file: $(r_out nokcmp)"
expect_log "note file=$LIB its fd's duplicates (dup, F_DUPFD) could not be looked for (kcmp: Function not implemented): any stay on the old file"
ok "without kcmp, an fd moved without its dups: the note names kcmp"
TRUNCGUARD_LOG_FORMAT=json fd_write nokcmp_json replace kcmp:ENOSYS
expect_note_key fd_duplicates

# No fd to keep the old file open with (F_DUPFD_CLOEXEC refused, as at the
# fd limit): the fd moves after the rename; that failing, the note says what
# is where.
fd_write nofd replace fcntl=1030:EMFILE
[ "$R_STATUS" -eq 0 ] || fail "F_DUPFD_CLOEXEC refused: ftruncate of fd 3 failed: $(r_out nofd)"
expect_survived "ftruncate of fd 3, F_DUPFD_CLOEXEC refused"
NEW_INO=$(inode "$LIB")
[ "$(r_out nofd)" = "ok ino=$NEW_INO" ] && [ "$NEW_INO" != "$OLD_INO" ] ||
  fail "F_DUPFD_CLOEXEC refused: the fd is not on a new file at the name ($NEW_INO): $(r_out nofd)"
ok "F_DUPFD_CLOEXEC refused: the fd moved to the new file after the rename"
fd_write nofd replace fcntl=1030:EMFILE,dup3:EPERM
NEW_INO=$(inode "$LIB")
[ "$(r_out nofd)" = "error=ETXTBSY ino=$OLD_INO" ] && [ "$NEW_INO" != "$OLD_INO" ] ||
  fail "F_DUPFD_CLOEXEC and dup3 refused: expected ETXTBSY, the fd on the old file, a new one at the name: $(r_out nofd), at the name $NEW_INO"
expect_survived "ftruncate of fd 3, F_DUPFD_CLOEXEC and dup3 refused"
expect_no_temp "$T/lib"
expect_cannot_protect "$LIB" "cannot move the caller's fd to the new file" "Operation not permitted"
expect_log "note file=$LIB the name holds the new file [ino $NEW_INO], which was to take its place; the old file, still the caller's fd's, is at no name"
ok "F_DUPFD_CLOEXEC and dup3 refused: the note says the name holds the new file [ino $NEW_INO]"
TRUNCGUARD_LOG_FORMAT=json fd_write nofd_json replace fcntl=1030:EMFILE,dup3:EPERM
expect_note_key fd_not_moved

# The rename failing once the fd moved, and its move back to the old file
# failing too (dup3 from the fd kept on the old file, above fd 500, refused):
# the fd stays on the new file, which no name reaches, and the note says so.
fd_write noback replace 'renameat:EIO,dup3>500:EBADF'
NEW_INO=$(r_out noback | sed -n 's/^error=ETXTBSY ino=\([0-9]*\)$/\1/p')
[ -n "$NEW_INO" ] && [ "$NEW_INO" != "$OLD_INO" ] ||
  fail "rename and move back refused: expected ETXTBSY, the fd on another inode than $OLD_INO: $(r_out noback)"
expect_survived "ftruncate of fd 3, the rename and the move back refused"
expect_intact "$LIB" "$OLD_INO" "$V1"
expect_no_temp "$T/lib"
expect_cannot_protect "$LIB" "cannot rename the new file over the name" "Input/output error"
expect_log "note file=$LIB the caller's fd, moved to the new file, could not be put back on the old one (Bad file descriptor): it is on the new file, which no name reaches; the name keeps the old file [ino $OLD_INO]"
ok "the rename and the move back refused: the note says the fd is on the new file [ino $NEW_INO], at no name"

# ------------------------------------------ the caller's fd's offset not carried

# perl truncates fd 3, at offset 100 (100 bytes read through it), to 100 and
# writes "XYZ" at its offset: the moved fd must be at offset 100 on the new
# file. Where its offset can't be given to the new file (lseek to 100
# refused: a seccomp filter; nor read), the fd must not move (ETXTBSY, the old file
# intact at the name, the log saying why): it moved at offset 0, and perl's
# write landed over the new file's first bytes, with no word said.
offset_write() {  # NAME [DENY-SPEC]: perl reads 100 bytes through fd 3, truncates it to 100, writes XYZ
  fd3_run "$1" "${2:-}" "$TG_CMD" perl -e 'open(my $f, "+<&=", 3) or die "fdopen: $!\n";
    sysread($f, my $head, 100) == 100 or die "read: $!\n"; truncate($f, 100) or die "truncate: $!\n";
    syswrite($f, "XYZ") == 3 or die "write: $!\n"; print "ok\n"'
}
{ head -c 100 "$V1"; printf XYZ; } >"$T/offset.expected"
offset_write offset
[ "$R_STATUS" -eq 0 ] && [ "$(r_out offset)" = ok ] || fail "control: perl's truncate and write through fd 3 failed: $(r_out offset)"
expect_survived "control: perl's truncate of fd 3 at offset 100"
[ "$(inode "$LIB")" != "$OLD_INO" ] || fail "control: perl's truncate of fd 3 truncated the library in place"
expect_same_content "$LIB" "$T/offset.expected"
ok "control: the fd moved to the new file at its offset, 100: perl's write is at 100"

# offset_refused NAME DENY-SPEC WHAT: offset_write NAME under DENY-SPEC must
# fail with ETXTBSY, the old file intact at the name, the log saying why.
offset_refused() {
  offset_write "$1" "$2"
  [ "$R_STATUS" -ne 0 ] && [ "$(r_out "$1")" = "truncate: Text file busy" ] ||
    fail "$3: perl's truncate of fd 3 must fail with ETXTBSY: $(r_out "$1"); at the name: $(od -An -c -N 8 -- "$LIB")"
  expect_survived "perl's truncate of fd 3, $3"
  expect_intact "$LIB" "$OLD_INO" "$V1"
  expect_no_temp "$T/lib"
  expect_cannot_protect "$LIB" "cannot move the caller's fd to the new file" "Operation not permitted"
  ok "$3: the fd stays on the old file, the write fails with ETXTBSY, and the log says why"
}
offset_refused nooffset lseek=100:EPERM "lseek to the fd's offset refused"
# Nor where the offset can't be read (lseek(fd, 0, SEEK_CUR) refused): it
# counted as 0.
offset_refused nocur lseek=0:EPERM "lseek(SEEK_CUR) refused"
# The fd that does not move for want of its offset keeps the program's POSIX
# lock on the old file, as where dup3 fails: the shim's own fds on it closed
# meanwhile (any close releases the process's POSIX locks there), the lock is
# taken again. Its offset was read before the locks were, and the lock was
# lost, with no word said. In both modes (unlink: the old file put back).
for mode in replace unlink; do
  for spec in lseek=0:EPERM lseek=100:EPERM; do
    # (fd 3 at offset 100, one read of 100 bytes: lseek=100 is the new file's)
    fd3_run lockoff "$spec" sh -c 'dd bs=100 count=1 status=none <&3 >/dev/null &&
      exec env TRUNCGUARD_MODE="$1" "$2" "$3" ftruncate-fd-lock 3 0' _ "$mode" "$TG_CMD" "$TG_RTOOL"
    [ "$(r_out lockoff)" = "error=ETXTBSY ino=$OLD_INO posix=held" ] ||
      fail "mode $mode, $spec: the fd that did not move (inode $OLD_INO) must keep its POSIX lock: $(r_out lockoff)"
    expect_intact "$LIB" "$OLD_INO" "$V1"
    expect_no_temp "$T/lib"
    back=; [ "$mode" = replace ] || back=" (the old file was put back)"
    expect_cannot_protect "$LIB" "cannot move the caller's fd to the new file" "Operation not permitted$back"
    ok "mode $mode, $spec: the fd stays on the old file with its POSIX lock"
  done
done

# ------------------------------------------- the old file's times not given

# `dd conv=notrunc` of nothing over a library in use: a write in place that
# writes no byte. The new inode gets the old file's atime and mtime (the
# control). Where they can't be set (utimensat refused: a seccomp filter; a
# FUSE server that refuses it), it has the times of the copy: a note (key
# times) says so, with the error (nothing was said).
times_write() {  # NAME [DENY-SPEC]
  fresh_copy "$V1" "$LIB"
  must touch -d '2001-02-03 04:05:06' -- "$LIB"
  replaced_by "$1" "${2:-}" "$LIB" "$TG_CMD" dd if=/dev/null of="$LIB" conv=notrunc status=none
  expect_same_content "$LIB" "$V1"
}
times_write times
[ "$(stat -c %Y -- "$LIB")" = "$(date -d '2001-02-03 04:05:06' +%s)" ] ||
  fail "control: the new inode has mtime $(stat -c %y -- "$LIB"), not the old file's"
expect_no_log "note file=$LIB the old file's access and modification times"
ok "control: the new inode has the old file's mtime, and no note"

times_write notimes utimensat:EPERM
[ "$(stat -c %Y -- "$LIB")" != "$(date -d '2001-02-03 04:05:06' +%s)" ] ||
  fail "utimensat refused: the new inode has the old mtime all the same: the case is not reached"
expect_log "note file=$LIB the old file's access and modification times could not be given to the new one (Operation not permitted): it has the times of the copy"
ok "utimensat refused: the new inode has the times of the copy, and a note says so"
TRUNCGUARD_LOG_FORMAT=json times_write notimes_json utimensat:EPERM
expect_note_key times

# ------------------------------------- an inherited ACL that can't be removed

# cp over a library in use that has no ACL, in a directory with a default ACL
# ("user:1234:rwx"): the new inode inherits it as its access ACL, which
# truncguard removes, as the old inode written in place has none (the
# control). Where it can't be removed (fremovexattr refused: a seccomp
# filter), the new file keeps it: a note (key acl) says so (nothing was said).
has_acl() { getfattr --absolute-names -n system.posix_acl_access -- "$1" >/dev/null 2>&1; }
must mkdir "$T/acl"
ALIB=$T/acl/libvictim.so
if ! r_acl "$T/acl" default 1234 2>/dev/null; then
  note "no default ACLs on $(stat -f -c %T -- "$T"): the inherited ACL's case is not run"
else
  acl_write() {  # NAME [DENY-SPEC]
    fresh_copy "$V1" "$ALIB"
    must setfattr -x system.posix_acl_access -- "$ALIB"
    replaced_by "$1" "${2:-}" "$ALIB" "$TG_CMD" cp "$V2" "$ALIB"
    expect_same_content "$ALIB" "$V2"
  }
  acl_write acl
  ! has_acl "$ALIB" || fail "control: the new file has an access ACL the old one did not: $(getfattr -d -m - -- "$ALIB" 2>&1)"
  expect_no_log "note file=$ALIB the ACL it inherited"
  ok "control: the new file has no ACL, as the old one, and no note"

  acl_write noremove fremovexattr:EPERM
  has_acl "$ALIB" || fail "fremovexattr refused: the new file has no ACL all the same: the case is not reached"
  expect_log "note file=$ALIB the ACL it inherited from its directory's default ACL could not be removed (Operation not permitted): the new file has it, where the old file had none"
  ok "fremovexattr refused: the new file keeps the inherited ACL, and a note says so"
  TRUNCGUARD_LOG_FORMAT=json acl_write noremove_json fremovexattr:EPERM
  expect_note_key acl
fi

# ------------------------------------------------ fopen with no memory left

# fopen(LIB, "w") while malloc fails (ENOMEM): without truncguard glibc's
# fopen fails before it opens anything, and the library is untouched (the
# control). Under truncguard the new file is made, then no stream can be
# made on it (fdopen: ENOMEM): in atomic mode the fopen fails as without
# truncguard and nothing is published (the empty file was published at the
# shim's close of its fd, the library's content gone from the name).
fresh_copy "$V1" "$LIB"
OLD_INO=$(inode "$LIB")
start_victim "$LIB"
r_run control "$TG_RTOOL" fopen-nomem w "$LIB"
stop_victim
[ "$(r_out control)" = "error=ENOMEM" ] || fail "control: fopen with no memory without truncguard: $(r_out control)"
expect_survived "control: fopen(\"w\") with no memory, without truncguard"
expect_intact "$LIB" "$OLD_INO" "$V1"
ok "control: without truncguard, an fopen with no memory fails with ENOMEM and opens nothing"

fresh_copy "$V1" "$LIB"
OLD_INO=$(inode "$LIB")
start_victim "$LIB"
log_reset
r_run nomem env TRUNCGUARD_MODE=atomic "$TG_CMD" "$TG_RTOOL" fopen-nomem w "$LIB"
stop_victim
[ "$(r_out nomem)" = "error=ENOMEM" ] || fail "atomic mode, fopen with no memory: $(r_out nomem)"
expect_survived "atomic mode: fopen(\"w\") with no memory"
expect_intact "$LIB" "$OLD_INO" "$V1"
expect_no_temp "$T/lib"
expect_log "replaced file=$LIB [ino $OLD_INO -> " "(mode atomic)"
expect_no_log "published file=$LIB"
expect_log "cannot protect file=$LIB: the writer's fopen failed: no stream could be made on the new file (fdopen): Cannot allocate memory; not published: the old file is unchanged"
ok "atomic mode: the fopen fails with ENOMEM, nothing is published, and the log says why"

# A filesystem without RENAME_NOREPLACE (NFS, some FUSE servers: renameat2
# answers EINVAL; an older kernel or a filter, ENOSYS): mode unlink moves
# the old file aside, and back, with a plain rename (its temp name is its
# own), and the write is protected as elsewhere.
for err in EINVAL ENOSYS; do
  fresh_copy "$V1" "$LIB"
  replaced_by "noreplace_$err" "renameat2:$err" "$LIB" env TRUNCGUARD_MODE=unlink "$TG_CMD" cp "$V2" "$LIB"
  expect_same_content "$LIB" "$V2"
  expect_no_temp "$T/lib"
  expect_log "replaced file=$LIB [ino $OLD_INO -> " "(mode unlink)"
  ok "mode unlink without RENAME_NOREPLACE (renameat2: $err): replaced, nothing left in the directory"
done

# ------------------------------------------- a temp file that can't be removed

# The rename over the name fails (EIO), and so does the removal of the new
# file from its temp name (unlinkat: EIO): it stays in the directory (in
# mode replace the empty new file; in atomic mode the writer's whole new
# content, linked there at its close), and a note (key temp_left) names it.
# Nothing said so: the log said "the new content is lost" (atomic) or
# nothing at all (replace), and a hidden file was left behind.
temp_left() {  # MODE CONTENT ERROR: CONTENT, the file the note names must hold; ERROR, cp's
  local mode=$1 content=$2 errtext=$3 left
  fresh_copy "$V1" "$LIB"
  OLD_INO=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  r_run templeft "$TG_RTOOL" deny renameat:EIO,unlinkat:EIO env TRUNCGUARD_MODE="$mode" "$TG_CMD" cp "$V2" "$LIB"
  stop_victim
  [ "$R_STATUS" -ne 0 ] || fail "mode $mode, rename and unlink failing: cp succeeded, its file not at the name"
  # cp's open fails with ETXTBSY (mode replace); in atomic mode its close, EIO.
  grep -q "$errtext" "$T/templeft.out" || fail "mode $mode, rename and unlink failing: cp did not fail with $errtext: $(r_out templeft)"
  expect_survived "mode $mode, rename and unlink failing"
  expect_intact "$LIB" "$OLD_INO" "$V1"
  left=$(log_lines "note file=$LIB " "could not be removed (Input/output error): it stays as " |
    sed -n 's/.* it stays as \(.*\) in its directory$/\1/p')
  [ -n "$left" ] || fail "mode $mode: a temp file was left, and no note says so: $(ls -A "$T/lib"): $(tg_log)"
  [ "$(ls -A "$T/lib" | grep '\.tg-')" = "$left" ] || fail "mode $mode: the note names $left; left there: $(ls -A "$T/lib")"
  expect_same_content "$T/lib/$left" "$content"
  expect_no_log "new content is lost"
  must rm -f -- "$T/lib/$left"
  ok "mode $mode, rename and unlink failing: $(log_lines "note file=$LIB " "it stays as" | cut -f2- | cut -d' ' -f3-)"
}
temp_left replace /dev/null "Text file busy"
temp_left atomic "$V2" "Input/output error"
# The note's key, which a JSON log gives (README: key `temp_left`).
for mode in replace atomic; do
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  log_reset
  r_run templeft_json "$TG_RTOOL" deny renameat:EIO,unlinkat:EIO \
    env TRUNCGUARD_MODE="$mode" TRUNCGUARD_LOG_FORMAT=json "$TG_CMD" cp "$V2" "$LIB"
  stop_victim
  expect_note_key temp_left
  rm -f -- "$T"/lib/.libvictim.so.tg-*
done

# ------------------------------------------ the exec hand-over without F_SETFD

# Atomic mode, a writer that execs another program half way, fd 3 handed
# over to it, under a filter refusing fcntl(F_SETFD) (EPERM): the directory's
# fd can't be kept open across the exec, so the file is published at the
# exec (its last half arriving in place, as in mode replace), with a note.
# It was handed over all the same: the new program found no directory,
# adopted nothing, and the file was never published, without a word (the
# writer exited 0, the name kept v1).
exec_writer() {  # NAME WRAPPER...: bash writes v2 to $LIB in two halves, execing in between
  local name=$1
  shift
  r_run "$name" "$@" bash -c '
    exec 3>"$1"
    head -c 4096 "$2" >&3
    exec bash -c "tail -c +4097 \"\$1\" >&3; exec 3>&-" _ "$2"' _ "$LIB" "$V2"
}
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
exec_writer control "$TG_RTOOL" deny fcntl=2:EPERM
stop_victim
[ "$R_STATUS" -eq 0 ] || fail "control: the exec'ing writer failed without truncguard: $(r_out control)"
expect_killed "control: the exec'ing writer without truncguard, F_SETFD refused"

fresh_copy "$V1" "$LIB"
OLD_INO=$(inode "$LIB")
start_victim "$LIB"
log_reset
exec_writer handover "$TG_RTOOL" deny fcntl=2:EPERM env TRUNCGUARD_MODE=atomic "$TG_CMD"
stop_victim
[ "$R_STATUS" -eq 0 ] || fail "atomic mode, F_SETFD refused: the exec'ing writer failed: $(r_out handover)"
expect_survived "atomic mode, the exec'ing writer, F_SETFD refused"
[ "$(inode "$LIB")" != "$OLD_INO" ] || fail "atomic mode, F_SETFD refused: the writer's file was never published: $(tg_log)"
expect_same_content "$LIB" "$V2"
expect_log "note file=$LIB is published at exec, before the program exec'ed writes it: its directory's fd can't be kept open across the exec (F_SETFD: Operation not permitted)"
expect_log "published file=$LIB [ino $OLD_INO -> " "the writer execs, and the new program does not take it over"
expect_no_temp "$T/lib"
ok "atomic mode, F_SETFD refused: published at the exec, with a note saying why"
