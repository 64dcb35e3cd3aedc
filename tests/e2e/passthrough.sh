#!/bin/bash
# Bug: the shim changes what ordinary programs do with ordinary files.  Run
# the same everyday writes (cp, sort -o, > and >>, tar x over existing
# files) with and without truncguard: the results, inodes and errors match.
# (These files are not mapped by anyone, so truncguard must not act.)
. "$(dirname "$0")/lib.sh"
need_shim

# The workload, run in directory $1 with command prefix $2.. (empty or truncguard).
workload() {
  local d=$1
  shift
  (
    cd "$d" || exit 1
    printf 'one\ntwo\n' >a.txt
    printf 'c\nb\na\n' >unsorted.txt
    printf 'src\n' >src.txt
    printf 'old content that is longer\n' >existing.txt
    mkdir -p tree && printf 'old\n' >tree/f1 && printf 'old\n' >tree/f2
    mkdir -p stage/tree && printf 'new1\n' >stage/tree/f1 && printf 'new2\n' >stage/tree/f2
    tar -C stage -cf tree.tar tree
    ls -i a.txt unsorted.txt existing.txt | sort -k2 >inodes.before

    "$@" cp src.txt existing.txt || echo "cp failed $?" >>errors
    "$@" sort -o unsorted.txt unsorted.txt || echo "sort failed $?" >>errors
    "$@" bash -c 'echo replaced > a.txt; echo appended >> a.txt' || echo "bash failed $?" >>errors
    "$@" tar -xf tree.tar || echo "tar failed $?" >>errors
    echo changed >tree/f1
    ls -i tree/f1 tree/f2 >>inodes.before
    "$@" tar --overwrite -xf tree.tar || echo "tar --overwrite failed $?" >>errors  # O_TRUNC
    "$@" bash -c 'printf "%s\n" x y > b.txt; cat b.txt b.txt >> b2.txt' || echo "bash2 failed $?" >>errors
    { ls -i a.txt unsorted.txt existing.txt | sort -k2; ls -i tree/f1 tree/f2; } >inodes.after
    # Same inode before and after, without or with the shim.
    if cmp -s inodes.before inodes.after; then echo same >inodes.same; else echo differ >inodes.same; fi
    rm inodes.before inodes.after tree.tar
    rm -rf stage
  )
}

mkdir "$T/plain" "$T/guarded" || fail "mkdir"
workload "$T/plain" || fail "the workload failed without truncguard"
log_reset
workload "$T/guarded" "$TG_CMD" || fail "the workload failed under truncguard"
[ -e "$T/guarded/errors" ] && fail "commands failed under truncguard: $(cat "$T/guarded/errors")"
[ -e "$T/plain/errors" ] && fail "commands failed without truncguard: $(cat "$T/plain/errors")"
diff -r "$T/plain" "$T/guarded" >"$T/diff.out" ||
  fail "the results differ with and without truncguard: $(cat "$T/diff.out")"
[ "$(cat "$T/plain/inodes.same")" = same ] || fail "control: without truncguard the overwritten files changed inode"
[ "$(cat "$T/guarded/inodes.same")" = same ] || fail "under truncguard, overwritten files changed inode"
expect_no_log "replaced file="
expect_no_log "cannot protect"
ok "cp, sort -o, >, >>, tar x, tar --overwrite x: same results, same inodes"

# Errors: same message, same exit status.
plain_err=$(cat /nonexistent 2>&1)
plain_st=$?
tg_err=$("$TG_CMD" cat /nonexistent 2>&1)
tg_st=$?
[ "$tg_st" -eq "$plain_st" ] || fail "cat /nonexistent: exit $tg_st under truncguard, $plain_st without"
[ "$tg_err" = "$plain_err" ] || fail "cat /nonexistent: \"$tg_err\" under truncguard, \"$plain_err\" without"
ok "cat /nonexistent: same error ($plain_err), same exit $plain_st"

# A write the kernel refuses (a read-only file, for an unprivileged user)
# gives the same error too: the shim must not turn EACCES into something else.
echo keep >"$T/readonly.txt"
chmod 444 "$T/readonly.txt"
if [ "$(id -u)" -eq 0 ]; then
  as_user() { as_nobody "$@"; }
  nobody_copies
else
  as_user() { "$@"; }
  TG_CMD_N=$TG_CMD
fi
plain_err=$(as_user bash -c 'echo x > "$1"' bash "$T/readonly.txt" 2>&1)
plain_st=$?
[ "$plain_st" -ne 0 ] || fail "control: an unprivileged write to a read-only file succeeded"
tg_err=$(as_user "$TG_CMD_N" bash -c 'echo x > "$1"' bash "$T/readonly.txt" 2>&1)
tg_st=$?
[ "$tg_st" = "$plain_st" ] && [ "$tg_err" = "$plain_err" ] ||
  fail "write to a read-only file: \"$tg_err\" ($tg_st) under truncguard, \"$plain_err\" ($plain_st) without"
[ "$(cat "$T/readonly.txt")" = keep ] || fail "the read-only file was changed"
ok "write to a read-only file: same error ($plain_err)"

# The same for a loaded library the user may not write: it must fail with
# EACCES exactly as without truncguard, not be "protected" into a success.
need_victims
fresh_copy "$V1" "$T/libro.so"
chmod 444 "$T/libro.so"
ro_ino=$(inode "$T/libro.so")
start_victim "$T/libro.so"
plain_err=$(as_user cp "$V2" "$T/libro.so" 2>&1)
plain_st=$?
tg_err=$(as_user "$TG_CMD_N" cp "$V2" "$T/libro.so" 2>&1)
tg_st=$?
stop_victim
expect_survived "cp refused by the kernel"
[ "$plain_st" -ne 0 ] || fail "control: an unprivileged cp over a read-only library succeeded"
[ "$tg_st" = "$plain_st" ] && [ "$tg_err" = "$plain_err" ] ||
  fail "cp over a read-only loaded library: \"$tg_err\" ($tg_st) under truncguard, \"$plain_err\" ($plain_st) without"
[ "$(inode "$T/libro.so")" = "$ro_ino" ] || fail "the read-only library was replaced"
expect_same_content "$T/libro.so" "$V1"
ok "cp over a read-only loaded library: same error ($plain_err), not replaced"

plain_err=$(bash -c 'echo x > /nonexistent/dir/file' 2>&1)
plain_st=$?
tg_err=$("$TG_CMD" bash -c 'echo x > /nonexistent/dir/file' 2>&1)
tg_st=$?
[ "$tg_st" = "$plain_st" ] && [ "$tg_err" = "$plain_err" ] ||
  fail "redirect into a missing directory: \"$tg_err\" ($tg_st) under truncguard, \"$plain_err\" ($plain_st) without"
ok "redirect into a missing directory: same error"
