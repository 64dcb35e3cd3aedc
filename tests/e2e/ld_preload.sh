#!/bin/bash
# Bug: protection that only works through the truncguard command, or a
# command that throws away the user's own LD_PRELOAD.  The shim must work
# preloaded by hand, and the command must keep an existing LD_PRELOAD.
. "$(dirname "$0")/lib.sh"
need_victims
need_shim

LIB=$T/libvictim.so
copy_v2() { "$@" cp "$V2" "$LIB"; }

# 1. LD_PRELOAD set by hand, no truncguard command.
prove_protection copy_v2 env LD_PRELOAD="$TG_SHIM"

# 2. The command keeps a preload the user already had: both are in the
#    child's LD_PRELOAD and both are really loaded in it.
MARKER=$T/libpreload_marker.so
must cp "$TG_MARKER_LIB" "$MARKER"
preload=$(LD_PRELOAD=$MARKER "$TG_CMD" env | sed -n 's/^LD_PRELOAD=//p')
[ -n "$preload" ] || fail "the child of truncguard has no LD_PRELOAD"
have_shim='' have_marker=''
for entry in ${preload//:/ }; do
  [ "$entry" -ef "$TG_SHIM" ] && have_shim=1
  [ "$entry" = "$MARKER" ] && have_marker=1
done
[ -n "$have_shim" ] || fail "LD_PRELOAD=\"$preload\" in the child lacks the shim $TG_SHIM"
[ -n "$have_marker" ] || fail "LD_PRELOAD=\"$preload\" in the child lost the user's $MARKER"
ok "the child's LD_PRELOAD has both: $preload"

maps=$(LD_PRELOAD=$MARKER "$TG_CMD" cat /proc/self/maps) || fail "truncguard cat /proc/self/maps failed"
grep -q "libtruncguard\.so" <<<"$maps" || fail "the shim is not mapped in the child"
grep -qF "$MARKER" <<<"$maps" || fail "the user's preload $MARKER is not mapped in the child"
ok "both libraries are mapped in the child"

# 3. And with the user's preload present, the protection still works.
prove_protection copy_v2 env LD_PRELOAD="$MARKER" "$TG_CMD"
