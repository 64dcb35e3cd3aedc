#!/bin/bash
# A writer opened the library before anyone mapped it, and truncates it later
# with ftruncate(fd, 0) while a victim runs it. Under truncguard the caller's fd
# moves to a new inode (same number, flags and offset) and the name follows it.
. "$(dirname "$0")/lib.sh"
need_victims
[ -x "$TG_FD_TRUNCATOR" ] || fail "no fd_truncator at $TG_FD_TRUNCATOR"
LIB=$T/libvictim.so

run() {  # run [WRAPPER...]: the truncator opens, the victim maps, the truncator truncates
  rm -f "$T/ready" "$T/go"
  "$@" "$TG_FD_TRUNCATOR" "$LIB" "$V2" "$T/ready" "$T/go" >"$T/trunc.out" 2>"$T/trunc.err" &
  local tpid=$!
  for _ in $(seq 400); do [ -e "$T/ready" ] && break; sleep 0.01; done
  [ -e "$T/ready" ] || fail "fd_truncator did not start: $(cat "$T/trunc.err")"
  start_victim "$LIB"
  touch "$T/go"
  wait "$tpid" || fail "fd_truncator failed: $(cat "$T/trunc.err")"
  sleep 0.2
  stop_victim
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
# fd_truncator prints flags=0xffffffff when F_GETFL changed.
grep -q '^offset=100 flags=0x[0-9a-f]* cloexec=1$' "$T/trunc.out" && ! grep -q 'flags=0xffffffff' "$T/trunc.out" ||
  fail "the fd lost its offset, flags or close-on-exec bit: $(cat "$T/trunc.out")"
ok "the caller's fd kept offset 100, its flags and FD_CLOEXEC"
expect_log "replaced file=$LIB [ino $old -> $new] (mode replace); mapped executable by " "pid $VICTIM_PID ("
