#!/bin/bash
# A clone under a long path. ld.so ignores, without a word, an LD_AUDIT entry
# of over 254 bytes (glibc's audit list buffer is NAME_MAX long: see
# shim/truncguard.cpp), so there `truncguard --audit` did nothing, and the
# tests of --audit failed. Here build trees (the command and the shim copied,
# so that the command's own path is long; the rest linked):
#  - library path 255 bytes: --audit is refused (126) and says why; without
#    --audit the command runs; at 254 bytes, --audit works (the limit is exact);
#  - 600 bytes: interpreters.sh (--audit through preload copies) passes;
#  - 1,600 bytes: audit.sh, bindings.sh and dl_edges.sh compare log lines
#    naming the build tree's files, which the log cuts past 1,535 bytes:
#    they skip (77) and say why, rather than fail.
orig_build=${TG_SHIM%/shim/*}
. "$(dirname "$0")/rlib.sh"
[ -d "$orig_build/tests/reload" ] || fail "no build tree at $orig_build"
asan=
readelf -dW "$orig_build/shim/libtruncguard.so" | grep -q 'NEEDED.*libasan' && asan=1

# tree LEN: a build tree whose shim/libtruncguard.so path is LEN bytes long.
tree() {
  local want=$1 dir=$T/c$1 k
  while [ $((${#dir} + 1 + 200 + 28)) -lt "$want" ]; do dir=$dir/$(printf '%0200d' 0); done
  k=$((want - ${#dir} - 1 - 28))
  [ "$k" -gt 0 ] && dir=$dir/$(printf "%0${k}d" 0)
  mkdir -p "$dir/build/shim" "$dir/build/tests" || fail "cannot make $dir"
  cp "$orig_build/shim/truncguard" "$orig_build/shim/libtruncguard.so" "$dir/build/shim/" || fail "cannot copy the command"
  for d in reload victim writers; do ln -s "$orig_build/tests/$d" "$dir/build/tests/$d"; done
  TREE=$dir/build
  [ "${#TREE}" -eq $((want - 22)) ] || fail "tree $want: $TREE is ${#TREE} bytes"
}
# in_tree CMD...: CMD with every TG_* path of the build tree seen through $TREE.
in_tree() {
  local v val vars=()
  for v in $(compgen -e TG_); do
    val=${!v}
    [[ $val == "$orig_build"/* ]] && vars+=("$v=$TREE/${val#"$orig_build"/}")
  done
  env "${vars[@]}" TG_CMD="$TREE/shim/truncguard" TG_SHIM="$TREE/shim/libtruncguard.so" "$@"
}

tree 255
out=$("$TREE/shim/truncguard" --audit true 2>&1)
st=$?
[ "$st" -eq 126 ] || fail "--audit with a library path of 255 bytes: exit $st (ld.so would ignore it): $out"
grep -q "ld.so ignores an LD_AUDIT entry longer than 254" <<<"$out" || fail "--audit refused without saying why: $out"
"$TREE/shim/truncguard" true || fail "control: without --audit the command failed from $TREE"
ok "--audit with a 255-byte library path: refused (126), and says why; without it, the command runs"
if [ -z "$asan" ]; then
  tree 254
  out=$("$TREE/shim/truncguard" --audit --debug=files true 2>&1)
  grep -qF "file=$TREE/shim/libtruncguard.so [0];  loaded" <<<"$out" ||
    fail "--audit with a 254-byte library path: no load line from the audit module: $out"
  ok "--audit with a 254-byte library path: the audit module runs"

  tree 600
  in_tree bash "$(dirname "$0")/interpreters.sh" >"$T/interpreters.out" 2>&1 ||
    fail "interpreters.sh from a build tree at a 600-byte path failed: $(tail -n 5 "$T/interpreters.out")"
  grep -q "under --audit" "$T/interpreters.out" || fail "interpreters.sh tested nothing under --audit: $(cat "$T/interpreters.out")"
  ok "interpreters.sh (--audit) passes from a build tree at a 600-byte path"
fi

tree 1600
for t in audit bindings dl_edges; do
  in_tree bash "$(dirname "$0")/$t.sh" >"$T/$t.out" 2>&1
  st=$?
  [ "$st" -eq 77 ] || fail "$t.sh from a build tree at a 1,600-byte path: exit $st, not skipped: $(tail -n 3 "$T/$t.out" | cut -c1-300)"
  grep -q "skip: .*the log cuts a file name of over 1,535 bytes" "$T/$t.out" || fail "$t.sh skipped without saying why"
done
ok "audit.sh, bindings.sh, dl_edges.sh from a build tree at a 1,600-byte path: skipped, saying why"
