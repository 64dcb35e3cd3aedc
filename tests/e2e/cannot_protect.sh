#!/bin/bash
# Bug: the command ran programs the library can't be loaded into without a
# word (a static binary, a 32-bit one, a setuid program run by another user,
# a script whose interpreter is static): the deploy step ran unprotected in
# silence. It now says so once on stderr, naming the program, and still runs
# it (its exit status); a program it protects gets no such line. Each case
# first proves the writer really is unprotected: the victim dies under it.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim
: "${TG_STATIC_WRITER=$TG_BUILD/tests/writers/static_writer}"  # empty: not built
: "${TG_32BIT_WRITER=$TG_BUILD/tests/writers/32bit_writer}"
LIB=$T/libvictim.so
ERR=$T/cmd.err

# expect_warning WHAT TEXT: stderr has exactly one line of truncguard's, a
# warning that contains TEXT.
expect_warning() {
  local lines
  lines=$(grep -c '^truncguard: ' "$ERR")
  [ "$lines" -eq 1 ] || fail "$1: $lines lines of truncguard's on stderr, expected one warning: $(cat -- "$ERR")"
  grep -q '^truncguard: warning: ' "$ERR" && grep -qF -- "$2" "$ERR" ||
    fail "$1: no warning that says \"$2\": $(cat -- "$ERR")"
  ok "$1: $(grep '^truncguard: ' "$ERR")"
}

# unprotected_writer WHAT WRITER: WRITER copies $V2 over $LIB, which a
# victim runs, under the command: it runs (exit 0), the victim dies (the
# library is not in it: the warning is true), and the command said why.
unprotected_writer() {
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  "$TG_CMD" "$2" open "$LIB" "$V2" >/dev/null 2>"$ERR" || fail "$1 under truncguard failed: $(cat -- "$ERR")"
  stop_victim
  expect_killed "$1 under truncguard (it is not protected)"
}

# An executable FIFO (which exec refuses): the command's look at it must not
# block in its open.
mkfifo "$T/fifo" && chmod 755 "$T/fifo" || fail "mkfifo failed"
timeout 10 "$TG_CMD" "$T/fifo" 2>"$ERR"
st=$?
[ "$st" -eq 126 ] || fail "truncguard FIFO: exit $st ($( [ "$st" -eq 124 ] && echo "it blocked"))"
ok "an executable FIFO: exit 126 at once: $(head -n 1 "$ERR")"

# The control: a program the library goes into gets no line at all.
"$TG_CMD" true 2>"$ERR" || fail "truncguard true failed"
[ ! -s "$ERR" ] || fail "truncguard true wrote to stderr: $(cat -- "$ERR")"
ok "a dynamically linked program: no warning"

if [ -x "$TG_STATIC_WRITER" ]; then
  unprotected_writer "a static writer" "$TG_STATIC_WRITER"
  expect_warning "a static writer" "$TG_STATIC_WRITER is statically linked: ld.so never runs for it, so its own writes are not protected (the dynamically linked programs it starts are)"
  # Found through PATH, by its bare name; its own exit status (usage: 2).
  PATH=${TG_STATIC_WRITER%/*}:$PATH "$TG_CMD" static_writer 2>"$ERR" >/dev/null
  st=$?
  [ "$st" -eq 2 ] || fail "truncguard static_writer (no arguments) exited $st, not the writer's 2"
  expect_warning "a static writer found in PATH" "static_writer is statically linked"
  # (a copy: the kernel ends a #! line's interpreter at a space, and a
  # clone's path may have one)
  must cp "$TG_STATIC_WRITER" "$T/static_writer"
  printf '#!%s\n' "$T/static_writer" >"$T/script"
  chmod +x "$T/script"
  "$TG_CMD" "$T/script" 2>"$ERR" >/dev/null
  expect_warning "a script whose interpreter is static" "$T/script runs through $T/static_writer, which is statically linked"
  # ... but not the program a '#!/usr/bin/env NAME' line finds (docs/
  # guarantees.md, "What is not guaranteed"): no warning, the program runs.
  printf '#!/usr/bin/env static_writer\n' >"$T/env_script"
  chmod +x "$T/env_script"
  PATH=$T:$PATH "$TG_CMD" "$T/env_script" 2>"$ERR" >/dev/null
  st=$?
  [ "$st" -eq 2 ] && grep -q "^usage: writer" "$ERR" && ! grep -q '^truncguard: ' "$ERR" ||
    fail "a '#!/usr/bin/env static_writer' script: exit $st, expected the static writer's usage (2) and no warning: $(cat -- "$ERR")"
  ok "a '#!/usr/bin/env NAME' script whose NAME is static: not looked at (no warning), as documented"
  # One that can't be run at all: only the error that says why, no warning.
  must cp "$TG_STATIC_WRITER" "$T/not-executable"
  chmod 644 "$T/not-executable"
  "$TG_CMD" "$T/not-executable" 2>"$ERR"
  st=$?
  [ "$st" -eq 126 ] && ! grep -q '^truncguard: warning' "$ERR" && grep -q "^truncguard: cannot run" "$ERR" ||
    fail "a static file that is not executable: exit $st, $(cat -- "$ERR")"
  ok "a static file that is not executable: exit 126, the error alone"
else
  note "a static writer: skipped (not built: a sanitizer build, or no static libc)"
fi

# A program for another machine (true's e_machine made aarch64's): the
# kernel refuses it (ENOEXEC) and execvp hands it to /bin/sh, as a script;
# the command said first that the library can't go into it.
python3 - /bin/true "$T/other_machine" <<'PY' || fail "cannot make a program for another machine"
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
assert d[:4] == b"\x7fELF" and struct.unpack_from("<H", d, 18)[0] != 183, "not an ELF for this machine"
struct.pack_into("<H", d, 18, 183)  # EM_AARCH64
open(sys.argv[2], "wb").write(d)
PY
chmod 755 "$T/other_machine"
"$TG_CMD" "$T/other_machine" >/dev/null 2>"$ERR"
expect_warning "a program for another machine" "$T/other_machine is a program for another machine: the library can't be loaded into it, so its own writes are not protected"

if [ -x "$TG_32BIT_WRITER" ]; then
  unprotected_writer "a 32-bit writer" "$TG_32BIT_WRITER"
  expect_warning "a 32-bit writer" "$TG_32BIT_WRITER is a 32-bit program (ELFCLASS32): the library, built for this machine, can't be loaded into it (ld.so says \"wrong ELF class\"), so its own writes are not protected; the programs it starts for this machine are"
  # ... and glibc's own line still comes, as docs/guarantees.md says (the
  # command keeps LD_PRELOAD for the 64-bit programs it starts).
  grep -qF "from LD_PRELOAD cannot be preloaded (wrong ELF class: ELFCLASS64): ignored." "$ERR" ||
    fail "a 32-bit writer: no \"wrong ELF class\" line from ld.so: $(cat -- "$ERR")"
else
  note "a 32-bit writer: skipped (not built: a sanitizer build, or no gcc-multilib)"
fi

# setuid: ld.so runs it in secure mode for a user other than its owner, and
# ignores LD_PRELOAD; for its owner (root here) it does not, and no warning.
if [ "$(id -u)" -eq 0 ] && as_nobody true; then
  nobody_copies
  must cp /usr/bin/id "$T/bin/suid_id"
  chmod 4755 "$T/bin/suid_id"
  as_nobody "$TG_CMD_N" "$T/bin/suid_id" -u >"$T/id.out" 2>"$ERR" || fail "truncguard suid_id as nobody failed"
  [ "$(cat -- "$T/id.out")" = 0 ] || note "suid_id ran with euid $(cat -- "$T/id.out") (a nosuid mount?)"
  if [ "$(cat -- "$T/id.out")" = 0 ]; then
    expect_warning "a setuid program run by another user" "$T/bin/suid_id is setuid: ld.so ignores LD_PRELOAD for it and removes it from what it starts, so nothing it runs is protected"
    "$TG_CMD" "$T/bin/suid_id" -u >/dev/null 2>"$ERR" || fail "truncguard suid_id as root failed"
    [ ! -s "$ERR" ] || fail "a setuid-root program run by root (not secure mode) got a warning: $(cat -- "$ERR")"
    ok "the same program run by its owner: no warning"
  else
    [ ! -s "$ERR" ] || fail "a setuid bit without effect (nosuid) got a warning: $(cat -- "$ERR")"
  fi
else
  note "setuid: skipped (needs root and setpriv)"
fi

# setgid and file capabilities (truncguard(1): "a setuid, setgid or
# file-capability program that ld.so runs in secure mode"): copies of cat
# run by nobody, which read their own maps. ld.so's secure mode shows as
# no shim mapped in them; the command said so. Control: root's run of the
# file-capability copy is no secure mode (the shim mapped), no warning.
if [ "$(id -u)" -eq 0 ] && as_nobody true && command -v setcap >/dev/null; then
  nobody_copies
  must cp /bin/cat "$T/bin/sgid_cat"
  must cp /bin/cat "$T/bin/cap_cat"
  chown 0:0 "$T/bin/sgid_cat" && chmod 2755 "$T/bin/sgid_cat" || fail "cannot make a setgid copy of cat"
  if setcap cap_dac_read_search+ep "$T/bin/cap_cat" 2>/dev/null; then caps=1; else caps=; fi
  [[ ,$(findmnt -no OPTIONS -T "$T/bin"), == *,nosuid,* ]] && { note "setgid, file capabilities: $T is on a nosuid mount"; caps=; }
  for prog in sgid_cat ${caps:+cap_cat}; do
    [[ ,$(findmnt -no OPTIONS -T "$T/bin"), == *,nosuid,* ]] && break
    case $prog in sgid_cat) words="$T/bin/sgid_cat is setgid" ;; *) words="$T/bin/cap_cat has file capabilities" ;; esac
    as_nobody "$TG_CMD_N" "$T/bin/$prog" /proc/self/maps >"$T/maps.out" 2>"$ERR" || fail "truncguard $prog as nobody failed"
    grep -q libtruncguard "$T/maps.out" && fail "control: $prog run by nobody has the shim loaded (no secure mode)"
    expect_warning "a $prog program run by nobody (no shim in its maps)" "$words"
  done
  # ... and what such a program starts runs without it too (truncguard(1),
  # ENVIRONMENT: "ld.so removes LD_PRELOAD for it"). Control: a plain copy.
  must cp /usr/bin/env "$T/bin/sgid_env"
  must cp /usr/bin/env "$T/bin/plain_env"
  chown 0:0 "$T/bin/sgid_env" && chmod 2755 "$T/bin/sgid_env" || fail "cannot make a setgid copy of env"
  child() { as_nobody "$TG_CMD_N" "$T/bin/$1" sh -c 'echo "[$LD_PRELOAD]"' 2>/dev/null; }
  [ "$(child plain_env)" = "[$TG_SHIM_N]" ] || fail "control: a child of a plain env under truncguard has LD_PRELOAD $(child plain_env)"
  [[ ,$(findmnt -no OPTIONS -T "$T/bin"), == *,nosuid,* ]] || [ "$(child sgid_env)" = "[]" ] ||
    fail "a child of a setgid env run by nobody still has LD_PRELOAD: $(child sgid_env)"
  ok "a setgid program's children get no LD_PRELOAD (control: a plain program's do)"
  # Under no_new_privs (systemd's NoNewPrivileges=, docker's
  # no-new-privileges) the exec ignores the set-ID bit: the setgid cat runs
  # with nobody's IDs, loads the shim, and gets no warning (it said "ld.so
  # ignores LD_PRELOAD for it"). File capabilities still mean secure mode
  # there: that warning stays.
  if ! [[ ,$(findmnt -no OPTIONS -T "$T/bin"), == *,nosuid,* ]]; then
    as_nobody setpriv --no-new-privs "$TG_CMD_N" "$T/bin/sgid_cat" /proc/self/maps >"$T/maps.out" 2>"$ERR" ||
      fail "truncguard sgid_cat as nobody under no_new_privs failed"
    grep -q libtruncguard "$T/maps.out" || fail "control: the setgid cat under no_new_privs has no shim in its maps"
    [ ! -s "$ERR" ] || fail "a setgid program under no_new_privs (the shim loaded) got a warning: $(cat -- "$ERR")"
    if [ -n "$caps" ]; then
      as_nobody setpriv --no-new-privs "$TG_CMD_N" "$T/bin/cap_cat" /proc/self/maps >"$T/maps.out" 2>"$ERR" ||
        fail "truncguard cap_cat as nobody under no_new_privs failed"
      grep -q libtruncguard "$T/maps.out" && fail "control: cap_cat under no_new_privs has the shim loaded"
      expect_warning "a file-capability program under no_new_privs" "$T/bin/cap_cat has file capabilities"
    fi
    ok "under no_new_privs: a setgid program loads the shim and gets no warning"
  fi
  if [ -n "$caps" ]; then
    "$TG_CMD" "$T/bin/cap_cat" /proc/self/maps >"$T/maps.out" 2>"$ERR" || fail "truncguard cap_cat as root failed"
    grep -q libtruncguard "$T/maps.out" || fail "control: root's cap_cat has no shim in its maps"
    [ ! -s "$ERR" ] || fail "a file-capability program run by root (not secure mode) got a warning: $(cat -- "$ERR")"
    ok "the file-capability program run by root: the shim loaded, no warning"
  else
    note "file capabilities: not tested (setcap failed here)"
  fi
else
  note "setgid and file capabilities: skipped (needs root, setpriv and setcap)"
fi
