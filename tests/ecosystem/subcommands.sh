#!/bin/bash
# The interface of `truncguard who` and `truncguard stale`: usage errors say
# what happened and what to do (exit 2); --help documents the exit statuses;
# the subcommands exist only as the first argument, so `truncguard -- who`
# and `truncguard -d none who` run a program named who; odd names (newline,
# tab, escape sequence, bytes that are not UTF-8) come out escaped, one row
# each, in the tables and in the JSON.
. "$(dirname "$0")/../e2e/lib.sh"
need_victims
need_shim

# expect_error STATUS WORDS CMD...: CMD fails with STATUS and says WORDS.
expect_error() {
  local want=$1 words=$2 out st
  shift 2
  out=$("$@" 2>&1)
  st=$?
  [ "$st" -eq "$want" ] || fail "${*##*/} exited $st, expected $want: $out"
  grep -qiF -- "$words" <<<"$out" || fail "${*##*/}: the message does not say \"$words\": $out"
  ok "${*##*/}: exit $st: $(head -n 1 <<<"$out")"
}
expect_error 2 "no FILE given" "$TG_CMD" who
expect_error 2 "--help" "$TG_CMD" who
expect_error 2 "'--bogus'" "$TG_CMD" who --bogus /etc/hostname
expect_error 2 "'-z'" "$TG_CMD" stale -z
# A long option given a value it does not take is named as written, not as
# its short form ("unrecognized option '-h'" said -h was unknown).
expect_error 2 "option '--help' takes no value" "$TG_CMD" who --help=x /etc/hostname
expect_error 2 "option '--quiet' takes no value" "$TG_CMD" stale --quiet=1
expect_error 2 "exclude each other" "$TG_CMD" who --json -q /etc/hostname
expect_error 2 "truncguard who FILE" "$TG_CMD" stale /etc/hostname
expect_error 2 "is a directory" "$TG_CMD" who "$T"
expect_error 2 "can't be resolved" "$TG_CMD" who /nonexistent-dir-tg/lib.so
# A FILE that can't be examined makes it an error (2) even where a process
# maps another FILE (truncguard(1), EXIT STATUS), as grep's 2 wins over its
# 0; the answer for that other FILE is still printed.
fresh_copy "$V1" "$T/mapped.so"
start_victim "$T/mapped.so"
out=$("$TG_CMD" who "$T/mapped.so" "$T" 2>"$T/err.out")
st=$?
stop_victim
[ "$st" -eq 2 ] && grep -q "cannot examine '$T': is a directory" "$T/err.out" ||
  fail "who on a mapped file and a directory: exit $st, expected 2: $(cat "$T/err.out")"
grep -qE "^ +$VICTIM_PID " <<<"$out" || fail "who on a mapped file and a directory does not list the victim: $out"
ok "who on a mapped file and a directory: exit 2, the victim still listed"
# A file this user can't reach (a directory on the way it may not search) is
# an error that says so, not a missing file ("no process maps it", exit 1).
if [ "$(id -u)" -eq 0 ] && as_nobody true 2>/dev/null; then
  nobody_copies
  mkdir -m 700 "$T/private" && cp "$V1" "$T/private/lib.so" || fail "setup of a private directory"
  as_nobody test -e "$T/private/lib.so" && fail "control: nobody can reach $T/private/lib.so"
  expect_error 2 "Permission denied" as_nobody "$TG_CMD_N" who "$T/private/lib.so"
fi

# A file that is gone is a question, not an error.
out=$("$TG_CMD" who "$T/gone.so" 2>/dev/null)
st=$?
[ "$st" -eq 1 ] || [ "$st" -eq 3 ] || fail "who on a file that does not exist exited $st, expected 1 or 3: $out"
grep -q "no such file now" <<<"$out" || fail "who on a missing file does not say so: $out"
ok "who on a missing file: exit $st, $out"

# who looks only at mappings, not at open fds, unlike fuser (truncguard(1)):
# a process holding the library open without mapping it is not listed.
# Control: one that maps it (the victim) is.
fresh_copy "$V1" "$T/held.so"
( exec 3<"$T/held.so"; exec sleep 30 ) &
holder=$!
_tg_pids+=("$holder")
for ((i = 0; i < 500; i++)); do [ "$(readlink "/proc/$holder/fd/3")" = "$T/held.so" ] && break; sleep 0.01; done
[ "$(readlink "/proc/$holder/fd/3")" = "$T/held.so" ] || fail "control: the holder does not hold $T/held.so open"
out=$("$TG_CMD" who --json "$T/held.so" 2>/dev/null)
grep -q "\"pid\":$holder," <<<"$out" && fail "who lists a process that only holds the file open (pid $holder): $out"
start_victim "$T/held.so"
out=$("$TG_CMD" who --json "$T/held.so" 2>/dev/null)
grep -q "\"pid\":$VICTIM_PID," <<<"$out" || fail "control: who does not list the victim that maps $T/held.so: $out"
stop_victim
kill "$holder" 2>/dev/null
ok "who: a process holding the file open, unmapped, is not listed; one mapping it is"

# who looks at a FIFO (or a device) without opening it, as fuser does: a
# writer waiting for a reader stays blocked (opening it ran the writer, whose
# first write then met a closed pipe; opening /dev/watchdog arms it).
mkfifo "$T/fifo"
( exec 3>"$T/fifo"; : >"$T/fifo.opened" ) &
writer=$!
_tg_pids+=("$writer")
sleep 0.2
[ -e "$T/fifo.opened" ] && fail "control: the FIFO's writer did not wait for a reader"
"$TG_CMD" who "$T/fifo" >/dev/null 2>&1
st=$?
[ "$st" -eq 1 ] || [ "$st" -eq 3 ] || fail "who on a FIFO exited $st, expected 1 or 3"
sleep 0.2
[ -e "$T/fifo.opened" ] && fail "who on a FIFO opened it: the writer waiting for a reader went on"
kill "$writer" 2>/dev/null
ok "who on a FIFO: exit $st, the FIFO not opened (its writer still waits)"
# ... nor a device (here a node of /dev/null's device: an inotify watch on
# it sees every open). Control: cat opens it, and the watch sees that.
opened() {  # opened NODE CMD...: "opened" if CMD opened NODE, else "not opened"
  python3 - "$@" <<'PY'
import ctypes, os, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
if fd < 0 or libc.inotify_add_watch(fd, sys.argv[1].encode(), 0x20) < 0:  # IN_OPEN
    sys.exit("cannot watch " + sys.argv[1])
subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    print("opened" if os.read(fd, 4096) else "not opened")
except BlockingIOError:
    print("not opened")
PY
}
if mknod "$T/nulldev" c 1 3 2>/dev/null && cat "$T/nulldev" 2>/dev/null; then  # (not on a nodev mount)
  [ "$(opened "$T/nulldev" cat "$T/nulldev")" = opened ] || fail "control: the inotify watch did not see cat open $T/nulldev"
  [ "$(opened "$T/nulldev" "$TG_CMD" who "$T/nulldev")" = "not opened" ] || fail "who on a device opened it"
  ok "who on a device: not opened (control: cat's open is seen)"
else
  note "who on a device: no device node can be made and opened here (mknod; a nodev mount?): not tested"
fi

# An answer that can't be written (a full disk, a closed stdout) is an
# error, not a short answer that exits as if it had been read.
outs=closed
[ -w /dev/full ] && outs="$outs /dev/full"
for args in "who --json /etc/hostname" "who /etc/hostname" "stale --json" "stale"; do
  for to in $outs; do
    if [ "$to" = closed ]; then
      err=$("$TG_CMD" $args 2>&1 >&-)
    else
      err=$("$TG_CMD" $args 2>&1 >"$to")
    fi
    st=$?
    [ "$st" -eq 2 ] && grep -q "cannot write the answer to standard output" <<<"$err" ||
      fail "$args with stdout $to: exit $st, expected 2 and a message: $err"
  done
done
ok "who and stale with stdout $outs: exit 2, \"cannot write the answer to standard output\""

for sub in who stale; do
  help=$("$TG_CMD" $sub --help) || fail "truncguard $sub --help exited $?"
  for word in "Usage: truncguard $sub" "--json" "--quiet" "Exit status" "truncguard -- $sub"; do
    grep -qF -- "$word" <<<"$help" || fail "truncguard $sub --help does not mention $word"
  done
  [ "$("$TG_CMD" $sub -h)" = "$help" ] || fail "truncguard $sub -h does not print its --help text (exit $?)"
  # --quiet, as -q: nothing on stdout, the status answers (not 2: no error;
  # for who 1 or 3, as nothing maps the file)
  : >"$T/unmapped.txt"
  out=$("$TG_CMD" $sub --quiet $([ $sub = who ] && echo "$T/unmapped.txt") 2>/dev/null)
  st=$?
  [ -z "$out" ] && [ "$st" -ne 2 ] && { [ $sub = stale ] || [ "$st" -ne 0 ]; } ||
    fail "truncguard $sub --quiet: exit $st, printed: $out"
done
help=$("$TG_CMD" --help)
for word in "truncguard who" "truncguard stale" "truncguard -- who"; do
  grep -qF -- "$word" <<<"$help" || fail "truncguard --help does not mention $word"
done
ok "--help of who, stale and the command document the subcommands and exit statuses"

# A program named who or stale still runs under truncguard.
mkdir -p "$T/path"
for prog in who stale; do
  printf '#!/bin/sh\necho "the program %s ran: $*"\n' "$prog" >"$T/path/$prog"
  chmod 755 "$T/path/$prog"
  out=$(PATH=$T/path:$PATH "$TG_CMD" -- $prog x 2>&1) || fail "truncguard -- $prog failed: $out"
  [ "$out" = "the program $prog ran: x" ] || fail "truncguard -- $prog printed: $out"
  out=$(PATH=$T/path:$PATH "$TG_CMD" -d none $prog 2>&1) || fail "truncguard -d none $prog failed: $out"
  [ "$out" = "the program $prog ran: " ] || fail "truncguard -d none $prog printed: $out"
  out=$("$TG_CMD" "$T/path/$prog" y 2>&1) || fail "truncguard $T/path/$prog failed: $out"  # (truncguard(1): "or give its path")
  [ "$out" = "the program $prog ran: y" ] || fail "truncguard $T/path/$prog printed: $out"
done
ok "truncguard -- who, truncguard -d none who and truncguard PATH/who run the program who"

# Odd names: a library and a victim program with control characters and
# bytes that are not UTF-8 in their names.
odd=$(printf 'lib\nodd\t\033[31m\377\302\233.so')  # (\302\233: U+009B, CSI, valid UTF-8)
ODD=$T/$odd
fresh_copy "$V1" "$ODD"
VIC=$T/$(printf 'vi\tc')
cp "$TG_VICTIM" "$VIC" && chmod 755 "$VIC" || fail "cannot copy the victim"
_start_bg "$T/odd.ready" "$T/odd.out" "$VIC" "$ODD" "$TG_VICTIM_MS" "$T/odd.ready"
P=$BG_PID
log_reset
"$TG_CMD" --json cp "$V2" "$ODD" 2>/dev/null || fail "truncguard cp over the odd name failed"
esc_name='lib\nodd\t\x1b[31m\xff\xc2\x9b.so'
# The JSON log spells the process name as the text log does, escaped first
# (truncguard(7): "process names ... are escaped as in the text log first").
if command -v python3 >/dev/null; then
  tg_log | python3 -c '
import json, sys
[r] = [e for e in map(json.loads, sys.stdin) if e["event"] == "replaced"]
assert r["file"].endswith("/" + sys.argv[1]) and {"pid": int(sys.argv[2]), "comm": "vi\\tc"} in r["mapped_by"], r' "$esc_name" "$P" ||
    fail "the JSON replaced line does not spell the odd names escaped: $(tg_log)"
fi
# no_raw WHAT OUTPUT: nothing but printable ASCII (and newlines) in OUTPUT.
no_raw() {
  LC_ALL=C grep -q $'\033' <<<"$2" && fail "$1 printed a raw escape character: $2"
  LC_ALL=C grep -qaP '[\x80-\xff]' <<<"$2" && fail "$1 printed a raw byte that is not ASCII: $2"
  LC_ALL=C grep -qaP '\t' <<<"$2" && fail "$1 printed a raw tab: $2"
  return 0
}
out=$("$TG_CMD" who "$ODD" 2>/dev/null)
no_raw "who" "$out"
grep -qF -- "$esc_name" <<<"$out" || fail "who does not show the name escaped as $esc_name: $out"
grep -E "^ +$P " <<<"$out" | grep -qF 'vi\tc' || fail "who does not show the victim's command escaped (vi\\tc): $out"
out=$("$TG_CMD" stale 2>/dev/null)
no_raw "stale" "$out"
row=$(awk -v p="$P" '$2 == p' <<<"$out")
grep -qF -- "$esc_name" <<<"$row" || fail "stale does not show the name escaped as $esc_name: $out"
grep -qF 'vi\tc' <<<"$row" || fail "stale does not show the victim's command escaped: $out"
[ "$(grep -c . <<<"$row")" -eq 1 ] || fail "the odd name takes more than one row: $row"
if command -v python3 >/dev/null; then
  "$TG_CMD" who --json "$ODD" >"$T/who.json" 2>/dev/null
  "$TG_CMD" stale --json >"$T/stale.json" 2>/dev/null
  no_raw "who --json" "$(cat "$T/who.json")"
  no_raw "stale --json" "$(cat "$T/stale.json")"
  python3 - "$T/who.json" "$T/stale.json" "$esc_name" "$P" <<'PY' || fail "the JSON does not spell the odd names as the log does"
import json, sys
who, stale, esc, pid = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3], int(sys.argv[4])
assert who["files"][0]["file"].endswith("/" + esc), who["files"][0]["file"]
assert any(p["pid"] == pid and p["comm"] == "vi\\tc" for p in who["files"][0]["processes"])
[p] = [p for p in stale["processes"] if p["pid"] == pid]
assert p["files"][0]["path"].endswith("/" + esc) and p["comm"] == "vi\\tc", p
PY
fi
ok "odd names are escaped in tables and JSON: $esc_name"

rm -f "$T/odd.ready"
wait "$P"
st=$?
[ "$st" -eq 0 ] || fail "the victim with the odd names $(describe_status "$st")"

# A name that really holds the four characters \012 (truncguard(1): "In maps
# text, the kernel writes a newline in a name as \012; a name that really
# contains those four characters is read as a newline there (PROCMAP_QUERY
# has no such ambiguity)"). Where the kernel answers PROCMAP_QUERY, stale does
# not take its victim for one whose file is missing; with --text-maps the
# name is read with a newline, a file that is not there: "missing".
if python3 -c '
import errno, fcntl, sys
buf = bytearray(104); buf[0] = 104   # struct procmap_query, its size first
try:
    fcntl.ioctl(open("/proc/self/maps"), (3 << 30) | (104 << 16) | (ord("f") << 8) | 17, buf)
except OSError as e:
    sys.exit(e.errno == errno.ENOTTY)'; then
  BS012=$T/$(printf 'lib\\012x.so')
  fresh_copy "$V1" "$BS012"
  _start_bg "$T/bs012.ready" "$T/bs012.out" "$TG_VICTIM" "$BS012" "$TG_VICTIM_MS" "$T/bs012.ready"
  P=$BG_PID
  rows=$("$TG_CMD" stale 2>/dev/null | awk -v p="$P" '$2 == p')
  [ -z "$rows" ] || fail "stale (PROCMAP_QUERY) lists the victim of a file named with a literal \\012, which is there: $rows"
  rows=$("$TG_CMD" stale --text-maps 2>/dev/null | awk -v p="$P" '$2 == p')
  [[ $rows == *" missing "*"$T/lib\nx.so" ]] || fail "stale --text-maps does not read the literal \\012 as a newline (missing): $rows"
  grep -E "^ +$P .* exec +current" <<<"$("$TG_CMD" who "$BS012" 2>/dev/null)" >/dev/null || fail "who does not list the victim of $BS012 as current"
  rm -f "$T/bs012.ready"
  wait "$P" || fail "the victim of $BS012 $(describe_status $?)"
  ok "a name with a literal \\012: not stale through PROCMAP_QUERY; read as a newline from the maps text (missing), as documented"
else
  note "no PROCMAP_QUERY here (before Linux 6.11): a literal \\012 in a name not tested"
fi

# A file whose name really ends in " (deleted)": the kernel's maps line is the
# same as for a deleted "lib.so". It is the file at its name, not stale, and
# not a replaced version of the other file "lib.so" beside it.
SUFFIXED="$T/lib.so (deleted)"
fresh_copy "$V1" "$SUFFIXED"
fresh_copy "$V2" "$T/lib.so"
_start_bg "$T/suffixed.ready" "$T/suffixed.out" "$TG_VICTIM" "$SUFFIXED" "$TG_VICTIM_MS" "$T/suffixed.ready"
P=$BG_PID
grep -qF "$SUFFIXED" "/proc/$P/maps" || fail "the victim does not map $SUFFIXED"
rows=$("$TG_CMD" stale 2>/dev/null | awk -v p="$P" '$2 == p')
[ -z "$rows" ] || fail "stale lists the victim running a file named \"lib.so (deleted)\", which is there: $rows"
out=$("$TG_CMD" who "$T/lib.so" 2>/dev/null)
awk -v p="$P" '$1 == p' <<<"$out" | grep -q . && fail "who $T/lib.so lists the victim of \"lib.so (deleted)\": $out"
out=$("$TG_CMD" who "$SUFFIXED" 2>/dev/null)
grep -E "^ +$P .* exec +current" <<<"$out" >/dev/null || fail "who \"$SUFFIXED\" does not list the victim as current: $out"
ok "a file named \"lib.so (deleted)\": not stale, not lib.so replaced, current for who"
rm -f "$T/suffixed.ready"
wait "$P" || fail "the victim of \"lib.so (deleted)\" $(describe_status $?)"

# NFS: a client renames a file that is unlinked or renamed over while in use
# to ".nfs" + 16 + 8 hex digits in its directory, and the maps name it so,
# without " (deleted)" ("silly rename"; fs/nfs/unlink.c). This kernel may
# have no NFS: the same rename by hand leaves the maps in the same state.
# The victim runs code that is gone from its name: stale lists it (it said
# nothing). Control: the same file renamed to an ordinary hidden name is a
# file at its name, not stale.
for hidden in .keep-lib.so .nfs00000000000000050000000f; do
  fresh_copy "$V1" "$T/nfslib.so"
  _start_bg "$T/nfs.ready" "$T/nfs.out" "$TG_VICTIM" "$T/nfslib.so" "$TG_VICTIM_MS" "$T/nfs.ready"
  P=$BG_PID
  mv "$T/nfslib.so" "$T/$hidden" && cp "$V2" "$T/nfslib.so" || fail "cannot rename $T/nfslib.so"
  grep -qF "$T/$hidden" "/proc/$P/maps" || fail "the victim's maps do not name $T/$hidden: $(grep nfslib "/proc/$P/maps")"
  rows=$("$TG_CMD" stale 2>/dev/null | awk -v p="$P" '$2 == p')
  if [ "$hidden" = .keep-lib.so ]; then
    [ -z "$rows" ] || fail "control: stale lists the victim running $hidden, a file at its name: $rows"
  else
    # (the WHY column is as wide as its widest row: another process's
    # "replaced" on this machine widens it)
    awk -v f="$T/$hidden" '$(NF - 1) == "deleted" && $NF == f' <<<"$rows" | grep -q . ||
      fail "stale does not list the victim (pid $P) running the NFS silly-renamed $hidden as deleted: $rows"
  fi
  rm -f "$T/nfs.ready"
  wait "$P" || fail "the victim of $hidden $(describe_status $?)"
  rm -f "$T/$hidden"
done
ok "an NFS silly-renamed library (.nfs + 24 hex digits) is stale, \"deleted\"; an ordinary hidden name is not"

# A file deeper than PATH_MAX (4096): realpath() can't name it, but it is
# there: who finds the process that maps it, by inode, as fuser does (it
# was an error: "cannot resolve its path: File name too long", exit 2).
deep=$T/deep
mkdir "$deep"
part=$(printf 'd%.0s' {1..200})
(
  cd "$deep" || exit 1
  for _ in $(seq 25); do mkdir "$part" && cd "$part" || exit 1; done
  cp "$V1" lib.so && "$TG_VICTIM" ./lib.so "$TG_VICTIM_MS" "$T/deep.ready"
) >"$T/deep.out" 2>&1 &
P=$!
_tg_pids+=("$P")
for ((i = 0; i < 500; i++)); do [ -e "$T/deep.ready" ] && break; sleep 0.01; done
[ -e "$T/deep.ready" ] || fail "the victim in the deep directory did not start: $(cat "$T/deep.out")"
V=$(pgrep -P "$P" -x victim) || V=$P
out=$(cd "$deep" && for _ in $(seq 25); do cd "$part" || exit 1; done && "$TG_CMD" who ./lib.so 2>&1)
st=$?
[ "$st" -eq 0 ] || fail "who on a file deeper than PATH_MAX exited $st, expected 0: $out"
grep -E "^ +$V .* exec +current" <<<"$out" >/dev/null || fail "who on a file deeper than PATH_MAX does not list the victim (pid $V): $out"
grep -qF "matched by inode only, an older file replaced at that name is not recognised" <<<"$out" ||
  fail "who on a file deeper than PATH_MAX does not say a replaced older file can't be recognised: $out"
ok "who on a file deeper than PATH_MAX: exit 0, the victim listed, and a note that a replaced older file is not recognised"
# In JSON, its path is as given (truncguard(7)), and it exists.
out=$(cd "$deep" && for _ in $(seq 25); do cd "$part" || exit 1; done && "$TG_CMD" who --json ./lib.so 2>/dev/null)
python3 -c '
import json, sys
[f] = json.loads(sys.argv[1])["files"]
assert f["file"] == "./lib.so" and f["path"] == "./lib.so" and f["exists"] is True, f
assert int(sys.argv[2]) in [p["pid"] for p in f["processes"]], f
' "$out" "$V" || fail "who --json on a file deeper than PATH_MAX: $out"
ok "who --json on a file deeper than PATH_MAX: its path as given, the victim listed"
rm -f "$T/deep.ready"
wait "$P" || fail "the victim in the deep directory $(describe_status $?)"

# who leaves itself out: the command maps its own executable (and libc),
# which says nothing about what other processes map. A copy of the command
# asked about itself, which nothing else runs: no process maps it (exit 1,
# or 3 where some can't be inspected), and never its own pid (the pid of the
# sh that execs it). Control: the same copy running as another process (a
# second `who`, held by a full pipe) is listed.
mkdir -p "$T/selfbin"
must cp "$TG_CMD" "$T/selfbin/truncguard"
SELF_CMD=$T/selfbin/truncguard
out=$(sh -c 'echo $$ >"$1"; exec "$0" who --json "$0"' "$SELF_CMD" "$T/self.pid" 2>/dev/null)
st=$?
self=$(cat "$T/self.pid")
grep -q "\"pid\":$self," <<<"$out" && fail "who lists itself (pid $self) as a process that maps its own executable: $out"
[ "$st" -eq 1 ] || [ "$st" -eq 3 ] || fail "who on its own executable, which nothing else runs, exited $st, expected 1 or 3: $out"
ok "who leaves itself out: asked about its own executable, which nothing else runs, exit $st, its pid not listed"
# Control: the copy running as another process (a `who` whose answer, over
# 64 KiB, waits for a reader that never comes) is listed.
mkfifo "$T/held"
"$SELF_CMD" who $(yes /etc/hostname | head -n 3000) >"$T/held" 2>/dev/null &
holder=$!
_tg_pids+=("$holder")
exec 5<"$T/held"   # opened for reading, never read: the holder blocks once the pipe is full
for ((i = 0; i < 500; i++)); do [ "$(readlink "/proc/$holder/exe")" = "$SELF_CMD" ] && break; sleep 0.01; done
out=$("$SELF_CMD" who --json "$SELF_CMD" 2>/dev/null)
st=$?
kill "$holder" 2>/dev/null
exec 5<&-
wait "$holder" 2>/dev/null
grep -q "\"pid\":$holder," <<<"$out" || fail "control: who does not list another process running the copy (pid $holder): $out"
[ "$st" -eq 0 ] || fail "control: who on the copy another process runs exited $st, expected 0: $out"
ok "control: the copy run by another process is listed (exit 0)"
