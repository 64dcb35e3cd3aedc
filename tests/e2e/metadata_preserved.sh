#!/bin/bash
# Bug: replacing a library by a new inode silently changes its permissions,
# owner, group or extended attributes (the new file gets the writer's umask
# and uid), so the service's file no longer looks as the admin set it up.
. "$(dirname "$0")/lib.sh"
need_victims

LIB=$T/libvictim.so
OWNER=
if [ "$(id -u)" -eq 0 ]; then
  OWNER=1234:5678
else
  note "SKIP owner part: only root can give the file another owner"
fi

# Run by prove_protection after each fresh copy of $LIB.
prepare_lib() {
  [ -z "$OWNER" ] || must chown "$OWNER" "$LIB"
  must chmod 0751 "$LIB"
  XATTR=
  if err=$(setfattr -n user.tg -v hello "$LIB" 2>&1); then
    XATTR=1
  elif [[ $err == *"Operation not supported"* ]]; then
    note "SKIP xattr part: the file system of $T has no user xattrs ($err)"
  else
    fail "setfattr failed: $err"
  fi
}
copy_v2() { "$@" cp "$V2" "$LIB"; }

prove_protection copy_v2

[ "$(stat -c %a "$LIB")" = 751 ] || fail "mode is $(stat -c %a "$LIB") after replacement, expected 751"
ok "mode 0751 survives"
if [ -n "$OWNER" ]; then
  [ "$(stat -c %u:%g "$LIB")" = "$OWNER" ] ||
    fail "owner is $(stat -c %u:%g "$LIB") after replacement, expected $OWNER"
  ok "owner $OWNER survives"
fi
if [ -n "$XATTR" ]; then
  got=$(getfattr --absolute-names --only-values -n user.tg "$LIB") ||
    fail "the xattr user.tg is gone after replacement"
  [ "$got" = hello ] || fail "user.tg is \"$got\" after replacement, expected hello"
  ok "the xattr user.tg survives"
fi

# Where the mode can't be set (fchmod refused: a seccomp filter, shown with
# strace), the new file keeps the mode it was made with, 0600: the log says
# so (it said nothing, and the library was 0600 for everyone else).
if command -v strace >/dev/null; then
  fresh_copy "$V1" "$LIB"
  must chmod 0755 "$LIB"
  log_reset
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 TRUNCGUARD_SCOPE=elf \
    strace -qq -o /dev/null -e trace=fchmod -e inject=fchmod:error=EPERM "$TG_CMD" cp "$V2" "$LIB" ||
    fail "cp failed where fchmod is refused"
  got=$(stat -c %a "$LIB")
  expect_log "note file=$LIB its permission bits could not be set (Operation not permitted): mode 0$got instead of 0755"
  ok "a mode that can't be set is in the log: mode 0$got instead of 0755"
  fresh_copy "$V1" "$LIB"
  must chmod 0755 "$LIB"
  log_reset
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 TRUNCGUARD_SCOPE=elf TRUNCGUARD_LOG_FORMAT=json \
    strace -qq -o /dev/null -e trace=fchmod -e inject=fchmod:error=EPERM "$TG_CMD" cp "$V2" "$LIB" ||
    fail "cp failed where fchmod is refused (a JSON log)"
  expect_note_key mode
  # fchmod refused, the notes true: a mode already right gets no note (it
  # said "mode 0600 instead of 0600"); root's copy of another user's setuid
  # file gets the mode's note alone (a setid note blamed a writer without
  # CAP_FOWNER, and gave a mode 0755 the file had not).
  fchmod_refused_cp() {
    log_reset
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 TRUNCGUARD_SCOPE=elf \
      strace -qq -o /dev/null -e trace=fchmod -e inject=fchmod:error=EPERM "$TG_CMD" cp "$V2" "$LIB" ||
      fail "cp failed where fchmod is refused (mode $1)"
  }
  fresh_copy "$V1" "$LIB"
  must chmod 0600 "$LIB"
  fchmod_refused_cp 0600
  [ "$(stat -c %a "$LIB")" = 600 ] || fail "fchmod refused, a file of mode 0600: mode $(stat -c %a "$LIB")"
  expect_log "replaced file=$LIB"
  expect_no_log "note file=$LIB its permission bits"
  ok "fchmod refused, a file of mode 0600: replaced with mode 0600, no note about it"
  if [ -n "$OWNER" ]; then
    fresh_copy "$V1" "$LIB"
    must chown "$OWNER" "$LIB"
    must chmod 4755 "$LIB"
    fchmod_refused_cp 4755
    got=$(stat -c %a "$LIB")
    expect_log "note file=$LIB its permission bits could not be set (Operation not permitted): mode 0$got instead of 4755"
    expect_no_log "note file=$LIB its setuid/setgid bits"
    ok "fchmod refused, root's copy of another user's setuid file: the mode's note (mode 0$got), no setid note"
  fi
else
  note "SKIP the fchmod part: strace is not installed"
fi

# Not the inode flags (docs/guarantees.md, "What is not guaranteed": chattr
# +A noatime and +d nodump were measured lost on ext4, as with install):
# the new file has neither. Where the filesystem keeps no such flags
# (tmpfs), nothing to check.
fresh_copy "$V1" "$LIB"
if chattr +A +d "$LIB" 2>/dev/null && [ "$(lsattr -d "$LIB" 2>/dev/null | cut -c1-22 | tr -cd 'Ad')" = dA ]; then
  old=$(inode "$LIB")
  TRUNCGUARD_SCOPE=elf "$TG_CMD" cp "$V2" "$LIB" || fail "cp over a library with chattr +A +d failed"
  [ "$(inode "$LIB")" != "$old" ] || fail "cp over a library with chattr +A +d: not replaced"
  flags=$(lsattr -d "$LIB" | cut -c1-22)
  [ -z "$(tr -cd 'Ad' <<<"$flags")" ] || fail "the new file has inode flags A or d ($flags): docs/guarantees.md says they are lost"
  ok "chattr +A +d: the new inode has neither ($flags), as documented"
else
  note "no chattr +A +d on $(stat -f -c %T "$T") here: inode flags not checked"
fi

# trusted. extended attributes are invisible to a writer without
# CAP_SYS_ADMIN (docs/guarantees.md, "What is not guaranteed"): nobody's cp
# over its library in use gives the new file the user. one but not the
# trusted. one, and no line says so. Control: root's keeps both.
if [ "$(id -u)" -eq 0 ] && command -v setfattr >/dev/null && command -v setpriv >/dev/null && as_nobody true; then
  nobody_copies
  mkdir -m 0777 "$T/tx"
  TLIB=$T/tx/libvictim.so
  for who in root nobody; do
    fresh_copy "$V1" "$TLIB"
    must chown 65534:65534 "$TLIB"
    if ! setfattr -n trusted.tg -v kept "$TLIB" 2>/dev/null || ! setfattr -n user.tg -v kept "$TLIB" 2>/dev/null; then
      note "no trusted. or user. xattrs on $(stat -f -c %T "$T"): not checked"
      break
    fi
    start_victim "$TLIB"
    log_reset
    if [ $who = root ]; then
      "$TG_CMD" cp "$V2" "$TLIB" || fail "root's cp over the library with a trusted. xattr failed"
    else
      as_nobody "$TG_CMD_N" cp "$V2" "$TLIB" || fail "nobody's cp over its library with a trusted. xattr failed"
    fi
    stop_victim
    expect_survived "$who's cp over a library with a trusted. xattr"
    expect_log "replaced file=$TLIB "
    [ "$(getfattr --only-values -n user.tg "$TLIB" 2>/dev/null)" = kept ] || fail "$who: the user. xattr was not kept"
    trusted=$(getfattr --only-values -n trusted.tg "$TLIB" 2>/dev/null)
    if [ $who = root ]; then
      [ "$trusted" = kept ] || fail "control: root's replacement lost the trusted. xattr"
    else
      [ -z "$trusted" ] || fail "nobody's replacement kept the trusted. xattr ($trusted): docs/guarantees.md says it can't"
      expect_no_log "note file=$TLIB "
      ok "trusted. xattrs: kept by root's replacement, lost without a word by nobody's (user. kept by both)"
    fi
  done
fi
