#!/bin/bash
# `truncguard stale` and `who` with processes that see other files at the
# same names: a chroot, and another mount namespace. The kernel names a
# mapping in /proc/PID/maps from the root of the reader (us) when the file is
# reachable from it, else from the root of the namespace the file is in.
#  1. A victim in a chroot runs the chroot's copies of its libraries, named
#     "$R/lib.so" in its maps. `stale` looked them up under the chroot again
#     ("$R$R/lib.so"), found nothing there, and called every one of them
#     "missing": now nothing is stale until the library is replaced, and then
#     only it, "deleted". And `stale` run in the chroot does not call a
#     victim outside it stale (its files are named from the namespace's root).
#  2. A victim in a mount namespace of its own, with a tmpfs over $D, ran
#     $D/lib.so there and it was deleted; here $D/lib.so is another file.
#     `who $D/lib.so` called the victim's file a replaced older version of
#     ours (exit 0); fuser and lsof list nobody, and now so does who
#     (another device). A victim of another namespace that runs our file,
#     replaced by `truncguard cp`, is still listed as replaced, and
#     `stale` checks its paths through its own root: the tmpfs file it runs
#     is fresh.
R_MOUNT_NS=1
. "$(dirname "$0")/rlib.sh"
need_mount_ns
need_victims
need_shim
command -v chroot >/dev/null && command -v nsenter >/dev/null || skip "chroot and nsenter (coreutils, util-linux) are needed"

# stale_rows PID: the rows of `truncguard stale` for PID.
stale_rows() { "$TG_CMD" stale 2>/dev/null | awk -v p="$1" '$2 == p'; }

# --------------------------------------------------------------- 1. chroot
R=$T/jail
# jail PROGRAM NAME: PROGRAM at $R/NAME, with the libraries it loads.
jail() {
  local f
  cp "$1" "$R/$2" || fail "cannot copy $1 into the chroot"
  for f in $(ldd "$1" | grep -o '/[^ ]*'); do
    mkdir -p "$R$(dirname "$f")" && cp -n "$f" "$R$f" || fail "cannot copy $f into the chroot"
  done
}
mkdir -p "$R/proc"
jail "$TG_VICTIM" victim
fresh_copy "$V1" "$R/lib.so"
_start_bg "$R/ready" "$T/jail.out" chroot "$R" /victim /lib.so "$TG_VICTIM_MS" /ready
P=$BG_PID
grep -qF " $R/lib.so" "/proc/$P/maps" || fail "the chrooted victim's maps do not name $R/lib.so: $(cat "/proc/$P/maps")"
rows=$(stale_rows "$P")
[ -z "$rows" ] || fail "stale lists the chrooted victim, which runs the files now at its paths: $rows"
ok "stale: a chrooted victim running the files at its paths is not stale"
"$TG_CMD" cp "$V2" "$R/lib.so" 2>/dev/null || fail "truncguard cp into the chroot failed"
rows=$(stale_rows "$P")
[ "$(awk '{ print $5, $6 }' <<<"$rows")" = "deleted $R/lib.so" ] ||
  fail "stale after replacing the chrooted victim's library: \"$rows\", expected one row: deleted $R/lib.so"
ok "stale: then its replaced library, and only it: $rows"
rm -f "$R/ready"
wait "$P" || fail "the chrooted victim $(describe_status $?)"

# stale run in the chroot: the kernel names the files of the processes
# outside it from the namespace's root, which it can't reach by those names.
jail "$TG_CMD" truncguard
r_mount -t proc proc "$R/proc"
fresh_copy "$V1" "$T/outside.so"
start_victim "$T/outside.so"
rows=$(chroot "$R" /truncguard stale 2>/dev/null | awk -v p="$VICTIM_PID" '$2 == p')
[ -z "$rows" ] || fail "stale in the chroot lists a victim outside it, which runs the files at its paths: $rows"
ok "stale run in a chroot: a victim outside it running the files at its paths is not stale"
stop_victim

# ------------------------------------------------- 2. another mount namespace
D=$T/d
mkdir -p "$D"
fresh_copy "$V2" "$D/lib.so"
# in_ns_victim READY LIB [TMPFS]: a victim on LIB in a mount namespace of its
# own, with a tmpfs over TMPFS holding a copy of V1 as LIB if TMPFS is given.
in_ns_victim() {
  _start_bg "$1" "$1.out" unshare -m --propagation private -- bash -c '
    if [ -n "$5" ]; then mount -t tmpfs none "$5" && cp "$4" "$2" || exit 2; fi
    exec "$0" "$2" "$1" "$3"' "$TG_VICTIM" "$TG_VICTIM_MS" "$2" "$1" "$V1" "${3:-}"
  P=$BG_PID
}
in_ns_victim "$T/ready.ns" "$D/lib.so" "$D"
rows=$(stale_rows "$P")
[ -z "$rows" ] || fail "stale lists the victim of another namespace, which runs the file at its path there: $rows"
ok "stale: a victim of another mount namespace is checked through its root (its tmpfs file is fresh)"
nsenter -t "$P" -m rm "$D/lib.so" || fail "cannot delete the library in the victim's namespace"
grep -qF "$D/lib.so (deleted)" "/proc/$P/maps" || fail "the victim's maps do not say $D/lib.so (deleted)"
out=$("$TG_CMD" who "$D/lib.so" 2>&1)
awk -v p="$P" '$1 == p' <<<"$out" | grep -q . &&
  fail "who $D/lib.so lists the victim of another namespace, which ran another file of that name: $out"
ok "who: a deleted file of the same name in another namespace (another device) is not ours replaced"
rm -f "$T/ready.ns"
wait "$P" || fail "the victim in its namespace $(describe_status $?)"

# The same, with the victim's main thread exited while its calls run on (a
# daemon whose main() ends in pthread_exit): /proc/PID/root went with that
# thread, and stale looked the name up in our namespace, where it is another
# file. A live thread's root answers.
TG_VICTIM_LEADER_EXITS=1 in_ns_victim "$T/ready.ns1" "$D/lib.so" "$D"
for ((i = 0; i < 500; i++)); do
  [ "$(awk '/^State:/ { print $2 }' "/proc/$P/status")" = Z ] && break
  sleep 0.01
done
stat "/proc/$P/root/" >/dev/null 2>&1 &&
  fail "the root link of a process whose main thread exited still opens: the case of this test does not arise here"
rows=$(stale_rows "$P")
[ -z "$rows" ] || fail "stale lists the victim of another namespace whose main thread exited, which runs the file at its path there: $rows"
ok "stale: a victim of another mount namespace whose main thread exited is checked through a live thread's root"
rm -f "$T/ready.ns1"
wait "$P" || fail "the victim with its main thread exited in its namespace $(describe_status $?)"

# Our file, run in another namespace, replaced here: still "replaced".
fresh_copy "$V1" "$D/lib.so"
in_ns_victim "$T/ready.ns2" "$D/lib.so"
"$TG_CMD" cp "$V2" "$D/lib.so" 2>/dev/null || fail "truncguard cp failed"
out=$("$TG_CMD" who "$D/lib.so" 2>&1)
awk -v p="$P" '$1 == p && $5 == "replaced"' <<<"$out" | grep -q . ||
  fail "who does not list the victim of another namespace that runs our replaced file: $out"
ok "who: a victim of another namespace running our replaced file is listed as replaced"
rm -f "$T/ready.ns2"
wait "$P" || fail "the second victim in its namespace $(describe_status $?)"
