#!/bin/bash
# The four classic plugin-reload cases, each without and with truncguard.
# (1) open, call, close, cp over, open, call: works either way.
# (2) open, call, NO close, cp over, call: without truncguard the process dies.
# (3) open, no close, install over, close, open, call: the new code runs.
# (4) open, no close, install over, open again: without truncguard the OLD code
#     runs silently; with it a "stale" line says why; with TRUNCGUARD_RELOAD=fresh
#     the new code runs.
. "$(dirname "$0")/rlib.sh"
LIB=$T/libplugin.so
V1=$T/v1.so V2=$T/v2.so
cp "$TG_PLUGIN_V1" "$V1" && cp "$TG_PLUGIN_V2" "$V2" || fail "setup"

# (1)
for wrap in "" "$TG_CMD"; do
  cp "$V1" "$LIB"
  host $wrap -- open call close "run:cp $V2 $LIB" open call
  [ $ST -eq 0 ] || fail "case 1 ${wrap:+under truncguard }exited $ST"
  [ "$(grep -c version "$T/out")" -eq 2 ] && expect_out "version 2" || fail "case 1: expected version 1 then 2"
done
ok "case 1: close, cp, reopen loads the new code, with and without truncguard"

# (2)
cp "$V1" "$LIB"
host -- open call "run:cp $V2 $LIB" call
[ $ST -gt 128 ] || [ $ST -eq 2 ] || fail "case 2 control: the host exited $ST, expected to die"
grep -q "version" "$T/out" && [ "$(grep -c version "$T/out")" -lt 2 ] || [ $ST -gt 128 ] || fail "case 2 control"
ok "case 2 control: cp over a library still open kills the host (status $ST)"
cp "$V1" "$LIB"
host "$TG_CMD" -- open call "run:cp $V2 $LIB" call
[ $ST -eq 0 ] || fail "case 2 under truncguard: the host exited $ST"
[ "$(grep -c 'version 1' "$T/out")" -eq 2 ] || fail "case 2: expected the old code to keep running"
ok "case 2: under truncguard the host survives and keeps its old code"

# (3)
for wrap in "" "$TG_CMD"; do
  cp "$V1" "$LIB"
  host $wrap -- open call "run:install $V2 $LIB" close open call
  [ $ST -eq 0 ] || fail "case 3 ${wrap:+under truncguard }exited $ST"
  expect_out "version 2"
done
ok "case 3: install, close the last handle, reopen: the new code runs"

# (4)
cp "$V1" "$LIB"
host -- open call "run:install $V2 $LIB" open call
[ $ST -eq 0 ] || fail "case 4 control exited $ST"
[ "$(grep -c 'version 1' "$T/out")" -eq 2 ] || fail "case 4 control: expected the old code twice (glibc matches the name)"
expect_no_log " stale: "  # the note, not a path holding the word
ok "case 4 control: reopening by the same name silently returns the old code"

cp "$V1" "$LIB"
host "$TG_CMD" -- open call "run:install $V2 $LIB" open call
[ $ST -eq 0 ] || fail "case 4 under truncguard exited $ST"
grep -qP "^ *\d+:\tnote file=\Q$LIB\E stale: dlopen returns the object already loaded from it \[ino \d+\], not the file there now \[ino $(stat -c %i "$LIB")\]; 1 open without a matching dlclose keeps it loaded; close every handle first, or set TRUNCGUARD_RELOAD=fresh$" "$T/err" ||
  fail "case 4: the stale line is not as expected"
[ "$(grep -c 'version 1' "$T/out")" -eq 2 ] || fail "case 4: warn mode must not change what the program gets"
ok "case 4: a stale line names the loaded and the new inode and the open handle; the program gets what it got"

# Case 4 where the object came not by a dlopen but at start-up, as a
# DT_NEEDED does (here: preloaded): no handle of it was counted, and the
# stale line says so (README: "no dlopen of it was counted") rather than a
# count of 0 or 1, and its advice is fresh mode: closing handles can't unload
# what a DT_NEEDED loaded (it said "close every handle first").
cp "$V1" "$LIB"
host env LD_PRELOAD="$LIB" "$TG_CMD" -- "run:install $V2 $LIB" open call
[ $ST -eq 0 ] || fail "case 4, loaded at start-up, under truncguard exited $ST"
expect_out "version 1"
grep -qP "^ *\d+:\tnote file=\Q$LIB\E stale: dlopen returns the object already loaded from it \[ino \d+\], not the file there now \[ino $(stat -c %i "$LIB")\]; no dlopen of it was counted \(a DT_NEEDED, or a dlopen by another path to the file, loaded it\); set TRUNCGUARD_RELOAD=fresh to load the new file \(what a DT_NEEDED loaded never unloads; handles opened by another path: close them\)$" "$T/err" ||
  fail "case 4, loaded at start-up: the stale line does not say that no dlopen of it was counted, or advises closing the handles first"
ok "case 4, the object loaded at start-up (no dlopen of it): the stale line says no dlopen of it was counted"

# With --debug=backtrace, the log says where each handle left open was
# opened (README: the stale row's "What to do"): a line per handle, naming
# the program's object; without backtrace, none.
for dbg in reloads reloads,backtrace; do
  cp "$V1" "$LIB"
  host "$TG_CMD" --debug=$dbg -- open open call "run:install $V2 $LIB" open call
  [ $ST -eq 0 ] || fail "case 4, two handles left open, --debug=$dbg: exited $ST"
  expect_log "2 opens without a matching dlclose keep it loaded"
  n=$(grep -cP "^ *\d+:\tnote file=\Q$LIB\E a handle still open was opened at \Q$TG_RELOADER\E[+(]" "$T/err")
  [ "$n" -eq "$([ $dbg = reloads ] && echo 0 || echo 2)" ] || fail "case 4, two handles left open, --debug=$dbg: $n lines say where a handle was opened"
done
ok "case 4 with --debug=backtrace: a line for each of the 2 handles left open says where it was opened (in the program); none without"
# Where a handle was opened is named by the calling function's symbol, which
# may hold any bytes: libodd_caller.so's holds ESC [7m. Escaped in the line
# (it was printed raw: a terminal escape in the log).
cp "$V1" "$LIB"
"$TG_CMD" --debug=reloads,backtrace python3 -c '
import ctypes, os, sys
odd = getattr(ctypes.CDLL(sys.argv[2]), "tg_call\x1b[7modd")
odd.restype, odd.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
dlopen = ctypes.cast(ctypes.CDLL(None).dlopen, ctypes.c_void_p).value
assert odd(dlopen, sys.argv[1].encode(), os.RTLD_NOW)
os.system(sys.argv[3])
ctypes.CDLL(sys.argv[1])' "$LIB" "$TG_ODD_CALLER_LIB" "install $V2 $LIB" >"$T/out" 2>"$T/err" ||
  fail "a handle opened by libodd_caller.so: python failed: $(cat "$T/err")"
expect_log "note file=$LIB a handle still open was opened at $TG_ODD_CALLER_LIB (tg_call\x1b[7modd+0x"
! grep -q $'\x1b' "$T/err" || fail "a raw ESC in the log: $(cat -v "$T/err")"
ok "where a handle was opened: a symbol named with an escape sequence is escaped"

cp "$V1" "$LIB"
TRUNCGUARD_RELOAD=fresh host "$TG_CMD" -- open call "run:install $V2 $LIB" open call close close
[ $ST -eq 0 ] || fail "case 4 fresh exited $ST"
[ "$(sed -n 's/^version //p' "$T/out" | paste -sd ' ')" = "1 2" ] || fail "case 4 fresh: expected version 1 then 2"
expect_log "two versions are now loaded"
[ -z "$(ls -A "$T" | grep 'tg-reload')" ] || fail "the fresh name was not removed after the last dlclose: $(ls -A "$T")"
ok "case 4 with TRUNCGUARD_RELOAD=fresh: the new code runs, and its extra name is gone after dlclose"

# ... and without a dlclose, when the process ends (exit, _exit) or execs
# (truncguard(7), TRUNCGUARD_RELOAD: "removed when it is unloaded, or the
# process ends or execs"). python's ctypes keeps both handles open.
for how in exit _exit exec; do
  mkdir -p "$T/end" && rm -f "$T"/end/* "$T"/end/.lib* && cp "$V1" "$T/end/lib.so" || fail "setup"
  TRUNCGUARD_RELOAD=fresh "$TG_CMD" python3 -c '
import ctypes, os, shutil, sys
d, v2, how = sys.argv[1:]
ctypes.CDLL(d + "/lib.so")
shutil.copy(v2, d + "/new"); os.rename(d + "/new", d + "/lib.so")
ctypes.CDLL(d + "/lib.so")
print(" ".join(n for n in os.listdir(d) if ".tg-reload-" in n))
sys.stdout.flush()
if how == "_exit": os._exit(0)
if how == "exec": os.execv("/bin/true", ["true"])' "$T/end" "$V2" "$how" >"$T/out" 2>"$T/err" ||
    fail "fresh, $how: python failed: $(cat "$T/err")"
  grep -q '^\.lib\.so\.tg-reload-' "$T/out" || fail "fresh, $how: no extra name was made: $(cat "$T/out" "$T/err")"
  [ -z "$(ls -A "$T/end" | grep tg-reload)" ] || fail "fresh, $how: the extra name was left: $(ls -A "$T/end")"
done
ok "TRUNCGUARD_RELOAD=fresh, both handles open: the extra name is gone after exit, _exit and exec"

# Bug: the extra name holds the pid (.NAME.tg-reload-PID-N, N from 1 in each
# process), and a process killed before it removed its name leaves it there
# (documented); a later process given the same pid found "its" first name
# taken, and loaded nothing fresh: "cannot link it as ...: File exists", the
# old code running on. It now takes the next number and leaves the old name.
# (bash makes the leftover under its own pid, then execs the host: same pid.)
cp "$V1" "$LIB"
TRUNCGUARD_RELOAD=fresh "$TG_CMD" bash -c 'echo left >"$1/.libplugin.so.tg-reload-$$-1" && exec "$2" "$3" "${@:4}"' \
  _ "$T" "$TG_RELOADER" "$LIB" open call "run:install $V2 $LIB" open call close close >"$T/out" 2>"$T/err"
ST=$?
[ $ST -eq 0 ] || fail "fresh after a leftover name exited $ST: $(cat "$T/err")"
[ "$(sed -n 's/^version //p' "$T/out" | paste -sd ' ')" = "1 2" ] ||
  fail "fresh after a leftover name of the same pid: expected version 1 then 2: $(cat "$T/err")"
expect_log "two versions are now loaded"
leftover=$(ls -A "$T" | grep 'tg-reload')
[ "$(wc -l <<<"$leftover")" = 1 ] && [ "$(cat "$T/$leftover")" = left ] ||
  fail "the leftover name was not left alone, or the fresh name not removed: $(ls -A "$T")"
rm -f "$T/$leftover"
ok "case 4 fresh where a killed process of the same pid left its extra name: the next name is taken, the old one left"

# A library held only by another's DT_NEEDED (the program's own handle on it
# closed), replaced, then unloaded while the program dlopens it again: a
# thread's dlclose of the library that needs it is under way (its destructor
# holds it, and glibc's loader lock, until the program's dlopen is seen
# waiting for that lock), and the program's dlopen loads the new file. The
# shim looked it up loaded before its pin waited for that dlclose: its stale
# line said "dlopen returns the object already loaded from it" (every handle
# was closed, but it is still loaded), and the program got the new file.
# Control: without truncguard, the new file too. (Without meson's
# LD_LIBRARY_PATH, searched before libdtor_wait's RUNPATH: the build's
# librace_dep.so would be the one it needs.)
cp "$TG_RACE_DEP" "$T/librace_dep.so" && cp "$TG_DTOR_WAIT" "$T/libdtor_wait.so" || fail "setup (race)"
for with in env "$TG_CMD"; do
  cp "$TG_RACE_DEP" "$T/librace_dep.so"
  timeout 60 env -u LD_LIBRARY_PATH $with "$TG_UNLOAD_RACE" "$T/librace_dep.so" "$T/libdtor_wait.so" "$V2" \
    >"$T/out" 2>"$T/err" ||
    fail "unload race ($with): the program failed"
  grep -qx "raced yes" "$T/out" || fail "unload race ($with): the dlopen did not wait for the dlclose under way: $(cat "$T/out")"
  grep -qx "version 2" "$T/out" || fail "unload race ($with): the dlopen did not load the new file: $(cat "$T/out")"
done
expect_log "note file=$T/librace_dep.so is still loaded after dlclose: $T/libdtor_wait.so depends on it (DT_NEEDED)"
expect_no_log " stale: "  # the note, not a path holding the word
ok "a library unloaded while its path is opened again (a dlclose under way): the new file is loaded, and no stale line says otherwise"

# ... and one the program itself links against (README: "another loaded
# object (or the program) links against it"): libc, opened and closed.
libc=$(ldd "$TG_RELOADER" | awk '$1 ~ /^libc\.so/ {print $3}')
[ -f "$libc" ] || fail "cannot find the reloader's libc: $(ldd "$TG_RELOADER")"
LIB=$libc host "$TG_CMD" -- open close
[ $ST -eq 0 ] || fail "dlopen and dlclose of the program's libc exited $ST"
expect_log "note file=$libc is still loaded after dlclose: the program depends on it (DT_NEEDED)"
ok "a library the program links against, opened and closed: \"the program depends on it (DT_NEEDED)\""

# The same notes in the JSON log, with the keys of category reloads that
# truncguard(7) gives: stale, stale_handle (with backtrace), fresh; and
# not_unloaded (category files).
# note_keys: the note keys of $T/err's JSON lines, in order, one a line.
note_keys() { python3 -c 'import json, sys; [print(e["note"]) for e in map(json.loads, sys.stdin) if e["event"] == "note"]' <"$T/err"; }
LIB=$T/libplugin.so
cp "$V1" "$LIB"
host "$TG_CMD" --json --debug=reloads,backtrace -- open call "run:install $V2 $LIB" open call
[ $ST -eq 0 ] || fail "case 4, JSON log: exited $ST"
[ "$(note_keys | paste -sd ' ')" = "stale stale_handle" ] || fail "case 4, JSON log: note keys $(note_keys | paste -sd ' '): $(cat "$T/err")"
cp "$V1" "$LIB"
TRUNCGUARD_RELOAD=fresh host "$TG_CMD" --json -- open call "run:install $V2 $LIB" open call close close
[ $ST -eq 0 ] || fail "case 4 fresh, JSON log: exited $ST"
[ "$(note_keys | paste -sd ' ')" = fresh ] || fail "case 4 fresh, JSON log: note keys $(note_keys | paste -sd ' '): $(cat "$T/err")"
LIB=$libc host "$TG_CMD" --json -- open close
[ $ST -eq 0 ] || fail "dlopen and dlclose of the program's libc, JSON log: exited $ST"
[ "$(note_keys | paste -sd ' ')" = not_unloaded ] || fail "libc opened and closed, JSON log: note keys $(note_keys | paste -sd ' '): $(cat "$T/err")"
ok "the JSON log's reload notes: stale and stale_handle, fresh, not_unloaded"
