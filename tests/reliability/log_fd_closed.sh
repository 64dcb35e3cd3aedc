#!/bin/bash
# A program that closes every fd it did not open (daemons do: close_range,
# closefrom, a loop of close) closes truncguard's log file too, and its next
# open gets that number. The shim's next log line must not land in the
# program's file: it notices the fd is no longer its log and opens the log
# again. The close is the raw system call, out of every wrapper's reach.
. "$(dirname "$0")/rlib.sh"
need_shim
echo "old text" > "$T/notes.txt"
log_reset
TRUNCGUARD_DEBUG=decisions "$TG_CMD" "$TG_RTOOL" log-fd-reuse "$T/notes.txt" "$T/data" >"$T/out" ||
  fail "the program failed: $(cat "$T/out")"
fd=$(sed -n 's/^fd=//p' "$T/out")
[ "$(cat "$T/data")" = "data" ] ||
  fail "the program's file (fd $fd) holds more than it wrote: $(head -c 300 "$T/data" | cat -v)"
ok "the program's file (fd $fd, the log's old number) holds only what the program wrote"
[ "$(log_lines "decision file=$T/notes.txt: pass (" | wc -l)" -eq 2 ] ||
  fail "expected two decisions about notes.txt in the log: $(tg_log)"
ok "both decisions are in the log file: the second after the log was opened again"
