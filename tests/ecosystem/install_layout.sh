#!/bin/bash
# truncguard installs like a real tool, and the installed command works on
# its own:
#  1. `meson install --destdir`: the command in bindir, libtruncguard.so in
#     libdir, truncguard(1) and truncguard(7), the examples and guides under
#     the doc dir; the man pages render without warnings; the systemd example
#     names the installed library.
#  2. The installed command (in the DESTDIR tree, not where it was built)
#     finds the installed library, preloads it, and protects a victim from
#     `cp` (whose control case kills it). Moved elsewhere, the tree still works.
#  3. A real `meson install` into a prefix of our own (a second build dir):
#     the command found at PREFIX/bin finds PREFIX/LIBDIR/libtruncguard.so,
#     and a copy of the command outside any prefix falls back to the
#     compiled-in PREFIX/LIBDIR.
. "$(dirname "$0")/../e2e/lib.sh"
need_victims
need_shim
command -v python3 >/dev/null || skip "python3 is needed to read meson's introspection"

BUILD=${TG_BUILD_ROOT:-${MESON_BUILD_ROOT:-$TG_BUILD}}
SRC=${TG_SOURCE_ROOT:-${MESON_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}}
[ -f "$BUILD/build.ninja" ] || fail "no meson build directory at $BUILD (set TG_BUILD_ROOT)"

# The install directories this build was configured with.
eval "$(meson introspect "$BUILD" --buildoptions | python3 -c '
import json, shlex, sys
opts = {o["name"]: o["value"] for o in json.load(sys.stdin)}
for k in ("prefix", "bindir", "libdir", "mandir", "datadir"):
    print("%s=%s" % (k, shlex.quote(opts[k])))
')" || fail "cannot read the build options of $BUILD"
abs() { case $1 in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
BINDIR=$(abs "$bindir") LIBDIR=$(abs "$libdir") MANDIR=$(abs "$mandir") DOCDIR=$(abs "$datadir")/doc/truncguard

# ---------------------------------------------------------- 1. DESTDIR
DEST=$T/dest
meson install -C "$BUILD" --no-rebuild --destdir "$DEST" >"$T/install.log" 2>&1 ||
  fail "meson install --destdir failed: $(tail -n 20 "$T/install.log")"
for f in "$BINDIR/truncguard" "$LIBDIR/libtruncguard.so" "$MANDIR/man1/truncguard.1" "$MANDIR/man7/truncguard.7" \
         "$DOCDIR/README.md" "$DOCDIR/ci.md" "$DOCDIR/systemd.md" "$DOCDIR/examples/systemd/truncguard.conf" \
         "$DOCDIR/examples/systemd/app-deploy.service" "$DOCDIR/examples/ci/deploy-step.sh" \
         "$DOCDIR/examples/ci/github-actions.yml" "$DOCDIR/examples/ci/Makefile" \
         "$DOCDIR/examples/ci/truncguard-summary.py"; do
  [ -f "$DEST$f" ] || fail "meson install did not install $f (in $DEST): $(cd "$DEST" && find . -type f)"
done
# Every file or directory of the doc dir that the installed pages name is installed.
for f in $(grep -ohE -- "$DOCDIR/[A-Za-z0-9_./-]*[A-Za-z0-9_/]" "$DEST$MANDIR/man1/truncguard.1" "$DEST$MANDIR/man7/truncguard.7" | sort -u); do
  [ -e "$DEST$f" ] || fail "the man pages name $f, which meson install did not install"
done
[ -x "$DEST$BINDIR/truncguard" ] || fail "the installed command is not executable"
[ -x "$DEST$DOCDIR/examples/ci/truncguard-summary.py" ] || fail "the installed summary script is not executable"
[ ! -e "$DEST$DOCDIR/examples/systemd/truncguard.conf.in" ] || fail "the template truncguard.conf.in was installed too"
stray=$(cd "$DEST" && find . -type f | grep -Ev '/(truncguard|libtruncguard\.so|truncguard\.[17]|[^/]+\.md)$|/examples/' )
[ -z "$stray" ] || fail "meson install installed files that are not truncguard's: $stray"
ok "meson install --destdir: $BINDIR/truncguard, $LIBDIR/libtruncguard.so, man1, man7, $DOCDIR/examples"

grep -qxF "Environment=LD_PRELOAD=$LIBDIR/libtruncguard.so" "$DEST$DOCDIR/examples/systemd/truncguard.conf" ||
  fail "the installed systemd drop-in does not name $LIBDIR/libtruncguard.so: $(grep LD_PRELOAD "$DEST$DOCDIR/examples/systemd/truncguard.conf")"
grep -qF "$LIBDIR/libtruncguard.so" "$DEST$MANDIR/man7/truncguard.7" || fail "truncguard(7) does not name the installed library"
if command -v groff >/dev/null; then
  for page in "$DEST$MANDIR/man1/truncguard.1" "$DEST$MANDIR/man7/truncguard.7"; do
    warn=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1)
    [ -z "$warn" ] || fail "${page##*/} renders with warnings: $warn"
    text=$(groff -man -Tascii -P -cbou "$page" 2>/dev/null)
    grep -q "SYNOPSIS\|DESCRIPTION" <<<"$text" || fail "${page##*/} renders to nothing readable"
  done
  ok "the man pages render without warnings (groff -man -ww)"
else
  note "groff is not installed: the man pages were not rendered"
fi

# --------------------------------- 2. the installed command, on its own
ICMD=$DEST$BINDIR/truncguard
lib=$(env -u LD_PRELOAD "$ICMD" --print-library) || fail "the installed truncguard --print-library failed"
[ "$lib" = "$DEST$LIBDIR/libtruncguard.so" ] ||
  fail "the installed command finds $lib, expected the installed $DEST$LIBDIR/libtruncguard.so"
# (Captured first: with pipefail, "cat | grep -q" fails when grep quits early.)
maps=$("$ICMD" cat /proc/self/maps) || fail "the installed truncguard could not run cat"
grep -qF "$DEST$LIBDIR/libtruncguard.so" <<<"$maps" ||
  fail "a command run by the installed truncguard does not have the installed library loaded"
ok "the installed command finds and preloads the installed library: $lib"

mkdir -p "$T/lib"
LIB=$T/lib/libfoo.so
cp_v2() { "$@" cp "$V2" "$LIB"; }
prove_protection cp_v2 "$ICMD"
ok "the installed truncguard protects a victim from cp"
# truncguard(1), ENVIRONMENT: a step run with a cleared environment is
# wrapped itself, "e.g. env -i PATH=/usr/bin ... cp new.so lib.so": run as
# the installed page writes it, the installed command on the user's PATH.
# (It read "env -i PATH=/usr/bin truncguard ...": env found no truncguard
# outside /usr/bin, as in the default prefix /usr/local: exit 127.)
if shim_has_asan; then
  # (env -i drops ASAN_OPTIONS: the sanitizer build's shim can't start in cp then)
  note "truncguard(1)'s env -i example: not run with a sanitizer build of the shim"
else
  example=$(sed -n '/^itself, e\.g\.$/{n;s/^\.BR "\(.*\)"\( \.\)\?$/\1/p}' "$DEST$MANDIR/man1/truncguard.1" | sed 's/\\-/-/g; s/\\(dq/"/g')
  [[ $example == "env -i "*" cp new.so lib.so" ]] || fail "no env -i example found in the installed truncguard(1): $example"
  fresh_copy "$V1" "$T/lib/lib.so"
  cp "$V2" "$T/lib/new.so"
  old=$(inode "$T/lib/lib.so")
  start_victim "$T/lib/lib.so"
  (cd "$T/lib" && PATH=$DEST$BINDIR:$PATH bash -c "$example") >"$T/example.out" 2>&1 ||
    fail "truncguard(1)'s example \"$example\" failed (exit $?): $(cat "$T/example.out")"
  stop_victim
  expect_survived "truncguard(1)'s example \"$example\""
  [ "$(inode "$T/lib/lib.so")" != "$old" ] && cmp -s "$T/lib/lib.so" "$V2" || fail "truncguard(1)'s example: v2 is not at a new inode"
  ok "truncguard(1)'s example runs as written, the installed command on PATH: $example"
fi
# LD_PRELOAD=libtruncguard.so by bare name, the installed libdir in the
# loader's path (README: "works by bare name once that directory is in the
# loader's path").
prove_protection cp_v2 env LD_LIBRARY_PATH="$DEST$LIBDIR" LD_PRELOAD=libtruncguard.so
ok "LD_PRELOAD=libtruncguard.so by bare name, the installed libdir in the loader's path, protects a victim from cp"

# The tree moved (as a package unpacked elsewhere, a relocated prefix).
mv "$DEST" "$T/moved"
lib=$("$T/moved$BINDIR/truncguard" --print-library) || fail "the moved command can't find its library"
[ "$lib" = "$T/moved$LIBDIR/libtruncguard.so" ] || fail "the moved command finds $lib, expected $T/moved$LIBDIR/libtruncguard.so"
ok "a moved install tree still finds its own library"

# ------------------------------------------- 3. a real install, own prefix
PREFIX=$T/prefix
B2=$T/build2
meson setup "$B2" "$SRC" --prefix="$PREFIX" -Dbuildtype=plain >"$T/setup.log" 2>&1 ||
  fail "meson setup --prefix=$PREFIX failed: $(tail -n 20 "$T/setup.log")"
# Only what is installed: the command and the library (not the tests).
meson compile -C "$B2" shim/truncguard:executable shim/truncguard:shared_library >"$T/compile.log" 2>&1 ||
  fail "building the command and library in $B2 failed: $(tail -n 20 "$T/compile.log")"
meson install -C "$B2" --no-rebuild >"$T/install2.log" 2>&1 || fail "meson install into $PREFIX failed: $(tail -n 20 "$T/install2.log")"
eval "$(meson introspect "$B2" --buildoptions | python3 -c '
import json, shlex, sys
opts = {o["name"]: o["value"] for o in json.load(sys.stdin)}
print("libdir2=%s bindir2=%s" % (shlex.quote(opts["libdir"]), shlex.quote(opts["bindir"])))
')"
lib=$("$PREFIX/$bindir2/truncguard" --print-library) || fail "$PREFIX/$bindir2/truncguard --print-library failed"
[ "$lib" = "$PREFIX/$libdir2/libtruncguard.so" ] || fail "the command installed in $PREFIX finds $lib"
[ -f "$PREFIX/share/man/man1/truncguard.1" ] || fail "no man page in $PREFIX/share/man/man1"
ok "meson install --prefix=$PREFIX: the command finds $lib"

# A copy of the command outside any prefix: the compiled-in PREFIX/LIBDIR.
mkdir -p "$T/elsewhere"
cp "$PREFIX/$bindir2/truncguard" "$T/elsewhere/truncguard"
lib=$("$T/elsewhere/truncguard" --print-library) || fail "a copy of the command outside the prefix can't find the library"
[ "$lib" = "$PREFIX/$libdir2/libtruncguard.so" ] || fail "a copy outside the prefix finds $lib, expected the installed one"
out=$("$T/elsewhere/truncguard" cat /proc/self/maps) || fail "the copy outside the prefix can't run a command"
grep -qF "$PREFIX/$libdir2/libtruncguard.so" <<<"$out" || fail "the copy outside the prefix does not preload the installed library"
ok "a copy of the command elsewhere falls back to the installed $PREFIX/$libdir2"
# Something else at the library's name next to the copy (a FIFO: ld.so's read
# of it, and the command's, would block for good) is not taken for it.
mkfifo "$T/elsewhere/libtruncguard.so" || fail "mkfifo failed"
lib=$(timeout 10 "$T/elsewhere/truncguard" --print-library 2>"$T/fifo.err")
st=$?
[ "$st" -eq 0 ] && [ "$lib" = "$PREFIX/$libdir2/libtruncguard.so" ] ||
  fail "a FIFO named libtruncguard.so next to the command: exit $st, library \"$lib\", expected the installed one: $(cat "$T/fifo.err")"
timeout 10 "$T/elsewhere/truncguard" true || fail "a FIFO named libtruncguard.so next to the command: truncguard true exited $?"
rm -f "$T/elsewhere/libtruncguard.so"
ok "a FIFO at the library's name next to the command is passed over: the installed library"

# Without the library anywhere: a clear error, exit 126.
rm -f "$PREFIX/$libdir2/libtruncguard.so"
err=$("$T/elsewhere/truncguard" true 2>&1)
st=$?
[ "$st" -eq 126 ] || fail "with the library gone, truncguard true exited $st, expected 126: $err"
grep -q "cannot find libtruncguard.so" <<<"$err" && grep -q "Reinstall" <<<"$err" ||
  fail "with the library gone, the error does not say what is missing and what to do: $err"
ok "no library: exit 126, \"$(head -n 1 <<<"$err")\""
