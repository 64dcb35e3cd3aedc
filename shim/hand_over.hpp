// The text form of atomic mode's exec hand-over (TRUNCGUARD_PENDING): one
// entry per pending file,
//   FDS:DIRFD:OLD_INO[s]:BASE_HEX:PATH_HEX;
// FDS the fd numbers on the file that survive the exec (comma-separated),
// DIRFD its directory's fd, OLD_INO the inode it replaces (the `s` where the
// writer synced it), BASE and PATH its name in the directory and the name the
// program used, hex-encoded (lower case). pending.cpp decides what is handed
// over and what is adopted; this file only writes and reads the text, which
// comes from the environment: anyone may have written it.
#pragma once

#include <climits>
#include <cstddef>

namespace tg::hand_over {

struct Entry {
  const char* fds = nullptr;  // FDS, in the entry's text (not copied)
  size_t fds_len = 0;
  int first_fd = -1;
  int dirfd = -1;
  unsigned long old_ino = 0;
  bool synced = false;
  char base[NAME_MAX + 1];
  char path[1024];
};

// Reads the entry in [p, end), `end` at its ';'. Only the form is checked,
// as append() writes it: numbers that fit (fds in an int, OLD_INO in an
// unsigned long) without leading zeros, lower-case hex without a NUL, BASE
// a name in a directory (not empty, ".", ".." or with a '/'). False for
// anything else: append() of what it read gives the entry back.
bool parse(const char* p, const char* end, Entry* e);

// Appends the entry to buf at *end (keeping room for a NUL). `fds` is FDS's
// text. False, with *end unchanged, where it does not fit.
bool append(char* buf, size_t cap, size_t* end, const char* fds, int dirfd, unsigned long old_ino, bool synced,
            const char* base, const char* path);

// A decimal number of exactly `len` digits, at most `max`, without leading zeros.
bool decimal(const char* s, size_t len, unsigned long max, unsigned long* out);

// FDS: every one a number that fits an int, each given to `each`; false at
// the first that is not (`each` has seen those before it).
template <typename Each>
bool each_fd(const char* s, size_t len, Each each) {
  for (const char* p = s;;) {
    const char* stop = p;
    while (stop < s + len && *stop != ',') ++stop;
    unsigned long fd;
    if (!decimal(p, static_cast<size_t>(stop - p), INT_MAX, &fd)) return false;
    each(static_cast<int>(fd));
    if (stop == s + len) return true;
    p = stop + 1;
  }
}

}  // namespace tg::hand_over
