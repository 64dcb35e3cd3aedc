#!/bin/bash
# What every process that preloads the library pays for it, kept small:
#  - it needs nothing but libc and ld.so (libunwind is loaded only for the
#    backtrace category, libstdc++ is linked statically, and only what the
#    library uses of it);
#  - no C++ exception machinery: a function-local static with a dynamic
#    initialiser brings __cxa_guard_acquire, which brings libstdc++'s
#    exceptions, the unwinder and the demangler (100 KB of text);
#  - static TLS within glibc's reserve for audit modules (512 bytes), so
#    truncguard --audit can load a second copy;
#  - the small globals together, the large tables after them (.lbss): the
#    globals start-up writes then share one or two pages (between the tables
#    they fell on 6 pages: 6 page faults in every process);
#  - no import of what glibc's headers inline at -O2 but not at -Os (the
#    core is built for size): each import is a symbol ld.so binds in every
#    process at start-up.
. "$(dirname "$0")/../e2e/lib.sh"
need_shim
command -v readelf >/dev/null && command -v nm >/dev/null || skip "readelf and nm (binutils) are needed"

needed=$(readelf -dW "$TG_SHIM" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
for lib in $needed; do
  case $lib in
    libc.so.*|ld-linux*) ;;
    libasan.so.*|libubsan.so.*|libtsan.so.*|libstdc++.so.*|libm.so.*|libgcc_s.so.*)
      # a sanitizer build links its runtimes (and they bring these)
      readelf -dW "$TG_SHIM" | grep -q 'NEEDED.*lib[at]san' || fail "the library needs $lib" ;;
    *) fail "the library needs $lib (needed: $needed)" ;;
  esac
done
ok "it needs only: $needed"

syms=$(nm "$TG_SHIM" 2>/dev/null)
for s in __cxa_guard_acquire __gxx_personality_v0 d_print_comp_inner _Unwind_RaiseException; do
  if grep -qw "$s" <<<"$syms"; then fail "the library contains $s (C++ exception machinery or the demangler)"; fi
done
ok "no C++ exception machinery, no demangler in the library"

tls=$(readelf -lW "$TG_SHIM" | awk '$1 == "TLS" {print $6}')
tls=$((${tls:-0}))
[ "$tls" -le 512 ] || fail "static TLS of $tls bytes: more than glibc reserves for an audit module (512)"
ok "static TLS: $tls bytes"

# (A sanitizer build leaves the tables in .bss: a section of their own would lose their redzones;
# so does any target but x86-64, where .lbss is no bss section.)
if ! readelf -dW "$TG_SHIM" | grep -q 'NEEDED.*lib[at]san' && readelf -hW "$TG_SHIM" | grep -q 'Machine:.*X86-64'; then
  bss=$(readelf -SW "$TG_SHIM" | awk '$2 == ".bss" {print $6}')
  bss=$((0x${bss:-0}))
  [ "$bss" -le 8192 ] || fail ".bss of $bss bytes: a large table among the small globals (mark it TG_LARGE_TABLE)"
  ok ".bss (the small globals): $bss bytes"
fi

inlined=$(nm -D --undefined-only "$TG_SHIM" | awk '{print $NF}' | grep -E '^gnu_dev_(major|minor|makedev)(@|$)' | tr '\n' ' ')
[ -z "$inlined" ] || fail "the library imports $inlined(glibc inlines them only without -Os: write them out)"
ok "no import of glibc's -O2 inlines (gnu_dev_major/minor/makedev)"
