#!/bin/bash
# A program that holds a write lease on its own file (Samba's kernel oplocks)
# and shrinks it with ftruncate: truncguard must not break the program's own
# lease (opening the file to read its header would, and the kernel would send
# the program a lease-break signal). The lease itself proves that nobody else
# has the file open or mapped, so the ftruncate passes.
. "$(dirname "$0")/rlib.sh"
need_shim
need_victims
for content in "$V1" /etc/services; do   # an ELF shared object, and text
  cp -- "$content" "$T/shared"
  r_run plain "$TG_RTOOL" lease-ftruncate "$T/shared"
  [ "$R_STATUS" -eq 0 ] || skip "no write leases here: $(r_out plain)"
  [ "$(r_out plain)" = "breaks=0 lease=1" ] || fail "control: $(r_out plain)"
  cp -- "$content" "$T/shared"
  old=$(inode "$T/shared")
  log_reset
  r_run guarded env TRUNCGUARD_DEBUG=decisions "$TG_CMD" "$TG_RTOOL" lease-ftruncate "$T/shared"
  [ "$R_STATUS" -eq 0 ] || fail "${content##*/}: the ftruncate failed under truncguard: $(r_out guarded)"
  [ "$(r_out guarded)" = "breaks=0 lease=1" ] ||
    fail "${content##*/}: under truncguard the program's own lease was broken: $(r_out guarded)"
  [ "$(inode "$T/shared")" = "$old" ] && [ "$(stat -c %s "$T/shared")" = 10 ] ||
    fail "${content##*/}: not truncated in place to 10 bytes"
  expect_log "decision file=fd " ": pass (no process has it open or mapped"
  ok "${content##*/}: ftruncate under the program's own write lease: no lease break, truncated in place"
done
