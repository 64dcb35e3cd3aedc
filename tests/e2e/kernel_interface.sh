#!/bin/bash
# Bug: the guard read the header of every regular file of 52 bytes or more
# that a write would truncate or change, and sysfs says 4096 bytes for each
# attribute. So `echo 1 > /sys/...` under truncguard first opened the
# attribute for reading and read it, which runs the driver's show() (it may
# block, talk to the hardware, clear a counter). A write-only attribute
# (drivers_probe, bind, rescan, gpio export...) can't be opened for reading:
# the header counted as unreadable, hence as maybe ELF, the attribute as in
# use (scope elf, or where a process can't be inspected), and the write failed:
# "cannot create /sys/bus/platform/drivers_probe: Text file busy".
# Now a file on a kernel interface filesystem is never read by the guard.
#  - a write-only attribute: the redirection opens it (the write's own answer,
#    ENODEV for a device name that does not exist, is the same as without).
#  - a readable attribute, written back with its own value (`>`, and `1<>`,
#    an O_RDWR open looked at through its own fd): inotify shows no read
#    (ACCESS, CLOSE_NOWRITE) of it before the write. Control: the watch does
#    see a read of that attribute by cat.
. "$(dirname "$0")/lib.sh"
need_root "writes sysfs attributes"
need_shim
command -v inotifywait >/dev/null || skip "no inotifywait (Debian package inotify-tools; scripts/setup.sh installs it)"

probe=/sys/bus/platform/drivers_probe
[ -e "$probe" ] || skip "no $probe here"
# Opening it for writing, as the shell's > does, and writing a device name
# that does not exist: the driver core answers ENODEV, and nothing changes.
write_probe() { "$@" sh -c "exec 3>$probe || exit 3; echo tg-no-such-device >&3" 2>"$T/probe.err"; }

write_probe env
st=$?
[ "$st" -ne 3 ] || fail "control: without truncguard the open of $probe failed: $(cat "$T/probe.err")"
ok "control: without truncguard, $probe opens for writing (the write answers: exit $st)"
for scope in system elf; do
  log_reset
  write_probe "$TG_CMD" --scope=$scope --debug=decisions
  got=$?
  [ "$got" -eq "$st" ] ||
    fail "scope $scope: under truncguard the write to $probe exited $got instead of $st: $(cat "$T/probe.err") $(tg_log)"
  expect_log "decision file=$probe: pass (a kernel interface file (sysfs, procfs...): never code, and not read (reading runs the kernel's code)) [open64]"
  ok "scope $scope: the write-only attribute opens as without truncguard, and is not read"
done

attr=/sys/kernel/mm/transparent_hugepage/enabled
[ -w "$attr" ] && grep -q '\[' "$attr" || skip "no writable $attr here"
value=$(sed 's/.*\[\(.*\)\].*/\1/' "$attr")

# watch CMD...: the inotify events on $attr while CMD runs, on one line.
watch() {
  # Not -q: it silences "Watches established", and the wait below ran its
  # full 5 s every time instead of ending once the watch is in place.
  inotifywait -m --format '%e' "$attr" >"$T/events" 2>"$T/inotify.err" &
  local w=$!
  _tg_pids+=("$w")
  local i
  for i in $(seq 100); do grep -q 'Watches established' "$T/inotify.err" && break; sleep 0.05; done
  grep -q 'Watches established' "$T/inotify.err" || fail "inotifywait set up no watch: $(cat "$T/inotify.err")"
  "$@" >/dev/null
  sleep 0.3
  kill "$w"
  wait "$w" 2>/dev/null
  tr '\n' ' ' <"$T/events"
}

ev=$(watch cat "$attr")
case $ev in *ACCESS*CLOSE_NOWRITE*) ;; *) fail "control: the watch saw no read by cat: $ev" ;; esac
ok "control: inotify sees a read of $attr ($ev)"

# Other processes may read this attribute meanwhile (seen: several times a
# second while other test suites ran on the machine), and inotify does not
# say who read: only a read seen in each of five watches is the writer's own.
# `>` opens it O_WRONLY|O_TRUNC (looked at before the open), `1<>` O_RDWR
# (looked at through the fd the open gave).
for redirect in ">" "1<>"; do
  for try in 1 2 3 4 5; do
    log_reset
    ev=$(watch "$TG_CMD" --debug=decisions sh -c "echo $value $redirect $attr")
    [ "$(sed 's/.*\[\(.*\)\].*/\1/' "$attr")" = "$value" ] || fail "$attr changed: $(cat "$attr")"
    case $ev in
      *ACCESS* | *CLOSE_NOWRITE*) note "watch $try saw a read: $ev" ;;
      *) break ;;
    esac
  done
  case $ev in
    *ACCESS* | *CLOSE_NOWRITE*) fail "under truncguard, the write of $attr ($redirect) read it first: $ev $(tg_log)" ;;
    *OPEN*MODIFY*) ;;
    *) fail "the watch missed the write itself ($redirect): $ev" ;;
  esac
  expect_log "decision file=$attr: pass (a kernel interface file (sysfs, procfs...): never code, and not read (reading runs the kernel's code)) [open64]"
  ok "under truncguard, writing $attr ($redirect) did not read it first ($ev)"
done
