#!/bin/bash
# Failure paths on a full filesystem (a small tmpfs, root, private mounts).
#  1. No inode left: no new file can be made -> ETXTBSY + log, name intact.
#  2. No block left, truncate(2) keeping the first bytes: the copy into the
#     new inode fails -> ETXTBSY + log, name intact, temp file removed.
#  3. No block left, a write in place (dd conv=notrunc): the copy-up fails
#     -> ETXTBSY + log, name intact.
#  4. No block left, cp: the new inode is made, then cp's own writes fail.
#     Per mode (FAILPATH_MODES, default "replace atomic"):
#       replace renames the new inode over the name at open, so the name is
#       left holding what cp managed to write: reported, not failed (the
#       same limit the soak test counts for replace);
#       atomic must leave the old file at the name, complete, and the
#       log must say it was not published.
#  5. No block left, a writer that splices from a pipe into the file (pv's
#     way; python's os.splice) in atomic mode: the same (its failed splice was
#     not watched: the partial file was published at its exit).
#  6. No block left, atomic mode, a program built with _FILE_OFFSET_BITS=64
#     whose writes go through pwritev64 or sendfile64 (the symbols its
#     pwritev and sendfile become): its failure keeps the file from the name
#     too (they were not watched: the partial file was published at exit).
#     The same through __write and __pwrite64, glibc's public aliases of
#     write and pwrite64 (not watched either: the partial file was published),
#     and through aio_write, whose helper thread writes inside glibc (the
#     failure the program reads from aio_error was not seen).
#     And through libc's syscall() with SYS_write, SYS_pwrite64, SYS_writev,
#     SYS_pwritev, SYS_sendfile and SYS_splice (README: each number taken in
#     as its call is; SYS_copy_file_range can't reach this tmpfs from
#     another filesystem: EXDEV).
#  7. No block left, atomic mode, a writer that checks nothing: fwrite, then
#     exit without fclose (after fcloseall, which only flushes): exit's flush
#     of a stream whose fwrite failed keeps its file from the name too (the
#     partial file was published at exit).
#  8. Mode unlink (install's sequence: the old file leaves the name, a new one
#     is created there and filled): no inode left (cp), no block left for
#     the copy of a write in place (dd conv=notrunc) or of truncate(2): ETXTBSY,
#     and the old file is back at the name, the same inode, complete. (It
#     was unlinked first and could not be linked back: the name was left
#     missing, or holding an empty copy, the library's content gone.)
# Each has its control: the same write with room to spare is protected.
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_victims
need_mount_ns
need_shim
: "${FAILPATH_MODES:=replace atomic}"

v1_size=$(stat -c %s "$V1")

# fill DIR: use up every block of DIR's filesystem.
fill() {
  dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null
  sync
  dd if=/dev/zero of="$1/filler2" bs=1 count=4096 2>/dev/null
  [ "$(df --output=avail "$1" | tail -n1)" -eq 0 ] || fail "setup: $1 is not full: $(df -h "$1" | tail -n1)"
}

# ---------------------------------------------------------------- 1. inodes
r_tmpfs "$T/inodes" "size=4m,nr_inodes=16"
LIB=$T/inodes/libvictim.so
fresh_copy "$V1" "$LIB"
control_replaced "free inodes" "$LIB"
fresh_copy "$V1" "$LIB"
for i in $(seq 64); do : >"$T/inodes/f$i" 2>/dev/null || break; done
: >"$T/inodes/probe" 2>/dev/null && fail "setup: $T/inodes still has free inodes"
refused "no inode left" "$LIB" "cannot create a temporary file in the directory" "No space left on device"

# ------------------------------------------------------ 2. truncate(2), full
r_tmpfs "$T/full" "size=1m"
LIB=$T/full/libvictim.so
keep=$((v1_size / 2))

# full_case NAME WHAT FULL CMD...: a victim maps LIB while CMD writes it under
# truncguard. FULL=1 (no block left): NAME_refused WHAT checks the writer was
# refused with ETXTBSY; the name is intact and the log says why. FULL=0 (the
# control): NAME_with_room WHAT OLD checks the protected result.
full_case() {
  local name=$1 what=$2 full=$3 old
  shift 3
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  [ "$full" = 1 ] && fill "$T/full"
  start_victim "$LIB"
  log_reset
  r_run "$name" "$TG_CMD" "$@"
  stop_victim
  expect_survived "$what"
  expect_no_temp "$T/full"
  if [ "$full" = 1 ]; then
    "${name}_refused" "$what"
    expect_intact "$LIB" "$old" "$V1"
    expect_log "cannot protect file=$LIB: " ": No space left on device; failing with ETXTBSY"
    ok "the log says: $(log_lines "cannot protect file=$LIB" | cut -f2-)"
    rm -f "$T/full/filler" "$T/full/filler2"
  else
    "${name}_with_room" "$what" "$old"
  fi
}

# truncate(LIB, keep), through the helper program (it prints error=NAME).
trunc_refused() {
  grep -q "error=ETXTBSY" "$T/trunc.out" || fail "$1: truncate(2) gave $(r_out trunc), expected ETXTBSY"
}
trunc_with_room() {
  local what=$1 old=$2
  [ "$R_STATUS" -eq 0 ] || fail "$what: truncate(2) failed: $(r_out trunc)"
  [ "$(inode "$LIB")" != "$old" ] || fail "$what: truncated in place"
  [ "$(stat -c %s "$LIB")" -eq "$keep" ] || fail "$what: $(stat -c %s "$LIB") bytes, expected $keep"
  cmp -s -n "$keep" "$LIB" "$V1" || fail "$what: the kept bytes differ from the old content"
  ok "$what: a new inode with the first $keep bytes"
}
full_case trunc "control: truncate(2) with room" 0 "$TG_RTOOL" truncate "$LIB" "$keep"
full_case trunc "truncate(2) on a full filesystem" 1 "$TG_RTOOL" truncate "$LIB" "$keep"

# ------------------------------------------------ 3. write in place, full
inplace_refused() { expect_etxtbsy inplace "$1"; }
inplace_with_room() {
  local what=$1 old=$2
  [ "$R_STATUS" -eq 0 ] || fail "$what: dd failed: $(r_out inplace)"
  [ "$(inode "$LIB")" != "$old" ] || fail "$what: written in place"
  expect_same_content "$LIB" "$V1"
  ok "$what: copied up to a new inode"
}
full_case inplace "control: dd conv=notrunc with room" 0 dd if="$V1" of="$LIB" bs=512 count=1 conv=notrunc
full_case inplace "dd conv=notrunc on a full filesystem" 1 dd if="$V1" of="$LIB" bs=512 count=1 conv=notrunc

# ------------------------------------------------------------ 4. cp, full
for mode in $FAILPATH_MODES; do
  if ! mode_supported "$mode"; then
    note "mode $mode: skipped, the shim does not know TRUNCGUARD_MODE=$mode yet"
    continue
  fi
  fresh_copy "$V1" "$LIB"
  TRUNCGUARD_MODE=$mode control_replaced "mode $mode, cp with room" "$LIB"

  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  fill "$T/full"
  start_victim "$LIB"
  log_reset
  r_run cpfull env TRUNCGUARD_MODE="$mode" "$TG_CMD" cp "$V2" "$LIB"
  stop_victim
  [ "$R_STATUS" -ne 0 ] || fail "mode $mode: cp onto a full filesystem succeeded"
  ok "mode $mode: cp reports: $(head -n1 "$T/cpfull.out")"
  expect_survived "mode $mode, cp onto a full filesystem"
  expect_no_temp "$T/full"
  size=$(stat -c %s "$LIB")
  case $mode in
    atomic)
      # The writer failed: the half-written new file must never reach the name.
      [ "$(inode "$LIB")" = "$old" ] ||
        fail "mode atomic: cp failed (ENOSPC) yet its partial file ($size of $(stat -c %s "$V2") bytes) was published at the name; the old file is lost. Log: $(log_lines "$LIB" | cut -f2- | paste -sd'|')"
      expect_intact "$LIB" "$old" "$V1"
      expect_log "cannot protect file=$LIB: a write to the new file failed: No space left on device; not published: the old file is unchanged"
      ;;
    *)
      if cmp -s "$LIB" "$V1"; then
        ok "mode $mode: the name still holds the old file"
      else
        note "KNOWN LIMIT of mode $mode: the name now holds $size bytes of a failed cp (the new inode is renamed over the name at open); the old content is gone from the name"
      fi
      ;;
  esac
  rm -f "$T/full/filler" "$T/full/filler2"
done

# ------------------------------------------------------- 5. splice, full
if mode_supported atomic; then
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  fill "$T/full"
  start_victim "$LIB"
  log_reset
  r_run splicefull env TRUNCGUARD_MODE=atomic "$TG_CMD" python3 -c '
import os, sys
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_TRUNC)
r, w = os.pipe()
off = 0
while off < len(data):
    n = os.write(w, data[off:off + 4096])
    while n:
        k = os.splice(r, fd, n)
        n -= k
        off += k' "$V2" "$LIB"
  stop_victim
  [ "$R_STATUS" -ne 0 ] || fail "mode atomic: splice onto a full filesystem succeeded"
  grep -q "No space left on device" "$T/splicefull.out" || fail "mode atomic: the splice writer did not fail with ENOSPC: $(tail -n1 "$T/splicefull.out")"
  expect_survived "mode atomic, splice onto a full filesystem"
  expect_no_temp "$T/full"
  [ "$(inode "$LIB")" = "$old" ] ||
    fail "mode atomic: the splice failed (ENOSPC) yet its partial file ($(stat -c %s "$LIB") bytes) was published at the name"
  expect_intact "$LIB" "$old" "$V1"
  expect_log "cannot protect file=$LIB: a write to the new file failed: No space left on device; not published: the old file is unchanged"
  rm -f "$T/full/filler" "$T/full/filler2"
  ok "mode atomic: a splice that failed for want of room published nothing"
fi

# ---------------------------- 6. atomic, pwritev64 and sendfile64, full
if mode_supported atomic; then
  for HOW in pwritev64 sendfile64 __write __pwrite64 aio_write sys_write sys_pwrite64 sys_writev sys_pwritev sys_sendfile sys_splice fwrite_exit fcloseall_exit; do
    # The control's writer: the writer through $HOW, with cp's arguments.
    printf '#!/bin/sh\nexec "%s" %s "$2" "$1"\n' "$TG_WRITER" "$HOW" >"$T/writer_as_cp"
    chmod +x "$T/writer_as_cp"
    fresh_copy "$V1" "$LIB"
    R_WRITER=$T/writer_as_cp TRUNCGUARD_MODE=atomic control_replaced "atomic, $HOW with room" "$LIB"
    fresh_copy "$V1" "$LIB"
    old=$(inode "$LIB")
    fill "$T/full"
    start_victim "$LIB"
    log_reset
    r_run "w$HOW" env TRUNCGUARD_MODE=atomic "$TG_CMD" "$TG_WRITER" "$HOW" "$LIB" "$V2"
    stop_victim
    case $HOW in
      *_exit) ;;  # (checks nothing: its status says nothing)
      *) [ "$R_STATUS" -ne 0 ] || fail "atomic, $HOW onto a full filesystem succeeded" ;;
    esac
    expect_survived "atomic, $HOW onto a full filesystem"
    [ "$(inode "$LIB")" = "$old" ] ||
      fail "atomic: $HOW failed ($(r_out "w$HOW")) yet its partial file ($(stat -c %s "$LIB") bytes) was published at the name. Log: $(log_lines "$LIB" | cut -f2- | paste -sd'|')"
    expect_intact "$LIB" "$old" "$V1"
    expect_log "cannot protect file=$LIB: a write to the new file failed: No space left on device; not published: the old file is unchanged"
    expect_no_temp "$T/full"
    rm -f "$T/full/filler" "$T/full/filler2"
  done
fi

# ------------------------------------------------------- 8. mode unlink, full

# unlink_refused WHAT LIB STEP CMD...: CMD (under truncguard, mode unlink)
# writes LIB, which a victim runs, on a full filesystem: ETXTBSY, the old file
# put back at the name (same inode, complete), no temp file, the log says so.
unlink_refused() {
  local what="mode unlink, $1" lib=$2 step=$3 old
  shift 3
  old=$(inode "$lib")
  start_victim "$lib"
  log_reset
  r_run unlinkfull env TRUNCGUARD_MODE=unlink "$TG_CMD" "$@"
  stop_victim
  expect_survived "$what"
  [ -e "$lib" ] || fail "$what: the name is gone (the old file was not put back): $(tg_log)"
  [ "$(inode "$lib")" = "$old" ] ||
    fail "$what: the name holds another file ($(stat -c %s "$lib") bytes, inode $(inode "$lib")), not the old one: $(tg_log)"
  expect_intact "$lib" "$old" "$V1"
  grep -qE "Text file busy|error=ETXTBSY" "$T/unlinkfull.out" || fail "$what: expected ETXTBSY: $(r_out unlinkfull)"
  expect_no_temp "$(dirname -- "$lib")"
  expect_log "cannot protect file=$lib: $step: No space left on device (the old file was put back); failing with ETXTBSY"
  ok "$what: refused, the old file put back: $(log_lines "cannot protect file=$lib" | cut -f2-)"
}

# The control: with room, mode unlink protects the victim (and leaves no temp file).
rm -f "$T"/inodes/f* "$T/inodes/probe"
fresh_copy "$V1" "$T/inodes/libvictim.so"
TRUNCGUARD_MODE=unlink control_replaced "mode unlink, free inodes" "$T/inodes/libvictim.so"
expect_no_temp "$T/inodes"
fresh_copy "$V1" "$T/inodes/libvictim.so"
for i in $(seq 64); do : >"$T/inodes/f$i" 2>/dev/null || break; done
: >"$T/inodes/probe" 2>/dev/null && fail "setup: $T/inodes still has free inodes"
unlink_refused "cp, no inode left" "$T/inodes/libvictim.so" "cannot create the new file" cp "$V2" "$T/inodes/libvictim.so"
# The same in JSON (docs/ci.md's table): "restored_old":true, no kept_aside.
start_victim "$T/inodes/libvictim.so"
log_reset
r_run unlinkfull env TRUNCGUARD_MODE=unlink TRUNCGUARD_LOG_FORMAT=json "$TG_CMD" cp "$V2" "$T/inodes/libvictim.so"
stop_victim
expect_survived "mode unlink, cp, no inode left, JSON"
line=$(log_lines '"event":"cannot_protect"' '"step":"cannot create the new file"' '"errno":28' '"fallback":"etxtbsy"' '"restored_old":true')
[ -n "$line" ] && ! grep -q '"kept_aside"' <<<"$line" ||
  fail "mode unlink, cp, no inode left, JSON: no cannot_protect line with restored_old (and without kept_aside): $(tg_log)"
ok "mode unlink, cp, no inode left, JSON: \"restored_old\":true"
# ... and where the put-back fails too (strace fails the second renameat2,
# the put-back, with EIO; the first moved the old file aside): the old file
# is kept under its temp name, the name is empty (the new file could not be
# made), and the line says so (it said nothing of the name).
if command -v strace >/dev/null; then
  lib=$T/inodes/libvictim.so
  old_ino=$(inode "$lib")
  start_victim "$lib"
  log_reset
  r_run emptyname env TRUNCGUARD_MODE=unlink strace -f -qq -o /dev/null -e trace=renameat2 \
    -e inject=renameat2:error=EIO:when=2 "$TG_CMD" cp "$V2" "$lib"
  stop_victim
  expect_survived "mode unlink, no inode left, the put-back refused"
  kept=$(log_lines "cannot protect file=$lib: cannot create the new file: No space left on device (the old file could not be put back: Input/output error; it is kept as " |
    sed -n 's/.* it is kept as \(.*\) in its directory, and the name is empty).*/\1/p')
  [ -n "$kept" ] || fail "no inode, put-back refused: the line does not say the name is empty: $(tg_log)"
  [ ! -e "$lib" ] || fail "no inode, put-back refused: the name is not empty, as the log says: $(stat -c '%s bytes, inode %i' "$lib")"
  [ "$(inode "$T/inodes/$kept")" = "$old_ino" ] && cmp -s "$T/inodes/$kept" "$V1" ||
    fail "no inode, put-back refused: the old file is not whole at $kept"
  ok "mode unlink, no inode left, the put-back refused (EIO): the old file kept as $kept, the name empty, and the log says so"
  must mv -- "$T/inodes/$kept" "$lib"
else
  echo "skipped part: strace is not installed (no inode left, the put-back refused)"
fi

LIB=$T/full/libvictim.so
fresh_copy "$V1" "$LIB"
fill "$T/full"
unlink_refused "dd conv=notrunc, no block left" "$LIB" "cannot copy the old content" \
  dd if="$V1" of="$LIB" bs=512 count=1 conv=notrunc
unlink_refused "truncate(2) to $keep bytes, no block left" "$LIB" "cannot copy the old content" \
  "$TG_RTOOL" truncate "$LIB" "$keep"
# The same refusal in the JSON log: restored_old, true, and no kept_aside
# (truncguard(7), "THE JSON LOG").
old_ino=$(inode "$LIB")
start_victim "$LIB"
log_reset
r_run restoredjson env TRUNCGUARD_MODE=unlink TRUNCGUARD_LOG_FORMAT=json "$TG_CMD" \
  dd if="$V1" of="$LIB" bs=512 count=1 conv=notrunc
stop_victim
expect_survived "mode unlink, no block left (JSON log)"
[ "$(inode "$LIB")" = "$old_ino" ] || fail "mode unlink, no block left (JSON log): the old file is not at the name"
log_lines '"event":"cannot_protect"' '"step":"cannot copy the old content"' '"errno":28' '"fallback":"etxtbsy"' \
  '"restored_old":true' >/dev/null || fail "mode unlink, the old file put back: no cannot_protect with restored_old: $(tg_log)"
! tg_log | grep -q '"kept_aside"' || fail "mode unlink, the old file put back: kept_aside given: $(tg_log)"
ok "mode unlink, the old file put back: the JSON event says restored_old"

# ... and where the old file can't be put back either (its rename fails:
# EIO, or EDQUOT, which btrfs's rename can give under a quota; here a seccomp
# filter fails renameat, the put-back's call, with EIO), it is kept under its
# temp name, which the log gives: it was deleted, and the library's content
# was gone from the directory. The new file had been created, so the name
# holds it, incomplete: the line says so too, and the JSON event gives the
# put-back's errno (the line said neither: the name looked like the new
# file, whole; the JSON had only the temp name). Text, then JSON, the old
# file moved back to the name in between.
for fmt in text json; do
  old_ino=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  r_run keptaside env TRUNCGUARD_MODE=unlink TRUNCGUARD_LOG_FORMAT=$fmt "$TG_RTOOL" deny renameat:EIO "$TG_CMD" \
    dd if="$V1" of="$LIB" bs=512 count=1 conv=notrunc
  stop_victim
  expect_survived "mode unlink, no block left, the put-back refused ($fmt log)"
  grep -q "Text file busy" "$T/keptaside.out" || fail "put-back refused: expected ETXTBSY: $(r_out keptaside)"
  if [ "$fmt" = text ]; then
    kept=$(log_lines "cannot protect file=$LIB: cannot copy the old content: No space left on device (the old file could not be put back: Input/output error; it is kept as " |
      sed -n 's/.* it is kept as \(.*\) in its directory, and the name holds the incomplete new file).*/\1/p')
  else
    kept=$(log_lines '"event":"cannot_protect"' '"step":"cannot copy the old content"' '"errno":28' '"putback_errno":5' \
      '"incomplete_at_name":true' | sed -n 's/.*"kept_aside":"\([^"]*\)".*/\1/p')
  fi
  [ -n "$kept" ] || fail "put-back refused ($fmt log): the log does not say where the old file is, the put-back's error and what the name holds: $(tg_log)"
  if [ "$fmt" = json ] && tg_log | grep -q '"restored_old"'; then fail "put-back refused: the JSON event says restored_old: $(tg_log)"; fi
  [ -f "$T/full/$kept" ] || fail "put-back refused: the old file is not at $kept: $(ls -a "$T/full")"
  [ "$(inode "$T/full/$kept")" = "$old_ino" ] || fail "put-back refused: $kept is not the old file"
  cmp -s "$T/full/$kept" "$V1" || fail "put-back refused: $kept is not the old content"
  [ -f "$LIB" ] && [ "$(inode "$LIB")" != "$old_ino" ] && ! cmp -s "$LIB" "$V1" ||
    fail "put-back refused: the name does not hold an incomplete new file, as the log says ($(stat -c '%s bytes, inode %i' "$LIB" 2>&1))"
  ok "mode unlink, no block left, the put-back refused (EIO): the old file kept whole as $kept, the name holding the incomplete new file, and the $fmt log says so"
  must mv -- "$T/full/$kept" "$LIB"
  fill "$T/full"
done
rm -f -- "$LIB"
rm -f "$T/full/filler" "$T/full/filler2"
