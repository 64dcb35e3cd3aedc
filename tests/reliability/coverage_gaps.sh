#!/bin/bash
# Truncating writes that reach the kernel without passing an interposed
# entry point with the flags the shim tests for.  Each proves its control
# (without truncguard the victim dies), then expects protection.
#  1. open(O_RDONLY|O_TRUNC): Linux truncates a regular file opened
#     read-only with O_TRUNC (if the caller may write it), but the shim's
#     flag test treats a read-only open as "not writing".
#  2. posix_spawn() with posix_spawn_file_actions_addopen(O_WRONLY|O_TRUNC):
#     the redirection is done by glibc inside the spawned child through an
#     internal open, never through the interposed open().
. "$(dirname "$0")/rlib.sh"
need_victims
need_shim
LIB=$T/libvictim.so

gap() {  # gap WHAT CMD...: CMD truncates $LIB (run as "CMD" and "truncguard CMD")
  local what=$1 old
  shift
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  r_run control "$@"
  stop_victim
  expect_killed "control: $what without truncguard"

  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  r_run guarded "$TG_CMD" "$@"
  stop_victim
  if [ "$VICTIM_STATUS" -ne 0 ]; then
    echo "NOT COVERED: $what under truncguard: the victim $(describe_status "$VICTIM_STATUS"); $LIB is now $(stat -c %s "$LIB") bytes, inode $(inode "$LIB") (was $old); log: [$(tg_log | cut -f2- | paste -sd'|')]" >&2
    gaps+=("$what")
    return
  fi
  expect_survived "$what under truncguard"
}
gaps=()

gap "open(O_RDONLY|O_TRUNC)" "$TG_RTOOL" open RDONLY,TRUNC "$LIB"
gap "posix_spawn with an O_WRONLY|O_TRUNC file action" "$TG_RTOOL" spawn-trunc "$LIB"
[ ${#gaps[@]} -eq 0 ] || fail "not covered: $(printf '[%s] ' "${gaps[@]}")"
