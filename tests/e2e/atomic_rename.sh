#!/bin/bash
# Bug: in atomic mode a writer that renames its file before closing it (the
# atomic-save shape: write NAME.tmp, fsync, rename NAME.tmp over NAME, close)
# lost its work where NAME.tmp was a leftover ELF file (an interrupted earlier
# deploy): the rename moved the OLD leftover to NAME, since the new content
# was still unnamed, and the close then published the new content at
# NAME.tmp, "created again". NAME held stale code and NAME.tmp came back;
# without truncguard NAME holds the new file and NAME.tmp is gone. Found with
# CPython's os.replace inside the `with open(...)` block. The rename of a
# pending file's name now publishes it first, so the rename moves it.
#  - control: without truncguard, NAME gets v2 and no NAME.tmp is left;
#  - under truncguard --scope=elf -m atomic (a deploy job's settings), through
#    rename, renameat, renameat2 and syscall(SYS_rename, SYS_renameat,
#    SYS_renameat2): the same, the victim running NAME alive, a fresh process
#    loading version 2, the log saying why it was published early;
#  - a writer that writes half, renames, then writes the rest: NAME holds the
#    whole of v2 (the later writes land in the published file); the same
#    through a shared mapping whose fd was closed before the rename (a file
#    kept pending until the munmap);
#  - an exchange (renameat2 RENAME_EXCHANGE) of NAME and NAME.tmp before the
#    close, the file written either the source or the destination: NAME gets
#    v2, NAME.tmp the file NAME held (the control shows it). With the file
#    written the exchange's destination, the exchange moved the OLD leftover
#    to NAME and the close then refused to publish ("another file was put at
#    the name"): the new content was lost.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
command -v python3 >/dev/null || skip "python3 is not installed"
LIB=$T/lib.so
TMP=$T/lib.so.tmp

# save ENTRY SPLIT: writes $V2 into $TMP ("wb"), SPLIT bytes, fsync, renames
# $TMP over $LIB through ENTRY, writes the rest, closes.
cat >"$T/save.py" <<'EOF'
import ctypes, os, sys
entry, split, src, tmp, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
SYS = {'rename': 82, 'renameat': 264, 'renameat2': 316}  # x86-64
data = open(src, 'rb').read()
if entry == 'mmap':
    # The file's last fd closed while it is mapped shared and writable (so
    # kept pending until the munmap), written through the mapping, renamed
    # before the munmap.
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    fd = os.open(tmp, os.O_RDWR | os.O_TRUNC)
    os.ftruncate(fd, len(data))
    addr = libc.mmap(None, len(data), 3, 1, fd, 0)  # PROT_READ|PROT_WRITE, MAP_SHARED
    os.close(fd)
    ctypes.memmove(addr, data[:split], split)
    if libc.rename(tmp.encode(), dst.encode()) != 0: sys.exit('save: mmap: ' + os.strerror(ctypes.get_errno()))
    ctypes.memmove(addr + split, data[split:], len(data) - split)
    libc.munmap(addr, len(data))
    # The program closed its fd: none may be left open on the file (the dup
    # that kept it pending while mapped, a leak).
    ino = os.stat(dst).st_ino
    for n in os.listdir('/proc/self/fd'):
        try: st = os.stat('/proc/self/fd/' + n)
        except OSError: continue
        if st.st_ino == ino: sys.exit('save: mmap: fd %s is still open on the file' % n)
    sys.exit(0)
with open(tmp, 'wb') as f:
    f.write(data[:split]); f.flush(); os.fsync(f.fileno())
    t, d = tmp.encode(), dst.encode()
    if entry == 'rename': r = libc.rename(t, d)
    elif entry == 'renameat': r = libc.renameat(AT_FDCWD, t, AT_FDCWD, d)
    elif entry == 'renameat2': r = libc.renameat2(AT_FDCWD, t, AT_FDCWD, d, 0)
    elif entry == 'sys_rename': r = libc.syscall(SYS['rename'], t, d)
    elif entry == 'sys_renameat': r = libc.syscall(SYS['renameat'], AT_FDCWD, t, AT_FDCWD, d)
    elif entry == 'sys_renameat2': r = libc.syscall(SYS['renameat2'], AT_FDCWD, t, AT_FDCWD, d, 0)
    # An exchange (RENAME_EXCHANGE = 2), the file written the destination:
    # its content goes to the source name, the source's file to its name.
    elif entry == 'xchg_to': r = libc.renameat2(AT_FDCWD, d, AT_FDCWD, t, 2)
    elif entry == 'sys_xchg_to': r = libc.syscall(SYS['renameat2'], AT_FDCWD, d, AT_FDCWD, t, 2)
    elif entry == 'xchg_from': r = libc.renameat2(AT_FDCWD, t, AT_FDCWD, d, 2)
    if r != 0: sys.exit('save: %s: %s' % (entry, os.strerror(ctypes.get_errno())))
    f.write(data[split:])
EOF
SIZE=$(stat -c %s "$V2")

# run_case WHAT ENTRY SPLIT [PREFIX...]
run_case() {
  local what=$1 entry=$2 split=$3
  shift 3
  fresh_copy "$V1" "$LIB"
  fresh_copy "$V1" "$TMP"  # the leftover of an interrupted deploy
  start_victim "$LIB"
  log_reset
  "$@" python3 "$T/save.py" "$entry" "$split" "$V2" "$TMP" "$LIB" || fail "$what: the writer failed: $(tg_log)"
  stop_victim
  expect_survived "$what"
  expect_same_content "$LIB" "$V2" "$what: $LIB"
  [ ! -e "$TMP" ] || fail "$what: $TMP is back after the rename (it holds $(cmp -s "$TMP" "$V2" && echo v2 || echo v1))"
  [ -z "$(find "$T" -maxdepth 1 -name '.lib.so*.tg-*')" ] || fail "$what: a temp file was left: $(ls -a "$T")"
  expect_version "$LIB" 2
}

run_case "control: rename before close without truncguard" rename "$SIZE" env
ok "control: without truncguard the rename moves the new file and nothing is left at the old name"

for entry in rename renameat renameat2 sys_rename sys_renameat sys_renameat2; do
  run_case "$entry before close under --scope=elf -m atomic" "$entry" "$SIZE" "$TG_CMD" --scope=elf -m atomic
  expect_log "note file=$TMP the writer renames it before its last close: publishing it first, so that the rename moves the new file"
  expect_log "published file=$TMP [ino " "(mode atomic): the writer renames it"
  ok "$entry of a pending file before its close moves the new file"
done

# The note's JSON key is renamed (truncguard(7)).
run_case "rename before close under --json --scope=elf -m atomic" rename "$SIZE" "$TG_CMD" --json --scope=elf -m atomic
expect_note_key renamed
# TRUNCGUARD_DEBUG=none is "nothing but errors and warnings" (its help): the
# note that the rename publishes the file is neither (it was printed alone,
# without the published line it announces).
run_case "rename before close under --debug=none --scope=elf -m atomic" rename "$SIZE" "$TG_CMD" --debug=none --scope=elf -m atomic
[ -z "$(tg_log)" ] || fail "--debug=none, a rename before close: expected no line, got: $(tg_log)"
ok "--debug=none, a pending file renamed before its close: no line"

run_case "control: half, rename, the rest, without truncguard" rename 4096 env
run_case "half, rename, the rest, under --scope=elf -m atomic" rename 4096 "$TG_CMD" --scope=elf -m atomic
ok "writes after the rename land in the renamed file"

run_case "control: through a shared mapping, renamed before the munmap, without truncguard" mmap 4096 env
run_case "through a shared mapping, renamed before the munmap, under --scope=elf -m atomic" mmap 4096 \
  "$TG_CMD" --scope=elf -m atomic
expect_log "note file=$TMP the writer renames it before its last close: publishing it first, so that the rename moves the new file"
ok "a file kept pending while mapped is published at its rename too"

# exchange_case WHAT ENTRY [PREFIX...]: NAME holds v1 (a victim runs it),
# NAME.tmp a leftover (v1 with a tail, told apart from NAME's v1); the
# writer writes v2 into NAME.tmp and exchanges the two names before its close.
exchange_case() {
  local what=$1 entry=$2
  shift 2
  fresh_copy "$V1" "$LIB"
  { cat "$V1"; printf 'the leftover of an interrupted deploy\n'; } >"$TMP"
  start_victim "$LIB"
  log_reset
  "$@" python3 "$T/save.py" "$entry" "$SIZE" "$V2" "$TMP" "$LIB" || fail "$what: the writer failed: $(tg_log)"
  stop_victim
  expect_survived "$what"
  expect_same_content "$LIB" "$V2" "$what: $LIB"
  expect_same_content "$TMP" "$V1" "$what: $TMP (the file $LIB held)"
  [ -z "$(find "$T" -maxdepth 1 -name '.lib.so*.tg-*')" ] || fail "$what: a temp file was left: $(ls -a "$T")"
  expect_version "$LIB" 2
}

for entry in xchg_to sys_xchg_to xchg_from; do
  exchange_case "control: $entry without truncguard" "$entry" env
  exchange_case "$entry under --scope=elf -m atomic" "$entry" "$TG_CMD" --scope=elf -m atomic
  expect_log "note file=$TMP the writer renames it before its last close: publishing it first, so that the rename moves the new file"
  expect_no_log "another file was put at the name"
  ok "an exchange ($entry) of a pending file before its close moves the new file"
done

# Another name of the old file (a hard link in a snapshot tree, with the same
# base name) renamed before the close is not the writer's file: the pending
# file is not published at that rename (it was: the name showed the new file
# half written, before the close, and the log said the writer renamed it).
# Atomic mode's promise holds: the name keeps the old file until the close.
mkdir -p "$T/snap"
fresh_copy "$V1" "$LIB"
fresh_copy "$V1" "$TMP"
ln -f "$TMP" "$T/snap/lib.so.tmp"
start_victim "$LIB"
log_reset
"$TG_CMD" --scope=elf -m atomic python3 - "$V2" "$TMP" "$T/snap" "$V1" <<'PY' || fail "hard link: the writer failed: $(tg_log)"
import os, sys
src, tmp, snap, v1 = sys.argv[1:5]
data, old = open(src, 'rb').read(), open(v1, 'rb').read()
with open(tmp, 'wb') as f:
    f.write(data[:4096]); f.flush()
    os.rename(snap + '/lib.so.tmp', snap + '/lib.so.old')
    if open(tmp, 'rb').read() != old:
        sys.exit('hard link: %s no longer holds the old file before the close' % tmp)
    f.write(data[4096:])
PY
stop_victim
expect_survived "hard link renamed before the close"
expect_same_content "$TMP" "$V2" "hard link: $TMP after the close"
expect_same_content "$T/snap/lib.so.old" "$V1" "hard link: the other name (it keeps the old file)"
expect_no_log "the writer renames it before its last close"
expect_log "published file=$TMP [ino "
ok "another name of the old file renamed before the close leaves the pending file pending"

# The writer's own file renamed by another path to it (a symlinked
# directory, a directory fd, a relative path through ..) is its file: it is
# published first, and NAME gets v2.
ln -sfn "$T" "$T/link"
mkdir -p "$T/sub"
for how in symlinked_dir dirfd dotdot; do
  fresh_copy "$V1" "$LIB"
  fresh_copy "$V1" "$TMP"
  start_victim "$LIB"
  log_reset
  (cd "$T/sub" && "$TG_CMD" --scope=elf -m atomic python3 - "$how" "$V2" "$T" <<'PY') || fail "$how: the writer failed: $(tg_log)"
import os, sys
how, src, t = sys.argv[1:4]
with open(t + '/lib.so.tmp', 'wb') as f:
    f.write(open(src, 'rb').read()); f.flush()
    if how == 'symlinked_dir': os.rename(t + '/link/lib.so.tmp', t + '/lib.so')
    elif how == 'dirfd':
        d = os.open(t, os.O_RDONLY | os.O_DIRECTORY)
        os.rename('lib.so.tmp', 'lib.so', src_dir_fd=d, dst_dir_fd=d)
        os.close(d)
    else: os.rename('../lib.so.tmp', '../lib.so')
PY
  stop_victim
  expect_survived "$how"
  expect_same_content "$LIB" "$V2" "$how: $LIB"
  [ ! -e "$TMP" ] || fail "$how: $TMP is back after the rename"
  expect_log "note file=$T/lib.so.tmp the writer renames it before its last close"
  ok "the writer's file renamed through another path to it ($how) moves the new file"
done

# A rename that fails after the file was published for it (a missing
# destination directory: ENOENT; RENAME_NOREPLACE onto a name in use:
# EEXIST; another filesystem: EXDEV): the writer gets the kernel's result
# and errno, the new file stays published at its name, as in mode replace,
# and the log says that the rename failed (it said only "so that the rename
# moves the new file", which it did not). The line names the file as the others do, by the writer's name for
# it at its open, whatever name the rename gives it (dirfd: relative to a
# directory fd, the working directory elsewhere; the line named it
# "lib.so.tmp", a file that is not there). Control: without truncguard, the
# same result and the same files.
cat >"$T/fail_rename.py" <<'EOF'
import ctypes, os, sys
how, src, tmp, dst = sys.argv[1:5]
libc = ctypes.CDLL(None, use_errno=True)
with open(tmp, 'wb') as f:
    f.write(open(src, 'rb').read()); f.flush(); os.fsync(f.fileno())
    if how == 'missing_dir': r = libc.rename(tmp.encode(), (dst + '.d/lib.so').encode())
    elif how == 'exdev': r = libc.rename(tmp.encode(), (os.environ['OTHER_FS'] + '/lib.so').encode())
    elif how == 'dirfd':
        d = os.open(os.path.dirname(tmp), os.O_RDONLY | os.O_DIRECTORY)
        os.chdir('/')
        r = libc.renameat(d, os.path.basename(tmp).encode(), d, b'lib.so.d/lib.so')
    else: r = libc.renameat2(-100, tmp.encode(), -100, dst.encode(), 1)  # AT_FDCWD, RENAME_NOREPLACE
    print(r, os.strerror(ctypes.get_errno()))
EOF
# Another filesystem (a tmpfs, as /dev/shm often is), for EXDEV: README
# names it among the failed renames.
other_fs_dir "$T"
[ -n "$OTHER_FS" ] || note "skip exdev: no other filesystem at /dev/shm"
export OTHER_FS
for how in missing_dir dirfd noreplace ${OTHER_FS:+exdev}; do
  for with in env "$TG_CMD"; do
    fresh_copy "$V1" "$LIB"
    fresh_copy "$V1" "$TMP"
    log_reset
    if [ "$with" = env ]; then
      want=$(python3 "$T/fail_rename.py" "$how" "$V2" "$TMP" "$LIB") || fail "control: $how: the writer failed"
      [ "${want%% *}" = -1 ] || fail "control: $how: the rename did not fail: $want"
    else
      got=$("$TG_CMD" --scope=elf -m atomic python3 "$T/fail_rename.py" "$how" "$V2" "$TMP" "$LIB") ||
        fail "$how: the writer failed: $(tg_log)"
      [ "$got" = "$want" ] || fail "$how: the rename returned '$got', without truncguard '$want'"
      expect_log "note file=$TMP the writer renames it before its last close: publishing it first, so that the rename moves the new file"
      expect_log "note file=$TMP the writer's rename of it failed (${want#* }): the new file, published for that rename, stays at this name, as in mode replace"
    fi
    expect_same_content "$TMP" "$V2" "$how: $TMP"
    expect_same_content "$LIB" "$V1" "$how: $LIB"
    [ -z "$(find "$T" -maxdepth 1 -name '.lib.so*.tg-*')" ] || fail "$how: a temp file was left: $(ls -a "$T")"
  done
  ok "a rename that fails after the early publication ($how: ${want#* }): the same result, the new file at its name, and the log says the rename failed"
done

# The file can't be published at the rename (no room for its link: a
# seccomp filter makes linkat fail with ENOSPC): the rename is not made and
# fails with that error, as the close would have (README: "close() returns
# that error"). It was made: it moved the old leftover over NAME, and the
# writer, its rename and close both successful, was never told.
RTOOL=${TG_RTOOL:-$TG_BUILD/tests/reliability/rtool}
if [ -x "$RTOOL" ]; then
  fresh_copy "$V1" "$LIB"
  { cat "$V1"; printf 'the leftover of an interrupted deploy\n'; } >"$TMP"
  cp "$TMP" "$T/leftover"
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  if "$TG_CMD" --scope=elf -m atomic "$RTOOL" deny 265:28 python3 "$T/save.py" rename "$SIZE" "$V2" "$TMP" "$LIB" \
    2>"$T/save.err"; then
    fail "no room to publish: the writer was told nothing (rename and close succeeded); $LIB holds $(cmp -s "$LIB" "$T/leftover" && echo the old leftover || echo something else)"
  fi
  grep -q "save: rename: No space left on device" "$T/save.err" || fail "no room to publish: the writer said: $(cat "$T/save.err")"
  stop_victim
  expect_survived "no room to publish at the rename"
  [ "$(inode "$LIB")" = "$old" ] || fail "no room to publish: $LIB was replaced"
  expect_same_content "$LIB" "$V1" "no room to publish: $LIB"
  expect_log "cannot protect file=$TMP: cannot link the new file into the directory: No space left on device"
  # The note comes before the attempt: it must not claim the file was published.
  expect_log "note file=$TMP the writer renames it before its last close: publishing it first"
  expect_no_log "published now"
  ok "a pending file that can't be published at its rename fails the rename with the error"

  # An exchange of two pending files whose destination can't be published
  # (a write to it failed: a seccomp filter fails pwrite64 with ENOSPC): the
  # source was published for the exchange, which is then not made (it fails
  # with ENOSPC, as the destination's close would have). The source's new
  # file stays at its name, and the log must say that the rename failed, as
  # for a rename the kernel refuses (it said only "so that the rename moves
  # the new file"). Control: without truncguard the exchange is made.
  cat >"$T/xchg_fail.py" <<'EOF'
import ctypes, os, sys
src, tmp, dst = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
data = open(src, 'rb').read()
with open(tmp, 'wb') as a:
    a.write(data); a.flush()
    b = os.open(dst, os.O_WRONLY | os.O_TRUNC)
    try: os.pwrite(b, data, 0); sys.exit('xchg_fail: pwrite was not refused')
    except OSError: pass
    r = libc.renameat2(-100, tmp.encode(), -100, dst.encode(), 2)  # AT_FDCWD, RENAME_EXCHANGE
    print(r, os.strerror(ctypes.get_errno()))
    os.close(b)
EOF
  for with in control truncguard; do
    fresh_copy "$V1" "$LIB"
    { cat "$V1"; printf 'the leftover of an interrupted deploy\n'; } >"$TMP"
    log_reset
    if [ $with = control ]; then
      got=$("$RTOOL" deny 18:28 python3 "$T/xchg_fail.py" "$V2" "$TMP" "$LIB") || fail "control: the writer failed"
      [ "$got" = "0 Success" ] || fail "control: the exchange was not made: $got"
      continue
    fi
    got=$("$RTOOL" deny 18:28 "$TG_CMD" --scope=elf -m atomic python3 "$T/xchg_fail.py" "$V2" "$TMP" "$LIB") ||
      fail "exchange, its destination not published: the writer failed: $(tg_log)"
    [ "$got" = "-1 No space left on device" ] || fail "exchange, its destination not published: the rename returned '$got'"
    expect_same_content "$TMP" "$V2" "exchange, its destination not published: $TMP (published for it)"
    expect_same_content "$LIB" "$V1" "exchange, its destination not published: $LIB"
    expect_log "note file=$TMP the writer renames it before its last close: publishing it first"
    expect_log "cannot protect file=$LIB: a write to the new file failed: No space left on device"
    expect_log "note file=$TMP the writer's rename of it failed (No space left on device): the new file, published for that rename, stays at this name"
    [ -z "$(find "$T" -maxdepth 1 -name '.lib.so*.tg-*')" ] || fail "exchange, its destination not published: a temp file was left: $(ls -a "$T")"
  done
  ok "an exchange whose destination can't be published fails, and the log says that its source, published for it, stays at its name"
else
  echo "skipped part: rtool is not built ($RTOOL)"
fi

# The directory, not the file (docs/guarantees.md, "atomic" mode): one
# removed before the close makes the publication fail (the close says ENOENT,
# logged); one renamed meanwhile gets the file under its new name, as the
# writer's fd would have.
dir_writer() {  # dir_writer rmdir|rename: writes v2 to $T/dd/lib.so, then does that to $T/dd, then closes
  "$TG_CMD" --scope=elf -m atomic python3 -c '
import os, sys
v2 = open(sys.argv[1], "rb").read()
d = sys.argv[2]
fd = os.open(d + "/lib.so", os.O_WRONLY | os.O_TRUNC)
os.write(fd, v2)
if sys.argv[3] == "rmdir":
    os.unlink(d + "/lib.so")
    os.rmdir(d)
else:
    os.rename(d, d + "2")
try:
    os.close(fd)
    print("closed")
except OSError as e:
    print("close:", e.strerror)' "$V2" "$T/dd" "$1"
}
rm -rf "$T/dd" "$T/dd2" && mkdir "$T/dd" && cp "$V1" "$T/dd/lib.so" || fail "directory removed: setup"
log_reset
got=$(dir_writer rmdir) || fail "directory removed: the writer failed: $(tg_log)"
[ "$got" = "close: No such file or directory" ] || fail "directory removed before the close: the close said '$got'"
expect_log "cannot protect file=$T/dd/lib.so: cannot link the new file into the directory: No such file or directory"
rm -rf "$T/dd" "$T/dd2" && mkdir "$T/dd" && cp "$V1" "$T/dd/lib.so" || fail "directory renamed: setup"
got=$(dir_writer rename) || fail "directory renamed: the writer failed: $(tg_log)"
[ "$got" = closed ] || fail "directory renamed before the close: the close said '$got'"
expect_same_content "$T/dd2/lib.so" "$V2" "directory renamed before the close: the file under the new name"
[ ! -e "$T/dd" ] || fail "directory renamed before the close: $T/dd made again"
ok "atomic: a directory removed before the close: ENOENT, logged; one renamed: the file published under its new name"
