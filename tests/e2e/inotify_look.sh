#!/bin/bash
# README, "What its look at a file shows to others", inotify: what a watcher
# of the file or of its directory sees of truncguard's look and of a
# replacement (each claim had no test):
#  - an ELF file nobody maps, written by cp (O_TRUNC): the look's OPEN,
#    ACCESS, CLOSE_NOWRITE just before the writer's own OPEN, MODIFY,
#    CLOSE_WRITE. Control: without truncguard, the writer's events alone;
#  - a text file under 52 bytes, an append (`>>`) to the ELF file and an
#    O_EXCL creation over it: the same events as without truncguard (no look);
#  - an O_RDWR open (`1<>`): of a text file, one open (the look is through
#    the program's fd); of an ELF file, that fd's open and close
#    (CLOSE_WRITE), then the look by name, then the write;
#  - an ftruncate of a write-only fd (O_WRONLY|O_APPEND): the look's ACCESS
#    and CLOSE_NOWRITE, from its reopen through /proc/self/fd;
#  - a POSIX lock held on the file: the look's CLOSE_NOWRITE at the
#    program's own close, after the write;
#  - a library a victim runs, replaced: the watch on the old inode sees its
#    ATTRIB (the link count) and none of the new content (no MODIFY); the
#    directory's watch sees CREATE, OPEN, ATTRIB of .NAME.tg-..., then
#    MOVED_FROM of it and MOVED_TO NAME, then MODIFY and CLOSE_WRITE of NAME.
. "$(dirname "$0")/lib.sh"
need_victims
command -v inotifywait >/dev/null || skip "no inotifywait (Debian package inotify-tools; scripts/setup.sh installs it)"

LIB=$T/lib/libvictim.so
mkdir "$T/lib" || fail "mkdir"

# watch PATH CMD...: the inotify events on PATH while CMD runs, one a line
# ("EVENTS NAME"), in $T/events.
watch() {
  local path=$1 w i
  shift
  rm -f -- "$T/inotify.err"
  inotifywait -m --format '%e %f' "$path" >"$T/events" 2>"$T/inotify.err" &
  w=$!
  _tg_pids+=("$w")
  for i in $(seq 200); do grep -q 'Watches established' "$T/inotify.err" 2>/dev/null && break; sleep 0.05; done
  grep -q 'Watches established' "$T/inotify.err" || fail "inotifywait did not start: $(cat "$T/inotify.err")"
  "$@" >/dev/null || fail "$* failed"
  sleep 0.3
  kill "$w"
  wait "$w" 2>/dev/null
}
# events: the kinds seen, in order, a repeat as one (inotify merges an event
# with the same one queued before it, if that was not read yet).
events() { cut -d' ' -f1 "$T/events" | uniq | tr '\n' ' '; }

# ---- an ELF file nobody maps: the look, then the writer's own events.
fresh_copy "$V1" "$LIB"
watch "$LIB" cp "$V2" "$LIB"
ev=$(events)
case $ev in OPEN\ MODIFY*) ;; *) fail "control: cp without truncguard: $ev" ;; esac
ok "control: cp without truncguard: $ev"
fresh_copy "$V1" "$LIB"
watch "$LIB" "$TG_CMD" cp "$V2" "$LIB"
ev=$(events)
case $ev in OPEN\ ACCESS\ CLOSE_NOWRITE,CLOSE\ OPEN\ MODIFY*CLOSE_WRITE,CLOSE\ ) ;;
  *) fail "cp under truncguard: expected the look's OPEN ACCESS CLOSE_NOWRITE, then cp's OPEN MODIFY ... CLOSE_WRITE: $ev" ;; esac
ok "cp under truncguard: $ev"

# ---- no look: a file under 52 bytes, an append.
printf 'small text\n' >"$T/lib/small.txt"
watch "$T/lib/small.txt" sh -c 'echo new >"$1"' _ "$T/lib/small.txt"
control=$(events)
watch "$T/lib/small.txt" "$TG_CMD" sh -c 'echo new >"$1"' _ "$T/lib/small.txt"
ev=$(events)
[ "$ev" = "$control" ] || fail "a write of a file under 52 bytes: under truncguard \"$ev\", without \"$control\""
ok "a write of a file under 52 bytes: the same events as without truncguard ($ev)"
fresh_copy "$V1" "$LIB"
watch "$LIB" sh -c 'echo x >>"$1"' _ "$LIB"
control=$(events)
fresh_copy "$V1" "$LIB"
watch "$LIB" "$TG_CMD" sh -c 'echo x >>"$1"' _ "$LIB"
ev=$(events)
[ "$ev" = "$control" ] || fail "an append to an ELF file: under truncguard \"$ev\", without \"$control\""
ok "an append to an ELF file: the same events as without truncguard ($ev)"
# An O_EXCL creation over the existing ELF file (EEXIST): nothing at all.
excl() { "$@" python3 -c '
import os, sys
try:
    os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_TRUNC)
except FileExistsError:
    sys.exit(0)
sys.exit(1)' "$LIB"; }
fresh_copy "$V1" "$LIB"
watch "$LIB" excl env
control=$(events)
watch "$LIB" excl "$TG_CMD"
ev=$(events)
[ -z "$ev" ] && [ -z "$control" ] || fail "an O_EXCL creation over an ELF file: under truncguard \"$ev\", without \"$control\""
ok "an O_EXCL creation over an ELF file: no event, as without truncguard"

# ---- an O_RDWR open (`1<>`), looked at through the program's own fd: a
# text file shows that one open, the look's read, the write (no second
# open); a file that may be code (an ELF file nobody maps) has that fd
# closed and is looked at by name: the watcher sees that open and close
# (OPEN, CLOSE_WRITE) before the look's and the write's own.
printf 'a text file of more than fifty-two bytes, which is not ELF\n' >"$T/lib/text.txt"
watch "$T/lib/text.txt" "$TG_CMD" sh -c 'printf X 1<>"$1"' _ "$T/lib/text.txt"
ev=$(events)
[ "$ev" = "OPEN ACCESS MODIFY CLOSE_WRITE,CLOSE " ] ||
  fail "1<> of a text file under truncguard: expected one open, the look's read, the write: $ev"
ok "1<> of a text file under truncguard: $ev"
fresh_copy "$V1" "$LIB"
watch "$LIB" "$TG_CMD" sh -c 'printf X 1<>"$1"' _ "$LIB"
ev=$(events)
case $ev in OPEN\ ACCESS\ CLOSE_WRITE,CLOSE\ OPEN\ ACCESS\ CLOSE_NOWRITE,CLOSE\ OPEN\ MODIFY\ CLOSE_WRITE,CLOSE\ ) ;;
  *) fail "1<> of an ELF file under truncguard: expected its fd closed (CLOSE_WRITE), the look by name, the write: $ev" ;; esac
ok "1<> of an ELF file under truncguard: $ev"

# ---- an ftruncate of a write-only fd (O_WRONLY|O_APPEND: its open passed,
# unread), of a text file: the look reopens it through /proc/self/fd, so
# the same ACCESS and CLOSE_NOWRITE show before the truncation's MODIFY
# (its OPEN merges with the program's, the same event queued just before).
ftrunc() { "$@" python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND); os.ftruncate(fd, 10); os.close(fd)' "$T/lib/text.txt"; }
printf 'a text file of more than fifty-two bytes, which is not ELF\n' >"$T/lib/text.txt"
watch "$T/lib/text.txt" ftrunc env
ev=$(events)
[ "$ev" = "OPEN MODIFY CLOSE_WRITE,CLOSE " ] || fail "control: ftruncate of an append-only fd without truncguard: $ev"
printf 'a text file of more than fifty-two bytes, which is not ELF\n' >"$T/lib/text.txt"
watch "$T/lib/text.txt" ftrunc "$TG_CMD"
ev=$(events)
[ "$ev" = "OPEN ACCESS CLOSE_NOWRITE,CLOSE MODIFY CLOSE_WRITE,CLOSE " ] ||
  fail "ftruncate of an append-only fd under truncguard: expected the look's ACCESS, CLOSE_NOWRITE before the MODIFY: $ev"
ok "ftruncate of an append-only fd under truncguard: $ev"

# ---- a POSIX lock held on the file: the look's fd is kept (its close would
# release the lock), and its CLOSE_NOWRITE comes at the program's own close
# of an fd on the file, after the write. The program: an O_RDWR fd locked
# (lockf), an O_WRONLY|O_TRUNC open, a write, the close of each.
locked() { "$@" python3 -c '
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
t = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.write(t, b"new")
os.close(t)
os.close(fd)' "$T/lib/text.txt"; }
printf 'a text file of more than fifty-two bytes, which is not ELF\n' >"$T/lib/text.txt"
watch "$T/lib/text.txt" locked "$TG_CMD"
ev=$(events)
case $ev in
  *CLOSE_NOWRITE*MODIFY*) fail "a locked file: the look's CLOSE_NOWRITE came before the write: $ev" ;;
  *MODIFY\ CLOSE_WRITE,CLOSE\ CLOSE_NOWRITE,CLOSE\ CLOSE_WRITE,CLOSE\ ) ;;
  *) fail "a locked file: expected the look's CLOSE_NOWRITE at the program's first close: $ev" ;;
esac
ok "a locked file under truncguard: the look's fd closed at the program's close: $ev"

# ---- a library in use, replaced.
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
watch "$LIB" "$TG_CMD" cp "$V2" "$LIB"
stop_victim
expect_survived "cp over a library in use, its inode watched"
[ "$(inode "$LIB")" != "$old" ] || fail "the library was not replaced"
ev=$(events)
case $ev in *ATTRIB*) ;; *) fail "the watch on the old inode saw no ATTRIB: $ev" ;; esac
case $ev in *MODIFY* | *CLOSE_WRITE*) fail "the watch on the old inode saw a write: $ev" ;; esac
ok "the watch on the replaced inode: $ev"

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
watch "$T/lib" "$TG_CMD" cp "$V2" "$LIB"
stop_victim
expect_survived "cp over a library in use, its directory watched"
# The directory's events, in order, with the temp name as TEMP.
seq=$(sed -n 's/^\([A-Z_,]*\) \.libvictim\.so\.tg-[0-9A-Za-z]\{12\}$/\1 TEMP/p; s/^\([A-Z_,]*\) libvictim\.so$/\1 NAME/p' "$T/events" | tr '\n' ';')
expected='CREATE TEMP;OPEN TEMP;ATTRIB TEMP;MOVED_FROM TEMP;MOVED_TO NAME;MODIFY NAME;CLOSE_WRITE,CLOSE NAME;'
# Only the order of those events is claimed: take the first of each, in turn.
got=$(echo "$seq" | tr ';' '\n' | awk -v want="$expected" '
  BEGIN { n = split(want, w, ";"); i = 1 }
  i < n && $0 == w[i] { printf "%s;", $0; i++ }')
[ "$got" = "$expected" ] ||
  fail "the directory's watch: expected, in order, $expected; got $(tr '\n' ';' <"$T/events")"
ok "the directory's watch: $got"
