#!/bin/bash
# Where truncguard does not act, the program can't tell it is there; where it
# acts, the program sees what it would have seen. passmatrix (tests/writers)
# makes every intercepted call (the open family, creat, fopen and freopen in
# every mode, truncate, ftruncate, F_SETFL, pwritev2, fallocate, the writes,
# dups and closes, the execs, posix_spawn_file_actions_addopen, sigaction,
# signal and their aliases; each system call among them through syscall()
# by number as well, SYS_openat, SYS_ftruncate...) under the
# conditions a program meets (ENOENT, ENOTDIR, EISDIR, ELOOP, ENAMETOOLONG,
# EEXIST, EACCES as nobody, EROFS, EMFILE, ETXTBSY, EINVAL, EFBIG; O_PATH,
# O_TMPFILE, O_DIRECTORY, O_NOFOLLOW, FIFOs, a pty...) on a text file, an
# unused ELF library and special files, and prints what the caller sees:
# result, errno (set to a sentinel first: a success must not change it), fd
# flags, offset, fd numbers, heap use, and the files afterwards (content,
# inode, timestamps, mode). Its output must be the same without truncguard,
# under it, and in atomic mode. Then the same calls on a library this process
# maps executable, where truncguard acts: what the caller sees must not
# differ either. Control: with TRUNCGUARD_SCOPE=elf (which replaces every ELF
# file) the checker must see the difference.
. "$(dirname "$0")/lib.sh"
need_shim
need_victims
[ -x "$TG_PASSMATRIX" ] || fail "passmatrix not built: $TG_PASSMATRIX"

# matrix NAME [VAR=VALUE...]: passmatrix's output in $T/NAME.out, its files
# in $T/NAME.d (names of one length: a path's length shows in heap use).
run=0
matrix() {
  local name=$1
  shift
  run=$((run + 1))
  mkdir "$T/d$run" || fail "mkdir"
  run_alone env "$@" "$TG_PASSMATRIX" "$T/d$run" "$V1" >"$T/$name.raw" 2>"$T/$name.err" ||
    fail "passmatrix $name failed: $(tail -n 3 "$T/$name.err")"
  grep -v '^# ' "$T/$name.raw" >"$T/$name.out"  # (run_alone's note)
  rm -rf "$T/d$run"
}

same() {
  local a=$1 b=$2 what=$3
  diff "$T/$a.out" "$T/$b.out" >"$T/$b.diff" || fail "$what: $(head -n 20 "$T/$b.diff")"
}

matrix plain
cases=$(grep -c ': ret=' "$T/plain.out")
[ "$cases" -gt 2000 ] || fail "passmatrix ran only $cases cases"
log_reset
matrix replace LD_PRELOAD="$TG_SHIM"
same plain replace "the calls that pass see truncguard"
expect_no_log "replaced file="
matrix atomic LD_PRELOAD="$TG_SHIM" TRUNCGUARD_MODE=atomic
same plain atomic "the calls that pass see truncguard (mode atomic)"
expect_no_log "replaced file="
# The decisions log names every path looked at: a path at an address the
# kernel refuses (EFAULT) too, which it read (SIGSEGV in the program). On
# stderr (a log file would take an fd, which the EMFILE cases count).
matrix decisions -u TRUNCGUARD_LOG LD_PRELOAD="$TG_SHIM" TRUNCGUARD_DEBUG=decisions
same plain decisions "the calls that pass see truncguard (TRUNCGUARD_DEBUG=decisions)"
grep -qF "decision file=(an address the kernel refused): pass (no such file) [syscall(SYS_openat)]" "$T/decisions.err" ||
  fail "no decision line for the path at a refused address: $(grep -c decision "$T/decisions.err") decision lines"
# ... and where the flags alone decided (O_EXCL), before the kernel had read it.
grep -qF "decision file=(an address the kernel refused): pass (O_EXCL: creates a new file or fails) [syscall(SYS_openat)]" "$T/decisions.err" ||
  fail "no decision line for the O_EXCL open of a path at a refused address"
# ... and where O_DIRECTORY or O_TMPFILE alone decided (passmatrix's cases 93, 94).
grep -qF "decision file=(an address the kernel refused): pass (not a regular file) [syscall(SYS_open)]" "$T/decisions.err" ||
  fail "no decision line for the O_DIRECTORY open of a path at a refused address"
grep -qF "decision file=(an address the kernel refused): pass (not a regular file) [syscall(SYS_openat)]" "$T/decisions.err" ||
  fail "no decision line for the O_TMPFILE open of a path at a refused address"
ok "$cases calls where truncguard does not act: the same results, errno, fds, files, with and without it (and its decisions log)"

# Control: a checker that can't see a replaced file would prove nothing.
matrix elf LD_PRELOAD="$TG_SHIM" TRUNCGUARD_SCOPE=elf
if diff "$T/plain.out" "$T/elf.out" >"$T/elf.diff"; then
  fail "control: TRUNCGUARD_SCOPE=elf replaced the unused libraries, and passmatrix saw no difference"
fi
grep -q '^>   lib: .* ino=new' "$T/elf.diff" || fail "control: no new inode seen: $(head -n 5 "$T/elf.diff")"
ok "control: the checker sees scope elf's replacements"

# Where it acts: the library is mapped executable by the writer itself.
matrix mapped_plain PASSMATRIX_MAPPED=1
log_reset
matrix mapped_replace PASSMATRIX_MAPPED=1 LD_PRELOAD="$TG_SHIM"
same mapped_plain mapped_replace "a protected write: the caller sees a difference"
acted=$(log_lines "replaced file=" | wc -l)
[ "$acted" -gt 100 ] || fail "truncguard acted on only $acted writes of the mapped library"
# Documented (docs/guarantees.md): in atomic mode an O_NOFOLLOW open's fd does
# not show O_NOFOLLOW in F_GETFL.
matrix mapped_atomic PASSMATRIX_MAPPED=1 LD_PRELOAD="$TG_SHIM" TRUNCGUARD_MODE=atomic
grep -v 'NOFOLLOW: ret=' "$T/mapped_plain.out" >"$T/mapped_plain_nf.out"
grep -v 'NOFOLLOW: ret=' "$T/mapped_atomic.out" >"$T/mapped_atomic_nf.out"
same mapped_plain_nf mapped_atomic_nf "a protected write: the caller sees a difference (mode atomic)"
ok "$(grep -c ': ret=' "$T/mapped_plain.out") calls on a library in use ($acted replaced): the caller sees the same, in modes replace and atomic"

# execle, execl and execlp build their argv on the way in (interpose.cpp);
# execle's environment is the one after the terminating NULL, never the
# caller's `environ` (which has LD_PRELOAD and the rest): the new program
# gets exactly the environment given, as without truncguard.
execle_env() {
  "$@" python3 -c '
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
envp = (ctypes.c_char_p * 3)(b"TG_ONLY=1", b"TG_TOO=2", None)
libc.execle(b"/usr/bin/env", b"env", None, envp)
sys.exit("execle: " + str(ctypes.get_errno()))' >"$T/execle.out" 2>&1
}
for how in control shim; do
  if [ "$how" = control ]; then execle_env env; else execle_env env LD_PRELOAD="$TG_SHIM"; fi ||
    fail "execle ($how): $(cat "$T/execle.out")"
  [ "$(cat "$T/execle.out")" = "$(printf 'TG_ONLY=1\nTG_TOO=2')" ] ||
    fail "execle ($how): the new program's environment is not the one given: $(head -c 300 "$T/execle.out")"
done
ok "execle: the new program gets exactly the environment given, with and without truncguard"

# open(dir, O_TMPFILE | O_WRONLY, mode): the mode is read for O_TMPFILE as for
# O_CREAT (glibc's __OPEN_NEEDS_MODE); an unnamed file made with mode 0 could
# be linked in later as a file nobody may read.
tmpfile_mode() {
  "$@" python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_TMPFILE | os.O_WRONLY, 0o640)
print(oct(os.fstat(fd).st_mode & 0o7777))' "$T" 2>&1
}
plain=$(umask 022; tmpfile_mode env)
shimmed=$(umask 022; tmpfile_mode env LD_PRELOAD="$TG_SHIM")
[ "$plain" = 0o640 ] || fail "control: open(O_TMPFILE, 0640) made a file with mode $plain"
[ "$shimmed" = "$plain" ] || fail "open(O_TMPFILE, 0640) under truncguard made a file with mode $shimmed, without it $plain"
ok "open(O_TMPFILE, 0640): the file has mode 0640, with and without truncguard"
