#!/bin/bash
# /proc mounted with hidepid=invisible (hardened systems): a user's /proc
# lists only the processes it may trace. A deploy user's `truncguard cp`
# over its own library, which a root service runs, must not take "nobody
# listed maps it" for "nobody maps it": the processes it was not shown count
# as uninspected, so the ELF library is replaced. Control: without
# truncguard the service dies. `truncguard who` says the answer is
# incomplete (exit 3, hidden_by_hidepid in its JSON).
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_victims
need_mount_ns
need_shim
as_nobody true || skip "cannot switch to uid 65534 with setpriv"
nobody_copies
mount -t proc -o hidepid=invisible proc /proc 2>"$T/mount.err" || skip "cannot mount /proc with hidepid here: $(cat "$T/mount.err")"
_r_mounts+=(/proc)
as_nobody test -e /proc/1 && skip "hidepid=invisible hides nothing here (pid 1 is visible to nobody)"

mkdir -m 755 "$T/app"
chown nobody "$T/app"
LIB=$T/app/libvictim.so
own_copy() { fresh_copy "$V1" "$LIB"; chown nobody "$LIB"; }
for v in "$V1" "$V2"; do cp "$v" "$T/app/${v##*/}.src"; done
SRC=$T/app/${V2##*/}.src
chmod 644 "$T/app/"*.src

own_copy
start_victim "$LIB"
as_nobody cp "$SRC" "$LIB" || fail "control: nobody's cp failed"
stop_victim
expect_killed "control: nobody's cp over the library a root process runs"

own_copy
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
as_nobody env TRUNCGUARD_LOG="$TG_LOG" "$TG_CMD_N" cp "$SRC" "$LIB" || fail "nobody's truncguard cp failed"
stop_victim
expect_survived "nobody's truncguard cp"
[ "$(inode "$LIB")" != "$old" ] || fail "the library was truncated in place"
expect_log "replaced file=$LIB [ino $old -> " "could not be inspected"
ok "the processes hidden by hidepid counted as uninspected: the library was replaced"

# The same for a writer whose main thread exited (a daemon whose main() ends
# in pthread_exit): it reads its mounts through /proc/thread-self, as
# /proc/self/mountinfo can't be read then (hidepid went unseen: "no process
# maps it", the library was truncated and the service died).
must cp "$TG_RTOOL" "$T/bin/rtool"
chmod 755 "$T/bin/rtool"
own_copy
start_victim "$LIB"
as_nobody "$T/bin/rtool" main-thread-exits truncate "$LIB" 0 >/dev/null
stop_victim
expect_killed "control: a truncate by nobody whose main thread exited"
own_copy
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
out=$(as_nobody env TRUNCGUARD_LOG="$TG_LOG" LD_PRELOAD="$TG_SHIM_N" "$T/bin/rtool" main-thread-exits truncate "$LIB" 0 2>&1)
stop_victim
[ "$out" = ok ] || fail "nobody's truncate with its main thread exited, under truncguard: $out; log: $(tg_log)"
expect_survived "a truncate by nobody whose main thread exited, under truncguard"
[ "$(inode "$LIB")" != "$old" ] || fail "the library was truncated in place (main thread exited)"
expect_log "replaced file=$LIB [ino $old -> " "could not be inspected"
ok "a writer whose main thread exited sees hidepid too: the library was replaced"

own_copy
start_victim "$LIB"
out=$(as_nobody "$TG_CMD_N" who --json "$LIB" 2>"$T/who.err")
st=$?
stop_victim
[ "$st" -eq 3 ] || fail "truncguard who as nobody exited $st, expected 3 (incomplete): $out $(cat "$T/who.err")"
grep -q '"hidden_by_hidepid":true' <<<"$out" || fail "who's JSON does not say hidden_by_hidepid: $out"
grep -q "mounted with hidepid" "$T/who.err" || fail "who does not warn about hidepid: $(cat "$T/who.err")"
ok "truncguard who as nobody: exit 3, hidden_by_hidepid, and a warning"
# Its advice fits who reads it: nobody is told to run as root; root, who
# was told the same, is told what even root is not shown.
grep -qF "Run as root to see them." "$T/who.err" || fail "who as nobody under hidepid: $(cat "$T/who.err")"
"$TG_CMD" who "$LIB" >/dev/null 2>"$T/who.err"
grep -qF "Even root is not shown a process it may not trace" "$T/who.err" && ! grep -q "Run as root" "$T/who.err" ||
  fail "who as root under hidepid: $(cat "$T/who.err")"
ok "the hidepid warning: 'run as root' for nobody, not for root"

# hidepid=ptraceable (since Linux 5.8) leaves out the processes we may not
# ptrace too, and mountinfo names it so ("hidepid=ptraceable", not a number).
if ! mount -t proc -o hidepid=ptraceable proc /proc 2>"$T/mount.err"; then
  note "hidepid=ptraceable is left out: cannot mount /proc with it here: $(cat "$T/mount.err")"
  exit 0
fi
_r_mounts+=(/proc)
grep -q " /proc .* proc proc .*hidepid=ptraceable" /proc/self/mountinfo ||
  fail "control: mountinfo does not name hidepid=ptraceable: $(grep ' /proc ' /proc/self/mountinfo)"
as_nobody test -e /proc/1 && fail "control: hidepid=ptraceable shows pid 1 to nobody"
own_copy
start_victim "$LIB"
out=$(as_nobody "$TG_CMD_N" who --json "$LIB" 2>"$T/who.err")
st=$?
stop_victim
[ "$st" -eq 3 ] || fail "hidepid=ptraceable: truncguard who as nobody exited $st, expected 3 (incomplete): $out $(cat "$T/who.err")"
grep -q '"hidden_by_hidepid":true' <<<"$out" || fail "hidepid=ptraceable: who's JSON does not say hidden_by_hidepid: $out"
ok "hidepid=ptraceable: truncguard who as nobody exits 3, hidden_by_hidepid"

# The proc mount on top is the one /proc is: a plain one mounted over these
# hides nothing (root's processes are listed, and can't be read: exit 3
# still, but not hidden_by_hidepid).
mount -t proc proc /proc 2>"$T/mount.err" || fail "cannot mount a plain /proc over the others: $(cat "$T/mount.err")"
_r_mounts+=(/proc)
as_nobody test -e /proc/1 || fail "control: a plain /proc on top still hides pid 1 from nobody"
own_copy
start_victim "$LIB"
out=$(as_nobody "$TG_CMD_N" who --json "$LIB" 2>"$T/who.err")
st=$?
stop_victim
[ "$st" -eq 3 ] || fail "a plain /proc on top: truncguard who as nobody exited $st, expected 3 (root's victim unreadable): $out"
grep -q '"hidden_by_hidepid":false' <<<"$out" || fail "a plain /proc on top of hidepid ones: who's JSON says hidden_by_hidepid: $out"
grep -q "mounted with hidepid" "$T/who.err" && fail "a plain /proc on top of hidepid ones: who warns about hidepid: $(cat "$T/who.err")"
ok "a plain /proc mounted over hidepid ones: not hidden_by_hidepid (the top mount counts), exit 3 for the unreadable"
