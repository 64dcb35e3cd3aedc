#!/bin/bash
# Bug: in atomic mode the publication knew the old file by its inode number
# alone. ext4 gives a freed inode's number to the next file made in that
# directory (`rm f; echo > g` gives g f's number), so a deploy that removed
# the name and wrote a new file there (install(1)'s way: unlink, then
# create) once nothing mapped the old file could give it the old number: at
# the writer's close the writer's file was published over it. Without
# truncguard the writer's content went into the old inode, no longer at the
# name, and the newer file stayed. The old file is now known by its birth
# time too (statx). On an ext4 image of its own (root, a private mount
# namespace), where no other test takes the freed number first:
#  - control: without truncguard the writer kills the victim, and the new
#    file stays at the name;
#  - under truncguard -m atomic: a bash writer (fd 3, v2) pauses half way,
#    the victim ends, the name is removed and a copy of v1 that got the old
#    file's number is put there; at the writer's close that copy stays,
#    logged "another file was put at the name";
#  - the same where the writer execs another program (fd 3 handed over to
#    it) after that copy came: the hand-over carried the old file's number,
#    and the new program took the copy for the old file;
#  - with statx refused (rtool deny statx:ENOSYS): the number alone decides
#    (see the cases at the end).
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_victims
need_mount_ns
need_shim
command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 missing (Debian package e2fsprogs)"
truncate -s 32M "$T/ext4.img"
mkfs.ext4 -q -F "$T/ext4.img" >"$T/mkfs.out" 2>&1 || fail "setup: mkfs.ext4: $(cat "$T/mkfs.out")"
must mkdir "$T/fs"
r_mount -o loop "$T/ext4.img" "$T/fs"
LIB=$T/fs/lib.so

# writer [TRUNCGUARD ARGS...]: writes v2 through fd 3 in two halves, waiting
# for $T/go in between ($T/half says it got there); with EXEC=1 the second
# half is written by a program the writer execs (fd 3 handed over to it).
writer() {
  rm -f "$T/half" "$T/go"
  "$@" bash -c '
    exec 3>"$1"
    head -c 4096 "$2" >&3
    touch "$3/half"
    for _ in $(seq 500); do [ -e "$3/go" ] && break; sleep 0.01; done
    [ "$4" = 1 ] && exec bash -c "tail -c +4097 \"\$1\" >&3; exec 3>&-" _ "$2"
    tail -c +4097 "$2" >&3
    exec 3>&-' _ "$LIB" "$V2" "$T" "${EXEC:-0}" &
  WRITER=$!
  for _ in $(seq 500); do [ -e "$T/half" ] && break; sleep 0.01; done
  [ -e "$T/half" ] || fail "the writer did not get half way"
}

# reusing_deploy OLD: removes the name and puts a copy of v1 there, made in
# as many files as it takes (at most 200) to get inode number OLD.
reusing_deploy() {
  local i
  rm -f "$LIB" || fail "cannot remove $LIB"
  for i in $(seq 200); do
    cp "$V1" "$T/fs/cand.$i" || fail "cannot copy v1"
    [ "$(inode "$T/fs/cand.$i")" = "$1" ] && break
  done
  mv "$T/fs/cand.$i" "$LIB" || fail "the other deploy failed"
  rm -f "$T"/fs/cand.*
  OTHER=$(inode "$LIB")
}

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
writer env
reusing_deploy "$(inode "$LIB")"
touch "$T/go"; wait "$WRITER" || fail "control: the writer failed"
stop_victim
expect_killed "control: the writer without truncguard"
expect_same_content "$LIB" "$V1"
ok "control: without truncguard the victim dies and the new file stays at the name"

# reused_number WHAT: the writer (EXEC as set) pauses half way, the victim
# ends, a new file with the old file's number is put at the name.
reused_number() {
  fresh_copy "$V1" "$LIB"
  local old
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  writer "$TG_CMD" -m atomic
  stop_victim
  expect_survived "$1, half way"
  reusing_deploy "$old"
  [ "$OTHER" = "$old" ] || fail "ext4 did not give the old file's inode number ($old) to a new file ($OTHER)"
  touch "$T/go"; wait "$WRITER" || fail "$1 failed: $(tg_log)"
  [ "$(inode "$LIB")" = "$OTHER" ] || fail "$1: its file was published over the new file at the name (inode $(inode "$LIB"), not $OTHER)"
  expect_same_content "$LIB" "$V1"
  expect_log "cannot protect file=$LIB: another file was put at the name since the writer opened it" \
    "not published: the name keeps the newer file"
  [ -z "$(find "$T/fs" -maxdepth 1 -name '.lib.so.tg-*')" ] || fail "a temp file was left: $(ls -a "$T/fs")"
}

reused_number "the writer under truncguard -m atomic"
ok "a file made at the name with the old file's freed inode number during an atomic write stays there, logged"
EXEC=1 reused_number "the exec'ing writer under truncguard -m atomic"
ok "the same across an exec: the program the file is handed over to leaves the new file at the name, logged"

# Where statx is refused (a seccomp filter answering ENOSYS, as for a kernel
# or sandbox without it), the old file is known by its number alone
# (fstatat), as on a filesystem that records no birth time (README: atomic
# mode):
#  - another deploy renames a file of its own (another number) over the name
#    half way: at the writer's close it stays, logged (with statx refused,
#    every name looked missing, and the writer's file was published over it);
#  - a file given the old file's freed number is taken for the old file: the
#    writer's file is published over it, as the README says (the control of
#    the birth time's use: the same case above, with statx, keeps it).
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
writer "$TG_RTOOL" deny statx:ENOSYS "$TG_CMD" -m atomic
cp "$V1" "$T/fs/other" && mv "$T/fs/other" "$LIB" || fail "the other deploy failed"
OTHER=$(inode "$LIB")
[ "$OTHER" != "$old" ] || fail "the other deploy's file got the old file's number ($old)"
touch "$T/go"; wait "$WRITER" || fail "statx refused, another file renamed over the name: the writer failed: $(tg_log)"
stop_victim
expect_survived "statx refused, another file renamed over the name"
[ "$(inode "$LIB")" = "$OTHER" ] ||
  fail "statx refused: the writer's file was published over the file renamed at the name (inode $(inode "$LIB"), not $OTHER): $(tg_log)"
expect_same_content "$LIB" "$V1"
expect_log "cannot protect file=$LIB: another file was put at the name since the writer opened it" \
  "not published: the name keeps the newer file"
ok "statx refused: a file renamed over the name during an atomic write stays there, logged"

fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
writer "$TG_RTOOL" deny statx:ENOSYS "$TG_CMD" -m atomic
stop_victim
expect_survived "statx refused, the old number reused, half way"
reusing_deploy "$old"
[ "$OTHER" = "$old" ] || fail "ext4 did not give the old file's inode number ($old) to a new file ($OTHER)"
touch "$T/go"; wait "$WRITER" || fail "statx refused, the old number reused: the writer failed: $(tg_log)"
expect_same_content "$LIB" "$V2"
expect_log "published file=$LIB [ino $old -> " "(mode atomic): the writer closed it"
expect_no_log "another file was put at the name"
ok "statx refused: a file given the old file's number is taken for it, and replaced (the number alone decides)"
