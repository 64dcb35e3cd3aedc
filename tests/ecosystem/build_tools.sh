#!/bin/bash
# A real build under truncguard (`truncguard make`, LD_PRELOAD in atomic
# mode) against the same build without it: GNU make -j2 with gcc -shared,
# ar, ranlib, ld -r, objcopy --only-keep-debug / --add-gnu-debuglink and
# strip in place, install -s, a symlink and a hard link. The build must
# see nothing of truncguard: same status, same stderr, the same bytes,
# modes, links and symlinks, and a second make that has nothing to do.
# Then the victim of a build: the build's own test program running from the
# build directory while `make strip` strips its library in place (without
# truncguard it dies); with it, it lives on, a fresh run loads the stripped
# library, and make decides as it would without truncguard.
. "$(dirname "$0")/../e2e/lib.sh"
need_shim
unset TRUNCGUARD_LOG   # truncguard's lines go where a build's stderr goes
for t in make gcc ar ranlib ld nm objcopy strip install readelf; do
  command -v "$t" >/dev/null || skip "$t is not installed"
done

# ---- binutils' plugin loader: ar, nm and ranlib dlopen every bfd plugin
# and dlclose it for each file they look at. A plugin built -z nodelete
# (LLVMgold is: /usr/lib/bfd-plugins/LLVMgold-14.so on a machine with clang)
# stays loaded, and each of those dlcloses printed a "still loaded" note in
# the build's stderr, three per ar run.
cat > plug.c <<'EOF'
int tg_plugin_dummy(void) { return 1; }
EOF
echo 'int tg_obj(int x) { return x + 1; }' > obj.c
must gcc -shared -fPIC -Wl,-z,nodelete -o "$T/libplug.so" plug.c
must gcc -c -o obj.o obj.c
bfd_tools() {
  "$@" nm --plugin "$T/libplug.so" obj.o && "$@" ar --plugin "$T/libplug.so" rc plug.a obj.o &&
    "$@" ranlib --plugin "$T/libplug.so" plug.a
}
rm -f plug.a; bfd_tools env >plain.out 2>plain.err; plain=$?
rm -f plug.a; bfd_tools "$TG_CMD" >tg.out 2>tg.err; st=$?
[ "$st" -eq "$plain" ] || fail "nm/ar/ranlib --plugin: exit $st under truncguard, $plain without"
cmp -s plain.out tg.out || fail "nm/ar/ranlib --plugin: stdout differs under truncguard"
cmp -s plain.err tg.err || fail "nm/ar/ranlib --plugin: stderr differs under truncguard: $(head -3 tg.err)"
# The proof that the shim saw those dlcloses: under the files category it says so.
rm -f plug.a; bfd_tools "$TG_CMD" --debug=files >/dev/null 2>files.err
grep -q "note file=$T/libplug.so is still loaded after dlclose: built with -z nodelete (DF_1_NODELETE)" files.err ||
  fail "nm/ar/ranlib --plugin, --debug=files: no note of the -z nodelete plugin: $(head -3 files.err)"
ok "nm, ar and ranlib with a -z nodelete bfd plugin: same status, output and stderr as without truncguard (the note is under --debug=files)"

# ---- a make build, differentially
if asan_cannot_start gcc; then
  note "the make build and its victim are left out here: gcc: $NO_ASAN"
  exit 0
fi
mkdir src
cat > src/foo.c <<'EOF'
#include <stdio.h>
#include <string.h>
static int counter;
int foo_version(void) { return 1; }
int foo_work(int x) {
  char b[64];
  counter++;
  int n = snprintf(b, sizeof b, "v1:%d:%d", x, counter);
  return n + (int)strlen(b);
}
EOF
echo 'int bar(int x) { return x * 3; }' > src/bar.c
# main: prints the version; with a file argument, calls into the library
# until the file is removed.
cat > src/main.c <<'EOF'
#include <stdio.h>
#include <unistd.h>
int foo_version(void);
int foo_work(int);
int main(int argc, char** argv) {
  printf("version %d\n", foo_version());
  fflush(stdout);
  for (int i = 0; argc > 1 && access(argv[1], F_OK) == 0; i++) {
    foo_work(i);
    usleep(1000);
  }
  return 0;
}
EOF
cat > src/Makefile <<'EOF'
CFLAGS = -O2 -g
all: libfoo.so libfoo.so.1 libfoo.a foo_r.o main main_static stage/lib/libfoo.so stage/bin/main hard.so
%.o: %.c
	$(CC) $(CFLAGS) -fPIC -c $< -o $@
libfoo.so: foo.o bar.o
	$(CC) -shared -Wl,-soname,libfoo.so -o $@ foo.o bar.o
	objcopy --only-keep-debug $@ $@.debug
	strip --strip-debug $@
	objcopy --add-gnu-debuglink=$@.debug $@
libfoo.so.1: libfoo.so
	ln -sf libfoo.so $@
hard.so: libfoo.so
	rm -f $@; ln libfoo.so $@
libfoo.a: foo.o bar.o
	ar rc $@ foo.o bar.o
	ranlib $@
foo_r.o: foo.o bar.o
	ld -r -o $@ foo.o bar.o
main: main.o libfoo.so
	$(CC) -o $@ main.o -L. -lfoo -Wl,-rpath,'$$ORIGIN'
main_static: main.o libfoo.a
	$(CC) -o $@ main.o libfoo.a
stage/lib/libfoo.so: libfoo.so
	install -D -m 0755 -s libfoo.so $@
stage/bin/main: main
	install -D -m 0755 -s main $@
strip:
	strip --strip-unneeded libfoo.so
.PHONY: all strip
EOF
# What a build leaves: bytes, type, mode, link count, symlink target.
record() {
  (cd "$1" && find . -type f -exec sha256sum {} + | sort -k2 &&
     find . -printf '%y %m %n %p %l\n' | sort -k4)
}
# build LABEL WRAPPER...: a clean tree in b-LABEL/ (each its own directory,
# built from it as "b": the debug info names the same paths)
build() {
  local label=$1
  shift
  rm -rf b && cp -a src b
  (cd b && "$@" make -j2 >../"$label".out 2>../"$label".err)
  echo $? >"$label".status
  (cd b && "$@" make -q)
  echo $? >>"$label".status
  (cd b && "$@" make >>../"$label".out 2>>../"$label".err)
  echo $? >>"$label".status
  record b >"$label".tree
  mv b "b-$label"
}
build plain env
[ "$(cat plain.status)" = "$(printf '0\n0\n0')" ] || fail "the control build: statuses $(cat plain.status | tr '\n' ' '): $(cat plain.err)"
build cmd "$TG_CMD"
build atomic env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_MODE=atomic
for label in cmd atomic; do
  diff plain.status "$label".status >/dev/null || fail "$label: make, make -q, make: $(tr '\n' ' ' <"$label".status), without truncguard $(tr '\n' ' ' <plain.status)"
  cmp -s plain.err "$label".err || fail "$label: the build's stderr differs: $(diff plain.err "$label".err | head -5)"
  # -j2: the commands' order varies from run to run
  diff <(sort plain.out) <(sort "$label".out) >/dev/null ||
    fail "$label: make's output differs: $(diff <(sort plain.out) <(sort "$label".out) | head -5)"
  cmp -s plain.tree "$label".tree || fail "$label: the build tree differs: $(diff plain.tree "$label".tree | head -5)"
done
ok "make -j2 (gcc -shared, ar, ranlib, ld -r, objcopy/strip in place, install -s, ln, ln -s): same statuses, output, stderr, bytes, modes, links; the second make has nothing to do; truncguard and atomic mode alike"

# ---- the build's victim: its test program runs while `make strip` strips
# the library it runs in place (binutils 2.40 copies the stripped temp back
# into the old inode with O_TRUNC).
# victim_strip LABEL WRAPPER...: in b-LABEL, run main, make strip, stop main
victim_strip() {
  local label=$1 dir=b-$1 vp st
  shift
  touch "$T/$label.ready"
  "$dir"/main "$T/$label.ready" >"$label.victim" 2>&1 &
  vp=$!
  _tg_pids+=("$vp")
  for _ in $(seq 100); do grep -q version "$label.victim" && break; sleep 0.05; done
  grep -q "version 1" "$label.victim" || fail "$label: the test program did not start: $(cat "$label.victim")"
  (cd "$dir" && "$@" make strip >"../$label.strip.out" 2>"../$label.strip.err") ||
    fail "$label: make strip failed: $(cat "$label.strip.err")"
  rm -f "$T/$label.ready"
  wait "$vp"
  st=$?
  echo "$st" >"$label.victim.status"
  (cd "$dir" && make -q; echo "make -q $?") >"$label.after"
  (cd "$dir" && ./main; readelf -SW libfoo.so | grep -c '\.symtab') >>"$label.after" 2>&1
  (cd "$dir" && make -n) >>"$label.after" 2>&1
}
victim_strip plain env
st=$(cat plain.victim.status)
[ "$st" -gt 128 ] || fail "control: the test program survived strip in place of its library without truncguard ($(describe_status "$st")): this test proves nothing here"
note "control: without truncguard the test program was $(describe_status "$st")"
for label in cmd atomic; do
  case $label in
    cmd) victim_strip cmd "$TG_CMD" ;;
    atomic) victim_strip atomic env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_MODE=atomic ;;
  esac
  st=$(cat "$label.victim.status")
  [ "$st" -eq 0 ] || fail "$label: the test program was $(describe_status "$st") by make strip: $(cat "$label.strip.err")"
  grep -q "replaced file=libfoo.so \|published file=libfoo.so " "$label.strip.err" ||
    fail "$label: make strip's stderr has no line of the replacement: $(cat "$label.strip.err")"
  # One documented difference: the hard link hard.so keeps the old inode
  # (and its older mtime), so make links it again; without truncguard the
  # strip went into both names.
  grep -qx 'rm -f hard.so; ln libfoo.so hard.so' "$label.after" ||
    fail "$label: after make strip, make -n would not link hard.so again: $(cat "$label.after")"
  diff plain.after <(grep -vx 'rm -f hard.so; ln libfoo.so hard.so' "$label.after") >/dev/null ||
    fail "$label: after make strip, make -q, a fresh run, the stripped library or make -n differ: $(diff plain.after "$label.after")"
done
ok "make strip while the build's test program runs: without truncguard it is killed; with it (and in atomic mode) it lives on, a fresh run loads the stripped library, make decides as without truncguard (but for the hard link, which kept the old file)"

# ---- A directory as a prerequisite (README, "Limits"): a replacement
# renames a file into the directory, so its mtime changes, where cp in place
# leaves it: after `truncguard cp new.so lib/libfoo.so` over a library in
# use, `make -q` of `stamp: lib` says 1 (without truncguard 0, the victim
# killed); an order-only prerequisite (`ostamp: | lib`) says 0 either way.
# The times are set an hour and half an hour back, so no clock tick matters.
need_victims
dir_prereq() {  # dir_prereq LABEL WRAPPER...: sets DP to "STAMP OSTAMP" (make -q's statuses)
  local d=$T/dp-$1
  shift
  mkdir -p "$d/lib" && cp "$V1" "$d/lib/libfoo.so" || fail "setup: cannot make $d"
  printf 'stamp: lib\n\ttouch stamp\nostamp: | lib\n\ttouch ostamp\n' >"$d/Makefile"
  touch -d '-1 hour' "$d/lib/libfoo.so" "$d/lib" && touch -d '-30 minutes' "$d/stamp" "$d/ostamp" ||
    fail "setup: cannot set the times in $d"
  start_victim "$d/lib/libfoo.so"
  (cd "$d" && "$@" cp "$V2" lib/libfoo.so) 2>"$T/dp.err" || fail "$*cp over lib/libfoo.so failed: $(cat "$T/dp.err")"
  stop_victim
  DP=$(cd "$d" && make -q stamp; s=$?; make -q ostamp; echo "$s $?")
}
dir_prereq plain env
expect_killed "control: cp over the library in lib/, without truncguard"
[ "$DP" = "0 0" ] || fail "control: make -q of stamp: lib and ostamp: | lib said $DP, expected 0 0"
dir_prereq tg "$TG_CMD"
expect_survived "truncguard cp over the library in lib/"
[ "$DP" = "1 0" ] || fail "under truncguard: make -q of stamp: lib and ostamp: | lib said $DP, expected 1 0"
ok "a directory as a prerequisite: make -q says 1 after the replacement (0 without truncguard), 0 for an order-only one"
