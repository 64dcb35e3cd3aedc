#!/bin/bash
# An ELF library that nobody uses must be truncated in place as usual, even
# where some processes can't be inspected (another user's, a sandbox's pid 1):
# the kernel grants a write lease only if no other process has the file open,
# and every mapping holds it open. Where someone does have it open and can't
# be ruled out, scope system replaces it.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
export TRUNCGUARD_DEBUG=rewrites,decisions

LIB=$T/libunused.so
must cp "$V1" "$LIB"
must ln "$LIB" "$T/hardlink.so"   # sees the new content only if the inode is kept
born=$(stat -c %W -- "$LIB")
"$TG_CMD" cp "$V2" "$LIB" || fail "truncguard cp over an unused library failed"
expect_same_content "$T/hardlink.so" "$V2" "the hard link made before the write"
[ "$(stat -c %W -- "$LIB")" = "$born" ] || fail "the birth time changed: a new inode, not the old one"
expect_no_log "replaced file=$LIB"
expect_log "decision file=$LIB: pass (no process has it open or mapped (the kernel granted a write lease))"
ok "an unused ELF library was truncated in place, and the log says the kernel proved it unused"

# Control: the same file in use by a victim is replaced, and the hard link
# keeps the old content (so the check above could fail).
must cp "$V1" "$LIB"
rm -f -- "$T/hardlink.so"
must ln "$LIB" "$T/hardlink.so"
start_victim "$LIB"
log_reset
"$TG_CMD" cp "$V2" "$LIB" || fail "truncguard cp over a used library failed"
stop_victim
expect_survived "truncguard cp"
expect_same_content "$T/hardlink.so" "$V1" "the hard link of a replaced file"
expect_log "decision file=$LIB: act (mapped executable)"
ok "control: the same library in use is replaced; its other name keeps the old content"

# A reader (not a mapper) defeats the proof; then the /proc scan decides.
hidden=$(uninspectable_processes | head -n 1)
must cp "$V1" "$LIB"
exec 3<"$LIB"
log_reset
"$TG_CMD" cp "$V2" "$LIB" || fail "truncguard cp over a library open for reading failed"
exec 3<&-
if [ -n "$hidden" ]; then
  expect_log "decision file=$LIB: act (some processes could not be inspected: replace unless proven unmapped)"
  ok "with a reader and uninspectable processes ($hidden), the library was replaced (not proven unused)"
else
  expect_log "decision file=$LIB: pass (no process maps it executable)"
  ok "with a reader and every process inspectable, the scan proved it unmapped"
fi

# The same where some processes can't be inspected for sure: a writer that is
# not root (nobody), which can't read root's maps. The lease still proves an
# unused library unused (truncated in place); a reader defeats the proof, and
# the library counts as mapped (replaced).
if [ "$(id -u)" -eq 0 ] && as_nobody true; then
  nobody_copies
  must mkdir -m 0755 "$T/nobody"
  must chown 65534:65534 "$T/nobody"
  NLIB=$T/nobody/libunused.so
  hidden=$(as_nobody bash -c "$(declare -f uninspectable_processes); uninspectable_processes" | head -n 1)
  [ -n "$hidden" ] || fail "setup: nobody can inspect every process, even root's"
  must cp "$V1" "$NLIB"
  must chown 65534:65534 "$NLIB"
  must ln "$NLIB" "$T/nobody/hardlink.so"
  log_reset
  as_nobody env TRUNCGUARD_LOG="$TG_LOG" "$TG_CMD_N" cp "$V2" "$NLIB" || fail "nobody's truncguard cp over an unused library failed"
  expect_same_content "$T/nobody/hardlink.so" "$V2" "the hard link made before nobody's write"
  expect_log "decision file=$NLIB: pass (no process has it open or mapped (the kernel granted a write lease))"
  ok "as nobody (pid $hidden not inspectable), an unused library was truncated in place on the lease"

  must cp "$V1" "$NLIB"
  exec 3<"$NLIB"
  log_reset
  as_nobody env TRUNCGUARD_LOG="$TG_LOG" "$TG_CMD_N" cp "$V2" "$NLIB" || fail "nobody's truncguard cp over a library open for reading failed"
  exec 3<&-
  expect_same_content "$T/nobody/hardlink.so" "$V1" "the hard link of a library open for reading, after nobody's write"
  expect_log "decision file=$NLIB: act (some processes could not be inspected: replace unless proven unmapped)"
  ok "as nobody, with a reader (no lease), the library counts as mapped and was replaced"
fi
