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
# What the README shows of it: plain cp kills the victim (the control), a
# fresh process loads version 2, the dry run names the victim.
[ "$(grep -c "=> the victim was KILLED by SIG\(SEGV\|BUS\)" "$T/demo.out")" -eq 2 ] &&
  [ "$(grep -c "=> the victim is alive" "$T/demo.out")" -eq 1 ] ||
  fail "scripts/demo.sh: steps 1 and 4 (no protection) should kill the victim, step 2 not: $(cat "$T/demo.out")"
grep -q "^version 2$" "$T/demo.out" || fail "scripts/demo.sh: the fresh process of step 3 did not load version 2: $(cat "$T/demo.out")"
grep -q "would replace file=.*/libfoo.so \[ino [0-9]*\] (mode dry-run); mapped executable by pid [0-9]* (victim)" "$T/demo.out" ||
  fail "scripts/demo.sh: the dry run of step 4 does not say what it would replace: $(cat "$T/demo.out")"
ok "scripts/demo.sh from \"$clone\": the victim survives truncguard cp, plain cp and the dry run kill it, a fresh process loads version 2"

# A clone under a path with a comma ("~/src/a,b"): the compiler's -Wl, splits
# its argument at each comma, so a link argument naming a file of the tree
# through it broke the build there (a version script: ld "cannot open linker
# script file"; meson's own -Wl,-rpath-link,BUILD-DIR for a library of the
# tree given to link_with: ld "cannot find" the rest of the path). A build
# under such a path takes minutes: instead, no link line of this build names
# its source or build tree through -Wl, (-Xlinker PATH and a bare PATH don't split).
BUILD_ROOT=${TG_BUILD_ROOT:-$TG_BUILD}
[ -f "$BUILD_ROOT/build.ninja" ] || fail "no build.ninja in $BUILD_ROOT"
python3 - "$BUILD_ROOT/build.ninja" "$SRC" "$BUILD_ROOT" >"$T/wl.out" 2>&1 <<'PY'
import re, shlex, sys
ninja, roots = sys.argv[1], sys.argv[2:]
text = open(ninja, encoding="utf-8").read().replace("$\n", "")
target, bad, lines = None, [], 0
for line in text.splitlines():
    if line.startswith("build "):
        target = line[6:].split(":")[0]
    elif line.startswith(" LINK_ARGS = "):
        lines += 1
        # ninja's escapes ($ space, $:, $$), then the shell's quoting meson wrote
        args = shlex.split(re.sub(r"\$([ :$])", r"\1", line[len(" LINK_ARGS = "):]))
        bad += [f"{target}: {a}" for a in args if a.startswith("-Wl,") and any(r in a for r in roots)]
if lines == 0:
    sys.exit(f"no LINK_ARGS line in {ninja}")
print("\n".join(bad) if bad else f"{lines} link lines")
sys.exit(1 if bad else 0)
PY
[ $? -eq 0 ] || fail "a link argument names a path of the tree through -Wl, (split at a comma in the clone's path): $(cat "$T/wl.out")"
ok "no link argument names a path of the tree through -Wl, ($(cat "$T/wl.out"))"
