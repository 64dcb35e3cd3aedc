#!/bin/bash
# Real language runtimes as hosts: python3 (ctypes.CDLL, _ctypes.dlclose,
# ctypes.util.find_library) and bash (enable -f, a loadable builtin of the
# bash-builtins package) load a library that is then copied over while loaded.
# Without truncguard the host dies; under it the host survives, a reload says
# "stale" (warn) or gets the new code (fresh), three reloads in a row work, no
# extra name is left, and --audit changes nothing the host prints.
. "$(dirname "$0")/rlib.sh"
LIB=$T/libplugin.so
cp "$TG_PLUGIN_V1" "$T/v1.so" && cp "$TG_PLUGIN_V2" "$T/v2.so" || fail "setup"
# same_under_audit WHAT RUN [SETUP]: RUN (a function taking a wrapper) under
# truncguard without and with --audit (SETUP before each): the same output,
# status 0; the audit log in $T/audit.*. Fails (1) in an ASan build of the
# library, which can't be an audit module (audit.sh).
same_under_audit() {
  local what=$1 run=$2 setup=${3:-:}
  if readelf -dW "$TG_SHIM" | grep -q 'NEEDED.*libasan'; then
    echo "note: $what --audit: the library is built with ASan (can't be an audit module): not tested"
    return 1
  fi
  $setup && $run "$TG_CMD" -- && cp "$T/out" "$T/plain"
  $setup && $run "$TG_CMD" --audit --log="$T/audit" --
  [ "$ST" -eq 0 ] && cmp -s "$T/plain" "$T/out" || fail "$what --audit: exited $ST, printed $(diff "$T/plain" "$T/out")"
}

# ---- python3: load, cp v2 over it, load again twice, cp v1, load again;
# close every handle, then load once more; find_library still works.
if command -v python3 >/dev/null; then
  cat >"$T/host.py" <<'EOF'
import ctypes, ctypes.util, _ctypes, os, subprocess, sys
d = sys.argv[1]
lib = d + "/libplugin.so"
def load(what):
    h = ctypes.CDLL(lib)
    print(what, h.tg_version(), h.tg_work(7))
    return h
a = load("a")
subprocess.run(["cp", d + "/v2.so", lib], check=True)
print("a after cp", a.tg_version(), a.tg_work(8))
b = load("b")
c = load("c")
print("c is b", c._handle == b._handle)
subprocess.run(["cp", d + "/v1.so", lib], check=True)
e = load("e")
for h in (e, c, b, a):
    _ctypes.dlclose(h._handle)
# (the shim is there too if its build tree's path made lib.sh copy it)
print("loaded after the closes", sorted({l.split()[-1] for l in open("/proc/self/maps") if d in l} - {os.environ["TG_SHIM"]}))
f = load("f")
print("libm", ctypes.util.find_library("m") is not None)
EOF
  py() { "$@" python3 "$T/host.py" "$T" >"$T/out" 2>"$T/err"; ST=$?; }
  cp "$T/v1.so" "$LIB"
  py
  [ "$ST" -gt 128 ] || fail "python3 control: exited $ST; expected to die when its library is copied over"
  ok "python3 control: cp over a library ctypes loaded kills python (status $ST)"

  cp "$T/v1.so" "$LIB"
  py "$TG_CMD" --
  [ "$ST" -eq 0 ] && [ "$(grep -c "^[abce] .*1 3$\|^a after cp 1 3$" "$T/out")" -eq 5 ] && grep -q "^f 1 3$" "$T/out" ||
    fail "python3, warn: exited $ST; expected the old code until every handle is closed, then the file's"
  [ "$(grep -c "stale: dlopen returns the object already loaded" "$T/err")" -eq 3 ] ||
    fail "python3, warn: expected a stale line for each of the three reloads"
  grep -q "^loaded after the closes \[\]$" "$T/out" || fail "python3, warn: still mapped after every handle was closed"
  grep -q "^libm True$" "$T/out" || fail "python3, warn: find_library failed"
  ok "python3 under truncguard: survives the cp, each of three reloads says stale, closing every handle reloads the file"

  cp "$T/v1.so" "$LIB"
  TRUNCGUARD_RELOAD=fresh py "$TG_CMD" --
  [ "$ST" -eq 0 ] || fail "python3, fresh: exited $ST"
  [ "$(sed -n 's/^\([abcef]\) \([12]\) 3$/\1\2/p' "$T/out" | paste -sd ' ')" = "a1 b2 c2 e1 f1" ] &&
    grep -q "^c is b True$" "$T/out" || fail "python3, fresh: expected versions a1 b2 c2 (the same handle) e1 f1"
  grep -q "^loaded after the closes \[\]$" "$T/out" || fail "python3, fresh: still mapped after every handle was closed"
  [ -z "$(ls -A "$T" | grep tg-reload)" ] || fail "python3, fresh: extra names left: $(ls -A "$T" | grep tg-reload)"
  grep -q "^libm True$" "$T/out" || fail "python3, fresh: find_library failed"
  ok "python3, TRUNCGUARD_RELOAD=fresh: the new code at each reload, a second reload of the same file gets the same object, all unload, no name left"

  reset_lib() { cp "$T/v1.so" "$LIB"; }
  if same_under_audit python3 py reset_lib; then
    grep -q "file=$LIB \[0\];  unloaded" "$T"/audit.* || fail "python3 --audit: no unload line for the library"
    ok "python3 under --audit: the same output, and the library's unload logged"
  fi
else
  echo "note: python3 is not installed: not tested"
fi

# ---- bash: enable -f a loadable builtin, cp another over it, enable -f again.
BUILTINS=/usr/lib/bash
if [ -f "$BUILTINS/basename" ] && [ -f "$BUILTINS/dirname" ]; then
  cat >"$T/host.sh" <<EOF
cp $BUILTINS/basename $T/b.so
enable -f $T/b.so basename || echo "enable failed"
basename /a/b/c
cp $BUILTINS/dirname $T/b.so
basename /a/b/d
enable -f $T/b.so basename || echo "enable 2 failed"
basename /a/b/e
enable -d basename
enable -f $T/b.so dirname || echo "enable 3 failed"
EOF
  sh_run() { "$@" bash "$T/host.sh" >"$T/out" 2>"$T/err"; ST=$?; }
  sh_run
  [ "$ST" -gt 128 ] || fail "bash control: exited $ST; expected to die when its builtin is copied over"
  sh_run "$TG_CMD" --
  [ "$ST" -eq 0 ] && [ "$(paste -sd ' ' "$T/out")" = "c d e enable 3 failed" ] || fail "bash under truncguard: exited $ST"
  grep -q "note file=$T/b.so stale: .*1 open without a matching dlclose" "$T/err" || fail "bash: no stale line"
  ok "bash enable -f: survives the cp (control: dies), a reload says stale and keeps the old builtin"
  if same_under_audit bash sh_run; then ok "bash enable -f under --audit: the same output"; fi
else
  echo "note: bash loadable builtins are not installed (package bash-builtins): not tested"
fi
