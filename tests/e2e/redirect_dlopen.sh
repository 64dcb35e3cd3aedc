#!/bin/bash
# Bug: a shell redirection "cat new.so > lib.so" (O_WRONLY|O_CREAT|O_TRUNC
# from bash itself) over a loaded library kills the process that loaded it.
# Under truncguard the bash doing the redirection gets a new inode instead.
. "$(dirname "$0")/lib.sh"
need_victims

LIB=$T/libvictim.so
redirect_v2() { "$@" bash -c 'cat "$1" > "$2"' bash "$V2" "$LIB"; }

prove_protection redirect_v2
