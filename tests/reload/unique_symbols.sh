#!/bin/bash
# "My new plugin isn't running": a C++ plugin with a static in an inline
# function never unloads (STB_GNU_UNIQUE), and truncguard says so and why;
# the same plugin built with -fno-gnu-unique unloads, and nothing is said.
. "$(dirname "$0")/rlib.sh"
readelf -sW "$TG_PLUGIN_UNIQUE" | grep -q UNIQUE || fail "the test plugin has no STB_GNU_UNIQUE symbol"
readelf -sW "$TG_PLUGIN_NO_UNIQUE" | grep -q UNIQUE && fail "the -fno-gnu-unique plugin has one"

LIB=$T/libunique.so
cp "$TG_PLUGIN_UNIQUE" "$LIB"
host -- open call close loaded
[ $ST -eq 0 ] || fail "control exited $ST"
expect_out "loaded yes"
expect_no_log "still loaded"
ok "control: the plugin stays loaded after its only dlclose, and nothing says why"

host "$TG_CMD" -- open call close loaded
[ $ST -eq 0 ] || fail "under truncguard exited $ST"
expect_out "loaded yes"
expect_log "note file=$LIB is still loaded after dlclose: it defines the STB_GNU_UNIQUE symbol "
expect_log "counter()::n"
expect_log "build with -fno-gnu-unique to allow unloading"
ok "under truncguard: the log names the unique symbol and -fno-gnu-unique"

LIB=$T/libnounique.so
cp "$TG_PLUGIN_NO_UNIQUE" "$LIB"
host "$TG_CMD" -- open call close loaded
[ $ST -eq 0 ] || fail "-fno-gnu-unique under truncguard exited $ST"
expect_out "loaded no"
expect_no_log "still loaded"
ok "built with -fno-gnu-unique it unloads, and nothing is logged"

# A handle left open is named as the reason.
LIB=$T/libnounique.so
host "$TG_CMD" -- open open call close loaded
expect_log "is still loaded after dlclose: 1 handle still open, opened at "
ok "a handle still open is named, with where it was opened"
