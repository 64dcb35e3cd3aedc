#!/bin/bash
# Failure paths with file attributes (chattr; root).
#  1. Immutable file: the kernel refuses the write itself (EPERM), which
#     can't truncate anything either: truncguard passes the call through
#     untouched and the decisions log says why.  Victim alive, name intact.
#  2. Immutable directory, ordinary file: no new inode can be made next to
#     it -> refused + log, name intact.
#  2b. Append-only directory: no file can be renamed over the name or
#     removed there -> refused before a temp file is made, name intact.
#  3. Append-only file (chattr +a): as 1, the kernel refuses every write but
#     an append (EPERM) and truncates nothing: passed through untouched.
# Control: the same file without the attribute is replaced.
# Each mode in FAILPATH_MODES (default "replace atomic").
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_victims
need_root "chattr"
command -v chattr >/dev/null || skip "chattr (e2fsprogs) is not installed"
need_shim

# A filesystem with the immutable flag: $T's own, else a tmpfs (Linux 6.0+).
D=$T/attr
must mkdir "$D"
: >"$D/probe"
if ! chattr +i "$D/probe" 2>/dev/null; then
  rm -f "$D/probe"
  [ -n "${R_IN_MOUNT_NS:-}" ] || skip "$(df --output=fstype "$T" | tail -n1) lacks chattr +i and no private mount namespace for a tmpfs"
  r_tmpfs "$D" "size=4m"
  : >"$D/probe"
  chattr +i "$D/probe" 2>/dev/null || skip "neither $(df --output=fstype "$T" | tail -n1) nor tmpfs support chattr +i here"
fi
chattr -i "$D/probe" && rm -f "$D/probe"
note "filesystem for the attributes: $(df --output=fstype "$D" | tail -n1)"
must mkdir "$D/sub"

cases() {
  local lib=$D/libvictim.so old
  fresh_copy "$V1" "$lib"
  control_replaced "no attribute" "$lib"

  # 1. immutable file
  fresh_copy "$V1" "$lib"
  old=$(inode "$lib")
  r_chattr +i "$lib" || fail "chattr +i $lib"
  start_victim "$lib"
  log_reset
  r_run immutable env TRUNCGUARD_DEBUG=decisions,rewrites "$TG_CMD" cp "$V2" "$lib"
  stop_victim
  expect_kernel_refused immutable "immutable file" "$lib" "$old" "Operation not permitted"
  expect_log "decision file=$lib: pass (caller may not write it; the real call answers)"
  expect_no_temp "$D"
  start_victim "$lib"
  log_reset
  r_run immutable env TRUNCGUARD_DEBUG=decisions,rewrites "$TG_CMD" "$TG_WRITER" truncate "$lib" "$V2"
  stop_victim
  expect_kernel_refused immutable "immutable file, writer truncate" "$lib" "$old" "Operation not permitted"
  expect_log "decision file=$lib: pass (caller may not write it; the real call answers)"
  expect_no_temp "$D"
  chattr -i "$lib"

  # 2. immutable directory
  lib=$D/sub/libvictim.so
  fresh_copy "$V1" "$lib"
  r_chattr +i "$D/sub" || fail "chattr +i $D/sub"
  AT_OPEN="the directory is immutable or append-only" refused "a library in an immutable directory" "$lib" \
    "cannot create a temporary file in the directory" "Operation not permitted"
  # Errors are printed whatever the categories (README, "Settings": "Errors
  # and warnings are always printed"): the same with TRUNCGUARD_DEBUG=none.
  if [ "${TRUNCGUARD_MODE:-replace}" = replace ]; then
    refused "a library in an immutable directory, TRUNCGUARD_DEBUG=none" "$lib" \
      "cannot create a temporary file in the directory" "Operation not permitted" env TRUNCGUARD_DEBUG=none
  fi
  chattr -i "$D/sub"

  # 2b. append-only directory: a file can be made in it, but none renamed
  # over another or removed: refused before a temp file is made (mode
  # replace made one, the rename over the name failed, and it stayed there,
  # undeletable; atomic mode, replacing at open, the same).
  fresh_copy "$V1" "$lib"
  r_chattr +a "$D/sub" || fail "chattr +a $D/sub"
  AT_OPEN="the directory is immutable or append-only" refused "a library in an append-only directory" "$lib" \
    "the directory is append-only: no file can be renamed over the name there" "Operation not permitted"
  chattr -a "$D/sub"

  # 3. append-only file: every write but an append is refused by the kernel
  # (EPERM), a truncating open, truncate(2) and F_SETFL alike (it was copied,
  # then the rename over it failed: ETXTBSY)
  lib=$D/libvictim.so
  fresh_copy "$V1" "$lib"
  old=$(inode "$lib")
  r_chattr +a "$lib" || fail "chattr +a $lib"
  start_victim "$lib"
  log_reset
  r_run appendonly env TRUNCGUARD_DEBUG=decisions,rewrites "$TG_CMD" cp "$V2" "$lib"
  stop_victim
  expect_kernel_refused appendonly "append-only file, cp" "$lib" "$old" "Operation not permitted"
  expect_log "decision file=$lib: pass (an append-only file (chattr +a), which the kernel lets only an append change: the real call answers (EPERM))"
  expect_no_temp "$D"
  local entry
  for entry in truncate append_setfl; do  # truncate(2); an O_APPEND fd's fcntl(F_SETFL) dropping O_APPEND
    start_victim "$lib"
    log_reset
    r_run appendonly env TRUNCGUARD_DEBUG=decisions,rewrites "$TG_CMD" "$TG_WRITER" "$entry" "$lib" "$V2"
    stop_victim
    expect_kernel_refused appendonly "append-only file, writer $entry" "$lib" "$old" "Operation not permitted"
    expect_log "decision file=$lib: pass (an append-only file (chattr +a), which the kernel lets only an append change: the real call answers (EPERM))"
    expect_no_temp "$D"
  done
  chattr -a "$lib"
}
each_mode cases
