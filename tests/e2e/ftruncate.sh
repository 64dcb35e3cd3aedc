#!/bin/bash
# A writer opened the library before anyone mapped it, and truncates it later
# with ftruncate(fd, 0) while a victim runs it. Under truncguard the caller's fd
# moves to a new inode (same number, flags and offset) and the name follows it.
# Also (fd_truncator's "high") with the fd at number 600 and the program's soft
# RLIMIT_NOFILE lowered to 64, where the kernel refuses a dup3 onto that number
# (the move failed with ETXTBSY, the name already holding a new inode): the
# fd moves all the same, and the program's soft limit is still 64 after it;
# a limit the program sets meanwhile stays (the end of the script). And an fd
# opened O_NONBLOCK keeps it (F_GETFL: the new inode's fd had lost it).
# "dup": the program writes through a dup of the fd (F_DUPFD, fd 50) after
# truncating through the fd: the dup stayed on the old inode, and the write
# through it changed the library in place under the victim (SIGSEGV); it
# moves with the fd, sharing its offset. "state": what the program set on the
# fd's open file description goes with it: its F_SETOWN owner, F_SETSIG
# signal, flock, OFD lock and POSIX lock (all were lost: another process
# got each lock on the file at the name, and F_GETOWN/F_GETSIG said 0).
. "$(dirname "$0")/lib.sh"
need_victims
[ -x "$TG_FD_TRUNCATOR" ] || fail "no fd_truncator at $TG_FD_TRUNCATOR"
LIB=$T/libvictim.so

run() {  # run VARIANT [WRAPPER...]: the truncator opens, the victim maps, the truncator truncates
  local variant=$1
  shift
  # shellcheck disable=SC2086  # no variant: no argument
  writer_then_victim fd_truncator "$T/trunc" "$LIB" "$@" "$TG_FD_TRUNCATOR" "$LIB" "$V2" "$T/trunc.ready" \
    "$T/trunc.go" $variant
}

for variant in "" high nonblock dup state; do
  case $variant in
    high) what="ftruncate of fd 600 above a soft limit of 64" ;;
    dup) what="ftruncate of an fd, then writes through its dup" ;;
    state) what="ftruncate of an fd with an owner, a signal and locks" ;;
    nonblock) what="ftruncate of an fd opened O_NONBLOCK" ;;  # (the fd lost it)
    *) what=ftruncate ;;
  esac
  fresh_copy "$V1" "$LIB"
  run "$variant"
  expect_killed "control: $what without truncguard"

  need_shim
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  log_reset
  run "$variant" "$TG_CMD"
  expect_survived "$what under truncguard"
  new=$(inode "$LIB")
  [ "$new" != "$old" ] || fail "$what: the name kept inode $old"
  expect_same_content "$LIB" "$V2"
  expect_version "$LIB" 2
  expect_fd_kept "$what under truncguard" "$T/trunc.out"
  ok "$what: the caller's fd kept offset 100, its flags and FD_CLOEXEC"
  if [ "$variant" = high ]; then
    grep -qx 'soft limit 64' "$T/trunc.out" || fail "$what: the program's soft limit changed: $(cat "$T/trunc.out")"
    ok "$what: the program's soft limit is still 64"
  fi
  if [ "$variant" = dup ]; then
    grep -qx 'dup offset=100' "$T/trunc.out" || fail "$what: the dup does not share the fd's offset: $(cat "$T/trunc.out")"
    # One offset, not two equal ones: a seek through the fd moves the dup's too.
    grep -qx 'after a seek of the fd by 7: dup offset=107' "$T/trunc.out" ||
      fail "$what: the dup is on another open file description than the fd (its own offset): $(cat "$T/trunc.out")"
    ok "$what: the dup moved with the fd (the write through it is in the new file; they share offset 100)"
    # FD_CLOEXEC is each fd's own, not its description's: each dup keeps its own.
    grep -qx "dups' FD_CLOEXEC: 50=0 51=1" "$T/trunc.out" ||
      fail "$what: a dup moved to the new file lost or gained FD_CLOEXEC: $(cat "$T/trunc.out")"
    ok "$what: each dup kept its own FD_CLOEXEC (fd 50 without, fd 51 with)"
  fi
  if [ "$variant" = state ]; then
    grep -qx 'owner=SAME sig=10' "$T/trunc.out" ||
      fail "$what: the fd lost its F_SETOWN owner or F_SETSIG signal: $(cat "$T/trunc.out")"
    grep -qx 'other process: ofd LOCKED flock LOCKED posix LOCKED' "$T/trunc.out" ||
      fail "$what: another process got a lock the program holds: $(cat "$T/trunc.out")"
    ok "$what: owner, signal, flock, OFD and POSIX locks went with the fd to the new file"
  fi
  expect_log "replaced file=$LIB [ino $old -> $new] (mode replace); mapped executable by " "pid $VICTIM_PID ("
done

# The program sets a soft limit of its own (48, from another thread) while
# truncguard's is raised for its dup3 onto fd 600 (that dup3 slowed by
# strace to 0.5 s on its way out, and the thread's setrlimit 0.1 s after it
# sees the raise, so it lands in that dup3): truncguard's set
# back put 64 over the program's 48. Now the program's own limit stays.
if command -v strace >/dev/null; then
  need_shim
  what="ftruncate of fd 600, the program setting its soft limit meanwhile"
  fresh_copy "$V1" "$LIB"
  log_reset
  # (LeakSanitizer, which an ASan build of the shim brings, can't run under ptrace.)
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    run race strace -f -qq -o /dev/null -e trace=dup3 -e inject=dup3:delay_exit=500000:when=2+ "$TG_CMD"
  expect_survived "$what, under truncguard"
  expect_same_content "$LIB" "$V2"
  grep -qx 'soft limit 48' "$T/trunc.out" ||
    fail "$what: the program's own soft limit (48) was not kept: $(cat "$T/trunc.out")"
  ok "$what: the program's own soft limit, 48, kept"

  # Another thread closes the fd while truncguard works on its ftruncate
  # (the move of the fd held up by strace: its first kcmp slowed to 2 s on
  # its way out; the thread acts once truncguard's new file is in the
  # directory) and puts another file at the fd's number (dup2):
  # truncguard's dup3 put the new library on that number, over the thread's
  # file, whose bytes then went into the library at the name. Now the number
  # is left to the thread, the name keeps the old file, and the ftruncate
  # fails with ETXTBSY, logged.
  what="ftruncate of an fd another thread closes and reuses meanwhile"
  fresh_copy "$V1" "$LIB"
  rm -f -- "$LIB.other"
  old=$(stat -c %i "$LIB")
  log_reset
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    run reuse strace -f -qq -o /dev/null -e trace=kcmp -e inject=kcmp:delay_exit=2000000:when=1 "$TG_CMD"
  expect_survived "$what, under truncguard"
  grep -qx 'fd 3 names: other' "$T/trunc.out" ||
    fail "$what: the thread's file lost its fd number to the library: $(cat "$T/trunc.out")"
  grep -qx 'ftruncate: Text file busy' "$T/trunc.out" ||
    fail "$what: expected the ftruncate to fail with ETXTBSY: $(cat "$T/trunc.out")"
  [ "$(cat "$LIB.other")" = "the thread's bytes" ] || fail "$what: the thread's file lacks its bytes"
  [ "$(stat -c %i "$LIB")" = "$old" ] && cmp -s "$LIB" "$V1" ||
    fail "$what: the name no longer holds the old file, whole"
  ok "$what: the number stays the thread's file, the name keeps the old file, the ftruncate fails"
  expect_log "cannot protect file=$LIB: its fd was closed or given another file meanwhile (another thread)"
else
  note "SKIP the race part: strace is not installed"
fi

# The file's name was taken by another file (a deploy renamed its new
# library over it) between the victim's start and the ftruncate: the fd's
# file, which the victim runs, has no name left, and the ftruncate still
# truncates it. It was let through ("no such file") and killed the victim;
# no new inode can take its place at a name, so it fails with ETXTBSY.
deleted_run() {  # deleted_run [WRAPPER...] (NO_VICTIM=1: no victim maps the file)
  rm -f -- "$T/trunc.ready" "$T/trunc.go"
  "$@" "$TG_FD_TRUNCATOR" "$LIB" "$V2" "$T/trunc.ready" "$T/trunc.go" >"$T/trunc.out" 2>"$T/trunc.err" &
  local wpid=$! i
  for ((i = 0; i < 500; i++)); do [ -e "$T/trunc.ready" ] && break; sleep 0.01; done
  [ -e "$T/trunc.ready" ] || fail "fd_truncator did not start: $(cat -- "$T/trunc.err")"
  [ -n "${NO_VICTIM:-}" ] || start_victim "$LIB"
  must cp "$V2" "$T/deploy.so"
  must mv -f "$T/deploy.so" "$LIB"
  touch -- "$T/trunc.go"
  wait "$wpid"
  TRUNC_STATUS=$?
  sleep 0.2
  [ -n "${NO_VICTIM:-}" ] || stop_victim
}
what="ftruncate of an fd whose file's name another file took"
fresh_copy "$V1" "$LIB"
deleted_run
expect_killed "control: $what, without truncguard"
fresh_copy "$V1" "$LIB"
log_reset
deleted_run "$TG_CMD"
expect_survived "$what, under truncguard"
[ "$TRUNC_STATUS" -ne 0 ] && grep -q 'ftruncate: Text file busy' "$T/trunc.err" ||
  fail "$what: expected the ftruncate to fail with ETXTBSY: status $TRUNC_STATUS, $(cat "$T/trunc.err")"
ok "$what: the ftruncate fails with ETXTBSY"
expect_same_content "$LIB" "$V2"
expect_log "cannot protect file=$LIB (deleted): its file is no longer at its name"

# The same fd, its file at no name, but mapped by no process, under scope elf
# (which acts on every ELF file without asking who maps it): no process is
# known to map it, and no new inode can take its place, so the real call
# truncates it, as without truncguard (a scope that can't see who maps it
# made every such ftruncate fail with ETXTBSY).
fresh_copy "$V1" "$LIB"
log_reset
NO_VICTIM=1 deleted_run env TRUNCGUARD_SCOPE=elf "$TG_CMD"
[ "$TRUNC_STATUS" -eq 0 ] && grep -qx 'offset=100 flags=0x8002 cloexec=1' "$T/trunc.out" ||
  fail "scope elf, $what, mapped by nobody: status $TRUNC_STATUS, $(cat "$T/trunc.out" "$T/trunc.err")"
expect_same_content "$LIB" "$V2"
expect_no_log "cannot protect"
ok "scope elf, $what, mapped by no process: the ftruncate goes through"

# An fd whose file's path is 4 KiB or longer (reached by relative names): the
# kernel's readlink of /proc/thread-self/fd/N refuses it (ENAMETOOLONG), so
# the fd's file can't be named, and its ftruncate over a library in use fails
# with ETXTBSY, logged (README, "Limits"); an open by a relative name there is
# protected as anywhere. The directory: 20 names of 250 bytes under $T.
what="ftruncate of an fd whose file's path is over 5 KiB"
name=$(printf 'd%.0s' $(seq 250))
mkdir "$T/long" && cd "$T/long" || fail "setup: cannot make $T/long"
for _ in $(seq 20); do mkdir "$name" && cd "$name" || fail "setup: cannot make a path of 5 KiB"; done
fresh_copy "$V1" lib.so
writer_then_victim fd_truncator "$T/trunc" ./lib.so "$TG_FD_TRUNCATOR" lib.so "$V2" "$T/trunc.ready" "$T/trunc.go"
expect_killed "control: $what, without truncguard"
fresh_copy "$V1" lib.so
old=$(inode lib.so)
log_reset
writer_then_victim fd_truncator "$T/trunc" ./lib.so sh -c '"$@"; echo $? >"$0"' "$T/trunc.status" \
  "$TG_CMD" "$TG_FD_TRUNCATOR" lib.so "$V2" "$T/trunc.ready" "$T/trunc.go"
expect_survived "$what, under truncguard"
[ "$(cat "$T/trunc.status")" = 1 ] && grep -q 'ftruncate: Text file busy' "$T/trunc.err" ||
  fail "$what: expected the ftruncate to fail with ETXTBSY: status $(cat "$T/trunc.status"), $(cat "$T/trunc.err")"
[ "$(inode lib.so)" = "$old" ] || fail "$what: the name holds a new inode"
expect_same_content lib.so "$V1" "$what: the library"
expect_log "cannot protect file=fd " ": cannot read the file's name (/proc/thread-self/fd): File name too long; failing with ETXTBSY"
ok "$what: ETXTBSY, $(log_lines "cannot protect file=fd" | cut -f2-)"
fresh_copy "$V1" lib.so
old=$(inode lib.so)
start_victim ./lib.so
log_reset
"$TG_CMD" cp "$V2" lib.so || fail "cp by a relative name in a path of 5 KiB failed under truncguard"
stop_victim
expect_survived "cp by a relative name in a path of 5 KiB, under truncguard"
[ "$(inode lib.so)" != "$old" ] || fail "cp by a relative name in a path of 5 KiB: the name kept inode $old"
expect_same_content lib.so "$V2" "cp by a relative name in a path of 5 KiB"
expect_log "replaced file=lib.so [ino $old -> "
ok "cp by a relative name in a path of 5 KiB: replaced"
cd "$T" || fail "cannot cd to $T"

# More duplicates than truncguard follows (64): the one left on the old file
# is counted in a note, in the singular ("1 of ... stay" before).
if command -v python3 >/dev/null; then
  what="ftruncate of an fd with 65 duplicates"
  fresh_copy "$V1" "$LIB"
  log_reset
  writer_then_victim python3 "$T/dups" "$LIB" "$TG_CMD" python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
dups = [os.dup(fd) for _ in range(65)]
open(sys.argv[2] + ".ready", "w").close()
while not os.path.exists(sys.argv[2] + ".go"):
    time.sleep(0.01)
os.ftruncate(fd, 0)' "$LIB" "$T/dups"
  expect_survived "$what, under truncguard"
  expect_log "note file=$LIB 1 of its fd's duplicates (dup, F_DUPFD) stays on the old file"
  ok "$what: $(log_lines "note file=$LIB 1 of" | cut -f2-)"
else
  note "SKIP the duplicates' note: python3 is not installed"
fi
