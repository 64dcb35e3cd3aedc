#!/bin/bash
# Bug: truncguard next to the other LD_PRELOAD tools of CI jobs and package
# builds (and valgrind) loses its protection, or breaks theirs. Each tool, in each order:
# the victim survives the write and the log names it (the control: plain cp
# kills it). Under fakeroot, the new inode has the owner fakeroot showed for
# the old one (dpkg-deb packs what fakeroot shows), not fakeroot's default
# root: the shim reads and sets the owner through the fstat and fchown the
# program itself calls.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim

LIB=$T/libvictim.so
copy_v2() { "$@" cp "$V2" "$LIB"; }
have() { command -v "$1" >/dev/null; }
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

# ---------------------------------------------------------------- fakeroot
if have fakeroot; then
  prove_protection copy_v2 fakeroot "$TG_CMD"
  prove_protection copy_v2 "$TG_CMD" fakeroot

  # owner_in_fakeroot DIR WRAPPER...: in one fakeroot session, the library
  # is given to 1234:2345 and overwritten while a victim maps it; OWNER is
  # the owner and mode fakeroot then shows.
  owner_in_fakeroot() {
    local dir=$1 lib=$1/libfr.so
    shift
    rm -f -- "$lib"
    must cp "$V1" "$lib"
    chmod 755 "$lib"
    chown --reference="$dir" "$lib"
    start_victim "$lib"
    "$@" sh -c 'chown 1234:2345 "$1" && chmod 750 "$1" && cp "$2" "$1" && stat -c "%u:%g %a" "$1"' sh "$lib" "$V2" >"$T/owner.out"
    local st=$?
    OWNER=$(cat -- "$T/owner.out")
    stop_victim
    return $st
  }
  for who in root nobody; do
    dir=$T/fr-$who run=()
    mkdir -p "$dir"
    if [ "$who" = nobody ]; then
      [ "$(id -u)" -eq 0 ] && as_nobody true || { note "fakeroot as nobody: skipped (needs root and setpriv)"; continue; }
      chown 65534:65534 "$dir"
      nobody_copies
      run=(as_nobody)
      cmd=$TG_CMD_N
    else
      cmd=$TG_CMD
    fi
    # The control: what fakeroot shows after a plain cp (the old inode,
    # written in place: the victim dies, its owner is kept).
    owner_in_fakeroot "$dir" "${run[@]}" fakeroot || fail "control: cp under fakeroot as $who failed"
    want=$OWNER
    expect_killed "control: cp under fakeroot as $who"
    [ "$want" = "1234:2345 750" ] || fail "control: fakeroot as $who shows '$want' after cp, expected 1234:2345 750"
    for order in outer inner; do
      if [ $order = outer ]; then w=(fakeroot "$cmd"); else w=("$cmd" fakeroot); fi
      owner_in_fakeroot "$dir" "${run[@]}" "${w[@]}" || fail "cp under ${w[*]##*/} as $who failed"
      got=$OWNER
      expect_survived "cp under ${w[*]##*/} as $who"
      [ "$got" = "$want" ] ||
        fail "under ${w[*]##*/} as $who, fakeroot shows the new inode as '$got', and the old one as '$want'"
      ok "${w[*]##*/} as $who: fakeroot shows the new inode as it showed the old: $got"
    done
  done
else
  note "fakeroot: skipped (not installed; scripts/setup.sh installs it)"
fi

# ------------------------------------------- eatmydata, faketime, allocators
if have eatmydata; then
  prove_protection copy_v2 eatmydata "$TG_CMD"
  prove_protection copy_v2 "$TG_CMD" eatmydata
else
  note "eatmydata: skipped (not installed; scripts/setup.sh installs it)"
fi
if have faketime; then
  prove_protection copy_v2 faketime 2020-01-01 "$TG_CMD"
  prove_protection copy_v2 "$TG_CMD" faketime 2020-01-01
else
  note "faketime: skipped (not installed; scripts/setup.sh installs it)"
fi
for alloc in libjemalloc.so.2 libtcmalloc_minimal.so.4; do
  a=/usr/lib/$multiarch/$alloc
  if shim_has_asan; then
    note "$alloc: skipped (the shim is an ASan build: its runtime and another malloc can't share a process)"
  elif [ -e "$a" ]; then
    prove_protection copy_v2 env LD_PRELOAD="$a" "$TG_CMD"
    prove_protection copy_v2 env LD_PRELOAD="$TG_SHIM:$a"
    prove_protection copy_v2 env LD_PRELOAD="$a:$TG_SHIM"
  else
    note "$alloc: skipped (not installed; scripts/setup.sh installs it)"
  fi
done

# ---------------------------------------------------------------- valgrind
# valgrind preloads its own vgpreload libraries into the program it runs;
# memcheck also checks the shim's own reads and writes in it (exit 99).
if shim_has_asan; then
  note "valgrind: skipped (the shim is an ASan build, which can't run under valgrind)"
elif have valgrind; then
  prove_protection copy_v2 valgrind -q --error-exitcode=99 --trace-children=yes "$TG_CMD"
  prove_protection copy_v2 "$TG_CMD" valgrind -q --error-exitcode=99
else
  note "valgrind: skipped (not installed; scripts/setup.sh installs it)"
fi

# ------------------------------------------------------ AddressSanitizer
# ASan's runtime exits at start-up unless it comes first in the library list,
# and the shim is preloaded ahead of it: an ASan program (and any program
# with libasan in LD_PRELOAD) died under truncguard without running.
: "${TG_ASAN_WRITER=$TG_BUILD/tests/writers/asan_writer}"  # empty: not built
asan_lib=$(readlink -f "$(gcc -print-file-name=libasan.so 2>/dev/null)" 2>/dev/null)
if [ -x "$TG_ASAN_WRITER" ]; then
  unset ASAN_OPTIONS   # the runtime's defaults, as a user has them
  asan_copy() { "$@" "$TG_ASAN_WRITER" open "$LIB" "$V2" >/dev/null; }
  prove_protection asan_copy
  prove_protection asan_copy env LD_PRELOAD="$TG_SHIM"
  # The library only sets the default: ASAN_OPTIONS still overrides it
  # (README), and the runtime then exits at once, as without the default.
  fresh_copy "$V1" "$LIB"
  err=$(ASAN_OPTIONS=verify_asan_link_order=1 "$TG_CMD" "$TG_ASAN_WRITER" open "$LIB" "$V2" 2>&1 >/dev/null)
  st=$?
  [ "$st" -ne 0 ] && grep -qF "ASan runtime does not come first" <<<"$err" ||
    fail "ASAN_OPTIONS=verify_asan_link_order=1 under truncguard: exit $st, expected ASan's refusal: $err"
  expect_version "$LIB" 1
  ok "ASAN_OPTIONS=verify_asan_link_order=1 overrides the library's default: ASan refuses to start ($st)"
  # A program that defines its own __asan_default_options replaces the
  # library's (docs/guarantees.md, "What is not guaranteed"): it exits at
  # start-up under truncguard unless ASAN_OPTIONS has verify_asan_link_order=0.
  printf '%s\n' '#include <stdio.h>' 'const char* __asan_default_options(void) { return "detect_leaks=0"; }' \
    'int main(void) { puts("ran"); return 0; }' >"$T/own_opts.c"
  if gcc -fsanitize=address -o "$T/own_opts" "$T/own_opts.c" 2>/dev/null; then
    [ "$("$T/own_opts")" = ran ] || fail "control: an ASan program with its own default options does not run"
    err=$("$TG_CMD" "$T/own_opts" 2>&1 >/dev/null)
    st=$?
    [ "$st" -ne 0 ] && grep -qF "ASan runtime does not come first" <<<"$err" ||
      fail "an ASan program with its own __asan_default_options under truncguard: exit $st, expected ASan's refusal: $err"
    [ "$(ASAN_OPTIONS=verify_asan_link_order=0 "$TG_CMD" "$T/own_opts" 2>&1)" = ran ] ||
      fail "an ASan program with its own __asan_default_options and ASAN_OPTIONS=verify_asan_link_order=0 under truncguard did not run"
    ok "an ASan program with its own __asan_default_options: refused at start-up under truncguard ($st), runs with ASAN_OPTIONS=verify_asan_link_order=0"
  else
    note "an ASan program with its own default options: not built (gcc -fsanitize=address failed)"
  fi
else
  note "an ASan-built writer: skipped (not built: a sanitizer build, or no -fsanitize=address)"
fi
if [ -f "$asan_lib" ] && ! shim_has_asan; then
  # The user's own LD_PRELOAD of the runtime, into an uninstrumented cp
  # (whose own leaks at exit are not the point).
  ASAN_OPTIONS=detect_leaks=0 prove_protection copy_v2 env LD_PRELOAD="$asan_lib" "$TG_CMD"
else
  note "libasan preloaded by the user: skipped (no libasan, or the shim is an ASan build)"
fi
