#!/bin/bash
# Run with stdin closed (`meson test <&-`, a CI runner's), a test's programs
# found fd 0 free: the next open took it, and e2e invisible failed
# ("emfile1 truncate text: ret=-1 errno=26": passmatrix's "one fd free"
# had none, and with no fd the documented answer is ETXTBSY). lib.sh now
# opens /dev/null on a closed fd 0, 1 or 2. Here: what a program started by
# a test sourcing lib.sh with fd 0 closed finds there.
. "$(dirname "$0")/../e2e/lib.sh"
got=$(bash -c '. "$1" && readlink /proc/self/fd/0' with_stdin_closed "$_tg_here/lib.sh" <&- 2>&1) ||
  fail "a program started by a test with stdin closed finds fd 0 closed: $got"
[ "$got" = /dev/null ] || fail "a test with stdin closed: fd 0 is $got, not /dev/null"
# Control: an open stdin is left as it is.
got=$(bash -c '. "$1" && readlink /proc/self/fd/0' with_stdin "$_tg_here/lib.sh" <"$_tg_here/lib.sh") ||
  fail "a test with stdin open: no fd 0"
[ "$got" = "$_tg_here/lib.sh" ] || fail "a test with stdin open: fd 0 became $got"
ok "a test with stdin closed gives its programs /dev/null as fd 0; an open stdin is kept"
