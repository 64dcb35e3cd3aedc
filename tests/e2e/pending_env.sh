#!/bin/bash
# The hand-over of atomic-mode files across exec travels in the environment
# (TRUNCGUARD_PENDING). Nobody may use it to make a process rename a file of
# their choosing: only unnamed inodes are adopted, and never in setuid programs.
. "$(dirname "$0")/lib.sh"
need_shim
echo "precious" >"$T/target"
echo "attacker" >"$T/payload"
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
# fd 7: a named file; fd 8: the directory. Claim fd 7 should become "target".
entry="7:8:1:$(hex target):$(hex "$T/target");"
# (Open before the exec, so that they are there when the shim starts.) The
# fds an entry names may be the program's own: one it does not adopt, it
# leaves alone (it closed fd 8, or made it close-on-exec: the program's
# child, /usr/bin/test, did not find it).
bash -c 'exec 7<"$1" 8<"$2"; LD_PRELOAD=$3 TRUNCGUARD_PENDING=$4 exec bash -c "/usr/bin/test -d /proc/self/fd/8"' \
  _ "$T/payload" "$T" "$TG_SHIM" "$entry" || fail "the program lost its fd 8, which the entry named as the directory"
[ "$(cat "$T/target")" = "precious" ] || fail "a named file handed in TRUNCGUARD_PENDING was published over target"
ok "a named (not unnamed) inode in TRUNCGUARD_PENDING is never published, and the fds the entry names stay the program's"
# The variable is not passed on to the program's children.
out=$(LD_PRELOAD=$TG_SHIM TRUNCGUARD_PENDING="garbage;;:::" bash -c 'printenv TRUNCGUARD_PENDING || echo unset')
[ "$out" = "unset" ] || fail "TRUNCGUARD_PENDING was passed on: $out"
ok "malformed TRUNCGUARD_PENDING is ignored and removed from the environment"

# ---- An entry written by hand, or left in an environment copied from
# another program, may name an fd twice, an fd that is not on its file (the
# program's stdin), or a file twice. The program's own unnamed file at fd 7,
# its directory at fd 8; the program closes fd 7, then fd 0, then exits.
# Each fd the entry names is adopted only if it is on that file, once: an fd
# of the program's own (0) was given the file's end, so its close(0) failed
# with EBADF and the file was lost; "7,7" lost it at the close of fd 7; a
# repeated entry logged a failed publication ("the directory's fd was closed").
PY3=${PY3:-/usr/bin/python3}
[ -x "$PY3" ] || skip "needs $PY3"
echo "precious" >"$T/target"
hand_set() {  # ENTRY [WRAPPER...]: prints what the program's close(0) said
  "${@:2}" "$PY3" - "$T" "$1" "$TG_SHIM" <<'PY' || fail "python could not run the program"
import os, subprocess, sys
d, entry, shim = sys.argv[1:]
fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o644)
os.write(fd, b"new\n")
os.dup2(fd, 7)
os.dup2(os.open(d, os.O_RDONLY | os.O_DIRECTORY), 8)
entry = entry.replace("INO", str(os.stat(d + "/target").st_ino))
prog = "import os\nos.close(7)\ntry:\n os.close(0); print('closed')\nexcept OSError as e: print(e)"
env = dict(os.environ, LD_PRELOAD=shim, TRUNCGUARD_PENDING=entry)
sys.exit(subprocess.run([sys.executable, "-c", prog], env=env, pass_fds=(7, 8)).returncode)
PY
}
# hand_set_closed ENTRY [WRAPPER...]: hand_set, target holding "precious"
# and the log empty before; the program's close(0) must succeed.
hand_set_closed() {
  echo "precious" >"$T/target"
  log_reset
  said=$(hand_set "$@")
  [ "$said" = closed ] || fail "entry $1: the program's close(0) failed: $said"
}
one="7:8:INO:$(hex target):$(hex "$T/target");"
for entry in "7,0${one#7}" "7,7${one#7}" "$one$one"; do
  hand_set_closed "$entry"
  [ "$(cat "$T/target")" = "new" ] || fail "entry $entry: the program's file was not published: $(cat "$T/target")"
  expect_log "published file=$T/target [ino "
  expect_no_log "cannot protect"
done
ok "an entry naming an fd twice, an fd not on its file, or its file twice: the program's fds stay its own, the file is published once"

# ---- An entry's OLD_INO ends with `s` where the file is synced: a file its
# writer synced and then handed over at an exec is published with its
# directory synced, as the writer's own close would have (the mark was lost
# at the exec: no directory fsync, and a crash after the new program's close
# could still show the old file; reliability crash_durability shows that).
# Seen here as the fsync of the directory after the rename (strace): with the
# `s`, not without (an entry from a build before the mark, adopted unsynced,
# as that build would have it). A suffix, not a field: a build before it
# reads the inode with strtoul and adopts the entry. Anything else after the
# digits, or a field more, is not an entry: nothing adopted, the program's
# fds left as they were, the file not published.
# dir_syncs ENTRY: the program's fsyncs of $T, the file published.
dir_syncs() {
  hand_set_closed "$1" strace -f -qq -y -e trace=fsync -o "$T/strace.out"
  [ "$(cat "$T/target")" = "new" ] || fail "entry $1: the program's file was not published: $(cat "$T/target")"
  expect_log "published file=$T/target [ino "
  grep -c "fsync([0-9]*<$T>) = 0" "$T/strace.out"
}
if command -v strace >/dev/null; then
  [ "$(dir_syncs "${one/:INO:/:INOs:}")" = 1 ] || fail "a synced file handed over: its publication did not sync the directory once: $(cat "$T/strace.out")"
  [ "$(dir_syncs "$one")" = 0 ] || fail "a file not synced, handed over: its publication synced the directory: $(cat "$T/strace.out")"
  ok "an entry's synced mark: a file handed over synced is published with its directory synced, one not synced without"
else
  note "SKIP the synced mark: strace is not installed"
fi
for entry in "${one/:INO:/:INOx:}" "${one/:INO:/:INOss:}" "${one/:INO:/:s:}" "${one%;}:s;"; do
  hand_set_closed "$entry"
  [ "$(cat "$T/target")" = "precious" ] || fail "entry $entry (not one of ours) was adopted: target holds $(cat "$T/target")"
  [ -z "$(tg_log)" ] || fail "entry $entry (not one of ours): the program logged: $(tg_log)"
done
ok "an entry with something else than one \`s' after its inode, or with a field more, is not adopted; the program's fds stay its own"
# Numbers that do not fit are no entry of ours either: atoi read fd
# 4294967303 as 7 (and 4294967304 as the directory's 8), so these were
# adopted and published; an inode number that overflows was read as
# ULONG_MAX, and the entry adopted too.
for entry in "4294967303${one#7}" "7:4294967304${one#7:8}" "${one/:INO:/:99999999999999999999999:}"; do
  hand_set_closed "$entry"
  [ "$(cat "$T/target")" = "precious" ] || fail "entry $entry (numbers that do not fit) was adopted: target holds $(cat "$T/target")"
  [ -z "$(tg_log)" ] || fail "entry $entry (numbers that do not fit): the program logged: $(tg_log)"
done
ok "an entry whose fd, directory fd or inode number does not fit is not adopted"

# ---- Another user's environment and fds (sudo -E, a service's environment
# file, a launcher that passes both on): nobody makes an unnamed file
# (O_TMPFILE) of theirs and a directory of root's the fds of a root process
# whose TRUNCGUARD_PENDING names them. Root must not link nobody's file over
# root's. (It did: the entry's fd was an unnamed inode, so root published it
# at exit, and root's file held nobody's content.)
PY=/usr/bin/python3  # the system's: nobody may run it
if [ "$(id -u)" -ne 0 ] || [ ! -x "$PY" ] || ! as_nobody true; then
  note "SKIP the other user's hand-over: needs root, $PY and setpriv"
  exit 0
fi
must mkdir -m 0755 "$T/root" "$T/nobody"
must chown 65534:65534 "$T/nobody"
echo "precious" >"$T/root/target"
# nobody's unnamed file, held open by a process of theirs (its pid and fd on stdout).
coproc TMPFILE { as_nobody "$PY" -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_TMPFILE | os.O_WRONLY, 0o644)
os.write(fd, b"attacker\n")
print(os.getpid(), fd, flush=True)
time.sleep(30)' "$T/nobody"; }
_tg_pids+=("$TMPFILE_PID")
read -r npid nfd <&"${TMPFILE[0]}" || fail "nobody's O_TMPFILE could not be made"
_tg_pids+=("$npid")  # python itself, not only its shell
entry="7:8:$(inode "$T/root/target"):$(hex target):$(hex "$T/root/target");"
# root_hands_over ENTRY: root's program, with an unnamed file of its own at
# fd 7 and $T/root at fd 8, execs /bin/true with ENTRY in TRUNCGUARD_PENDING.
root_hands_over() {
  "$PY" - "$T/root" "$1" "$TG_SHIM" <<'PY' || fail "python could not exec"
import os, sys
d, entry, shim = sys.argv[1:]
fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o644)
os.write(fd, b"root's own\n")
os.dup2(fd, 7)
os.dup2(os.open(d, os.O_RDONLY | os.O_DIRECTORY), 8)
env = {k: v for k, v in os.environ.items() if k == "ASAN_OPTIONS"}  # (an ASan build of the shim)
os.execve("/bin/true", ["true"], dict(env, LD_PRELOAD=shim, TRUNCGUARD_PENDING=entry))
PY
}
# Control: the shim's own publication through such fds works (the same entry,
# an unnamed file root made itself) -- so the refusal below is the owner check.
root_hands_over "$entry"
[ "$(cat "$T/root/target")" = "root's own" ] ||
  fail "control: root's own unnamed file handed over in TRUNCGUARD_PENDING was not published (\"$(cat "$T/root/target")\")"
ok "control: root's own unnamed file in TRUNCGUARD_PENDING is published at exit"
# The same with a BASE that is a path: the temp name (".BASE.tg-...", here
# $T/root/./..$T/target.tg-..., which the directory made below lets exist)
# was renamed to BASE itself, /..$T/target: out of the directory.
echo "precious" >"$T/target"
must mkdir -p "$T$T"
root_hands_over "7:8:1:$(hex "/..$T/target"):$(hex "$T/target");"
[ "$(cat "$T/target")" = "precious" ] || fail "an entry whose name is a path (/..$T/target) published outside its directory"
ok "an entry whose name is a path is not adopted"
echo "precious" >"$T/root/target"
bash -c 'exec 7<"/proc/$1/fd/$2" 8<"$3"; exec env -i ASAN_OPTIONS="${ASAN_OPTIONS:-}" LD_PRELOAD="$4" TRUNCGUARD_PENDING="$5" /bin/true' \
  _ "$npid" "$nfd" "$T/root" "$TG_SHIM" "$entry" || fail "root's program failed"
[ "$(cat "$T/root/target")" = "precious" ] ||
  fail "nobody's unnamed file, handed to root in TRUNCGUARD_PENDING, was linked over root's file: $(stat -c '%U %n' "$T/root/target"): $(cat "$T/root/target")"
ok "another user's unnamed file in TRUNCGUARD_PENDING is never published by root"

# What root's own hand-over becomes now: a file whose new inode has the old
# file's other owner (chown'd to it) is not handed over, but published at the
# exec, with a note, and the program exec'ed writes on into it at the name.
LIB=$T/root/lib.so
must cp "$TG_LIB_V1" "$LIB"
must chown 1234:1234 "$LIB"
old=$(inode "$LIB")
log_reset
"$TG_CMD" -m atomic --scope=elf bash -c 'exec >"$1"; exec cat "$2"' _ "$LIB" "$TG_LIB_V2" ||
  fail "atomic, root writing a file of uid 1234 through exec: failed"
[ "$(inode "$LIB")" != "$old" ] && cmp -s "$LIB" "$TG_LIB_V2" ||
  fail "atomic, root writing a file of uid 1234 through exec: the name holds $(stat -c %s "$LIB") bytes at inode $(inode "$LIB") (was $old), not v2"
[ "$(stat -c %u:%g "$LIB")" = 1234:1234 ] || fail "the new file is owned by $(stat -c %u:%g "$LIB"), not 1234:1234"
expect_log "note file=$LIB is published at exec" "the old file's owner, another user"
ok "atomic, root writing a file of uid 1234 through exec: published at the exec, v2 at the name, owner kept"

# An exec that fails after the hand-over was prepared (bash's `execfail`: the
# program goes on) must leave the directory fd kept for the publication
# close-on-exec again: it stayed open across every later exec, and each
# program bash started (ls here) held the directory open. The file is still
# published at bash's own close.
LIB=$T/execfail/lib.so
must mkdir "$T/execfail"
must cp "$TG_LIB_V1" "$LIB"
# held CMD...: how many fds of the child ls point at $T/execfail.
held() {
  "$@" bash -c 'shopt -s execfail; exec 3>"$1"; exec /nonexistent/program 2>/dev/null
                ls -l /proc/self/fd/ | grep -c " -> $2\$"; cat "$3" >&3; exec 3>&-' \
    _ "$LIB" "$T/execfail" "$TG_LIB_V2"
}
[ "$(held env)" = 0 ] || fail "control: without truncguard a child of bash holds $T/execfail open"
log_reset
[ "$(held "$TG_CMD" -m atomic --scope=elf)" = 0 ] ||
  fail "after a failed exec, the directory fd kept for the hand-over reached bash's next child (ls)"
cmp -s "$LIB" "$TG_LIB_V2" || fail "after a failed exec, the file was not published at bash's close"
expect_log "published file=$LIB [ino " "(mode atomic): the writer closed it"
ok "a failed exec leaves the hand-over's directory fd close-on-exec again; the file is published at the close"
