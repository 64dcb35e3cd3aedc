#!/bin/bash
# Bug: the name is examined (and its directory opened) before the scan of the
# processes and the copy, which take milliseconds to seconds; a file another
# program put at the name meanwhile (a deploy renaming its own new file or a
# symlink over it) was replaced by the new inode all the same: a symlink
# swapped in became a regular file holding the writer's content (the real
# open follows the link and writes its target), a deploy's new library was
# thrown away. The file put at the name must stay, and the write be checked
# again against it. The window is widened with strace: a delay on a system
# call the shim makes between its look at the name and its rename.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
command -v strace >/dev/null || skip "strace is not installed"

LIB=$T/lib.so
OTHER=$T/other.so

# swap_during WHAT MODE INJECT ENTRY -- SWAP...: a victim runs $LIB (a copy of
# v1); `writer ENTRY $LIB $V2` runs under truncguard in mode MODE, strace
# delaying the system call INJECT describes; once the log says the shim acts,
# SWAP runs (during that delay); the writer's output is in $T/writer.out.
swap_during() {
  local what=$1 mode=$2 inject=$3 entry=$4 wpid i
  shift 5
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  log_reset
  # (LeakSanitizer, which an ASan build of the shim brings, can't run under ptrace.)
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 TRUNCGUARD_MODE=$mode \
    TRUNCGUARD_DEBUG=decisions,rewrites strace -f -qq -o /dev/null -e trace="${inject%%:*}" -e inject="$inject" \
    "$TG_CMD" "$TG_WRITER" "$entry" "$LIB" "$V2" >"$T/writer.out" 2>&1 &
  wpid=$!
  for ((i = 0; i < 1000; i++)); do
    tg_log | grep -qE ': act \(|"action":"act"' && break  # (the text log, or JSON)
    kill -0 "$wpid" 2>/dev/null || break
    sleep 0.01
  done
  tg_log | grep -qE ': act \(|"action":"act"' || fail "$what: the shim never acted: $(cat "$T/writer.out")"
  "$@" || fail "$what: cannot swap the name"
  wait "$wpid" || fail "$what: the writer failed: $(cat "$T/writer.out")"
  stop_victim
  expect_survived "$what"
  expect_no_temp "$T"
}

# expect_noted WHAT: the log says the name changed, and that the write was checked again.
expect_noted() {
  tg_log | grep -q 'note file=.*another file was put at the name while the new one was made: it stays, and the write is checked again' ||
    fail "$1: the log has no name_changed note: $(tg_log)"
  ok "$1: the log says so"
}

expect_no_temp() {
  local left
  left=$(find "$1" -maxdepth 1 -name '.*.tg-*')
  [ -z "$left" ] || fail "temp files left behind: $left"
}

swap_in_symlink() { ln -s other.so "$T/new.so" && mv -T "$T/new.so" "$LIB"; }

expect_symlink_kept() {
  [ -L "$LIB" ] || fail "$1: the symlink put at the name became a $(stat -c %F "$LIB")"
  [ "$(readlink "$LIB")" = other.so ] || fail "$1: the symlink now points to $(readlink "$LIB")"
  expect_same_content "$OTHER" "$V2" "$1: the symlink's target"
  ok "$1: the symlink put at the name stays, its target written as the writer's open follows it"
}

# A truncating open; the delay is on copy_metadata's flistxattr, after the
# copy, before the rename (mode replace).
fresh_copy "$V1" "$OTHER"
swap_during "mode replace, a symlink renamed over the name" replace flistxattr:delay_enter=1500000 open -- swap_in_symlink
expect_symlink_kept "mode replace"
expect_noted "mode replace"
# The note's key (README), which only a JSON log gives.
fresh_copy "$V1" "$OTHER"
TRUNCGUARD_LOG_FORMAT=json swap_during "mode replace, a symlink renamed over the name (a JSON log)" replace \
  flistxattr:delay_enter=1500000 open -- swap_in_symlink
expect_note_key name_changed

# Mode unlink: the delay is on the rename that moves the old file aside
# (the first renameat2): what it moves is the file put there meanwhile.
fresh_copy "$V1" "$OTHER"
swap_during "mode unlink, a symlink renamed over the name" unlink renameat2:delay_enter=1500000:when=1 open -- swap_in_symlink
expect_symlink_kept "mode unlink"
expect_noted "mode unlink"

# A write in place (open O_WRONLY without O_TRUNC: the old content is copied
# first) while a deploy renames its own new file over the name: the deploy's
# file is what the writer's open finds (not the copy of the old one).
swap_in_file() {
  cp "$V1" "$T/deploy.so" && DEPLOY_INO=$(inode "$T/deploy.so") && mv -T "$T/deploy.so" "$LIB"
}
swap_during "mode replace, a deploy's file renamed over the name during an in-place write" replace \
  flistxattr:delay_enter=1500000 open_notrunc -- swap_in_file
[ "$(inode "$LIB")" = "$DEPLOY_INO" ] ||
  fail "the deploy's file (inode $DEPLOY_INO) was replaced: the name holds inode $(inode "$LIB")"
expect_same_content "$LIB" "$V2"
ok "the deploy's file stays at the name, written in place by the writer"
expect_noted "the in-place write"
# The same in mode unlink (the delay on the rename that moves the old file
# aside, as above): that rename must not move the deploy's file.
swap_during "mode unlink, a deploy's file renamed over the name during an in-place write" unlink \
  renameat2:delay_enter=1500000:when=1 open_notrunc -- swap_in_file
[ "$(inode "$LIB")" = "$DEPLOY_INO" ] ||
  fail "mode unlink: the deploy's file (inode $DEPLOY_INO) was replaced: the name holds inode $(inode "$LIB")"
expect_same_content "$LIB" "$V2"
ok "mode unlink: the deploy's file stays at the name, written in place by the writer"
expect_noted "the in-place write (mode unlink)"

# truncate(2), or an open without O_TRUNC, whose name reaches another file
# by the time the shim looks in its directory: a library a victim runs,
# renamed there (a hard link of it) from its own name. It was let through unexamined, onto that library (the
# victim died); it is now examined again from the start, and the library
# replaced. The window, between the look at the file's header and the lookup
# in its directory, is widened with a delay on the shim's stat of the file's
# fd: the second newfstatat on $LIB (strace -P follows the fd to its path),
# after the shim's stat of the name and its open.
MAPPED=$T/mapped.so
swap_before_lookup() {  # WHAT ENTRY: `writer ENTRY $LIB $V2`, the swap during the delay
  local what=$1 entry=$2 spid wpid i
  fresh_copy "$V1" "$LIB"  # at the name: an ELF file nobody maps
  fresh_copy "$V1" "$MAPPED"
  MAPPED_INO=$(inode "$MAPPED")
  start_victim "$MAPPED"
  log_reset
  env ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    strace -f -qq -o /dev/null -E LD_PRELOAD="$TG_SHIM" -P "$LIB" -e trace=newfstatat \
    -e inject=newfstatat:delay_enter=1500000:when=2 \
    "$TG_WRITER" "$entry" "$LIB" "$V2" >"$T/writer.out" 2>&1 &
  spid=$!
  # The writer stopped in that stat: newfstatat (262) with AT_EMPTY_PATH (0x1000).
  in_fd_stat() { local s; s=$(cat "/proc/$1/syscall" 2>/dev/null) && set -- $s && [ "$1" = 262 ] && [ "$5" = 0x1000 ]; }
  for ((i = 0; i < 500; i++)); do
    wpid=$(pgrep -P "$spid" | head -n1)
    [ -n "$wpid" ] && in_fd_stat "$wpid" &&
      [ "$(readlink "/proc/$wpid/exe")" = "$(readlink -f "$TG_WRITER")" ] && break
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.01
  done
  in_fd_stat "$wpid" || fail "$what: the writer never reached the delayed stat of its fd: $(cat "$T/writer.out")"
  must ln -f "$MAPPED" "$T/swap.tmp"
  must mv -T "$T/swap.tmp" "$LIB"
  wait "$spid" || fail "$what: the writer failed: $(cat "$T/writer.out")"
  stop_victim
}
# Control: without truncguard the victim dies of that truncate.
fresh_copy "$V1" "$MAPPED"
start_victim "$MAPPED"
"$TG_WRITER" truncate "$MAPPED" "$V2" >"$T/writer.out" 2>&1 || fail "control: the writer failed: $(cat "$T/writer.out")"
stop_victim
expect_broken "control: truncate(2) of a library a victim runs, without truncguard"
for entry in truncate open_notrunc; do
  what="writer $entry, a running library renamed over the name before the lookup"
  swap_before_lookup "$what" "$entry"
  expect_survived "$what"
  [ "$(inode "$LIB")" != "$MAPPED_INO" ] || fail "$what: the running library was written in place: $(tg_log)"
  expect_same_content "$LIB" "$V2"
  expect_log "replaced file=$LIB [ino $MAPPED_INO -> "
  ok "$what: examined again after the name changed, and the running library replaced"
done
