#!/bin/bash
# The truncguard command and the shim across exec, at their edges: the
# wrapped command's status and arguments, LD_PRELOAD and settings handed to
# it, the children it starts (which ones stay protected, which can't), the
# atomic-mode hand-over at exec, and who/stale with odd arguments.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
LIB=$T/libvictim.so
export V2 LIB
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

# ---- Atomic mode: the hand-over variable never reaches a grandchild.
# bash defines its own getenv/unsetenv (for its variable table), so the
# shim's unsetenv in bash's constructor removed nothing: every program bash
# started got TRUNCGUARD_PENDING and adopted fds that were not its own, and
# its exit logged "cannot protect ... the new content is lost" (it was not).
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
log_reset
leak=$("$TG_CMD" -m atomic --scope=elf bash -c \
  'exec >"$LIB"; exec bash -c "LD_PRELOAD= printenv TRUNCGUARD_PENDING >&2; cat \"\$V2\"; true"' 2>&1) ||
  fail "the atomic writer through bash failed: $leak"
[ -z "$leak" ] || fail "bash passed the hand-over on to its child: TRUNCGUARD_PENDING=$leak"
expect_no_log "cannot protect"
[ "$(inode "$LIB")" != "$old" ] && cmp -s "$LIB" "$V2" || fail "the file handed over to bash was not published as v2"
ok "atomic hand-over to bash: published once, by bash; its children neither see nor adopt it"

# An entry whose directory fd is not an open directory in the new image (a
# stale copy of the variable: the fd closed, or another file at its number)
# is not adopted: no publication, and no error line about it.
for dirfd in closed file; do
  echo old >"$T/target"
  log_reset
  python3 - "$T" "7:9:1:$(hex target):$(hex "$T/target");" "$TG_SHIM" "$dirfd" <<'PY' || fail "python could not exec"
import os, sys
d, entry, shim, dirfd = sys.argv[1:]
fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o644)   # an unnamed inode at fd 7
os.write(fd, b"forged\n")
os.dup2(fd, 7)
try:
    os.close(9)
except OSError:
    pass
if dirfd == "file":
    os.dup2(os.open(d + "/target", os.O_RDONLY), 9)  # fd 9: a regular file
os.execve("/bin/true", ["true"], dict(os.environ, LD_PRELOAD=shim, TRUNCGUARD_PENDING=entry))
PY
  [ "$(cat "$T/target")" = old ] || fail "a stale hand-over entry (directory fd $dirfd) was published over target"
  [ -z "$(tg_log)" ] || fail "a stale hand-over entry (directory fd $dirfd): the program logged: $(tg_log)"
done
ok "a hand-over entry whose directory fd is closed, or a file, is ignored quietly"

# ---- A child started with an environment without LD_PRELOAD runs without
# the library, and truncguard does not put it back (docs/guarantees.md, "What
# is not guaranteed"): under truncguard, python's subprocess.run(env={...})
# of cp over a library a victim runs kills the victim, as env -i cp does;
# control: the same subprocess.run with the environment inherited.
for how in 'env={"PATH": os.environ["PATH"]}' 'env=None' 'env-i'; do
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  if [ "$how" = env-i ]; then
    "$TG_CMD" env -i PATH="$PATH" cp "$V2" "$LIB" || fail "env -i cp under truncguard failed"
  else
    "$TG_CMD" python3 -c "import os, subprocess, sys; subprocess.run(['cp', sys.argv[1], sys.argv[2]], check=True, $how)" "$V2" "$LIB" ||
      fail "subprocess.run($how) of cp under truncguard failed"
  fi
  stop_victim
  if [ "$how" = env=None ]; then
    expect_survived "control: subprocess.run(env=None) of cp under truncguard"
  else
    expect_killed "$how of cp under truncguard: the child runs without the library"
  fi
done
ok "a child given an environment without LD_PRELOAD (subprocess.run(env={...}), env -i) is not protected; with it inherited, it is"

# ---- Atomic mode: a pending file is handed over at exec only to a program
# that will load the shim. One exec'ed with an environment that does not
# preload it (env -i, env -u LD_PRELOAD, an envp of the program's own) was
# handed the file anyway, and nothing ever published it: the writer exited 0
# and the name kept the old file. Now it is published at that exec (a note
# says so) and the program writes on into it at the name.
for how in 'env -i /bin/cat "$V2"' 'env -u LD_PRELOAD cat "$V2"' \
           'python3 -c "import os, sys; os.execve(\"/bin/cat\", [\"cat\", sys.argv[1]], {})" "$V2"'; do
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  log_reset
  "$TG_CMD" -m atomic --scope=elf bash -c "exec >\"\$LIB\"; exec $how" || fail "atomic, exec $how: failed"
  [ "$(inode "$LIB")" != "$old" ] && cmp -s "$LIB" "$V2" ||
    fail "atomic, exec $how: the name holds $(stat -c %s "$LIB") bytes at inode $(inode "$LIB") (was $old), not v2: the write was lost"
  expect_log "note file=$LIB is published at exec" "does not preload truncguard"
  ok "atomic, exec $how (no LD_PRELOAD): published at exec, v2 at the name"
done
# A program that can't load the shim although its environment preloads it
# (a static binary, a 32-bit one; exec'ed by path, or by execvp through
# PATH, as env does) was handed the file anyway, and nothing ever published
# it: exit 0, the old file at the name. Now it is published at that exec.
: "${TG_STATIC_WRITER=$TG_BUILD/tests/writers/static_writer}"
: "${TG_32BIT_WRITER=$TG_BUILD/tests/writers/32bit_writer}"
# A PATH entry longer than the look's 512-byte buffer was skipped: the
# program found there taken to load the shim, and the write lost (seen from
# a clone under a 1,900-byte path). In a copy, where the writer is built.
TG_LONG_STATIC_DIR=$T/long-path/$(printf 's%.0s' $(seq 200))/$(printf 't%.0s' $(seq 200))/$(printf 'u%.0s' $(seq 200))
if [ -x "$TG_STATIC_WRITER" ]; then
  mkdir -p "$TG_LONG_STATIC_DIR" && cp "$TG_STATIC_WRITER" "$TG_LONG_STATIC_DIR/" || fail "cannot copy the static writer"
fi
# A PATH entry as long as PATH's first PATH_MAX - 1 bytes: glibc's execvp
# skips it and tries the current directory in its place; the look skipped
# it alone, found nothing, and handed the file to the static program run
# from the current directory: the write lost.
TG_HUGE_PATH_ENTRY=/$(printf 'h%.0s' $(seq 4200))
for how in 'exec "$TG_STATIC_WRITER" open /dev/fd/3 "$V2"' 'exec "$TG_32BIT_WRITER" open /dev/fd/3 "$V2"' \
           'exec env PATH="${TG_STATIC_WRITER%/*}:$PATH" static_writer open /dev/fd/3 "$V2"' \
           'exec env PATH="$TG_LONG_STATIC_DIR:$PATH" static_writer open /dev/fd/3 "$V2"' \
           'cd "$TG_LONG_STATIC_DIR" && exec env PATH="$TG_HUGE_PATH_ENTRY:/nonexistent" static_writer open /dev/fd/3 "$V2"'; do
  case $how in
    *STATIC*) w=$TG_STATIC_WRITER why="is statically linked" ;;
    *) w=$TG_32BIT_WRITER why="is a 32-bit program" ;;
  esac
  [ -x "$w" ] || { note "atomic, $how: skipped (not built)"; continue; }
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  log_reset
  TG_STATIC_WRITER=$TG_STATIC_WRITER TG_32BIT_WRITER=$TG_32BIT_WRITER TG_LONG_STATIC_DIR=$TG_LONG_STATIC_DIR \
    TG_HUGE_PATH_ENTRY=$TG_HUGE_PATH_ENTRY "$TG_CMD" -m atomic --scope=elf bash -c "exec 3>\"\$LIB\"; $how" >/dev/null 2>&1 || fail "atomic, $how: failed"
  [ "$(inode "$LIB")" != "$old" ] && cmp -s "$LIB" "$V2" ||
    fail "atomic, $how: the name holds $(stat -c %s "$LIB") bytes at inode $(inode "$LIB") (was $old), not v2: the write was lost"
  expect_log "note file=$LIB is published at exec" "the program it runs $why"
  ok "atomic, $how: published at the exec, v2 at the name"
done
# ... nor can a program that is setuid to another user (ld.so's secure mode;
# truncguard(7): "not statically linked, 32-bit or set-id, as its file
# says"): the file is published at that exec, v2 arriving in place.
# atomic_exec PROG WHAT: in atomic mode bash writes v2 into $LIB, then execs
# PROG; the name must hold v2 at a new inode (sets old).
atomic_exec() {
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  log_reset
  "$TG_CMD" -m atomic --scope=elf bash -c 'exec 3>"$LIB"; cat "$V2" >&3; exec "$0" >/dev/null' "$1" ||
    fail "atomic, exec of $2: failed: $(tg_log)"
  [ "$(inode "$LIB")" != "$old" ] && cmp -s "$LIB" "$V2" ||
    fail "atomic, exec of $2: the name holds $(stat -c %s "$LIB") bytes at inode $(inode "$LIB") (was $old), not v2: the write was lost"
}
if [ "$(id -u)" -eq 0 ]; then
  mkdir -m 755 "$T/suid" && cp /usr/bin/id "$T/suid/id" && chown 65534:65534 "$T/suid/id" && chmod 4755 "$T/suid/id" ||
    fail "cannot make a setuid copy of id"
  if [ "$("$T/suid/id" -u)" = 65534 ]; then  # not a nosuid mount
    atomic_exec "$T/suid/id" "a setuid program"
    expect_log "note file=$LIB is published at exec" "the program it runs is setuid"
    ok "atomic, exec of a program setuid to another user: published at the exec, v2 at the name"
  else
    note "atomic, exec of a setuid program: skipped (set-id bits have no effect under $T)"
  fi
fi
# But a setuid script of another user can: the kernel ignores a script's
# set-id bits (the interpreter's file gives the credentials), so its shell
# takes the file over and publishes it at its exit. (The note said "the
# program it runs is setuid", and the file was published at the exec.)
if [ "$(id -u)" -eq 0 ]; then
  mkdir -m 755 "$T/suid_script" && printf '#!/bin/sh\n:\n' >"$T/suid_script/s.sh" &&
    chown 65534 "$T/suid_script/s.sh" && chmod 4755 "$T/suid_script/s.sh" || fail "cannot make a setuid script"
  atomic_exec "$T/suid_script/s.sh" "a setuid script"
  expect_no_log "note file=$LIB is published at exec"
  expect_log "published file=$LIB [ino $old -> " "(mode atomic): the writer exits"
  ok "atomic, exec of a setuid script of another user: taken over, published at its exit"
fi
# ... nor a script whose #! interpreter is static, nor a program for another
# machine (its e_machine AArch64: the exec then fails, ENOEXEC): the note
# names which (neither was in a test). The exec'ed program's status is not
# the point: bash wrote v2 before it.
if command -v python3 >/dev/null; then
  cp /bin/true "$T/other_machine" && python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(18)
    f.write((183).to_bytes(2, "little"))' "$T/other_machine" || fail "cannot make a program for another machine"
  targets=("$T/other_machine:the program it runs is a program for another machine")
  if [ -x "$TG_STATIC_WRITER" ]; then
    printf '#!%s\n' "$TG_STATIC_WRITER" >"$T/static_interp.sh" && chmod 755 "$T/static_interp.sh" ||
      fail "cannot write a script"
    targets+=("$T/static_interp.sh:its #! interpreter is statically linked")
  fi
  for t in "${targets[@]}"; do
    prog=${t%%:*} why=${t#*:}
    fresh_copy "$V1" "$LIB"
    old=$(inode "$LIB")
    log_reset
    "$TG_CMD" -m atomic --scope=elf bash -c 'exec 3>"$LIB"; cat "$V2" >&3; exec "$0" >/dev/null 2>&1' "$prog"
    [ "$(inode "$LIB")" != "$old" ] && cmp -s "$LIB" "$V2" ||
      fail "atomic, exec of ${prog##*/}: the name holds $(stat -c %s "$LIB") bytes at inode $(inode "$LIB") (was $old), not v2"
    expect_log "note file=$LIB is published at exec" ": $why, so nothing would publish it"
    ok "atomic, exec of ${prog##*/}: published at the exec, and the note says $why"
  done
fi
# The look at the program must not block on an executable FIFO (exec
# refuses it with EACCES, which the program gets at once).
mkfifo "$T/fifo" && chmod 755 "$T/fifo" || fail "mkfifo failed"
fresh_copy "$V1" "$LIB"
timeout 10 "$TG_CMD" -m atomic --scope=elf python3 -c '
import os, sys
os.dup2(os.open(os.environ["LIB"], os.O_WRONLY | os.O_TRUNC), 3)
try:
    os.execv(sys.argv[1], ["fifo"])
except PermissionError:
    sys.exit(3)' "$T/fifo"
st=$?
[ "$st" -eq 3 ] || fail "atomic, exec of an executable FIFO: exit $st, expected EACCES (3)$( [ "$st" -eq 124 ] && echo ": it blocked")"
ok "atomic, exec of an executable FIFO: EACCES at once"
# An environment larger than the exec wrappers copy (4096 variables) was cut
# to 4096, dropping variables (LD_PRELOAD among them, so the file was never
# published). Now it is passed on whole, and the file published at the exec.
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
log_reset
n=$( (for i in $(seq 5000); do export "TGV_$i=x"; done
      "$TG_CMD" -m atomic --scope=elf bash -c 'exec >"$LIB"; exec python3 -c "
import os, sys
sys.stderr.write(str(sum(k.startswith(\"TGV_\") for k in os.environ)))
sys.stdout.buffer.write(open(os.environ[\"V2\"], \"rb\").read())"') 2>&1) || fail "atomic exec with 5000 variables failed: $n"
[ "$n" = 5000 ] || fail "atomic exec with 5000 variables: the program got $n of them"
[ "$(inode "$LIB")" != "$old" ] && cmp -s "$LIB" "$V2" || fail "atomic exec with 5000 variables: v2 is not at the name"
expect_log "note file=$LIB is published at exec" "too many variables"
ok "atomic exec with 5000 variables: all reach the program; published at the exec"
# The bound exactly (README: 4,096 variables or more): an environment of
# 4,095 takes the hand-over (the new program publishes the file at its
# close), one of 4,096 does not (published at the exec, with the note).
for n in 4095 4096; do
  fresh_copy "$V1" "$LIB"
  log_reset
  "$TG_CMD" -m atomic --scope=elf python3 -c '
import os, sys
os.dup2(os.open(os.environ["LIB"], os.O_WRONLY | os.O_TRUNC), 7)
env = {k: v for k, v in os.environ.items() if k in ("LD_PRELOAD", "TRUNCGUARD_LOG", "TRUNCGUARD_MODE", "TRUNCGUARD_SCOPE", "PATH", "V2")}
env.update(("TGV_%d" % i, "x") for i in range(int(sys.argv[1]) - len(env)))
os.execve("/bin/sh", ["sh", "-c", "cat \"$V2\" >&7"], env)' "$n" || fail "atomic exec with $n variables failed"
  cmp -s "$LIB" "$V2" || fail "atomic exec with $n variables: v2 is not at the name"
  if [ "$n" = 4095 ]; then
    expect_no_log "too many variables"
    expect_log "published file=$LIB" "the writer exits"
  else
    expect_log "note file=$LIB is published at exec" "too many variables"
  fi
done
ok "atomic exec with 4095 variables: handed over; with 4096: published at the exec"
# v2_published_once WHAT WHY: the name holds v2, published once; WHY
# "handed": at the new program's close, else at the exec with a note saying WHY.
v2_published_once() {
  cmp -s "$LIB" "$V2" ||
    fail "$1: the name holds $(stat -c %s "$LIB") bytes, not v2: handed over to a program that did not publish it, lost"
  pub=$(log_lines "published file=$LIB") || fail "$1: no published line"
  [ "$(grep -c . <<<"$pub")" -eq 1 ] || fail "$1: published more than once: $pub"
  if [ "$2" = handed ]; then
    expect_no_log "published at exec"
    [[ $pub == *"(mode atomic): the writer closed it" ]] || fail "$1: the published line does not say the writer (cat) closed it: $pub"
  else
    expect_log "note file=$LIB is published at exec" "$2"
    [[ $pub == *"(mode atomic): the writer execs, and the new program does not take it over" ]] ||
      fail "$1: the published line does not say it was published at the exec: $pub"
  fi
}
# The same hand-over where the environment names the shim another way (a
# symlink to it, kept by the program's own envp) still waits for the close.
ln -s "$TG_SHIM" "$T/libtg-link.so"
fresh_copy "$V1" "$LIB"
log_reset
"$TG_CMD" -m atomic --scope=elf python3 -c '
import os, sys
fd = os.open(os.environ["LIB"], os.O_WRONLY | os.O_TRUNC)
os.dup2(fd, 1)
os.execve("/bin/cat", ["cat", os.environ["V2"]], dict(os.environ, LD_PRELOAD=sys.argv[1]))' "$T/libtg-link.so" ||
  fail "atomic, execve with LD_PRELOAD through a symlink: failed"
v2_published_once "atomic, execve with LD_PRELOAD through a symlink" handed
ok "atomic, execve with the shim preloaded through a symlink: handed over, published once at cat's close"
# The shim's identity is the file it was loaded from (its own mapping), not
# whatever is at its name at the exec: here another file was put at that
# name meanwhile (a deploy, an upgrade of truncguard itself).
# (Taken lazily since the constructor stopped stat()ing its own path: a
# stat at the exec would have handed the file over, and lost it.)
# - another library: the new program would not load truncguard, and a file
#   handed over to it would never be published. It is published at the exec.
# - another build of truncguard that reads the same hand-over (its ELF note
#   says the same version; here a copy): the new program takes the file over, and
#   publishes it at cat's close. (It was published at the exec, with a note
#   saying that the environment did not preload truncguard.)
# - a build of another hand-over version (the note patched to the next
#   version: a build after a change of the hand-over, then downgraded), or one
#   older than the note (none): it may read the entry otherwise: published
#   at the exec, the note says why.
cp "$TG_SHIM" "$T/libtg-same.so" || fail "cannot copy the shim"
shim_of_version $(($(shim_hand_over_version) + 1)) "$T/libtg-other.so"
shim_of_version 0 "$T/libtg-v0.so"
for other in "$T/libtg-same.so" "$V1" "$T/libtg-other.so" "$T/libtg-v0.so"; do
  cp "$TG_SHIM" "$T/libtg-moved.so" || fail "cannot copy the shim"
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  log_reset
  LD_PRELOAD="$T/libtg-moved.so" TRUNCGUARD_MODE=atomic TRUNCGUARD_SCOPE=elf python3 -c '
import os, shutil, sys
fd = os.open(os.environ["LIB"], os.O_WRONLY | os.O_TRUNC)
os.dup2(fd, 1)
shutil.copy(sys.argv[2], sys.argv[1] + ".new")
os.rename(sys.argv[1] + ".new", sys.argv[1])   # another file at the shim'"'"'s name
os.execve("/bin/cat", ["cat", os.environ["V2"]], dict(os.environ, LD_PRELOAD=sys.argv[1]))' "$T/libtg-moved.so" "$other" ||
    fail "atomic, execve after the shim's file was replaced by ${other##*/}: failed"
  [ "$(inode "$LIB")" != "$old" ] || fail "atomic, execve after the shim's file was replaced by ${other##*/}: the old inode at the name"
  if [ "$other" = "$T/libtg-same.so" ]; then
    v2_published_once "atomic, execve after the shim's file was replaced by ${other##*/}" handed
  else
    v2_published_once "atomic, execve after the shim's file was replaced by ${other##*/}" \
      "names truncguard's path, where this library's file no longer is"
  fi
done
ok "atomic, execve preloading the shim's name after another file was put there: handed over to a build of the same hand-over version, published at the exec otherwise (another library, another version, a build without the note)"
# An LD_PRELOAD entry longer than the shim's 1 KiB buffer, which ld.so
# loads all the same (glibc 2.36 has no limit there): the shim took it for
# itself "in doubt", so a 1,100-byte path to another library got the file
# handed over to cat, which never loaded truncguard: exit 0, the content
# lost, the old file at the name. Such an entry is now known by its last
# part, as one with ld.so's tokens is: another library's name, published at
# the exec; truncguard's name (a copy of the shim there), handed over.
long_lib_dir
long=$LONG_DIR
for entry in "$long/${TG_MARKER_LIB##*/}" "$long/${TG_SHIM##*/}"; do
  fresh_copy "$V1" "$LIB"
  log_reset
  LD_PRELOAD=$TG_SHIM TRUNCGUARD_MODE=atomic TRUNCGUARD_SCOPE=elf python3 -c '
import os, sys
fd = os.open(os.environ["LIB"], os.O_WRONLY | os.O_TRUNC)
os.dup2(fd, 1)
os.execve("/bin/cat", ["cat", os.environ["V2"]], dict(os.environ, LD_PRELOAD=sys.argv[1]))' "$entry" ||
    fail "atomic, execve with LD_PRELOAD=(${#entry} bytes).../${entry##*/}: failed"
  if [ "${entry##*/}" = "${TG_SHIM##*/}" ]; then
    v2_published_once "atomic, execve with LD_PRELOAD=(${#entry} bytes).../${entry##*/}" handed
  else
    v2_published_once "atomic, execve with LD_PRELOAD=(${#entry} bytes).../${entry##*/}" "does not preload truncguard"
  fi
done
ok "atomic, execve with an LD_PRELOAD entry of over 1 KiB: known by its last part (another library: published at the exec; truncguard's name: handed over)"
# The same with ld.so's dynamic string tokens in the path ($LIB, ${PLATFORM},
# as multiarch set-ups and systemd units write it): the shim took the path
# literally, found no such file, and published at the exec, where the file
# could be seen half-written while cat wrote it. (bash, not dash: dash
# ends with _exit, which never publishes.)
dst_lib=$(/lib64/ld-linux-x86-64.so.2 --list-diagnostics 2>/dev/null | sed -n 's/^dl_dst_lib="\(.*\)"$/\1/p')
platform=$(/lib64/ld-linux-x86-64.so.2 --list-diagnostics 2>/dev/null | sed -n 's/^dl_platform="\(.*\)"$/\1/p')
if [ -n "$dst_lib" ] && [ -n "$platform" ]; then
  mkdir -p "$T/dst/$dst_lib/$platform"
  ln -s "$TG_SHIM" "$T/dst/$dst_lib/$platform/libtruncguard.so"
  # shellcheck disable=SC2016  # the tokens are for ld.so
  for entry in "$T/dst/\$LIB/\${PLATFORM}/libtruncguard.so" "$T/dst/\${LIB}/\$PLATFORM/libtruncguard.so"; do
    fresh_copy "$V1" "$LIB"
    log_reset
    "$TG_CMD" -m atomic --scope=elf python3 -c '
import os, sys
fd = os.open(os.environ["LIB"], os.O_WRONLY | os.O_TRUNC)
os.dup2(fd, 1)
os.execve("/bin/bash", ["bash", "-c", "grep -q libtruncguard /proc/self/maps && cat \"$V2\""], dict(os.environ, LD_PRELOAD=sys.argv[1]))' "$entry" ||
      fail "atomic, execve with LD_PRELOAD=$entry: failed (is the shim loaded through it?)"
    v2_published_once "atomic, execve with LD_PRELOAD=$entry" handed
    ok "atomic, execve with LD_PRELOAD=${entry#"$T"/}: handed over, published once, when the writing ended"
  done
else
  note "LD_PRELOAD with \$LIB: skipped (ld.so --list-diagnostics does not say what \$LIB is)"
fi
# ... and $ORIGIN, the third token truncguard(7) names: the program's own
# directory (copies of bash and cat in $T/orig/bin, the shim in $T/orig/lib).
mkdir -p "$T/orig/bin" "$T/orig/lib" && cp /bin/bash /bin/cat "$T/orig/bin/" && ln -s "$TG_SHIM" "$T/orig/lib/libtruncguard.so" ||
  fail "cannot set up \$ORIGIN"
fresh_copy "$V1" "$LIB"
log_reset
# shellcheck disable=SC2016  # the token is for ld.so
"$TG_CMD" -m atomic --scope=elf python3 -c '
import os, sys
fd = os.open(os.environ["LIB"], os.O_WRONLY | os.O_TRUNC)
os.dup2(fd, 1)
os.execve(sys.argv[1] + "/bash", ["bash", "-c", "[[ $(</proc/$$/maps) == *libtruncguard* ]] && \"$0\"/cat \"$V2\"", sys.argv[1]],
          dict(os.environ, LD_PRELOAD="$ORIGIN/../lib/libtruncguard.so"))' "$T/orig/bin" ||
  fail "atomic, execve with LD_PRELOAD=\$ORIGIN/../lib/libtruncguard.so: failed (is the shim loaded through it?)"
v2_published_once "atomic, execve with LD_PRELOAD=\$ORIGIN/..." handed
ok "atomic, execve with LD_PRELOAD=\$ORIGIN/../lib/libtruncguard.so: handed over, published once, when the writing ended"

# ---- Atomic mode: execveat (glibc 2.34) hands the pending file over too.
# It was not interposed: the file went to the new program without the
# hand-over entry, and nothing ever published it.
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
log_reset
"$TG_CMD" -m atomic --scope=elf python3 -c '
import ctypes, os
fd = os.open(os.environ["LIB"], os.O_WRONLY | os.O_TRUNC)
os.dup2(fd, 1)
argv = (ctypes.c_char_p * 3)(b"cat", os.environ["V2"].encode(), None)
envp = (ctypes.c_char_p * (len(os.environ) + 1))(*[f"{k}={v}".encode() for k, v in os.environ.items()], None)
ctypes.CDLL(None).execveat(-100, b"/bin/cat", argv, envp, 0)  # AT_FDCWD
os._exit(99)' || fail "atomic, execveat: exit $?"
[ "$(inode "$LIB")" != "$old" ] && cmp -s "$LIB" "$V2" || fail "atomic, execveat: v2 is not at a new inode: the write was lost"
expect_log "published file=$LIB [ino $old -> "
ok "atomic, execveat with the file pending: handed over, published at cat's close"

# ---- Children: the wrapped command's children inherit the shim through the
# environment, however they are started. Control first: the same cp, without
# truncguard, kills the victim.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
cp "$V2" "$LIB" || fail "control: cp failed"
stop_victim
expect_killed "control: cp over the loaded library"
# child WHAT CMD...: under truncguard, CMD starts a child that copies v2 over
# the library a victim runs: the victim lives, v2 is at a new inode.
child() {
  local what=$1 old
  shift
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  "$TG_CMD" "$@" >"$T/child.out" 2>&1 || fail "$what: exit $?: $(cat "$T/child.out")"
  stop_victim
  expect_survived "$what"
  [ "$(inode "$LIB")" != "$old" ] && cmp -s "$LIB" "$V2" || fail "$what: v2 is not at a new inode"
  expect_log "replaced file=$LIB [ino $old -> " "pid $VICTIM_PID ("
}
child "sh -c" sh -c 'cp "$V2" "$LIB"'
child "python system()" python3 -c 'import os; assert os.system("cp \"$V2\" \"$LIB\"") == 0'
child "python popen()" python3 -c 'import os; os.popen("cp \"$V2\" \"$LIB\"").read()'
# (python's os.popen is subprocess: libc's popen() itself, through ctypes.)
child "libc popen()" python3 -c '
import ctypes
libc = ctypes.CDLL(None)
libc.popen.restype = ctypes.c_void_p
f = libc.popen(b"cp \"$V2\" \"$LIB\"", b"r")
assert f and libc.pclose(ctypes.c_void_p(f)) == 0'
child "posix_spawn with environ" python3 -c '
import os
pid = os.posix_spawn("/bin/cp", ["cp", os.environ["V2"], os.environ["LIB"]], os.environ)
assert os.waitpid(pid, 0)[1] == 0'
child "subprocess, env= that keeps LD_PRELOAD" python3 -c '
import os, subprocess
env = {k: v for k, v in os.environ.items() if k in ("LD_PRELOAD", "ASAN_OPTIONS") or k.startswith("TRUNCGUARD_")}
subprocess.run(["/bin/cp", os.environ["V2"], os.environ["LIB"]], env=env, check=True)'
child "perl exec with a rebuilt %ENV keeping LD_PRELOAD" perl -e '
%ENV = map { exists $ENV{$_} ? ($_ => $ENV{$_}) : () } qw(LD_PRELOAD TRUNCGUARD_LOG ASAN_OPTIONS);
exec "/bin/cp", $ARGV[0], $ARGV[1] or exit 1' "$V2" "$LIB"
child "nested truncguard" "$TG_CMD" cp "$V2" "$LIB"

# ---- The command as a wrapper: it execs (same pid, so signals, the process
# group and the terminal are the command's), and passes arguments and fds on
# exactly.
"$TG_CMD" sh -c 'echo $$ >"$1"' _ "$T/pid" &
tgpid=$!
wait "$tgpid"
[ "$(cat "$T/pid")" = "$tgpid" ] || fail "the command runs as pid $(cat "$T/pid"), not truncguard's $tgpid: it forked"
for sig in SEGV TERM INT HUP; do
  # (an ASan build of the shim would catch the SIGSEGV and abort: not truncguard's doing)
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0 "$TG_CMD" sh -c "kill -$sig \$\$" 2>/dev/null
  st=$?
  [ "$st" -eq $((128 + $(kill -l $sig))) ] || fail "a command killed by SIG$sig: truncguard exited $st"
done
ok "truncguard execs the command (same pid); SIGSEGV/TERM/INT/HUP deaths show as 128+N"
args=("" $'new\nline' $'\xff\xfe invalid' "--mode=x" "-" "--" " ")
want=$(printf '%s\0' "${args[@]}" | od -c)
got=$("$TG_CMD" printf '%s\0' "${args[@]}" | od -c)
[ "$got" = "$want" ] || fail "the arguments changed on the way: $got"
fds='import os; print(sorted(int(f) for f in os.listdir("/proc/self/fd")))'
want=$(python3 -c "$fds" 7</dev/null 9>"$T/fd9")
got=$("$TG_CMD" python3 -c "$fds" 7</dev/null 9>"$T/fd9")
[ "$got" = "$want" ] || fail "the command's fds differ under truncguard: $got, without: $want"
ok "arguments (empty, newline, invalid UTF-8, option-like) and inherited fds reach the command unchanged"

# ---- Settings: an option overrides the variable, the last option wins, a
# variable no option sets is passed on.
got=$(TRUNCGUARD_MODE=atomic TRUNCGUARD_SCOPE=elf "$TG_CMD" -m unlink -m dry-run printenv TRUNCGUARD_MODE TRUNCGUARD_SCOPE | paste -sd' ')
[ "$got" = "dry-run elf" ] || fail "TRUNCGUARD_MODE=atomic TRUNCGUARD_SCOPE=elf truncguard -m unlink -m dry-run: $got"
# Every option's value is checked (README, "Settings"): an invalid one is
# named, exit 125, nothing run.
# An empty --debug list (--debug="$UNSET") too: it kept the default, where
# "the list replaces the default" (truncguard(1)).
for opt in --mode=bogus --scope=bogus --on-fail=bogus --reload=bogus --log-format=xml --debug=rewrites,bogus \
           --debug= --debug=,; do
  err=$("$TG_CMD" "$opt" touch "$T/ran" 2>&1)
  st=$?
  [ "$st" -eq 125 ] && [ ! -e "$T/ran" ] && grep -qF -- "${opt#*=}" <<<"$err" || fail "$opt: exit $st, ran: $(ls "$T/ran" 2>&1), $err"
done
ok "option over variable, last option wins, an invalid value stops before the command runs (125)"
# What the user typed comes back escaped, as who, stale and the log print
# names (truncguard(1)): an escape sequence or a C1 control (CSI, U+009B) in
# an option's value or in the command's name does not reach the terminal.
err=$("$TG_CMD" --mode=$'\e[31mx\xc2\x9b' true 2>&1)
st=$?
[ "$st" -eq 125 ] && grep -qF "'\x1b[31mx\xc2\x9b'" <<<"$err" && ! LC_ALL=C grep -q $'[\e\x9b]' <<<"$err" ||
  fail "--mode with an escape sequence: exit $st, $(od -c <<<"$err" | head -n 3)"
err=$("$TG_CMD" $'/nonexistent-tg/\e[2Jcmd' 2>&1)
st=$?
[ "$st" -eq 127 ] && grep -qF "'/nonexistent-tg/\x1b[2Jcmd'" <<<"$err" && ! LC_ALL=C grep -q $'\e' <<<"$err" ||
  fail "a command named with an escape sequence: exit $st, $(od -c <<<"$err" | head -n 3)"
ok "an option's value and a command name with control bytes are named escaped"

# ---- LD_PRELOAD: the user's list is kept as it was (ld.so splits it at
# spaces and colons), the shim put first, unless the list names it already
# (as it is, or through a symlink); each library in it is loaded.
cp "$TG_MARKER_LIB" "$T/libmarker.so" || fail "cannot copy the marker library"
ln -sf "$TG_SHIM" "$T/libtg-alias.so"
for list in "$T/libmarker.so $T/nonexistent.so" "$T/nonexistent.so:$T/libmarker.so" \
            "$T/libmarker.so:$TG_SHIM" "$T/libmarker.so $T/libtg-alias.so"; do
  want="$TG_SHIM:$list"
  case $list in *"$TG_SHIM"* | *libtg-alias.so*) want=$list ;; esac
  got=$(LD_PRELOAD=$list "$TG_CMD" sh -c 'printf "%s\n" "$LD_PRELOAD"; cat /proc/$$/maps' 2>/dev/null)
  [ "$(head -n 1 <<<"$got")" = "$want" ] || fail "LD_PRELOAD=\"$list\": the child has \"$(head -n 1 <<<"$got")\", not \"$want\""
  # In the maps only (the first line, LD_PRELOAD, names both), where the
  # file is named with its symlinks resolved: the shim's own path.
  maps=$(tail -n +2 <<<"$got")
  grep -qF "$T/libmarker.so" <<<"$maps" && grep -qF "$(readlink -f "$TG_SHIM")" <<<"$maps" ||
    fail "LD_PRELOAD=\"$list\": the shim or the user's library is not mapped in the child"
done
# A bare name in the list is searched for by ld.so in the library paths, never
# in the current directory: the shim's own file name, bare, run from the
# shim's directory, does not name it, and the shim goes first.
got=$(cd "$(dirname "$TG_SHIM")" && LD_PRELOAD=${TG_SHIM##*/} "$TG_CMD" sh -c 'printf "%s\n" "$LD_PRELOAD"; cat /proc/$$/maps' 2>/dev/null)
[ "$(head -n 1 <<<"$got")" = "$TG_SHIM:${TG_SHIM##*/}" ] ||
  fail "LD_PRELOAD=${TG_SHIM##*/} from its directory: the child has \"$(head -n 1 <<<"$got")\", not the shim first"
grep -qF "$TG_SHIM" <<<"$got" || fail "LD_PRELOAD=${TG_SHIM##*/} from its directory: the shim is not mapped in the child"
ok "an existing LD_PRELOAD (spaces, colons, a missing file) is kept after the shim; one that names the shim is kept as it is"
# Another copy of libtruncguard.so in it (another file: truncguard(1),
# ENVIRONMENT, "another copy of libtruncguard.so is loaded as well"): both
# are loaded, the command's first, and a write over a running library is
# protected once.
mkdir -p "$T/copy" && cp "$TG_SHIM" "$T/copy/" || fail "cannot copy the shim"
COPY=$T/copy/${TG_SHIM##*/}
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
got=$(LD_PRELOAD=$COPY "$TG_CMD" sh -c 'printf "%s\n" "$LD_PRELOAD"; cat /proc/$$/maps; cp "$V2" "$LIB"') ||
  fail "LD_PRELOAD=another copy of the shim: truncguard failed: $got"
stop_victim
expect_survived "LD_PRELOAD=another copy of the shim, truncguard cp"
[ "$(head -n 1 <<<"$got")" = "$TG_SHIM:$COPY" ] || fail "LD_PRELOAD=another copy of the shim: the child has \"$(head -n 1 <<<"$got")\""
grep -qF " $TG_SHIM" <<<"$got" && grep -qF " $COPY" <<<"$got" ||
  fail "LD_PRELOAD=another copy of the shim: not both copies mapped in the child: $(grep libt <<<"$got")"
[ "$(log_lines "replaced file=$LIB " | grep -c .)" -eq 1 ] || fail "LD_PRELOAD=another copy of the shim: not one replaced line: $(tg_log)"
ok "another copy of the shim in LD_PRELOAD: both loaded, the command's first; the write protected once"

# ---- A nested truncguard --audit (a deploy script that calls it in a CI
# step already wrapped) named the library twice in LD_AUDIT: ld.so loaded
# the audit module twice, and every line of it came twice.
if shim_has_asan; then
  note "nested truncguard --audit: skipped (an ASan build of the shim can't be an audit module)"
else
  got=$("$TG_CMD" --audit "$TG_CMD" --audit printenv LD_PRELOAD LD_AUDIT 2>/dev/null | paste -sd' ')
  [ "$got" = "$TG_SHIM $TG_SHIM" ] || fail "nested truncguard --audit: LD_PRELOAD and LD_AUDIT are \"$got\", expected the library once in each"
  log_reset
  "$TG_CMD" --audit "$TG_CMD" --audit true || fail "nested truncguard --audit true failed"
  lines=$(log_lines 'file=true [0];  loaded' | grep -c .)
  [ "$lines" -eq 1 ] || fail "nested truncguard --audit: the 'loaded' line of true came $lines times"
  ok "nested truncguard --audit: the library once in LD_PRELOAD and LD_AUDIT, each audit line once"
  # Another audit module already in LD_AUDIT is kept, after the library
  # (truncguard(1): "keeping what is already there").
  got=$(LD_AUDIT=$T/other-audit.so "$TG_CMD" --audit printenv LD_AUDIT 2>/dev/null)
  [ "$got" = "$TG_SHIM:$T/other-audit.so" ] || fail "LD_AUDIT=other-audit.so truncguard --audit: LD_AUDIT is \"$got\""
  ok "--audit keeps another LD_AUDIT entry, after the library"
  # --audit adds the bindings and files categories unless --debug is given:
  # then the list given is the list (truncguard(1), --help).
  got=$(env -u TRUNCGUARD_DEBUG "$TG_CMD" --audit printenv TRUNCGUARD_DEBUG 2>/dev/null)
  [ "$got" = "rewrites,reloads,bindings,files" ] || fail "--audit: TRUNCGUARD_DEBUG is \"$got\", expected the default and bindings,files"
  got=$(env -u TRUNCGUARD_DEBUG "$TG_CMD" --audit --debug=rewrites printenv TRUNCGUARD_DEBUG 2>/dev/null)
  [ "$got" = "rewrites" ] || fail "--audit --debug=rewrites: TRUNCGUARD_DEBUG is \"$got\", expected the list given"
  got=$(env -u TRUNCGUARD_DEBUG "$TG_CMD" --debug=decisions --audit printenv TRUNCGUARD_DEBUG 2>/dev/null)
  [ "$got" = "decisions" ] || fail "--debug=decisions --audit: TRUNCGUARD_DEBUG is \"$got\", expected the list given"
  ok "--audit adds bindings,files to the default categories, and nothing to a --debug list given"
fi

# ---- LD_PRELOAD: a library path with a space or a colon can't be carried:
# the command says so and runs nothing.
for dir in "with space" "with:colon"; do
  mkdir -p "$T/$dir"
  cp "$TG_CMD" "$TG_SHIM" "$T/$dir/" || fail "cannot copy the command"
  err=$("$T/$dir/truncguard" touch "$T/ran" 2>&1)
  st=$?
  [ "$st" -eq 126 ] && [ ! -e "$T/ran" ] && grep -q "LD_PRELOAD can't carry" <<<"$err" ||
    fail "installed under a path $dir: exit $st, ran: $(ls "$T/ran" 2>&1), $err"
  ok "a library path $dir: exit 126, nothing run: $(head -n 1 <<<"$err")"
done

# A tab is no separator of LD_PRELOAD (ld.so splits it at spaces and colons
# only; /etc/ld.so.preload's tabs are another list): the command under such
# a path runs the command, and its library protects. It refused with 126,
# "contains a space or a colon", where there was neither.
tabdir=$T/with$'\t'tab
mkdir -p "$tabdir"
cp "$TG_CMD" "$TG_SHIM" "$tabdir/" || fail "cannot copy the command"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
err=$("$tabdir/truncguard" cp "$V2" "$LIB" 2>&1)
st=$?
stop_victim
[ "$st" -eq 0 ] || fail "installed under a path with a tab: exit $st: $err"
expect_survived "truncguard installed under a path with a tab, cp over the running library"
expect_log "replaced file=$LIB "
expect_version "$LIB" 2
ok "a library path with a tab: carried by LD_PRELOAD, the write protected"

# ---- A command that can't be run: the status a shell gives, and a message
# that names the cause (it said "not found in PATH" for a path, and "check
# that it is a program for this machine" for an argument list too long).
# expect_cannot_run STATUS WORDS CMD...
expect_cannot_run() {
  local want=$1 words=$2 err st
  shift 2
  err=$("$TG_CMD" "$@" 2>&1)
  st=$?
  [ "$st" -eq "$want" ] || fail "truncguard $1: exit $st, expected $want: $err"
  grep -qF -- "$words" <<<"$err" || fail "truncguard $1: the message does not say \"$words\": $err"
  ok "truncguard ${1:-''}: exit $st: $err"
}
printf '#!/nonexistent/interpreter\necho ran\n' >"$T/badshebang"
mkdir -p "$T/path/adir"
chmod 755 "$T/badshebang"
cp "$T/badshebang" "$T/path/badshebang2"
expect_cannot_run 127 "check the path" "$T/no/such/program"
expect_cannot_run 127 "its interpreter (the #! line) or its ELF loader does not" "$T/badshebang"
# An ELF program whose loader (PT_INTERP) is missing: a copy of true, its
# loader's name changed in place.
python3 - /bin/true "$T/badloader" <<'PY' || fail "cannot make a program with a missing loader"
import sys
data = open(sys.argv[1], "rb").read()
old = b"/lib64/ld-linux-x86-64.so.2\0"
assert old in data, "no x86-64 loader name in /bin/true"
open(sys.argv[2], "wb").write(data.replace(old, b"/nonexistent/ld-missing.so\0\0", 1))
PY
chmod 755 "$T/badloader"
"$T/badloader" 2>/dev/null; [ $? -eq 127 ] || fail "control: a program with a missing loader did not fail to run as 127"
expect_cannot_run 127 "its interpreter (the #! line) or its ELF loader does not" "$T/badloader"
# A loader that is there but no ELF file (ldd is a script): ELIBBAD, whose
# hint said "check that it is a program for this machine"; one that can't
# be executed (a plain file): EACCES, whose hint said to check the program,
# executable all the while.
for loader in /usr/bin/ldd /etc/passwd; do
  [ -f "$loader" ] || continue
  python3 - /bin/true "$T/loader-$(basename "$loader")" "$loader" <<'PY' || fail "cannot make a program with loader $loader"
import sys
data = open(sys.argv[1], "rb").read()
old = b"/lib64/ld-linux-x86-64.so.2\0"
assert old in data, "no x86-64 loader name in /bin/true"
open(sys.argv[2], "wb").write(data.replace(old, sys.argv[3].encode().ljust(len(old), b"\0"), 1))
PY
  chmod 755 "$T/loader-$(basename "$loader")"
done
[ -x "$T/loader-ldd" ] && expect_cannot_run 126 "its ELF loader (or its #! interpreter's) is not an ELF program for this machine" "$T/loader-ldd"
[ -x "$T/loader-passwd" ] &&
  expect_cannot_run 126 "it may be run: its interpreter (the #! line) or its ELF loader may not" "$T/loader-passwd"
# (in PATH only directories anyone may search: one this user can't (su
# keeps root's PATH, /root/.cargo/bin...) makes it EACCES, 126, as execvp)
PATH=$T/path:/usr/bin:/bin expect_cannot_run 127 "found as $T/path/badshebang2, but its interpreter" badshebang2
PATH=/usr/bin:/bin expect_cannot_run 127 "not found in PATH" tg-no-such-command-here
# An empty element of PATH (here the trailing one) is the current directory,
# as execvp searches it: the hint names the file found there.
(cd "$T/path" && PATH=/usr/bin:/bin: expect_cannot_run 127 "found as ./badshebang2, but its interpreter" badshebang2) || exit 1
PATH=$T/path:$PATH expect_cannot_run 126 "$T/path/adir is a directory" adir
expect_cannot_run 126 "it is a directory" "$T/path"
# An executable file on a noexec mount: the mount is the cause, not the file
# (the hint said "check that it is an executable file"). Control: a file
# without x bits there gets that hint still.
mkdir "$T/noexec"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o noexec tmpfs "$T/noexec" 2>/dev/null; then
  trap 'umount "$T/noexec"; _tg_cleanup' EXIT
  cp /bin/true "$T/noexec/tg-true" && cp /bin/true "$T/noexec/plain" && chmod 644 "$T/noexec/plain"
  expect_cannot_run 126 "its filesystem is mounted noexec" "$T/noexec/tg-true"
  PATH=$T/noexec:$PATH expect_cannot_run 126 "found as $T/noexec/tg-true, but its filesystem is mounted noexec" tg-true
  expect_cannot_run 126 "check that it is an executable file" "$T/noexec/plain"
  umount "$T/noexec"
  trap _tg_cleanup EXIT
else
  note "a noexec mount: not tested (needs root and mount)"
fi
expect_cannot_run 127 "the command name is empty" ""
# Arguments that fit truncguard's own exec but not the command's (truncguard
# adds LD_PRELOAD and its settings to the environment): E2BIG, 126.
env -u TRUNCGUARD_LOG python3 - "$TG_CMD" <<'PY' || fail "argument list too long: wrong status or message"
import subprocess, sys
tg = sys.argv[1]
def run(total):  # truncguard --json --audit /bin/true, with `total` bytes of arguments
    args = ["a" * 1000] * (total // 1000) + ["b" * (total % 1000)]
    try:
        return subprocess.run([tg, "--json", "--audit", "/bin/true"] + args, capture_output=True, text=True)
    except OSError:
        return None  # truncguard itself could not be exec'ed
lo, hi = 0, 1 << 16
while run(hi) is not None: lo, hi = hi, hi * 2
while hi - lo > 1:
    mid = (lo + hi) // 2
    if run(mid) is None: hi = mid
    else: lo = mid
r = run(lo)
print(f"# the most argument bytes truncguard itself takes: {lo}; exit {r.returncode}: {r.stderr.strip()}")
sys.exit(0 if r.returncode == 126 and "Argument list too long" in r.stderr and "too large for one exec" in r.stderr else 1)
PY
ok "an argument list that fits truncguard but not the command: exit 126, \"too large for one exec\""
# An option without its value names the option as it was written.
err=$("$TG_CMD" --scope 2>&1)
[ $? -eq 125 ] && grep -qF "option '--scope' needs a value" <<<"$err" || fail "truncguard --scope: $err"
ok "truncguard --scope: $(head -n 1 <<<"$err")"
# One given a value it does not take too: named as written, not as the short
# option it stands for ("invalid option or missing argument: '-V'").
err=$("$TG_CMD" --version=1 true 2>&1)
[ $? -eq 125 ] && grep -qF "option '--version' takes no value" <<<"$err" || fail "truncguard --version=1: $err"
ok "truncguard --version=1: $(head -n 1 <<<"$err")"

# ---- who and stale with odd arguments: a status from the documented set,
# the victim found through a symlink and through /proc/self/fd, and valid
# JSON whatever the argument.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
ln -s "$LIB" "$T/link.so"
mkfifo "$T/fifo"
: >"$T/$(printf 'new\nline')"
mkdir -p "$T/many"
for i in $(seq 1000); do : >"$T/many/f$i"; done
# who_case WANT_STATUSES WORDS ARG...: `who ARG...` exits with one of
# WANT_STATUSES and prints WORDS; `who --json ARG...` exits the same and
# prints one valid JSON document.
who_case() {
  local want=$1 words=$2 out st jst
  shift 2
  out=$(timeout 20 "$TG_CMD" who "$@" 2>&1)
  st=$?
  [[ " $want " == *" $st "* ]] || fail "who ${*:1:2}: exit $st, expected one of $want: $out"
  grep -qF -- "$words" <<<"$out" || fail "who ${*:1:2}: does not say \"$words\": $out"
  timeout 20 "$TG_CMD" who --json "$@" >"$T/who.json" 2>/dev/null
  jst=$?
  [ "$jst" -eq "$st" ] || fail "who --json ${*:1:2}: exit $jst, but $st without --json"
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$T/who.json" ||
    fail "who --json ${*:1:2}: not valid JSON: $(head -c 300 "$T/who.json")"
  ok "who ${*:1:2}$([ $# -gt 2 ] && echo " ... ($# files)"): exit $st, valid JSON"
}
who_case "0" " -> $LIB (inode " "$T/link.so"
grep -qE "^ +$VICTIM_PID " <<<"$("$TG_CMD" who "$T/link.so" 2>/dev/null)" || fail "who through a symlink does not list the victim"
who_case "0" " -> $LIB (inode " /proc/self/fd/3 3<"$LIB"
grep -qE "^ +$VICTIM_PID " <<<"$("$TG_CMD" who /proc/self/fd/3 3<"$LIB" 2>/dev/null)" || fail "who /proc/self/fd/3 does not list the victim"
who_case "1 3" "no process maps it" "$T/fifo"
who_case "1 3" "no process maps it" /dev/null
who_case "1 3" 'new\nline (inode ' "$T/$(printf 'new\nline')"
who_case "1 3" "no such file now" "$T/gone.so"
who_case "2" "is a directory" "$T"
who_case "2" "an empty name" ""
# `who --json` lists only the files it could examine (docs/guarantees.md,
# "What is not guaranteed"): a directory, an empty name or a path whose
# directory can't be resolved is named on stderr, makes the status 2, and is
# absent from the JSON; the file examined with them is there.
"$TG_CMD" who --json "$T" "" "$T/no/such/dir/lib.so" "$LIB" >"$T/who.json" 2>"$T/who.err"
st=$?
[ "$st" -eq 2 ] || fail "who --json with three names it can't examine exited $st: $(cat "$T/who.err")"
for name in "'$T': is a directory" "'': an empty name" "'$T/no/such/dir/lib.so': no such file, and its directory can't be resolved"; do
  grep -qF "cannot examine $name" "$T/who.err" || fail "who --json does not name $name on stderr: $(cat "$T/who.err")"
done
python3 -c 'import json, sys; f = json.load(open(sys.argv[1]))["files"]; assert [x["file"] for x in f] == [sys.argv[2]], f' "$T/who.json" "$LIB" ||
  fail "who --json does not list only $LIB: $(cat "$T/who.json")"
ok "who --json: names it can't examine are on stderr (status 2), absent from the JSON; the file examined is listed"
who_case "0" "$LIB (inode" "$T"/many/* "$LIB"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert len(d["files"]) == 1001, len(d["files"])' "$T/who.json" ||
  fail "who --json with 1001 files does not list 1001"
"$TG_CMD" stale --json >"$T/stale.json" 2>/dev/null
st=$?
[ "$st" -le 3 ] && python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$T/stale.json" ||
  fail "stale --json: exit $st or invalid JSON"
stop_victim
expect_survived "the victim watched by who"

