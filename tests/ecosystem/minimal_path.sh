#!/bin/bash
# Run with a minimal PATH (env -i, cron, some CI runners: /usr/bin:/bin),
# the tests that use the administrator's tools skipped as if their packages
# were missing: btrfs and fail_quota ("mkfs.btrfs missing"), crash_durability
# ("xfs_io missing"), who_stale_mounts ("chroot and nsenter are needed"), and
# filesystems passed with 7 of its filesystems skipped ("mkfs.ext4
# missing"...). tests/e2e/lib.sh now adds the sbin directories to PATH. Here:
# what a test sourcing lib.sh under PATH=/usr/bin:/bin finds.
. "$(dirname "$0")/../e2e/lib.sh"
want=$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v losetup) ||
  skip "no losetup (util-linux) here"
got=$(env -i PATH=/usr/bin:/bin bash -c '. "$1" && command -v losetup' in_minimal_path "$_tg_here/lib.sh") ||
  fail "a test under PATH=/usr/bin:/bin does not find losetup (in ${want%/*})"
[ "$got" = "$want" ] || fail "under PATH=/usr/bin:/bin, losetup is $got, not $want"
ok "a test under PATH=/usr/bin:/bin finds the administrator's tools: $got"
