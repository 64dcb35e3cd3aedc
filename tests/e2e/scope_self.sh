#!/bin/bash
# TRUNCGUARD_SCOPE=self protects only what the writing process itself has
# mapped (a plugin host rewriting its own plugin).  It is documented not to
# look at other processes: a victim elsewhere is not protected.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim

LIB=$T/libvictim.so

# Another process maps the library: scope=self does not protect it.
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
log_reset
TRUNCGUARD_SCOPE=self "$TG_CMD" cp "$V2" "$LIB" || fail "cp under scope=self failed"
stop_victim
expect_killed "scope=self, a library mapped by another process"
expect_no_log "replaced file="

# The writer has the library mapped itself.
# Control: without truncguard, selfwriter kills itself.
fresh_copy "$V1" "$LIB"
"$TG_SELFWRITER" "$LIB" "$V2" >"$T/selfwriter.control.out" 2>&1
st=$?
[ "$st" -gt 128 ] ||
  fail "control: selfwriter without truncguard $(describe_status $st), expected death by a signal"
ok "control: selfwriter without truncguard was $(describe_status $st)"

for scope in self system; do
  fresh_copy "$V1" "$LIB"
  old=$(inode "$LIB")
  log_reset
  TRUNCGUARD_SCOPE=$scope "$TG_CMD" "$TG_SELFWRITER" "$LIB" "$V2" >"$T/selfwriter.$scope.out" 2>&1
  st=$?
  [ "$st" -eq 0 ] ||
    fail "selfwriter under scope=$scope $(describe_status $st), expected exit 0: $(cat "$T/selfwriter.$scope.out")"
  ok "selfwriter under scope=$scope survived its own write"
  expect_version "$LIB" 2
  new=$(inode "$LIB")
  [ "$new" != "$old" ] || fail "scope=$scope: the name kept inode $old"
  expect_log "replaced file=$LIB [ino $old -> $new] (mode replace); mapped executable by "
  if [ "$scope" = self ]; then
    expect_log "replaced file=$LIB [ino $old -> $new] (mode replace); mapped executable by this process"
  fi
  # truncguard(7): WHO says "this process (pid N)", N the writer's own pid
  # (the one the line starts with).
  line=$(log_lines "replaced file=$LIB " "mapped executable by this process (pid ") ||
    fail "scope=$scope: no \"this process (pid N)\" in the replaced line: $(tg_log)"
  pid=$(sed 's/^ *\([0-9]*\):.*/\1/' <<<"$line")
  grep -qF "mapped executable by this process (pid $pid)" <<<"$line" ||
    fail "scope=$scope: \"this process (pid N)\" does not name the writer's pid $pid: $line"
done
ok "the replaced line names the writer as \"this process (pid N)\", N its own pid"
