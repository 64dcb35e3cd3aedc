#!/bin/bash
# glibc's dlopen and dlsym look at who calls them. With truncguard loaded,
# "$ORIGIN", a bare name found through the caller's RUNPATH, RTLD_NEXT (from a
# second preloaded interposer) and RTLD_DEFAULT must behave exactly as without,
# and a library must still unload (truncguard must not pin it).
. "$(dirname "$0")/rlib.sh"
mkdir -p "$T/d/sub"
cp "$TG_OUTER_ORIGIN" "$T/d/libouter_origin.so"
cp "$TG_OUTER_RUNPATH" "$T/d/libouter_runpath.so"
cp "$TG_PLUGIN_V1" "$T/d/libinner.so"        # for $ORIGIN/libinner.so
cp "$TG_PLUGIN_V2" "$T/d/sub/libinner2.so"   # only reachable through RUNPATH
check() {  # check WHAT EXPECTED STEPS...: same result without and with the shim
  local what=$1 expected=$2
  shift 2
  # The control has the same preloads but truncguard.
  if [ -n "${EXTRA_PRELOAD:-}" ]; then host env LD_PRELOAD="$EXTRA_PRELOAD" -- "$@"; else host -- "$@"; fi
  [ $ST -eq 0 ] && expect_out "$expected" || fail "control: $what"
  local plain
  plain=$(cat "$T/out")
  host env LD_PRELOAD="$TG_SHIM${EXTRA_PRELOAD:+:$EXTRA_PRELOAD}" -- "$@"
  [ $ST -eq 0 ] || fail "$what under truncguard exited $ST"
  [ "$(cat "$T/out")" = "$plain" ] || fail "$what: \"$(cat "$T/out")\" under truncguard, \"$plain\" without"
  ok "$what: the same with and without truncguard ($expected)"
}
LIB=$T/d/libouter_origin.so
check '$ORIGIN' "inner version 1" 'origin:$ORIGIN/libinner.so'
LIB=$T/d/libouter_runpath.so
check "a bare name through the caller's RUNPATH" "inner version 2" "origin:libinner2.so"
LIB=$T/d/libinner.so
check "RTLD_DEFAULT" "default tg_version found" "default:tg_version"
# glibc pins an object whose symbol the program looked up with RTLD_DEFAULT;
# truncguard says why it stayed loaded (and only explains: same output above).
expect_log "is still loaded after dlclose: glibc marked it NODELETE or another object holds it"
# ... and its advice works: the LD_DEBUG category it names shows glibc's own
# line (it named files, where glibc 2.36 prints none: bindings does).
dbg=$(grep -o "LD_DEBUG=[a-z]* shows glibc's own 'marking \.\.\. as NODELETE'" "$T/err" | head -n1 | cut -d' ' -f1)
[ -n "$dbg" ] || fail "the note names no LD_DEBUG category: $(cat "$T/err")"
env "$dbg" "$TG_RELOADER" "$LIB" default:tg_version >/dev/null 2>"$T/glibc" || fail "$dbg: the program failed"
grep -q "marking .*libinner\.so \[0\] as NODELETE" "$T/glibc" ||
  fail "$dbg, as the note advises: no 'marking ... as NODELETE' line from glibc"
ok "$dbg, as the note advises, shows glibc's 'marking ... as NODELETE' line"
# Under the shim (which repeats the lookup) glibc's line is the same (README).
env "$dbg" LD_PRELOAD="$TG_SHIM" "$TG_RELOADER" "$LIB" default:tg_version >/dev/null 2>"$T/glibc" ||
  fail "$dbg under truncguard: the program failed"
grep -q "marking .*libinner\.so \[0\] as NODELETE due to reference from main program" "$T/glibc" ||
  fail "$dbg under truncguard: glibc's marking line is not the one without it: $(grep marking "$T/glibc")"
EXTRA_PRELOAD=$TG_NEXT_PRELOAD check "RTLD_NEXT from a second preloaded interposer" "[next] hello" next
unset EXTRA_PRELOAD
# The same for a function truncguard wraps, defined as an IFUNC by the second
# interposer: the program's write() reaches it through truncguard's, where
# dlsym(RTLD_NEXT) finds it (the symbol-table lookup passed over it to libc's).
EXTRA_PRELOAD=$TG_WRITE_IFUNC check "an IFUNC write() in a second preloaded interposer" "[ifunc] hello" write
unset EXTRA_PRELOAD
# truncguard loaded by dlopen, then a library that defines write(): RTLD_NEXT
# from truncguard does not search objects dlopened after it, so its write()
# calls libc's (the symbol-table lookup took the later library's; its walk
# over objects another thread may unload, too).
if readelf -dW "$TG_SHIM" | grep -q 'NEEDED.*libasan'; then
  echo "skip: truncguard loaded by dlopen: the library is built with ASan, whose runtime must come first"
else
  LIB=$TG_WRITE_PLAIN
  host -- open writevia
  [ $ST -eq 0 ] && [ "$(cat "$T/out")" = "[late] hello" ] || fail "control: the later library's write() is not the one marking \"[late]\""
  LIB=$TG_SHIM
  host -- open with:"$TG_WRITE_PLAIN" writevia
  [ $ST -eq 0 ] && [ "$(cat "$T/out")" = "hello" ] ||
    fail "truncguard loaded by dlopen: its write() did not reach libc's but \"$(cat "$T/out")\" (status $ST)"
  ok "truncguard loaded by dlopen: its write() reaches libc's, not a library dlopened after it"
fi
# Not pinned: a plain C plugin unloads at its last dlclose, shim or not.
LIB=$T/d/libinner.so
check "unloading at the last dlclose" "loaded no" open call close loaded
