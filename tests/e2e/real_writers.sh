#!/bin/bash
# The writers real deploy steps use, each with its own system calls, over a
# library a running process has loaded. For each writer found on this machine:
#
#  - one that writes the old inode (truncates it, or rewrites it in place):
#    without truncguard the victim dies (the control); under truncguard it
#    lives on with version 1, the name holds a new inode with exactly the
#    bytes the writer produced without truncguard (a fresh process loads
#    them), the writer's exit status, stdout and stderr are the same, the
#    file has the same permissions, owner, group, extended attributes and,
#    where the writer set it or left it, mtime, no temp file is left, and the log says
#    "replaced ... mapped executable by pid VICTIM".
#  - one that is safe by design (it unlinks or renames, so the name gets a
#    new inode anyway): the victim lives on with and without truncguard,
#    truncguard changes nothing of what the writer does and replaces nothing.
#
# The system calls noted for each writer were read with
#   strace -f -e trace=%file,%desc,ftruncate,truncate,fchmod
# on Debian 12 (coreutils 9.1, GNU tar 1.34, binutils 2.40, rsync 3.2.7,
# busybox 1.35, Python 3.11, perl 5.36). A writer that is not installed is
# skipped with its reason; the test fails if none of the protected cases ran.
SRC_DIR=$(cd "$(dirname "$0")/../victim" && pwd)   # libvictim.c, for the linkers
. "$(dirname "$0")/lib.sh"
need_victims
need_shim

D=$T/lib                   # the library's directory: only the library lives here
IN=$T/in                   # the writers' inputs (archives, objects)
LIB=$D/libvictim.so
mkdir -p "$D" "$IN"

# A distinctive mode, owner, extended attribute and mtime, so that a
# replacement that lost one, or a writer's own, shows.
OWNER=
[ "$(id -u)" -eq 0 ] && OWNER=1234:5678
XATTRS=1
fresh_lib() {
  fresh_copy "$V1" "$LIB"
  chmod 0750 "$LIB"
  [ -z "$OWNER" ] || chown "$OWNER" "$LIB"
  [ -z "$XATTRS" ] || setfattr -n user.tg -v old "$LIB" || fail "setfattr failed"
  touch -d '2021-01-02 03:04:05.123456789' "$LIB"
}

# run_writer TAG WRITER [WRAPPER...]: WRITER runs in $D, its command after
# "$@"; its status goes to RUN_STATUS, its outputs to $T/TAG.{stdout,stderr}.out.
# $T/TAG.start is older than anything the writer does.
run_writer() {
  local tag=$1 writer=$2
  shift 2
  touch "$T/$tag.start"
  (cd "$D" && "$writer" "$@") >"$T/$tag.stdout.out" 2>"$T/$tag.stderr.out"
  RUN_STATUS=$?
}

# What the writer left: the bytes, the mode, owner, group, extended
# attributes and mtime (the writer's own, or the old one it left; not the
# time of its write), and the directory's names.
snapshot() {
  local mtime=written
  [ "$LIB" -ot "$T/$1.start" ] && mtime=$(stat -c %y -- "$LIB")
  {
    stat -c 'mode %a, owner %u:%g' -- "$LIB"
    echo "mtime $mtime"
    [ -z "$XATTRS" ] || getfattr -d -m - -e hex --absolute-names -- "$LIB" | sed 1d | paste -sd ' '
  } >"$T/$1.mode"
  cp -- "$LIB" "$T/$1.result" || fail "$2: no file at $LIB after the write"
  ls -A -- "$D" >"$T/$1.ls"
}

# Under truncguard the writer must see what it sees without it.
same_as_control() {
  local name=$1 st_ctl=$2 st_tg=$3 f
  [ "$st_tg" -eq "$st_ctl" ] ||
    fail "$name: exit status $st_tg under truncguard, $st_ctl without"
  for f in stdout stderr; do
    cmp -s "$T/ctl.$f.out" "$T/tg.$f.out" ||
      fail "$name: $f differs under truncguard: [$(cat "$T/tg.$f.out")] vs [$(cat "$T/ctl.$f.out")]"
  done
  cmp -s "$T/ctl.result" "$T/tg.result" ||
    fail "$name: the file under truncguard ($(stat -c %s "$T/tg.result") bytes) differs from the writer's own result ($(stat -c %s "$T/ctl.result") bytes)"
  cmp -s "$T/ctl.mode" "$T/tg.mode" ||
    fail "$name: [$(paste -sd ';' "$T/tg.mode")] under truncguard, [$(paste -sd ';' "$T/ctl.mode")] without"
  cmp -s "$T/ctl.ls" "$T/tg.ls" ||
    fail "$name: the directory holds [$(paste -sd ' ' "$T/tg.ls")] under truncguard, [$(paste -sd ' ' "$T/ctl.ls")] without"
  ok "$name: same status, output, bytes, mode, owner, xattrs, mtime and directory as without truncguard"
}

PROTECTED=0
SAFE=0
skip_case() { note "skip $1: $2"; }
have() { command -v "$1" >/dev/null 2>&1; }
if ! have setfattr; then
  XATTRS=; note "extended attributes not compared: setfattr not installed (scripts/setup.sh installs attr)"
elif ! err=$(touch "$D/probe" && setfattr -n user.tg -v probe "$D/probe" 2>&1); then
  XATTRS=; note "extended attributes not compared: $err"
fi
rm -f -- "$D/probe"

# protected NAME VERSION HOW WRITER: WRITER writes the old inode. HOW is
# "killed" (it truncates: the victim must die by a signal) or "broken" (it
# rewrites in place: a signal, or the victim saw its code change). VERSION is
# what a fresh process loads from the result; "-" for a result no process
# can load (a hole punched in it): its bytes are still compared.
protected() {
  local name=$1 want=$2 how=$3 writer=$4 st_ctl old new
  fresh_lib
  start_victim "$LIB"
  run_writer ctl "$writer"
  st_ctl=$RUN_STATUS
  [ "$st_ctl" -eq 0 ] || fail "control: $name failed without truncguard ($(describe_status "$st_ctl")): $(cat "$T/ctl.stderr.out")"
  stop_victim
  "expect_$how" "control: $name without truncguard"
  snapshot ctl "control: $name"

  fresh_lib
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  run_writer tg "$writer" "$TG_CMD"
  [ "$RUN_STATUS" -eq "$st_ctl" ] ||
    fail "$name: $(describe_status "$RUN_STATUS") under truncguard, exit $st_ctl without: $(cat "$T/tg.stderr.out")"
  stop_victim
  expect_survived "$name under truncguard"
  snapshot tg "$name"
  same_as_control "$name" "$st_ctl" "$RUN_STATUS"
  [ "$want" = - ] || expect_version "$LIB" "$want"
  new=$(inode "$LIB")
  [ "$new" != "$old" ] || fail "$name: the name kept inode $old: it was written in place"
  # The write that met the victim's inode names the victim. A later call on
  # the writer's new inode (truncate's ftruncate after its open) may replace
  # that one too, where some process can't be inspected: the chain must end
  # at the name's inode.
  expect_log "libvictim.so [ino $old -> " "] (mode replace); mapped executable by " "pid $VICTIM_PID ("
  expect_log "libvictim.so [ino " " -> $new] (mode replace)"
  ok "$name: protected, the log names the victim"
  PROTECTED=$((PROTECTED + 1))
}

# safe NAME WRITER: WRITER gives the name a new inode by itself. The victim
# survives without truncguard, and under it, which replaces nothing.
safe() {
  local name=$1 writer=$2 tag old new st_ctl=0
  for tag in ctl tg; do
    fresh_lib
    old=$(inode "$LIB")
    start_victim "$LIB"
    log_reset
    if [ "$tag" = ctl ]; then
      run_writer ctl "$writer"
      st_ctl=$RUN_STATUS
      [ "$st_ctl" -eq 0 ] || fail "control: $name failed ($(describe_status "$st_ctl")): $(cat "$T/ctl.stderr.out")"
    else
      run_writer tg "$writer" "$TG_CMD"
      [ "$RUN_STATUS" -eq "$st_ctl" ] ||
        fail "$name: $(describe_status "$RUN_STATUS") under truncguard, exit $st_ctl without: $(cat "$T/tg.stderr.out")"
    fi
    stop_victim
    expect_survived "$name $([ "$tag" = ctl ] && echo without || echo under) truncguard"
    snapshot "$tag" "$name"
    new=$(inode "$LIB")
    [ "$new" != "$old" ] || fail "$name: the name kept inode $old: the writer is not safe by design"
    expect_version "$LIB" 2
  done
  same_as_control "$name" "$st_ctl" "$RUN_STATUS"
  expect_no_log "replaced file="
  ok "$name: safe by design, truncguard replaced nothing"
  SAFE=$((SAFE + 1))
}

# The inputs: an archive of each kind whose only member is libvictim.so = v2.
mkdir -p "$T/stage"
cp "$V2" "$T/stage/libvictim.so"
chmod 0644 "$T/stage/libvictim.so"
must tar -cf "$IN/v2.tar" -C "$T/stage" libvictim.so
must gzip -c -n "$V2" >"$IN/v2.gz"
if have zip; then (cd "$T/stage" && zip -q -X "$IN/v2.zip" libvictim.so) || fail "cannot make v2.zip"; fi

# A directory on another filesystem than $D (a tmpfs, as /tmp often is), for
# the writers that behave differently across filesystems; removed on exit.
other_fs_dir "$D"

# Python: the Debian interpreter if there is one (a pyenv shim runs bash first).
PY=
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; elif have python3; then PY=$(command -v python3); fi

# ============================================================ written in place

# python open(p, "wb").write(...): openat(O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC),
# write. Truncates the mapped inode (shutil.copyfile opens the same way).
py_wb() { "$@" "$PY" -c 'import sys; open(sys.argv[1], "wb").write(open(sys.argv[2], "rb").read())' libvictim.so "$V2"; }
# python open(p, "r+b"): openat(O_RDWR), write over the old bytes, ftruncate
# to the new length. No truncation, but the mapped pages change in place.
py_rplus() {
  "$@" "$PY" -c '
import sys
data = open(sys.argv[2], "rb").read()
with open(sys.argv[1], "r+b") as f:
    f.write(data)
    f.truncate()' libvictim.so "$V2"
}
# python os.truncate(p, 0): truncate(2) by path; then bash ">>" appends
# (O_WRONLY|O_APPEND, which truncguard lets through: it changes no mapped byte).
py_truncate_append() { "$@" "$PY" -c 'import os, sys; os.truncate(sys.argv[1], 0)' libvictim.so && "$@" bash -c 'cat "$1" >> libvictim.so' bash "$V2"; }
if [ -n "$PY" ]; then
  protected "python open wb" 2 killed py_wb
  protected "python open r+b" 2 broken py_rplus
  protected "python os.truncate, then >>" 2 killed py_truncate_append
else
  skip_case python "python3 not found"
fi

# perl open(my $f, ">", $p): openat(O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC), write.
perl_gt() { "$@" perl -e 'open(my $i, "<:raw", $ARGV[1]) or die "$!"; local $/; my $d = <$i>;
  open(my $f, ">:raw", $ARGV[0]) or die "$ARGV[0]: $!"; print {$f} $d; close $f or die "$!"' libvictim.so "$V2"; }
if have perl; then protected "perl open >" 2 killed perl_gt; else skip_case perl "perl not found"; fi

# coreutils truncate -s 0: openat(O_WRONLY|O_CREAT|O_NONBLOCK) (no O_TRUNC:
# truncguard copies the old content to a new inode), then ftruncate(fd, 0) on
# that fd, now the copy's; then ">>" appends. (Not truncate(2): see python.)
truncate_append() { "$@" truncate -s 0 libvictim.so && "$@" bash -c 'cat "$1" >> libvictim.so' bash "$V2"; }
protected "truncate -s 0, then >>" 2 killed truncate_append

# dash ": > lib; cat >> lib": dash's own openat(O_WRONLY|O_CREAT|O_TRUNC), then
# O_WRONLY|O_CREAT|O_APPEND. (bash's "cat v2 > lib" is redirect_dlopen.sh.)
dash_empty_append() { "$@" dash -c ': > libvictim.so; cat "$1" >> libvictim.so' dash "$V2"; }
if have dash; then protected "dash : >, then >>" 2 killed dash_empty_append; else skip_case dash "dash not found"; fi

# bash "gzip -dc v2.gz > lib": bash's openat(O_WRONLY|O_CREAT|O_TRUNC) in the
# child, gzip writes to its stdout.
gunzip_redirect() { "$@" bash -c 'gzip -dc "$1" > libvictim.so' bash "$IN/v2.gz"; }
protected "bash gzip -dc > lib" 2 killed gunzip_redirect

# cp --reflink=auto and --sparse=always: openat(O_WRONLY|O_TRUNC) on the
# existing name (as plain cp), then FICLONE (EOPNOTSUPP on ext4) and
# copy_file_range, or writes with lseek over holes.
cp_reflink() { "$@" cp --reflink=auto "$V2" libvictim.so; }
cp_sparse() { "$@" cp --sparse=always "$V2" libvictim.so; }
protected "cp --reflink=auto" 2 killed cp_reflink
protected "cp --sparse=always" 2 killed cp_sparse

# Writers that give the file the source's metadata: a copy of v2 with a mode,
# owner, mtime and extended attribute of its own. What the name holds must
# be theirs, as the writer set them, on the new inode.
# cp -p: openat(O_WRONLY|O_TRUNC) as plain cp, then on that fd utimensat,
# the ACL (fsetxattr) and fchown.
# python shutil.copy2: open "wb" (as above), then by path utimensat,
# listxattr/setxattr of each of the source's, chmod.
# rsync -a --inplace: in place (below), then the source's times and mode by path.
cp_p() { "$@" cp -p "$IN/v2-stamped.so" libvictim.so; }
py_copy2() { "$@" "$PY" -c 'import shutil, sys; shutil.copy2(sys.argv[1], "libvictim.so")' "$IN/v2-stamped.so"; }
rsync_a_inplace() { "$@" rsync -a --inplace "$IN/v2-stamped.so" libvictim.so; }
cp "$V2" "$IN/v2-stamped.so"
chmod 0644 "$IN/v2-stamped.so"
[ -z "$OWNER" ] || chown 4321:8765 "$IN/v2-stamped.so"
[ -z "$XATTRS" ] || setfattr -n user.src -v v2 "$IN/v2-stamped.so"
touch -d '2019-05-05 05:05:05.5' "$IN/v2-stamped.so"
protected "cp -p" 2 killed cp_p
# cp -a: the same open, then every attribute cp can keep (times, owner,
# mode, xattrs) from the source, set on that fd.
cp_a() { "$@" cp -a "$IN/v2-stamped.so" libvictim.so; }
protected "cp -a" 2 killed cp_a
if [ -n "$PY" ]; then protected "python shutil.copy2" 2 killed py_copy2; fi
if have rsync; then protected "rsync -a --inplace" 2 broken rsync_a_inplace; fi

# GNU tar --overwrite: openat(O_WRONLY|O_CREAT|O_TRUNC|O_NONBLOCK|O_NOFOLLOW|
# O_CLOEXEC, 0600) over the existing member, then fchmod/utimensat. (Without
# --overwrite, tar unlinks first: below.)
tar_overwrite() { "$@" tar --overwrite -xf "$IN/v2.tar"; }
protected "tar --overwrite -xf" 2 killed tar_overwrite

# strip / objcopy in place (binutils 2.40): write a temp file "stXXXXXX"
# next to it, then openat(lib, O_WRONLY|O_TRUNC) and copy the temp back into
# the old inode, fchmod, unlink the temp. What loads afterwards is the
# stripped version 1.
strip_inplace() { "$@" strip libvictim.so; }
objcopy_inplace() { "$@" objcopy --strip-debug libvictim.so; }
if have strip; then protected "strip in place" 1 killed strip_inplace; else skip_case strip "binutils not installed"; fi
if have objcopy; then protected "objcopy in place" 1 killed objcopy_inplace; else skip_case objcopy "binutils not installed"; fi

# rsync --inplace: the receiver opens the basis read-only, then
# openat(O_WRONLY|O_CREAT) (no O_TRUNC), writes over the old bytes and
# ftruncate(fd, size): in place.
# With the delta algorithm (as over ssh), the receiver skips the blocks that
# match with lseek(fd, N, SEEK_CUR) from the fd's offset: the new inode's fd
# must start at offset 0, as a fresh open does.
rsync_inplace() { "$@" rsync --inplace "$V2" libvictim.so; }
rsync_inplace_delta() { "$@" rsync --inplace --no-whole-file "$V2" libvictim.so; }
if have rsync; then
  protected "rsync --inplace" 2 broken rsync_inplace
  protected "rsync --inplace --no-whole-file" 2 broken rsync_inplace_delta
else
  skip_case "rsync --inplace" "rsync not installed (scripts/setup.sh installs it)"
fi

# patchelf --set-rpath: reads the whole file (O_RDONLY), then
# openat(O_WRONLY|O_CREAT|O_TRUNC, 0777) and writes it back, modified.
patchelf_rpath() { "$@" patchelf --set-rpath /opt/truncguard-test libvictim.so; }
if have patchelf; then protected "patchelf --set-rpath" 1 killed patchelf_rpath; else skip_case patchelf "patchelf not installed (scripts/setup.sh installs it)"; fi

# util-linux fallocate: openat(O_RDWR) (no O_TRUNC: truncguard copies the old
# content to a new inode), then fallocate(PUNCH_HOLE|KEEP_SIZE) or
# COLLAPSE_RANGE on that fd, now the copy's. The result has a hole where the
# header and the first code were: nothing can load it, its bytes are compared.
fallocate_punch() { "$@" fallocate --punch-hole -o 0 -l 8192 libvictim.so; }
fallocate_collapse() { "$@" fallocate --collapse-range -o 4096 -l 4096 libvictim.so; }
if ! have fallocate; then
  skip_case fallocate "util-linux's fallocate not installed"
elif ! err=$(cp "$V1" "$D/probe" && fallocate --punch-hole -o 0 -l 8192 "$D/probe" 2>&1); then
  skip_case fallocate "this filesystem can't punch holes: $err"
else
  protected "fallocate --punch-hole" - broken fallocate_punch
  if err=$(fallocate --collapse-range -o 4096 -l 4096 "$D/probe" 2>&1); then
    protected "fallocate --collapse-range" - broken fallocate_collapse
  else
    skip_case "fallocate --collapse-range" "this filesystem can't collapse a range: $err"
  fi
fi
rm -f -- "$D/probe"

# dd oflag=direct conv=fsync: openat(O_WRONLY|O_CREAT|O_TRUNC|O_DIRECT), 4 KiB
# writes that only an fd with direct I/O on an aligned file offset accepts as
# they are, F_SETFL taking O_DIRECT off for the last, partial block, fsync.
# With conv=notrunc: the same open without O_TRUNC, over the old bytes.
dd_direct() { "$@" dd if="$V2" of=libvictim.so bs=4096 oflag=direct conv=fsync status=none; }
dd_direct_notrunc() { "$@" dd if="$V2" of=libvictim.so bs=4096 oflag=direct conv=fsync,notrunc status=none; }
if err=$(dd if="$V1" of="$D/probe" bs=4096 count=1 oflag=direct status=none 2>&1); then
  protected "dd oflag=direct conv=fsync" 2 killed dd_direct
  protected "dd oflag=direct conv=fsync,notrunc" 2 broken dd_direct_notrunc
  # The new inode's fd does the direct I/O dd asked for: dd's F_GETFL on it
  # (fd 1), before it takes O_DIRECT off for the last block, shows O_DIRECT.
  if have strace; then
    fresh_lib
    start_victim "$LIB"
    # (LeakSanitizer, which an ASan build of the shim brings, can't run under ptrace.)
    run_writer dd_direct dd_direct env ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
      strace -f -qq -e trace=fcntl -o "$T/dd_direct.strace" "$TG_CMD"
    stop_victim
    [ "$RUN_STATUS" -eq 0 ] || fail "dd oflag=direct under strace and truncguard: $(cat "$T/dd_direct.stderr.out")"
    expect_survived "dd oflag=direct under strace and truncguard"
    grep -q 'fcntl(1, F_GETFL) *= .*O_DIRECT' "$T/dd_direct.strace" ||
      fail "dd oflag=direct: the new inode's fd has no O_DIRECT: $(grep 'F_[GS]ETFL' "$T/dd_direct.strace")"
    ok "dd oflag=direct: the new inode's fd has O_DIRECT"
  fi
else
  skip_case "dd oflag=direct" "this filesystem has no direct I/O: $err"
fi
rm -f -- "$D/probe"

# sponge (moreutils) writes its input to a temp file in $TMPDIR, then renames
# it over the name; where $TMPDIR is another filesystem (a tmpfs /tmp), the
# rename fails (EXDEV) and it copies: openat(O_WRONLY|O_CREAT|O_TRUNC).
sponge_v2() { "$@" bash -c 'sponge libvictim.so < "$1"' bash "$V2"; }
sponge_other_fs() { TMPDIR=$OTHER_FS sponge_v2 "$@"; }
if ! have sponge; then
  skip_case sponge "sponge not installed (scripts/setup.sh installs moreutils)"
elif [ -z "$OTHER_FS" ]; then
  skip_case "sponge, TMPDIR on another filesystem" "no writable /dev/shm on another filesystem than $D"
else
  protected "sponge, TMPDIR on another filesystem" 2 killed sponge_other_fs
fi

# curl -o: openat(O_WRONLY|O_CREAT|O_TRUNC), the download written there.
curl_o() { "$@" curl -s -S -o libvictim.so "file://$V2"; }
if have curl; then protected "curl -o" 2 killed curl_o; else skip_case curl "curl not installed"; fi

# node fs.copyFileSync (libuv's uv_fs_copyfile): openat(O_WRONLY|O_CREAT)
# without O_TRUNC, ftruncate(fd, 0), fchmod(fd, the source's mode), then
# copy_file_range into the fd at its own offset.
node_copy() { "$@" node -e 'require("fs").copyFileSync(process.argv[1], "libvictim.so")' "$V2"; }
if ! have node; then
  skip_case node "node not installed"
elif asan_cannot_start node; then
  skip_case node "$NO_ASAN"
else
  protected "node fs.copyFileSync" 2 killed node_copy
fi

# busybox cp: openat(O_WRONLY|O_CREAT|O_TRUNC, 0100644). busybox unzip -o:
# openat(O_WRONLY|O_CREAT|O_TRUNC|O_NOFOLLOW) over the existing file (unlike
# Info-ZIP's unzip, which unlinks first).
bb_cp() { "$@" busybox cp "$V2" libvictim.so; }
bb_unzip() { "$@" busybox unzip -o -q "$IN/v2.zip"; }
if have busybox; then
  protected "busybox cp" 2 killed bb_cp
  if [ -e "$IN/v2.zip" ]; then
    protected "busybox unzip -o" 2 killed bb_unzip
  else
    skip_case "busybox unzip" "zip not installed (no archive to unzip)"
  fi
else
  skip_case busybox "busybox not installed (scripts/setup.sh installs it)"
fi

# A python script that turns an append-only fd into a rewrite: openat(
# O_WRONLY|O_APPEND) passes (appending changes no mapped byte), fcntl(F_SETFL, 0)
# drops O_APPEND, write() at the fd's offset 0, ftruncate. truncguard moves the
# fd to a copy at the F_SETFL: the fd must keep its offset (0). (It was left at
# the old end of file, after the copy's write(): the new bytes landed after the
# old library, and the file differed from the writer's own result.)
py_setfl() {
  "$@" "$PY" -c '
import fcntl, os, sys
data = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
fcntl.fcntl(fd, fcntl.F_SETFL, 0)
os.write(fd, data)
os.ftruncate(fd, len(data))
os.close(fd)' libvictim.so "$V2"
}
if [ -n "$PY" ]; then protected "python fcntl F_SETFL drops O_APPEND, write" 2 broken py_setfl; fi

# ============================================================= safe by design

# install: unlinkat(lib), openat(O_WRONLY|O_CREAT|O_EXCL), fchmodat.
install_v2() { "$@" install -m 0750 "$V2" libvictim.so; }
safe "install" install_v2

# install -C (make install's "only if it changed"): reads both files, then as
# install.
install_c() { "$@" install -C -m 0750 "$V2" libvictim.so; }
safe "install -C" install_c

# cp --remove-destination: unlinkat, then openat(O_WRONLY|O_CREAT|O_EXCL).
cp_remove() { "$@" cp --remove-destination "$V2" libvictim.so; }
safe "cp --remove-destination" cp_remove

# mv -f: renameat2(RENAME_NOREPLACE) fails with EEXIST, then renameat.
mv_v2() { cp "$V2" "$T/v2-to-move.so" && "$@" mv -f "$T/v2-to-move.so" libvictim.so; }
safe "mv -f" mv_v2

# mv from another filesystem: renameat fails with EXDEV; mv unlinks the name,
# copies into openat(O_WRONLY|O_CREAT|O_EXCL), then removes the source.
mv_other_fs() { cp "$V2" "$OTHER_FS/v2-to-move.so" && "$@" mv -f "$OTHER_FS/v2-to-move.so" libvictim.so; }
if [ -n "$OTHER_FS" ]; then
  safe "mv from another filesystem" mv_other_fs
else
  skip_case "mv from another filesystem" "no writable /dev/shm on another filesystem than $D"
fi

# sponge with $TMPDIR on the same filesystem: renameat over the name.
sponge_same_fs() { TMPDIR=$T sponge_v2 "$@"; }
if have sponge; then safe "sponge" sponge_same_fs; fi

# ln -f: linkat to a random temp name, renameat over the name.
ln_v2() { "$@" ln -f "$V2" libvictim.so; }
safe "ln -f" ln_v2

# GNU sed -i: reads lib (O_RDONLY), writes ./sedXXXXXX, rename over lib.
# "$r FILE" with -n outputs exactly FILE's bytes.
sed_i() { "$@" sed -n -i "\$r $V2" libvictim.so; }
safe "sed -i" sed_i

# perl -pi: reads lib, writes a temp in the directory, renameat over lib.
perl_pi() { V2=$V2 "$@" perl -0777 -pi -e 'open my $f, "<:raw", $ENV{V2} or die "$!"; $_ = <$f>' libvictim.so; }
if have perl; then safe "perl -pi" perl_pi; else skip_case "perl -pi" "perl not found"; fi

# GNU tar -xf (default): openat(O_EXCL) fails with EEXIST, unlinkat, openat(O_EXCL).
tar_x() { "$@" tar -xf "$IN/v2.tar"; }
safe "tar -xf" tar_x

# GNU tar --unlink-first: unlinkat before each member, then openat(O_EXCL).
tar_unlink_first() { "$@" tar --unlink-first -xf "$IN/v2.tar"; }
safe "tar --unlink-first -xf" tar_unlink_first

# gzip -d -f: openat(O_EXCL) fails, unlink, openat(O_EXCL).
gunzip_f() { cp "$IN/v2.gz" libvictim.so.gz && "$@" gzip -d -f libvictim.so.gz; }
safe "gzip -d -f" gunzip_f

# xz -d -f: as gzip. zstd -d -f -o: unlinks the name, then
# openat(O_WRONLY|O_CREAT|O_TRUNC) on the missing name.
unxz_f() { xz -c "$V2" >libvictim.so.xz && "$@" xz -d -f libvictim.so.xz; }
unzstd_o() { "$@" zstd -q -d -f "$IN/v2.zst" -o libvictim.so; }
if have xz; then safe "xz -d -f" unxz_f; else skip_case xz "xz not installed (scripts/setup.sh installs xz-utils)"; fi
if have zstd; then
  must zstd -q -c "$V2" >"$IN/v2.zst"
  safe "zstd -d -f -o" unzstd_o
else
  skip_case zstd "zstd not installed (scripts/setup.sh installs it)"
fi

# rsync (default): writes .libvictim.so.XXXXXX (O_EXCL), renameat over the name.
rsync_v2() { "$@" rsync "$V2" libvictim.so; }
if have rsync; then safe "rsync" rsync_v2; else skip_case rsync "rsync not installed (scripts/setup.sh installs it)"; fi

# cpio -i -u: unlink, then openat(O_WRONLY|O_CREAT).
cpio_iu() { "$@" cpio -i -u --quiet <"$IN/v2.cpio"; }
if have cpio; then
  (cd "$T/stage" && echo libvictim.so | cpio -o --quiet >"$IN/v2.cpio") || fail "cannot make v2.cpio"
  safe "cpio -i -u" cpio_iu
else
  skip_case cpio "cpio not installed (scripts/setup.sh installs it)"
fi

# Info-ZIP unzip -o: unlink, then openat(O_RDWR|O_CREAT|O_TRUNC) on the missing name.
unzip_o() { "$@" unzip -o -q "$IN/v2.zip"; }
if have unzip && [ -e "$IN/v2.zip" ]; then safe "unzip -o" unzip_o; else skip_case "unzip -o" "unzip or zip not installed"; fi

# busybox tar -xf: unlink, openat(O_WRONLY|O_CREAT|O_EXCL), chown, chmod.
bb_tar() { "$@" busybox tar -xf "$IN/v2.tar"; }
if have busybox; then safe "busybox tar -xf" bb_tar; fi

# cmake -E copy: unlinks the name first, then openat(O_WRONLY|O_CREAT|O_TRUNC).
cmake_copy() { "$@" cmake -E copy "$V2" libvictim.so; }
if have cmake; then safe "cmake -E copy" cmake_copy; else skip_case cmake "cmake not installed"; fi

# cmake --install (make install of a CMake project): for a library older than
# the built one, unlinks the name, then openat(O_WRONLY|O_CREAT|O_TRUNC) on the
# missing name, chmod, utimensat. The prefix is $T: it installs to $T/lib = $D.
cmake_install() { "$@" cmake --install "$T/cmake/build" --prefix "$T"; }
if have cmake; then
  mkdir -p "$T/cmake/src"
  cp "$SRC_DIR/libvictim.c" "$T/cmake/src/"
  cat >"$T/cmake/src/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.13)
project(victim C)
add_library(victim SHARED libvictim.c)
target_compile_definitions(victim PRIVATE VICTIM_VERSION=2)
install(TARGETS victim LIBRARY DESTINATION lib)
EOF
  must cmake -S "$T/cmake/src" -B "$T/cmake/build" >/dev/null
  must cmake --build "$T/cmake/build" >/dev/null
  safe "cmake --install" cmake_install
fi

# git checkout of a tracked file: unlinks the name, then openat(O_WRONLY|
# O_CREAT|O_EXCL). The repository's work tree is $D: libvictim.so at v1, HEAD at v2.
git_checkout() { "$@" git checkout -q HEAD -- libvictim.so; }
if have git; then
  export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
  export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
  must git init -q "$T/repo"
  cp "$V2" "$T/repo/libvictim.so"
  must git -C "$T/repo" add libvictim.so
  must git -C "$T/repo" commit -q -m v2
  # The work tree is the library's directory; the repository stays outside it.
  git_checkout_in_d() { GIT_DIR=$T/repo/.git GIT_WORK_TREE=$D git_checkout "$@"; }
  safe "git checkout" git_checkout_in_d
  # git restore (from the index, at v2 too): as git checkout.
  git_restore_in_d() { GIT_DIR=$T/repo/.git GIT_WORK_TREE=$D "$@" git restore libvictim.so; }
  safe "git restore" git_restore_in_d
else
  skip_case git "git not installed"
fi

# Linkers: ld.bfd (gcc -shared -o) stats, unlinks, then
# openat(O_RDWR|O_CREAT|O_TRUNC) on the missing name, chmod; ld.gold unlinks
# and opens the same way; ld.lld writes lib.so.tmpXXXXXXX and renames it.
# objcopy IN OUT (and strip -o OUT IN) unlink OUT first too.
gcc_shared() { "$@" gcc -shared -fPIC -DVICTIM_VERSION=2 -o libvictim.so "$SRC_DIR/libvictim.c"; }
ld_bfd() { "$@" ld.bfd -shared -o libvictim.so "$IN/v2.o"; }
ld_gold() { "$@" ld.gold -shared -o libvictim.so "$IN/v2.o"; }
ld_lld() { "$@" ld.lld -shared -o libvictim.so "$IN/v2.o"; }
objcopy_to() { "$@" objcopy "$V2" libvictim.so; }
if have gcc; then
  if asan_cannot_start gcc; then skip_case "gcc -shared -o" "$NO_ASAN"; else safe "gcc -shared -o" gcc_shared; fi
  must gcc -c -fPIC -DVICTIM_VERSION=2 -o "$IN/v2.o" "$SRC_DIR/libvictim.c"
  for l in ld.bfd ld.gold ld.lld; do
    if ! have "$l"; then
      skip_case "$l" "not installed"
    elif asan_cannot_start "$l"; then
      skip_case "$l" "$NO_ASAN"
    else
      safe "$l -shared -o" "ld_${l#ld.}"
    fi
  done
else
  skip_case linkers "gcc not found"
fi
if have objcopy; then safe "objcopy IN OUT" objcopy_to; fi

# kept_old_on_new_inode NAME OLD: after a writer under truncguard (run_writer
# tg) that changed no byte, with $T/before.mode its snapshot before: the name
# is on a new inode with $V1's bytes, the same mode, owner, xattrs and mtime,
# and the log names the victim.
kept_old_on_new_inode() {
  [ "$(inode "$LIB")" != "$2" ] || fail "$1 under truncguard: the name kept inode $2"
  cmp -s "$V1" "$LIB" || fail "$1 under truncguard: the name does not hold the old bytes"
  snapshot tg "$1"
  cmp -s "$T/before.mode" "$T/tg.mode" ||
    fail "$1: [$(paste -sd ';' "$T/tg.mode")] after, [$(paste -sd ';' "$T/before.mode")] before"
  expect_log "libvictim.so [ino $2 -> " "] (mode replace); mapped executable by " "pid $VICTIM_PID ("
}

# vim :w with backupcopy=yes: openat(O_WRONLY|O_CREAT) (no O_TRUNC), then
# fstat of that fd, compared with the inode it stat'ed before, then
# ftruncate and write. Without truncguard it writes in place (the victim
# dies); under it the fd is on the new inode, so vim stops with "E949: File
# changed while writing" and exits 1, and the name holds the old content on
# a new inode with the old mode, xattrs and mtime (README, "Limits").
vim_w() {
  "$@" vim -u NONE -i NONE -n -N -es -c 'set backupcopy=yes' -c w \
    -c "call writefile([v:errmsg], '$T/vim.errmsg')" -c q libvictim.so </dev/null
}
if have vim; then
  fresh_lib
  start_victim "$LIB"
  run_writer ctl vim_w
  stop_victim
  [ "$RUN_STATUS" -eq 0 ] || fail "control: vim :w failed without truncguard ($(describe_status "$RUN_STATUS")): $(cat "$T/vim.errmsg")"
  expect_broken "control: vim :w without truncguard"
  fresh_lib
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  touch "$T/before.start"
  snapshot before "vim :w"      # the old mode, owner, xattrs and mtime
  run_writer tg vim_w "$TG_CMD"
  stop_victim
  expect_survived "vim :w under truncguard"
  [ "$RUN_STATUS" -eq 1 ] || fail "vim :w under truncguard: $(describe_status "$RUN_STATUS"), expected exit 1 (E949)"
  grep -q 'E949: File changed while writing' "$T/vim.errmsg" ||
    fail "vim :w under truncguard: no E949: [$(cat "$T/vim.errmsg")]"
  kept_old_on_new_inode "vim :w" "$old"
  ok "vim :w: E949 and exit 1, the victim runs on, the name holds the old content on a new inode"
else
  skip_case vim "vim not installed"
fi

# shred (no -u): openat(O_WRONLY|O_NOCTTY) (no O_TRUNC), overwrites every
# byte in place. Without truncguard the victim dies; under it shred
# overwrites the new copy, and the old inode, which the victim runs, keeps
# its content (README, "Limits"): read through an fd opened before.
shred_lib() { "$@" shred -n 1 libvictim.so; }
if have shred; then
  fresh_lib
  start_victim "$LIB"
  run_writer ctl shred_lib
  stop_victim
  [ "$RUN_STATUS" -eq 0 ] || fail "control: shred failed without truncguard ($(describe_status "$RUN_STATUS")): $(cat "$T/ctl.stderr.out")"
  expect_broken "control: shred without truncguard"
  fresh_lib
  old=$(inode "$LIB")
  exec 4<"$LIB"
  start_victim "$LIB"
  log_reset
  run_writer tg shred_lib "$TG_CMD"
  stop_victim
  [ "$RUN_STATUS" -eq 0 ] || fail "shred under truncguard: $(describe_status "$RUN_STATUS"): $(cat "$T/tg.stderr.out")"
  expect_survived "shred under truncguard"
  [ "$(inode "$LIB")" != "$old" ] || fail "shred under truncguard: the name kept inode $old"
  cmp -s "$V1" "$LIB" && fail "shred under truncguard: the file at the name was not overwritten"
  cmp -s "$V1" "/proc/$$/fd/4" || fail "shred under truncguard: the old inode's content changed"
  exec 4<&-
  expect_log "libvictim.so [ino $old -> " "] (mode replace); mapped executable by " "pid $VICTIM_PID ("
  ok "shred: the victim runs on, the new copy overwritten, the old inode unchanged"
else
  skip_case shred "shred not installed"
fi

# A write in place whose next call fails (README, "Limits": fallocate
# --collapse-range on tmpfs, EOPNOTSUPP, exit 1) still leaves the name on a
# new inode, with the old bytes, mode, owner, xattrs and mtime. On
# $OTHER_FS, where it is a tmpfs.
if have fallocate && [ -n "$OTHER_FS" ] && [ "$(stat -f -c %T "$OTHER_FS")" = tmpfs ] &&
   cp "$V1" "$OTHER_FS/probe" && ! fallocate --collapse-range -o 4096 -l 4096 "$OTHER_FS/probe" 2>/dev/null; then
  LIB_SAVED=$LIB D_SAVED=$D
  D=$OTHER_FS LIB=$OTHER_FS/libvictim.so
  rm -f -- "$OTHER_FS/probe"
  [ -z "$XATTRS" ] || setfattr -n user.tg -v probe "$OTHER_FS" 2>/dev/null || XATTRS=
  fresh_lib
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  touch "$T/before.start"
  snapshot before "fallocate --collapse-range on tmpfs"
  run_writer tg fallocate_collapse "$TG_CMD"
  stop_victim
  expect_survived "fallocate --collapse-range on tmpfs under truncguard"
  [ "$RUN_STATUS" -eq 1 ] && grep -q 'Operation not supported' "$T/tg.stderr.out" ||
    fail "fallocate --collapse-range on tmpfs under truncguard: $(describe_status "$RUN_STATUS"), expected exit 1 (EOPNOTSUPP): $(cat "$T/tg.stderr.out")"
  kept_old_on_new_inode "fallocate --collapse-range on tmpfs" "$old"
  ok "fallocate --collapse-range on tmpfs: exit 1, the name on a new inode with the old bytes and metadata"
  D=$D_SAVED LIB=$LIB_SAVED
else
  skip_case "fallocate --collapse-range on tmpfs" "no tmpfs at /dev/shm that refuses it"
fi

note "$PROTECTED writers protected by truncguard, $SAFE safe by design"
[ "$PROTECTED" -gt 0 ] || fail "no protected case ran"
