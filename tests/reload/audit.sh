#!/bin/bash
# truncguard --audit: the library is also an LD_AUDIT module and prints every
# PLT binding exactly as glibc's LD_DEBUG=bindings does, and every real load
# and unload (la_objopen, la_objclose), alongside the program's own copy.
. "$(dirname "$0")/rlib.sh"
need_loggable_paths
# An ASan build of the library can't be an audit module: the second copy
# brings a second ASan runtime, which aborts ("Shadow memory range
# interleaves"). Meson counts exit 77 as skipped.
if readelf -dW "$TG_SHIM" | grep -q 'NEEDED.*libasan'; then
  echo "skip: the library is built with ASan, whose runtime can't load twice (LD_AUDIT)"
  exit 77
fi
run_cases() { "$@" "$TG_BIND_CASES" "$TG_BIND_PLUGIN" "$TG_BIND_GLOBAL" >"$T/out" 2>"$T/err"; ST=$?; }
# The PLT bindings of the program and of the plugin: lines "binding file OBJ"
# whose symbol is one of OBJ's JUMP_SLOT relocations.
plt_lines() {  # FILE...
  local re="" obj sym
  for obj in "$TG_BIND_CASES" "$TG_BIND_PLUGIN"; do
    for sym in $(readelf -rW "$obj" | awk '/JUMP_SLO/ {sub(/@.*/, "", $5); print $5}'); do
      re+="${re:+|}^binding file ${obj//./\\.} \\[0\\] to .*: normal symbol \`$sym'"
    done
  done
  cat "$@" | cut -f2- | grep -E "$re"
}

# glibc's lines, with the shim preloaded too (so the same bindings happen:
# the program's dlopen binds to the shim) but printing nothing itself.
run_cases env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_DEBUG=none LD_DEBUG=bindings LD_DEBUG_OUTPUT="$T/glibc"
[ $ST -eq 0 ] || fail "bind_cases exited $ST with the shim and LD_DEBUG"
plain=$(cat "$T/out")
plt_lines "$T"/glibc.* >"$T/expected"
n=$(wc -l <"$T/expected")
# dlopen, dlsym, dlvsym, dlclose, printf from the program; dlsym, tgb_dep_fn
# (a dlsym of it) from the plugin.
[ "$n" -ge 6 ] || { cat "$T/expected" >&2; fail "glibc printed only $n PLT bindings"; }

# Control: the preload copy alone sees no PLT binding.
run_cases "$TG_CMD" --debug=bindings --log="$T/pre" --
[ $ST -eq 0 ] || fail "bind_cases exited $ST under truncguard"
if grep -q "symbol \`printf'" "$T"/pre.*; then fail "a PLT binding was printed without --audit"; fi

run_cases "$TG_CMD" --audit --log="$T/tg" --
[ $ST -eq 0 ] || fail "bind_cases exited $ST under truncguard --audit"
[ "$(cat "$T/out")" = "$plain" ] || fail "the program printed \"$(cat "$T/out")\" under --audit, \"$plain\" without"
plt_lines "$T"/tg.* >"$T/got"
diff -u "$T/expected" "$T/got" >"$T/diff" || { cat "$T/diff" >&2; fail "the PLT bindings differ from glibc's"; }
ok "--audit: $n PLT bindings, character for character glibc's LD_DEBUG=bindings"
grep -q "binding file $TG_BIND_CASES \[0\] to .*libtruncguard.so \[0\]: normal symbol \`dlopen' \[GLIBC_2.34\]" "$T/got" ||
  fail "the program's dlopen is not shown bound to the shim"

# Real loads and unloads, with the inode; the plugin unloads at its dlclose,
# the RTLD_GLOBAL one (pinned by the program's RTLD_DEFAULT lookup) only at exit.
cat "$T"/tg.* | cut -f2- >"$T/log"
ino=$(stat -c %i "$TG_BIND_PLUGIN")
grep -qxF "file=$TG_BIND_PLUGIN [0];  loaded: ino $ino" "$T/log" || { cat "$T/log" >&2; fail "no load line for the plugin"; }
grep -qxF "file=$(dirname "$TG_BIND_PLUGIN")/libbind_dep.so [0];  loaded: ino $(stat -c %i "$(dirname "$TG_BIND_PLUGIN")/libbind_dep.so")" "$T/log" ||
  fail "no load line for the plugin's dependency"
unload=$(grep -nxF "file=$TG_BIND_PLUGIN [0];  unloaded" "$T/log" | cut -d: -f1)
closed=$(grep -n "file=$TG_BIND_PLUGIN \[0\];  dlclose by .*: unloaded" "$T/log" | cut -d: -f1)
[ -n "$unload" ] && [ -n "$closed" ] && [ "$unload" -lt "$closed" ] || fail "the plugin's unload is not seen during its dlclose"
g_unload=$(grep -nxF "file=$TG_BIND_GLOBAL [0];  unloaded" "$T/log" | cut -d: -f1)
g_closed=$(grep -n "file=$TG_BIND_GLOBAL \[0\];  dlclose by .*: still loaded" "$T/log" | cut -d: -f1)
[ -n "$g_unload" ] && [ -n "$g_closed" ] && [ "$g_unload" -gt "$g_closed" ] || fail "the pinned plugin's unload is not seen after its dlclose"
ok "--audit: real loads (with the inode) and unloads, as they happen"
# The audit copy adopts nothing and warns nothing twice.
run_cases env TRUNCGUARD_DEBUG=bogus "$TG_CMD" --audit --
n=$(grep -c "unknown" "$T/err")
[ "$n" -eq 1 ] || fail "the settings warning was printed $n times under --audit"
ok "--audit: one warning for bad settings, not one per copy"
# ... nor the pending file of an atomic-mode write handed over across an
# exec: the program's own copy adopts it and publishes it at the close, once
# (the audit copy adopted it too: "cannot protect ... the new content is
# lost", the old file at the name). Scope elf: acted on with no program
# running it.
cp "$TG_PLUGIN_V1" "$T/handed.so" || fail "setup: handed.so"
TRUNCGUARD_LOG=$T/ho TRUNCGUARD_SCOPE=elf "$TG_CMD" --audit -m atomic -- bash -c 'exec cat >"$1"' _ "$T/handed.so" \
  <"$TG_PLUGIN_V2" >"$T/out" 2>"$T/err" || fail "an atomic hand-over across an exec under --audit failed"
cmp -s "$T/handed.so" "$TG_PLUGIN_V2" || fail "an atomic hand-over under --audit: the name does not hold the new content: $(grep -hF "file=$T/handed.so" "$T"/ho.* | cut -f2-)"
[ "$(cat "$T"/ho.* | grep -c "published file=$T/handed.so ")" -eq 1 ] && ! grep -q "cannot protect" "$T"/ho.* ||
  fail "an atomic hand-over under --audit: not published once: $(grep -hF "file=$T/handed.so" "$T"/ho.* | cut -f2-)"
ok "--audit: an atomic-mode file handed over across an exec is published once, by the program's own copy"
