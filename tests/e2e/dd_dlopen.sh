#!/bin/bash
# Bug: "dd if=new.so of=lib.so" (plain dd opens with O_TRUNC) over a loaded
# library kills the process that loaded it.  Under truncguard it survives.
. "$(dirname "$0")/lib.sh"
need_victims

LIB=$T/libvictim.so
dd_v2() { "$@" dd if="$V2" of="$LIB" status=none; }

prove_protection dd_v2
