#!/bin/bash
# The systemd example, as meson installs it (the drop-in names the installed
# library), passes `systemd-analyze verify` together with the example deploy
# unit, without a single warning; and a broken line in the drop-in is
# reported, so the drop-in is really read. systemd-analyze works without a
# running systemd; where it is not installed, the test is skipped.
. "$(dirname "$0")/../e2e/lib.sh"
command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (apt-get install systemd)"
BUILD=${TG_BUILD_ROOT:-${MESON_BUILD_ROOT:-$TG_BUILD}}
SRC=${TG_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
DROPIN=$BUILD/man/truncguard.conf     # configured by man/meson.build
[ -f "$DROPIN" ] || fail "no configured drop-in at $DROPIN (meson configure the build)"

units=$T/units
mkdir -p "$units/app-deploy.service.d"
cp "$SRC/examples/systemd/app-deploy.service" "$units/"
cp "$DROPIN" "$units/app-deploy.service.d/truncguard.conf"
grep -q '^Environment=LD_PRELOAD=/.*/libtruncguard\.so$' "$units/app-deploy.service.d/truncguard.conf" ||
  fail "the drop-in does not set LD_PRELOAD to an absolute libtruncguard.so: $(grep LD_PRELOAD "$DROPIN")"

verify() { SYSTEMD_UNIT_PATH=$units: systemd-analyze verify --man=no "$units/app-deploy.service" 2>&1; }
out=$(verify)
st=$?
[ "$st" -eq 0 ] || fail "systemd-analyze verify failed (exit $st): $out"
[ -z "$out" ] || fail "systemd-analyze verify warns about the example: $out"
ok "systemd-analyze verify: app-deploy.service with truncguard.conf, no warnings ($(systemd-analyze --version | head -n 1))"

echo "NotAKnownKey=1" >>"$units/app-deploy.service.d/truncguard.conf"
out=$(verify)
grep -q "truncguard.conf.*NotAKnownKey" <<<"$out" ||
  fail "a broken line in the drop-in is not reported, so it may not be read at all: $out"
ok "a broken drop-in line is reported: the drop-in is read"
