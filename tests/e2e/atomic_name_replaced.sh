#!/bin/bash
# Bug: in atomic mode the writer's file was renamed over the name at its close
# whatever the name held then. Another file put there during the write (a
# package manager's rename, another deploy, a second atomic writer of the same
# name that closed first) was silently replaced by it; without truncguard the
# writer's content went into the old inode, no longer at the name, and the
# newer file stayed. The publication now leaves a file put at the name since
# the writer's open, says so in the log, and the close succeeds as it would.
#  - control: without truncguard the writer truncates the library and kills
#    the victim, and the other deploy's file stays at the name;
#  - under truncguard -m atomic: a bash writer (fd 3, v2) pauses half way,
#    `mv` puts a copy of v1 at the name; at the writer's close that copy stays
#    (v2 was published over it), the victim alive;
#  - two atomic writers of the same name: the one that closes first (cp of v1)
#    stays, the slower one (v2) is not published over it.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
LIB=$T/lib.so

# writer [TRUNCGUARD ARGS...]: writes v2 through fd 3 in two halves, waiting
# for $T/go in between ($T/half says it got there).
writer() {
  rm -f "$T/half" "$T/go"
  "$@" bash -c '
    exec 3>"$1"
    head -c 4096 "$2" >&3
    touch "$3/half"
    for _ in $(seq 500); do [ -e "$3/go" ] && break; sleep 0.01; done
    tail -c +4097 "$2" >&3
    exec 3>&-' _ "$LIB" "$V2" "$T" &
  WRITER=$!
  for _ in $(seq 500); do [ -e "$T/half" ] && break; sleep 0.01; done
  [ -e "$T/half" ] || fail "the writer did not get half way"
}
# other_deploy: puts a new copy of v1 at the name by a rename (as dpkg does).
other_deploy() {
  cp "$V1" "$LIB.new" && mv "$LIB.new" "$LIB" || fail "the other deploy failed"
  OTHER=$(inode "$LIB")
}

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
writer env
other_deploy
touch "$T/go"; wait "$WRITER" || fail "control: the writer failed"
stop_victim
expect_killed "control: the writer without truncguard"
[ "$(inode "$LIB")" = "$OTHER" ] || fail "control: the other deploy's file is not at the name"
ok "control: without truncguard the victim dies and the other deploy's file stays at the name"

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
writer "$TG_CMD" -m atomic
other_deploy
touch "$T/go"; wait "$WRITER" || fail "the writer under truncguard -m atomic failed: $(tg_log)"
stop_victim
expect_survived "the writer under truncguard -m atomic"
[ "$(inode "$LIB")" = "$OTHER" ] || fail "the writer's file was published over the other deploy's (inode $(inode "$LIB"), not $OTHER)"
expect_same_content "$LIB" "$V1"
expect_log "cannot protect file=$LIB: another file was put at the name since the writer opened it" \
  "not published: the name keeps the newer file"
[ -z "$(find "$T" -maxdepth 1 -name '.lib.so.tg-*')" ] || fail "a temp file was left: $(ls -a "$T")"
ok "a file put at the name during an atomic write stays there, logged, the victim alive"

fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
writer "$TG_CMD" -m atomic
"$TG_CMD" -m atomic cp "$V1" "$LIB" || fail "the second atomic writer failed: $(tg_log)"
OTHER=$(inode "$LIB")
touch "$T/go"; wait "$WRITER" || fail "the slow atomic writer failed: $(tg_log)"
stop_victim
expect_survived "two atomic writers of the same name"
[ "$(inode "$LIB")" = "$OTHER" ] || fail "the slower writer's file was published over the first one's"
expect_same_content "$LIB" "$V1"
expect_log "cannot protect file=$LIB: another file was put at the name since the writer opened it" \
  "not published: the name keeps the newer file"
[ -z "$(find "$T" -maxdepth 1 -name '.lib.so.tg-*')" ] || fail "two atomic writers: a temp file was left: $(ls -a "$T")"
ok "two atomic writers of one name: the first to close stays, complete, the slower one's refusal logged"

# The refusal as a JSON event (truncguard(7), "THE JSON LOG"): the step, its
# errno (EEXIST), fallback none and the message of what happened instead.
fresh_copy "$V1" "$LIB"
log_reset
writer "$TG_CMD" --json -m atomic --scope=elf
other_deploy
touch "$T/go"; wait "$WRITER" || fail "the writer under truncguard --json -m atomic failed: $(tg_log)"
[ "$(inode "$LIB")" = "$OTHER" ] || fail "--json: the writer's file was published over the other deploy's"
log_lines '"event":"cannot_protect"' "\"file\":\"$LIB\"" '"step":"another file was put at the name since the writer opened it"' \
  '"errno":17' '"fallback":"none"' '"message":"not published: the name keeps the newer file"' >/dev/null ||
  fail "no cannot_protect event with fallback none and its message: $(tg_log)"
ok "the refusal in JSON: errno 17, fallback none, the message"
