// tg::hand_over: the exec hand-over's entries come from the environment,
// which anyone may write. Whatever the bytes:
//  - parse reads only [p, end) and never overflows its fields;
//  - an entry it takes has numbers that fit, BASE a name in a directory
//    (not empty, ".", ".." or with a '/'), and append() of what it read gives
//    the same text back (so nothing is read two ways);
//  - append() never writes past its buffer, and what it wrote parses.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_common.hpp"
#include "hand_over.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The entry: the bytes up to the first ';' (all of them if none), in a
  // buffer of their own, so that ASan sees any read past `end`.
  const char* text = reinterpret_cast<const char*>(data);
  const size_t len = std::find(text, text + size, ';') - text;
  std::string entry(text, len);
  tg::hand_over::Entry e;
  if (!tg::hand_over::parse(entry.data(), entry.data() + len, &e)) return 0;

  FUZZ_CHECK(e.fds >= entry.data() && e.fds + e.fds_len <= entry.data() + len, "FDS outside the entry");
  FUZZ_CHECK(e.first_fd >= 0 && e.dirfd >= 0, "a negative fd: %d %d", e.first_fd, e.dirfd);
  FUZZ_CHECK(std::strlen(e.base) > 0 && !std::strchr(e.base, '/') && std::strcmp(e.base, ".") != 0 &&
                 std::strcmp(e.base, "..") != 0,
             "BASE is no name in a directory: %s", e.base);
  int count = 0, first = -1;
  FUZZ_CHECK(tg::hand_over::each_fd(e.fds, e.fds_len, [&](int fd) { if (count++ == 0) first = fd; }),
             "FDS taken, then not read again");
  FUZZ_CHECK(count > 0 && first == e.first_fd, "first fd %d, read again %d", e.first_fd, first);

  const std::string fds(e.fds, e.fds_len);
  char out[8192];
  size_t end = 0;
  FUZZ_CHECK(tg::hand_over::append(out, sizeof out, &end, fds.c_str(), e.dirfd, e.old_ino, e.synced, e.base, e.path),
             "what parse read does not fit again");
  FUZZ_CHECK(end == len + 1 && out[len] == ';' && std::memcmp(out, entry.data(), len) == 0,
             "read two ways: %.*s written back as %.*s", static_cast<int>(len), entry.data(), static_cast<int>(end), out);
  return 0;
}
