#!/bin/bash
# A relative TRUNCGUARD_LOG names FILE.PID in the directory the process
# started in, as LD_DEBUG_OUTPUT does (ld.so opens it at start-up). The shim
# opens it at the first line and looks the name up again at each line (for
# logrotate): a program that changed directory in between (a deploy script's
# cd, make -C, a daemon's chdir("/")) got a second FILE.PID made in its new
# directory, its lines split between the two. Here a python writer logs a
# decision, changes directory, then copies v2 over a library a victim runs:
# every line, the replaced one too, is in the start directory's file, and
# nothing is made in the other one. A child started after the chdir keeps
# LD_DEBUG_OUTPUT's rule: its file is in its own starting directory.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
LIB=$T/libvictim.so
mkdir -p "$T/start" "$T/elsewhere"
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
(cd "$T/start" && LD_PRELOAD=$TG_SHIM TRUNCGUARD_LOG=log TRUNCGUARD_DEBUG=rewrites,decisions /usr/bin/python3 -c '
import os, shutil, subprocess, sys
open(sys.argv[1] + "/first", "w").close()
os.chdir(sys.argv[2])
shutil.copyfile(sys.argv[3], sys.argv[4])
subprocess.run(["sh", "-c", ": >\"$0\"", sys.argv[1] + "/child"], check=True)
print(os.getpid())' "$T" "$T/elsewhere" "$V2" "$LIB" >"$T/pid" 2>"$T/err") || fail "the writer failed: $(cat -- "$T/err")"
stop_victim
expect_survived "python's copy after a chdir"
pid=$(cat -- "$T/pid")
[ -f "$T/start/log.$pid" ] || fail "no log file in the start directory: $(ls -- "$T/start")"
grep -q "decision file=$T/first: " "$T/start/log.$pid" || fail "the first line is not in the start directory's file"
grep -q "replaced file=$LIB " "$T/start/log.$pid" ||
  fail "the replaced line, after the chdir, is not in the start directory's file: $(cat -- "$T"/elsewhere/log.* 2>/dev/null)"
[ ! -e "$T/elsewhere/log.$pid" ] || fail "a second log file of the same process was made in its new directory: $(cat -- "$T/elsewhere/log.$pid")"
ok "a relative TRUNCGUARD_LOG: one process's lines all in its start directory's file, none made where it moved to"
# The child, started in $T/elsewhere, resolves the name there, as with LD_DEBUG_OUTPUT.
grep -qs "decision file=$T/child: " "$T"/elsewhere/log.* || fail "the child's line is not in its own start directory: $(ls -- "$T/elsewhere" "$T/start")"
ok "a child started after the chdir: its file in its own start directory, as LD_DEBUG_OUTPUT's"

# Each process writes its own FILE.PID, a forked child too (truncguard(7),
# TRUNCGUARD_LOG): the parent logs first (its file open), then forks; the
# child's line goes into FILE.CHILDPID, none of it into the parent's file.
rm -f "$T"/start/log.*
(cd "$T/start" && LD_PRELOAD=$TG_SHIM TRUNCGUARD_LOG=log TRUNCGUARD_DEBUG=decisions /usr/bin/python3 -c '
import os, sys
open(sys.argv[1] + "/parent", "w").close()
pid = os.fork()
if pid == 0:
    open(sys.argv[1] + "/forked", "w").close()
    os._exit(0)
os.waitpid(pid, 0)
print(os.getpid(), pid)' "$T" >"$T/pids" 2>"$T/err") || fail "the forking writer failed: $(cat -- "$T/err")"
read -r ppid cpid <"$T/pids"
grep -q "decision file=$T/parent: " "$T/start/log.$ppid" || fail "the parent's line is not in log.$ppid: $(ls -- "$T/start")"
grep -q "decision file=$T/forked: " "$T/start/log.$cpid" ||
  fail "the forked child's line is not in its own log.$cpid: $(ls -- "$T/start"); the parent's file: $(cat -- "$T/start/log.$ppid")"
grep -q "file=$T/forked" "$T/start/log.$ppid" && fail "the forked child's line went into the parent's file log.$ppid"
ok "a forked child (no exec) writes its own FILE.PID, not its parent's"

# FILE.PID is opened O_APPEND (truncguard(7), as LD_DEBUG_OUTPUT): a file
# already at that name (an earlier process of the same pid) keeps its lines.
(cd "$T/start" && bash -c 'echo "an earlier line" >log.$$
  exec env LD_PRELOAD="$0" TRUNCGUARD_LOG=log TRUNCGUARD_DEBUG=decisions sh -c ": >\"\$0\"; echo \$\$" "$1/appended"' \
  "$TG_SHIM" "$T" >"$T/pid" 2>"$T/err") || fail "the writer failed: $(cat -- "$T/err")"
pid=$(cat -- "$T/pid")
[ "$(head -n1 "$T/start/log.$pid")" = "an earlier line" ] && grep -q "decision file=$T/appended: " "$T/start/log.$pid" ||
  fail "log.$pid: the earlier line not kept, or no new line after it: $(cat -- "$T/start/log.$pid")"
ok "a log file already at FILE.PID: the lines appended, the earlier content kept"

# The command makes a relative --log absolute (truncguard(1)), so one started
# after a cd logs where the command was run: here a child of a shell that
# changed directory, whose file goes in the command's directory, none in the
# directory it started in (the rule above, for the variable alone).
rm -f "$T"/start/cmdlog.* "$T"/elsewhere/cmdlog.*
(cd "$T/start" && "$TG_CMD" --log=cmdlog --debug=decisions sh -c 'cd "$0/elsewhere" && sh -c ": >\"\$0\"" "$0/via_command"' "$T" 2>"$T/err") ||
  fail "truncguard --log=cmdlog sh -c 'cd ...' failed: $(cat -- "$T/err")"
grep -qs "decision file=$T/via_command: " "$T"/start/cmdlog.* ||
  fail "truncguard --log=cmdlog: the line of a child started after the cd is not in the command's directory: $(ls -- "$T/start" "$T/elsewhere")"
ls "$T"/elsewhere/cmdlog.* >/dev/null 2>&1 && fail "truncguard --log=cmdlog: a log file was made where the child started: $(ls -- "$T/elsewhere")"
ok "truncguard --log with a relative name: made absolute, a child started after a cd logs in the command's directory"

# Too long once made absolute (a relative name of 3,000 bytes in a directory
# of over 1,100): the log goes to stderr with a warning, in the JSON format a
# warning object like the others, and the write is protected all the same.
long_lib_dir
rel=$(printf 'x/%.0s' $(seq 1500))log
fresh_copy "$V1" "$LIB"
start_victim "$LIB"
(cd "$LONG_DIR" && LD_PRELOAD=$TG_SHIM TRUNCGUARD_LOG=$rel TRUNCGUARD_LOG_FORMAT=json cp "$V2" "$LIB" 2>"$T/err") ||
  fail "cp with a log name too long once absolute failed: $(cat -- "$T/err")"
stop_victim
expect_survived "cp with a log name too long once absolute"
python3 - "$T/err" "$LIB" <<'PY' || fail "stderr is not JSON objects with the warning and the replaced one: $(cat -- "$T/err")"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]  # every line parses on its own
assert any(e["event"] == "warning" and e["message"] == "TRUNCGUARD_LOG is too long once made absolute; logging to stderr" for e in events), events
assert any(e["event"] == "replaced" and e["file"] == sys.argv[2] for e in events), events
PY
ok "a relative name too long once absolute: a JSON warning, the lines on stderr, the write protected"
