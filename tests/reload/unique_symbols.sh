#!/bin/bash
# "My new plugin isn't running": a C++ plugin with a static in an inline
# function never unloads (STB_GNU_UNIQUE), and truncguard says so and why;
# the same plugin built with -fno-gnu-unique unloads, and nothing is said.
. "$(dirname "$0")/rlib.sh"
readelf -sW "$TG_PLUGIN_UNIQUE" | grep -q UNIQUE || fail "the test plugin has no STB_GNU_UNIQUE symbol"
readelf -sW "$TG_PLUGIN_NO_UNIQUE" | grep -q UNIQUE && fail "the -fno-gnu-unique plugin has one"

LIB=$T/libunique.so
cp "$TG_PLUGIN_UNIQUE" "$LIB"
host -- open call close loaded
[ $ST -eq 0 ] || fail "control exited $ST"
expect_out "loaded yes"
expect_no_log "still loaded"
ok "control: the plugin stays loaded after its only dlclose, and nothing says why"

host "$TG_CMD" -- open call close loaded
[ $ST -eq 0 ] || fail "under truncguard exited $ST"
expect_out "loaded yes"
expect_log "note file=$LIB is still loaded after dlclose: it defines the STB_GNU_UNIQUE symbol "
# The plugin needs no libstdc++ and the host is C: no demangler in the
# process, so the mangled name (the shim carries no demangler of its own).
# A sanitizer build of the shim brings libstdc++ with its runtime: demangled.
if ldd "$TG_SHIM" | grep -q 'libstdc++'; then
  expect_log "symbol counter()::n, so glibc"
else
  expect_log "symbol _ZZ7countervE1n (c++filt prints it as C++)"
fi
expect_log "build with -fno-gnu-unique to allow unloading"
ok "under truncguard: the log names the unique symbol (mangled: no libstdc++ loaded) and -fno-gnu-unique"
# Where the process has libstdc++ (as C++ hosts and plugins do), demangled.
libstdcxx=$(gcc -print-file-name=libstdc++.so.6 2>/dev/null)
[ -f "$libstdcxx" ] || libstdcxx=$(ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')
[ -f "$libstdcxx" ] || fail "no libstdc++.so.6 found to demangle with"
host env LD_PRELOAD="$libstdcxx" "$TG_CMD" -- open call close loaded
[ $ST -eq 0 ] || fail "under truncguard with libstdc++ loaded exited $ST"
expect_log "it defines the STB_GNU_UNIQUE symbol counter()::n, so glibc never unloads it"
ok "with libstdc++ in the process, the symbol is demangled: counter()::n"

# Its reload after a replacement (by plugin v1, whose first call says
# "version 1"): glibc returns the old object (its counter says 2), and the
# stale line says why: every handle was closed, the unique symbol keeps it
# (it said "0 opens without a matching dlclose keep it loaded; close every
# handle first", advice that can't help).
reload_unique() {
  cp "$TG_PLUGIN_UNIQUE" "$LIB"
  host "$@" -- open call close "run:cp $(printf %q "$TG_PLUGIN_V1") $T/new.so && mv $T/new.so $LIB" open call close
  [ $ST -eq 0 ] || fail "reload of the unique plugin ($*) exited $ST"
  grep -qx "version 2" "$T/out" || fail "reload of the unique plugin ($*): not the old object: $(cat "$T/out")"
}
reload_unique env
ok "control: a reload of the replaced unique plugin returns the old object"
reload_unique "$TG_CMD"
expect_log "note file=$LIB stale: dlopen returns the object already loaded from it"
expect_log "; every handle was closed, but it never unloads: it defines an STB_GNU_UNIQUE symbol (build with -fno-gnu-unique to allow unloading); set TRUNCGUARD_RELOAD=fresh to load the new file"
expect_no_log "without a matching dlclose"
ok "its reload after a replacement: the stale line names the unique symbol, not open handles"
# With a handle still open too: closing it would not unload it either, so the
# line names the unique symbol as well, and does not advise closing the handle.
cp "$TG_PLUGIN_UNIQUE" "$LIB"
host "$TG_CMD" -- open open call close "run:cp $(printf %q "$TG_PLUGIN_V1") $T/new.so && mv $T/new.so $LIB" open call close
[ $ST -eq 0 ] || fail "reload of the unique plugin, a handle open, exited $ST"
expect_log "note file=$LIB stale: dlopen returns the object already loaded from it"
expect_log "; 1 open without a matching dlclose keeps it loaded, and it never unloads: it defines an STB_GNU_UNIQUE symbol (build with -fno-gnu-unique to allow unloading); set TRUNCGUARD_RELOAD=fresh to load the new file"
expect_no_log "close every handle first"
ok "its reload with a handle still open: the stale line names the unique symbol too, and does not advise closing the handle"
# The same where nothing the shim can name keeps it: glibc marked it
# NODELETE (dlsym(RTLD_DEFAULT) found a symbol of it), its handle closed.
LIB=$T/libdefault.so
for with in env "$TG_CMD"; do
  cp "$TG_PLUGIN_V2" "$LIB"
  host "$with" -- default:tg_version "run:cp $(printf %q "$TG_PLUGIN_V1") $T/new.so && mv $T/new.so $LIB" open call close
  [ $ST -eq 0 ] || fail "reload after dlsym(RTLD_DEFAULT) ($with) exited $ST"
  grep -qx "version 2" "$T/out" || fail "reload after dlsym(RTLD_DEFAULT) ($with): not the old object: $(cat "$T/out")"
done
expect_log "note file=$LIB stale: dlopen returns the object already loaded from it"
expect_log "; every handle was closed, but it is still loaded (another object holds it, or glibc marked it NODELETE); set TRUNCGUARD_RELOAD=fresh to load the new file"
expect_no_log "without a matching dlclose"
ok "a reload of a library glibc marked NODELETE: the stale line says every handle was closed, not \"0 opens\""

LIB=$T/libnounique.so
cp "$TG_PLUGIN_NO_UNIQUE" "$LIB"
host "$TG_CMD" -- open call close loaded
[ $ST -eq 0 ] || fail "-fno-gnu-unique under truncguard exited $ST"
expect_out "loaded no"
expect_no_log "still loaded"
ok "built with -fno-gnu-unique it unloads, and nothing is logged"

# A handle left open is named as the reason, under the files category: it is
# ordinary reference counting (one note per dlclose but the last), nothing to
# act on, so the default categories (reloads) don't carry it.
LIB=$T/libnounique.so
host "$TG_CMD" --debug=reloads,files -- open open call close loaded
expect_log "is still loaded after dlclose: 1 handle still open, opened at "
host "$TG_CMD" -- open open call close loaded
[ $ST -eq 0 ] && grep -q "loaded yes" "$T/out" || fail "default categories, a handle left open: $(cat "$T/out")"
expect_no_log "still loaded"
ok "a handle still open is named, with where it was opened, under files; the default categories say nothing"

# Asked never to unload (-z nodelete, as binutils' bfd plugins are built:
# ar, nm and ranlib dlopen and dlclose LLVMgold for every file, and each
# dlclose was a note in the default categories, in every build's output).
# The note is under files; a reload of the replaced file says why it is
# stale in the default categories, and the advice is not "close every handle".
readelf -dW "$TG_PLUGIN_NODELETE" | grep -q 'Flags:.*NODELETE' || fail "the test plugin is not -z nodelete"
LIB=$T/libnodelete.so
cp "$TG_PLUGIN_NODELETE" "$LIB"
host "$TG_CMD" -- open call close loaded
[ $ST -eq 0 ] || fail "-z nodelete under truncguard exited $ST"
expect_out "loaded yes"
[ -s "$T/err" ] && fail "-z nodelete, default categories: the program's stderr got truncguard lines"
host "$TG_CMD" --debug=files -- open call close loaded
expect_log "note file=$LIB is still loaded after dlclose: built with -z nodelete (DF_1_NODELETE)"
ok "a -z nodelete plugin closed: nothing in the default categories, the reason under files"
host "$TG_CMD" -- open call close "run:cp $(printf %q "$TG_PLUGIN_V2") $T/new.so && mv $T/new.so $LIB" open call close
[ $ST -eq 0 ] || fail "-z nodelete reload under truncguard exited $ST"
expect_out "version 1"
expect_log "note file=$LIB stale: dlopen returns the object already loaded from it"
expect_log "; every handle was closed, but it never unloads: it was built with -z nodelete (DF_1_NODELETE); set TRUNCGUARD_RELOAD=fresh to load the new file"
expect_no_log "still loaded"
ok "its reload after a replacement: the stale line names -z nodelete"
# A handle still open too: closing it would not unload it either, so the
# advice is not "close every handle first" (it was, and the line named only
# the open handle). Control: without truncguard, the old object.
for with in env "$TG_CMD"; do
  cp "$TG_PLUGIN_NODELETE" "$LIB"
  host "$with" -- open open call close "run:cp $(printf %q "$TG_PLUGIN_V2") $T/new.so && mv $T/new.so $LIB" open call close
  [ $ST -eq 0 ] || fail "-z nodelete reload, a handle open ($with) exited $ST"
  [ "$(grep -c 'version 1' "$T/out")" = 2 ] || fail "-z nodelete reload, a handle open ($with): not the old object: $(cat "$T/out")"
done
expect_log "note file=$LIB stale: dlopen returns the object already loaded from it"
expect_log "; 1 open without a matching dlclose keeps it loaded, and it never unloads: it was built with -z nodelete (DF_1_NODELETE); set TRUNCGUARD_RELOAD=fresh to load the new file"
expect_no_log "close every handle first"
ok "its reload with a handle still open: the stale line names -z nodelete too, and does not advise closing the handle"
