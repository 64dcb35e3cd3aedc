#!/bin/bash
# Bug: a writer that syncs its file (dd conv=fsync, oflag=dsync, python's
# os.fsync) over a library in use, in atomic mode, was told its data was on
# disk, yet after a crash right after it ended the name held the OLD file: the
# new inode reaches the name at the writer's close (a link and a rename), after
# its last sync, and nothing synced the directory. Without truncguard its sync
# made its writes to the name's own inode durable. Now a pending file the
# writer synced is published with its directory synced.
#
# A crash is the filesystem's shutdown without flushing its log
# (FS_IOC_SHUTDOWN with NOLOGFLUSH, `xfs_io -x -c shutdown`), then a remount
# (log recovery), on a loop-mounted ext4 (commit=60, so no timer commits the
# journal meanwhile) and XFS. For each:
#  - control: what is not synced is lost (atomic mode, cp: the old file after
#    the crash), so a lost sync shows;
#  - control: without truncguard, dd conv=fsync kills the victim, and its
#    content is at the name after the crash;
#  - under truncguard the victim survives and the content is at the name after
#    the crash, in each mode that acts: dd conv=fsync, oflag=dsync, python's
#    os.fsync, os.fdatasync, and syscall(SYS_fsync).
# Bug: in atomic mode, a writer that synced with sync(), syncfs(), msync
# (MS_SYNC) or aio_fsync instead of fsync on its fd (and libc's syscall() of
# the first three) found the OLD file at the name after the crash: only
# fsync/fdatasync marked a pending file synced. Now each does (the tests
# writer's then_* entries).
# Bug: in atomic mode, a writer that synced its file and then exec'ed a
# program that took it over (python: write, os.fsync, its fd onto 1, exec
# cat, which closes it) found the OLD file at the name after the crash: the
# synced mark was not handed over at the exec, and cat published the file
# without syncing the directory. Now the hand-over carries it (a suffix: its version stays 1).
# Bug: on a filesystem with no fsync for directories (EINVAL: legacy 9p, a
# FUSE server refusing FSYNCDIR), the directory sync after the rename failed
# and the writer's close() returned EINVAL (dd: "closing output file: Invalid
# argument", exit 1), although its own fsync had succeeded. Now the file's
# own fsync takes its place (which commits the rename on a journaling
# filesystem) and a note says so. Shown here with a seccomp filter (rtool
# deny fsync~1:EINVAL) that fails every fsync but dd's own, of its fd 1.
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_mount_ns
need_victims
need_shim
command -v xfs_io >/dev/null || skip "xfs_io missing (scripts/setup.sh installs xfsprogs)"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || skip "python3 missing"

V2_SUM=$(cksum <"$V2")
V1_SUM=$(cksum <"$V1")

# crash_case NAME FS WANT WRITER [WRAPPER...]: $LIB holds version 1, synced;
# a victim loads it; WRITER (a function that runs its command after "$@")
# runs in its directory under WRAPPER (none for a control) and the victim is
# released (VICTIM_STATUS); then the crash and the remount. WANT: the version
# the name must hold after it.
crash_case() {
  local name=$1 fs=$2 want=$3 writer=$4 got
  shift 4
  fresh_copy "$V1" "$LIB"
  sync
  start_victim "$LIB"
  log_reset
  (cd "$MNT" && "$writer" "$@") >"$T/$name.out" 2>&1 || fail "$fs: $name: the writer failed: $(r_out "$name")"
  stop_victim
  xfs_io -x -c shutdown "$MNT" || fail "$fs: cannot shut the filesystem down"
  remount "$fs"
  case $(cksum <"$LIB") in
    "$V2_SUM") got=2 ;;
    "$V1_SUM") got=1 ;;
    *) got="neither ($(stat -c %s "$LIB") bytes)" ;;
  esac
  [ "$got" = "$want" ] || fail "$fs: $name: after the crash the name holds version $got, expected $want: $(tg_log)"
}

# remount FS: unmount the shut-down filesystem and mount its image again.
remount() {
  umount "$MNT" || fail "$1: cannot unmount after the crash"
  mount -t "$1" -o "loop,$OPTS" "$IMG" "$MNT" || fail "$1: cannot mount the image again"
}

cp_v2() { "$@" cp "$V2" libvictim.so; }
dd_fsync() { "$@" dd if="$V2" of=libvictim.so conv=fsync status=none; }
dd_dsync() { "$@" dd if="$V2" of=libvictim.so oflag=dsync status=none; }
# PY_CALL: fsync, fdatasync (os's), or syscall (libc's syscall(SYS_fsync)).
py_sync() {
  "$@" "$PY" -c '
import ctypes, os, sys
f = open("libvictim.so", "wb")
f.write(open(sys.argv[1], "rb").read())
f.flush()
if sys.argv[2] == "syscall":
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(74, f.fileno()) != 0:  # SYS_fsync
        sys.exit("syscall(SYS_fsync): %s" % os.strerror(ctypes.get_errno()))
else:
    getattr(os, sys.argv[2])(f.fileno())
f.close()' "$V2" "$PY_CALL"
}

# The same, os.fsync, then the file handed over at an exec: cat, with it as
# its stdout, publishes it at its close.
py_fsync_exec() {
  "$@" "$PY" -c '
import os, sys
f = open("libvictim.so", "wb")
f.write(open(sys.argv[1], "rb").read())
f.flush()
os.fsync(f.fileno())
os.dup2(f.fileno(), 1)
os.execv("/bin/cat", ["cat", "/dev/null"])' "$V2"
}

# WENTRY: the tests writer's entry (then_sync...): SRC's bytes, that sync, close.
w_entry() { "$@" "$TG_WRITER" "$WENTRY" libvictim.so "$V2"; }

for fs in ext4 xfs; do
  case $fs in
    ext4) mkfs=(mkfs.ext4 -q -F); size=64M; OPTS=commit=60 ;;
    xfs) mkfs=(mkfs.xfs -q -f); size=300M; OPTS=defaults ;;  # XFS's smallest
  esac
  if ! command -v "${mkfs[0]}" >/dev/null; then note "skip $fs: ${mkfs[0]} missing"; continue; fi
  IMG=$T/$fs.img
  MNT=$T/$fs
  mkdir -p "$MNT"
  truncate -s "$size" "$IMG"
  "${mkfs[@]}" "$IMG" >"$T/mkfs.out" 2>&1 || fail "setup: ${mkfs[*]}: $(cat "$T/mkfs.out")"
  if ! mount -t "$fs" -o "loop,$OPTS" "$IMG" "$MNT" 2>"$T/mount.err"; then
    note "skip $fs: cannot mount it here: $(cat "$T/mount.err")"
    continue
  fi
  _r_mounts+=("$MNT")
  LIB=$MNT/libvictim.so

  crash_case "cp, atomic" "$fs" 1 cp_v2 "$TG_CMD" --mode=atomic
  expect_survived "$fs: control: cp in atomic mode"
  ok "$fs: control: what is not synced is lost in the crash: the name holds version 1"

  crash_case "dd conv=fsync" "$fs" 2 dd_fsync
  expect_killed "$fs: control: dd conv=fsync without truncguard"
  ok "$fs: control: without truncguard, dd conv=fsync's content is at the name after the crash"

  for mode in replace unlink atomic; do
    crash_case "dd conv=fsync, $mode" "$fs" 2 dd_fsync "$TG_CMD" --mode=$mode
    expect_survived "$fs: dd conv=fsync, mode $mode"
    ok "$fs: dd conv=fsync, mode $mode: version 2 at the name after the crash"
  done
  for mode in replace unlink atomic; do
    crash_case "dd oflag=dsync, $mode" "$fs" 2 dd_dsync "$TG_CMD" --mode=$mode
    expect_survived "$fs: dd oflag=dsync, mode $mode"
    ok "$fs: dd oflag=dsync, mode $mode: version 2 at the name after the crash"
    for call in fsync fdatasync syscall; do
      PY_CALL=$call crash_case "python $call, $mode" "$fs" 2 py_sync "$TG_CMD" --mode=$mode
      expect_survived "$fs: python $call, mode $mode"
      ok "$fs: python $call, mode $mode: version 2 at the name after the crash"
    done
  done
  crash_case "python fsync, then exec cat, atomic" "$fs" 2 py_fsync_exec "$TG_CMD" --mode=atomic
  expect_survived "$fs: python fsync, then exec cat, mode atomic"
  expect_log "published file=libvictim.so [ino "
  expect_no_log "is published at exec"  # (then python's own publication synced it)
  ok "$fs: python fsync, then exec cat (handed over), mode atomic: version 2 at the name after the crash"

  for WENTRY in then_sync then_syncfs then_msync then_aio_fsync then_sys_sync then_sys_syncfs then_sys_msync; do
    crash_case "$WENTRY, atomic" "$fs" 2 w_entry "$TG_CMD" --mode=atomic
    expect_survived "$fs: writer $WENTRY, mode atomic"
    ok "$fs: writer $WENTRY, mode atomic: version 2 at the name after the crash"
  done

  crash_case "dd conv=fsync, atomic, no fsync for directories" "$fs" 2 dd_fsync \
    "$TG_RTOOL" deny 'fsync~1:EINVAL' "$TG_CMD" --mode=atomic
  expect_survived "$fs: dd conv=fsync, mode atomic, no fsync for directories"
  tg_log | grep -q 'note file=libvictim.so the filesystem has no fsync for directories' ||
    fail "$fs: no fsync for directories: no note: $(tg_log)"
  ok "$fs: no fsync for directories: dd's close succeeds, the file's fsync instead (noted), version 2 after the crash"
  # The note's JSON key is dir_sync (truncguard(7)); no crash needed.
  if [ "$fs" = ext4 ]; then
    fresh_copy "$V1" "$LIB"
    log_reset
    (cd "$MNT" && dd_fsync env TRUNCGUARD_LOG_FORMAT=json "$TG_RTOOL" deny 'fsync~1:EINVAL' "$TG_CMD" --mode=atomic --scope=elf) \
      >"$T/dirsync_json.out" 2>&1 || fail "$fs: no fsync for directories, JSON log: the writer failed: $(r_out dirsync_json)"
    expect_note_key dir_sync
    # A detail of the publication, neither error nor warning: not under
    # --debug=none ("nothing but errors and warnings"; it was printed alone).
    fresh_copy "$V1" "$LIB"
    log_reset
    (cd "$MNT" && dd_fsync "$TG_RTOOL" deny 'fsync~1:EINVAL' "$TG_CMD" --mode=atomic --scope=elf --debug=none) \
      >"$T/dirsync_none.out" 2>&1 || fail "$fs: no fsync for directories, --debug=none: the writer failed: $(r_out dirsync_none)"
    cmp -s "$LIB" "$V2" || fail "$fs: no fsync for directories, --debug=none: the name does not hold v2"
    [ -z "$(tg_log)" ] || fail "$fs: no fsync for directories, --debug=none: expected no line, got: $(tg_log)"
    ok "$fs: no fsync for directories, --debug=none: published, no note"
  fi

  # ... and where the file's own fsync fails too (the filter fails every
  # fsync but the writer's own, made through its fd 100), the writer's close
  # reports it, and the line names the file's sync, not the directory's
  # (it said "cannot sync the directory after the rename" for both).
  if [ "$fs" = ext4 ]; then
    fresh_copy "$V1" "$LIB"
    log_reset
    (cd "$MNT" && "$TG_RTOOL" deny 'fsync~100:EINVAL' "$TG_CMD" --mode=atomic --scope=elf "$PY" -c '
import os, sys
f = open("libvictim.so", "wb")
f.write(open(sys.argv[1], "rb").read())
f.flush()
os.dup2(f.fileno(), 100)
os.fsync(100)
os.close(100)
try:
    f.close()
except OSError as e:
    print("close:", e.strerror)' "$V2") >"$T/bothsync.out" 2>&1 || fail "$fs: both syncs refused: the writer failed: $(cat "$T/bothsync.out")"
    grep -q "close: Invalid argument" "$T/bothsync.out" || fail "$fs: both syncs refused: close did not report it: $(cat "$T/bothsync.out")"
    expect_log "cannot protect file=libvictim.so: cannot sync the file after the rename (the filesystem has no fsync for directories): Invalid argument; published, but a crash may still show the old file"
    ok "$fs: the directory's and the file's fsync refused: close reports EINVAL, the line names the file's sync"
  fi

  umount "$MNT" || fail "cannot unmount $MNT"
  unset '_r_mounts[-1]'
  rm -f -- "$IMG"
done
