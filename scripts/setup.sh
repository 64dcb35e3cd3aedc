#!/usr/bin/env bash
# Installs what truncguard needs to build and test, from Debian's archive only.
# Idempotent: installs nothing (and asks apt nothing) when all is there.
set -euo pipefail

packages=(
  meson ninja-build g++ pkg-config  # the build
  libunwind-dev                     # backtraces in the log
  libgtest-dev                      # unit tests
  libbenchmark-dev                  # benchmarks
  attr                              # setfattr/getfattr in the end-to-end tests
  btrfs-progs                       # mkfs.btrfs: the btrfs test (reliability/btrfs.sh)
  xfsprogs dosfstools exfatprogs    # mkfs.xfs, mkfs.vfat, mkfs.exfat, mkfs.f2fs, mksquashfs,
  f2fs-tools squashfs-tools erofs-utils  # mkfs.erofs: reliability/filesystems.sh
  bindfs                            # a real FUSE filesystem: reliability/filesystems.sh
  coreutils util-linux              # cp, dd, tee, install; setpriv
  rsync cpio busybox patchelf       # writers of the real-writers matrix (tests/e2e/real_writers.sh)
  zip unzip moreutils zstd xz-utils #   (zip makes its archives; sponge; zstd and xz decompress over a library)
  nodejs                            # node: libuv closes with syscall(SYS_close) (tests/e2e/mode_atomic.sh, real_writers.sh)
  fakeroot eatmydata faketime       # other LD_PRELOAD tools, and allocators preloaded with
  libjemalloc2 libtcmalloc-minimal4 #   truncguard, and valgrind's (tests/e2e/other_preloads.sh)
  valgrind
  gcc-multilib                      # a 32-bit writer the command can't protect (tests/e2e/cannot_protect.sh)
  inotify-tools                     # inotifywait: what the guard's look at a file shows watchers (tests/e2e/kernel_interface.sh)
  python3 bash-builtins             # runtimes as dlopen hosts: ctypes, bash's enable -f (tests/reload/interpreters.sh)
  strace                            # the signal-mask calls of an examined write (tests/e2e/signal_jump.sh)
  logrotate                         # docs/systemd.md's example, run (tests/ecosystem/logrotate_example.sh)
  clang-14 libclang-rt-14-dev       # libFuzzer targets (scripts/fuzz.sh)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "setup: these Debian packages are missing and I am not root: ${missing[*]}" >&2
    echo "setup: install them with: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
