#!/bin/bash
# Failure paths: the writer (nobody) may write a file that belongs to root
# (mode 0666).
#  1. In a directory nobody can't write: no temp file -> ETXTBSY + log.
#  2. In a sticky world-writable directory (as /tmp): the new file can be
#     made, but rename() over root's file is not permitted (sticky bit) ->
#     refused + log, and the temp file is removed again.
#  3. In a directory nobody may write (not sticky): replaced, and the log
#     notes that root's ownership could not be kept; and, for a library
#     with file capabilities, that they could not be copied.
#  5. As 3, in a setgid directory: the note gives the group the new file has.
#  6. Root's library of mode 0602 written in place by nobody: ETXTBSY.
# Each: the victim lives, the name holds a complete file, no temp file left.
# Each mode in FAILPATH_MODES (default "replace atomic").
. "$(dirname "$0")/rlib.sh"
need_victims
need_root "root-owned files and a writer running as nobody"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
as_nobody true || skip "cannot switch to uid 65534 with setpriv"
need_shim
nobody_copies

root_file() { fresh_copy "$V1" "$1"; must chown 0:0 "$1"; must chmod 0666 "$1"; }
must mkdir -m 0755 "$T/sys" "$T/open"
must mkdir -m 1777 "$T/sticky"
must chmod 1777 "$T/sticky"
must chown 65534:65534 "$T/open"
must mkdir -m 0755 "$T/sgid"
must chown 65534:1234 "$T/sgid"
must chmod 2755 "$T/sgid"

cases() {
  # 1. root's directory.
  root_file "$T/sys/libvictim.so"
  refused "root's library (0666) in root's directory" "$T/sys/libvictim.so" \
    "cannot create a temporary file in the directory" "Permission denied" as_nobody

  # 2. sticky, world-writable directory; control: nobody's own file there.
  fresh_copy "$V1" "$T/sticky/own.so"
  must chown 65534:65534 "$T/sticky/own.so"
  control_replaced "nobody's own library in a sticky directory" "$T/sticky/own.so" as_nobody
  root_file "$T/sticky/libvictim.so"
  AT_OPEN="the directory is sticky and neither it nor the file is ours" \
    refused "root's library (0666) in a sticky directory" "$T/sticky/libvictim.so" \
    "cannot rename the new file over the name" "Operation not permitted" as_nobody

  # 3. a directory nobody may write: replaced, ownership can't be kept.
  local lib=$T/open/libvictim.so
  root_file "$lib"
  control_replaced "root's library (0666) in nobody's directory" "$lib" as_nobody
  expect_log "note file=$lib owner 0:0 could not be kept (not permitted); the new file is owned by 65534:65534"
  ok "the log notes the owner that could not be kept"
  [ "$(stat -c %a "$lib")" = 666 ] || fail "the new file's mode is $(stat -c %a "$lib"), expected 666"
  expect_no_temp "$T/open"

  # 4. the same library with file capabilities, opened in place by nobody
  # (`: 1<>`, which writes nothing: the old inode would keep them): setting
  # them needs CAP_SETFCAP, which nobody lacks, so the new file has none,
  # and the log says so (the note counts them).
  root_file "$lib"
  if command -v setcap >/dev/null && setcap cap_net_raw+ep "$lib" 2>/dev/null; then
    local old
    old=$(inode "$lib")
    start_victim "$lib"
    log_reset
    r_run caps as_nobody "${TG_CMD_N:-$TG_CMD}" sh -c ": 1<>'$lib'"
    stop_victim
    [ "$R_STATUS" -eq 0 ] || fail "': 1<>' of root's library with capabilities, by nobody: $(r_out caps)"
    expect_survived "': 1<>' of root's library with capabilities, by nobody"
    [ "$(inode "$lib")" != "$old" ] || fail "': 1<>' of root's library with capabilities: not replaced: $(tg_log)"
    expect_log "note file=$lib 1 extended attribute could not be copied"
    ok "the log notes the file capabilities that could not be copied"
    root_file "$lib"
    must setcap cap_net_raw+ep "$lib"
    start_victim "$lib"
    log_reset
    r_run caps_json as_nobody env TRUNCGUARD_LOG_FORMAT=json "${TG_CMD_N:-$TG_CMD}" sh -c ": 1<>'$lib'"
    stop_victim
    [ "$R_STATUS" -eq 0 ] || fail "': 1<>' of root's library with capabilities, by nobody (a JSON log): $(r_out caps_json)"
    expect_note_key xattrs
    expect_note_key owner  # root's file, replaced by nobody (case 3)
  else
    note "SKIP the capabilities case: no setcap, or the filesystem of $T holds no security.capability"
  fi

  # 5. as 3, in nobody's setgid directory of group 1234: the new file has
  # that group, and the note says so (it gave the writer's group, 65534).
  local sgid_lib=$T/sgid/libvictim.so
  root_file "$sgid_lib"
  control_replaced "root's library (0666) in nobody's setgid directory" "$sgid_lib" as_nobody
  [ "$(stat -c %u:%g "$sgid_lib")" = 65534:1234 ] || fail "the new file is owned by $(stat -c %u:%g "$sgid_lib"), expected 65534:1234"
  expect_log "note file=$sgid_lib owner 0:0 could not be kept (not permitted); the new file is owned by 65534:1234"
  ok "the note gives the new file's owner and group (the setgid directory's)"

  # 6. root's library that nobody may write but not read (0602), written in
  # place by nobody (dd conv=notrunc): its content can't be kept in either
  # mode: ETXTBSY, and atomic mode's note gives the errno and promises no
  # replacement (it said "cannot read the old file: Success); replaced at
  # open instead", before the same failure in replace).
  local wo_lib=$T/open/libwo.so old
  fresh_copy "$V1" "$wo_lib"
  must chown 0:0 "$wo_lib"
  must chmod 0602 "$wo_lib"
  old=$(inode "$wo_lib")
  start_victim "$wo_lib"
  log_reset
  r_run wo as_nobody "${TG_CMD_N:-$TG_CMD}" dd if="$V2" of="$wo_lib" conv=notrunc bs=4 count=1 status=none
  stop_victim
  expect_etxtbsy wo "root's write-only library (0602) written in place by nobody"
  expect_survived "root's write-only library (0602) written in place by nobody"
  expect_intact "$wo_lib" "$old" "$V1"
  expect_cannot_protect "$wo_lib" "cannot read the old file to keep its content" "Permission denied"
  if [ "${TRUNCGUARD_MODE:-replace}" = atomic ]; then
    expect_log "note file=$wo_lib cannot be published atomically here (cannot read the old file: Permission denied); nor replaced at open, which needs its content too"
    ok "atomic: the note gives the errno and no replacement that does not follow"
  fi
}
each_mode cases
