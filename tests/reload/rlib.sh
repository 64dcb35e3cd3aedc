# Shared by the reload tests: a private directory, plugin copies, assertions.
set -u -o pipefail
TEST_NAME=$(basename "$0" .sh)
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/private_dir.sh"
tg_remove_stale tg-e2e- tg-reload-
T=$(mktemp -d /tmp/tg-reload-"$TEST_NAME".XXXXXX) || exit 1
chmod 755 "$T"
tg_own_dir "$T" || { echo "FAIL: cannot lock $T/.harness-owner" >&2; rm -rf -- "$T"; exit 1; }
trap 'rm -rf "$T"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/preload_copies.sh"
preload_copies TG_CMD TG_SHIM TG_NEXT_PRELOAD TG_WRITE_IFUNC
unset LD_PRELOAD TRUNCGUARD_SCOPE TRUNCGUARD_MODE TRUNCGUARD_DEBUG TRUNCGUARD_LOG TRUNCGUARD_RELOAD
export LC_ALL=C
# The log cuts a file name of over 1,535 bytes ("...", README): from a build
# tree under so long a path, lines naming its programs and plugins can't be
# compared with glibc's or with the paths. Skip (77) with the reason.
need_loggable_paths() {
  local v val
  for v in $(compgen -e TG_); do
    val=${!v}
    [[ $val == /* ]] && [ "${#val}" -gt 1535 ] || continue
    echo "skip: \$$v is ${#val} bytes long, and the log cuts a file name of over 1,535 bytes: run the tests from a clone under a shorter path"
    exit 77
  done
}
fail() {
  echo "FAIL: $TEST_NAME: $*" >&2
  for f in out err; do [ -f "$T/$f" ] && { echo "---- $f" >&2; cat "$T/$f" >&2; }; done
  exit 1
}
ok() { echo "ok: $*"; }
# host [WRAPPER...] -- STEPS: runs the reloader on $LIB; the program's output
# in $T/out, truncguard's log (stderr) in $T/err, the status in $ST
host() {
  local wrap=()
  while [ "$1" != "--" ]; do wrap+=("$1"); shift; done
  shift
  "${wrap[@]}" "$TG_RELOADER" "$LIB" "$@" >"$T/out" 2>"$T/err"
  ST=$?
}
expect_out() { grep -qF -- "$1" "$T/out" || fail "expected \"$1\" in the output"; }
expect_log() { grep -qF -- "$1" "$T/err" || fail "expected \"$1\" in the log"; }
expect_no_log() { ! grep -qF -- "$1" "$T/err" || fail "unexpected \"$1\" in the log"; }
