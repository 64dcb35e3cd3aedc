# Sourced by scripts/build.sh and scripts/test.sh, from the source tree.
# forget_other_tree DIR: a build directory configured for another source
# tree (the clone was moved or renamed, or copied with its build
# directories) is removed, to be set up again for this one: meson would
# regenerate it from the other tree, building and testing that tree's
# files, or, that tree gone, fail for good ("Neither directory contains a
# build file meson.build"). One of this tree reached by another path is
# kept (with the options its user set).
forget_other_tree() {
  local info=$1/meson-info/meson-info.json src
  [ -f "$info" ] || return 0
  src=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["directories"]["source"])' "$info") ||
    return 0
  # The same directory (device and inode), however it is reached: a symlink,
  # or a bind mount (a container's, a chroot's) that pwd -P can't resolve.
  [ ! "$src" -ef . ] || return 0
  echo "$1 was set up for the source tree $src, not this one: setting it up again" >&2
  rm -rf -- "$1"
}
