#!/bin/bash
# Bug: a program that reaches the kernel through libc's syscall() by number,
# syscall(SYS_openat, AT_FDCWD, lib, O_WRONLY|O_TRUNC) or
# syscall(SYS_ftruncate, fd, 0), truncated a library in use: only SYS_close
# went through the shim. Each number that has a wrapper takes that wrapper's
# way in; each writer here kills the victim without truncguard (control) and
# is protected with it, the log naming the entry point.
. "$(dirname "$0")/lib.sh"
need_victims
[ -x "$TG_WRITER" ] || fail "no writer at $TG_WRITER"
[ -x "$TG_FD_TRUNCATOR" ] || fail "no fd_truncator at $TG_FD_TRUNCATOR"
LIB=$T/libvictim.so
export TRUNCGUARD_DEBUG=rewrites,decisions

# sys_openat_hi: the number with bits above the low 32 set, which the kernel
# ignores (it was an openat the shim let through).
entries=(sys_openat sys_openat_hi sys_truncate)
case $(uname -m) in
  x86_64) entries+=(sys_open sys_creat) ;;  # (newer ports have no SYS_open, SYS_creat)
  *) note "no SYS_open, SYS_creat on $(uname -m)" ;;
esac
for ENTRY in "${entries[@]}"; do
  note "syscall entry $ENTRY"
  write_v2() { "$@" "$TG_WRITER" "$ENTRY" "$LIB" "$V2" >"$T/writer.out"; }
  prove_protection write_v2
  name=${ENTRY#sys_}
  expect_log "decision file=$LIB: act (mapped executable) [syscall(SYS_${name%_hi})]"
done

# Open early (nobody maps it yet), syscall(SYS_ftruncate, fd, 0) late.
run() {
  writer_then_victim fd_truncator "$T/trunc" "$LIB" "$@" "$TG_FD_TRUNCATOR" "$LIB" "$V2" "$T/trunc.ready" "$T/trunc.go" syscall
}
fresh_copy "$V1" "$LIB"
run
expect_killed "control: syscall(SYS_ftruncate) without truncguard"
need_shim
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
log_reset
run "$TG_CMD"
expect_survived "syscall(SYS_ftruncate) under truncguard"
[ "$(inode "$LIB")" != "$old" ] || fail "the name kept inode $old"
expect_version "$LIB" 2
expect_fd_kept "syscall(SYS_ftruncate) under truncguard" "$T/trunc.out"
expect_log "decision file=$LIB: act (mapped executable) [syscall(SYS_ftruncate)]"
ok "syscall(SYS_ftruncate): the fd moved to a new inode, kept its offset and flags"

# An append-only fd (its open passed) that writes at offset 0 through
# syscall(SYS_pwritev2, ..., RWF_NOAPPEND), or punches a hole through
# syscall(SYS_fallocate): as the wrappers (append_fd), it moves to a copy
# first, the flags read where the kernel reads them (pwritev2's sixth
# argument, fallocate's second).
for call in pwritev2 fallocate; do
  ENTRY=append_sys_$([ "$call" = pwritev2 ] && echo noappend || echo punch)
  check_writer "syscall(SYS_$call)" "$TG_WRITER" "$ENTRY" "$LIB" "$V2"
  expect_log "decision file=$LIB: act (mapped executable) [syscall(SYS_$call)]"
  if [ "$call" = pwritev2 ]; then
    expect_same_content "$LIB" "$V2"
  else
    cmp -s -n "$(stat -c %s "$V1")" "$LIB" /dev/zero || fail "syscall(SYS_fallocate): the copy is not all zeros"
  fi
  grep -qx "flags=0x8401 cloexec=1" "$T/writer.out" ||
    fail "$ENTRY: expected O_WRONLY|O_APPEND|O_LARGEFILE (0x8401) and close-on-exec kept, got: $(cat "$T/writer.out")"
done
ok "syscall(SYS_pwritev2, RWF_NOAPPEND) and syscall(SYS_fallocate, PUNCH_HOLE) on an append-only fd moved it to a copy"

# A vfork child's syscall(SYS_close_range) while another thread's dlopen holds
# the loader's lock (a constructor running): it waited for that lock (its real
# call, the next close_range, was looked up there on first use). The child's
# dlsym shows the lock was held meanwhile (control).
[ -x "$TG_VFORK_SYSCALL" ] || fail "no vfork_syscall at $TG_VFORK_SYSCALL"
read -r _ cr _ _ ds _ < <(LD_PRELOAD=$TG_SHIM "$TG_VFORK_SYSCALL" "$(dirname "$TG_VFORK_SYSCALL")/libslow_ctor.so")
[ "${cr:-9999}" -lt 1000 ] || fail "a vfork child's syscall(SYS_close_range) waited ${cr:-?} ms for the loader's lock"
[ "${ds:-0}" -ge 1000 ] || fail "control: a vfork child's dlsym did not wait for the loader's lock (${ds:-?} ms)"
ok "a vfork child's syscall(SYS_close_range): ${cr} ms while another thread's dlopen held the loader's lock (dlsym there: ${ds} ms)"
