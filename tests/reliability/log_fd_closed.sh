#!/bin/bash
# A program that closes every fd it did not open (daemons do: close_range,
# closefrom, a loop of close) closes truncguard's log file too, and its next
# open gets that number. The shim's next log line must not land in the
# program's file: it notices the fd is no longer its log and opens the log
# again. The close is the raw system call (out of every wrapper's reach),
# closefrom or a loop of close; the program's file is then moved to the
# log's old number (the log is kept at a high one, which a program that
# opens many files gets all the same).
. "$(dirname "$0")/rlib.sh"
need_shim
echo "old text" > "$T/notes.txt"
for how in close_range closefrom loop; do
  rm -f "$T/data"
  log_reset
  TRUNCGUARD_DEBUG=decisions "$TG_CMD" "$TG_RTOOL" log-fd-reuse "$T/notes.txt" "$T/data" $how >"$T/out" ||
    fail "$how: the program failed: $(cat "$T/out")"
  read -r fd log < <(sed -n 's/^fd=\([0-9]*\) log=\([0-9]*\)$/\1 \2/p' "$T/out")
  [ -n "$fd" ] && [ "$fd" = "$log" ] || fail "$how: the program's file is not at the log's old number: $(cat "$T/out")"
  [ "$(cat "$T/data")" = "data" ] ||
    fail "$how: the program's file (fd $fd) holds more than it wrote: $(head -c 300 "$T/data" | cat -v)"
  ok "$how: the program's file (fd $fd, the log's old number) holds only what the program wrote"
  [ "$(log_lines "decision file=$T/notes.txt: pass (" | wc -l)" -eq 2 ] ||
    fail "$how: expected two decisions about notes.txt in the log: $(tg_log)"
  ok "$how: both decisions are in the log file: the second after the log was opened again"
done
