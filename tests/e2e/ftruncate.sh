#!/bin/bash
# A writer opened the library before anyone mapped it, and truncates it later
# with ftruncate(fd, 0) while a victim runs it. Under truncguard the caller's fd
# moves to a new inode (same number, flags and offset) and the name follows it.
. "$(dirname "$0")/lib.sh"
need_victims
[ -x "$TG_FD_TRUNCATOR" ] || fail "no fd_truncator at $TG_FD_TRUNCATOR"
LIB=$T/libvictim.so

run() {  # run [WRAPPER...]: the truncator opens, the victim maps, the truncator truncates
  writer_then_victim fd_truncator "$T/trunc" "$LIB" "$@" "$TG_FD_TRUNCATOR" "$LIB" "$V2" "$T/trunc.ready" "$T/trunc.go"
}

fresh_copy "$V1" "$LIB"
run
expect_killed "control: ftruncate without truncguard"

need_shim
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
log_reset
run "$TG_CMD"
expect_survived "ftruncate under truncguard"
new=$(inode "$LIB")
[ "$new" != "$old" ] || fail "the name kept inode $old"
expect_same_content "$LIB" "$V2"
expect_version "$LIB" 2
expect_fd_kept "ftruncate under truncguard" "$T/trunc.out"
ok "the caller's fd kept offset 100, its flags and FD_CLOEXEC"
expect_log "replaced file=$LIB [ino $old -> $new] (mode replace); mapped executable by " "pid $VICTIM_PID ("
