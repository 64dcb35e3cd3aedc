#!/bin/bash
# The Debian package, built and proven by scripts/package.sh: packaging
# tools installed from Debian if missing, `dpkg-buildpackage -us -uc -b` on a
# copy of the source (the checkout stays clean), the .deb's file list, then
# `dpkg -x` into a scratch root and, with only the unpacked files, a victim
# protected from cp (its control case killed), `truncguard stale` and `who`
# listing it. Skipped (77) where the tools can't be installed.
. "$(dirname "$0")/../e2e/lib.sh"
need_victims
SRC=${TG_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v dpkg-deb >/dev/null || skip "not a Debian system (no dpkg-deb)"

# What an in-tree dpkg-buildpackage would leave (others may edit the checkout
# meanwhile, so its git status is no measure).
leftovers() { ls -d "$SRC"/obj-* "$SRC"/debian/.debhelper "$SRC"/debian/truncguard "$SRC"/debian/files \
                    "$SRC"/debian/debhelper-build-stamp "$SRC"/../truncguard_*.deb 2>/dev/null; }
before=$(leftovers)
# The package build's unit tests run in the `unit` suite already: nocheck.
DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" TMPDIR=$T \
  "$SRC/scripts/package.sh" >"$T/package.out" 2>&1
st=$?
cat "$T/package.out"
[ "$st" -eq 77 ] && skip "$(grep SKIP "$T/package.out" | tail -n 1)"
[ "$st" -eq 0 ] || fail "scripts/package.sh exited $st"
grep -q "^package.sh: OK: " "$T/package.out" || fail "scripts/package.sh did not finish its proof"
after=$(leftovers)
[ "$before" = "$after" ] || fail "the package build left files in or next to the checkout: $after"
ok "the package builds, and its files alone protect a victim; the checkout is unchanged"
