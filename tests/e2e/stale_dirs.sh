#!/bin/bash
# A test killed with SIGKILL runs no EXIT trap: its $T stayed under /tmp for
# good, and with chattr'd files (reliability/fail_immutable.sh) a plain
# `rm -rf` could not even remove it. A test starting now removes the
# directories of killed runs (tests/e2e/private_dir.sh): those whose owner
# lock nobody holds. Controls: the directory of a test still running, and one
# kept with TG_KEEP, stay.
. "$(dirname "$0")/lib.sh"
command -v flock >/dev/null || skip "flock (util-linux) is not installed"

# A test that sources lib.sh, says where its $T is, then does $1.
mkdir -p "$T/h" || fail "setup"
cat >"$T/h/probe.sh" <<SH
. "$_tg_here/lib.sh"
echo "\$T" >"\$PROBE_OUT"
case \$1 in
  killed) : >"\$T/immutable" && : >"\$T/append-only"
          if [ "\$(id -u)" -eq 0 ] && command -v chattr >/dev/null; then
            chattr +i "\$T/immutable" 2>/dev/null && chattr +a "\$T/append-only" 2>/dev/null && echo chattr >>"\$PROBE_OUT"
          fi
          kill -KILL \$\$ ;;
  live) exec sleep 600 ;;   # the exec'd program holds the lock (inherited)
  kept) exit 0 ;;
esac
SH

PROBE_OUT=$T/killed.where bash "$T/h/probe.sh" killed >/dev/null 2>&1
killed=$(head -n1 "$T/killed.where")
[ -n "$killed" ] && [ -d "$killed" ] || fail "the killed run left no directory: $(cat "$T/killed.where")"
if grep -q chattr "$T/killed.where"; then
  rm -f -- "$killed/immutable" "$killed/append-only" 2>/dev/null
  [ -e "$killed/immutable" ] && [ -e "$killed/append-only" ] || fail "control: rm removed a chattr'd file"
  note "the killed run's directory has an immutable and an append-only file (rm -rf can't remove it)"
else
  note "not root, or no chattr +i on /tmp: the killed run's files are plain"
fi

PROBE_OUT=$T/live.where bash "$T/h/probe.sh" live >/dev/null 2>&1 &
live_pid=$!
_tg_pids+=("$live_pid")
for _ in $(seq 100); do [ -s "$T/live.where" ] && break; sleep 0.1; done
live=$(cat "$T/live.where")
[ -d "$live" ] || fail "the live run has no directory"
PROBE_OUT=$T/kept.where TG_KEEP=1 bash "$T/h/probe.sh" kept >/dev/null 2>&1 || fail "the kept run failed"
kept=$(cat "$T/kept.where")
[ -d "$kept" ] || fail "TG_KEEP=1 did not keep $kept"

# A new test starts: it removes what the killed run left, only that.
PROBE_OUT=$T/next.where bash "$T/h/probe.sh" kept >/dev/null 2>&1 || fail "the next run failed"
rm -rf -- "$(cat "$T/next.where")"
[ ! -e "$killed" ] || fail "the killed run's directory is still there: $(ls -la "$killed"; lsattr "$killed" 2>&1)"
ok "a new test removed the directory of a test killed with SIGKILL"
[ -d "$live" ] || fail "the directory of a test still running was removed"
[ -d "$kept" ] || fail "a directory kept with TG_KEEP was removed"
ok "the directory of a running test and one kept with TG_KEEP stay"
rm -rf -- "$kept"
kill -KILL "$live_pid" && wait "$live_pid" 2>/dev/null
rm -rf -- "$live"
