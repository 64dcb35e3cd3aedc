#!/bin/bash
# truncguard's look at a file (its header read through O_NOATIME, the write
# lease it may take and drop) changes none of the file's timestamps: a write
# that changes no byte (`: 1<>FILE`, an O_RDWR open and close) leaves atime,
# mtime and ctime as they were, for a text file and for an unused ELF library
# (the lease path), written by root and by the file's owner (nobody).
# Control: with atime older than mtime, as here, a read of the file does
# move its atime (relatime), so a header read without O_NOATIME would show.
# A writer that neither owns the file nor has CAP_FOWNER can't use O_NOATIME:
# there relatime may move the atime (a documented limit; shown as a note).
# And a library in use that such a write replaces keeps its atime and mtime
# (the end of this file).
. "$(dirname "$0")/lib.sh"
need_root "writes as nobody"
need_shim
need_victims
nobody_copies

times() { stat -c 'atime %x, mtime %y, ctime %z' -- "$1"; }
# aged FILE: atime two days ago, mtime one day ago (relatime updates atime at a read).
aged() { touch -a -d '2 days ago' -- "$1" && touch -m -d '1 day ago' -- "$1" && sleep 0.01; }

for f in text elf; do
  if [ $f = text ]; then seq 1 100 >"$T/$f"; else cp -- "$V1" "$T/$f"; fi
done
chown 65534:65534 "$T/text" "$T/elf"

aged "$T/text"
before=$(times "$T/text")
as_nobody cat -- "$T/text" >/dev/null
[ "$(times "$T/text")" != "$before" ] || skip "a read does not move atime here (noatime mount?): $before"
ok "control: a read of the file moves its atime ($(times "$T/text"))"

for f in text elf; do
  for who in root owner; do
    aged "$T/$f"
    before=$(times "$T/$f")
    log_reset
    if [ $who = root ]; then
      "$TG_CMD" --debug=decisions sh -c ": 1<>'$T/$f'" || fail "$f, $who: the write failed"
    else
      as_nobody "$TG_CMD_N" --debug=decisions sh -c ": 1<>'$T/$f'" || fail "$f, $who: the write failed"
    fi
    expect_log "decision file=$T/$f: pass"
    [ "$(times "$T/$f")" = "$before" ] ||
      fail "$f, written by $who: the timestamps changed: $before -> $(times "$T/$f") $(tg_log)"
    ok "$f, written by $who: examined, and every timestamp kept"
  done
done

# The limit: a writer that does not own the file.
chown 0:0 "$T/text"
chmod 666 "$T/text"
aged "$T/text"
before=$(times "$T/text")
as_nobody "$TG_CMD_N" sh -c ": 1<>'$T/text'" || fail "non-owner: the write failed"
after=$(times "$T/text")
if [ "$after" = "$before" ]; then
  note "a writer that does not own the file: timestamps kept too"
else
  note "a writer that does not own the file (no O_NOATIME): $before -> $after (documented)"
fi

# A library in use, written by a real writer that writes no byte: `touch -a`
# (an O_WRONLY|O_CREAT open, then futimens leaving the mtime out) and
# `touch -m` (leaving the atime out). truncguard gives the name a new inode
# (an open for writing could change any byte): it must have the old file's
# atime and mtime, as the old inode keeps them when nothing is written (it had
# the time of truncguard's copy: touch -a moved the mtime to now). A write
# then sets the mtime as on the old inode (e2e real_writers). Control: without
# truncguard the victim runs on and the times touch leaves out stay the same.
LIB=$T/libvictim.so
for how in a m; do
  if [ $how = a ]; then left='mtime %y'; else left='atime %x'; fi
  for tg in without under; do
    fresh_copy "$V1" "$LIB"
    aged "$LIB"
    start_victim "$LIB"
    before=$(stat -c "$left" -- "$LIB")
    old=$(inode "$LIB")
    log_reset
    if [ $tg = without ]; then
      touch -$how -d '2001-02-03 04:05:06' -- "$LIB" || fail "control: touch -$how failed"
    else
      "$TG_CMD" touch -$how -d '2001-02-03 04:05:06' -- "$LIB" || fail "touch -$how under truncguard failed"
    fi
    stop_victim
    expect_survived "touch -$how $tg truncguard"
    after=$(stat -c "$left" -- "$LIB")
    [ "$after" = "$before" ] ||
      fail "touch -$how $tg truncguard over a library in use: $before became $after"
    if [ $tg = under ]; then
      [ "$(inode "$LIB")" != "$old" ] || fail "touch -$how: the name kept inode $old: nothing was replaced, nothing shown"
      expect_log "replaced file=$LIB [ino $old -> " "mapped executable by pid $VICTIM_PID ("
    fi
    ok "touch -$how $tg truncguard over a library in use: $after kept"
  done
done

# ... but its birth time is the new inode's, the time of the replacement
# (docs/guarantees.md, "What is not guaranteed": no call sets it, nor the
# ctime, which any change of the file moves anyway). Control: touch -a in
# place without truncguard leaves the birth time before the write.
if [ "$(stat -c %W -- "$LIB")" != 0 ]; then
  for tg in without under; do
    fresh_copy "$V1" "$LIB"
    sleep 1.1   # (the birth time is in whole seconds: the copy's second is then over)
    t0=$(date +%s)
    if [ $tg = under ]; then
      start_victim "$LIB"
      "$TG_CMD" touch -a -- "$LIB" || fail "touch -a under truncguard failed"
      stop_victim
      expect_survived "touch -a under truncguard, birth time"
    else
      touch -a -- "$LIB" || fail "control: touch -a failed"
    fi
    born=$(stat -c %W -- "$LIB")
    if [ $tg = under ]; then
      [ "$born" -ge "$t0" ] || fail "the new inode's birth time $(stat -c %w -- "$LIB") is before the write ($t0)"
    else
      [ "$born" -lt "$t0" ] || fail "control: touch -a in place moved the birth time to $(stat -c %w -- "$LIB")"
    fi
  done
  ok "the replaced library's birth time is the replacement's ($(stat -c %w -- "$LIB")); in place, the copy's"
else
  note "no birth time on $(stat -f -c %T "$T"): not checked"
fi
