#pragma once
// The locks an fd's open file description holds, as /proc/PID/fdinfo/FD
// lists them (the kernel's lock_get_status): read by fd_move.cpp to take them
// again on the new file. Pure: text in, locks out (unit test, fuzz target).

#include <sys/types.h>

#include <cstddef>

namespace tg {

struct FdLock {
  enum Kind : short { flock, ofd, posix } kind;
  short type;  // F_RDLCK, F_WRLCK
  off_t start;
  off_t len;   // 0: to the end of file
};

// The "lock:" lines of fdinfo's text [text, text + len) (no NUL needed; not
// read past): "lock:\t1: FLOCK  ADVISORY  WRITE 12 fe:00:34 0 EOF",
// "OFDLCK ADVISORY  READ -1 ... 0 9", "POSIX  ADVISORY  WRITE 12 ... 20 29"
// ("MANDATORY" in place of "ADVISORY" before Linux 5.15). Leases,
// delegations and anything else are skipped, as is a line without its
// newline (cut short). Up to `max` locks go to `locks`; each one more adds 1
// to *lost, and so does `cut` (the text is the start of a longer listing,
// whose rest is lost). Returns how many were put in `locks`.
int parse_fdinfo_locks(const char* text, size_t len, bool cut, FdLock* locks, int max, int* lost);

}  // namespace tg
