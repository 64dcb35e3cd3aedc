# Sourced by lib.sh and tests/reload/rlib.sh: each test's private directory
# $T under /tmp. A test killed with SIGKILL (a meson timeout's second signal,
# a CI job cancelled, the OOM killer) runs no EXIT trap and leaves its $T
# behind, possibly with chattr'd files (reliability/fail_immutable.sh) that a
# plain `rm -rf` can't remove. Each test therefore holds a lock on $T/.harness-owner
# for its life (flock, inherited by what it starts), and a test starting
# removes the directories of earlier runs whose lock nobody holds any more:
# only directories of this harness's names (/tmp/tg-e2e-*, /tmp/tg-reload-*),
# owned by this user, with the owner file, not kept with TG_KEEP.

# tg_own_dir DIR: lock DIR/.harness-owner for as long as this shell (or a process
# it started) lives. Locked under another name, then renamed: a directory's
# owner file is never seen unlocked while its test lives.
tg_own_dir() {
  command -v flock >/dev/null || return 0
  exec {_tg_owner_fd}>"$1/.harness-owner.new" && flock -n "$_tg_owner_fd" && mv -f -- "$1/.harness-owner.new" "$1/.harness-owner"
}

# tg_disown_dir DIR: a directory kept on purpose (TG_KEEP) is no one's
# leftover: never removed by a later run.
tg_disown_dir() { rm -f -- "$1/.harness-owner"; }

# tg_remove_stale PREFIX...: remove /tmp/PREFIX*.XXXXXX directories left by
# killed tests (see above). Immutable and append-only flags are cleared first.
tg_remove_stale() {
  command -v flock >/dev/null || return 0
  local prefix d uid
  uid=$(id -u)
  for prefix in "$@"; do
    for d in /tmp/"$prefix"*.??????; do
      [ -d "$d" ] && [ ! -L "$d" ] && [ -f "$d/.harness-owner" ] && [ ! -L "$d/.harness-owner" ] || continue
      [ "$(stat -c %u -- "$d")" = "$uid" ] || continue
      # Held (its test, or a process of it, still runs): busy, skipped. Free:
      # removed while this holds the lock, so two tests never race on it.
      flock -n "$d/.harness-owner" bash -c '
        command -v chattr >/dev/null && chattr -R -f -i -a -- "$1" 2>/dev/null
        rm -rf --one-file-system -- "$1" 2>/dev/null' tg-remove-stale "$d"
    done
  done
  return 0
}
