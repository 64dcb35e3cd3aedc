#!/bin/bash
# TRUNCGUARD_DEBUG=backtrace in a program that vforks: the child's protected
# write must not leave libunwind's state to the parent. libunwind keeps the fds
# of its memory-validation pipe in static memory, which a vfork child shares
# with its parent but not its fd table: the child's first backtrace made the
# pipe in its own fd table and left the numbers in the parent's memory; the
# parent's next backtrace read from whatever the program had opened at those
# numbers since (a byte of its data file consumed behind its back) and, when
# that failed, closed them (in a chaos run, the directory fd of a file pending
# in atomic mode: "the writer's fd no longer refers to the new file").
# rtool vfork-then-read: a vfork child overwrites LIB and exits; the parent
# opens DATA on 64 fds, overwrites LIB itself, and checks every fd is still
# at offset 0. Scope elf: every ELF write is protected, so both take a backtrace.
. "$(dirname "$0")/rlib.sh"
need_victims
need_shim
LIB=$T/libvictim.so
DATA=$T/data
# A copy: the log cuts an object's path of over 1.5 KiB ("..."), which a
# build tree's may be (a clone under a long path).
RTOOL=$T/rtool
must cp "$TG_RTOOL" "$RTOOL"
head -c 4096 /dev/urandom >"$DATA" || fail "setup: cannot write $DATA"

# Control: the same program under truncguard without the backtrace category.
fresh_copy "$V1" "$LIB"
log_reset
r_run plain env TRUNCGUARD_SCOPE=elf "$TG_CMD" "$RTOOL" vfork-then-read "$LIB" "$V2" "$DATA"
[ "$R_STATUS" -eq 0 ] || fail "control (no backtrace): $(r_out plain)"
ok "control: without the backtrace category the program's fds are untouched"

for mode in replace atomic; do
  fresh_copy "$V1" "$LIB"
  log_reset
  r_run bt env TRUNCGUARD_SCOPE=elf TRUNCGUARD_MODE=$mode TRUNCGUARD_DEBUG=rewrites,backtrace \
    "$TG_CMD" "$RTOOL" vfork-then-read "$LIB" "$V2" "$DATA"
  [ "$R_STATUS" -eq 0 ] || fail "mode $mode: $(r_out bt)"
  ok "mode $mode: $(r_out bt)"
  expect_same_content "$LIB" "$V2" "the library after both writes"
  expect_log "warning: backtrace not taken in a vfork child"
  expect_log " vfork_then_read+0x" "(${RTOOL})"
  ok "mode $mode: the parent's write has its backtrace; the vfork child's says why it has none"
  expect_no_temp "$T"
done
