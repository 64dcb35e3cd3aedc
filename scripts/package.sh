#!/usr/bin/env bash
# Builds the Debian package of truncguard out of tree, unpacks it in a scratch
# root, and proves that the packaged files alone protect a running program:
#
#   scripts/package.sh [--outdir DIR] [--keep] [--install]
#
#   --outdir DIR  copy the built .deb (and .buildinfo, .changes) to DIR
#   --keep        keep the work directory (source copy, build, scratch root)
#   --install     also install the package on this machine with dpkg -i, run
#                 the proof with /usr/bin/truncguard and a bare-name
#                 LD_PRELOAD=libtruncguard.so, then remove it again (only if
#                 it was not installed before; needs root)
#
# Steps: install the packaging tools and build dependencies from Debian
# (apt-get, only what is missing); copy the source (tracked and untracked
# files, not the build directories) to a temporary directory, because
# dpkg-buildpackage writes its results into the parent directory of the
# source; `dpkg-buildpackage -us -uc -b` there; check the package's file
# list; `dpkg -x` it into a scratch root; then, with a clean environment and
# only the unpacked files:
#   - truncguard --print-library names the unpacked library;
#   - control: a victim that loaded a library is killed by a plain cp of a
#     new version over it;
#   - the same cp under the unpacked truncguard: the victim lives on, a new
#     process loads the new version, the log says "replaced";
#   - truncguard stale lists the victim, truncguard who shows it on the
#     replaced inode; the man pages are in the package.
#
# DEB_BUILD_OPTIONS is passed on: nocheck skips the package's unit tests and
# builds only what the package installs (much faster).
# The victim programs come from the package build tree, or from $TG_VICTIM,
# $TG_LIB_V1 and $TG_LIB_V2 if set (the meson test sets them).
#
# Exit status: 0 proven; 1 failed; 77 this machine can't do it (not root and
# no sudo to install what is missing, or apt-get can't reach the archive).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
outdir= keep= install_too=
while [ $# -gt 0 ]; do
  case $1 in
    --outdir) outdir=${2:?--outdir needs a directory}; shift 2 ;;
    --outdir=*) outdir=${1#--outdir=}; shift ;;
    --keep) keep=1; shift ;;
    --install) install_too=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown argument '$1' (try --help)" >&2; exit 1 ;;
  esac
done

say() { echo "package.sh: $*"; }
die() { echo "package.sh: FAILED: $*" >&2; exit 1; }
cannot() { echo "package.sh: SKIP: $*" >&2; exit 77; }

# ------------------------------------------------------------------ tools
# The packaging tools, and the package's Build-Depends (debian/control).
packages=(dpkg-dev debhelper fakeroot build-essential
          meson ninja-build pkg-config libunwind-dev libgtest-dev libbenchmark-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null && sudo -n true 2>/dev/null ||
      cannot "missing packages ${missing[*]} and I am not root (install them: apt-get install ${missing[*]})"
    sudo=(sudo -n)
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || cannot "apt-get update failed: no access to the Debian archive?"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    cannot "apt-get install ${missing[*]} failed: no access to the Debian archive?"
fi

# ------------------------------------------------------------ source copy
work=$(mktemp -d "${TMPDIR:-/tmp}/truncguard-pkg.XXXXXX")
chmod 755 "$work"
cleanup() {
  # Victims still running (a failed proof) go with the work directory.
  for p in ${victims:-}; do kill -KILL "$p" 2>/dev/null || true; done
  if [ -n "$keep" ]; then say "kept $work"; else rm -rf -- "$work"; fi
}
trap cleanup EXIT

version=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)
meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$here/meson.build" | head -n 1)
[ "$version" = "$meson_version" ] ||
  die "debian/changelog says $version but meson.build says $meson_version: add a changelog entry (dch -v $meson_version)"

src=$work/truncguard-$version
mkdir -p "$src"
# Tracked and untracked files, not what git ignores (build directories).
if git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$here" && git ls-files -z --cached --others --exclude-standard |
     while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
     tar --null -T - -cf -) | tar -xf - -C "$src"
else
  tar -C "$here" --exclude='./build*' --exclude='./obj-*' --exclude=./.git -cf - . | tar -xf - -C "$src"
fi
# Leftovers of an in-tree package build, if anyone ran one.
rm -rf "$src"/obj-* "$src"/debian/.debhelper "$src"/debian/truncguard "$src"/debian/files \
       "$src"/debian/*.substvars "$src"/debian/debhelper-build-stamp
say "building truncguard $version in $src"

# ------------------------------------------------------------------ build
(cd "$src" && dpkg-checkbuilddeps) || die "build dependencies are missing (see above)"
start=$(date +%s)
if ! (cd "$src" && dpkg-buildpackage -us -uc -b -jauto) >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  die "dpkg-buildpackage failed (the whole log: run with --keep, $work/build.log)"
fi
arch=$(dpkg --print-architecture)
deb=$work/truncguard_${version}_${arch}.deb
[ -f "$deb" ] || die "no $deb after the build: $(ls "$work")"
say "built $(basename "$deb") in $(($(date +%s) - start)) s"

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/truncguard "./usr/lib/$multiarch/libtruncguard.so" \
         ./usr/share/man/man1/truncguard.1.gz ./usr/share/man/man7/truncguard.7.gz \
         ./usr/share/doc/truncguard/copyright ./usr/share/doc/truncguard/examples/systemd/truncguard.conf \
         ./usr/share/doc/truncguard/examples/ci/truncguard-summary.py; do
  grep -qxF -e "$f" -e "$f.gz" <<<"$contents" || die "the package lacks $f; it has: $contents"
done
grep -qF "Environment=LD_PRELOAD=/usr/lib/$multiarch/libtruncguard.so" < <(dpkg-deb --fsys-tarfile "$deb" |
  tar -xOf - ./usr/share/doc/truncguard/examples/systemd/truncguard.conf) ||
  die "the packaged systemd drop-in does not name /usr/lib/$multiarch/libtruncguard.so"
say "package contents: /usr/bin/truncguard, /usr/lib/$multiarch/libtruncguard.so, truncguard(1), truncguard(7), examples"
say "depends: $(dpkg-deb -f "$deb" Depends)"
if [ -n "$outdir" ]; then
  mkdir -p "$outdir"
  cp "$work"/truncguard_"$version"_* "$outdir"/
  say "copied the package to $outdir/$(basename "$deb")"
fi

# ------------------------------------------------------------------ proof
# The victims: from the caller, or built in the package's build tree (with
# nocheck, the package build made only what it installs).
obj=$src/obj-$(dpkg-architecture -qDEB_HOST_GNU_TYPE)
victim=${TG_VICTIM:-$obj/tests/victim/victim}
lib_v1=${TG_LIB_V1:-$obj/tests/victim/libvictim_v1.so}
lib_v2=${TG_LIB_V2:-$obj/tests/victim/libvictim_v2.so}
if [ ! -f "$victim" ] || [ ! -f "$lib_v1" ] || [ ! -f "$lib_v2" ]; then
  ninja -C "$obj" tests/victim/victim tests/victim/libvictim_v1.so tests/victim/libvictim_v2.so >>"$work/build.log" 2>&1 ||
    die "cannot build the victim programs in $obj (see $work/build.log, with --keep)"
fi
for f in "$victim" "$lib_v1" "$lib_v2"; do [ -f "$f" ] || die "no victim program $f"; done

root=$work/root
dpkg -x "$deb" "$root"
proof=$work/proof
mkdir -p "$proof"
cp "$lib_v1" "$proof/v1.so"
cp "$lib_v2" "$proof/v2.so"
victims=

# A clean environment: no LD_PRELOAD, no TRUNCGUARD_* from the caller.
# (An array, not a function: a function in the background would be a
# subshell, and $! its pid, not the victim's.)
clean=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C)
clean() { "${clean[@]}" "$@"; }

# start_victim LIB: a process that dlopen'ed LIB and calls it until released.
# A small sh waits for it and writes down its status, so that its death by a
# signal in the control case is a fact in a file, not a job message from bash.
start_victim() {
  rm -f "$proof/ready" "$proof/victim.pid" "$proof/victim.status"
  "${clean[@]}" sh -c '"$@" & echo $! >"$0.pid"; wait $!; echo $? >"$0.status"' \
    "$proof/victim" "$victim" "$1" 20000 "$proof/ready" >"$proof/victim.out" 2>&1 &
  wrapper=$!
  # The victim may be ready before its wrapper has written its pid: wait for both.
  for _ in $(seq 1000); do [ -e "$proof/ready" ] && [ -s "$proof/victim.pid" ] && break; sleep 0.01; done
  [ -e "$proof/ready" ] || die "the victim did not start: $(cat "$proof/victim.out")"
  vpid=$(cat "$proof/victim.pid")
  victims="$victims $vpid"
}
stop_victim() {
  rm -f "$proof/ready"
  wait "$wrapper" || true
  vstatus=$(cat "$proof/victim.status" 2>/dev/null || echo "?")
}

# prove CMD: the unpacked (or installed) truncguard at CMD protects a victim.
prove() {
  local tg=$1 lib=$proof/libfoo.so old new
  # control: without truncguard the victim dies
  rm -f "$lib"; cp "$proof/v1.so" "$lib"
  start_victim "$lib"
  clean cp "$proof/v2.so" "$lib"
  stop_victim
  [ "$vstatus" -gt 128 ] || die "control: plain cp over the library did not kill the victim (status $vstatus)"
  say "control: plain cp killed the victim (signal $((vstatus - 128)))"

  rm -f "$lib"; cp "$proof/v1.so" "$lib"
  old=$(stat -c %i "$lib")
  start_victim "$lib"
  clean "$tg" --log="$proof/log" cp "$proof/v2.so" "$lib" || die "$tg cp failed"
  new=$(stat -c %i "$lib")
  [ "$new" != "$old" ] || die "$tg cp truncated the library in place (inode $old kept)"
  # who and stale, from the package too, see the victim on the old inode.
  set +e
  clean "$tg" stale >"$proof/stale.out" 2>"$proof/stale.err"
  st=$?
  set -e
  [ "$st" -eq 1 ] && awk -v p="$vpid" '$2 == p && $5 == "deleted"' "$proof/stale.out" | grep -q . ||
    die "$tg stale does not list the victim (pid $vpid), exit $st: $(cat "$proof/stale.out" "$proof/stale.err")"
  clean "$tg" who "$lib" 2>/dev/null | grep -Eq "^ +$vpid .* exec +replaced \(inode $old" ||
    die "$tg who does not show the victim on the replaced inode $old: $(clean "$tg" who "$lib" 2>&1)"
  stop_victim
  [ "$vstatus" -eq 0 ] && grep -q released "$proof/victim.out" ||
    die "with $tg the victim ended with status $vstatus: $(cat "$proof/victim.out")"
  got=$(clean "$victim" --once "$lib" 2>&1)
  [ "$got" = "version 2" ] || die "a new process loads \"$got\", expected version 2"
  grep -q "replaced file=$lib \[ino $old -> $new\]" "$proof"/log.* || die "no 'replaced' line in the log: $(cat "$proof"/log.*)"
  rm -f "$proof"/log.*
  say "with $tg: the victim survived, a new process loads version 2, stale and who list the victim"
}

tg=$root/usr/bin/truncguard
got=$(clean "$tg" --print-library)
[ "$got" = "$root/usr/lib/$multiarch/libtruncguard.so" ] ||
  die "the unpacked truncguard finds its library at $got, expected $root/usr/lib/$multiarch/libtruncguard.so"
say "unpacked in $root: $(clean "$tg" --version), library $got"
prove "$tg"
man -l "$root/usr/share/man/man1/truncguard.1.gz" >/dev/null 2>&1 ||
  zcat "$root/usr/share/man/man1/truncguard.1.gz" | grep -q '^\.TH TRUNCGUARD 1' || die "truncguard.1.gz is not a man page"

if [ -n "$install_too" ]; then
  [ "$(id -u)" -eq 0 ] || die "--install needs root"
  if dpkg-query -W -f='${Status}' truncguard 2>/dev/null | grep -q '^install ok installed$'; then
    die "truncguard is already installed on this machine: --install would replace it; remove it first"
  fi
  dpkg -i "$deb" >/dev/null || die "dpkg -i $deb failed"
  trap 'dpkg -r truncguard >/dev/null 2>&1 || true; cleanup' EXIT
  say "installed with dpkg -i: $(command -v truncguard), $(truncguard --print-library)"
  prove /usr/bin/truncguard
  # The library by bare name: /usr/lib/MULTIARCH is in the loader's path.
  clean env LD_PRELOAD=libtruncguard.so cat /proc/self/maps | grep -q "/usr/lib/$multiarch/libtruncguard.so" ||
    die "LD_PRELOAD=libtruncguard.so (bare name) does not load /usr/lib/$multiarch/libtruncguard.so"
  say "LD_PRELOAD=libtruncguard.so by bare name loads /usr/lib/$multiarch/libtruncguard.so"
  dpkg -r truncguard >/dev/null || die "dpkg -r truncguard failed"
  [ ! -e /usr/bin/truncguard ] || die "dpkg -r left /usr/bin/truncguard"
  trap cleanup EXIT
  say "removed again with dpkg -r"
fi
say "OK: the package $(basename "$deb") protects a running program from cp using only its own files"
