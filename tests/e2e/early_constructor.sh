#!/bin/bash
# Bug: another preloaded library overwrites a loaded library from its
# constructor, before truncguard's own constructor has run. The shim must
# protect calls that arrive that early (its settings are read on first use),
# through open() or through syscall(SYS_openat).
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
[ -f "$TG_EARLY_LIB" ] || fail "no early writer library at $TG_EARLY_LIB"

LIB=$T/libvictim.so
# Listed after the shim, the early writer is initialised before it.
early_write() {
  TG_EARLY_DEST=$LIB TG_EARLY_SRC=$V2 LD_DEBUG=files LD_DEBUG_OUTPUT=$T/lddebug \
    LD_PRELOAD="$1" /bin/true 2>"$T/early.err"
}

# The early writer's open() and, with TG_EARLY_SYSCALL, its syscall(SYS_openat).
for how in open syscall; do
  if [ $how = syscall ]; then export TG_EARLY_SYSCALL=1; fi
  note "the early writer's $how"
  # Control: the early writer alone kills the victim.
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  early_write "$TG_EARLY_LIB" || fail "control: the early writer failed: $(cat "$T/early.err")"
  stop_victim
  expect_killed "control: a constructor's write without truncguard"

  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  start_victim "$LIB"
  rm -f "$T"/lddebug.*
  early_write "$TG_SHIM:$TG_EARLY_LIB" || fail "the early writer under the shim failed: $(cat "$T/early.err")"
  stop_victim
  expect_survived "a constructor's write under truncguard"
  expect_version "$LIB" 2
  expect_log "replaced file=$LIB [ino $old -> " "pid $VICTIM_PID ("

  # Prove the order: ld.so called the early writer's constructor first.
  order=$(grep -ho 'calling init: .*\(libearly_writer\|libtruncguard\)\.so' "$T"/lddebug.* | sed 's/.*\///')
  [ "$(echo "$order" | head -n1)" = "libearly_writer.so" ] ||
    fail "the early writer's constructor did not run first: $(echo "$order" | paste -sd ' ')"
  ok "the write came from a constructor that ran before truncguard's ($(echo "$order" | paste -sd ' '))"
done
