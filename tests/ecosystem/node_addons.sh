#!/bin/bash
# Node.js and npm deploying a native addon (a .node file, a shared object
# that node dlopens) under a running node server that keeps calling it:
#  - node's own writers, on the main thread and on libuv's thread pool
#    (fs.copyFileSync: open without O_TRUNC, ftruncate, copy_file_range;
#    fs.promises.writeFile: O_TRUNC) and node-tar extracting over the
#    package's directory (node-pre-gyp's way; O_TRUNC): without truncguard
#    the server dies, with it the server runs on and a fresh node loads v2;
#  - `npm install ./pkg-v2.tgz` renames the old package directory away and
#    extracts a new one (safe by design): truncguard does nothing and says
#    nothing; npm's status, output and the installed tree (bytes, modes, the
#    node_modules/.bin symlink) are the same as without it;
#  - `npm rebuild` runs an install script that copies a prebuilt addon over
#    the one in use: without truncguard the server dies, with it it runs on;
#  - a server that re-requires a replaced addon gets the old code (glibc
#    matches the path, and node never closes an addon): the stale line says
#    so; with TRUNCGUARD_RELOAD=fresh it gets v2, and the fresh name made for
#    it is gone once the server ends (node never closes it, so nothing else
#    would remove it); a python parent whose forked children end keeps its
#    fresh name until it ends, and one that execs removes it (this part
#    runs without node too).
. "$(dirname "$0")/../e2e/lib.sh"
need_shim

# The names are the process's own: a forked child that ends (os._exit, or
# exit with its destructors) removes none of its parent's; the parent's end
# removes them.
if command -v python3 >/dev/null && [ -e "$TG_LIB_V1" ] && [ -e "$TG_LIB_V2" ]; then
  mkdir -p "$T/r"
  # reloaded_then CODE: python under fresh loads lib.so (v1), has it replaced
  # by v2 and loads it again (a fresh name), then runs CODE (d: the directory;
  # made(): whether a fresh name is there). Prints what CODE prints.
  reloaded_then() {
    fresh_copy "$TG_LIB_V1" "$T/r/lib.so"
    TRUNCGUARD_RELOAD=fresh "$TG_CMD" python3 - "$T/r" "$TG_CMD" "$TG_LIB_V2" "$1" <<'PY' 2>&1
import ctypes, os, subprocess, sys
d, tg, v2, code = sys.argv[1:]
first = ctypes.CDLL(d + "/lib.so")
subprocess.run([tg, "cp", v2, d + "/lib.so"], check=True)
second = ctypes.CDLL(d + "/lib.so")
made = lambda: sorted(n for n in os.listdir(d) if "tg-reload" in n) != []
exec(code)
PY
  }
  out=$(reloaded_then '
for how in ("_exit", "exit"):
    pid = os.fork()
    if pid == 0:
        os._exit(0) if how == "_exit" else sys.exit(0)
    os.waitpid(pid, 0)
    print(how, made())') || fail "fresh, forked children: $out"
  [ "$out" = "$(printf '_exit True\nexit True')" ] || fail "fresh, forked children: a child's end removed its parent's fresh name: $out"
  left=$(ls -A "$T/r" | grep tg-reload)
  [ -z "$left" ] || fail "fresh, python: the fresh name was left after it ended: $left"
  ok "a forked child's end leaves its parent's fresh name; the parent's end removes it"
  # A process that execs: the new image has none of its objects, and
  # nothing would remove their names (they stayed, for good).
  out=$(reloaded_then '
print(made(), flush=True)
os.execv("/bin/true", ["true"])') || fail "fresh, exec: $out"
  [ "$out" = True ] || fail "fresh, exec: no fresh name was made before the exec: $out"
  left=$(ls -A "$T/r" | grep tg-reload)
  [ -z "$left" ] || fail "fresh, python: the fresh name was left after the process exec'ed: $left"
  ok "a process that execs removes its fresh names"
  # ... and one that ends by _exit (no atexit handlers, no destructors: the
  # README's "when the process ends (exit, _exit...)").
  out=$(reloaded_then '
print(made(), flush=True)
os._exit(0)') || fail "fresh, _exit: $out"
  [ "$out" = True ] || fail "fresh, _exit: no fresh name was made before the _exit: $out"
  left=$(ls -A "$T/r" | grep tg-reload)
  [ -z "$left" ] || fail "fresh, python: the fresh name was left after the process ended by _exit: $left"
  ok "a process that ends by _exit removes its fresh names"
  rm -f -- "$T/r/lib.so"
fi

command -v node >/dev/null || skip "node is not installed (Debian: nodejs)"
asan_cannot_start node && skip "node: $NO_ASAN (the python part above ran)"
command -v gcc >/dev/null || skip "gcc is needed to build the addon"
NAPI_DIR=
for d in /usr/include/node /usr/include/nodejs/src /usr/local/include/node; do
  [ -e "$d/node_api.h" ] && NAPI_DIR=$d && break
done
[ -n "$NAPI_DIR" ] || skip "node_api.h is not installed (Debian: libnode-dev)"

# ------------------------------------------------------------------ the addon
cat >"$T/addon.c" <<'EOF'
#include <node_api.h>
static int pad[VERSION * 1024] = {1};  /* v2 is longer: a short read past v1's end faults */
static napi_value version(napi_env env, napi_callback_info info) {
  napi_value r;
  napi_create_int32(env, VERSION + pad[0] - 1, &r);
  return r;
}
napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "version", NAPI_AUTO_LENGTH, version, NULL, &fn);
  napi_set_named_property(env, exports, "version", fn);
  return exports;
}
EOF
for v in 1 2; do
  must gcc -shared -fPIC -O2 -DVERSION=$v -I"$NAPI_DIR" "$T/addon.c" -o "$T/addon$v.node"
done
[ "$(node -e "console.log(require('$T/addon2.node').version())")" = 2 ] || skip "node can't load an addon built here"

# The server: loads the addon, calls it every 2 ms; exits 3 if its code
# changed, 0 ("released") once its ready file is removed.
cat >"$T/server.js" <<'EOF'
const fs = require('fs');
const a = require(process.argv[2]);
const v = a.version();
fs.writeFileSync(process.argv[3], String(v));
setInterval(() => {
  if (a.version() !== v) process.exit(3);
  if (!fs.existsSync(process.argv[3])) { console.log('released, still version', a.version()); process.exit(0); }
}, 2);
setTimeout(() => process.exit(4), 20000);
EOF
start_server() {
  _tg_nvictims=$((_tg_nvictims + 1))
  VICTIM_READY=$T/ready.$_tg_nvictims
  VICTIM_OUT=$T/server.$_tg_nvictims.out
  _start_bg "$VICTIM_READY" "$VICTIM_OUT" node "$T/server.js" "$1" "$VICTIM_READY"
  VICTIM_PID=$BG_PID
  VICTIM_KIND="node server"
}
loads() { node -e "console.log(require('$1').version())" 2>&1; }

# writes NAME PREFIX... -- ARGS: a node server runs $ADDON (v1), the writer
# (node ARGS) writes v2 over it. Control without PREFIX: the server dies.
ADDON=$T/pkg/build/Release/addon.node
mkdir -p "$T/pkg/build/Release"
writes() {
  local name=$1 pre=()
  shift
  while [ "$1" != -- ]; do pre+=("$1"); shift; done
  shift
  fresh_copy "$T/addon1.node" "$ADDON"
  start_server "$ADDON"
  log_reset
  "${pre[@]}" node "$@" >"$T/writer.out" 2>&1 || fail "$name: the writer failed: $(cat "$T/writer.out"); the log: $(tg_log)"
  stop_victim
  if [ ${#pre[@]} -eq 0 ]; then
    expect_broken "$name without truncguard"
  else
    expect_survived "$name under ${pre[*]##*/}"
    expect_log "replaced file=$ADDON" "mapped executable by pid $VICTIM_PID (node)"
    # In atomic mode, the new file published at the writer's close.
    if [[ " ${pre[*]} " == *" --mode=atomic "* ]]; then
      expect_log "published file=$ADDON [ino " "(mode atomic): the writer closed it"
    fi
  fi
  [ "$(loads "$ADDON")" = 2 ] || fail "$name: a fresh node loads $(loads "$ADDON"), expected 2"
}
COPY="require('fs').copyFileSync('$T/addon2.node', '$ADDON')"
PROMISE="require('fs').promises.writeFile('$ADDON', require('fs').readFileSync('$T/addon2.node'))"
writes fs.copyFileSync -- -e "$COPY"
writes fs.copyFileSync "$TG_CMD" -- -e "$COPY"
writes "fs.copyFileSync (atomic)" "$TG_CMD" --mode=atomic -- -e "$COPY"
writes fs.promises.writeFile -- -e "$PROMISE"
writes fs.promises.writeFile "$TG_CMD" -- -e "$PROMISE"
writes "fs.promises.writeFile (atomic)" "$TG_CMD" --mode=atomic -- -e "$PROMISE"
writes "fs.promises.writeFile (atomic)" "$TG_CMD" --mode=atomic -- -e "$PROMISE"

# node-tar, as npm bundles it, extracting a package over its own directory.
NPM_ROOT=$(npm root -g 2>/dev/null)
NODE_TAR=$NPM_ROOT/npm/node_modules/tar
if command -v npm >/dev/null && [ -e "$NODE_TAR/package.json" ]; then
  mkdir -p "$T/src/package/build/Release"
  cp "$T/addon2.node" "$T/src/package/build/Release/addon.node"
  must tar -czf "$T/addon-v2.tgz" -C "$T/src" package
  TAR="require('$NODE_TAR').x({file: '$T/addon-v2.tgz', cwd: '$T/pkg', strip: 1})"
  writes node-tar -- -e "$TAR"
  writes node-tar "$TG_CMD" -- -e "$TAR"
  writes "node-tar (atomic)" "$TG_CMD" --mode=atomic -- -e "$TAR"
else
  note "npm or its node-tar not found: node-tar and npm not tested"
fi

# ----------------------------------------------------------------------- npm
if command -v npm >/dev/null; then
  export npm_config_cache=$T/npm-cache npm_config_update_notifier=false npm_config_audit=false \
    npm_config_fund=false npm_config_offline=true npm_config_foreground_scripts=true
  # tgaddon 1.0.0 and 2.0.0: the addon and a bin; 3.0.0 also has an install
  # script that copies its prebuilt addon (v2) over build/Release/addon.node.
  for v in 1 2 3; do
    p=$T/tgaddon$v
    mkdir -p "$p/build/Release" "$p/bin" "$p/prebuilt"
    cp "$T/addon$((v > 1 ? 2 : 1)).node" "$p/build/Release/addon.node"
    cp "$T/addon2.node" "$p/prebuilt/addon.node"
    echo 'module.exports = require("./build/Release/addon.node");' >"$p/index.js"
    printf '#!/usr/bin/env node\nconsole.log(require("..").version())\n' >"$p/bin/cli.js"
    chmod +x "$p/bin/cli.js"
    echo 'require("fs").copyFileSync(__dirname + "/prebuilt/addon.node", __dirname + "/build/Release/addon.node")' >"$p/install.js"
    scripts=
    [ $v = 3 ] && scripts=', "scripts": {"install": "node install.js"}'
    echo "{\"name\": \"tgaddon\", \"version\": \"$v.0.0\", \"main\": \"index.js\", \"bin\": {\"tgaddon\": \"bin/cli.js\"}$scripts}" >"$p/package.json"
    (cd "$p" && npm pack --pack-destination "$T" >/dev/null 2>&1) || fail "npm pack of tgaddon $v failed"
  done
  # An app with tgaddon VERSION installed.
  app() {
    rm -rf "$T/app" && mkdir "$T/app" && echo '{"name": "app", "version": "1.0.0"}' >"$T/app/package.json"
    (cd "$T/app" && npm install "$T/tgaddon-$1.0.0.tgz" >/dev/null 2>&1) || fail "npm install of tgaddon $1 failed"
    # An install script's copy would make the addon v2 at once: start from v1.
    fresh_copy "$T/addon1.node" "$T/app/node_modules/tgaddon/build/Release/addon.node"
  }
  tree() {
    (cd "$T/app" && find . -path ./node_modules/.package-lock.json -prune -o -printf '%p %y %m %s %l\n' | sort &&
      find . -type f ! -name .package-lock.json -exec md5sum {} + | sort -k2)
  }
  # npm LABEL PREFIX... -- NPM-ARGS: run npm in the app while a server runs
  # its addon; status, output (timings out) and tree in $T/npm.LABEL.*.
  npm_run() {
    local label=$1 pre=()
    shift
    while [ "$1" != -- ]; do pre+=("$1"); shift; done
    shift
    start_server "$T/app/node_modules/tgaddon"
    log_reset
    (cd "$T/app" && "${pre[@]}" npm "$@" >"$T/npm.$label.out" 2>"$T/npm.$label.err"; echo "status $?" >>"$T/npm.$label.out")
    stop_victim
    sed -i -E 's/ in [0-9.]+m?s$/ in T/' "$T/npm.$label.out"
    tree >"$T/npm.$label.tree"
  }
  same_as_plain() {
    local a=$1 b=$2 f
    for f in out err tree; do
      cmp -s "$T/npm.$a.$f" "$T/npm.$b.$f" ||
        fail "$b: npm's $f differs from the run without truncguard: $(diff "$T/npm.$a.$f" "$T/npm.$b.$f")"
    done
  }
  app 1
  npm_run install-plain -- install "$T/tgaddon-2.0.0.tgz"
  expect_survived "npm install (it renames the old package away)"
  app 1
  npm_run install-tg "$TG_CMD" -- install "$T/tgaddon-2.0.0.tgz"
  expect_survived "npm install under truncguard"
  [ -z "$(tg_log)" ] || fail "npm install, which writes no file in use: truncguard logged: $(tg_log)"
  same_as_plain install-plain install-tg
  grep -qx "status 0" "$T/npm.install-tg.out" || fail "npm install under truncguard: $(cat "$T/npm.install-tg.out")"
  [ "$(readlink "$T/app/node_modules/.bin/tgaddon")" = ../tgaddon/bin/cli.js ] || fail "npm install: the .bin symlink is $(ls -l "$T/app/node_modules/.bin")"
  [ "$(cd "$T/app" && loads tgaddon)" = 2 ] || fail "after npm install under truncguard, a fresh node loads $(cd "$T/app" && loads tgaddon)"
  ok "npm install under truncguard: the same status, output and tree, no log line"

  app 3
  npm_run rebuild-plain -- rebuild
  expect_broken "npm rebuild (an install script copies over the addon) without truncguard"
  app 3
  npm_run rebuild-tg "$TG_CMD" -- rebuild
  expect_survived "npm rebuild under truncguard"
  expect_log "replaced file=$T/app/node_modules/tgaddon/build/Release/addon.node" "mapped executable by pid $VICTIM_PID (node)"
  same_as_plain rebuild-plain rebuild-tg
  [ "$(cd "$T/app" && loads tgaddon)" = 2 ] || fail "after npm rebuild under truncguard, a fresh node loads $(cd "$T/app" && loads tgaddon)"
fi

# --------------------------------------------------- re-require of a replaced addon
cat >"$T/reload.js" <<'EOF'
const P = process.argv[2];
let a = require(P);
require('child_process').execFileSync(process.argv[3], ['cp', process.argv[4], P]);
delete require.cache[require.resolve(P)];
a = require(P);
console.log('re-required', a.version());
if (process.argv[5] === 'exit') process.exit(0);
EOF
mkdir -p "$T/r"
for how in end exit; do
  fresh_copy "$T/addon1.node" "$T/r/addon.node"
  log_reset
  out=$("$TG_CMD" node "$T/reload.js" "$T/r/addon.node" "$TG_CMD" "$T/addon2.node" $how 2>&1) || fail "reload ($how): $out"
  [ "$out" = "re-required 1" ] || fail "reload ($how): without fresh, $out, expected the old code (1)"
  expect_log "note file=$T/r/addon.node stale: dlopen returns the object already loaded from it" "1 open without a matching dlclose"
  fresh_copy "$T/addon1.node" "$T/r/addon.node"
  log_reset
  out=$(TRUNCGUARD_RELOAD=fresh "$TG_CMD" node "$T/reload.js" "$T/r/addon.node" "$TG_CMD" "$T/addon2.node" $how 2>&1) ||
    fail "reload, fresh ($how): $out"
  [ "$out" = "re-required 2" ] || fail "reload, fresh ($how): $out, expected the new code (2)"
  expect_log "note file=$T/r/addon.node is already loaded" "loading the new file as $T/r/.addon.node.tg-reload-"
  left=$(ls -A "$T/r" | grep tg-reload)
  [ -z "$left" ] || fail "reload, fresh ($how): node never closes an addon, and its fresh name was left after it ended: $left"
  ok "a re-required addon (node ends: $how): the stale line; with fresh, v2 and no name left"
done

