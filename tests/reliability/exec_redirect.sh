#!/bin/bash
# A shell's "cat v2 > lib" over a loaded library, done the two ways a
# program runs a command with its output redirected: the child opens the
# library (O_WRONLY|O_TRUNC), dup2()s it to stdout and execs cat:
#   - vfork + execv (the child shares the parent's memory until exec);
#   - fork + execl (glibc's execl reaches execve internally);
#   - vfork + execl, twice: the second child runs on the stack the first left
#     when it exec'ed (in the sanitizer build, where the program's vfork is
#     glibc's, the first child's frames in the exec wrappers left ASan's
#     redzones poisoned there: the second child's open was reported as a
#     stack-buffer-overflow, and it aborted);
#   - vfork + syscall(SYS_execve), twice: the same through the syscall()
#     route, whose frame the child never leaves either.
# In every mode: the victim lives, the library ends up with v2 at a new
# inode, no temp file is left, and the parent's own fds are untouched.
# Each mode in FAILPATH_MODES (default "replace atomic").
. "$(dirname "$0")/rlib.sh"
need_victims
need_shim
LIB=$T/libvictim.so

cases() {
  local how old new mode=$TRUNCGUARD_MODE
  for how in vfork-execv fork-execl vfork-execl-twice vfork-syscall-execve-twice; do
    fresh_copy "$V1" "$LIB"
    old=$(inode "$LIB")
    start_victim "$LIB"
    log_reset
    r_run redirect "$TG_CMD" "$TG_RTOOL" redirect "$how" "$LIB" "$V2"
    stop_victim
    [ "$R_STATUS" -eq 0 ] || fail "mode $mode, $how: $(r_out redirect)"
    ok "mode $mode, $how: the parent's fds are intact"
    expect_survived "mode $mode, $how"
    new=$(inode "$LIB")
    [ "$new" != "$old" ] ||
      fail "mode $mode, $how: the name still holds inode $old, $(stat -c %s "$LIB") bytes (written in place, or the new file was never published); cat exited 0. Log: $(tg_log | cut -f2- | paste -sd'|')"
    cmp -s "$LIB" "$V2" ||
      fail "mode $mode, $how: cat exited 0 but the library holds $(stat -c %s "$LIB") bytes, not v2 ($(stat -c %s "$V2")): the write was lost. Log: $(tg_log | cut -f2- | paste -sd'|')"
    ok "mode $mode, $how: the library holds v2 at a new inode"
    expect_no_temp "$T"
  done
}
each_mode cases
