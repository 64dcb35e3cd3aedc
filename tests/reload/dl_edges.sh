#!/bin/bash
# dlopen, dlsym and dlclose at their edges, without and with truncguard: the
# program gets exactly the same answers (handles, dlerror() text, errno), the
# log lines stay well-formed, and what the log says about open handles is true.
. "$(dirname "$0")/rlib.sh"
need_loggable_paths
# (copies in $T also for the "run:" steps, which sh -c runs unquoted)
P1=$T/p1.so P2=$T/p2.so BROKEN=$T/broken.so
cp "$TG_PLUGIN_V1" "$P1" && cp "$TG_PLUGIN_V2" "$P2" && cp "$TG_PLUGIN_BROKEN" "$BROKEN" && mkdir "$T/dir" && echo "not ELF" >"$T/notelf.so" ||
  fail "setup"

# plain STEPS: the program alone, its output in $T/plain, status in $PST.
# shimmed STEPS: preloaded (TRUNCGUARD_DEBUG=$DBG, default all), output in
# $T/out, status in $ST, the log in $T/log.
plain() { "$TG_DL_EDGES" "$@" >"$T/plain" 2>"$T/plain.err"; PST=$?; }
shimmed() {
  rm -f "$T"/tg.*
  env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_DEBUG="${DBG:-all}" TRUNCGUARD_LOG="$T/tg" "$TG_DL_EDGES" "$@" >"$T/out" 2>"$T/err"
  ST=$?
  cat "$T"/tg.* >"$T/log" 2>/dev/null || : >"$T/log"
}
# same WHAT STEPS...: the same output and status with and without truncguard
# ($SETUP, if set, is run before each of the two.)
same() {
  local what=$1
  shift
  eval "${SETUP:-}"
  plain "$@"
  eval "${SETUP:-}"
  shimmed "$@"
  if [ "$PST" != "$ST" ] || ! cmp -s "$T/plain" "$T/out"; then
    diff -u "$T/plain" "$T/out" >&2
    fail "$what: status $ST and the output above under truncguard, status $PST without"
  fi
}
# Every log line starts with the PID prefix and holds no control character
# (but the prefix's tab) and no invalid UTF-8: file names are escaped.
well_formed() {
  { LC_ALL=C grep -avP '^ {0,9}\d+:\t[^\x00-\x1f\x7f]*$' "$T/log"; LC_ALL=C.UTF-8 grep -axv '.*' "$T/log"; } >"$T/bad_lines"
  [ -s "$T/bad_lines" ] && fail "$1: a log line is not well-formed: $(head -3 "$T/bad_lines")"
  return 0
}
expect_log_line() { grep -qF -- "$1" "$T/log" || { cat "$T/log" >&2; fail "$2: expected \"$1\" in the log"; }; }
expect_no_log_line() { ! grep -qF -- "$1" "$T/log" || { cat "$T/log" >&2; fail "$2: unexpected \"$1\" in the log"; }; }

# ---- 1. Odd names: the same handle or NULL, the same dlerror() text, errno.
same "odd names" open:n:NULL open:n: open:l:"$T/nonexistent.so" open:n:"$T/dir" open:n:"$T/notelf.so" \
  "open:n:$T/new
line.so" $'open:n:'"$T"$'/bad\xff\xfe.so' open:n:LONG:4100:"$T/" open:n:LONG:300:"$T/" open:n:no-such-bare.so \
  open:x:"$P1" open:0:"$P1" open:n:"$P1" open:n:"$T/./p1.so" open:n:"$T//p1.so"
grep -q "File name too long" "$T/out" || fail "odd names: no ENAMETOOLONG from glibc"
well_formed "odd names"
expect_log_line 'new\nline.so' "odd names"
# dlopen(NULL) and dlopen("") both open the program: the files line names it
[ "$(grep -c "file=$TG_DL_EDGES \[0\];  dlopen by $TG_DL_EDGES \[0\]: RTLD_NOW$" "$T/log")" -eq 2 ] ||
  { cat "$T/log" >&2; fail "odd names: dlopen(NULL) and dlopen(\"\") should each be logged as the program's"; }
expect_log_line 'bad\xff\xfe.so' "odd names"
ok "odd names (NULL, \"\", missing, a directory, not ELF, a newline, invalid UTF-8, 4,100 bytes, a 300-byte component, bare, invalid modes): same answers, same dlerror(), same errno; the log escapes them"

# ---- 2. Mode combinations; closing twice a library that never unloads.
same "modes" open:lL:"$P1" open:n:"$P1" open:nL:"$P1" open:ld:"$P1" open:lgb:"$P2" open:nb:"$P2" \
  sym:1:tg_version sym:1:no_such_symbol sym:3:tg_version close:1 close:1 close:1 close:2 close:3 \
  open:lL:"$P1" open:lL:"$P2"
well_formed "modes"
ok "RTLD_NOLOAD, RTLD_NODELETE, RTLD_DEEPBIND, RTLD_GLOBAL|RTLD_LAZY, a NODELETE handle closed three times: same answers"

# dlclose(NULL) crashes glibc; it must crash the same way (not earlier, in the shim).
# In the ASan build, ASan's own SIGSEGV handler turns the shimmed crash into an
# abort (abort_on_error=1): there both must crash, after the same output.
if readelf -dW "$TG_SHIM" | grep -q 'NEEDED.*libasan'; then
  plain closenull
  shimmed closenull
  [ "$PST" -ge 128 ] && [ "$ST" -ge 128 ] && cmp -s "$T/plain" "$T/out" ||
    fail "dlclose(NULL): status $ST under truncguard (ASan build), $PST without; outputs: $(cat "$T/out") / $(cat "$T/plain")"
  ok "dlclose(NULL): crashes with and without truncguard (ASan build: status $ST, $PST without)"
else
  same "dlclose(NULL)" closenull
  ok "dlclose(NULL): the same outcome as glibc's (status $ST)"
fi

# ---- 7. dlmopen is not watched, but passes through.
same "dlmopen" open:n:"$P1" mopen:n:"$P1" mopen:n:"$P2" mopen:n:"$T/nonexistent.so" mopen:lL:"$P2" \
  sym:1:tg_version sym:2:tg_version close:1 close:2 close:0 open:nL:"$P1"
ok "dlmopen (new namespaces, a missing file, RTLD_NOLOAD), dlsym and dlclose of its handles: same answers"

# ---- dlclose that fails: its dlerror() text reaches the program intact (the
# files category names the caller's namespace without a dl call after it).
same "a failing dlclose" open:n:"$P1" closefake:"$P1" sym:0:tg_version closefake:"$T/fake
name.so" close:0
grep -q "closefake:$P1 -> -1 errno=777 dlerror=$P1: shared object not open" "$T/out" ||
  fail "a failing dlclose: glibc's own error is not what this test expects: $(cat "$T/plain")"
well_formed "a failing dlclose"
expect_log_line "dlclose by $TG_DL_EDGES [0]: failed" "a failing dlclose"
ok "a dlclose that fails: the program reads glibc's \"shared object not open\" from dlerror(), as without truncguard"

# ---- dlerror() after a failed dlopen, across the program's first calls of
# functions the shim wraps (the shim looked each up with dlsym then, which
# clears dlerror(): the program read NULL instead of glibc's message).
same "dlerror across wrapped calls" keeperr:"$T/nonexistent.so"
grep -q "^keeperr:$T/nonexistent.so -> NULL, then dlerror=$T/nonexistent.so: cannot open shared object file" "$T/out" ||
  fail "dlerror across wrapped calls: $(cat "$T/out")"
ok "a failed dlopen's dlerror() text survives the program's first close, dup2, writev... under truncguard"

# ---- A dlopen that fails opens nothing: the log's counts of open handles
# leave it out (a file that is not ELF yet, RTLD_NOLOAD of what is not
# loaded, an invalid mode: an unknown flag, or neither RTLD_LAZY nor
# RTLD_NOW, which glibc refuses even for a library already loaded), and so
# does the RTLD_NODELETE it asked for (the library then opened without it
# can be unloaded: the stale line advises closing the handle).
LIB=$T/lib.so
SETUP='cp "$T/notelf.so" "$LIB"' DBG=files,reloads same "failed opens" open:n:"$LIB" open:nd:"$LIB" open:lL:"$P1" open:x:"$P1" \
  "run:cp $P1 $LIB" open:n:"$LIB" "run:cp $P2 $T/new.so && mv $T/new.so $LIB" open:n:"$LIB" open:ld:"$P1" open:0:"$P1" close:1
grep -q "^open:0:$P1 -> NULL errno=[0-9]* dlerror=.*invalid mode" "$T/out" || fail "failed opens: glibc did not refuse mode 0: $(cat "$T/out")"
grep -qP "note file=\Q$LIB\E stale: dlopen returns the object already loaded from it \[ino \d+\], not the file there now \[ino $(stat -c %i "$LIB")\]; 1 open without a matching dlclose keeps it loaded; close every handle first, or set TRUNCGUARD_RELOAD=fresh$" "$T/log" ||
  { cat "$T/log" >&2; fail "failed opens: the stale line should count 1 open, and no RTLD_NODELETE"; }
grep -q "note file=$P1 is still loaded after dlclose: opened with RTLD_NODELETE$" "$T/log" ||
  { cat "$T/log" >&2; fail "failed opens: the note on $P1 should give RTLD_NODELETE as the only reason"; }
# The files line of a dlopen names its flags, RTLD_NODELETE among them.
grep -F "file=$P1 [0];  dlopen by " "$T/log" | grep -qF ": RTLD_LAZY|RTLD_NODELETE, " ||
  { cat "$T/log" >&2; fail "failed opens: no files line gives the RTLD_LAZY|RTLD_NODELETE dlopen of $P1 its flags"; }
ok "failed dlopens are not counted as open handles, nor a failed one's RTLD_NODELETE (stale: 1 open, close it; NODELETE: no handle left open)"

# A library opened with RTLD_NODELETE, its handle closed, replaced, opened
# again: the dlclose's note is under files only (the default categories say
# nothing of it), and the stale line names RTLD_NODELETE and advises only
# TRUNCGUARD_RELOAD=fresh (closing handles can't unload it).
SETUP='cp "$P1" "$LIB"' DBG=reloads same "RTLD_NODELETE reload" open:ld:"$LIB" close:0 \
  "run:cp $P2 $T/new.so && mv $T/new.so $LIB" open:l:"$LIB"
grep -qx "open:l:$LIB -> same as #0 errno=777 dlerror=(null)" "$T/out" || fail "RTLD_NODELETE reload: not the old object: $(cat "$T/out")"
expect_no_log_line "is still loaded after dlclose" "RTLD_NODELETE reload, default categories"
grep -qP "note file=\Q$LIB\E stale: dlopen returns the object already loaded from it \[ino \d+\], not the file there now \[ino $(stat -c %i "$LIB")\]; every handle was closed, but it never unloads: it was opened with RTLD_NODELETE; set TRUNCGUARD_RELOAD=fresh to load the new file$" "$T/log" ||
  { cat "$T/log" >&2; fail "RTLD_NODELETE reload: the stale line should name RTLD_NODELETE"; }
ok "a reload of a library opened with RTLD_NODELETE: no note at its dlclose by default, the stale line names RTLD_NODELETE"

# ---- Other names for a loaded file (libfoo.so -> libfoo.so.1, a hard link,
# "$ORIGIN/...", a bare name found through LD_LIBRARY_PATH):
# glibc returns the object loaded from that file (it compares device and
# inode) and counts one object's opens. The log's counts are checked against
# glibc's own, LD_DEBUG=files's direct_opencount, and no note blames glibc
# for an object that is simply still open by another name.
mkdir "$T/alias" && A=$T/alias/libfoo.so.1 && cp "$TG_PLUGIN_V1" "$A" && ln -s libfoo.so.1 "$T/alias/libfoo.so" &&
  ln "$A" "$T/alias/hard.so" && ln -s hard.so "$T/alias/libbare.so" && cp "$TG_DL_EDGES" "$T/alias/dl_edges" ||
  fail "aliases: setup"
# (The program is copied next to the library: its $ORIGIN.)
ALIAS_STEPS=(open:n:"$A" open:n:"$T/alias/libfoo.so" open:l:"$T/alias/hard.so" 'open:n:$ORIGIN/libfoo.so'
  open:n:libbare.so close:0 close:0 close:0 close:0 close:0 open:nL:"$A")
TG_DL_EDGES=$T/alias/dl_edges LD_LIBRARY_PATH=$T/alias DBG=files,reloads same "aliases" "${ALIAS_STEPS[@]}"
LD_LIBRARY_PATH=$T/alias LD_DEBUG=files "$T/alias/dl_edges" "${ALIAS_STEPS[@]}" 2>"$T/glibc" >/dev/null
glibc_opens=$(grep -oP "opening file=\Q$A\E \[0\]; direct_opencount=\K\d+" "$T/glibc" | tr '\n' ' ')
glibc_closes=$(grep -oP "closing file=\Q$A\E; direct_opencount=\K\d+" "$T/glibc" | tr '\n' ' ')
[ "$glibc_opens" = "1 2 3 4 5 " ] && [ "$glibc_closes" = "4 3 2 1 " ] ||
  { cat "$T/glibc" >&2; fail "aliases: glibc does not count these opens as this test expects: opens $glibc_opens, closes $glibc_closes"; }
# (Written before glibc runs, a dlopen line can't count by a name glibc has
# yet to resolve: "$ORIGIN/..." and a bare name get no count, "?" here.)
tg_opens=$(grep "dlopen by" "$T/log" | grep -v NOLOAD | sed -E 's/.*, already open ([0-9]+)$/\1/; t; s/.*/?/' |
  awk '{printf "%s ", $1 == "?" ? "?" : $1 + 1}')
tg_closes=$(grep -oP "file=\Q$A\E \[0\];  dlclose by .*: still loaded, ino \d+, opens \K\d+" "$T/log" | tr '\n' ' ')
[ "$tg_opens" = "1 2 3 ? ? " ] && [ "$tg_closes" = "$glibc_closes" ] ||
  { cat "$T/log" >&2; fail "aliases: truncguard counts opens $tg_opens, closes $tg_closes; glibc $glibc_opens, $glibc_closes"; }
expect_no_log_line "NODELETE" "aliases"
expect_log_line "note file=$A is still loaded after dlclose: 4 handles still open" "aliases"
expect_log_line "(it was also opened as $T/alias/libfoo.so, another name for its file)" "aliases"
expect_log_line "file=$A [0];  dlclose by $T/alias/dl_edges [0]: unloaded" "aliases"
# The RTLD_NOLOAD dlopen that returned NULL opened nothing: its line is
# written before glibc runs, and counts no open of its own.
grep "RTLD_NOLOAD" "$T/log" | grep -q ", already open 0$" && ! grep "dlopen by" "$T/log" | grep -q ", opens " ||
  { cat "$T/log" >&2; fail "aliases: a dlopen line counts an open that may fail"; }
ok "a library opened by its name, a symlink, a hard link, \$ORIGIN and a bare name: the log counts the opens and closes glibc's LD_DEBUG=files counts, no false NODELETE note; a failed RTLD_NOLOAD counts no open"

# The other name stays glibc's name for the object: replaced behind it, a
# dlopen by it returns the old object (stale), with the handle left open.
SETUP='cp "$TG_PLUGIN_V1" "$A"' DBG=files,reloads same "stale through another name" open:n:"$A" \
  open:n:"$T/alias/libfoo.so" close:0 "run:cp $P2 $T/alias/new && mv $T/alias/new $A" \
  open:n:"$T/alias/libfoo.so" sym:0:tg_version
grep -qP "note file=\Q$T/alias/libfoo.so\E stale: dlopen returns the object already loaded from it \[ino \d+\], not the file there now \[ino $(stat -c %i "$A")\]; 1 open without a matching dlclose keeps it loaded" "$T/log" ||
  { cat "$T/log" >&2; fail "stale through another name: expected a stale line counting 1 open"; }
ok "a symlink glibc knows as another name of a loaded object: replacing its target makes a dlopen by it stale, and the log says so"
# A dlopen by it that failed (an invalid mode) gave glibc no such name: then
# glibc loads the new file, and no stale line may say otherwise.
SETUP='cp "$TG_PLUGIN_V1" "$A"' DBG=files,reloads same "a name glibc does not know" open:n:"$A" \
  open:x:"$T/alias/libfoo.so" "run:cp $P2 $T/alias/new && mv $T/alias/new $A" open:n:"$T/alias/libfoo.so"
grep -q "^open:n:$T/alias/libfoo.so -> new #1" "$T/out" || fail "a name glibc does not know: $(cat "$T/out")"
expect_no_log_line " stale: " "a name glibc does not know"  # the note, not a path (a checkout in /work/wt-stale)
ok "a failed dlopen by a symlink does not make it a name of the loaded object: no stale line when glibc loads the new file"
# glibc forgets an object's other names when it unloads it: the symlink then
# names the file it leads to. libfoo.so, a name of p1's object until both
# handles are closed and it unloads, is pointed at p2 and p1 loaded again: a
# dlopen by the symlink loads p2 (a new object, version 2), and no stale line
# may say it returns p1's. (The shim's record of the other name went with the
# object: kept, it made that dlopen "stale", counted under p1.)
SETUP='cp "$TG_PLUGIN_V1" "$A" && ln -sfn libfoo.so.1 "$T/alias/libfoo.so"' DBG=files,reloads same "other names forgotten at unload" \
  open:n:"$A" open:n:"$T/alias/libfoo.so" close:0 close:0 "run:ln -sfn $P2 $T/alias/libfoo.so" open:n:"$A" \
  open:n:"$T/alias/libfoo.so"
grep -q "^open:n:$T/alias/libfoo.so -> new #" <(tail -n 1 "$T/out") ||
  fail "other names forgotten at unload: glibc did not load p2 as a new object by the symlink: $(cat "$T/out")"
expect_no_log_line " stale: " "other names forgotten at unload"
ln -sfn libfoo.so.1 "$T/alias/libfoo.so" || fail "other names forgotten at unload: restoring the symlink"
ok "a symlink that named a loaded object, once the object is unloaded and the link repointed: glibc loads the new target, and no stale line"

# ---- 8 threads dlopen, dlsym, dlopen(RTLD_NOLOAD), dlclose twice, for 2 s:
# nothing fails, every count is known and never negative, no "still loaded"
# note gives a reason that is false (each library unloads when no thread holds
# it), and the counts end balanced: a last dlopen finds none already open.
DBG=files,reloads same "8 threads" threads:8:2:"$P1":"$P2" open:n:"$P1" close:0
grep -q "threads -> all worked" "$T/out" || fail "8 threads: $(cat "$T/out")"
n=$(grep -c "dl\(open\|close\) by" "$T/log")
[ "$n" -gt 100 ] || fail "8 threads: only $n dlopen and dlclose lines"
grep "dl\(open\|close\) by" "$T/log" | grep -v ", \(opens\|already open\) [0-9]" >"$T/uncounted"
[ -s "$T/uncounted" ] &&
  fail "8 threads: $(wc -l <"$T/uncounted") of $n lines without a count (the records were skipped), e.g. $(head -1 "$T/uncounted")"
if grep -q "is still loaded after dlclose: glibc marked it NODELETE" "$T/log"; then
  fail "8 threads: $(grep -c "glibc marked it NODELETE" "$T/log") notes blame NODELETE while other threads held handles"
fi
last_open=$(grep "file=$P1 \[0\];  dlopen by" "$T/log" | tail -1)
[[ $last_open == *", already open 0" ]] || fail "8 threads: the last dlopen of $P1 counts: $last_open"
ok "8 threads for 2 s ($n dlopen and dlclose lines): every count known, none negative, balanced at the end; no false reason"
# The same race through two names of one file (the even threads by its path,
# the odd ones by a symlink): glibc holds one object, the log counts one.
ln -s p1.so "$T/p1link.so" || fail "8 threads, two names: setup"
DBG=files,reloads same "8 threads, two names" threads:8:1:"$P1":"$T/p1link.so" open:n:"$P1" close:0
grep -q "threads -> all worked" "$T/out" || fail "8 threads, two names: $(cat "$T/out")"
grep -q "glibc marked it NODELETE\|could not count" "$T/log" &&
  fail "8 threads, two names: $(grep -c "glibc marked it NODELETE\|could not count" "$T/log") notes give a false reason"
most=$(grep -oP "(opens|already open) \K\d+" "$T/log" | sort -n | tail -1)
[ "$most" -le 16 ] || fail "8 threads, two names: $most handles counted open at once, of at most 16"
last_open=$(grep "file=$P1 \[0\];  dlopen by" "$T/log" | tail -1)
[[ $last_open == *", already open 0" ]] || fail "8 threads, two names: the last dlopen of $P1 counts: $last_open"
ok "8 threads through a path and a symlink to it: counted as one object, at most 16 open, balanced, no false reason"
# ---- Handles opened by a bare name count too (under the name of the object
# they opened, the one its dlclose counts under): a library opened twice by a
# bare name (and once by its path) and closed once is still held by a handle,
# not by glibc.
BARE_STEPS=(open:n:p1.so open:n:p1.so close:0 open:nL:"$P1" close:0 close:0 open:lL:"$P1")
LD_LIBRARY_PATH=$T DBG=reloads,files same "bare names" "${BARE_STEPS[@]}"
grep -q "^open:nL:$P1 -> same as #0" "$T/out" || fail "bare names: the library was not loaded as $P1: $(cat "$T/out")"
grep -q "^open:lL:$P1 -> NULL" "$T/out" || fail "bare names: the library did not unload at its last dlclose"
[ "$(grep -c "note file=$P1 is still loaded after dlclose: 1 handle still open" "$T/log")" -eq 2 ] &&
  [ "$(grep -c "note file=$P1 is still loaded" "$T/log")" -eq 2 ] ||
  { cat "$T/log" >&2; fail "bare names: expected two notes \"1 handle still open\" and nothing else"; }
LD_LIBRARY_PATH=$T DBG=reloads same "bare names, reloads only" "${BARE_STEPS[@]}"
expect_no_log_line "still loaded" "bare names, reloads only (handles left open are for the files category)"
ok "a library opened by a bare name twice and by its path once: after each dlclose the note counts the handle left (files; none in reloads alone)"

# ---- dlopen, dlsym, dlclose from a plugin's constructor and destructor
# (glibc's lock is held then; a dlclose inside another dlclose's destructors
# only marks the library: the outer dlclose unloads it). Same answers; the
# inner calls name the plugin as their caller; no note says the library the
# destructor closed stayed loaded (it did not).
TG_INNER=$P2 DBG=files,reloads same "constructors and destructors" open:n:"$TG_NESTED_CTOR" open:n:"$TG_NESTED_DTOR" \
  close:0 close:1 open:lL:"$P2" open:lL:"$TG_NESTED_DTOR"
grep -q "^constructor: inner version 2, dlclose 0" "$T/out" && grep -q "^destructor: inner version 2, dlclose 0" "$T/out" &&
  grep -q "^open:lL:$P2 -> NULL" "$T/out" || fail "constructors and destructors: $(cat "$T/out")"
expect_log_line "file=$P2 [0];  dlopen by $TG_NESTED_CTOR [0]" "constructors and destructors"
expect_log_line "file=$P2 [0];  dlopen by $TG_NESTED_DTOR [0]" "constructors and destructors"
expect_no_log_line "note file=$P2 is still loaded" "constructors and destructors"
expect_log_line "file=$P2 [0];  dlclose by $TG_NESTED_DTOR [0]: deferred" "constructors and destructors"
ok "dlopen/dlsym/dlclose from a constructor and from a destructor run by dlclose: same answers, no false \"still loaded\""
# ... with TRUNCGUARD_RELOAD=fresh, the destructor's dlopen of a library
# replaced meanwhile loads a fresh copy, and its dlclose there is deferred:
# the copy's extra name stays on disk until the process ends, removed at its
# exit, kept for good where it is killed (docs/guarantees.md).
rm -rf "$T/fr" && mkdir "$T/fr" && cp "$P1" "$T/fr/lib.so" || fail "fresh, deferred dlclose: setup"
TG_INNER=$T/fr/lib.so TRUNCGUARD_RELOAD=fresh DBG=files,reloads shimmed open:n:"$T/fr/lib.so" open:n:"$TG_NESTED_DTOR" \
  "run:cp $P2 $T/fr/new && mv $T/fr/new $T/fr/lib.so" close:1 "run:ls -A $T/fr >$T/during"
grep -q "^destructor: inner version 2, dlclose 0" "$T/out" || { cat "$T/log" >&2; fail "fresh, deferred dlclose: $(cat "$T/out")"; }
expect_log_line "dlclose by $TG_NESTED_DTOR [0]: deferred" "fresh, deferred dlclose"
grep -q '^\.lib\.so\.tg-reload-[0-9]*-1$' "$T/during" || fail "fresh, deferred dlclose: no extra name while the process ran: $(cat "$T/during")"
[ -z "$(ls -A "$T/fr" | grep tg-reload)" ] || fail "fresh, deferred dlclose: the extra name was left after exit: $(ls -A "$T/fr")"
TG_INNER=$T/fr/lib.so TRUNCGUARD_RELOAD=fresh DBG=reloads shimmed open:n:"$T/fr/lib.so" open:n:"$TG_NESTED_DTOR" \
  "run:cp $P1 $T/fr/new && mv $T/fr/new $T/fr/lib.so" close:1 'run:kill -KILL $PPID'
[ "$ST" -eq 137 ] || fail "fresh, deferred dlclose, killed: status $ST: $(cat "$T/out")"
[ -n "$(ls -A "$T/fr" | grep tg-reload)" ] || fail "fresh, deferred dlclose, killed: no extra name left, as documented: $(ls -A "$T/fr")"
rm -f "$T"/fr/.lib.so.tg-reload-*
ok "TRUNCGUARD_RELOAD=fresh, a copy whose dlclose in a destructor was deferred: its extra name on disk until exit, removed then; kept where the process is killed"

# ---- ... and from an atexit handler, and a destructor run at exit.
TG_INNER=$P2 DBG=files,reloads same "at exit" atexit:"$P1" open:n:"$TG_NESTED_DTOR"
grep -q "^atexit: version 1, dlclose 0, errno=777 dlerror=(null)" "$T/out" &&
  grep -q "^destructor: inner version 2, dlclose 0" "$T/out" || fail "at exit: $(cat "$T/out")"
expect_log_line "file=$P1 [0];  dlclose by $TG_DL_EDGES [0]: unloaded" "at exit"
expect_log_line "file=$P2 [0];  dlclose by $TG_NESTED_DTOR [0]: unloaded" "at exit"
ok "dlopen/dlsym/dlclose from an atexit handler and from a destructor run at exit: same answers, both unload"

# ---- A library closed by one thread, unloaded and loaded again elsewhere by
# another while the first is still in the shim (made certain: the first
# stalls writing its log line to a full pipe): the shim reads the tables of
# the object it pinned, never the old address (there: a PROT_NONE page).
plain racepin:"$P1"
[ "$PST" -eq 0 ] && grep -q "worked; not stalled; unloaded yes; old .dynamic held; reloaded yes" "$T/plain" ||
  fail "reloaded elsewhere, control: status $PST, $(cat "$T/plain")"
# (the log on stderr, which the step makes a pipe)
env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_DEBUG=files,reloads "$TG_DL_EDGES" racepin:"$P1" >"$T/out" 2>"$T/err"
ST=$?
[ "$ST" -eq 0 ] || fail "reloaded elsewhere: the program died (status $ST) under truncguard; $(cat "$T/out")"
if grep -q "worked; stalled; unloaded yes; old .dynamic held; reloaded yes" "$T/out"; then
  ok "a library unloaded and loaded again elsewhere while a thread's dlclose is in the shim: no crash"
elif grep -q "not stalled" "$T/out"; then
  echo "note: reloaded elsewhere: could not see the thread wait on the pipe (/proc/self/task/*/wchan): not tested"
else
  fail "reloaded elsewhere: $(cat "$T/out")"
fi

# ---- More paths than the shim's table of records (64). Kept open: the one
# too many are not counted, one warning says so, and no line states a count
# for them. Opened and closed one after the other: records are reused, every
# count stays known and no warning is given.
mkdir "$T/many"
steps=()
for i in $(seq 1 70); do cp "$P1" "$T/many/l$i.so" || fail "setup"; steps+=(open:n:"$T/many/l$i.so"); done
replace() { echo "run:cp $P2 $T/many/new && mv $T/many/new $T/many/$1"; }
SETUP='for i in 1 70; do cp "$P1" "$T/many/l$i.so"; done' DBG=reloads same "70 paths kept open" "${steps[@]}" \
  "$(replace l70.so)" open:n:"$T/many/l70.so" "$(replace l1.so)" open:n:"$T/many/l1.so"
[ "$ST" -eq 0 ] || fail "70 paths kept open: status $ST"
[ "$(grep -c "warning: .*not counted" "$T/log")" -eq 1 ] || { cat "$T/log" >&2; fail "70 paths kept open: expected one warning"; }
grep -q "note file=$T/many/l70.so stale: .*; its open handles could not be counted; close every handle first" "$T/log" &&
  grep -q "note file=$T/many/l1.so stale: .*; 1 open without a matching dlclose keeps it loaded" "$T/log" ||
  { cat "$T/log" >&2; fail "70 paths kept open: the stale lines should say the 70th's handles are not counted, the 1st's are 1"; }
steps=()
for i in $(seq 1 70); do steps+=(openclose:"$T/many/l$i.so"); done
SETUP='for i in 1 70; do cp "$P1" "$T/many/l$i.so"; done' DBG=files,reloads same "70 paths one after the other" "${steps[@]}" \
  open:n:"$T/many/l70.so" "$(replace l70.so)" open:n:"$T/many/l70.so"
[ "$ST" -eq 0 ] && [ "$(grep -c " -> closed$" "$T/out")" -eq 70 ] || fail "70 paths one after the other: $(cat "$T/out")"
expect_no_log_line "warning" "70 paths one after the other"
grep -q "note file=$T/many/l70.so stale: .*; 1 open without a matching dlclose keeps it loaded" "$T/log" ||
  { cat "$T/log" >&2; fail "70 paths one after the other: the stale line should count 1 open"; }
grep "dl\(open\|close\) by" "$T/log" | grep -v ", \(opens\|already open\) [0-9]" >"$T/uncounted"
[ -s "$T/uncounted" ] && fail "70 paths one after the other: lines without a count: $(head -2 "$T/uncounted")"
ok "more paths than the table holds: kept open, one warning and no false count; opened and closed in turn, all counted"

# ---- fork() while another thread is in dlopen/dlclose (of a library kept
# loaded, so glibc's own locks are free), then dlopen in the child: no child
# hangs. (The shim's dl_iterate_phdr calls take glibc's dl_load_write_lock,
# which fork() does not reset in the child; 60 libraries loaded make each
# call longer.) Stops at the first child asleep in a futex wait (it has no thread to wake it).
steps=()
for i in $(seq 1 60); do steps+=(open:n:"$T/many/l$i.so"); done
SETUP= same "fork during dlopen" "${steps[@]}" forks:1000:"$P1":"$P2"
grep -q "^forks -> 0 hung, 0 failed$" "$T/out" || fail "fork during dlopen: $(tail -1 "$T/out")"
ok "1,000 forks while another thread opens and closes a library, each child dlopens: none hangs"

# ---- TRUNCGUARD_RELOAD=fresh where the new file can't be loaded under a
# fresh name: the program gets glibc's answer (the object already loaded), a
# log line says why, and no extra name is left behind. RTLD_NOLOAD asks what
# is loaded: never a fresh load either.
mkdir "$T/fr"
LIB=$T/fr/lib.so
# fresh_case WHAT FLAGS REPLACE-COMMAND REASON: open, replace, open with FLAGS
fresh_case() {
  local what=$1 flags=$2 replace=$3 reason=$4
  SETUP='rm -rf "$T/fr"; mkdir "$T/fr"; cp "$P1" "$LIB"' TRUNCGUARD_RELOAD=fresh DBG=reloads same "fresh, $what" \
    open:n:"$LIB" "run:$replace" open:"$flags":"$LIB"
  [ "$ST" -eq 0 ] && grep -q "^open:$flags:$LIB -> same as #0" "$T/out" || fail "fresh, $what: $(cat "$T/out")"
  [ -z "$(ls -A "$T/fr" | grep tg-reload)" ] || fail "fresh, $what: an extra name was left: $(ls -A "$T/fr")"
  grep -q "note file=$LIB stale: .*$reason" "$T/log" || { cat "$T/log" >&2; fail "fresh, $what: expected a stale line with \"$reason\""; }
  ok "TRUNCGUARD_RELOAD=fresh, $what: glibc's answer, \"$reason\""
}
# (RTLD_NOLOAD loads nothing whatever the setting: no advice to set it.)
fresh_case "RTLD_NOLOAD" nL "cp $P2 $T/fr/new && mv $T/fr/new $LIB" "1 open without a matching dlclose keeps it loaded$"
fresh_case "the new file cut short" n "head -c 3000 $P2 >$T/fr/new && mv $T/fr/new $LIB" "not a complete"
fresh_case "a directory there now" n "rm $LIB && mkdir $LIB" "not a regular file"
# A file whose segments are all there but not yet written (a writer that sets
# the size first: here the first 4 KiB of the new file, then zeros up to its
# size) passes the completeness check (docs/guarantees.md): the shim loads
# it under its fresh name, and glibc reads the zeros, as a process started
# then would (here: SIGSEGV in its relocation, before the note is written,
# the fresh name left behind).
rm -rf "$T/fr" && mkdir "$T/fr" && cp "$P1" "$LIB" || fail "fresh, size set first: setup"
TRUNCGUARD_RELOAD=fresh DBG=reloads shimmed open:n:"$LIB" \
  "run:head -c 4096 $P2 >$T/fr/new && truncate -s $(stat -c %s "$P2") $T/fr/new && mv $T/fr/new $LIB" open:n:"$LIB"
expect_no_log_line "not a complete" "fresh, size set first"
grep -q "loading the new file as $T/fr/.lib.so.tg-reload-" "$T/log" || [ -n "$(ls -A "$T/fr" | grep tg-reload)" ] ||
  { cat "$T/log" >&2; fail "fresh, size set first: the shim did not load the new file (status $ST): $(cat "$T/out")"; }
rm -f "$T"/fr/.lib.so.tg-reload-*
ok "TRUNCGUARD_RELOAD=fresh, a new file of the full size whose content is not all written: passes the completeness check, loaded (status $ST)"
fresh_case "a new file that does not load" n "cp $BROKEN $T/fr/new && mv $T/fr/new $LIB" \
  "undefined symbol: tg_no_such_function"
# ... nor one whose dependency is missing (truncguard(7): "a missing symbol or
# dependency"): a copy of the new plugin that also needs a library nowhere.
if command -v patchelf >/dev/null; then
  cp "$P2" "$T/nodep.so" && patchelf --add-needed libtg-no-such-dep.so.1 "$T/nodep.so" || fail "setup: patchelf"
  fresh_case "a new file whose dependency is missing" n "cp $T/nodep.so $T/fr/new && mv $T/fr/new $LIB" \
    "libtg-no-such-dep.so.1: cannot open shared object file"
  # A dependency found only through the executable's DT_RPATH: glibc searches
  # that for every load, the shim's too, so the new file is loaded (docs/
  # guarantees.md: only a calling library's DT_RPATH makes it fall back).
  # Control: the same program without that DT_RPATH falls back.
  mkdir -p "$T/rpdeps" && cp "$P1" "$T/rpdeps/libtg-rpath-dep.so.1" &&
    patchelf --set-soname libtg-rpath-dep.so.1 "$T/rpdeps/libtg-rpath-dep.so.1" &&
    cp "$P2" "$T/rpdep.so" && patchelf --add-needed libtg-rpath-dep.so.1 "$T/rpdep.so" &&
    cp "$TG_DL_EDGES" "$T/dl_edges_rpath" && patchelf --force-rpath --set-rpath "$T/rpdeps" "$T/dl_edges_rpath" ||
    fail "setup: patchelf (DT_RPATH)"
  fresh_case "a new file whose dependency only the executable's DT_RPATH finds, run without it" n \
    "cp $T/rpdep.so $T/fr/new && mv $T/fr/new $LIB" "libtg-rpath-dep.so.1: cannot open shared object file"
  rm -rf "$T/fr" && mkdir "$T/fr" && cp "$P1" "$LIB" || fail "fresh, DT_RPATH: setup"
  TG_DL_EDGES=$T/dl_edges_rpath TRUNCGUARD_RELOAD=fresh DBG=reloads shimmed open:n:"$LIB" \
    "run:cp $T/rpdep.so $T/fr/new && mv $T/fr/new $LIB" open:n:"$LIB" close:1 close:0
  grep -q "^open:n:$LIB -> new #1" "$T/out" || { cat "$T/log" >&2; fail "fresh, a dependency in the executable's DT_RPATH: $(cat "$T/out")"; }
  expect_log_line "loading the new file as $T/fr/.lib.so.tg-reload-" "fresh, a dependency in the executable's DT_RPATH"
  ok "TRUNCGUARD_RELOAD=fresh, a new file whose dependency the executable's DT_RPATH finds: loaded"
  # ... and where only the DT_RPATH of the library that calls dlopen (a
  # constructor's, here) finds it: the shim's dlopen does not search that,
  # so it falls back to the object already loaded, with glibc's reason.
  cp "$TG_NESTED_CTOR" "$T/ctor_rpath.so" && patchelf --force-rpath --set-rpath "$T/rpdeps" "$T/ctor_rpath.so" ||
    fail "setup: patchelf (a library's DT_RPATH)"
  rm -rf "$T/fr" && mkdir "$T/fr" && cp "$P1" "$LIB" || fail "fresh, a library's DT_RPATH: setup"
  TG_INNER=$LIB TRUNCGUARD_RELOAD=fresh DBG=reloads shimmed open:n:"$LIB" \
    "run:cp $T/rpdep.so $T/fr/new && mv $T/fr/new $LIB" open:n:"$T/ctor_rpath.so"
  grep -q "^constructor: inner version 1, dlclose 0" "$T/out" || fail "fresh, a dependency in a library's DT_RPATH: $(cat "$T/out")"
  grep -q "note file=$LIB stale: .*TRUNCGUARD_RELOAD=fresh could not load the new file: .*libtg-rpath-dep.so.1: cannot open shared object file" "$T/log" ||
    { cat "$T/log" >&2; fail "fresh, a dependency in a library's DT_RPATH: no fallback line with glibc's reason"; }
  [ -z "$(ls -A "$T/fr" | grep tg-reload)" ] || fail "fresh, a library's DT_RPATH: an extra name was left: $(ls -A "$T/fr")"
  ok "TRUNCGUARD_RELOAD=fresh, a new file whose dependency only the calling library's DT_RPATH finds: glibc's answer, with the reason"
else
  note "TRUNCGUARD_RELOAD=fresh, a missing dependency: skipped (patchelf not installed)"
fi
# A symlink onto another filesystem: the fresh name is a hard link to the
# target in the symlink's directory (where $ORIGIN is), which the kernel
# refuses across filesystems (README: "Invalid cross-device link").
OTHER=$(mktemp -d /dev/shm/tg-reload-xdev.XXXXXX 2>/dev/null) && trap 'rm -rf -- "$T" "$OTHER"' EXIT
if [ -n "$OTHER" ] && [ "$(stat -c %d "$OTHER")" != "$(stat -c %d "$T")" ]; then
  cp "$P1" "$OTHER/lib.so.1" && cp "$P2" "$OTHER/lib.so.2" || fail "fresh, a symlink onto another filesystem: setup"
  SETUP='rm -rf "$T/fr"; mkdir "$T/fr"; ln -s "$OTHER/lib.so.1" "$LIB"' TRUNCGUARD_RELOAD=fresh DBG=reloads \
    same "fresh, a symlink onto another filesystem" open:n:"$LIB" "run:ln -sfn $OTHER/lib.so.2 $LIB" open:n:"$LIB"
  [ "$ST" -eq 0 ] && grep -q "^open:n:$LIB -> same as #0" "$T/out" ||
    fail "fresh, a symlink onto another filesystem: $(cat "$T/out")"
  [ -z "$(ls -A "$T/fr" "$OTHER" | grep "\.tg-reload-")" ] || fail "fresh, a symlink onto another filesystem: an extra name was left"
  expect_log_line "note file=$LIB stale: dlopen returns the object already loaded from it" "fresh, a symlink onto another filesystem"
  grep -q "note file=$LIB stale: .*; TRUNCGUARD_RELOAD=fresh could not load the new file: cannot link it as $T/fr/\.lib\.so\.tg-reload-[0-9]*-1: Invalid cross-device link$" "$T/log" ||
    { cat "$T/log" >&2; fail "fresh, a symlink onto another filesystem: the stale line does not say \"Invalid cross-device link\""; }
  ok "TRUNCGUARD_RELOAD=fresh, a symlink onto another filesystem: glibc's answer, \"Invalid cross-device link\""
else
  echo "note: fresh, a symlink onto another filesystem: /dev/shm is not another filesystem here: not tested"
fi
[ -n "$OTHER" ] && rm -rf -- "$OTHER"

# ... and a new file its owner may not read (chmod 000): it can still be
# linked (the owner may), but not loaded. As nobody: root reads anything.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  NB=$T/nobody
  mkdir -p "$NB/fr" && cp "$TG_DL_EDGES" "$TG_SHIM" "$P1" "$P2" "$NB/" && chown -R 65534:65534 "$NB" || fail "setup for nobody"
  nb_run() {  # nb_run [ENV...]: as nobody, the edges program on $NB/fr/lib.so, status in $ST
    rm -f "$NB/fr/lib.so" && cp "$P1" "$NB/fr/lib.so" && chown 65534:65534 "$NB/fr/lib.so"
    setpriv --reuid=65534 --regid=65534 --clear-groups -- env "$@" "$NB/dl_edges" open:n:"$NB/fr/lib.so" \
      "run:cp $NB/p2.so $NB/fr/new && chmod 000 $NB/fr/new && mv $NB/fr/new $NB/fr/lib.so" open:n:"$NB/fr/lib.so" \
      >"$T/out" 2>"$T/err"
    ST=$?
  }
  nb_run
  cp "$T/out" "$T/plain"
  [ "$ST" -eq 0 ] && grep -q "^open:n:$NB/fr/lib.so -> same as #0" "$T/plain" || fail "fresh, unreadable, control: $(cat "$T/plain")"
  nb_run LD_PRELOAD="$NB/$(basename "$TG_SHIM")" TRUNCGUARD_RELOAD=fresh TRUNCGUARD_DEBUG=reloads
  cmp -s "$T/plain" "$T/out" || fail "fresh, unreadable: \"$(cat "$T/out")\" under truncguard, \"$(cat "$T/plain")\" without"
  [ -z "$(ls -A "$NB/fr" | grep tg-reload)" ] || fail "fresh, unreadable: an extra name was left: $(ls -A "$NB/fr")"
  grep -q "stale: .*TRUNCGUARD_RELOAD=fresh could not load the new file: cannot read it: Permission denied" "$T/err" ||
    fail "fresh, unreadable: the stale line does not say why: $(cat "$T/err")"
  ok "TRUNCGUARD_RELOAD=fresh, a new file its owner can't read: glibc's answer, \"cannot read it\""
else
  echo "note: fresh, unreadable: needs root and setpriv (to run as nobody): not tested"
fi

# ---- TRUNCGUARD_RELOAD=fresh where the new file is loaded already by another
# of its names (a hard link the program opened): the program gets that
# object, as glibc gives it for any name of the file, never a fresh name
# (README).
rm -rf "$T/fr" && mkdir "$T/fr" && cp "$P1" "$LIB" || fail "fresh, loaded by another name: setup"
TRUNCGUARD_RELOAD=fresh DBG=reloads shimmed open:n:"$LIB" "run:cp $P2 $T/fr/n && mv $T/fr/n $LIB && ln $LIB $T/fr/other.so" \
  open:n:"$T/fr/other.so" open:n:"$LIB" close:1 close:1 close:0
[ "$ST" -eq 0 ] && grep -q "^open:n:$T/fr/other.so -> new #1" "$T/out" && grep -q "^open:n:$LIB -> same as #1" "$T/out" ||
  { cat "$T/log" >&2; fail "fresh, loaded by another name: $(cat "$T/out")"; }
grep -q "note file=$LIB is already loaded \[ino [0-9]*\] but the file is now \[ino $(stat -c %i "$LIB")\], loaded already as $T/fr/other.so: returning that object (TRUNCGUARD_RELOAD=fresh)$" "$T/log" ||
  { cat "$T/log" >&2; fail "fresh, loaded by another name: no line says the object loaded as other.so is returned"; }
expect_no_log_line "loading the new file as" "fresh, loaded by another name"
ok "TRUNCGUARD_RELOAD=fresh, the new file loaded already by another name: that object is returned, no fresh name"

# ---- TRUNCGUARD_RELOAD=fresh while 8 threads dlopen and dlclose a library
# that another process replaces again and again (a handle of the original
# kept open): once a fresh copy of a file is loaded, every dlopen of the path
# gets that object (glibc would return it for any other name of the file, and
# keep that name), so every dlopen works, and after exit no extra name is left
# on disk. (Before: a fresh name per dlopen, the table of records full, 60 of
# them left behind; then dlopens failing, "No such file", where another
# thread's dlclose unloaded the copy between the shim's load and the program's.)
replacer="for i in {1..100}; do cp $P2 $T/fr/n && mv $T/fr/n $LIB; cp $P1 $T/fr/n && mv $T/fr/n $LIB; sleep 0.01; done; touch $T/fr/done"
SETUP='rm -rf "$T/fr"; mkdir "$T/fr"; cp "$P1" "$LIB"' TRUNCGUARD_RELOAD=fresh DBG=reloads same "fresh, 8 threads" \
  open:n:"$LIB" "run:bash -c \"$replacer\" &" reopen:8:2:"$LIB" "run:while [ ! -e $T/fr/done ]; do sleep 0.1; done"
grep -q "^reopen -> all worked$" "$T/out" || fail "fresh, 8 threads: $(cat "$T/out")"
[ -z "$(ls -A "$T/fr" | grep tg-reload)" ] || fail "fresh, 8 threads: $(ls -A "$T/fr" | grep -c tg-reload) extra names left"
grep -q "loaded already as $T/fr/.lib.so.tg-reload-[0-9]*-[0-9]*: returning that object" "$T/log" ||
  { cat "$T/log" >&2; fail "fresh, 8 threads: no dlopen got the fresh copy already loaded"; }
expect_no_log_line "table of records is full" "fresh, 8 threads"
expect_no_log_line "NODELETE" "fresh, 8 threads"
ok "TRUNCGUARD_RELOAD=fresh, 8 threads reopening a library replaced 200 times: all work, the fresh copy loaded is reused, no name left"

# ---- TRUNCGUARD_RELOAD=fresh through a symlink (the soname layout, lib.so ->
# lib.so.1) pointed at a new file: the new file is loaded, under a name of its
# own next to the symlink. (The shim linked the symlink itself, and gave up:
# "it was replaced again meanwhile".)
rm -rf "$T/fr" && mkdir "$T/fr" && cp "$P1" "$T/fr/lib.so.1" && cp "$P2" "$T/fr/lib.so.2" && ln -s lib.so.1 "$T/fr/lib.so" ||
  fail "fresh through a symlink: setup"
TRUNCGUARD_RELOAD=fresh DBG=reloads shimmed open:n:"$T/fr/lib.so" "run:ln -sfn lib.so.2 $T/fr/lib.so" \
  open:n:"$T/fr/lib.so" close:1 close:0
grep -q "^open:n:$T/fr/lib.so -> new #1" "$T/out" || { cat "$T/log" >&2; fail "fresh through a symlink: $(cat "$T/out")"; }
expect_log_line "loading the new file as $T/fr/.lib.so.tg-reload-" "fresh through a symlink"
[ -z "$(ls -A "$T/fr" | grep tg-reload)" ] || fail "fresh through a symlink: an extra name was left: $(ls -A "$T/fr")"
ok "TRUNCGUARD_RELOAD=fresh, a symlink pointed at a new file: the new file is loaded, its extra name gone after dlclose"

# ---- ... by a relative path, the program changing directory before its
# dlclose: the extra name is still removed. (It was made relative, and
# removed relative to the new current directory: it stayed on disk.)
rm -rf "$T/fr" && mkdir "$T/fr" && cp "$P1" "$LIB" || fail "fresh, a relative path: setup"
(cd "$T" && TRUNCGUARD_RELOAD=fresh DBG=reloads shimmed open:n:fr/lib.so "run:cp $P2 fr/n && mv fr/n fr/lib.so" \
  open:n:fr/lib.so sym:1:tg_version chdir:/ close:1 close:0)
grep -q "^open:n:fr/lib.so -> new #1" "$T/out" && grep -q "^sym:1:tg_version -> found" "$T/out" ||
  { cat "$T/log" >&2; fail "fresh, a relative path: $(cat "$T/out")"; }
[ -z "$(ls -A "$T/fr" | grep tg-reload)" ] || fail "fresh, a relative path: the extra name was left after a chdir: $(ls -A "$T/fr")"
ok "TRUNCGUARD_RELOAD=fresh by a relative path, a chdir before dlclose: the extra name is removed"

# ---- ... and where the fresh copy was opened by a thread that then ended (a
# worker that loads a plugin for others): the shim's own handle on it goes
# with the thread, so the program's dlclose unloads it and its name is gone.
rm -rf "$T/fr" && mkdir "$T/fr" && cp "$P1" "$LIB" || fail "fresh from an ended thread: setup"
TRUNCGUARD_RELOAD=fresh DBG=reloads shimmed open:n:"$LIB" "run:cp $P2 $T/fr/n && mv $T/fr/n $LIB" topen:n:"$LIB" close:1
grep -q "^topen:n:$LIB -> new #1" "$T/out" || { cat "$T/log" >&2; fail "fresh from an ended thread: $(cat "$T/out")"; }
[ -z "$(ls -A "$T/fr" | grep tg-reload)" ] || fail "fresh from an ended thread: the extra name was left: $(ls -A "$T/fr")"
ok "TRUNCGUARD_RELOAD=fresh, a copy opened by a thread that ended: the program's dlclose unloads it, no name left"

# ---- ... or by a thread that lives on without another dl call (a worker
# idling): the program's dlclose of its last handle, in another thread,
# closes that thread's pin too. (The copy stayed loaded and its name on disk
# until that thread's next dl call.)
rm -rf "$T/fr" && mkdir "$T/fr" && cp "$P1" "$LIB" || fail "fresh from an idle thread: setup"
TRUNCGUARD_RELOAD=fresh DBG=reloads shimmed open:n:"$LIB" "run:cp $P2 $T/fr/n && mv $T/fr/n $LIB" wopen:n:"$LIB" close:1 \
  "run:ls -a $T/fr"
grep -q "^wopen:n:$LIB -> new #1" "$T/out" || { cat "$T/log" >&2; fail "fresh from an idle thread: $(cat "$T/out")"; }
! grep -q '^\.lib\.so\.tg-reload-' "$T/out" || fail "fresh from an idle thread: the copy's name was left after dlclose: $(cat "$T/out")"
ok "TRUNCGUARD_RELOAD=fresh, a copy opened by a thread that idles: the program's dlclose unloads it, no name left"

# ---- TRUNCGUARD_RELOAD=fresh, a signal handler's dlopen and dlclose in the
# middle of the program's dlopen (undefined under POSIX, but glibc survives
# it): first while the shim is at work (it waits in its log write), then in
# glibc's dlopen after the shim's part (it waits for the loader's lock). The
# fresh copy the shim pinned for that dlopen stays loaded until glibc has
# opened it. (Before: the handler's dl call closed the pin, glibc read a
# freed name and the program's dlopen failed, every time.)
for where in shim glibc; do
  rm -rf "$T/fr" && mkdir "$T/fr" && cp "$P1" "$LIB" || fail "fresh, signal handler ($where): setup"
  STEPS=(open:n:"$LIB" "run:cp $P2 $T/fr/n && mv $T/fr/n $LIB" sigopen:$where:"$LIB" close:0)
  plain "${STEPS[@]}"
  grep -q "^sigopen -> not stalled; dlopen: version 1; the handler's: -2; dlclose 0$" "$T/plain" ||
    fail "fresh, signal handler ($where), without truncguard: $(cat "$T/plain" "$T/plain.err")"
  cp "$P1" "$LIB" || fail "fresh, signal handler ($where): setup"
  # (The log on stderr: the step makes it a full pipe.)
  env LD_PRELOAD="$TG_SHIM" TRUNCGUARD_RELOAD=fresh TRUNCGUARD_DEBUG=reloads "$TG_DL_EDGES" "${STEPS[@]}" >"$T/out" 2>"$T/err"
  grep -q "^sigopen -> stalled; dlopen: version 2; the handler's: 2; dlclose 0$" "$T/out" ||
    { cat "$T/err" >&2; fail "fresh, signal handler ($where): $(cat "$T/out")"; }
  [ -z "$(ls -A "$T/fr" | grep tg-reload)" ] || fail "fresh, signal handler ($where): an extra name was left: $(ls -A "$T/fr")"
  ok "TRUNCGUARD_RELOAD=fresh, a signal handler's dlopen/dlclose inside the program's dlopen ($where): both get the new file, no name left"
done

# ---- ... and the pins take none of the program's pthread keys (1024 in
# all): after a fresh answer, it can make as many as before one (as without
# truncguard; a sanitizer's runtime takes one). (A key was taken for their
# release at thread exit: one fewer.)
cp "$P1" "$LIB" && TRUNCGUARD_RELOAD=fresh shimmed keys || fail "keys: setup"
want=$(cat "$T/out")
TRUNCGUARD_RELOAD=fresh DBG=reloads shimmed open:n:"$LIB" "run:cp $P2 $T/fr/n && mv $T/fr/n $LIB" open:n:"$LIB" keys
grep -q "^open:n:$LIB -> new #1" "$T/out" || { cat "$T/log" >&2; fail "keys: no fresh answer: $(cat "$T/out")"; }
grep -qx "$want" "$T/out" || fail "keys: the program could make $want before a fresh answer; after: $(grep keys "$T/out")"
ok "TRUNCGUARD_RELOAD=fresh takes none of the program's pthread keys ($want)"

# ---- dlmopen's handles are not counted, so their dlclose must not count
# against the same path's handles in the program's namespace.
SETUP='cp "$P1" "$LIB"' DBG=files,reloads same "dlmopen and the counts" open:n:"$LIB" mopen:n:"$LIB" sym:1:tg_version \
  close:1 "run:cp $P2 $T/fr/new && mv $T/fr/new $LIB" open:n:"$LIB"
[ "$ST" -eq 0 ] && grep -q "^open:n:$LIB -> same as #0" "$T/out" || fail "dlmopen and the counts: $(cat "$T/out")"
grep -q "note file=$LIB stale: .*; 1 open without a matching dlclose keeps it loaded" "$T/log" ||
  { cat "$T/log" >&2; fail "dlmopen and the counts: the stale line should count the 1 open in the program's namespace"; }
grep "file=$LIB \[1\]" "$T/log" | grep ", \(opens\|already open\) " >"$T/ns1_counts"
[ -s "$T/ns1_counts" ] && fail "dlmopen and the counts: a line gives namespace 1's object a count: $(head -1 "$T/ns1_counts")"
ok "dlclose of a dlmopen handle does not count against the program's namespace"

# ---- More than 64 libraries open at once (docs/guarantees.md, "What is not
# guaranteed"): one warning, at the 65th, and the program's answers are the
# same as without truncguard; 64 open at once give none.
mkdir -p "$T/many"
steps=()
for i in $(seq 65); do cp "$P1" "$T/many/p$i.so" && steps+=(open:n:"$T/many/p$i.so") || fail "many: setup"; done
DBG=reloads same "64 libraries open at once" "${steps[@]:0:64}"
grep -q "libraries opened with dlopen are open at once" "$T/log" && fail "64 libraries open at once: a warning: $(cat "$T/log")"
DBG=reloads same "65 libraries open at once" "${steps[@]}"
[ "$(grep -c "warning: more than 64 libraries opened with dlopen are open at once (or a path is over [0-9]* bytes): the open handles of the others are not counted" "$T/log")" -eq 1 ] ||
  fail "65 libraries open at once: not one warning: $(cat "$T/log")"
ok "65 libraries open at once: one warning, the program's answers as without truncguard; 64: no warning"

# ---- The `files` category in JSON, field by field as docs/ci.md's table
# gives them: dlopen (already_open, before the call; detail its mode), dlsym
# (opens; defined_in where found, absent where not), dlclose (opens after it;
# detail "still loaded", then "unloaded", with a not_unloaded note); caller
# the program, never the shim; ns and caller_ns 0.
cp "$P1" "$T/json.so" || fail "json: setup"
TRUNCGUARD_LOG_FORMAT=json DBG=files same "the files category in JSON" open:ng:"$T/json.so" open:n:"$T/json.so" \
  sym:0:tg_version sym:0:no_such close:0 close:0
python3 - "$T/log" "$T/json.so" "$TG_DL_EDGES" <<'PY' || fail "the files category in JSON: $(cat "$T/log")"
import json, sys
log, lib, prog = sys.argv[1:]
ev = [json.loads(l) for l in open(log)]
calls = [e for e in ev if e["event"] == "dl_call"]
ino = calls[0]["ino"]
base = {"file": lib, "ns": 0, "caller": prog, "caller_ns": 0, "ino": ino}
def want(e, **kw):
    exp = dict(base, event="dl_call", **kw)
    got = {k: v for k, v in e.items() if k != "pid"}
    assert got == exp, (got, exp)
assert len(calls) == 6, calls
want(calls[0], call="dlopen", already_open=0, detail="RTLD_NOW|RTLD_GLOBAL")
want(calls[1], call="dlopen", already_open=1, detail="RTLD_NOW")
want(calls[2], call="dlsym", symbol="tg_version", defined_in=lib, defined_in_ns=0, opens=2)
want(calls[3], call="dlsym", symbol="no_such", opens=2)
want(calls[4], call="dlclose", opens=1, detail="still loaded")
want(calls[5], call="dlclose", opens=0, detail="unloaded")
notes = [e for e in ev if e["event"] == "note"]
assert len(notes) == 1 and notes[0]["note"] == "not_unloaded" and notes[0]["file"] == lib and "1 handle still open" in notes[0]["message"], notes
assert len(ev) == 7, ev
PY
ok "the files category in JSON: dl_call's fields and values as docs/ci.md gives them"

# ---- Only paths with a `/` are checked for staleness (docs/guarantees.md,
# "What is not guaranteed"): a bare name found through LD_LIBRARY_PATH,
# dlopened again after the file was replaced, gets no stale note; control:
# the same by its path gets one.
mkdir -p "$T/bare"
for name in libtgbare.so "$T/bare/libtgbare.so"; do
  cp "$P1" "$T/bare/libtgbare.so" || fail "bare: setup"
  LD_LIBRARY_PATH=$T/bare DBG=reloads shimmed open:n:"$name" "run:cp $P2 $T/bare/new && mv $T/bare/new $T/bare/libtgbare.so" open:n:"$name"
  [ "$ST" -eq 0 ] && grep -q "^open:n:$name -> same as #0" "$T/out" || fail "bare ($name): $(cat "$T/out")"
  if [ "$name" = libtgbare.so ]; then
    grep -q "stale" "$T/log" && fail "a bare name got a stale note: $(cat "$T/log")"
  else
    grep -qF "note file=$name stale: dlopen returns the object already loaded from it" "$T/log" ||
      fail "control: the path got no stale note: $(cat "$T/log")"
  fi
done
ok "a bare name dlopened again after its file was replaced: no stale note; by its path: stale"
