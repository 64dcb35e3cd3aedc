#include "hand_over.hpp"

#include <cstdio>
#include <cstring>

namespace tg::hand_over {
namespace {

bool unhex(const char* in, size_t n, char* out, size_t len) {
  if (n % 2 || n / 2 >= len) return false;
  auto nib = [](char c) -> int {
    return c >= '0' && c <= '9' ? c - '0' : (c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1);
  };
  for (size_t i = 0; i < n; i += 2) {
    int hi = nib(in[i]), lo = nib(in[i + 1]);
    if (hi < 0 || lo < 0 || hi + lo == 0) return false;  // (a NUL: the shim never writes one)
    out[i / 2] = static_cast<char>(hi * 16 + lo);
  }
  out[n / 2] = '\0';
  return true;
}

// Appends `in` hex-encoded to buf at *end, keeping room for a NUL; false
// if it does not fit.
bool hex(const char* in, char* buf, size_t cap, size_t* end) {
  static const char kHex[] = "0123456789abcdef";
  for (const unsigned char* p = reinterpret_cast<const unsigned char*>(in); *p; ++p) {
    if (*end + 3 > cap) return false;
    buf[(*end)++] = kHex[*p >> 4];
    buf[(*end)++] = kHex[*p & 15];
  }
  return true;
}

// Appends one character to buf at *end, keeping room for a NUL.
bool put(char* buf, size_t cap, size_t* end, char c) {
  if (*end + 2 > cap) return false;
  buf[(*end)++] = c;
  return true;
}

// A name in a directory, as split() makes them: not empty, ".", ".." or a
// path (an entry's BASE must not make the rename leave its directory).
bool a_name_in_a_directory(const char* base) {
  return *base && !std::strchr(base, '/') && std::strcmp(base, ".") != 0 && std::strcmp(base, "..") != 0;
}

}  // namespace

// (atoi read "4294967303" as fd 7, and strtoul an inode number that
// overflows as ULONG_MAX: hand-written entries with them were adopted.)
bool decimal(const char* s, size_t len, unsigned long max, unsigned long* out) {
  if (len > 1 && s[0] == '0') return false;  // the shim writes none, so that an entry reads back as written
  unsigned long v = 0;
  for (size_t i = 0; i < len; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const unsigned long d = static_cast<unsigned long>(s[i] - '0');
    if (v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return len > 0;
}

bool parse(const char* p, const char* end, Entry* e) {
  const char* f[6] = {};
  size_t flen[6] = {};
  int k = 0;
  for (const char* q = p; k < 6 && q <= end; ++k) {
    const char* c = static_cast<const char*>(std::memchr(q, ':', static_cast<size_t>(end - q)));
    f[k] = q;
    flen[k] = static_cast<size_t>((c ? c : end) - q);
    q = (c ? c : end) + 1;
  }
  if (k != 5) return false;
  // OLD_INO's digits, then at most an `s`. (A suffix, not a field: a build
  // before the mark reads OLD_INO with strtoul and adopts the entry,
  // unsynced, where a field more made it drop the file.)
  size_t digits = 0;
  while (digits < flen[2] && f[2][digits] >= '0' && f[2][digits] <= '9') ++digits;
  e->synced = flen[2] == digits + 1 && f[2][digits] == 's';
  unsigned long dirfd = 0;
  e->first_fd = -1;
  if (!(flen[2] == digits || e->synced) || !decimal(f[2], digits, ULONG_MAX, &e->old_ino) ||
      !decimal(f[1], flen[1], INT_MAX, &dirfd) ||
      !each_fd(f[0], flen[0], [e](int fd) { if (e->first_fd < 0) e->first_fd = fd; }) ||
      !unhex(f[3], flen[3], e->base, sizeof e->base) || !a_name_in_a_directory(e->base) ||
      !unhex(f[4], flen[4], e->path, sizeof e->path))
    return false;
  e->dirfd = static_cast<int>(dirfd);
  e->fds = f[0];
  e->fds_len = flen[0];
  return true;
}

bool append(char* buf, size_t cap, size_t* end, const char* fds, int dirfd, unsigned long old_ino, bool synced,
            const char* base, const char* path) {
  size_t e = *end;
  const int head = std::snprintf(buf + e, cap - e, "%s:%d:%lu%s:", fds, dirfd, old_ino, synced ? "s" : "");
  if (head < 0 || (e += static_cast<size_t>(head)) + 1 > cap || !hex(base, buf, cap, &e) || !put(buf, cap, &e, ':') ||
      !hex(path, buf, cap, &e) || !put(buf, cap, &e, ';')) {
    buf[*end] = '\0';
    return false;
  }
  buf[e] = '\0';
  *end = e;
  return true;
}

}  // namespace tg::hand_over
