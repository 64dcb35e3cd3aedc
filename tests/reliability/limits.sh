#!/bin/bash
# Limits a production host puts on a writer, which the shim's own work runs
# into: its extra fds (the header read, the directory, /proc, the temp file)
# where the writer has used all but a few of its descriptors, a file size
# limit (ulimit -f) smaller than the library it copies, a thread with a small
# stack, and system calls a seccomp filter denies. Whatever the writer gets, the victim lives:
# the write either protects it (a new inode and a "replaced" line), or fails
# with the kernel's own answer (EMFILE, for an open that can't get an fd), or
# with the documented fallback ETXTBSY and a "cannot protect" line saying why.
# Never a write that truncates the library unchecked, never a crash.
# Each case first proves that without truncguard the same write kills the victim.
. "$(dirname "$0")/rlib.sh"
# An ASan build of the shim: LeakSanitizer's check at exit lists
# /proc/self/task, which needs an fd and getdents64, the very things these
# writers lack on purpose (every other test checks for leaks).
[ -z "${ASAN_OPTIONS:-}" ] || export ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0
need_victims
need_shim
must mkdir "$T/lib"
LIB=$T/lib/libvictim.so

# outcome WHAT OLD: after r_run limited (the writer under truncguard, its log
# on stderr) and stop_victim: the victim lived, and the writer's answer is
# one of the three allowed ones. Sets OUTCOME (replaced, refused, emfile).
outcome() {
  local what=$1 old=$2 out
  out=$(r_out limited)
  [ "$R_STATUS" -le 128 ] || fail "$what: the writer was $(describe_status "$R_STATUS"): $out"
  expect_survived "$what"
  expect_no_temp "$T/lib"
  if [ "$(inode "$LIB")" != "$old" ]; then
    grep -qF "replaced file=$LIB [ino $old -> $(inode "$LIB")]" <<<"$out" ||
      fail "$what: $LIB has a new inode, but no line says it was replaced: $out"
    OUTCOME=replaced
  elif grep -qE "error=ETXTBSY|Text file busy" <<<"$out"; then
    grep -qE "cannot protect file=$LIB: [^;]+; failing with ETXTBSY" <<<"$out" ||
      fail "$what: ETXTBSY, but no log line says why: $out"
    expect_intact "$LIB" "$old" "$V1"
    OUTCOME=refused
  elif grep -qE "error=EMFILE|Too many open files" <<<"$out"; then
    expect_intact "$LIB" "$old" "$V1"
    OUTCOME=emfile
  else
    fail "$what: neither protected, nor refused with a reason, nor the kernel's EMFILE: $out"
  fi
}

# ----------------------------------------------------- few free descriptors

# at_fd_limit WHAT KINDS CMD...: CMD writes $LIB (a fresh copy of $V1 that a
# victim runs) with 1 to 5 fds free, under truncguard. KINDS: the outcomes
# allowed besides "replaced" (refused, emfile). With the fewest fds the write
# can't be protected, with the most it is: so the sweep crosses the limit.
at_fd_limit() {
  local what=$1 kinds=$2 n old seen=()
  shift 2
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  exec 3<>"$LIB"
  r_run control env -u TRUNCGUARD_LOG "$TG_RTOOL" with-free-fds 5 "$@"
  exec 3>&-
  stop_victim
  expect_killed "control: $what without truncguard, 5 fds free"
  for n in 1 2 3 4 5; do
    fresh_copy "$V1" "$LIB"
    old=$(inode "$LIB")
    start_victim "$LIB"
    exec 3<>"$LIB"   # for ftruncate-fd: an fd on the file the victim maps
    r_run limited env -u TRUNCGUARD_LOG "$TG_RTOOL" with-free-fds "$n" "$TG_CMD" "$@"
    exec 3>&-
    stop_victim
    outcome "$what, $n fds free" "$old"
    [ "$OUTCOME" = replaced ] || [[ " $kinds " == *" $OUTCOME "* ]] ||
      fail "$what, $n fds free: $OUTCOME is not an answer this call may give: $(r_out limited)"
    if grep -q "too many files pending" "$T/limited.out"; then
      fail "$what, $n fds free: the log blames the pending table for a lack of fds: $(r_out limited)"
    fi
    ok "$what, $n fds free: $OUTCOME"
    seen+=("$OUTCOME")
  done
  [ "${seen[0]}" != replaced ] || fail "$what: protected even with 1 fd free: the limit was not reached"
  [ "${seen[4]}" = replaced ] || fail "$what: not protected with 5 fds free: ${seen[4]}"
}

at_fd_limit "open(O_WRONLY|O_TRUNC)" "refused emfile" "$TG_RTOOL" open WRONLY,TRUNC "$LIB"
# Atomic mode needs one more fd, kept until the publication (its directory):
# where none is left it replaces at open, and its note must say so (not "too
# many files pending", which is about its table of 32).
TRUNCGUARD_MODE=atomic at_fd_limit "open(O_WRONLY|O_TRUNC), mode atomic" "refused emfile" \
  "$TG_RTOOL" open WRONLY,TRUNC "$LIB"
at_fd_limit "truncate(2) to 100 bytes" "refused" "$TG_RTOOL" truncate "$LIB" 100
at_fd_limit "ftruncate(2) to 100 bytes" "refused" "$TG_RTOOL" ftruncate-fd 3 100

# No fd free at all: the program's own open can't get one, so it fails with
# the kernel's EMFILE and truncates nothing; under truncguard the same (the
# shim, which could open neither the file nor its directory, leaves it to
# the real call), not ETXTBSY.
if command -v python3 >/dev/null; then
  # without_fds FILE CALL [CMD...]: python fills its fd table, then CALL(FILE):
  # open (O_WRONLY|O_TRUNC, glibc's) or truncate; prints ok or the errno's name.
  without_fds() {
    local file=$1 call=$2
    shift 2
    "$@" python3 -c '
import ctypes, errno, os, resource, sys
libc = ctypes.CDLL(None, use_errno=True)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
held = []
try:
    while True:
        held.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
if sys.argv[2] == "open":
    r = libc.open(sys.argv[1].encode(), os.O_WRONLY | os.O_TRUNC)
else:
    r = libc.truncate(sys.argv[1].encode(), ctypes.c_long(0))
print("ok" if r >= 0 else errno.errorcode[ctypes.get_errno()])' "$file" "$call"
  }
  no_fd_left() { without_fds "$LIB" open "$@"; }  # no_fd_left [CMD...]
  for how in plain guarded; do
    fresh_copy "$V1" "$LIB"
    old=$(inode "$LIB")
    start_victim "$LIB"
    if [ $how = plain ]; then r_run nofd no_fd_left; else r_run nofd no_fd_left env -u TRUNCGUARD_LOG "$TG_CMD"; fi
    stop_victim
    [ "$(r_out nofd | tail -n1)" = EMFILE ] || fail "$how: open(O_WRONLY|O_TRUNC) with no fd free: $(r_out nofd)"
    expect_survived "$how: open(O_WRONLY|O_TRUNC) with no fd free"
    expect_intact "$LIB" "$old" "$V1"
  done
  ok "open(O_WRONLY|O_TRUNC) with no fd free: EMFILE, nothing truncated, with and without truncguard"
  # truncate(2) needs no fd of the program's: with none free, of a text file
  # of 52 bytes or more, it fails with ETXTBSY under truncguard, the log
  # saying why (docs/guarantees.md, "What is not guaranteed": its header
  # can't be read, so it may be a library in use), where without truncguard
  # it succeeds; a file under 52 bytes passes.
  seq 1 100 >"$T/notes.txt"
  r_run nofd without_fds "$T/notes.txt" truncate
  [ "$(r_out nofd | tail -n1)" = ok ] && [ ! -s "$T/notes.txt" ] || fail "control: truncate(2) of a text file with no fd free: $(r_out nofd)"
  seq 1 100 >"$T/notes.txt"
  r_run nofd without_fds "$T/notes.txt" truncate env -u TRUNCGUARD_LOG "$TG_CMD"
  [ "$(r_out nofd | tail -n1)" = ETXTBSY ] && [ "$(stat -c %s "$T/notes.txt")" -eq 292 ] ||
    fail "truncate(2) of a text file with no fd free under truncguard: $(r_out nofd)"
  grep -qF "cannot protect file=$T/notes.txt: cannot open the file's directory: Too many open files; failing with ETXTBSY" "$T/nofd.out" ||
    fail "truncate(2) of a text file with no fd free: no line says why: $(r_out nofd)"
  seq 1 10 >"$T/short.txt"   # 21 bytes: too short to be ELF
  r_run nofd without_fds "$T/short.txt" truncate env -u TRUNCGUARD_LOG "$TG_CMD"
  [ "$(r_out nofd | tail -n1)" = ok ] && [ ! -s "$T/short.txt" ] || fail "truncate(2) of a 21-byte file with no fd free: $(r_out nofd)"
  ok "truncate(2) with no fd free: a 292-byte text file refused (ETXTBSY, said why), a 21-byte one truncated; control: truncated"
fi

# The number an open returns is the lowest free one (POSIX), also when the
# shim's own fds held lower numbers while it made the new inode: a program
# that closes fd 0 (or 1, to redirect stdout) and opens the library gets 0.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
r_run control "$TG_RTOOL" open-after-close 0 "$LIB"
stop_victim
[ "$(r_out control)" = "fd=0 cloexec=1" ] || fail "control: open after close(0): $(r_out control)"
expect_killed "control: open after close(0) without truncguard"
for mode in replace unlink atomic; do
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  r_run limited env TRUNCGUARD_MODE=$mode "$TG_CMD" "$TG_RTOOL" open-after-close 0 "$LIB"
  stop_victim
  expect_survived "open after close(0), mode $mode"
  [ "$(r_out limited)" = "fd=0 cloexec=1" ] ||
    fail "open after close(0), mode $mode: $(r_out limited), expected fd=0 cloexec=1 as without truncguard"
  expect_log "replaced file=$LIB " "(mode $mode)"
  [ "$mode" != atomic ] || expect_log "published file=$LIB " "(mode atomic)"
  ok "open after close(0), mode $mode: replaced, and the caller got fd 0 (close-on-exec kept)"
done

# Scope self: the writer runs the library itself, and may fail to read its own maps.
fresh_copy "$V1" "$LIB"
r_run control "$TG_RTOOL" with-free-fds 5 "$TG_SELFWRITER" "$LIB" "$V2"
[ "$R_STATUS" -gt 128 ] || fail "control: selfwriter without truncguard $(describe_status "$R_STATUS")"
ok "control: selfwriter without truncguard was $(describe_status "$R_STATUS")"
for n in 1 2 3 4 5; do
  fresh_copy "$V1" "$LIB"
  r_run limited env -u TRUNCGUARD_LOG "$TG_RTOOL" with-free-fds "$n" "$TG_CMD" --scope=self "$TG_SELFWRITER" "$LIB" "$V2"
  out=$(r_out limited)
  [ "$R_STATUS" -le 128 ] || fail "scope self, $n fds free: selfwriter was $(describe_status "$R_STATUS"): $out"
  if [ "$R_STATUS" -eq 0 ]; then
    grep -qF "replaced file=$LIB" <<<"$out" || fail "scope self, $n fds free: no replaced line: $out"
  elif grep -q "Text file busy" <<<"$out"; then
    grep -qE "cannot protect file=$LIB: [^;]+; failing with ETXTBSY" <<<"$out" ||
      fail "scope self, $n fds free: ETXTBSY, but no log line says why: $out"
  else
    grep -q "Too many open files" <<<"$out" || fail "scope self, $n fds free: $(describe_status "$R_STATUS"): $out"
  fi
  ok "scope self, $n fds free: selfwriter $(describe_status "$R_STATUS"): $(tail -n1 <<<"$out")"
done

# ------------------------------------------------------------ RLIMIT_FSIZE

# The writer may not make files over 4 KiB (ulimit -f 4); the library is
# bigger. Shrinking it is allowed, but the shim's copy of the part that stays
# must not write past the limit: SIGXFSZ would kill the writer, which without
# truncguard succeeds. The copy is refused instead (ETXTBSY, "File too large").
small_files() { bash -c 'ulimit -f 4 && exec "$@"' small_files "$@"; }
[ "$(stat -c %s "$V1")" -gt 8192 ] || fail "the test library is too small for ulimit -f 4 to matter"
under_fsize_limit() {
  local what="$1 with ulimit -f 4" control=$2 old
  shift 2
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  exec 3<>"$LIB"
  r_run control small_files "$@"
  exec 3>&-
  stop_victim
  [ "$R_STATUS" -eq 0 ] || fail "control: $what without truncguard: $(describe_status "$R_STATUS"): $(r_out control)"
  if [ "$control" = kills ]; then expect_killed "control: $what without truncguard"
  else ok "control: $what without truncguard succeeds: $(r_out control)"; fi
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  start_victim "$LIB"
  exec 3<>"$LIB"
  r_run limited small_files env -u TRUNCGUARD_LOG "$TG_CMD" "$@"
  exec 3>&-
  stop_victim
  outcome "$what" "$old"
  [ "$OUTCOME" = refused ] || fail "$what: $OUTCOME, expected the copy to be refused"
  grep -qF "cannot protect file=$LIB: cannot copy the old content: File too large${PUT_BACK:-}; failing with ETXTBSY" <<<"$(r_out limited)" ||
    fail "$what: the log does not say the copy was too large: $(r_out limited)"
  ok "$what: refused, not killed: $(grep -F 'cannot protect' "$T/limited.out" | cut -f2-)"
}
under_fsize_limit "truncate(2) to 5000 bytes" kills "$TG_RTOOL" truncate "$LIB" 5000
under_fsize_limit "ftruncate(2) to 5000 bytes" kills "$TG_RTOOL" ftruncate-fd 3 5000
under_fsize_limit "open(O_RDWR) to patch in place" succeeds "$TG_RTOOL" open RDWR "$LIB"
# Mode unlink moves the old file aside first: where the new one can't be
# filled (truncguard(7): "... a quota, EFBIG, EIO"), it is put back, the same
# inode at the name, and the write fails with ETXTBSY.
PUT_BACK=" (the old file was put back)" under_fsize_limit "truncate(2) to 5000 bytes, mode unlink" kills \
  env TRUNCGUARD_MODE=unlink "$TG_RTOOL" truncate "$LIB" 5000

# Atomic mode, a writer that ignores SIGXFSZ: its write past the limit fails
# with EFBIG (cp: "File too large"). The file it half wrote must not be
# published at its close: the old one stays whole at the name, as after a
# write that failed with ENOSPC. Control: without truncguard, cp leaves the
# library cut at the limit, and the victim dies.
ignore_xfsz() { bash -c 'trap "" XFSZ && ulimit -f 4 && exec "$@"' ignore_xfsz "$@"; }
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
r_run control ignore_xfsz cp "$V2" "$LIB"
stop_victim
[ "$R_STATUS" -ne 0 ] && grep -q "File too large" "$T/control.out" ||
  fail "control: cp with ulimit -f 4, SIGXFSZ ignored: $(describe_status "$R_STATUS"): $(r_out control)"
expect_killed "control: cp cut short by ulimit -f 4 (SIGXFSZ ignored) without truncguard"
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
r_run limited ignore_xfsz env TRUNCGUARD_MODE=atomic "$TG_CMD" cp "$V2" "$LIB"
stop_victim
[ "$R_STATUS" -ne 0 ] && grep -q "File too large" "$T/limited.out" ||
  fail "atomic, cp cut short by ulimit -f 4: $(describe_status "$R_STATUS"): $(r_out limited)"
expect_survived "atomic, cp cut short by ulimit -f 4 (SIGXFSZ ignored)"
expect_intact "$LIB" "$old" "$V1"
expect_no_temp "$(dirname -- "$LIB")"
expect_log "cannot protect file=$LIB: a write to the new file failed: File too large"
ok "atomic, cp cut short by ulimit -f 4 (EFBIG): not published, the old file whole at the name"

# ------------------------------------------------------------ small thread stacks

# execl, execlp and execle are interposed on every call (pass-through too):
# a thread with the smallest stack the system allows must be able to call
# them as without truncguard (before: a 33 KiB argv array on the stack,
# SIGSEGV in a 16 KiB thread).
for how in l lp le; do
  r_run control "$TG_RTOOL" small-stack-execl 16384 $how
  [ "$R_STATUS" -eq 0 ] || fail "control: exec$how from a 16 KiB thread without truncguard: $(describe_status "$R_STATUS"): $(r_out control)"
  r_run limited "$TG_CMD" "$TG_RTOOL" small-stack-execl 16384 $how
  [ "$R_STATUS" -eq 0 ] || fail "exec$how from a 16 KiB thread under truncguard: $(describe_status "$R_STATUS"): $(r_out limited)"
  ok "exec$how from a thread with a 16 KiB stack: exit 0, with and without truncguard"
done

# ------------------------------------------------------------ seccomp filters

# A hardened service's filter fails a system call the shim relies on (rtool
# deny installs it, then runs the writer): it must fall back to what still
# answers, and never read an error as "nobody maps it".
#  - the lease proof denied (F_SETLEASE) and /proc unlistable (getdents64):
#    nothing is known, so the library counts as in use;
#  - PROCMAP_QUERY denied: the text of the maps names the victim.
#  - copy_file_range denied (EPERM, as systemd's SystemCallFilter= answers)
#    and no reflink: a write in place copies the old content with read and
#    write (measured: `dd conv=notrunc` failed with ETXTBSY, "cannot copy the
#    old content: Operation not permitted", where without truncguard it works).
#  - faccessat2 denied (EPERM: filters written before Linux 5.8 had it, as
#    Docker's before 20.10): access() says whether the caller may write
#    (measured: "pass (caller may not write it)", and the victim died).
denied() {  # denied WHAT SPEC EXPECTED-WHO [WRITER ARG...] (default: cp $V2 $LIB)
  local what=$1 spec=$2 who=$3
  shift 3
  [ $# -gt 0 ] || set -- cp "$V2" "$LIB"
  fresh_copy "$V1" "$LIB"
  victim_write control "$TG_RTOOL" deny "$spec" "$@"
  expect_control_broken "$1, $what" control
  fresh_copy "$V1" "$LIB"
  victim_write limited env -u TRUNCGUARD_LOG "$TG_RTOOL" deny "$spec" "$TG_CMD" "$@"
  expect_new_inode "$what" limited
  who=${who//@PID@/$VICTIM_PID}
  grep -qF "replaced file=$LIB [ino $OLD_INO -> $NEW_INO] (mode replace); mapped executable by $who" "$T/limited.out" ||
    fail "$what: no line says it was replaced because of \"$who\": $(r_out limited)"
  ok "$what: replaced; mapped executable by $who"
}
denied "F_SETLEASE and getdents64 denied" fcntl=F_SETLEASE:EPERM,getdents64:EPERM \
  "nobody known: /proc could not be read"
denied "PROCMAP_QUERY denied (EPERM)" ioctl=PROCMAP_QUERY:EPERM "pid @PID@ ("
denied "PROCMAP_QUERY denied (ENOSYS)" ioctl=PROCMAP_QUERY:ENOSYS "pid @PID@ ("
denied "copy_file_range denied (EPERM), no reflink" ioctl=FICLONE:ENOSYS,copy_file_range:EPERM "pid @PID@ (" \
  dd if="$V2" of="$LIB" conv=notrunc status=none
denied "faccessat2 denied (EPERM)" faccessat2:EPERM "pid @PID@ ("
# The one call whose denial lets the write through unexamined (docs/systemd.md,
# docs/guarantees.md): newfstatat by name (its first argument AT_FDCWD, above
# any fd; ld.so's by fd stay allowed) refused, the library looks missing, the
# open passes as for a new file, and the victim dies as without truncguard.
fresh_copy "$V1" "$LIB"
# (LD_PRELOAD by hand: the command's own search for the library stats by name.)
victim_write limited env -u TRUNCGUARD_LOG "$TG_RTOOL" deny '262>65536:EPERM' \
  env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_DEBUG=decisions "$TG_RTOOL" open WRONLY,TRUNC "$LIB"
expect_killed "newfstatat by name denied (EPERM): the write went through unexamined"
grep -qF "decision file=$LIB: pass (no such file) [open]" "$T/limited.out" ||
  fail "newfstatat by name denied: no decision says the file looked missing: $(r_out limited)"
ok "newfstatat by name denied: the write passes unexamined ('no such file'), as documented"
# freopen(NULL, "w") asks the same before it moves the stream's fd.
fresh_copy "$V1" "$LIB"
victim_write control "$TG_RTOOL" deny faccessat2:EPERM "$TG_RTOOL" freopen-null w "$LIB"
expect_control_broken "freopen(NULL, \"w\"), faccessat2 denied" control
fresh_copy "$V1" "$LIB"
victim_write limited env -u TRUNCGUARD_LOG "$TG_RTOOL" deny faccessat2:EPERM "$TG_CMD" "$TG_RTOOL" freopen-null w "$LIB"
[ "$R_STATUS" -eq 0 ] || fail "freopen(NULL, \"w\"), faccessat2 denied: $(r_out limited)"
expect_survived "freopen(NULL, \"w\"), faccessat2 denied"
[ "$(inode "$LIB")" != "$OLD_INO" ] || fail "freopen(NULL, \"w\"), faccessat2 denied: truncated in place"
ok "freopen(NULL, \"w\"), faccessat2 denied: the stream moved to a new inode"

# A filter that kills (SIGSYS) on setfsuid, in systemd's @privileged
# (SystemCallFilter=@system-service and ~@privileged, the hardening systemd
# suggests, without SystemCallErrorNumber=): atomic mode asks for the
# filesystem uid only in a sticky directory. It asked for it at every
# replacement: cp of a library in use, in a directory that is not sticky,
# was killed. The control: the filter does kill a program that calls it.
r_run control "$TG_RTOOL" deny setfsuid:KILL perl -e 'syscall(122, -1); print "alive\n"'
[ "$R_STATUS" -gt 128 ] || fail "control: setfsuid under the killing filter: $(describe_status "$R_STATUS"): $(r_out control)"
fresh_copy "$V1" "$LIB"
victim_write control "$TG_RTOOL" deny setfsuid:KILL cp "$V2" "$LIB"
expect_control_broken "cp, setfsuid killing" control
fresh_copy "$V1" "$LIB"
victim_write limited env TRUNCGUARD_MODE=atomic "$TG_RTOOL" deny setfsuid:KILL "$TG_CMD" cp "$V2" "$LIB"
expect_new_inode "cp in atomic mode, setfsuid killing, a directory that is not sticky" limited
expect_log "replaced file=$LIB [ino $OLD_INO -> " "(mode atomic)"
ok "cp in atomic mode under a filter that kills on setfsuid: replaced, as without the filter"

# A filter that allows newfstatat and kills on fstat: an allow-list made by
# watching a program (glibc 2.33 on makes fstat() a newfstatat(fd, "",
# AT_EMPTY_PATH): no program calls fstat itself). An O_RDWR open in place
# (`1<>`), looked at through the writer's own fd, stats that fd as glibc
# does: it was a raw fstat, and the shell was killed (SIGSYS) where without
# truncguard, and with the look by name before, it ran. The control: the
# filter does kill a raw fstat.
r_run control "$TG_RTOOL" deny 5:KILL perl -e 'my $b = "\0" x 256; syscall(5, 0, $b); print "alive\n"'
[ "$R_STATUS" -gt 128 ] || fail "control: fstat under the killing filter: $(describe_status "$R_STATUS"): $(r_out control)"
seq 1 100 >"$T/notes.txt"
r_run control "$TG_RTOOL" deny 5:KILL sh -c "echo 1 1<>'$T/notes.txt'"
[ "$R_STATUS" -eq 0 ] || fail "control: \`1<>\` without truncguard, fstat killing: $(describe_status "$R_STATUS"): $(r_out control)"
r_run limited env -u TRUNCGUARD_LOG "$TG_CMD" --debug=decisions "$TG_RTOOL" deny 5:KILL sh -c "echo 1 1<>'$T/notes.txt'"
[ "$R_STATUS" -eq 0 ] || fail "\`1<>\` under truncguard, fstat killing: $(describe_status "$R_STATUS"): $(r_out limited)"
grep -qF "decision file=$T/notes.txt: pass (not an ELF shared object or executable)" "$T/limited.out" ||
  fail "\`1<>\` under truncguard, fstat killing: no decision line: $(r_out limited)"
[ "$(head -c 4 "$T/notes.txt")" = "1
2" ] || fail "\`1<>\`: the file is not as written: $(head -c 20 "$T/notes.txt")"
ok "\`1<>\` of a text file under a filter that kills on fstat: looked at, written, as without truncguard"

# The shim's own stats everywhere else were raw fstat too: the log file's
# check at its open, the header read of an O_TRUNC examination, the acting
# path (replace, unlink, atomic), an ftruncate through the program's fd, the
# POSIX-lock keeping, the dlopen watch. Each was SIGSYS under this filter
# (measured: cp killed before it wrote, a shell killed at its first logged
# decision, python at start-up), where the same program without truncguard,
# which never makes fstat, runs.
# The log's open, alone: a decision line about a missing name, to a file.
rm -f -- "$T/absent.txt"
r_run control "$TG_RTOOL" deny 5:KILL sh -c "echo 1 >'$T/absent.txt'"
[ "$R_STATUS" -eq 0 ] || fail "control: \`>\` without truncguard, fstat killing: $(describe_status "$R_STATUS"): $(r_out control)"
rm -f -- "$T/absent.txt"
log_reset
r_run limited "$TG_RTOOL" deny 5:KILL "$TG_CMD" --debug=decisions sh -c "echo 1 >'$T/absent.txt'"
[ "$R_STATUS" -eq 0 ] || fail "\`>\` under truncguard, a log file, fstat killing: $(describe_status "$R_STATUS"): $(r_out limited)"
expect_log "decision file=$T/absent.txt: pass (no such file)"
ok "a decision written to the log file (TRUNCGUARD_LOG) under a filter that kills on fstat"
# The examination of an ELF file nobody maps (its log on stderr: no log file).
fresh_copy "$V1" "$LIB"
r_run limited env -u TRUNCGUARD_LOG "$TG_RTOOL" deny 5:KILL "$TG_CMD" --debug=decisions cp "$V2" "$LIB"
[ "$R_STATUS" -eq 0 ] || fail "cp over an ELF file nobody maps, fstat killing: $(describe_status "$R_STATUS"): $(r_out limited)"
grep -qF "decision file=$LIB: pass (no process has it open or mapped" "$T/limited.out" ||
  fail "cp over an ELF file nobody maps, fstat killing: no decision line: $(r_out limited)"
expect_same_content "$LIB" "$V2"
ok "cp over an ELF file nobody maps, fstat killing: examined, passed, written"
# The acting path, in each mode, the log to a file.
fresh_copy "$V1" "$LIB"
victim_write control "$TG_RTOOL" deny 5:KILL cp "$V2" "$LIB"
expect_control_broken "cp, fstat killing" control
for mode in replace unlink atomic; do
  fresh_copy "$V1" "$LIB"
  victim_write limited env TRUNCGUARD_MODE="$mode" "$TG_RTOOL" deny 5:KILL "$TG_CMD" cp "$V2" "$LIB"
  expect_new_inode "cp over a library in use in mode $mode, fstat killing" limited
  expect_log "replaced file=$LIB [ino $OLD_INO -> $NEW_INO] (mode $mode)"
  ok "cp over a library in use in mode $mode under a filter that kills on fstat: replaced, logged"
done
# ftruncate(fd, 0) of a library in use, through an fd the shell opened, and
# the same with a POSIX lock taken through it (kept on the new file).
for tool in ftruncate-fd-ino ftruncate-fd-lock; do
  fresh_copy "$V1" "$LIB"
  exec 3<>"$LIB"
  victim_write control "$TG_RTOOL" deny 5:KILL "$TG_RTOOL" "$tool" 3 0
  exec 3>&-
  expect_control_broken "$tool 3 0, fstat killing" control
  fresh_copy "$V1" "$LIB"
  exec 3<>"$LIB"
  victim_write limited "$TG_RTOOL" deny 5:KILL "$TG_CMD" "$TG_RTOOL" "$tool" 3 0
  exec 3>&-
  [ "$R_STATUS" -eq 0 ] || fail "$tool 3 0 under truncguard, fstat killing: $(describe_status "$R_STATUS"): $(r_out limited)"
  expect_survived "$tool 3 0, fstat killing"
  NEW_INO=$(inode "$LIB")
  grep -qF "ok ino=$NEW_INO" "$T/limited.out" && [ "$NEW_INO" != "$OLD_INO" ] ||
    fail "$tool 3 0, fstat killing: the fd is not on the new file at the name: $(r_out limited)"
  [ "$tool" = ftruncate-fd-ino ] || grep -qF "posix=held" "$T/limited.out" ||
    fail "$tool 3 0, fstat killing: the program's lock was lost: $(r_out limited)"
  expect_log "replaced file=$LIB [ino $OLD_INO -> $NEW_INO]"
  ok "$tool 3 0 of a library in use under a filter that kills on fstat: $(head -n1 "$T/limited.out")"
done
# A dlopen, which writes nothing: the watch of loaded libraries checks the
# file it maps (measured: every process that dlopens was killed, python at
# its start-up's extension modules).
fresh_copy "$V1" "$LIB"
r_run control "$TG_RTOOL" deny 5:KILL "$TG_VICTIM" --once "$LIB"
[ "$R_STATUS" -eq 0 ] || fail "control: dlopen without truncguard, fstat killing: $(describe_status "$R_STATUS"): $(r_out control)"
r_run limited "$TG_RTOOL" deny 5:KILL "$TG_CMD" "$TG_VICTIM" --once "$LIB"
[ "$R_STATUS" -eq 0 ] && grep -qx "version 1" "$T/limited.out" ||
  fail "dlopen under truncguard, fstat killing: $(describe_status "$R_STATUS"): $(r_out limited)"
ok "dlopen under a filter that kills on fstat: loaded, as without truncguard"
# TRUNCGUARD_RELOAD=fresh: a dlopen of a library replaced since it was
# loaded (install's rename, here python's) loads the new file under a name
# of its own, once it is checked to be a complete shared object.
RELOAD_PY='import ctypes, os, shutil, sys
lib, v2 = sys.argv[1:]
print("version", ctypes.CDLL(lib).tg_version())
shutil.copyfile(v2, lib + ".new")
os.rename(lib + ".new", lib)
print("version", ctypes.CDLL(lib).tg_version())'
must mkdir "$T/reload"
fresh_copy "$V1" "$T/reload/libvictim.so"
r_run control "$TG_RTOOL" deny 5:KILL python3 -c "$RELOAD_PY" "$T/reload/libvictim.so" "$V2"
[ "$R_STATUS" -eq 0 ] && [ "$(r_out control)" = "version 1
version 1" ] || fail "control: python's reload without truncguard, fstat killing: $(describe_status "$R_STATUS"): $(r_out control)"
fresh_copy "$V1" "$T/reload/libvictim.so"
r_run limited env -u TRUNCGUARD_LOG TRUNCGUARD_RELOAD=fresh "$TG_RTOOL" deny 5:KILL \
  "$TG_CMD" python3 -c "$RELOAD_PY" "$T/reload/libvictim.so" "$V2"
[ "$R_STATUS" -eq 0 ] && grep -qx "version 2" "$T/limited.out" ||
  fail "TRUNCGUARD_RELOAD=fresh under truncguard, fstat killing: $(describe_status "$R_STATUS"): $(r_out limited)"
ok "a stale dlopen with TRUNCGUARD_RELOAD=fresh under a filter that kills on fstat: the new file loaded"
# The acting path's other stats, each where a program's own behaviour leads
# (none was reached by the cases above: a raw fstat put back in any of them
# went unnoticed).
# A write in place, with O_CREAT (dd conv=notrunc): the check of the sticky
# directory for O_CREAT, then the copy of the old content into the new file.
fresh_copy "$V1" "$LIB"
victim_write control "$TG_RTOOL" deny 5:KILL dd if="$V2" of="$LIB" conv=notrunc status=none
expect_control_broken "dd conv=notrunc, fstat killing" control
fresh_copy "$V1" "$LIB"
victim_write limited "$TG_RTOOL" deny 5:KILL "$TG_CMD" dd if="$V2" of="$LIB" conv=notrunc status=none
expect_new_inode "dd conv=notrunc over a library in use, fstat killing" limited
expect_log "replaced file=$LIB [ino $OLD_INO -> $NEW_INO]"
ok "dd conv=notrunc over a library in use under a filter that kills on fstat: the old content copied, replaced"
# The new file's mode refused (fchmod, 91, EPERM): the note about it states
# the mode the new file has.
fresh_copy "$V1" "$LIB"
must chmod 0755 "$LIB"
victim_write control "$TG_RTOOL" deny 91:EPERM,5:KILL cp "$V2" "$LIB"
expect_control_broken "cp, fchmod denied, fstat killing" control
fresh_copy "$V1" "$LIB"
must chmod 0755 "$LIB"
victim_write limited "$TG_RTOOL" deny 91:EPERM,5:KILL "$TG_CMD" cp "$V2" "$LIB"
expect_new_inode "cp over a library in use, fchmod denied, fstat killing" limited
expect_log "note file=$LIB its permission bits could not be set (Operation not permitted): mode 0$(stat -c %a "$LIB") instead of 0755"
ok "cp, fchmod denied, under a filter that kills on fstat: replaced, and the note gives the new file's mode"
# Atomic mode across two execs: bash opens the library (O_CREAT), makes it
# the stdout of env, which finds cat in PATH (execvp): each exec hands the
# pending file over (its owner looked at), each new image adopts it (its
# directory and file looked at), the exec through PATH looks at the program
# it finds; cat's exit publishes it.
fresh_copy "$V1" "$LIB"
victim_write control "$TG_RTOOL" deny 5:KILL bash -c 'env cat "$1" >"$2"' _ "$V2" "$LIB"
expect_control_broken "env cat >, fstat killing" control
fresh_copy "$V1" "$LIB"
victim_write limited env TRUNCGUARD_MODE=atomic "$TG_RTOOL" deny 5:KILL "$TG_CMD" bash -c 'env cat "$1" >"$2"' _ "$V2" "$LIB"
expect_new_inode "atomic, bash -c 'env cat >', fstat killing" limited
expect_log "published file=$LIB [ino $OLD_INO -> $NEW_INO] (mode atomic)"
ok "atomic mode, a pending file handed over across two execs under a filter that kills on fstat: published"
# An O_RDWR open of an ELF file the program keeps locked (a POSIX lock,
# which closing the new fd would release): the look reads the file through
# that fd, once it is still the file at the name, and where the look passes
# (nobody maps it) the name is checked to still reach the fd. (--scope=self:
# lock_holder's checking child opens the file too.)
r_run control env LOCK_HOLDER_CONTENT="$V1" "$TG_RTOOL" deny 5:KILL "$TG_LOCK_HOLDER" "$T/locked.so" rdwr close2
[ "$R_STATUS" -eq 1 ] && grep -qx 'rdwr: held' "$T/control.out" && grep -qx 'close2: released' "$T/control.out" ||
  fail "control: lock_holder rdwr close2 without truncguard, fstat killing: $(describe_status "$R_STATUS"): $(r_out control)"
r_run limited env -u TRUNCGUARD_LOG LOCK_HOLDER_CONTENT="$V1" "$TG_RTOOL" deny 5:KILL \
  "$TG_CMD" --scope=self --debug=decisions "$TG_LOCK_HOLDER" "$T/locked.so" rdwr close2
[ "$R_STATUS" -eq 1 ] && grep -qx 'rdwr: held' "$T/limited.out" && grep -qx 'close2: released' "$T/limited.out" ||
  fail "lock_holder rdwr close2 under truncguard, fstat killing: $(describe_status "$R_STATUS"): $(r_out limited)"
grep -qF "decision file=$T/locked.so: pass (" "$T/limited.out" ||
  fail "lock_holder rdwr under truncguard, fstat killing: no decision line: $(r_out limited)"
ok "an O_RDWR open of a locked ELF file under a filter that kills on fstat: looked at through its fd, passed, the lock held"
# The same open replaced (the program maps the file executable itself): the
# fd it opened, on the locked file, is kept (parked) by the shim, and while
# one is kept each close the program makes is looked at (close2).
r_run control env LOCK_HOLDER_CONTENT="$V1" "$TG_RTOOL" deny 5:KILL "$TG_LOCK_HOLDER" "$T/locked.so" rdwrx close2
grep -qx 'rdwrx: held' "$T/control.out" && grep -qx 'close2: released' "$T/control.out" ||
  fail "control: lock_holder rdwrx close2 without truncguard, fstat killing: $(describe_status "$R_STATUS"): $(r_out control)"
r_run limited env -u TRUNCGUARD_LOG LOCK_HOLDER_CONTENT="$V1" "$TG_RTOOL" deny 5:KILL \
  "$TG_CMD" --scope=self "$TG_LOCK_HOLDER" "$T/locked.so" rdwrx close2
[ "$R_STATUS" -eq 1 ] && grep -qx 'rdwrx: held' "$T/limited.out" && grep -q '^close2: ' "$T/limited.out" ||
  fail "lock_holder rdwrx close2 under truncguard, fstat killing: $(describe_status "$R_STATUS"): $(r_out limited)"
grep -qF "replaced file=$T/locked.so" "$T/limited.out" ||
  fail "lock_holder rdwrx under truncguard, fstat killing: not replaced: $(r_out limited)"
ok "a replaced O_RDWR open of a locked ELF file under a filter that kills on fstat: its fd kept, the lock held"

# The owner note named "not permitted" whatever made the new file's chown
# fail; under a user or group quota it is EDQUOT (shown with a filter, as
# this kernel has no quotas but btrfs qgroups): the note says which.
if [ "$(id -u)" -eq 0 ]; then
  fresh_copy "$V1" "$LIB"
  must chown 65534:65534 "$LIB"
  victim_write limited env TRUNCGUARD_MODE=replace "$TG_RTOOL" deny fchown:EDQUOT "$TG_CMD" cp "$V2" "$LIB"
  expect_new_inode "cp over nobody's library, fchown denied (EDQUOT)" limited
  expect_log "note file=$LIB owner 65534:65534 could not be kept (Disk quota exceeded); the new file is owned by 0:0"
  ok "fchown denied (EDQUOT): the owner note says why"
else
  note "fchown denied (EDQUOT): needs root (a library of nobody's): not tested"
fi

# Mode unlink under a filter refusing unlinkat (EPERM): the old file, moved
# aside, can't be removed once the new one is complete. The write succeeds,
# and the old library stays hidden under its temp name: a note must say
# where (it said nothing: the final unlink's result was not looked at).
fresh_copy "$V1" "$LIB"
victim_write control "$TG_RTOOL" deny unlinkat:EPERM cp "$V2" "$LIB"
expect_control_broken "cp, unlinkat denied" control
fresh_copy "$V1" "$LIB"
victim_write limited env TRUNCGUARD_MODE=unlink "$TG_RTOOL" deny unlinkat:EPERM "$TG_CMD" cp "$V2" "$LIB"
expect_new_inode "cp in mode unlink, unlinkat denied (EPERM)" limited
expect_log "replaced file=$LIB [ino $OLD_INO -> " "(mode unlink)"
aside=$(log_lines "note file=$LIB the old file could not be removed (Operation not permitted): it stays as " |
  sed -n 's/.* it stays as \(.*\) in its directory$/\1/p')
[ -n "$aside" ] || fail "mode unlink, unlinkat denied: no note says where the old file stays: $(tg_log)"
[ "$(inode "$T/lib/$aside")" = "$OLD_INO" ] || fail "mode unlink, unlinkat denied: $aside is not the old file: $(ls -ai "$T/lib")"
must rm -f -- "$T/lib/$aside"
ok "mode unlink, unlinkat denied: replaced, and a note says the old file stays as $aside"
# The note's key, which a JSON log gives (README: key `old_kept`).
fresh_copy "$V1" "$LIB"
victim_write limited_json env TRUNCGUARD_MODE=unlink TRUNCGUARD_LOG_FORMAT=json "$TG_RTOOL" deny unlinkat:EPERM "$TG_CMD" cp "$V2" "$LIB"
expect_note_key old_kept
rm -f -- "$T"/lib/.libvictim.so.tg-*

# Scope self under the same filter: the selfwriter reads its own maps as text.
fresh_copy "$V1" "$LIB"
r_run control "$TG_RTOOL" deny ioctl=PROCMAP_QUERY:EPERM "$TG_SELFWRITER" "$LIB" "$V2"
[ "$R_STATUS" -gt 128 ] || fail "control: selfwriter without truncguard $(describe_status "$R_STATUS")"
fresh_copy "$V1" "$LIB"
r_run limited env -u TRUNCGUARD_LOG "$TG_RTOOL" deny ioctl=PROCMAP_QUERY:EPERM "$TG_CMD" --scope=self "$TG_SELFWRITER" "$LIB" "$V2"
[ "$R_STATUS" -eq 0 ] || fail "scope self, PROCMAP_QUERY denied: selfwriter $(describe_status "$R_STATUS"): $(r_out limited)"
grep -qF "mapped executable by this process" "$T/limited.out" || fail "scope self, PROCMAP_QUERY denied: $(r_out limited)"
ok "scope self, PROCMAP_QUERY denied: $(tail -n1 "$T/limited.out")"

# ------------------------------------------------------------ an unprivileged writer

# nobody may write a library but not read it (mode 0200: it can't read the
# ELF header, take the lease, or read root's maps), and root runs it: it
# still counts as in use, and the log says why. And nobody's header read of
# root's 0666 library works without O_NOATIME (EPERM for a file it does not own).
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null && as_nobody true; then
  nobody_copies
  # rtool too: nobody can't exec it where the build tree is private (0700),
  # as in CI's fresh clone under mktemp -d.
  must cp "$TG_RTOOL" "$T/bin/rtool"
  must chmod 755 "$T/bin/rtool"
  RTOOL_N=$T/bin/rtool
  must mkdir -m 0755 "$T/nb"
  must chown 65534:65534 "$T/nb"
  NLIB=$T/nb/libvictim.so
  write_only_lib() { fresh_copy "$V1" "$NLIB"; must chown 65534:65534 "$NLIB"; must chmod 0200 "$NLIB"; }
  write_only_lib
  start_victim "$NLIB"
  r_run control as_nobody "$RTOOL_N" open WRONLY,TRUNC "$NLIB"
  stop_victim
  expect_killed "control: nobody truncates its write-only library without truncguard ($(r_out control))"
  write_only_lib
  old=$(inode "$NLIB")
  start_victim "$NLIB"
  r_run limited as_nobody env -u TRUNCGUARD_LOG "$TG_CMD_N" "$RTOOL_N" open WRONLY,TRUNC "$NLIB"
  stop_victim
  expect_survived "nobody truncates its write-only (0200) library"
  grep -qF "replaced file=$NLIB [ino $old -> $(inode "$NLIB")] (mode replace); mapped executable by no readable process, but " "$T/limited.out" &&
    grep -qF "processes could not be inspected and its header could not be read" "$T/limited.out" ||
    fail "nobody's write-only library: $(r_out limited)"
  [ "$(stat -c %a "$NLIB")" = 200 ] || fail "the new file's mode is $(stat -c %a "$NLIB"), expected 200"
  ok "nobody's write-only library: $(grep -F 'replaced file' "$T/limited.out" | cut -f2-)"
  # A write in place (O_WRONLY, no O_TRUNC) of it fails with ETXTBSY: there is
  # nothing to copy the old content from (docs/guarantees.md, "What is not
  # guaranteed"); the file stays as it was.
  write_only_lib
  old=$(inode "$NLIB")
  start_victim "$NLIB"
  r_run limited as_nobody env -u TRUNCGUARD_LOG "$TG_CMD_N" "$RTOOL_N" open WRONLY "$NLIB"
  stop_victim
  expect_survived "nobody opens its write-only (0200) library to write in place"
  grep -qx "error=ETXTBSY" "$T/limited.out" && [ "$(inode "$NLIB")" = "$old" ] &&
    grep -qF "cannot protect file=$NLIB: cannot read the old file to keep its content: Permission denied; failing with ETXTBSY" "$T/limited.out" ||
    fail "nobody's write in place of its write-only library: $(r_out limited)"
  ok "nobody's write in place of its write-only library: ETXTBSY, $(grep -F 'cannot protect' "$T/limited.out" | cut -f2-)"

  fresh_copy "$V1" "$LIB"
  must chmod 0666 "$LIB"
  must chmod 0777 "$T/lib"
  start_victim "$LIB"
  r_run limited as_nobody env -u TRUNCGUARD_LOG "$TG_CMD_N" cp "$V2" "$LIB"
  stop_victim
  must chmod 0755 "$T/lib"
  expect_survived "nobody's cp over root's library (0666)"
  grep -qF "processes could not be inspected and it is an ELF shared object" "$T/limited.out" ||
    fail "nobody's cp over root's library: the header was not read (O_NOATIME refused?): $(r_out limited)"
  ok "nobody read the header of root's library: $(grep -F 'replaced file' "$T/limited.out" | cut -f2-)"

  # The same filter, for a caller that may not write the library (root's,
  # 0644, in nobody's directory): the kernel's EACCES still reaches it.
  fresh_copy "$V1" "$NLIB"
  old=$(inode "$NLIB")
  r_run limited as_nobody env -u TRUNCGUARD_LOG "$RTOOL_N" deny faccessat2:EPERM "$TG_CMD_N" cp "$V2" "$NLIB"
  [ "$R_STATUS" -ne 0 ] && grep -q "Permission denied" "$T/limited.out" ||
    fail "faccessat2 denied, nobody's cp over root's 0644 library: $(describe_status "$R_STATUS"): $(r_out limited)"
  expect_intact "$NLIB" "$old" "$V1"
  ok "faccessat2 denied: nobody's cp over root's library still fails: $(head -n1 "$T/limited.out")"

  # A daemon opened the library as root, then dropped to nobody: its fd's
  # name is in a directory nobody may not enter (0700), so no new inode can be
  # made there. Its ftruncate must fail with a reason, not truncate unchecked.
  must mkdir -m 0700 "$T/priv"
  PLIB=$T/priv/libvictim.so
  fresh_copy "$V1" "$PLIB"
  start_victim "$PLIB"
  r_run control as_nobody "$RTOOL_N" ftruncate-fd 3 100 3<>"$PLIB"
  stop_victim
  expect_killed "control: ftruncate after dropping to nobody, without truncguard ($(r_out control))"
  fresh_copy "$V1" "$PLIB"
  old=$(inode "$PLIB")
  start_victim "$PLIB"
  r_run limited as_nobody env -u TRUNCGUARD_LOG "$TG_CMD_N" "$RTOOL_N" ftruncate-fd 3 100 3<>"$PLIB"
  stop_victim
  expect_survived "ftruncate after dropping to nobody"
  expect_intact "$PLIB" "$old" "$V1"
  grep -q "error=ETXTBSY" "$T/limited.out" &&
    grep -qF "cannot protect file=$PLIB: cannot open the file's directory: Permission denied; failing with ETXTBSY" "$T/limited.out" ||
    fail "ftruncate after dropping to nobody: $(r_out limited)"
  ok "ftruncate after dropping to nobody: refused: $(grep -F 'cannot protect' "$T/limited.out" | cut -f2-)"
else
  note "not root or no setpriv: the unprivileged writer's cases are skipped"
fi
