#!/bin/bash
# Bug: when the guard's open to read a header failed with EPERM, it tried
# again without O_NOATIME (which only the owner and root may use), and then
# went on trying: 200 opens. An EPERM without O_NOATIME is final: an
# on-access scanner refusing the file (fanotify FAN_DENY, as clamonacc's
# prevention does), a FUSE server. Each open asked the scanner (or the
# server) again: 200 scans for one `echo x > FILE`.
# rtool fanotify-deny refuses every open of the file and counts them. The
# writer's own open is refused with or without truncguard (the control: 1
# open, EPERM); under truncguard (scope self, which decides without the
# header: the real open answers) the look adds at most 2 opens (with
# O_NOATIME, then without), and the writer fails the same way.
. "$(dirname "$0")/rlib.sh"
need_shim
need_root "fanotify permission events need CAP_SYS_ADMIN"

# refused NAME CMD...: CMD writes $T/file while every open of it is refused.
# DENIED: how many opens were refused.
refused() {
  local name=$1
  shift
  seq 1 100 >"$T/file"
  _start_bg "$T/ready" "$T/$name.scanner" "$TG_RTOOL" fanotify-deny "$T/file" "$T/ready"
  r_run "$name" "$@"
  kill -TERM "$BG_PID"
  wait "$BG_PID"
  DENIED=$(sed -n 's/^denied=//p' "$T/$name.scanner")
}

refused plain sh -c "echo x > $T/file"
[ "$R_STATUS" -ne 0 ] && [ "$DENIED" = 1 ] && grep -q 'Operation not permitted' "$T/plain.out" ||
  fail "control: without truncguard: exit $R_STATUS, $DENIED opens refused: $(r_out plain)"
ok "control: without truncguard the writer's open is refused (EPERM), once"
status=$R_STATUS

log_reset
refused guarded "$TG_CMD" --scope=self --debug=decisions sh -c "echo x > $T/file"
[ "$R_STATUS" -eq "$status" ] && grep -q 'Operation not permitted' "$T/guarded.out" ||
  fail "under truncguard: exit $R_STATUS instead of $status: $(r_out guarded)"
[ "$DENIED" -le 3 ] || fail "under truncguard the scanner was asked $DENIED times (1 is the writer's own open)"
ok "under truncguard: the same EPERM, and the scanner was asked $DENIED times (the writer's open and the look's)"
