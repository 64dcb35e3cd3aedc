# Sourced by scripts/build.sh and scripts/test.sh, from the source tree.
# forget_other_tree DIR: a build directory configured for another source
# tree (the clone was moved or renamed, or copied with its build
# directories) is removed, to be set up again for this one: meson would
# regenerate it from the other tree, building and testing that tree's
# files, or, that tree gone, fail for good ("Neither directory contains a
# build file meson.build").
forget_other_tree() {
  local info=$1/meson-info/meson-info.json src
  [ -f "$info" ] || return 0
  src=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["directories"]["source"])' "$info") ||
    return 0
  [ "$(cd -- "$src" 2>/dev/null && pwd -P)" != "$(pwd -P)" ] || return 0
  echo "$1 was set up for the source tree $src, not this one: setting it up again" >&2
  rm -rf -- "$1"
}
