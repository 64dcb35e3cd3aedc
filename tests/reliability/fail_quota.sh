#!/bin/bash
# Failure paths under a disk quota (EDQUOT), on btrfs with a qgroup limit on
# the subvolume that holds the library (root, private mounts). A library in
# use can't be freed, so a new inode for it needs room for both; the quota
# says no with EDQUOT, where fail_no_space's full tmpfs says ENOSPC.
# (Per-user quotas can't be had on the test machine's kernel: no
# CONFIG_QFMT_V2 for ext4, no CONFIG_XFS_QUOTA, no CONFIG_TMPFS_QUOTA.)
#  1. The control: without truncguard, cp over the 4 MiB library with 1 MiB
#     left under the quota truncates it and kills the victim (its write then
#     fails with EDQUOT too: btrfs credits the freed blocks only at the next
#     transaction commit).
#  2. Atomic mode, 1 MiB left: the new inode is made, cp's write fails with
#     EDQUOT: the partial file is never published, the old file stays whole
#     at the name, the log says why (a write failing with EDQUOT keeps it
#     unpublished, as ENOSPC does).
#  3. No room at all (the limit at the current usage): no new inode can be
#     made. In each mode cp fails with ETXTBSY, the victim lives, the old file
#     stays at the name, the same inode, complete, no temp file is left, and
#     the log says "Disk quota exceeded" (mode unlink included: its old file
#     was unlinked first, and the name was left missing).
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_victims
need_mount_ns
need_shim
r_btrfs "$T/mnt"
btrfs quota enable "$T/mnt" >"$T/quota.out" 2>&1 || skip "btrfs quotas can't be enabled here: $(cat "$T/quota.out")"

# Libraries of 4 MiB (the victim's, padded: the loader ignores what follows).
must cp "$V1" "$T/big1.so"
must cp "$V2" "$T/big2.so"
must truncate -s 4M "$T/big1.so" "$T/big2.so"
# Random padding in the new one: no block of it can be shared.
head -c 3M /dev/urandom | dd of="$T/big2.so" bs=1M seek=1 conv=notrunc status=none

# limit SLACK: a fresh subvolume D with a copy of big1.so at LIB, its quota
# set to what it uses now plus SLACK bytes. (A new one each time: a limit
# reached can't even be lifted, EDQUOT.)
n=0
limit() {
  local used id
  n=$((n + 1))
  D=$T/mnt/sub$n
  LIB=$D/libvictim.so
  btrfs subvolume create "$D" >/dev/null || fail "setup: btrfs subvolume create"
  fresh_copy "$T/big1.so" "$LIB"
  sync
  btrfs quota rescan -w "$T/mnt" >/dev/null 2>&1 || fail "setup: btrfs quota rescan"
  id=$(btrfs subvolume show "$D" | awk '$1 == "Subvolume" && $2 == "ID:" { print $3 }')
  used=$(btrfs qgroup show --raw "$D" | awk -v q="0/$id" '$1 == q { print $2 }')
  [ -n "$used" ] || fail "setup: the subvolume's qgroup usage: $(btrfs qgroup show --raw "$D")"
  btrfs qgroup limit $((used + $1)) "$D" >"$T/limit.out" 2>&1 || fail "setup: btrfs qgroup limit: $(cat "$T/limit.out")"
}

# ------------------------------------------------------------ 1. control
limit $((1 << 20))
start_victim "$LIB"
r_run control cp "$T/big2.so" "$LIB"
stop_victim
expect_killed "control: cp without truncguard, 1 MiB left under the quota ($(describe_status "$R_STATUS"): $(head -n1 "$T/control.out"))"

# ------------------------------------------- 2. atomic, cp's write fails
limit $((1 << 20))
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
r_run atomic env TRUNCGUARD_MODE=atomic "$TG_CMD" cp "$T/big2.so" "$LIB"
stop_victim
[ "$R_STATUS" -ne 0 ] || fail "mode atomic: cp of 4 MiB with 1 MiB left under the quota succeeded"
grep -q "Disk quota exceeded" "$T/atomic.out" || fail "mode atomic: cp did not fail with EDQUOT: $(r_out atomic)"
ok "mode atomic: cp reports: $(head -n1 "$T/atomic.out")"
expect_survived "mode atomic, cp over the quota"
expect_intact "$LIB" "$old" "$T/big1.so"
expect_no_temp "$D"
expect_log "replaced file=$LIB [ino $old -> " "(mode atomic)"
expect_log "cannot protect file=$LIB: a write to the new file failed: Disk quota exceeded; not published: the old file is unchanged"
ok "mode atomic: the partial file was not published: $(log_lines "cannot protect file=$LIB" | cut -f2-)"

# ----------------------------------------------- 3. no room at all, each mode
for mode in replace atomic unlink; do
  limit 0
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  r_run none env TRUNCGUARD_MODE=$mode "$TG_CMD" cp "$T/big2.so" "$LIB"
  stop_victim
  expect_etxtbsy none "mode $mode, no room under the quota"
  expect_survived "mode $mode, no room under the quota"
  [ -e "$LIB" ] || fail "mode $mode: the name is gone: $(tg_log)"
  expect_intact "$LIB" "$old" "$T/big1.so"
  expect_no_temp "$D"
  expect_log "cannot protect file=$LIB: " ": Disk quota exceeded" "; failing with ETXTBSY"
  ok "mode $mode: $(log_lines "cannot protect file=$LIB" | cut -f2-)"
done
