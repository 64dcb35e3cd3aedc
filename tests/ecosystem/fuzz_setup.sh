#!/bin/bash
# scripts/fuzz.sh installs what it needs (clang-14, libclang-rt-14-dev)
# through scripts/setup.sh, as build.sh, test.sh and bench.sh do: run alone
# on a fresh machine, it skipped every target ("no clang++"). Here with a
# stub scripts/setup.sh that records its call, and a compiler that can't
# link (FUZZ_CXX=false): the run stops at its probe, nothing is built.
. "$(dirname "$0")/../e2e/lib.sh"
SRC=${TG_SOURCE_ROOT:-$(cd "$_tg_here/../.." && pwd)}

mkdir -p "$T/clone/scripts" || fail "setup"
cp "$SRC/scripts/fuzz.sh" "$T/clone/scripts/" || fail "cannot copy scripts/fuzz.sh"
cat >"$T/clone/scripts/setup.sh" <<'SH'
#!/bin/sh
echo called >>"$SETUP_CALLS"
exit "${SETUP_STATUS:-0}"
SH
chmod 755 "$T/clone/scripts/setup.sh"

out=$(SETUP_CALLS=$T/calls FUZZ_CXX=false bash "$T/clone/scripts/fuzz.sh" --ci settings 2>&1)
st=$?
[ -s "$T/calls" ] || fail "scripts/fuzz.sh did not run scripts/setup.sh: $out"
[ "$st" -eq 0 ] || fail "scripts/fuzz.sh with a compiler that can't link exited $st: $out"
grep -q "^0 passed, 0 failed, 1 skipped$" <<<"$out" || fail "scripts/fuzz.sh's summary: $out"
ok "scripts/fuzz.sh runs scripts/setup.sh first"

# A setup that fails stops the run, counted as a failure.
rm -f "$T/calls"
out=$(SETUP_CALLS=$T/calls SETUP_STATUS=1 FUZZ_CXX=false bash "$T/clone/scripts/fuzz.sh" --ci settings 2>&1)
st=$?
[ -s "$T/calls" ] || fail "scripts/fuzz.sh did not run scripts/setup.sh: $out"
[ "$st" -ne 0 ] || fail "scripts/fuzz.sh went on after scripts/setup.sh failed: $out"
grep -q "^0 passed, 1 failed, 0 skipped$" <<<"$out" || fail "scripts/fuzz.sh's summary after a failed setup: $out"
grep -q "fuzz: setup failed" <<<"$out" || fail "scripts/fuzz.sh does not say setup failed: $out"
ok "scripts/fuzz.sh stops, one failure, when scripts/setup.sh fails"
