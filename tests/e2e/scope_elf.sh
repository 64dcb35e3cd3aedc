#!/bin/bash
# TRUNCGUARD_SCOPE=elf replaces every ELF file opened with O_TRUNC without
# asking who maps it (for writers that cannot see other processes), but it
# still leaves other files alone.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim

LIB=$T/libunmapped.so

# Control: without truncguard, an fd opened before cp sees the new content
# (same inode): the fd check below can tell replaced from truncated.
fresh_copy "$V1" "$LIB"
exec 3<"$LIB"
cp "$V2" "$LIB" || fail "control: cp failed"
expect_same_content /proc/$$/fd/3 "$V2" "control: an fd opened before a plain cp"
exec 3<&-

# An ELF library nobody maps is replaced under scope=elf.
fresh_copy "$V1" "$LIB"
exec 3<"$LIB"
old=$(inode "$LIB")
log_reset
TRUNCGUARD_SCOPE=elf "$TG_CMD" cp "$V2" "$LIB" || fail "cp under scope=elf failed"
expect_same_content "$LIB" "$V2"
expect_same_content /proc/$$/fd/3 "$V1" "an fd opened before the replacement (old inode)"
new=$(inode "$LIB")
expect_log "replaced file=$LIB [ino $old -> $new] (mode replace); mapped executable by nobody checked: scope elf, and it is an ELF shared object"
exec 3<&-
ok "scope=elf replaces an unmapped ELF library"

# "without looking" (truncguard(7)): no write lease asked for, no /proc walk,
# even with a victim mapping the file. Control: scope system does both.
if command -v strace >/dev/null; then
  for scope in system elf; do
    fresh_copy "$V1" "$LIB"
    start_victim "$LIB"
    # (LeakSanitizer, which an ASan build of the shim brings, can't run under ptrace.)
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 TRUNCGUARD_SCOPE=$scope \
      strace -f -qq -e trace=openat,fcntl,getdents64 -o "$T/strace.$scope" \
      env LD_PRELOAD="$TG_SHIM" cp "$V2" "$LIB" 2>/dev/null || fail "cp under strace, scope=$scope, failed"
    stop_victim
    expect_survived "cp under strace, scope=$scope"
    looks=$(grep -c 'F_SETLEASE\|getdents64\|"/proc/[0-9]*/maps"' "$T/strace.$scope")
    case $scope in
      system) [ "$looks" -gt 0 ] || fail "control: scope system took no lease and read no /proc: $(head -c 2000 "$T/strace.system")" ;;
      elf) [ "$looks" -eq 0 ] || fail "scope=elf looked: $(grep 'F_SETLEASE\|getdents64\|/proc/[0-9]*/maps' "$T/strace.elf" | head -5)" ;;
    esac
  done
  ok "scope=elf replaces without looking: no lease, no /proc walk (scope system: both)"
else
  note "SKIP scope=elf without looking: strace is not installed"
fi

# The line says what kind of ELF file it is (README, "The log"): a program
# linked at a fixed address (ET_EXEC, not PIE) is "an ELF executable". A
# copy of the victim program with its e_type made ET_EXEC (2): only written.
EXE=$T/exec_file
must cp "$TG_VICTIM" "$EXE"
printf '\002' | dd of="$EXE" bs=1 seek=16 conv=notrunc status=none || fail "setup: cannot set e_type"
[ "$(od -An -tu2 -j16 -N2 -- "$EXE" | tr -d ' ')" = 2 ] || fail "setup: $EXE is not ET_EXEC"
old=$(inode "$EXE")
log_reset
TRUNCGUARD_SCOPE=elf "$TG_CMD" cp "$TG_VICTIM" "$EXE" || fail "cp over an ET_EXEC file under scope=elf failed"
new=$(inode "$EXE")
[ "$new" != "$old" ] || fail "scope=elf: an ET_EXEC file kept inode $old"
expect_log "replaced file=$EXE [ino $old -> $new] (mode replace); mapped executable by nobody checked: scope elf, and it is an ELF executable"
ok "scope=elf replaces an ET_EXEC file: \"it is an ELF executable\""

# kept_in_place FILE NEW WHAT: under scope=elf, cp NEW over FILE writes
# FILE's own inode: an fd opened before sees the new content.
kept_in_place() {
  exec 3<"$1"
  log_reset
  TRUNCGUARD_SCOPE=elf "$TG_CMD" cp "$2" "$1" || fail "cp of $3 under scope=elf failed"
  expect_same_content /proc/$$/fd/3 "$2" "an fd opened before cp of $3"
  expect_no_log "replaced file="
  exec 3<&-
  ok "scope=elf leaves $3's inode alone"
}

# A text file is truncated in place even under scope=elf.
TXT=$T/notes.txt
echo "old text" >"$TXT"
echo "new text" >"$T/new.txt"
kept_in_place "$TXT" "$T/new.txt" "a text file"

# An ELF object that is never loaded (ET_REL: a compiler's .o) is left alone
# under scope=elf too: its fd sees the new content (same inode).
OBJ=$(find "$TG_BUILD" -name '*.o' -size +1k -print -quit)
[ -n "$OBJ" ] || fail "setup: no object file (.o) in $TG_BUILD"
[ "$(od -An -tu2 -j16 -N2 -- "$OBJ" | tr -d ' ')" = 1 ] || fail "setup: $OBJ is not ET_REL"
must cp "$OBJ" "$T/unit.o"
must cp "$OBJ" "$T/unit.o.new"
echo "appended" >>"$T/unit.o.new"
kept_in_place "$T/unit.o" "$T/unit.o.new" "an ET_REL object"
