#!/bin/bash
# Truncating writes that reach the kernel without passing an interposed
# entry point with the flags the shim tests for.  Each proves its control
# (without truncguard the victim dies), then expects protection.
#  1. open(O_RDONLY|O_TRUNC): Linux truncates a regular file opened
#     read-only with O_TRUNC (if the caller may write it), but the shim's
#     flag test treats a read-only open as "not writing".
#  2. posix_spawn() with posix_spawn_file_actions_addopen(O_WRONLY|O_TRUNC):
#     the redirection is done by glibc inside the spawned child through an
#     internal open, never through the interposed open().
#  3. freopen(NULL, "w", stream) and freopen(NULL, "r+", stream): glibc
#     reopens the stream's own file by /proc/self/fd with an internal open;
#     the shim moves the stream's fd to a new inode first (as for ftruncate).
# And the other side: ftruncate on a read-only fd, which the kernel refuses
# (EINVAL), must still be refused, not turned into a replacement.
. "$(dirname "$0")/rlib.sh"
need_victims
need_shim
LIB=$T/libvictim.so

gap() {  # gap WHAT CMD...: CMD truncates $LIB (run as "CMD" and "truncguard CMD")
  local what=$1 old
  shift
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  r_run control "$@"
  stop_victim
  expect_killed "control: $what without truncguard"

  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  start_victim "$LIB"
  log_reset
  r_run guarded "$TG_CMD" "$@"
  stop_victim
  if [ "$VICTIM_STATUS" -ne 0 ]; then
    echo "NOT COVERED: $what under truncguard: the victim $(describe_status "$VICTIM_STATUS"); $LIB is now $(stat -c %s "$LIB") bytes, inode $(inode "$LIB") (was $old); log: [$(tg_log | cut -f2- | paste -sd'|')]" >&2
    gaps+=("$what")
    return
  fi
  expect_survived "$what under truncguard"
}
gaps=()

gap "open(O_RDONLY|O_TRUNC)" "$TG_RTOOL" open RDONLY,TRUNC "$LIB"
gap "posix_spawn with an O_WRONLY|O_TRUNC file action" "$TG_RTOOL" spawn-trunc "$LIB"
# The file action's new inode is made (and published) when the action is
# added: the fd the guard opened there is closed again, none left to the
# program (one fd more at each action over a library in use).
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
r_run addopen_fds "$TG_CMD" python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fa = ctypes.create_string_buffer(256)  # posix_spawn_file_actions_t (80 bytes in glibc 2.36)
def on_lib():  # fds of this program on the file at the name (old or new)
    fds = []
    for n in os.listdir("/proc/self/fd"):
        try:
            if os.readlink("/proc/self/fd/" + n).startswith(sys.argv[1]):
                fds.append(n)
        except OSError:
            pass
    return fds
if libc.posix_spawn_file_actions_init(fa) or libc.posix_spawn_file_actions_addopen(fa, 1, sys.argv[1].encode(), os.O_WRONLY | os.O_TRUNC, 0o644):
    sys.exit("posix_spawn_file_actions_addopen failed")
print("fds on the library:", len(on_lib()))' "$LIB"
stop_victim
expect_survived "posix_spawn_file_actions_addopen over the library in use"
[ "$R_STATUS" -eq 0 ] && grep -qx "fds on the library: 0" "$T/addopen_fds.out" ||
  fail "posix_spawn_file_actions_addopen over a library in use left the program an fd on the file: $(r_out addopen_fds)"
# No spawn followed: the new inode was made when the action was added.
[ "$(inode "$LIB")" != "$old" ] || fail "posix_spawn_file_actions_addopen over a library in use: the name kept inode $old"
expect_log "replaced file=$LIB [ino $old -> "
ok "posix_spawn_file_actions_addopen over a library in use: a new inode at the name when the action is added, no fd of the program left on the file"
# In atomic mode (README, "Limits") the file is published when the action is
# added, empty for O_TRUNC, and the child writes it at the name: a spawned
# cat's output is the whole of v2 there, the victim alive.
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
log_reset
r_run spawn_atomic "$TG_CMD" -m atomic python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fa = ctypes.create_string_buffer(256)  # posix_spawn_file_actions_t (80 bytes in glibc 2.36)
if libc.posix_spawn_file_actions_init(fa) or libc.posix_spawn_file_actions_addopen(fa, 1, sys.argv[1].encode(), os.O_WRONLY | os.O_TRUNC, 0o644):
    sys.exit("posix_spawn_file_actions_addopen failed")
print("at the name after addopen: %d bytes, ino %d" % (os.stat(sys.argv[1]).st_size, os.stat(sys.argv[1]).st_ino))
pid = ctypes.c_int()
argv = (ctypes.c_char_p * 3)(b"cat", sys.argv[2].encode(), None)
if libc.posix_spawn(ctypes.byref(pid), b"/bin/cat", fa, None, argv, None):
    sys.exit("posix_spawn failed")
print("cat:", os.waitpid(pid.value, 0)[1])' "$LIB" "$V2"
stop_victim
expect_survived "posix_spawn with an O_WRONLY|O_TRUNC file action, mode atomic"
new=$(inode "$LIB")
[ "$R_STATUS" -eq 0 ] && grep -qx "at the name after addopen: 0 bytes, ino $new" "$T/spawn_atomic.out" &&
  grep -qx "cat: 0" "$T/spawn_atomic.out" && [ "$new" != "$old" ] ||
  fail "posix_spawn, mode atomic: expected an empty new inode at the name after addopen, then cat's 0: $(r_out spawn_atomic)"
expect_same_content "$LIB" "$V2"
expect_log "published file=$LIB [ino $old -> $new] (mode atomic)"
ok "posix_spawn, mode atomic: published empty when the action is added, the child's output at the name"
gap "freopen(NULL, \"w\")" "$TG_RTOOL" freopen-null w "$LIB"
[ "$(stat -c %s "$LIB")" = 0 ] || fail "freopen(NULL, \"w\"): the name should hold an empty file"
gap "freopen(NULL, \"r+\") and a patch in place" "$TG_RTOOL" freopen-null r+ "$LIB"
cmp -s -n 64 -i 4096:0 "$LIB" <(head -c 64 /dev/zero | tr '\0' '\314') || fail "freopen(NULL, \"r+\"): the patch is not at the name"
cmp -s -n 4096 "$LIB" "$V1" && cmp -s -i 4160:4160 "$LIB" "$V1" ||
  fail "freopen(NULL, \"r+\"): the rest of the file is not the old content"
r_run rdonly_plain "$TG_RTOOL" ftruncate-rdonly "$LIB"
[ "$(r_out rdonly_plain)" = "error=EINVAL" ] || fail "control: ftruncate of a read-only fd: $(r_out rdonly_plain), expected error=EINVAL"
fresh_copy "$V1" "$LIB"
old=$(inode "$LIB")
start_victim "$LIB"
r_run rdonly "$TG_CMD" "$TG_RTOOL" ftruncate-rdonly "$LIB"
stop_victim
[ "$(r_out rdonly)" = "error=EINVAL" ] || fail "ftruncate of a read-only fd under truncguard: $(r_out rdonly), expected error=EINVAL"
expect_survived "ftruncate of a read-only fd"
expect_intact "$LIB" "$old" "$V1"
ok "ftruncate of a read-only fd: the kernel's EINVAL, nothing replaced"

[ ${#gaps[@]} -eq 0 ] || fail "not covered: $(printf '[%s] ' "${gaps[@]}")"
