# A program may lower its soft RLIMIT_NOFILE below fds it already holds; the
# kernel lets it use them, and refuses a dup2/dup3 onto such a number (EBADF).
# (The ftruncate of such an fd, moved to a new inode all the same: e2e ftruncate.)
# 1. With the hard limit lowered below the fd too, no dup3 can reach its
#    number: truncguard can't protect that write, which fails with ETXTBSY
#    (the documented fallback, logged), the name left as it was (it held a
#    new inode, the writer's fd the old one). Control: without truncguard the
#    ftruncate works and the victim dies.
# 2. Bug: in atomic mode, a dup2/dup3 onto a pending fd's number above the
#    lowered limit published the file (the name took the half-written file)
#    and then failed with EBADF as the kernel does, the fd still open. Now it
#    fails the same and publishes nothing: the close publishes the whole file.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
[ -x "$TG_FD_TRUNCATOR" ] || fail "no fd_truncator at $TG_FD_TRUNCATOR"
command -v python3 >/dev/null || skip "python3 is not installed"
LIB=$T/libvictim.so

run() {  # run [WRAPPER...]: the truncator opens (fd 600, limits 64), the victim maps, the truncator truncates
  writer_then_victim fd_truncator "$T/trunc" "$LIB" "$@" "$TG_FD_TRUNCATOR" "$LIB" "$V2" "$T/trunc.ready" \
    "$T/trunc.go" hard
}
fresh_copy "$V1" "$LIB"
run
expect_killed "control: ftruncate of fd 600 above a hard limit of 64, without truncguard"
grep -q 'ftruncate' "$T/trunc.out" && fail "control: the ftruncate failed: $(cat "$T/trunc.out")"
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
log_reset
run "$TG_CMD"
expect_survived "ftruncate of fd 600 above a hard limit of 64, under truncguard"
grep -qx 'ftruncate: Text file busy' "$T/trunc.out" || fail "fd above the hard limit: $(cat "$T/trunc.out")"
[ "$(inode "$LIB")" = "$old" ] || fail "fd above the hard limit: the name took a new inode, the writer's fd the old one"
expect_same_content "$LIB" "$V1"
expect_log "cannot protect file=$LIB: its fd number is above the hard limit on open files (RLIMIT_NOFILE)"
ok "fd 600 above a hard limit of 64: ETXTBSY, said in the log, the name unchanged"

# 2. Atomic mode: dup2 and dup3 onto the pending fd's number above the limit.
cat >"$T/dup_above.py" <<'PY'
import os, resource, sys
lib, v2 = sys.argv[1:3]
fd = os.open(lib, os.O_WRONLY | os.O_TRUNC)
os.dup2(fd, 600)
os.close(fd)
old = os.stat(lib).st_ino
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
for inheritable in (True, False):  # dup2, then dup3(O_CLOEXEC)
    try:
        os.dup2(1, 600, inheritable=inheritable)
        print("dup onto 600: returned")
    except OSError as e:
        print("dup onto 600:", e.strerror)
print("same inode:", os.stat(lib).st_ino == old)
with open(v2, "rb") as f:
    os.write(600, f.read())
os.close(600)
PY
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
python3 "$T/dup_above.py" "$LIB" "$V2" >"$T/control.out" 2>&1 || fail "control: the python writer failed: $(cat "$T/control.out")"
stop_victim
expect_killed "control: python's O_TRUNC write without truncguard"
[ "$(grep -c 'dup onto 600: Bad file descriptor' "$T/control.out")" = 2 ] && grep -qx 'same inode: True' "$T/control.out" ||
  fail "control: unexpected output: $(cat "$T/control.out")"

fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
TRUNCGUARD_MODE=atomic "$TG_CMD" python3 "$T/dup_above.py" "$LIB" "$V2" >"$T/tg.out" 2>&1 ||
  fail "the python writer failed under truncguard: $(cat "$T/tg.out")"
stop_victim
expect_survived "python's O_TRUNC write under truncguard (atomic)"
diff "$T/control.out" "$T/tg.out" >&2 ||
  fail "dup2/dup3 above the limit: other results under truncguard (a changed inode: published before the close)"
new=$(inode "$LIB")
expect_same_content "$LIB" "$V2"
expect_log "published file=$LIB [ino $old -> $new] (mode atomic): the writer closed it"
ok "atomic: dup2 and dup3 onto fd 600 above the limit fail with EBADF as without truncguard, and publish nothing"

# 3. An O_RDWR open (looked at after the real open) that fails for want of an
# fd (EMFILE): the program gets the kernel's answer, the name is unchanged,
# and the decision's reason says that nothing was opened.
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
TRUNCGUARD_DEBUG=decisions,rewrites "$TG_CMD" python3 -c '
import os, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (32, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
fds = []
try:
    while True:
        fds.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
try:
    os.open(sys.argv[1], os.O_RDWR)
    print("open: ok")
except OSError as e:
    print("open:", e.strerror)' "$LIB" >"$T/emfile.out" 2>&1
stop_victim
expect_survived "an O_RDWR open at EMFILE"
grep -qx 'open: Too many open files' "$T/emfile.out" || fail "O_RDWR open at EMFILE: $(cat "$T/emfile.out")"
[ "$(inode "$LIB")" = "$old" ] || fail "O_RDWR open at EMFILE: the name changed inode"
# (No fd for the log file either: the line goes to stderr.)
grep -qF "decision file=$LIB: pass (the open failed: nothing was opened, nothing can change)" "$T/emfile.out" ||
  expect_log "decision file=$LIB: pass (the open failed: nothing was opened, nothing can change)"
ok "an O_RDWR open at EMFILE: the kernel's answer, the name unchanged, the reason logged"
