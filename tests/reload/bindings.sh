#!/bin/bash
# Category bindings prints, for each dlsym/dlvsym, the very line glibc's
# LD_DEBUG=bindings prints for that lookup (PID aside); category files says
# what each dlopen, dlsym and dlclose did, naming the program's object as the
# caller, never the shim.
. "$(dirname "$0")/rlib.sh"
need_loggable_paths
run_cases() { "$@" "$TG_BIND_CASES" "$TG_BIND_PLUGIN" "$TG_BIND_GLOBAL" >"$T/out" 2>"$T/err"; ST=$?; }
# The symbols bind_cases looks up: no other binding of them happens in it.
NAMES='tgb_|`ffsl'"'"'|`strverscmp'"'"'|`getloadavg'"'"'|`realpath'"'"'|`mblen'"'"'|`clock_gettime'"'"'|: ffsl|: strverscmp'
CASES=24

# glibc's own lines, without truncguard.
run_cases env LD_DEBUG=bindings LD_DEBUG_OUTPUT="$T/glibc"
[ $ST -eq 0 ] || fail "bind_cases exited $ST without truncguard"
plain=$(cat "$T/out")
cat "$T"/glibc.* | cut -f2- | grep -E "$NAMES" >"$T/expected"
n=$(wc -l <"$T/expected")
[ "$n" -eq $CASES ] || { cat "$T/expected" >&2; fail "glibc printed $n lines for the $CASES lookups"; }

# Ours.
run_cases env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_DEBUG=bindings TRUNCGUARD_LOG="$T/tg"
[ $ST -eq 0 ] || fail "bind_cases exited $ST under truncguard"
[ "$(cat "$T/out")" = "$plain" ] || fail "the lookups found \"$(cat "$T/out")\" under truncguard, \"$plain\" without"
cat "$T"/tg.* | cut -f2- >"$T/got"
diff -u "$T/expected" "$T/got" >"$T/diff" || { cat "$T/diff" >&2; fail "the bindings lines differ from glibc's"; }
ok "bindings: $CASES lines, character for character glibc's LD_DEBUG=bindings (handles, dlvsym, misses, RTLD_DEFAULT, RTLD_NEXT, both from a dlopened plugin, RTLD_GLOBAL)"
grep -q "^binding file .*/libbind_plugin.so \[0\] to .*/libbind_dep.so \[0\]: normal symbol \`tgb_dep_fn'$" "$T/got" ||
  fail "no binding of tgb_dep_fn to the plugin's dependency"
grep -q "^binding file .*/libbind_plugin.so \[0\] to .*/libbind_dep.so \[0\]: normal symbol \`tgb_shadow'$" "$T/got" ||
  fail "RTLD_NEXT from the plugin did not find its dependency's tgb_shadow"
rm -f "$T"/tg.*

# The same events as JSON objects (and category files's, dl_call), with the
# fields truncguard(7) gives them.
run_cases env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_DEBUG=bindings,files TRUNCGUARD_LOG="$T/tg" TRUNCGUARD_LOG_FORMAT=json
n=$(cat "$T"/tg.* | grep -c '"event":"binding"\|"event":"lookup_error"')
[ "$n" -eq $CASES ] || fail "$n JSON binding events for $CASES lookups"
grep -q '"event":"binding".*"symbol":"realpath","version":"GLIBC_2.2.5"' "$T"/tg.* || fail "no JSON binding of realpath@GLIBC_2.2.5"
# A lookup that finds nothing is its own event, lookup_error (truncguard(7)).
grep -q '"event":"lookup_error","file":"'"$TG_BIND_PLUGIN"'","ns":0,"symbol":"tgb_missing"}' "$T"/tg.* ||
  fail "no JSON lookup_error for tgb_missing: $(grep -h tgb_missing "$T"/tg.*)"
cat "$T"/tg.* | python3 -c '
import json, sys
prog, plugin, glob = sys.argv[1:4]
dep = plugin.rsplit("/", 1)[0] + "/libbind_dep.so"
ev = [json.loads(l) for l in sys.stdin]
def one(**want):
    got = [e for e in ev if all(e.get(k) == v for k, v in want.items())]
    assert len(got) == 1, (want, got)
    return got[0]
ino = int(sys.argv[4])
e = one(event="dl_call", call="dlopen", file=plugin)
assert e == dict(e, ns=0, caller=prog, caller_ns=0, ino=ino, already_open=0, detail="RTLD_LAZY"), e
e = one(event="dl_call", call="dlsym", file=plugin, symbol="tgb_dep_fn")
assert e == dict(e, ns=0, defined_in=dep, defined_in_ns=0, ino=ino, opens=1) and "already_open" not in e, e
e = one(event="dl_call", call="dlvsym", file=plugin, symbol="tgb_ver")
assert e["version"] == "V1" and e["defined_in"] == plugin, e
e = one(event="dl_call", call="dlsym", file="RTLD_NEXT", symbol="getloadavg")
assert e["caller"] == prog and e["defined_in"].endswith("/libc.so.6"), e
e = one(event="dl_call", call="dlsym", file="RTLD_DEFAULT", symbol="mblen")
assert e["caller"] == plugin, e
e = one(event="dl_call", call="dlsym", file=plugin, symbol="tgb_missing")
assert "defined_in" not in e, e
assert one(event="dl_call", call="dlclose", file=plugin)["detail"] == "unloaded"
assert one(event="dl_call", call="dlclose", file=glob)["detail"] == "still loaded"
e = one(event="lookup_error", file=plugin, symbol="tgb_missing")
assert set(e) == {"pid", "event", "file", "ns", "symbol"} and e["ns"] == 0, e
assert one(event="lookup_error", file=plugin, symbol="tgb_fn")["version"] == "NOPE"
b = [e for e in ev if e["event"] == "binding" and e["file"] == plugin and e["symbol"] == "tgb_dep_fn"]
assert b and all(e == dict(e, ns=0, to=dep, to_ns=0, protected=False) for e in b), b
' "$TG_BIND_CASES" "$TG_BIND_PLUGIN" "$TG_BIND_GLOBAL" "$(stat -c %i "$TG_BIND_PLUGIN")" ||
  fail "the JSON binding, lookup_error and dl_call events are not as documented: $(cat "$T"/tg.*)"
ok "bindings as JSON: $CASES events; dl_call, binding and lookup_error with their documented fields"
rm -f "$T"/tg.*

# Category files.
run_cases env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_DEBUG=files TRUNCGUARD_LOG="$T/tg"
[ $ST -eq 0 ] || fail "bind_cases exited $ST under truncguard (files)"
cat "$T"/tg.* | cut -f2- >"$T/files"
ino=$(stat -c %i "$TG_BIND_PLUGIN")
expect_files() { grep -qF -- "$1" "$T/files" || { cat "$T/files" >&2; fail "expected \"$1\" in the files lines"; }; }
expect_files "file=$TG_BIND_PLUGIN [0];  dlopen by $TG_BIND_CASES [0]: RTLD_LAZY, ino $ino, already open 0"
expect_files "file=$TG_BIND_PLUGIN [0];  dlsym \`tgb_fn' by $TG_BIND_CASES [0]: in $TG_BIND_PLUGIN [0], ino $ino, opens 1"
expect_files "file=$TG_BIND_PLUGIN [0];  dlvsym \`tgb_ver' [V1] by $TG_BIND_CASES [0]: in $TG_BIND_PLUGIN [0]"
expect_files "file=$TG_BIND_PLUGIN [0];  dlsym \`tgb_missing' by $TG_BIND_CASES [0]: not found"
expect_files "file=RTLD_DEFAULT;  dlsym \`mblen' by $TG_BIND_PLUGIN [0]: in /lib/x86_64-linux-gnu/libc.so.6 [0]"
expect_files "file=RTLD_NEXT;  dlsym \`getloadavg' by $TG_BIND_CASES [0]: in /lib/x86_64-linux-gnu/libc.so.6 [0]"
expect_files "file=$TG_BIND_GLOBAL [0];  dlopen by $TG_BIND_CASES [0]: RTLD_LAZY|RTLD_GLOBAL"
# The program looked tgb_global_fn up with RTLD_DEFAULT: glibc pins it.
expect_files "file=$TG_BIND_GLOBAL [0];  dlclose by $TG_BIND_CASES [0]: still loaded, ino $(stat -c %i "$TG_BIND_GLOBAL"), opens 0"
expect_files "file=$TG_BIND_PLUGIN [0];  dlclose by $TG_BIND_CASES [0]: unloaded, ino $ino, opens 0"
if grep -q "by [^ ]*libtruncguard" "$T/files"; then fail "a files line names the shim as the caller"; fi
# A thread-local variable found through a handle but defined by one of its
# dependencies (bind_dep's tgb_dep_tls, through bind_plugin's handle): its
# address is in no object, so the shim can't tell which defines it. The
# line says so, and not "not found": dlsym found it (it said both).
"$TG_CMD" --debug=files python3 -c '
import ctypes, sys
libc = ctypes.CDLL(None)
libc.dlopen.restype = libc.dlsym.restype = ctypes.c_void_p
libc.dlopen.argtypes, libc.dlsym.argtypes = [ctypes.c_char_p, ctypes.c_int], [ctypes.c_void_p, ctypes.c_char_p]
h = libc.dlopen(sys.argv[1].encode(), 2)
sys.exit(0 if h and libc.dlsym(h, b"tgb_dep_tls") else 1)' "$TG_BIND_PLUGIN" 2>"$T/tls.err" ||
  fail "a dependency's thread-local variable through a handle: not found by dlsym: $(cat "$T/tls.err")"
line=$(grep -F "file=$TG_BIND_PLUGIN [0];  dlsym \`tgb_dep_tls' by " "$T/tls.err") ||
  fail "no files line for the dlsym of tgb_dep_tls: $(cat "$T/tls.err")"
[[ $line == *": where it is defined is not known to the shim, ino "* ]] ||
  fail "a dependency's thread-local variable found through a handle: $line"
ok "a dependency's thread-local variable found through a handle: \"where it is defined is not known to the shim\", not \"not found\""
n=$(grep -c "dlsym\|dlvsym" "$T/files")
[ "$n" -eq $CASES ] || fail "$n files lines for $CASES lookups"
ok "files: dlopen, dlsym, dlclose with the caller, the inode and the open count"
rm -f "$T"/tg.*

# Category files as JSON (truncguard(7), THE JSON LOG: event dl_call): one
# object per call, with the file, the call and its caller.
run_cases env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_DEBUG=files TRUNCGUARD_LOG="$T/tg" TRUNCGUARD_LOG_FORMAT=json
[ $ST -eq 0 ] || fail "bind_cases exited $ST under truncguard (files, JSON)"
python3 - "$TG_BIND_PLUGIN" "$TG_BIND_CASES" "$ino" $CASES "$T"/tg.* <<'PY' || fail "the dl_call JSON events: $(cat "$T"/tg.*)"
import json, sys
plugin, prog, ino, cases = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
events = [json.loads(l) for f in sys.argv[5:] for l in open(f)]  # every line parses on its own
calls = [e for e in events if e["event"] == "dl_call"]
assert calls and len(calls) == len(events), events
assert any(e["call"] == "dlopen" and e["file"] == plugin and e["caller"] == prog and e["ino"] == ino for e in calls), calls
assert any(e["call"] == "dlsym" and e["symbol"] == "tgb_fn" and e["defined_in"] == plugin and e["opens"] == 1 for e in calls), calls
assert any(e["call"] == "dlclose" and e["file"] == plugin for e in calls), calls
assert sum(e["call"] in ("dlsym", "dlvsym") for e in calls) == cases, calls
PY
ok "files as JSON: dl_call events with the call, the file, the caller, the inode"
