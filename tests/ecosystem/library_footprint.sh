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

# The quiet path's code first, together (shim/quiet_text.ld): the kernel maps a
# library's cached pages 64 KiB around each page a process touches, from the
# text's first page (.init) on, so all the code a process runs without the
# shim acting must lie in the text's first 64 KiB, or a second window of the
# acting path's code becomes resident in every process.
text_start=$(readelf -lW "$TG_SHIM" | awk '$1 == "LOAD" && / R E / {print $3; exit}')
read -r qaddr qsize < <(readelf -SW "$TG_SHIM" | sed 's/^ *\[ *[0-9]*\] *//' | awk '$1 == ".text.quiet" {print $3, $5}')
[ -n "${qaddr:-}" ] || fail "no .text.quiet section: the quiet path's code is not placed first (shim/quiet_text.ld)"
quiet_start=$((0x$qaddr)) quiet_end=$((0x$qaddr + 0x$qsize))
window_end=$((text_start + 65536))
# (A sanitizer build's instrumented code is larger: its footprint is not the point.)
if readelf -dW "$TG_SHIM" | grep -q 'NEEDED.*lib[at]san'; then
  note "a sanitizer build: the quiet section is $((quiet_end - quiet_start)) bytes, not checked"
else
  [ "$quiet_end" -le "$window_end" ] ||
    fail "the quiet path's code ends $((quiet_end - text_start)) bytes into the text: more than the first 64 KiB window"
  ok "the quiet path's code: $((quiet_end - quiet_start)) bytes, within the text's first 64 KiB ($((window_end - quiet_end)) to spare)"
fi

# What quiet processes run of the library (valgrind's callgrind names each
# function it ran): a shell that forks and execs, a read, an O_TRUNC write of a
# text file and an append (examined and passed), an O_RDWR open, a new file, an
# exit. The shell must not exec its last command (hence the final `:`): the
# exec'ed program's profile, written under the same pid, replaced the shell's,
# and the examined writes went unchecked. Every function must lie before the window's end (.init, .plt, the quiet
# section), but _fini, run at exit.
if ! command -v valgrind >/dev/null; then
  note "valgrind missing: what quiet processes run is not checked"
elif shim_has_asan || readelf -dW "$TG_SHIM" | grep -q 'NEEDED.*lib[at]san'; then
  note "a sanitizer build (which valgrind can't run): what quiet processes run is not checked"
else
  printf 'a text file of more than fifty-two bytes, to write over: quiet\n' > "$T/notes.txt"
  LD_PRELOAD=$TG_SHIM valgrind --tool=callgrind --demangle=no --trace-children=yes \
    --callgrind-out-file="$T/cg.%p" bash -c \
    "cat '$T/notes.txt' > /dev/null; echo x > '$T/notes.txt'; echo y >> '$T/notes.txt'; : 1<> '$T/notes.txt'; echo z > '$T/new.txt'; sleep 0; :" \
    > "$T/valgrind.out" 2>&1 || { cat "$T/valgrind.out" >&2; fail "the quiet processes failed under valgrind"; }
  # callgrind's files name an object or function at its first mention, as
  # ob=/cob= or fn=/cfn= "(id) name", and by "(id)" after it; fn= is what ran.
  # Valgrind counts only .text (with .init, .plt, .fini) as the library's
  # code: the quiet section's functions come under "???", and what it names
  # as the library's is what ran outside the quiet section.
  awk '
    FNR == 1 { split("", ob); split("", fn); cur = "" }
    /^c?ob=/ { s = $0; sub(/^c?ob=/, "", s); id = s; sub(/ .*/, "", id)
               if (sub(/^\([0-9]+\) /, "", s)) ob[id] = s
               if ($0 ~ /^ob=/) cur = ob[id] }
    /^c?fn=/ { s = $0; sub(/^c?fn=/, "", s); id = s; sub(/ .*/, "", id)
               if (sub(/^\([0-9]+\) /, "", s)) fn[id] = s
               if ($0 ~ /^fn=/) print cur "\t" fn[id] }' "$T"/cg.* | sort -u > "$T/ran.tsv"
  grep -q "$(printf '\t')_ZL15truncguard_initv\$" "$T/ran.tsv" || fail "callgrind did not see the library's constructor run (was it preloaded?)"
  ran=$(awk -F'\t' '$1 ~ /libtruncguard/ { print $2 }' "$T/ran.tsv")
  # nm prints addresses as 16 hex digits: compared as strings; valgrind names
  # code without a symbol by its address in the file.
  outside=$(nm "$TG_SHIM" | awk -v names="$ran" -v lo="$(printf %016x "$text_start")" -v hi="$(printf %016x "$window_end")" '
    BEGIN { n = split(names, a, "\n")
            for (i = 1; i <= n; i++) {
              if (a[i] == "_fini" || a[i] == "") continue
              if (a[i] ~ /^0x/) { h = substr(a[i], 3); while (length(h) < 16) h = "0" h; if (h < lo || h >= hi) bad[a[i]] = 1; continue }
              want[a[i]] = 1 } }
    ($3 in want) { if ($1 >= lo && $1 < hi) inside[$3] = 1; seen[$3] = 1 }
    END { for (s in bad) print s
          for (s in want) if (!(s in inside)) print s (s in seen ? "" : " (no symbol)") }')
  [ -z "$outside" ] || fail "quiet processes ran code outside the text's first 64 KiB (add it to shim/quiet_text.ld): $(tr '\n' ' ' <<< "$outside")"
  ok "quiet processes ran no code of the library beyond the text's first 64 KiB (outside the quiet section: $(grep -c libtruncguard "$T/ran.tsv") functions, .plt's and crtbegin's among them)"
fi
