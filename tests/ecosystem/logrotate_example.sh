#!/bin/bash
# docs/systemd.md's logrotate example, run for real: its configuration
# (paths moved to a test directory) parses without an error, and a forced
# rotation of a TRUNCGUARD_LOG file that a running writer keeps logging to
# moves the lines written so far to olddir, while the writer's next line,
# from the same process, goes to the new FILE.PID that `create` made.
# Bug: the example had a comment at the end of its olddir line; logrotate
# takes comments only on lines of their own, read "OLDDIR    # out of the
# glob..." as the directory, said "bad olddir path" and skipped the whole
# block: nothing was ever rotated.
. "$(dirname "$0")/../e2e/lib.sh"
need_victims
need_shim
command -v logrotate >/dev/null || skip "logrotate is not installed (apt-get install logrotate)"
SRC=${TG_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}

LOGDIR=$T/log
mkdir -p "$LOGDIR"
conf=$T/logrotate.conf
sed -n '/^\/var\/log\/truncguard\/deploy\.\* {$/,/^}$/p' "$SRC/docs/systemd.md" | sed "s|/var/log/truncguard|$LOGDIR|g" >"$conf"
grep -q '^ *olddir ' "$conf" || fail "no logrotate example with olddir found in docs/systemd.md"
out=$(logrotate -d -s "$T/state.debug" "$conf" 2>&1)
grep -qi '^error' <<<"$out" && fail "logrotate rejects the example of docs/systemd.md: $(grep -i '^error' <<<"$out")"
ok "logrotate -d reads docs/systemd.md's example without an error"

# One writer process (bash itself opens for `: >FILE`), two libraries in
# use: one write before the rotation, one after.
A=$T/liba.so B=$T/libb.so
fresh_copy "$V1" "$A"
fresh_copy "$V1" "$B"
start_victim "$A"
VA=$VICTIM_PID VA_READY=$VICTIM_READY VA_OUT=$VICTIM_OUT
start_victim "$B"
TRUNCGUARD_LOG=$LOGDIR/deploy LD_PRELOAD=$TG_SHIM bash -c \
  ': >"$1"; while [ ! -e "$3" ]; do sleep 0.05; done; : >"$2"' writer "$A" "$B" "$T/go" &
W=$!
for _ in $(seq 200); do grep -qs "replaced file=$A " "$LOGDIR/deploy.$W" && break; sleep 0.05; done
grep -qs "replaced file=$A " "$LOGDIR/deploy.$W" || fail "the writer logged nothing to $LOGDIR/deploy.$W"
logrotate -f -s "$T/state" "$conf" 2>"$T/lr.err" || fail "logrotate -f failed: $(cat "$T/lr.err")"
touch "$T/go"
wait "$W" || fail "the writer failed"
stop_victim
expect_survived "the victim of libb.so"
VICTIM_PID=$VA VICTIM_READY=$VA_READY VICTIM_OUT=$VA_OUT
stop_victim
expect_survived "the victim of liba.so"

rotated=$LOGDIR/old/deploy.$W.1
[ -f "$rotated" ] || fail "no rotated file $rotated: $(find "$LOGDIR" -type f)"
grep -q "replaced file=$A " "$rotated" || fail "the line before the rotation is not in $rotated: $(cat "$rotated")"
grep -q "replaced file=$B " "$LOGDIR/deploy.$W" ||
  fail "the writer's line after the rotation is not in the new $LOGDIR/deploy.$W: $(cat "$LOGDIR/deploy.$W"; cat "$rotated")"
grep -q "replaced file=$A " "$LOGDIR/deploy.$W" && fail "the new log file holds the line written before the rotation"
[ "$(stat -c %a "$LOGDIR/deploy.$W")" = 640 ] || fail "the new log file is not 0640 (create 0640): $(stat -c %a "$LOGDIR/deploy.$W")"
ok "logrotate with the example: the old lines in olddir, the same writer's next line in the new FILE.PID"
