#!/bin/bash
# Secure execution (AT_SECURE) and the log settings, with truncguard in
# /etc/ld.so.preload (where ld.so loads it into setuid programs too). A
# setuid-root program that makes its real uid root as well (setuid(0), as
# su, mount helpers and many wrappers do) and runs a helper gives the helper
# no secure execution: the helper honoured the TRUNCGUARD_LOG the unprivileged
# caller had set, and created FILE.PID as root in a directory only root may
# write (/etc, say). ld.so removes LD_DEBUG_OUTPUT and LD_DEBUG from a
# setuid program's environment for this reason; truncguard now removes
# TRUNCGUARD_LOG and TRUNCGUARD_DEBUG, and ignores TRUNCGUARD_DEBUG's
# categories in the setuid program itself (a backtrace's addresses undo its
# ASLR), as glibc 2.36 ignores LD_DEBUG's. /etc is an overlay of its own in
# this test's mount namespace; the setuid program is a setuid copy of python.
# Nor does the setuid program take the caller's TRUNCGUARD_KEPT_FDS entry
# (which would have it close an fd the caller names).
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_root "mounts an overlay over /etc, runs a setuid-root program as nobody"
need_victims
need_shim
[ "${R_IN_MOUNT_NS:-}" = 1 ] || skip "no mount namespace of our own (unshare -m)"
as_nobody true || skip "no setpriv"
py=$(readlink -f /usr/bin/python3)  # the system's (PATH may have a pyenv script first)
[ -x "$py" ] || skip "no /usr/bin/python3"
nobody_copies
must cp "$py" "$T/bin/suid_py"
chmod 4755 "$T/bin/suid_py"
e=$(as_nobody "$T/bin/suid_py" -c "import os; print(os.geteuid())" 2>&1)
[ "$e" = 0 ] || skip "a setuid copy of python does not run as root here (a nosuid mount?): $e"
# With LD_PRELOAD (not /etc/ld.so.preload): ld.so loads no library from a
# path for a setuid program and removes LD_PRELOAD from what it passes on,
# so its helper's cp (sudo cp) is not protected (docs/guarantees.md, "What is
# not guaranteed"): the victim dies. Control: the same helper run by root.
LIB=$T/libvictim.so
for who in root nobody; do
  run=(); [ "$who" = nobody ] && run=(as_nobody)
  fresh_copy "$V1" "$LIB"
  chmod 644 "$LIB"
  start_victim "$LIB"
  "${run[@]}" env LD_PRELOAD="$TG_SHIM" "$T/bin/suid_py" -c \
    'import os, sys; sys.stdout.write(open("/proc/self/maps").read()); os.setuid(0); os.execv("/bin/sh", ["sh", "-c", sys.argv[1]])' \
    "env >'$T/env.out'; cp '$V2' '$LIB'" >"$T/maps.out" 2>"$T/err" || fail "the setuid program ($who) failed: $(cat -- "$T/err")"
  stop_victim
  if [ "$who" = root ]; then
    expect_survived "control: cp by a setuid program's helper run by root, LD_PRELOAD set"
    grep -q "^LD_PRELOAD=$TG_SHIM$" "$T/env.out" || fail "control: LD_PRELOAD not passed on by root: $(grep LD_PRELOAD "$T/env.out")"
  else
    expect_killed "cp by a setuid program's helper run by nobody, LD_PRELOAD set: not protected"
    ! grep -q "^LD_PRELOAD=" "$T/env.out" || fail "the setuid program passed on $(grep '^LD_PRELOAD=' "$T/env.out")"
    ! grep -q libtruncguard "$T/maps.out" || fail "ld.so preloaded the library into a setuid program run by nobody"
  fi
done
ok "LD_PRELOAD and a setuid program run by nobody: the library not loaded, LD_PRELOAD not passed on, its helper's cp not protected (control: run by root)"

mkdir -p "$T/etc-upper" "$T/etc-work"
r_mount -t overlay tg-etc -o "lowerdir=/etc,upperdir=$T/etc-upper,workdir=$T/etc-work" /etc
printf '%s\n' "$TG_SHIM_N" >/etc/ld.so.preload
ROOTONLY=$T/rootonly  # a directory only root may write
mkdir -m 755 "$ROOTONLY"
LIB=$T/libvictim.so
# The setuid program: becomes root through and through, then runs a shell
# that writes the environment it got and copies v2 over the library a victim
# runs (a write the shim protects, and logs by default).
helper='import os, sys; os.setuid(0); os.execv("/bin/sh", ["sh", "-c", sys.argv[1]])'
script="env >'$T/env.out'; cp '$V2' '$LIB'"

fresh_copy "$V1" "$LIB"
chmod 644 "$LIB"
start_victim "$LIB"
as_nobody env TRUNCGUARD_LOG="$ROOTONLY/log" TRUNCGUARD_DEBUG=decisions,backtrace \
  "$T/bin/suid_py" -c "$helper" "$script" 2>"$T/err" || fail "the setuid program failed: $(cat -- "$T/err")"
stop_victim
expect_survived "cp run by a setuid program's root helper"
cmp -s "$LIB" "$V2" || fail "the library does not hold v2"
made=$(ls -- "$ROOTONLY")
[ -z "$made" ] || fail "nobody's TRUNCGUARD_LOG made root create $ROOTONLY/$made: $(ls -l -- "$ROOTONLY")"
! grep -q '^TRUNCGUARD_LOG=\|^TRUNCGUARD_DEBUG=' "$T/env.out" ||
  fail "the setuid program passed on $(grep '^TRUNCGUARD_LOG=\|^TRUNCGUARD_DEBUG=' "$T/env.out" | tr '\n' ' ')"
grep -q "replaced file=$LIB " "$T/err" || fail "no replaced line on stderr (the shim did not act in the helper?): $(cat -- "$T/err")"
grep -q "warning: TRUNCGUARD_LOG ignored: secure execution" "$T/err" || fail "no warning about TRUNCGUARD_LOG: $(cat -- "$T/err")"
grep -q "warning: TRUNCGUARD_DEBUG ignored: secure execution" "$T/err" || fail "no warning about TRUNCGUARD_DEBUG: $(cat -- "$T/err")"
! grep -q "decision file=\|backtrace:" "$T/err" || fail "nobody's debug categories applied in a root process: $(cat -- "$T/err")"
ok "a setuid program's root helper: no log file made as root, TRUNCGUARD_LOG and TRUNCGUARD_DEBUG not passed on, the write protected, its line on stderr"

# In the setuid program itself (secure execution) the other settings apply
# (truncguard(7), LIMITS): its own write, TRUNCGUARD_MODE=unlink, is made in
# mode unlink, while TRUNCGUARD_LOG and the categories are ignored.
fresh_copy "$V1" "$LIB"
chmod 644 "$LIB"
start_victim "$LIB"
as_nobody env TRUNCGUARD_MODE=unlink TRUNCGUARD_LOG="$ROOTONLY/log" TRUNCGUARD_DEBUG=decisions \
  "$T/bin/suid_py" -c 'import sys; open(sys.argv[1], "wb").write(open(sys.argv[2], "rb").read())' "$LIB" "$V2" \
  2>"$T/err" || fail "the setuid program's own write failed: $(cat -- "$T/err")"
stop_victim
expect_survived "the setuid program's own write"
grep -q "replaced file=$LIB .*(mode unlink)" "$T/err" || fail "the setuid program's write was not made in mode unlink: $(cat -- "$T/err")"
! grep -q "decision file=" "$T/err" && [ -z "$(ls -- "$ROOTONLY")" ] ||
  fail "the setuid program applied TRUNCGUARD_LOG or the categories: $(cat -- "$T/err") $(ls -- "$ROOTONLY")"
ok "the setuid program's own write: TRUNCGUARD_MODE applies (mode unlink), TRUNCGUARD_LOG and the categories do not"

# Control: the same run by root (no secure execution) honours both.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
env TRUNCGUARD_LOG="$ROOTONLY/log" TRUNCGUARD_DEBUG=rewrites,decisions \
  "$T/bin/suid_py" -c "$helper" "$script" 2>"$T/err" || fail "control: the program failed: $(cat -- "$T/err")"
stop_victim
expect_survived "control, run by root"
grep -q '^TRUNCGUARD_LOG=' "$T/env.out" || fail "control: TRUNCGUARD_LOG not passed on"
grep -qs "replaced file=$LIB " "$ROOTONLY"/log.* || fail "control: no replaced line in $ROOTONLY/log.PID"
grep -qs "decision file=" "$ROOTONLY"/log.* || fail "control: no decision line in $ROOTONLY/log.PID"
ok "control: run by root, TRUNCGUARD_LOG and TRUNCGUARD_DEBUG apply and are passed on"

# In the setuid program the categories are ignored, but "help still works"
# (truncguard(7), as LD_DEBUG=help): the list, exit 0, the program not run.
out=$(as_nobody env TRUNCGUARD_DEBUG=help "$T/bin/suid_py" -c 'print("main ran")' 2>&1)
st=$?
[ "$st" -eq 0 ] && grep -q "^ *[0-9]*:	  rewrites " <<<"$out" && ! grep -q "main ran" <<<"$out" ||
  fail "TRUNCGUARD_DEBUG=help in a setuid program: exit $st: $out"
ok "TRUNCGUARD_DEBUG=help in a setuid program run by nobody: the list, exit 0, the program not run"

# A setgid program too ("Ignored in setuid and setgid programs"): python
# setgid root, run by nobody, could create FILE.PID in a directory its group
# may write; TRUNCGUARD_LOG is ignored there, with the warning. Control: the
# same directory taken by the same program run by root (no secure execution).
must cp "$py" "$T/bin/sgid_py"
must chmod 2755 "$T/bin/sgid_py"
GROUPONLY=$T/grouponly
mkdir -m 775 "$GROUPONLY"
g=$(as_nobody "$T/bin/sgid_py" -c "import os; print(os.getegid())" 2>/dev/null)
if [ "$g" = 0 ]; then
  # (os._exit: no atexit handlers, so a sanitizer build's LeakSanitizer, which
  # can't run in a process that is not dumpable, does not run.)
  as_nobody env TRUNCGUARD_LOG="$GROUPONLY/log" TRUNCGUARD_MODE=bogus "$T/bin/sgid_py" -c 'import os; os._exit(0)' 2>"$T/err" ||
    fail "the setgid program failed: $(cat -- "$T/err")"
  [ -z "$(ls -- "$GROUPONLY")" ] || fail "nobody's TRUNCGUARD_LOG made a setgid program create $(ls -- "$GROUPONLY")"
  grep -q "warning: TRUNCGUARD_LOG ignored: secure execution" "$T/err" || fail "setgid: no warning about TRUNCGUARD_LOG: $(cat -- "$T/err")"
  env TRUNCGUARD_LOG="$GROUPONLY/log" TRUNCGUARD_MODE=bogus "$T/bin/sgid_py" -c 'import os; os._exit(0)' 2>"$T/err" ||
    fail "control: the setgid program run by root failed: $(cat -- "$T/err")"
  grep -qs "warning: unknown TRUNCGUARD_MODE=bogus" "$GROUPONLY"/log.* || fail "control: no log file made by root's run: $(ls -- "$GROUPONLY")"
  ok "a setgid program run by nobody: TRUNCGUARD_LOG ignored, with the warning (control: run by root, the file made)"
else
  note "setgid: skipped (a setgid copy of python does not run with group root here: $g)"
fi

# A program with file capabilities runs under secure execution too: the
# warning names that kind (it said "setuid/setgid program" of it).
must cp "$py" "$T/bin/cap_py"
if command -v setcap >/dev/null && setcap cap_net_raw+ep "$T/bin/cap_py" 2>/dev/null; then
  as_nobody env TRUNCGUARD_LOG="$T/caplog" "$T/bin/cap_py" -c 'pass' 2>"$T/err" ||
    fail "the file-capabilities program failed: $(cat -- "$T/err")"
  grep -q "warning: TRUNCGUARD_LOG ignored: secure execution (a setuid, setgid or file-capabilities program)" "$T/err" ||
    fail "file capabilities: no warning that names the kind of program: $(cat -- "$T/err")"
  ok "a program with file capabilities run by nobody: TRUNCGUARD_LOG ignored, and the warning names file capabilities"
else
  note "file capabilities: skipped (no setcap, or $T holds no security.capability)"
fi

# The hand-over of the fds kept on locked files (TRUNCGUARD_KEPT_FDS) is not
# taken under secure execution either: the environment is the caller's. An
# entry naming the setuid program's stdin (a file nobody opened, at the
# entry's offset mark) left it open, as without the entry; taken, the shim
# made it close-on-exec and closed it. Control: the same entry given by root
# (no secure execution) is taken, and stdin closed.
kept_fds_entry() {  # kept_fds_entry RUNNER...: prints what the setuid program finds at fd 0
  "$@" "$py" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
mark = (1 << 32) + 5
os.lseek(fd, mark, os.SEEK_SET)
os.dup2(fd, 0)
st = os.fstat(0)
env = dict(os.environ, TRUNCGUARD_KEPT_FDS="%d:0,%d,%d" % (mark, st.st_dev, st.st_ino))
probe = "import os\ntry:\n    os.fstat(0)\n    print(\"stdin open\")\nexcept OSError:\n    print(\"stdin closed\")"
os.execve(sys.argv[2], [sys.argv[2], "-c", probe], env)' "$T/stdin.txt" "$T/bin/suid_py"
}
echo text >"$T/stdin.txt"
chmod 644 "$T/stdin.txt"
got=$(kept_fds_entry env 2>"$T/kept.err")
[ "$got" = "stdin closed" ] || fail "control: root's TRUNCGUARD_KEPT_FDS entry naming stdin: $got $(cat "$T/kept.err")"
got=$(kept_fds_entry as_nobody 2>"$T/kept.err")
[ "$got" = "stdin open" ] || fail "nobody's TRUNCGUARD_KEPT_FDS entry, in a setuid program: $got $(cat "$T/kept.err")"
ok "a TRUNCGUARD_KEPT_FDS entry naming stdin: taken from root (stdin closed), not in a setuid program run by nobody"

# Nor does the setuid program adopt the caller's TRUNCGUARD_PENDING entry
# (an atomic-mode hand-over, e2e pending_env): the environment is the
# caller's, who must not make it publish a file at a name of the caller's
# choosing. Root makes an unnamed file of root's (the setuid program's
# euid) in a directory of its own, puts it and the directory at fds 7 and 8
# with an entry naming $T/pending/target, and execs the setuid program: as
# root (no secure execution, the control: adopted, published at the
# program's exit) and after becoming nobody (secure execution: not adopted,
# the target left as it was).
pending_entry() {  # pending_entry root|nobody: what the target holds after the setuid program ran
  echo precious >"$T/pending/target"
  "$py" -c '
import os, sys
d, who, prog = sys.argv[1:4]
fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o644)
os.write(fd, b"new\n")
os.dup2(fd, 7)
os.dup2(os.open(d, os.O_RDONLY | os.O_DIRECTORY), 8)
entry = "7:8:%d:%s:%s;" % (os.stat(d + "/target").st_ino, b"target".hex(), (d + "/target").encode().hex())
if who == "nobody":
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
os.execve(prog, [prog, "-c", "pass"], dict(os.environ, TRUNCGUARD_PENDING=entry))' "$T/pending" "$1" "$T/bin/suid_py" ||
    fail "the setuid program, run by $1 with a TRUNCGUARD_PENDING entry, failed"
  cat "$T/pending/target"
}
mkdir -m 755 "$T/pending"
[ "$(pending_entry root)" = new ] || fail "control: root's TRUNCGUARD_PENDING entry was not adopted by the program it runs"
[ "$(pending_entry nobody)" = precious ] ||
  fail "nobody's TRUNCGUARD_PENDING entry was adopted by a setuid program: target holds $(cat "$T/pending/target")"
ok "a TRUNCGUARD_PENDING entry: adopted from root (published), not in a setuid program run by nobody"
