#!/bin/bash
# Atomic mode at the limits of its fixed tables, each driven to capacity
# and one past it by a real writer (python), over a library a victim runs:
#  - 40 files pending at once in one process (the table holds 32): the first
#    32 are published at their close, the rest replaced at open with a note,
#    every name ending with the whole new content;
# Bug: a file whose hand-over to an exec'ed program did not fit was published
# at the exec without a word of why (its "published" line said only that the
# new program "does not take it over"), and one with more fds than the
# hand-over lists was handed over with some of them left out: the new
# program published it at the close of the listed ones while it still wrote
# through the others. Each now gets the note `atomic_fallback` saying so, and
# is published at the exec, its content arriving in place:
#  - five files with names of ~900 bytes, pending at an exec (the hand-over,
#    at most 8 KiB, holds four): the fifth's note says the hand-over has no
#    room left for it;
#  - one file open as 100 fds, none close-on-exec: the note says it has too
#    many fds to list; the victim alive, v2 at the name.
# Bug: past the 128 fds on pending files that the table follows, a dup let
# go of the fd it copied and followed neither: the file was published at the
# close of the fds still followed, logged "the writer closed it", while the
# writer still held two fds on it and wrote on. Now the dup that finds no
# room publishes the file there, with a note saying so:
#  - one file open as 131 fds (130 dups), half written, all but the last
#    closed, the rest written through that one: the note and a "published"
#    line naming the dup, v2 at the name, the victim alive.
# Each control without truncguard kills the victim.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
export V2

# ---- 40 files pending at once: the victim runs the 40th.
must mkdir "$T/many"
for i in $(seq 40); do fresh_copy "$V1" "$T/many/lib$i.so"; done
many() {
  "$@" python3 - "$T/many" <<'PY'
import os, sys
d = sys.argv[1]
new = open(os.environ["V2"], "rb").read()
fds = [os.open(f"{d}/lib{i}.so", os.O_WRONLY | os.O_TRUNC) for i in range(1, 41)]
for fd in fds:
    os.write(fd, new)
for fd in fds:
    os.close(fd)
PY
}
start_victim "$T/many/lib40.so"
many env || fail "control: the writer of 40 files failed"
stop_victim
expect_killed "control: 40 files written without truncguard"
for i in $(seq 40); do fresh_copy "$V1" "$T/many/lib$i.so"; done
start_victim "$T/many/lib40.so"
log_reset
many "$TG_CMD" -m atomic --scope=elf || fail "the writer of 40 files under truncguard -m atomic failed: $(tg_log)"
stop_victim
expect_survived "40 files pending at once"
for i in $(seq 40); do cmp -s "$T/many/lib$i.so" "$V2" || fail "lib$i.so does not hold v2"; done
[ "$(log_lines "published file=" | wc -l)" = 32 ] || fail "not 32 files published at close: $(tg_log)"
for i in $(seq 33 40); do
  expect_log "note file=$T/many/lib$i.so too many files pending publication in this process; replaced at open instead"
done
ok "40 files pending at once: 32 published at close, 8 replaced at open with a note, the victim alive"
# The same notes in the JSON log: their key is atomic_fallback (truncguard(7)).
for i in $(seq 40); do fresh_copy "$V1" "$T/many/lib$i.so"; done
log_reset
many "$TG_CMD" --json -m atomic --scope=elf || fail "the writer of 40 files under truncguard --json failed: $(tg_log)"
[ "$(log_lines '"event":"note"' '"note":"atomic_fallback"' '"message":"too many files pending publication' | wc -l)" = 8 ] ||
  fail "not 8 JSON notes atomic_fallback: $(tg_log)"
ok "40 files pending at once, JSON log: 8 notes with the key atomic_fallback"

# ---- An exec hand-over with no room left: five files with long names.
long=$T/long
for _ in 1 2 3 4; do long=$long/$(printf 'd%.0s' $(seq 200)); done
must mkdir -p "$long"
for i in 1 2 3 4 5; do fresh_copy "$V1" "$long/lib$i.so"; done
handover() {
  "$@" python3 - "$long" <<'PY'
import os, sys
d = sys.argv[1]
fds = [os.open(f"{d}/lib{i}.so", os.O_WRONLY | os.O_TRUNC) for i in range(1, 6)]
for fd in fds:
    os.set_inheritable(fd, True)
script = 'for fd in "$@"; do cat "$V2" >&"$fd"; done; for fd in "$@"; do eval "exec $fd>&-"; done'
os.execvp("bash", ["bash", "-c", script, "bash"] + [str(fd) for fd in fds])
PY
}
start_victim "$long/lib5.so"
handover env || fail "control: the exec'ing writer failed"
stop_victim
expect_killed "control: the exec'ing writer without truncguard"
for i in 1 2 3 4 5; do fresh_copy "$V1" "$long/lib$i.so"; done
start_victim "$long/lib5.so"
log_reset
handover "$TG_CMD" -m atomic --scope=elf || fail "the exec'ing writer under truncguard -m atomic failed: $(tg_log)"
stop_victim
expect_survived "five long names pending at an exec"
for i in 1 2 3 4 5; do cmp -s "$long/lib$i.so" "$V2" || fail "lib$i.so does not hold v2"; done
expect_log "note file=$long/lib5.so is published at exec" "has no room left for this file"
for i in 1 2 3 4; do expect_log "published file=$long/lib$i.so" "the writer closed it"; done
ok "an exec hand-over with no room left: the file that did not fit is published at the exec with a note, the victim alive"

# ---- One file open as 100 fds at an exec.
LIB=$T/lib.so
dups() {  # dups [WRAPPER...]: the file open as ${NFDS:-100} fds at the exec
  "$@" python3 - "$LIB" "${NFDS:-100}" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
fds = [fd] + [os.dup(fd) for _ in range(int(sys.argv[2]) - 1)]
for f in fds:
    os.set_inheritable(f, True)
script = 'cat "$V2" >&"$1"; for fd in "$@"; do eval "exec $fd>&-"; done'
os.execvp("bash", ["bash", "-c", script, "bash"] + [str(f) for f in fds])
PY
}
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
dups env || fail "control: the writer with 100 fds failed"
stop_victim
expect_killed "control: the writer with 100 fds without truncguard"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
dups "$TG_CMD" -m atomic || fail "the writer with 100 fds under truncguard -m atomic failed: $(tg_log)"
stop_victim
expect_survived "a file open as 100 fds at an exec"
expect_same_content "$LIB" "$V2"
expect_log "note file=$LIB is published at exec" "too many fds open for the hand-over to list them all"
ok "a file open as more fds than the hand-over lists: published at the exec with a note, the victim alive"
# The list holds the fd numbers that fit in 255 characters: 80 fds of
# two-digit numbers (3 to 82 here) fit (truncguard(7): "about 80 fds of one
# file with two-digit numbers"): handed over, no note, published once.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
NFDS=80 dups "$TG_CMD" -m atomic || fail "the writer with 80 fds under truncguard -m atomic failed: $(tg_log)"
stop_victim
expect_survived "a file open as 80 fds at an exec"
expect_same_content "$LIB" "$V2"
expect_no_log "is published at exec"
[ "$(log_lines "published file=$LIB" | grep -c .)" -eq 1 ] || fail "80 fds: not published once: $(tg_log)"
ok "a file open as 80 fds (two-digit numbers) at an exec: handed over whole, published once"

# ---- One file dup'ed past the 128 fds the table follows.
dup_past() {
  "$@" python3 - "$LIB" <<'PY'
import os, sys
new = open(os.environ["V2"], "rb").read()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.write(fd, new[:4096])
fds = [fd] + [os.dup(fd) for _ in range(130)]
for f in fds[:-1]:
    os.close(f)
os.write(fds[-1], new[4096:])
os.close(fds[-1])
PY
}
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
dup_past env || fail "control: the writer with 131 fds failed"
stop_victim
expect_killed "control: the writer with 131 fds without truncguard"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
dup_past "$TG_CMD" -m atomic || fail "the writer with 131 fds under truncguard -m atomic failed: $(tg_log)"
stop_victim
expect_survived "a file dup'ed past the table"
expect_same_content "$LIB" "$V2"
expect_log "note file=$LIB is published at a dup of its fd, before the writer is done with it" "at most 128 fds"
expect_log "published file=$LIB" "the writer duplicates an fd on it, and truncguard has no room to follow the copy"
expect_no_log "the writer closed it"
ok "a file dup'ed past the 128 fds followed: published at that dup with a note, the victim alive"
