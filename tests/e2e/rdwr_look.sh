#!/bin/bash
# An open for reading and writing that truncates nothing (a shell's `1<>`,
# SQLite's and python's "r+b": O_RDWR) is looked at after the real open,
# through the program's own new fd: fstat, and the header read with pread
# (O_NOATIME set for it with F_SETFL and put back). The shim opens nothing of
# its own there, where it used to walk the path twice (fstatat, then an open,
# a read, a lock check and a close). Counted with strace: the file is opened
# once, by the writer.
# Control: a write-only open (dd conv=notrunc: O_WRONLY) can't be read
# through, so the shim opens the file itself: strace does see the shim's open.
# What the program sees and the file keeps (F_GETFL, offset, atime...) is
# compared by invisible.sh (passmatrix), the lock by posix_locks.sh, a
# library in use by inplace_writes.sh, a running executable by
# running_executable.sh.
. "$(dirname "$0")/lib.sh"
need_shim
command -v strace >/dev/null || skip "strace is not installed (scripts/setup.sh installs it)"

F=$T/notes.txt
seq 1 100 >"$F"

# opens WHAT CMD...: how many times CMD's processes opened $F (strace).
opens() {
  local what=$1
  shift
  # (LeakSanitizer can't run under ptrace: a sanitizer build's shim would abort.)
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    strace -f -qq -e trace=open,openat,openat2,pread64 -o "$T/$what.strace" "$@" ||
    fail "$what: the writer failed: $(tail -n 5 "$T/$what.strace")"
  grep -c -F "\"$F\"" "$T/$what.strace"
}

n=$(opens wronly "$TG_CMD" dd if=/dev/null of="$F" conv=notrunc status=none)
[ "$n" -ge 2 ] || fail "control: O_WRONLY in place: $F opened $n times (the writer's and the shim's expected): $(cat "$T/wronly.strace")"
ok "control: a write-only open in place: $F opened $n times (the writer's, and the shim's look)"

log_reset
n=$(opens rdwr "$TG_CMD" --debug=decisions sh -c ": 1<>'$F'")
[ "$n" = 1 ] || fail "O_RDWR in place: $F opened $n times, expected 1 (the writer's): $(cat "$T/rdwr.strace")"
grep -q -F 'pread64(' "$T/rdwr.strace" && grep -q -F '"1\n2\n3\n' "$T/rdwr.strace" ||
  fail "O_RDWR in place: no header read seen: $(cat "$T/rdwr.strace")"
expect_log "decision file=$F: pass (not an ELF shared object or executable) [open64]"
ok "O_RDWR in place: examined through the writer's own fd ($F opened once)"

seq 1 100 | cmp -s - "$F" || fail "the file changed: $(head -c 200 "$F")"
ok "the file's content is as it was"

# An ELF file (nobody maps it, nobody locks it) can't be settled through the
# writer's fd: that fd is closed again before the look by name, after one
# lock check (F_OFD_GETLK: a POSIX lock would have it kept). It was asked
# twice, and the fd set close-on-exec just before its close (strace: 25
# system calls per open where 23 do).
E=$T/plain.so
must cp "$TG_LIB_V1" "$E"
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
  strace -f -qq -e trace=openat,fcntl,close -o "$T/elf.strace" "$TG_CMD" sh -c ": 1<>'$E'" ||
  fail "O_RDWR of an ELF file: the writer failed: $(tail -n 5 "$T/elf.strace")"
# The calls on the writer's fd, from its open to its first close.
calls=$(awk -v f="\"$E\"" '
  !fd && index($0, "openat(") && index($0, f) && index($0, "O_RDWR") { fd = $NF; next }
  fd && (index($0, "(" fd ",") || index($0, "(" fd ")")) { sub(/^[0-9]+ +/, ""); split($0, a, /[(,]/); print (a[1] == "fcntl" ? "fcntl(" a[3] ")" : a[1]); if (a[1] == "close") exit }
' "$T/elf.strace" | tr -d ' ' | tr '\n' ' ')
calls=${calls% }
case $calls in
  *"fcntl(F_OFD_GETLK) fcntl(F_OFD_GETLK)"* | *F_SETFD*)
    fail "O_RDWR of an ELF file: the writer's fd asked twice for a lock, or set close-on-exec, before its close: $calls" ;;
  *"fcntl(F_OFD_GETLK) close") ;;
  *) fail "O_RDWR of an ELF file: the writer's fd is not closed after a lock check: $calls ($(cat "$T/elf.strace"))" ;;
esac
cmp -s "$E" "$TG_LIB_V1" || fail "O_RDWR of an ELF file: the file changed"
ok "O_RDWR of an ELF file: the writer's fd closed after one lock check ($calls)"

# The decisions log names every writing open considered, one that fails too
# (TRUNCGUARD_DEBUG=decisions, README): looked at after the real open, an
# O_RDWR open that failed was not logged at all (the look by name said "no
# such file", "not a regular file"...). Now the kernel's answer gives the
# reason. Control: the same opens O_WRONLY, looked at by name first.
mkdir "$T/dir" || fail "mkdir $T/dir"
for redir in '>' '<>'; do
  log_reset
  "$TG_CMD" --debug=decisions sh -c "true 1$redir'$T/missing/x'; true 1$redir'$T/dir'" 2>/dev/null
  expect_log "decision file=$T/missing/x: pass (no such file) [open64]"
  expect_log "decision file=$T/dir: pass (not a regular file) [open64]"
  ok "\`1$redir\` that fails (ENOENT, EISDIR): the decisions log says why it passed"
done
