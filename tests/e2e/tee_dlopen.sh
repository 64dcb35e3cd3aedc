#!/bin/bash
# Bug: "tee lib.so < new.so" opens through fopen(..., "w"), which reaches the
# kernel inside libc, not through open(): a shim that only wraps open()
# misses it and the process that loaded lib.so dies.
. "$(dirname "$0")/lib.sh"
need_victims

LIB=$T/libvictim.so
tee_v2() { "$@" tee "$LIB" <"$V2" >/dev/null; }

prove_protection tee_v2
