#!/bin/bash
# Bug (node_addons' "fs.copyFileSync (atomic)" failed once with ETXTBSY under
# load): the guard reuses its snapshot of every executable mapping for 10 s,
# but only answers that lead to acting, on the grounds that a stale one can
# only make it replace a file it need not have. Not so for an fd whose file
# no name reaches (the unnamed new file of atomic mode, a deleted file):
# there acting means failing ("its file is no longer at its name"). ext4
# gives a freed inode's number to the next file made near it, so an atomic
# writer's new file could get the number of a library that a process mapped
# when the snapshot was made and that was deleted since (another test's
# victim ending): the writer's ftruncate of its own fd (node's copyFileSync:
# open, ftruncate, copy) was answered "mapped by pid N" from the snapshot, and
# failed with ETXTBSY. Such an fd's answer is now always taken fresh.
#
# On an ext4 image of its own, in its own PID namespace (every process can
# be inspected; scope namespace), one python writer under truncguard -m atomic:
#   1. opens C, mapped by victim C, in place: the snapshot is made, and it
#      holds victim A's mapping of gone.so (inode X, on the image);
#   2. victim A ends and gone.so is removed: X is free;
#   3. opens lib.so, mapped by victim B, in place: answered from the
#      snapshot; its new unnamed file gets number X (checked);
#   4. ftruncate(fd, 0), writes v2, closes: published, victim B alive.
R_PID_NS=1
. "$(dirname "$0")/rlib.sh"
need_pid_ns
need_victims
need_shim
command -v python3 >/dev/null || skip "python3 missing"
command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 missing (Debian package e2fsprogs)"
truncate -s 32M "$T/ext4.img"
mkfs.ext4 -q -F "$T/ext4.img" >"$T/mkfs.out" 2>&1 || fail "setup: mkfs.ext4: $(cat "$T/mkfs.out")"
must mkdir "$T/fs"
r_mount -o loop "$T/ext4.img" "$T/fs"
GONE=$T/fs/gone.so LIB=$T/fs/lib.so C=$T/libC.so

cat >"$T/writer.py" <<'EOF'
import os, sys
c, lib, v2, t = sys.argv[1:]
fd = os.open(c, os.O_WRONLY | os.O_CREAT)  # 1: the snapshot
os.close(fd)
open(t + "/step1", "w").close()
import time
for _ in range(500):
    if os.path.exists(t + "/go"): break
    time.sleep(0.01)
fd = os.open(lib, os.O_WRONLY | os.O_CREAT)  # 3
print("ino", os.fstat(fd).st_ino, flush=True)
os.ftruncate(fd, 0)  # 4
with open(v2, "rb") as f: os.write(fd, f.read())
os.close(fd)
print("done", flush=True)
EOF

cp "$V1" "$GONE" && cp "$V1" "$LIB" && cp "$V1" "$C" || fail "setup: copies"
X=$(inode "$GONE")
start_victim "$GONE"; P_A=$VICTIM_PID; R_A=$VICTIM_READY
start_victim "$C"; P_C=$VICTIM_PID; R_C=$VICTIM_READY; O_C=$VICTIM_OUT
start_victim "$LIB"; P_B=$VICTIM_PID; R_B=$VICTIM_READY; O_B=$VICTIM_OUT
log_reset
"$TG_CMD" -m atomic --scope=namespace python3 "$T/writer.py" "$C" "$LIB" "$V2" "$T" >"$T/writer.out" 2>&1 &
WRITER=$!
for ((i = 0; i < 1000; i++)); do [ -e "$T/step1" ] && break; sleep 0.01; done
[ -e "$T/step1" ] || fail "the writer did not get past its first file: $(cat "$T/writer.out"); the log: $(tg_log)"
VICTIM_PID=$P_A VICTIM_READY=$R_A stop_victim
rm -f "$GONE" || fail "cannot remove $GONE"
: >"$T/go"
wait "$WRITER"
st=$?
grep -qx "ino $X" "$T/writer.out" ||
  fail "setup: ext4 did not give the freed inode number $X to the writer's new file: $(cat "$T/writer.out")"
[ "$st" -eq 0 ] && grep -qx done "$T/writer.out" ||
  fail "the writer failed (status $st): $(cat "$T/writer.out"); the log: $(tg_log)"
expect_log "replaced file=$LIB [ino " "per a scan"
expect_log "published file=$LIB [ino "
expect_no_log "cannot protect"
expect_same_content "$LIB" "$V2"
VICTIM_PID=$P_B VICTIM_READY=$R_B VICTIM_OUT=$O_B stop_victim
expect_survived "victim B (lib.so)"
VICTIM_PID=$P_C VICTIM_READY=$R_C VICTIM_OUT=$O_C stop_victim
expect_survived "victim C"
ok "an atomic writer's new file given the number of a library mapped when the snapshot was made: its ftruncate works, the file is published"
