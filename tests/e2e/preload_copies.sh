# preload_copies VAR...: sourced by lib.sh and tests/reload/rlib.sh, once $T
# exists. ld.so splits LD_PRELOAD at spaces and colons, and the command
# refuses a library path holding one (README), so from a build tree under
# such a path (a clone in "~/My Projects") nothing can be preloaded: every
# test that preloads would fail. Each VAR that holds such a path then names a
# copy in $T/preload instead; the command and the shim go there side by side,
# as in the build tree (the command finds its library next to itself).
# So too a path longer than 254 bytes (a clone under a long path): ld.so
# ignores such an LD_AUDIT entry, and the command refuses it for --audit.
preload_copies() {
  local v src
  for v in "$@"; do
    src=${!v:-}
    [[ $src == *[\ :]* ]] || [ "${#src}" -gt 254 ] || continue
    mkdir -p -m 755 "$T/preload" && cp -- "$src" "$T/preload/" || {
      echo "FAIL: $TEST_NAME: cannot copy $src to $T/preload" >&2
      exit 1
    }
    printf -v "$v" '%s' "$T/preload/${src##*/}"
    export "${v?}"
  done
}
