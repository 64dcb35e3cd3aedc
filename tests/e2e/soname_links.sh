#!/bin/bash
# The soname layout of a real deploy: lib/libfoo.so -> libfoo.so.1 ->
# the versioned file, which sits in another directory (relative: ../real/,
# and absolute). A deploy writes through the link chain (cp to either link,
# a shell redirection): the victim that loaded the library by the link
# lives on, both links stay as they were, the versioned file gets the new
# inode in its own directory (nothing lands in the links' directory), and
# the log's symlink note names that file by a path that reaches it (it gave
# "its target libvictim.so.1.2.3", a name that is no file next to the link).
# Where the target's directory may not be written while the links' may (a
# writer running as nobody), the write fails with ETXTBSY and a symlink note
# names the target and says the new file is made in its directory (the
# "cannot create a temporary file in the directory" line alone pointed at
# the link's directory, which the writer may write). Its file removed, the
# chain dangling, `truncguard who` by a link finds the victim still running
# that file (it looked for a deleted file named as the link).
. "$(dirname "$0")/lib.sh"
need_victims

must mkdir "$T/lib" "$T/real"
REAL=$T/real/libvictim.so.1.2.3

# layout ABS: the chain, its last link relative (../real/...) or absolute.
layout() {
  rm -f -- "$T/lib/libfoo.so" "$T/lib/libfoo.so.1"
  if [ "$1" = abs ]; then must ln -s "$REAL" "$T/lib/libfoo.so.1"
  else must ln -s ../real/libvictim.so.1.2.3 "$T/lib/libfoo.so.1"; fi
  must ln -s libfoo.so.1 "$T/lib/libfoo.so"
  LINK1_TEXT=$(readlink "$T/lib/libfoo.so.1")
}

# The links as they were, nothing else in their directory, the versioned
# file with v2 in its own.
expect_layout_kept() {
  local what=$1 f
  [ -L "$T/lib/libfoo.so" ] && [ "$(readlink "$T/lib/libfoo.so")" = libfoo.so.1 ] ||
    fail "$what: lib/libfoo.so is no longer the symlink to libfoo.so.1"
  [ -L "$T/lib/libfoo.so.1" ] && [ "$(readlink "$T/lib/libfoo.so.1")" = "$LINK1_TEXT" ] ||
    fail "$what: lib/libfoo.so.1 is no longer the symlink to $LINK1_TEXT"
  f=$(ls -A "$T/lib" | tr '\n' ' ')
  [ "$f" = "libfoo.so libfoo.so.1 " ] || fail "$what: the links' directory holds: $f"
  f=$(ls -A "$T/real" | tr '\n' ' ')
  [ "$f" = "libvictim.so.1.2.3 " ] || fail "$what: the target's directory holds: $f"
  [ -f "$REAL" ] && [ ! -L "$REAL" ] || fail "$what: $REAL is not a regular file"
  ok "$what: the links are kept, nothing new in either directory"
}

# The note names the versioned file by its absolute path.
expect_symlink_note() {
  expect_log "note file=$1 is a symlink: it was kept, and its target $REAL$2"
  ok "the log's symlink note names the target $REAL"
}

LIB=$REAL
LIB_IN_LOG=$T/lib/libfoo.so
for how in rel abs; do
  layout "$how"
  VICTIM_LIB=$T/lib/libfoo.so.1   # loaded by its soname link
  copy_v2() { "$@" cp "$V2" "$T/lib/libfoo.so"; }
  prove_protection copy_v2
  expect_layout_kept "cp to the chain's first link ($how)"
  expect_symlink_note "$T/lib/libfoo.so" " was replaced"

  VICTIM_LIB=$T/lib/libfoo.so
  LIB_IN_LOG=$T/lib/libfoo.so.1
  redirect_v2() { "$@" bash -c 'cat -- "$1" > "$2"' bash "$V2" "$T/lib/libfoo.so.1"; }
  prove_protection redirect_v2
  expect_layout_kept "a shell redirection to the soname link ($how)"
  expect_symlink_note "$T/lib/libfoo.so.1" " was replaced"
  LIB_IN_LOG=$T/lib/libfoo.so
done

# Dry run through the chain: nothing changes, and the note says which file
# would be replaced (it said nothing of the link: the line named only it).
# In atomic mode too: its note was written once the directory's fd, which
# names the target's directory, was closed (the new file pending in the
# directory's own fd), and gave the bare name again.
layout rel
fresh_copy "$V1" "$REAL"
start_victim "$T/lib/libfoo.so.1"
log_reset
TRUNCGUARD_MODE=atomic must "$TG_CMD" cp "$V2" "$T/lib/libfoo.so"
stop_victim
expect_survived "atomic mode, cp to the chain's first link"
expect_same_content "$REAL" "$V2"
expect_layout_kept "atomic mode, cp to the chain's first link"
expect_log "published file=$T/lib/libfoo.so [ino "
expect_symlink_note "$T/lib/libfoo.so" " was replaced"

layout abs
fresh_copy "$V1" "$REAL"
start_victim "$T/lib/libfoo.so.1"
old=$(inode "$REAL")
log_reset
must "$TG_CMD" --mode dry-run cp "$V2" "$T/lib/libfoo.so"
stop_victim
expect_log "would replace file=$T/lib/libfoo.so [ino $old] (mode dry-run)"
expect_log "note file=$T/lib/libfoo.so is a symlink: it would be kept, and its target $REAL replaced"
# (the line right after the `would replace` line: one writer, one log file)
tg_log | grep -A1 -F "would replace file=$T/lib/libfoo.so [ino $old]" | sed -n 2p |
  grep -qF "note file=$T/lib/libfoo.so is a symlink:" ||
  fail "dry run through the chain: the symlink note does not follow the would-replace line: $(tg_log)"
expect_layout_kept "dry run through the chain"
ok "dry run through the chain: the note names the file that would be replaced"

# The target's directory so deep that its path leaves no room for the name
# in the shim's buffer: the note names the file by its name alone (it gave
# the directory's path cut short, the name after it: a path to nothing).
deep=$T/deep
for _ in $(seq 18); do deep=$deep/$(printf 'd%.0s' $(seq 220)); done
must mkdir -p "$deep"
must cp "$V1" "$deep/libvictim.so.1.2.3"
rm -f -- "$T/lib/libfoo.so.1"
must ln -s "$deep/libvictim.so.1.2.3" "$T/lib/libfoo.so.1"
log_reset
must "$TG_CMD" --scope elf cp "$V2" "$T/lib/libfoo.so.1"
expect_same_content "$deep/libvictim.so.1.2.3" "$V2"
expect_log "note file=$T/lib/libfoo.so.1 is a symlink: it was kept, and its target libvictim.so.1.2.3 was replaced"
log_reset
TRUNCGUARD_LOG_FORMAT=json must "$TG_CMD" --scope elf cp "$V2" "$T/lib/libfoo.so.1"
expect_note_key symlink
must rm -rf -- "$T/deep"
ok "a target's path too long for the note: named by its name alone"

# The versioned file removed while the victim runs it, the chain left
# dangling: `truncguard who` by either link finds the victim, as by the
# file's own name (it looked for a deleted file named as the link, which no
# mapping is: "no process maps it", exit 3).
layout rel
fresh_copy "$V1" "$REAL"
start_victim "$T/lib/libfoo.so.1"
must rm -- "$REAL"
for name in "$T/real/libvictim.so.1.2.3" lib/libfoo.so lib/libfoo.so.1; do
  out=$("$TG_CMD" who "$name" 2>/dev/null)
  st=$?
  [ "$st" -eq 0 ] || fail "who $name, the chain dangling: exit $st, expected 0: $out"
  grep -qF -- "$REAL (no such file now" <<<"$out" || fail "who $name names another file: $out"
  grep -qE "^ *$VICTIM_PID +" <<<"$out" || fail "who $name does not list the victim (pid $VICTIM_PID): $out"
  json=$("$TG_CMD" who --json "$name" 2>/dev/null)
  grep -qF "\"path\":\"$REAL\"" <<<"$json" || fail "who --json $name: $json"
done
stop_victim
ok "who by a dangling link (and a chain of them) finds the victim running the removed file it reached"

# The links' directory writable, the target's not: as nobody.
[ "$(id -u)" -eq 0 ] || { ok "(the unwritable target's directory needs root: not run)"; exit 0; }
command -v setpriv >/dev/null && as_nobody true || { ok "(cannot run as nobody: the rest not run)"; exit 0; }
nobody_copies
need_shim
layout rel
must chown 65534:65534 "$T/lib"
fresh_copy "$V1" "$REAL"
must chown 65534:65534 "$REAL"   # nobody may write the file, not its directory
start_victim "$T/lib/libfoo.so.1"
log_reset
as_nobody "$TG_CMD_N" cp "$V2" "$T/lib/libfoo.so" 2>"$T/cp.err" && fail "nobody's cp through the links succeeded"
grep -q "Text file busy" "$T/cp.err" || fail "nobody's cp failed otherwise: $(cat "$T/cp.err")"
stop_victim
expect_survived "nobody's cp, the target's directory not writable"
expect_same_content "$REAL" "$V1"
expect_layout_kept "nobody's refused cp"
expect_log "cannot protect file=$T/lib/libfoo.so: cannot create a temporary file in the directory: Permission denied"
expect_symlink_note "$T/lib/libfoo.so" ", in whose directory the new file is made, was not replaced"
tg_log | grep -A1 -F "cannot protect file=$T/lib/libfoo.so: cannot create a temporary file" | sed -n 2p |
  grep -qF "note file=$T/lib/libfoo.so is a symlink:" ||
  fail "nobody's refused cp: the symlink note does not follow the cannot-protect line: $(tg_log)"
ok "the symlink note follows the cannot-protect line"
