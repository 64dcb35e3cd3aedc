#include "fdinfo_locks.hpp"

#include <fcntl.h>

#include <climits>

namespace tg {
namespace {

// A cursor over one line [p, end): end is the line's '\n'.
struct Line {
  const char* p;
  const char* end;

  void blanks() {
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
  }
  // The next word is w (followed by a blank): p after it.
  bool word_is(const char* w) {
    blanks();
    const char* q = p;
    for (; *w; ++w, ++q)
      if (q == end || *q != *w) return false;
    if (q == end || (*q != ' ' && *q != '\t')) return false;
    p = q;
    return true;
  }
  void skip_word() {
    blanks();
    while (p < end && *p != ' ' && *p != '\t') ++p;
  }
  // A decimal number that fits an off_t; false if none (or too large).
  bool number(off_t* v) {
    blanks();
    if (p == end || *p < '0' || *p > '9') return false;
    long long x = 0;
    for (; p < end && *p >= '0' && *p <= '9'; ++p) {
      const int d = *p - '0';
      if (x > (LLONG_MAX - d) / 10) return false;
      x = x * 10 + d;
    }
    *v = static_cast<off_t>(x);
    return true;
  }
  // The line ends here (blanks aside).
  bool at_end() {
    blanks();
    return p == end;
  }
};

// One "lock:" line (after "lock:") into *l; false if it is no lock we take.
bool parse_lock(Line line, FdLock* l) {
  line.skip_word();  // "1:"
  if (line.word_is("FLOCK")) l->kind = FdLock::flock;
  else if (line.word_is("OFDLCK")) l->kind = FdLock::ofd;
  else if (line.word_is("POSIX")) l->kind = FdLock::posix;
  else return false;  // a lease, a delegation, ACCESS
  line.skip_word();  // ADVISORY (MANDATORY before Linux 5.15)
  if (line.word_is("WRITE")) l->type = F_WRLCK;
  else if (line.word_is("READ")) l->type = F_RDLCK;
  else return false;
  line.skip_word();  // pid (-1: an OFD lock)
  line.skip_word();  // dev:ino
  if (!line.number(&l->start)) return false;
  line.blanks();
  off_t end = 0;
  if (line.end - line.p >= 3 && line.p[0] == 'E' && line.p[1] == 'O' && line.p[2] == 'F') {
    line.p += 3;
    l->len = 0;
  } else if (line.number(&end) && end >= l->start) {
    // (The kernel writes OFFSET_MAX as EOF: the same lock.)
    l->len = end == LLONG_MAX ? 0 : end - l->start + 1;
  } else {
    return false;
  }
  return line.at_end();
}

}  // namespace

int parse_fdinfo_locks(const char* text, size_t len, bool cut, FdLock* locks, int max, int* lost) {
  int count = 0;
  const char* const stop = text + len;
  for (const char* p = text; p < stop;) {
    const char* nl = p;
    while (nl < stop && *nl != '\n') ++nl;
    if (nl == stop) break;  // a line cut short: not read (its end cut to fewer digits reads as another range)
    constexpr char kLock[] = "lock:";
    constexpr size_t kLockLen = sizeof kLock - 1;
    bool is_lock = static_cast<size_t>(nl - p) >= kLockLen;
    for (size_t i = 0; is_lock && i < kLockLen; ++i) is_lock = p[i] == kLock[i];
    FdLock l{};
    if (is_lock && parse_lock(Line{p + kLockLen, nl}, &l)) {
      if (count < max) locks[count++] = l;
      else ++*lost;
    }
    p = nl + 1;
  }
  if (cut) ++*lost;  // the rest of the listing
  return count;
}

}  // namespace tg
