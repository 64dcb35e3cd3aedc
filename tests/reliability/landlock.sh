#!/bin/bash
# A writer in a Landlock sandbox (tests/reliability/landlock_run.c restricts
# itself, then execs the writer) that may not do what truncguard's new inode
# needs, or may not do what the plain write needs:
# - no TRUNCATE right: the plain `cp` over the library fails (EACCES). Under
#   truncguard it succeeded: a new file and a rename need no truncation, so
#   the sandbox's refusal became a success. Now: ETXTBSY, the name intact.
#   A write that truncates nothing (`dd conv=notrunc`) still gets its new inode.
# - MAKE_REG and REMOVE_FILE in the directory but no WRITE_FILE beneath it:
#   the temp file's O_CREAT open makes the file, then Landlock refuses to
#   open it. It was left behind (.lib.so.tg-...); in mode unlink the old
#   library was deleted and the name left holding an empty file.
# Each mode: the victim lives, the name holds the old file, no temp is left.
# Control: without truncguard the same `cp` kills the victim.
. "$(dirname "$0")/rlib.sh"
need_victims
need_shim
: "${TG_LANDLOCK_RUN:=$TG_BUILD/tests/reliability/landlock_run}"
[ -x "$TG_LANDLOCK_RUN" ] || fail "helper program not built: $TG_LANDLOCK_RUN"
"$TG_LANDLOCK_RUN" -H write -r /=write -- true 2>"$T/ll.err"
case $? in
  0) ;;
  77) skip "$(cat "$T/ll.err")" ;;
  *) fail "landlock_run does not work: $(cat "$T/ll.err")" ;;
esac
"$TG_LANDLOCK_RUN" -H truncate -r /=truncate -- true 2>/dev/null || skip "Landlock has no TRUNCATE right here (ABI < 3)"

D=$T/ll
must mkdir "$D"
LIB=$D/libvictim.so
HANDLED=write,truncate,make_reg,remove_file,refer
# no_truncate CMD...: CMD may write, create, remove and rename anywhere, truncate nothing.
no_truncate() { "$TG_LANDLOCK_RUN" -H "$HANDLED" -r /=write,make_reg,remove_file,refer -- "$@"; }
# no_write CMD...: CMD may create and remove files in $D, write none (but its log).
no_write() { "$TG_LANDLOCK_RUN" -H "$HANDLED" -r "$D=make_reg,remove_file" -r "$T/logs=write,make_reg" -- "$@"; }

# Control: without truncguard, the writer kills the victim; in the sandbox
# without TRUNCATE, the kernel refuses its cp (nothing written).
fresh_copy "$V1" "$LIB"
victim_write control cp "$V2" "$LIB"
expect_control_broken "cp over a library in use" control
fresh_copy "$V1" "$LIB"
victim_write plain no_truncate cp "$V2" "$LIB"
grep -q "Permission denied" "$T/plain.out" || fail "control: the sandbox did not refuse cp's truncation: $(r_out plain)"
expect_survived "control: cp without the TRUNCATE right"
expect_intact "$LIB" "$OLD_INO" "$V1"
ok "control: without truncguard the sandbox refuses the truncation: $(head -n1 "$T/plain.out")"

cases() {
  local mode=$TRUNCGUARD_MODE put_back=
  [ "$mode" = unlink ] && put_back=" (the old file was put back)"
  fresh_copy "$V1" "$LIB"
  refused "cp without the TRUNCATE right" "$LIB" \
    "a sandbox refuses to truncate files here (Landlock), as it would the file's own truncation" \
    "Permission denied$put_back" no_truncate
  fresh_copy "$V1" "$LIB"
  refused "cp without WRITE_FILE in the directory" "$LIB" \
    "$([ "$mode" = unlink ] && echo "cannot create the new file" || echo "cannot create a temporary file in the directory")" \
    "Permission denied$put_back" no_write

  # Nothing truncated, nothing to refuse: the new inode as without a sandbox.
  fresh_copy "$V1" "$LIB"
  victim_write notrunc no_truncate "$TG_CMD" dd if="$V2" of="$LIB" conv=notrunc status=none
  expect_new_inode "dd conv=notrunc without the TRUNCATE right (mode $mode)" notrunc
  ok "dd conv=notrunc without the TRUNCATE right (mode $mode): replaced, inode $OLD_INO -> $NEW_INO"
}
FAILPATH_MODES=${FAILPATH_MODES:-replace unlink atomic} each_mode cases
