#!/bin/bash
# Bug: "cp new.so lib.so" over a library a running service has dlopen'ed
# truncates the mapped file and the service dies (SIGSEGV/SIGBUS).
# Under truncguard the service keeps its old code and new processes get v2.
. "$(dirname "$0")/lib.sh"
need_victims

LIB=$T/libvictim.so
copy_v2() { "$@" cp "$V2" "$LIB"; }

prove_protection copy_v2
