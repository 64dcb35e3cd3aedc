#!/bin/bash
# A clone moved or renamed, or copied with its build directories: build/
# and build-asan/ were set up for the old path, and scripts/build.sh and
# scripts/test.sh went on with them. meson then regenerated them from the
# old tree (a copy: its files were built and tested, not this tree's) or,
# that tree gone, failed for good: "ERROR: Neither directory contains a
# build file meson.build" on every run, until build/ was removed by hand.
# They now set such a directory up again (scripts/builddir.sh). Here with
# a stub meson that records what it is asked, and a stub scripts/setup.sh.
. "$(dirname "$0")/../e2e/lib.sh"
SRC=${TG_SOURCE_ROOT:-$(cd "$_tg_here/../.." && pwd)}

mkdir -p "$T/stub" "$T/old" "$T/clone/scripts" || fail "setup"
cp "$SRC/scripts/build.sh" "$SRC/scripts/test.sh" "$SRC/scripts/builddir.sh" "$T/clone/scripts/" ||
  fail "cannot copy the scripts"
printf '#!/bin/sh\n' >"$T/clone/scripts/setup.sh"
# The stub: setup makes a build directory of this tree; test, one passed test.
cat >"$T/stub/meson" <<'EOF'
#!/bin/bash
echo "$*" >>"$MESON_CALLS"
case $1 in
  setup) mkdir -p "$2/meson-info" && touch "$2/build.ninja" &&
         printf '{"directories": {"source": "%s"}}\n' "$PWD" >"$2/meson-info/meson-info.json" ;;
  test) mkdir -p "$3/meson-logs" && echo '{"result": "OK"}' >"$3/meson-logs/testlog.json" ;;
esac
EOF
chmod 755 "$T/stub/meson" "$T/clone/scripts/"*.sh
export MESON_CALLS=$T/calls PATH=$T/stub:$PATH

# configured_for DIR TREE: DIR (in the clone) looks set up for TREE.
configured_for() {
  rm -rf "${T:?}/clone/$1"
  mkdir -p "$T/clone/$1/meson-info" && touch "$T/clone/$1/build.ninja" "$T/clone/$1/mine" &&
    printf '{"directories": {"source": "%s"}}\n' "$2" >"$T/clone/$1/meson-info/meson-info.json" ||
    fail "setup of $1"
}
# calls CMD...: what CMD asked meson, one line per call.
calls() {
  rm -f "$MESON_CALLS"
  "$@" >"$T/cmd.out" 2>&1 || fail "$*: $(cat "$T/cmd.out")"
  paste -sd ';' "$MESON_CALLS"
}

# Control: set up for this very tree (by another path to it): kept.
ln -s clone "$T/link"
configured_for build "$T/link"
got=$(calls "$T/clone/scripts/build.sh")
[ "$got" = "compile -C build" ] && [ -e "$T/clone/build/mine" ] ||
  fail "build/ of this tree (named through a symlink) was not kept as it is: meson was asked: $got"
ok "build/ set up for this tree: compiled as it is"

for old in "$T/old" "$T/gone"; do  # the tree copied from; one moved away
  configured_for build "$old"
  got=$(calls "$T/clone/scripts/build.sh")
  [ "$got" = "setup build;compile -C build" ] && [ ! -e "$T/clone/build/mine" ] ||
    fail "build/ set up for $old: meson was asked \"$got\", not set up again"
  grep -q "set up for the source tree $old, not this one" "$T/cmd.out" || fail "build.sh did not say why: $(cat "$T/cmd.out")"
  ok "build/ set up for $old: set up again, with a line that says why"
done

configured_for build-asan "$T/old"
got=$(calls "$T/clone/scripts/test.sh" --sanitize=address,undefined)
[ "${got%%;*}" = "setup build-asan -Db_sanitize=address,undefined -Dc_args=-fno-sanitize-recover=all -Dcpp_args=-fno-sanitize-recover=all" ] ||
  fail "build-asan/ set up for another tree: meson was asked \"$got\", not set up again"
ok "scripts/test.sh --sanitize: build-asan/ set up for another tree: set up again"
