#!/bin/bash
# The filesystems production hosts run libraries from and deploy steps write
# to, each on a small loop-mounted image of its own (a private mount
# namespace): ext4 with -o nodelalloc and with -o data=journal, ext2 (no
# journal), XFS (RHEL's default: reflinks), f2fs, vfat, exfat; then ramfs
# (an initramfs: no xattrs, no direct I/O), FUSE (bindfs over a directory),
# a tmpfs mounted noexec,nosuid, and read-only squashfs and erofs images. A
# kind the kernel or the installed tools lack is skipped with the reason; the
# test skips if no loop-mounted image at all can be tested. It runs in a PID
# namespace of its own (where it can), which takes the bindfs daemon with it.
#
# On each writable one, with a real victim running the library from it:
#  1. control: plain `cp v2 lib` kills the victim;
#  2. `truncguard cp v2 lib` in modes replace, atomic and unlink: the victim
#     survives, a fresh process loads version 2, the name has a new inode,
#     the log names the victim, no temp file is left, and the mode, owner and
#     extended attributes the filesystem can hold (probed first, a 60,000-byte
#     value among them) are the old file's; atomic publishes at close where
#     the filesystem has O_TMPFILE, and says why it replaced at open where not;
#  3. a text file truncated passes untouched (same inode), and an ELF file
#     nobody maps is truncated in place on the kernel's write-lease proof;
#  4. writes that first break the victim without truncguard, then go to a new
#     inode under it: `dd conv=notrunc`; `cp --reflink=always` where the
#     filesystem has reflinks; `dd oflag=direct` and an O_DIRECT open where it
#     has direct I/O (the caller's fd keeps O_DIRECT), and where it has none, a
#     writer that falls back to a buffered open on the kernel's EINVAL; the
#     ftruncate of an fd opened before the victim mapped the file (O_DIRECT
#     too);
#  5. a POSIX lock held across an exec (truncguard's fd kept on the locked
#     file handed over) stays held in the new image.
# tmpfs noexec: no program can map code from it (the victim's dlopen fails),
# so nothing is protected there; the same tmpfs bound at an exec mount point,
# where a service runs the library, is protected when written through the
# noexec path. Read-only images: the kernel refuses the write (EROFS) with
# or without truncguard, which passes the call through; the victim lives.
R_PID_NS=1 R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_victims
need_mount_ns
need_shim
[ -x "$TG_FD_TRUNCATOR" ] || fail "no fd_truncator at $TG_FD_TRUNCATOR"
command -v setfattr >/dev/null && command -v getfattr >/dev/null ||
  skip "setfattr/getfattr missing (Debian package attr; scripts/setup.sh installs it)"
command -v python3 >/dev/null || skip "python3 is needed to probe O_TMPFILE"
export TRUNCGUARD_DEBUG=rewrites,decisions

TESTED=()
SKIPPED=()
LOOPS=0  # loop-mounted images tested
skip_fs() {
  note "$1: skipped: $2"
  SKIPPED+=("$1 ($2)")
}

# kernel_has FSTYPE: the running kernel can mount FSTYPE (built in or a module).
kernel_has() {
  grep -qw -- "$1" /proc/filesystems && return 0
  modprobe -q -- "$1" 2>/dev/null && grep -qw -- "$1" /proc/filesystems
}

# can_make NAME FSTYPE MKFS [PACKAGE]: MKFS is installed and the kernel mounts
# FSTYPE; else 1, with the reason noted.
can_make() {
  command -v "$3" >/dev/null || { skip_fs "$1" "$3 missing (scripts/setup.sh installs ${4:-it})"; return 1; }
  kernel_has "$2" || { skip_fs "$1" "this kernel has no $2 (not in /proc/filesystems, no module)"; return 1; }
  mkdir -p "$T/$1/mnt"
}

# mount_image NAME FSTYPE OPTIONS: $T/NAME/img loop-mounted at $T/NAME/mnt.
# Sets D (the directory written to) and VD (where the victim loads from: the
# same). Returns 1 (with the reason noted) if it can't be mounted.
mount_image() {
  local name=$1
  mount -t "$2" -o "loop,$3" "$T/$name/img" "$T/$name/mnt" 2>"$T/$name/mount.err" ||
    { skip_fs "$name" "cannot mount the image: $(cat "$T/$name/mount.err")"; return 1; }
  _r_mounts+=("$T/$name/mnt")
  LOOPS=$((LOOPS + 1))
  D=$T/$name/mnt
  VD=$D
}

# loop_fs NAME FSTYPE MKFS SIZE OPTIONS MKFS-COMMAND...: a fresh image of SIZE
# made by MKFS-COMMAND (the image path appended), mounted with OPTIONS
# (mount_image).
loop_fs() {
  local name=$1 type=$2 mkfs=$3 size=$4 opts=$5
  shift 5
  can_make "$name" "$type" "$mkfs" || return 1
  truncate -s "$size" "$T/$name/img"
  "$@" "$T/$name/img" >"$T/$name/mkfs.out" 2>&1 || fail "setup: $*: $(cat "$T/$name/mkfs.out")"
  mount_image "$name" "$type" "$opts"
}

# fs_done: unmount the last filesystem and drop its image (the next one gets
# the loop device).
fs_done() {
  local last=${_r_mounts[-1]}
  umount -- "$last" || fail "cannot unmount $last"
  unset '_r_mounts[-1]'
  rm -f -- "${last%/*}/img"
}

# ------------------------------------------------ what a filesystem can hold

# probe DIR: what DIR's filesystem keeps, into CAN_* (1 or empty): a mode
# with the setuid bit, an owner, user. and trusted. xattrs, O_TMPFILE,
# O_DIRECT.
probe() {
  local p=$1/.probe
  rm -f -- "$p"
  echo probe >"$p" || fail "setup: cannot write in $1"
  CAN_MODE= CAN_OWNER= CAN_XATTR= CAN_TRUSTED= CAN_TMPFILE= CAN_DIRECT= CAN_REFLINK= CAN_BIG_XATTR= CAN_ACL=
  chmod 4751 "$p" 2>/dev/null && [ "$(stat -c %a -- "$p")" = 4751 ] && CAN_MODE=1
  chown 1234:5678 "$p" 2>/dev/null && [ "$(stat -c %u:%g -- "$p")" = 1234:5678 ] && CAN_OWNER=1
  setfattr -n user.tg -v probe "$p" 2>/dev/null && CAN_XATTR=1
  setfattr -n trusted.tg -v probe "$p" 2>/dev/null && CAN_TRUSTED=1
  # A value of 60,000 bytes (Linux allows 64 KiB; XFS and tmpfs hold one, ext4 4 KiB).
  BIG=$(head -c 60000 /dev/zero | tr '\0' b)
  setfattr -n user.tg.big -v "$BIG" "$p" 2>/dev/null && CAN_BIG_XATTR=1
  python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_TMPFILE | os.O_WRONLY, 0o600))' "$1" 2>/dev/null &&
    CAN_TMPFILE=1
  dd if="$V1" of="$p" bs=4096 conv=notrunc oflag=direct status=none 2>/dev/null && CAN_DIRECT=1
  cp --reflink=always "$p" "$p.2" 2>/dev/null && CAN_REFLINK=1
  rm -f -- "$p" "$p.2"
  mkdir -p "$1/.probe.d"
  r_acl "$1/.probe.d" default 1234 2>/dev/null && CAN_ACL=1
  rmdir -- "$1/.probe.d"
  note "$FS keeps: mode+setuid ${CAN_MODE:-no}, owner ${CAN_OWNER:-no}, user xattrs ${CAN_XATTR:-no} (of 60,000 bytes ${CAN_BIG_XATTR:-no}), trusted xattrs ${CAN_TRUSTED:-no}, default ACLs ${CAN_ACL:-no}; O_TMPFILE ${CAN_TMPFILE:-no}, O_DIRECT ${CAN_DIRECT:-no}, reflinks ${CAN_REFLINK:-no}"
}

# dressed_copy LIB: a fresh copy of $V1 at LIB with what the filesystem
# keeps set to values of its own (a file made by cp has none of them). Its
# directory has a default ACL where the filesystem has ACLs, which the file
# does not have (it predates it): a new inode must not gain it either.
dressed_copy() {
  fresh_copy "$V1" "$1"
  if [ -n "$CAN_ACL" ]; then must setfattr -x system.posix_acl_access "$1"; fi
  if [ -n "$CAN_OWNER" ]; then must chown 1234:5678 "$1"; fi
  if [ -n "$CAN_MODE" ]; then must chmod 4751 "$1"; fi
  if [ -n "$CAN_XATTR" ]; then must setfattr -n user.tg -v "kept $RANDOM" "$1"; fi
  if [ -n "$CAN_TRUSTED" ]; then must setfattr -n trusted.tg -v "trusted $RANDOM" "$1"; fi
  if [ -n "$CAN_BIG_XATTR" ]; then must setfattr -n user.tg.big -v "$BIG$RANDOM" "$1"; fi
}

# meta LIB: mode, owner and every extended attribute, one string.
meta() {
  stat -c '%a %u:%g' -- "$1"
  getfattr --absolute-names -d -m - -e hex -- "$1" 2>/dev/null | grep -v '^#' | sort
}
# short: each line cut to 100 characters (a 60,000-byte value), on one line.
short() { cut -c1-100 | tr '\n' ' '; }

# ------------------------------------------------------------- the cases

# cp_while_victim_runs MODE LIB VLIB: `truncguard cp` of $V2 over LIB in
# MODE while a victim runs VLIB (LIB, or LIB seen through another mount):
# the cp succeeds, the victim survives, a fresh process loads version 2.
cp_while_victim_runs() {
  local m=$1 lib=$2 vlib=$3
  start_victim "$vlib"
  log_reset
  r_run tgcp env TRUNCGUARD_MODE="$m" "$TG_CMD" cp "$V2" "$lib"
  stop_victim
  [ "$R_STATUS" -eq 0 ] || fail "$FS, mode $m: truncguard cp failed: $(r_out tgcp)"
  expect_survived "$FS, mode $m"
  expect_version "$vlib" 2
}

# replaced_by_mode MODE: truncguard cp in MODE over a library a victim runs.
replaced_by_mode() {
  local m=$1 old new before
  dressed_copy "$LIB"
  before=$(meta "$LIB")
  old=$(inode "$LIB")
  cp_while_victim_runs "$m" "$LIB" "$VLIB"
  expect_same_content "$LIB" "$V2"
  new=$(inode "$LIB")
  [ "$new" != "$old" ] || fail "$FS, mode $m: the name kept inode $old: truncated in place"
  expect_no_temp "$D"
  [ "$(meta "$LIB")" = "$before" ] ||
    fail "$FS, mode $m: the metadata changed: before [$(short <<<"$before")], after [$(meta "$LIB" | short)]"
  expect_no_log "could not be"
  local as=$m
  if [ "$m" = atomic ] && [ -z "$CAN_TMPFILE" ]; then
    expect_log "note file=$LIB cannot be published atomically here (" "O_TMPFILE" "replaced at open instead"
    ok "$FS has no O_TMPFILE: $(log_lines "note file=$LIB cannot be published" | cut -f2-)"
    as=replace
  fi
  expect_log "replaced file=$LIB [ino $old -> $new] (mode $as); mapped executable by " "pid $VICTIM_PID ("
  if [ "$as" = atomic ]; then
    expect_log "published file=$LIB [ino $old -> $new] (mode atomic): the writer closed it"
  fi
  ok "$FS, mode $m: inode $old -> $new, the log names the victim, metadata kept ($(head -n1 <<<"$before"))"
}

# lock_exec_case: a program that keeps a POSIX lock on a file through an fd
# it keeps open across an exec (lock_holder: ftruncate of the file, which
# truncguard looks at through an fd of its own, kept open while the file is
# locked; then an exec of itself) still holds the lock in the new image, as
# without truncguard (the control). truncguard's kept fd is handed over to the
# new image marked by its offset, once past 4 GiB: where the filesystem's
# largest offset is smaller (ext2 with 1 KiB blocks: 16 GiB; vfat: 4 GiB) the
# fd was not handed over but closed at the exec, which released the lock.
# (Three times: the mark is random, and most marks were refused on ext2.)
lock_exec_case() {
  local i
  "$TG_LOCK_HOLDER" "$D/locked" ftruncate exec >"$T/lock.out" 2>&1
  grep -q '^exec: held$' "$T/lock.out" || fail "$FS: control: a POSIX lock across an exec: $(cat "$T/lock.out")"
  for i in 1 2 3; do
    "$TG_CMD" "$TG_LOCK_HOLDER" "$D/locked" ftruncate exec >"$T/lock.out" 2>&1
    grep -q '^exec: held$' "$T/lock.out" ||
      fail "$FS: a POSIX lock across an exec under truncguard, run $i: $(cat "$T/lock.out") $(tg_log)"
  done
  rm -f -- "$D/locked"
  ok "$FS: a POSIX lock held through an fd kept across an exec is held in the new image, as without truncguard"
}

# unmapped_cases: a text file and an ELF file nobody maps keep their inodes.
unmapped_cases() {
  local old txt=$D/notes.txt
  printf 'old text\n' >"$txt"
  old=$(inode "$txt")
  log_reset
  "$TG_CMD" sh -c 'printf "new text\n" >"$1"' sh "$txt" || fail "$FS: truncguard sh > text failed"
  [ "$(inode "$txt")" = "$old" ] || fail "$FS: the text file got a new inode"
  [ "$(cat "$txt")" = "new text" ] || fail "$FS: the text file holds \"$(cat "$txt")\""
  expect_log "decision file=$txt: pass (not an ELF shared object or executable)"
  ok "$FS: a text file was truncated in place (inode $old)"

  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  log_reset
  "$TG_CMD" cp "$V2" "$LIB" || fail "$FS: truncguard cp over an unused library failed"
  expect_same_content "$LIB" "$V2"
  if log_lines "decision file=$LIB: pass (no process has it open or mapped (the kernel granted a write lease))" >/dev/null; then
    [ "$(inode "$LIB")" = "$old" ] || fail "$FS: the lease proved the library unused, yet it got a new inode"
    ok "$FS: an unused library was truncated in place (inode $old): the kernel granted the write lease"
  elif [ -n "$LEASE_EXPECTED" ]; then
    fail "$FS: the write lease was not granted on an unused library: $(log_lines "decision file=$LIB" | cut -f2-)"
  elif [ "${TRUNCGUARD_SCOPE:-}" = namespace ]; then
    # No lease here, and every process is seen (our own PID namespace): the
    # scan's answer alone lets the write through in place.
    expect_log "decision file=$LIB: pass (no process maps it executable)"
    [ "$(inode "$LIB")" = "$old" ] || fail "$FS: the scan found nobody, yet a new inode"
    ok "$FS: an unused library was truncated in place (inode $old): the scan found nobody"
  else
    # No lease here: the /proc scan decides (every process seen: pass; some
    # not inspectable: an ELF file counts as mapped and is replaced).
    if log_lines "decision file=$LIB: pass (no process maps it executable)" >/dev/null; then
      [ "$(inode "$LIB")" = "$old" ] || fail "$FS: passed, yet a new inode"
    else
      expect_log "decision file=$LIB: act (some processes could not be inspected"
      [ "$(inode "$LIB")" != "$old" ] || fail "$FS: acted on, yet the same inode"
    fi
    ok "$FS: no write lease here; the scan decided: $(log_lines "decision file=$LIB" | cut -f2-)"
  fi
}

# writer_case WHAT WRITER...: WRITER puts $V2's bytes into $LIB (in place,
# or by a reflink after O_TRUNC) while a victim runs it: without truncguard
# the victim is broken (a signal, or it saw its code change); under
# truncguard (in mode $TRUNCGUARD_MODE, default replace) it survives, the
# name holds all of $V2 at a new inode, and the log names the victim.
writer_case() {
  local what=$1 old new m=${TRUNCGUARD_MODE:-replace} as
  shift
  as=$m
  if [ "$m" = atomic ] && [ -z "$CAN_TMPFILE" ]; then as=replace; fi
  what="$what (mode $m)"
  fresh_copy "$V1" "$LIB"
  start_victim "$VLIB"
  r_run ctl "$@" || fail "$FS: control $what failed: $(r_out ctl)"
  sleep 0.2
  stop_victim
  expect_broken "$FS: control: $what without truncguard"

  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  start_victim "$VLIB"
  log_reset
  r_run tg "$TG_CMD" "$@"
  sleep 0.2
  stop_victim
  [ "$R_STATUS" -eq 0 ] || fail "$FS: $what under truncguard failed (it succeeds without): $(r_out tg)"
  expect_survived "$FS: $what under truncguard"
  expect_same_content "$LIB" "$V2"
  expect_version "$VLIB" 2
  new=$(inode "$LIB")
  [ "$new" != "$old" ] || fail "$FS: $what: the name kept inode $old: written in place"
  expect_no_temp "$D"
  expect_log "replaced file=$LIB [ino $old -> $new] (mode $as); mapped executable by " "pid $VICTIM_PID ("
  ok "$FS: $what went to a new inode ($old -> $new): $(log_lines "replaced file=$LIB" | sed 's/.*mapped executable by //')"
}

# direct_fd_case: an open for writing in place with O_DIRECT (python's
# os.open) of a library a victim runs: the copy of the old content is made
# buffered, yet the caller's fd has O_DIRECT, as it asked.
direct_fd_case() {
  local old new m=${TRUNCGUARD_MODE:-replace}
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  start_victim "$VLIB"
  log_reset
  r_run direct "$TG_CMD" python3 -c '
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)
print("O_DIRECT" if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT else "no O_DIRECT")
os.close(fd)' "$LIB"
  stop_victim
  [ "$R_STATUS" -eq 0 ] || fail "$FS: an O_DIRECT open under truncguard (mode $m) failed: $(r_out direct)"
  expect_survived "$FS: an O_DIRECT open (mode $m)"
  new=$(inode "$LIB")
  [ "$new" != "$old" ] || fail "$FS: an O_DIRECT open (mode $m): the name kept inode $old"
  expect_same_content "$LIB" "$V1" "$FS: the copy made for an O_DIRECT fd (mode $m)"
  [ "$(r_out direct)" = O_DIRECT ] || fail "$FS: the caller's fd lost O_DIRECT (mode $m): $(r_out direct)"
  ok "$FS: an O_DIRECT open (mode $m) got a complete copy (inode $old -> $new), its fd still O_DIRECT"
}

# direct_fallback_case: where the filesystem has no direct I/O, a writer
# that tries O_DIRECT first and falls back to a buffered open on EINVAL (as
# programs do): the kernel's EINVAL must reach it, not ETXTBSY.
direct_fallback_run() {
  r_run fallback "$@" python3 -c '
import errno, os, sys
flags = os.O_WRONLY | os.O_TRUNC
try:
    fd = os.open(sys.argv[1], flags | os.O_DIRECT)
    print("O_DIRECT", end=" ")
except OSError as e:
    print(errno.errorcode[e.errno], end=" ")
    fd = os.open(sys.argv[1], flags)
with open(sys.argv[2], "rb") as src:
    os.write(fd, src.read())
os.close(fd)
print("written")' "$LIB" "$V2"
}
direct_fallback_case() {
  local old new
  fresh_copy "$V1" "$LIB"
  start_victim "$VLIB"
  direct_fallback_run
  stop_victim
  [ "$R_STATUS" -eq 0 ] && [ "$(r_out fallback)" = "EINVAL written" ] ||
    fail "$FS: control: the O_DIRECT-then-buffered writer: $(r_out fallback)"
  expect_killed "$FS: control: O_DIRECT refused (EINVAL), then a buffered O_TRUNC open, without truncguard"
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  start_victim "$VLIB"
  log_reset
  direct_fallback_run "$TG_CMD"
  stop_victim
  [ "$R_STATUS" -eq 0 ] && [ "$(r_out fallback)" = "EINVAL written" ] ||
    fail "$FS: the O_DIRECT-then-buffered writer under truncguard (it gets EINVAL and writes without): $(r_out fallback)"
  expect_survived "$FS: the O_DIRECT-then-buffered writer under truncguard"
  expect_same_content "$LIB" "$V2"
  new=$(inode "$LIB")
  [ "$new" != "$old" ] || fail "$FS: the buffered open truncated inode $old in place"
  expect_no_temp "$D"
  expect_no_log "cannot protect"
  expect_log "decision file=$LIB: pass (O_DIRECT, which this filesystem refuses: the real call answers (EINVAL))"
  expect_log "replaced file=$LIB [ino $old -> $new] (mode replace); mapped executable by " "pid $VICTIM_PID ("
  ok "$FS: O_DIRECT got the kernel's EINVAL, the buffered open a new inode ($old -> $new)"
}

# ftruncate_case: fd_truncator opens $LIB before the victim maps it, then
# ftruncate(fd, 0) and writes $V2 through the same fd.
ftruncate_run() {
  writer_then_victim "$FS: fd_truncator" "$T/ft" "$VLIB" "$@" "$TG_FD_TRUNCATOR" "$LIB" "$V2" "$T/ft.ready" "$T/ft.go"
}
ftruncate_case() {
  local old new
  fresh_copy "$V1" "$LIB"
  ftruncate_run
  expect_killed "$FS: control: ftruncate without truncguard"
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  log_reset
  ftruncate_run "$TG_CMD"
  expect_survived "$FS: ftruncate under truncguard"
  expect_same_content "$LIB" "$V2"
  new=$(inode "$LIB")
  [ "$new" != "$old" ] || fail "$FS: ftruncate: the name kept inode $old"
  expect_fd_kept "$FS: ftruncate" "$T/ft.out"
  expect_no_temp "$D"
  expect_log "replaced file=$LIB [ino $old -> $new] (mode replace); mapped executable by " "pid $VICTIM_PID ("
  ok "$FS: ftruncate moved the writer's fd to inode $new (offset, flags, FD_CLOEXEC kept)"
}

# ftruncate_direct_case: the same with an O_DIRECT fd (python), truncated
# to 4096 bytes: the fd that moves to the new inode keeps O_DIRECT.
ftruncate_direct_run() {
  writer_then_victim "$FS: the O_DIRECT truncator" "$T/ftd" "$VLIB" "$@" python3 -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)
open(sys.argv[2], "w").close()
for _ in range(1000):
    if os.path.exists(sys.argv[3]): break
    time.sleep(0.01)
os.ftruncate(fd, 4096)
print("O_DIRECT" if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT else "no O_DIRECT")' \
    "$LIB" "$T/ftd.ready" "$T/ftd.go"
}
ftruncate_direct_case() {
  local old new
  fresh_copy "$V1" "$LIB"
  ftruncate_direct_run
  expect_killed "$FS: control: ftruncate of an O_DIRECT fd without truncguard"
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  log_reset
  ftruncate_direct_run "$TG_CMD"
  expect_survived "$FS: ftruncate of an O_DIRECT fd under truncguard"
  new=$(inode "$LIB")
  [ "$new" != "$old" ] || fail "$FS: ftruncate of an O_DIRECT fd: the name kept inode $old"
  head -c 4096 "$V1" | cmp -s - "$LIB" || fail "$FS: the new inode is not the first 4096 bytes of the old file"
  [ "$(cat "$T/ftd.out")" = O_DIRECT ] || fail "$FS: the fd moved by ftruncate lost O_DIRECT: $(cat "$T/ftd.out" "$T/ftd.err")"
  expect_log "replaced file=$LIB [ino $old -> $new] (mode replace); mapped executable by " "pid $VICTIM_PID ("
  ok "$FS: ftruncate of an O_DIRECT fd moved it to inode $new (4096 bytes kept), still O_DIRECT"
}

# writable FS LEASE: the whole matrix on $D (the victim loads from $VD).
# LEASE: 1 if the write lease must prove an unused file unused here.
writable() {
  FS=$1
  LEASE_EXPECTED=$2
  LIB=$D/libvictim.so
  VLIB=$VD/libvictim.so
  probe "$D"
  if [ -n "$CAN_ACL" ]; then must r_acl "$D" default 1234; fi
  fresh_copy "$V1" "$LIB"
  start_victim "$VLIB"
  cp "$V2" "$LIB" || fail "$FS: control cp failed"
  stop_victim
  expect_killed "$FS: control: cp without truncguard"
  local m
  for m in replace atomic unlink; do replaced_by_mode "$m"; done
  unmapped_cases
  lock_exec_case
  writer_case "dd conv=notrunc" dd if="$V2" of="$LIB" conv=notrunc status=none
  # A reflink into the file cp truncated (XFS): the clone lands in the new inode.
  if [ -n "$CAN_REFLINK" ]; then
    must cp "$V2" "$D/v2.so"
    for m in replace atomic; do
      TRUNCGUARD_MODE=$m writer_case "cp --reflink=always" cp --reflink=always "$D/v2.so" "$LIB"
    done
    rm -f -- "$D/v2.so"
  fi
  # Direct I/O wants aligned lengths; the copy of the old content is the
  # shim's, and must not fail where the caller's own writes would not.
  if [ -n "$CAN_DIRECT" ]; then
    for m in replace atomic; do
      TRUNCGUARD_MODE=$m writer_case "dd conv=notrunc oflag=direct" \
        dd if="$V2" of="$LIB" bs=4096 conv=notrunc oflag=direct status=none
      TRUNCGUARD_MODE=$m direct_fd_case
    done
  else
    direct_fallback_case
  fi
  ftruncate_case
  if [ -n "$CAN_DIRECT" ]; then ftruncate_direct_case; fi
  TESTED+=("$FS")
}

# read_only FS: the image holds $V1 as libvictim.so and a text file; the
# kernel refuses every write with EROFS, and truncguard passes it through.
read_only() {
  FS=$1
  LIB=$D/libvictim.so
  local old what
  old=$(inode "$LIB")
  start_victim "$LIB"
  r_run ctl cp "$V2" "$LIB"
  [ "$R_STATUS" -ne 0 ] && grep -q "Read-only file system" "$T/ctl.out" ||
    fail "$FS: control: plain cp over the library did not fail with EROFS: $(r_out ctl)"
  ok "$FS: control: the filesystem itself refuses plain cp: $(head -n1 "$T/ctl.out")"
  for what in "cp $V2 $LIB" "dd if=$V2 of=$LIB conv=notrunc status=none" "truncate -s 0 $LIB"; do
    log_reset
    # shellcheck disable=SC2086  # the words of each writer
    r_run tg "$TG_CMD" $what
    [ "$R_STATUS" -ne 0 ] && grep -q "Read-only file system" "$T/tg.out" ||
      fail "$FS: truncguard ${what%% *}: expected the kernel's EROFS, got status $R_STATUS: $(r_out tg)"
    expect_no_log "replaced file=$LIB"
    expect_no_log "cannot protect"
    expect_log "decision file=$LIB: pass ("
    ok "$FS: truncguard ${what%% *}: the kernel's own answer ($(head -n1 "$T/tg.out" | sed 's/.*: //')), passed through"
  done
  stop_victim
  expect_survived "$FS: a library on a read-only image"
  expect_intact "$LIB" "$old" "$V1"
  log_reset
  r_run tg "$TG_CMD" sh -c 'printf x >"$1"' sh "$D/notes.txt"
  [ "$R_STATUS" -ne 0 ] && grep -q "Read-only file system" "$T/tg.out" || fail "$FS: a text file was writable"
  expect_log "decision file=$D/notes.txt: pass (not an ELF shared object or executable)"
  ok "$FS: a text file: passed through to the kernel's EROFS"
  TESTED+=("$FS")
}

# overlay_on NAME LOWER: a read-only image as the lower layer of an overlay
# whose upper layer is a tmpfs (a live system, a container on an image).
# stat() of a file there gives a device overlayfs makes for the layer it
# came from, /proc/PID/maps the overlay's own. The first write copies the
# file up to a new inode in the upper layer: the victim survives even
# without truncguard. The next ones write that upper file: the control
# dies, and truncguard's scan must find the victim (the log names it), as
# must `truncguard who`; mode atomic publishes at close (the name is no
# mount point, though stat() gives the file another device than the
# directory).
overlay_on() {
  local name=$1 lower=$2 up=$T/$1-upper m old new
  FS="overlay on $name"
  mkdir -p "$up" "$T/$name-merged"
  r_tmpfs "$up" "size=16m"
  mkdir "$up/u" "$up/w"
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$up/u,workdir=$up/w" "$T/$name-merged" 2>"$T/mount.err" ||
    { skip_fs "$FS" "cannot mount an overlay: $(cat "$T/mount.err")"; umount "$up"; unset '_r_mounts[-1]'; return; }
  _r_mounts+=("$T/$name-merged")
  LIB=$T/$name-merged/libvictim.so
  VLIB=$LIB
  D=$T/$name-merged
  start_victim "$LIB"
  cp "$V2" "$LIB" || fail "$FS: cp over a lower-layer library failed"
  stop_victim
  expect_survived "$FS: plain cp over a library in the lower layer (overlayfs copies it up to a new inode)"
  note "$FS: stat() says $(stat -c '%D:%i' -- "$LIB") for the copied-up library"
  start_victim "$LIB"
  r_run ctl cp "$V2" "$LIB"
  stop_victim
  expect_killed "$FS: control: cp over the copied-up library without truncguard"
  for m in replace atomic; do
    fresh_copy "$V1" "$LIB"
    old=$(inode "$LIB")
    cp_while_victim_runs "$m" "$LIB" "$LIB"
    new=$(inode "$LIB")
    [ "$new" != "$old" ] || fail "$FS, mode $m: the name kept inode $old"
    expect_no_temp "$D"
    expect_no_log "cannot be published atomically"
    expect_log "replaced file=$LIB [ino $old -> $new] (mode $m); mapped executable by " "pid $VICTIM_PID ("
    if [ "$m" = atomic ]; then expect_log "published file=$LIB [ino $old -> $new] (mode atomic)"; fi
    ok "$FS, mode $m: the scan found the victim: $(log_lines "replaced file=$LIB" | sed 's/.*mapped executable by //')"
  done
  start_victim "$LIB"
  r_run who "$TG_CMD" who "$LIB"
  stop_victim
  awk -v p="$VICTIM_PID" '$1 == p { found = 1 } END { exit !found }' "$T/who.out" ||
    fail "$FS: truncguard who does not list the victim (pid $VICTIM_PID): $(r_out who)"
  ok "$FS: truncguard who lists the victim"
  umount "$T/$name-merged" "$up" || fail "cannot unmount the overlay"
  unset '_r_mounts[-1]' '_r_mounts[-1]'
  TESTED+=("$FS")
}

# -------------------------------------------------------------- the matrix

if loop_fs ext4-nodelalloc ext4 mkfs.ext4 32M nodelalloc mkfs.ext4 -q -F; then
  writable ext4-nodelalloc 1
  fs_done
fi
if loop_fs ext4-data-journal ext4 mkfs.ext4 32M data=journal mkfs.ext4 -q -F; then
  writable ext4-data-journal 1
  fs_done
fi
if loop_fs ext2 ext2 mkfs.ext2 32M defaults mkfs.ext2 -q -F; then
  writable ext2 1
  fs_done
fi
# mkfs.xfs's smallest filesystem is 300 MiB (a sparse image: a few MiB on disk).
if loop_fs xfs xfs mkfs.xfs 300M defaults mkfs.xfs -q -f; then
  writable xfs 1
  fs_done
fi
if loop_fs f2fs f2fs mkfs.f2fs 64M defaults mkfs.f2fs -q -f; then
  writable f2fs ""
  fs_done
fi
if loop_fs vfat vfat mkfs.vfat 32M defaults mkfs.vfat; then
  writable vfat ""
  fs_done
fi
if loop_fs exfat exfat mkfs.exfat 32M defaults mkfs.exfat; then
  writable exfat ""
  fs_done
fi

# ramfs (an initramfs): no extended attributes, no direct I/O (like tmpfs
# before Linux 6.6).
mkdir -p "$T/ramfs"
if mount -t ramfs -o mode=0755 tg-reliability "$T/ramfs" 2>"$T/mount.err"; then
  _r_mounts+=("$T/ramfs")
  D=$T/ramfs
  VD=$D
  writable ramfs 1
  fs_done
else
  skip_fs ramfs "cannot mount a ramfs: $(cat "$T/mount.err")"
fi

# FUSE (a deploy to a FUSE-mounted store, a shared /opt served by one):
# bindfs over a directory of $T, a real FUSE server (no passthrough). The
# library's pages are in the FUSE inode's page cache, so a write in place
# kills the program as anywhere; the kernel refuses the write lease (the
# mapping holds the FUSE inode), so the /proc scan decides, with scope
# namespace in our PID namespace, where it sees every process: the open
# ahead of a write must be told apart from the victim's mapping by the scan
# alone. `who` and `stale` match the FUSE file's device and inode as the
# maps give them. The bindfs daemon dies with our PID namespace.
fuse_inspect() {
  local old
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  r_run who "$TG_CMD" who "$LIB"
  awk -v p="$VICTIM_PID" '$1 == p && /current/ { found = 1 } END { exit !found }' "$T/who.out" ||
    fail "$FS: truncguard who does not list the victim (pid $VICTIM_PID) as running the current file: $(r_out who)"
  ok "$FS: truncguard who lists the victim, current"
  r_run stale "$TG_CMD" stale
  [ "$R_STATUS" -eq 0 ] || fail "$FS: truncguard stale before the deploy (status $R_STATUS): $(r_out stale)"
  old=$(inode "$LIB")
  "$TG_CMD" cp "$V2" "$LIB" || fail "$FS: truncguard cp failed"
  [ "$(inode "$LIB")" != "$old" ] || fail "$FS: the name kept inode $old"
  r_run who "$TG_CMD" who "$LIB"
  awk -v p="$VICTIM_PID" '$1 == p && /replaced/ { found = 1 } END { exit !found }' "$T/who.out" ||
    fail "$FS: truncguard who does not list the victim (pid $VICTIM_PID) as running a replaced file: $(r_out who)"
  r_run stale "$TG_CMD" stale
  [ "$R_STATUS" -eq 1 ] && grep -q "$VICTIM_PID" "$T/stale.out" && grep -qF "$LIB" "$T/stale.out" ||
    fail "$FS: truncguard stale (status $R_STATUS) does not list the victim running the replaced $LIB: $(r_out stale)"
  stop_victim
  expect_survived "$FS: who, cp, who, stale"
  ok "$FS: after the deploy, who lists the victim as running a replaced file, and stale lists it"
}
if ! command -v bindfs >/dev/null; then
  skip_fs fuse "bindfs missing (scripts/setup.sh installs it)"
elif ! kernel_has fuse || [ ! -c /dev/fuse ]; then
  skip_fs fuse "this kernel has no FUSE (not in /proc/filesystems, or no /dev/fuse)"
elif [ -z "${R_IN_PID_NS:-}" ]; then
  skip_fs fuse "no PID namespace of our own (unshare -p): the bindfs daemon could outlive the test"
else
  mkdir -p "$T/fuse/src" "$T/fuse/mnt"
  if bindfs "$T/fuse/src" "$T/fuse/mnt" 2>"$T/mount.err"; then
    _r_mounts+=("$T/fuse/mnt")
    [ "$(stat -f -c %t -- "$T/fuse/mnt")" = 65735546 ] || fail "setup: $T/fuse/mnt is not a FUSE mount"
    D=$T/fuse/mnt
    VD=$D
    TRUNCGUARD_SCOPE=namespace writable "fuse (bindfs)" ""
    TRUNCGUARD_SCOPE=namespace fuse_inspect
    fs_done
  else
    skip_fs fuse "cannot mount bindfs: $(cat "$T/mount.err")"
  fi
fi

# tmpfs noexec,nosuid: no program maps code from it.
FS=tmpfs-noexec
r_tmpfs "$T/tmpfs/exec" "size=16m"
mkdir -p "$T/tmpfs/noexec"
r_mount --bind "$T/tmpfs/exec" "$T/tmpfs/noexec"
r_mount -o remount,bind,noexec,nosuid "$T/tmpfs/noexec"
LIB=$T/tmpfs/noexec/libvictim.so
fresh_copy "$V1" "$LIB"
got=$("$TG_VICTIM" --once "$LIB" 2>&1) && fail "$FS: a library on a noexec mount was loaded: $got"
ok "$FS: a program can't load a library from it: $got"
old=$(inode "$LIB")
log_reset
"$TG_CMD" cp "$V2" "$LIB" || fail "$FS: truncguard cp failed"
[ "$(inode "$LIB")" = "$old" ] || fail "$FS: a library nobody can map got a new inode"
expect_log "decision file=$LIB: pass (no process has it open or mapped (the kernel granted a write lease))"
ok "$FS: so nothing maps it, and truncguard cp truncated it in place (the write lease)"
# The same tmpfs at an exec mount point, where a service runs the library;
# the deploy writes through the noexec,nosuid one.
D=$T/tmpfs/noexec
VD=$T/tmpfs/exec
writable "tmpfs-noexec (run through an exec bind)" 1

# Read-only images.
mkdir -p "$T/ro-src"
must cp "$V1" "$T/ro-src/libvictim.so"
printf 'text\n' >"$T/ro-src/notes.txt"
if can_make squashfs squashfs mksquashfs squashfs-tools; then
  mksquashfs "$T/ro-src" "$T/squashfs/img" -quiet -noappend >"$T/mkfs.out" 2>&1 ||
    fail "setup: mksquashfs: $(cat "$T/mkfs.out")"
  if mount_image squashfs squashfs ro; then
    read_only squashfs
    overlay_on squashfs "$D"
    fs_done
  fi
fi
if can_make erofs erofs mkfs.erofs erofs-utils; then
  mkfs.erofs --quiet "$T/erofs/img" "$T/ro-src" >"$T/mkfs.out" 2>&1 || fail "setup: mkfs.erofs: $(cat "$T/mkfs.out")"
  if mount_image erofs erofs ro; then
    read_only erofs
    overlay_on erofs "$D"
    fs_done
  fi
fi

[ "$LOOPS" -gt 0 ] || skip "no loop-mounted image could be tested: ${SKIPPED[*]}"
note "tested: $(printf '%s; ' "${TESTED[@]}")"
[ ${#SKIPPED[@]} -eq 0 ] || note "skipped: $(printf '%s; ' "${SKIPPED[@]}")"
