#!/bin/bash
# A clone under a path with a space or a colon ("~/My Projects"): ld.so
# splits LD_PRELOAD there and the command refuses such a library path, so
# from that build tree 92 of the 129 tests failed (exit 126, or the preload
# "cannot be preloaded ... ignored") and scripts/demo.sh stopped at its step 2.
# The test helpers and the demonstration now preload copies (preload_copies
# in tests/e2e/preload_copies.sh). Here a build tree at "my clone:1/build"
# (the command and the shim copied, so that the command's own path has the
# space; the rest linked) runs two end-to-end tests and the demonstration.
. "$(dirname "$0")/../e2e/lib.sh"
need_victims
need_shim
SRC=${TG_SOURCE_ROOT:-$(cd "$_tg_here/../.." && pwd)}

clone="$T/my clone:1"
B=$clone/build
mkdir -p "$B/shim" "$B/tests" "$clone/scripts" || fail "cannot make $B"
cp "$TG_CMD" "$TG_SHIM" "$B/shim/" || fail "cannot copy the command"
ln -s "$(dirname "$TG_VICTIM")" "$B/tests/victim"
# A test sees the clone's paths for what it preloads.
in_clone() {
  env TG_CMD="$B/shim/truncguard" TG_SHIM="$B/shim/libtruncguard.so" \
      TG_MARKER_LIB="$B/tests/victim/${TG_MARKER_LIB##*/}" "$@"
}
[ -e "$B/tests/victim/${TG_MARKER_LIB##*/}" ] || fail "no marker library through $B"

for t in cp_dlopen ld_preload; do
  in_clone bash "$SRC/tests/e2e/$t.sh" >"$T/$t.out" 2>&1 ||
    fail "tests/e2e/$t.sh from a build tree at \"$B\" failed: $(tail -n 5 "$T/$t.out")"
  ok "tests/e2e/$t.sh passes from a build tree at \"$B\""
done

# The demonstration, its build step a stub (the tree above is built).
cp "$SRC/scripts/demo.sh" "$clone/scripts/" || fail "cannot copy scripts/demo.sh"
printf '#!/bin/sh\n' >"$clone/scripts/build.sh"
chmod 755 "$clone/scripts/build.sh" "$clone/scripts/demo.sh"
"$clone/scripts/demo.sh" </dev/null >"$T/demo.out" 2>&1 ||
  fail "scripts/demo.sh from \"$clone\" failed: $(tail -n 5 "$T/demo.out")"
grep -q "the victim is alive and exited normally" "$T/demo.out" ||
  fail "scripts/demo.sh from \"$clone\": the victim did not survive truncguard cp: $(cat "$T/demo.out")"
ok "scripts/demo.sh from \"$clone\": the victim survives truncguard cp"
