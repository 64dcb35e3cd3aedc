#!/bin/bash
# Bug: in atomic mode, with a file pending, the shim read an exec's envp
# (and its path) before the kernel did: a pointer the kernel refuses (the
# exec fails with EFAULT and the program goes on) crashed the program
# (SIGSEGV) instead. bad_exec writes v2 over the library a victim runs, then,
# its fd still open, calls execve, execveat, fexecve and syscall(SYS_execve)
# with envp, argv, an entry of them or the path pointing to nothing, to a
# PROT_NONE page, or a string running into one. Control: without truncguard
# each exec fails with EFAULT, the program goes on, and the victim dies.
# Under truncguard (atomic) the program prints the same, the failed execs
# publish nothing (the name keeps its inode until the close), and the close
# publishes the new content; the victim lives.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
[ -x "$TG_BAD_EXEC" ] || fail "no bad_exec at $TG_BAD_EXEC"
LIB=$T/libvictim.so

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
"$TG_BAD_EXEC" "$LIB" "$V2" >"$T/control.out" 2>&1 || fail "control: bad_exec failed: $(cat "$T/control.out")"
stop_victim
expect_killed "control: bad_exec without truncguard"
grep -q 'execve envp=8: -1 Bad address' "$T/control.out" && grep -q 'same inode: yes' "$T/control.out" ||
  fail "control: unexpected output: $(cat "$T/control.out")"
ok "control: each exec fails with EFAULT and the program goes on"

fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
TRUNCGUARD_MODE=atomic "$TG_CMD" "$TG_BAD_EXEC" "$LIB" "$V2" >"$T/tg.out" 2>&1
st=$?
[ "$st" -eq 0 ] || fail "bad_exec under truncguard (atomic): $(describe_status "$st"): $(cat "$T/tg.out")"
stop_victim
expect_survived "bad_exec under truncguard (atomic)"
diff "$T/control.out" "$T/tg.out" >&2 || fail "bad_exec under truncguard saw other results than without it"
ok "under truncguard: the same results, errno EFAULT each time, nothing published before the close"
new=$(inode "$LIB")
expect_log "published file=$LIB [ino $old -> $new] (mode atomic): the writer closed it"
expect_version "$LIB" 2

# An environment in memory the kernel reads but process_vm_readv can't
# (memfd_secret): the exec succeeds. The shim asked process_vm_readv, took the
# string for unreadable and passed the exec on untouched: nothing published,
# the new content lost (the name kept v1). It now asks with a read like the
# exec's own, and the file is published at the exec (that environment does
# not preload truncguard).
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
"$TG_BAD_EXEC" "$LIB" "$V2" secret >"$T/control.out" 2>&1
st=$?
stop_victim
[ "$st" -eq 77 ] && skip "$(cat "$T/control.out")"
[ "$st" -eq 0 ] || fail "control: bad_exec secret: $(describe_status "$st"): $(cat "$T/control.out")"
expect_killed "control: an exec with an environment in secret memory, without truncguard"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
TRUNCGUARD_MODE=atomic "$TG_CMD" "$TG_BAD_EXEC" "$LIB" "$V2" secret >"$T/tg.out" 2>&1 ||
  fail "bad_exec secret under truncguard (atomic): $(cat "$T/tg.out")"
stop_victim
expect_survived "an exec with an environment in secret memory, under truncguard (atomic)"
expect_same_content "$LIB" "$V2"
expect_log "published file=$LIB [ino "
ok "an exec with an environment in secret memory: the file published at the exec"

# An execvp whose PATH has, before a static program's directory, an entry
# that is a symlink loop: glibc's search ends there (ELOOP: only a missing or
# unrunnable name goes on to the next entry), the exec fails and the program
# goes on. The shim's own look went on, took the static program for the one
# that would run (it can't load the shim) and published the pending file at
# that failed exec: the name held the new file while the writer was still
# writing it. Now nothing is published before the close. The same where the
# entry's name is too long for the kernel (a component of 300 bytes:
# ENAMETOOLONG), which ends glibc's search too.
: "${TG_STATIC_WRITER=$TG_BUILD/tests/writers/static_writer}"
# search_ends ENTRY ERROR WHAT: execvp of static_writer through PATH=ENTRY:$T/static.
search_ends() {
  local entry=$1 err=$2 what=$3 old
  fresh_copy "$V1" "$LIB"
  "$TG_BAD_EXEC" "$LIB" "$V2" search "$entry:$T/static" static_writer >"$T/control.out" 2>&1 ||
    fail "control: bad_exec search failed: $(cat "$T/control.out")"
  grep -q "execvp: -1 $err" "$T/control.out" && grep -q 'same inode: yes' "$T/control.out" ||
    fail "control: execvp through $what: unexpected output: $(cat "$T/control.out")"
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  log_reset
  TRUNCGUARD_MODE=atomic TRUNCGUARD_SCOPE=elf "$TG_CMD" "$TG_BAD_EXEC" "$LIB" "$V2" search "$entry:$T/static" static_writer >"$T/tg.out" 2>&1 ||
    fail "bad_exec search under truncguard (atomic): $(cat "$T/tg.out")"
  diff "$T/control.out" "$T/tg.out" >&2 || fail "execvp through $what: published at the failed exec"
  expect_log "published file=$LIB [ino $old -> $(inode "$LIB")] (mode atomic): the writer closed it"
  expect_version "$LIB" 2
  ok "an execvp that fails on $what ($err) publishes nothing; the close does"
}
if [ -x "$TG_STATIC_WRITER" ]; then
  mkdir -p "$T/static" && cp "$TG_STATIC_WRITER" "$T/static/static_writer" || fail "cannot copy the static writer"
  ln -s loop "$T/loop"
  search_ends "$T/loop" "Too many levels of symbolic links" "a looping PATH entry"
  search_ends "$T/$(printf 'n%.0s' $(seq 300))" "File name too long" "a PATH entry too long"
fi
