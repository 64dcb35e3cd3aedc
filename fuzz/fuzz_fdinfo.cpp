// tg::parse_fdinfo_locks: the "lock:" lines of /proc/PID/fdinfo/FD, which an
// fd move takes again on the new file. The first byte chooses `cut` (bit 0)
// and the caller's room (the rest, 0 to 40 locks); the others are the text,
// in a buffer of its own size (ASan sees any read past it). Whatever the bytes:
//  - the locks it returns have a known kind and type, start >= 0, len >= 0,
//    and a range that fits an off_t;
//  - the room is never overrun: it returns min(found, room), and *lost is
//    the rest plus one where `cut`;
//  - a line without its newline is never read: the text up to its last
//    newline gives the same locks;
//  - each lock, written back as the kernel writes it, reads as the same lock.
#include <fcntl.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fdinfo_locks.hpp"
#include "fuzz_common.hpp"

namespace {

constexpr int kAll = 8192;  // more than any 8 KiB text can list

int parse(const std::string& text, bool cut, tg::FdLock* locks, int max, int* lost) {
  std::vector<char> buf(text.begin(), text.end());
  *lost = 0;
  return tg::parse_fdinfo_locks(buf.data(), buf.size(), cut, locks, max, lost);
}

bool same(const tg::FdLock& a, const tg::FdLock& b) {
  return a.kind == b.kind && a.type == b.type && a.start == b.start && a.len == b.len;
}

std::string kernel_line(const tg::FdLock& l) {
  const char* kind = l.kind == tg::FdLock::flock ? "FLOCK  ADVISORY  " : l.kind == tg::FdLock::ofd ? "OFDLCK ADVISORY  " : "POSIX  ADVISORY  ";
  std::string s = std::string("lock:\t1: ") + kind + (l.type == F_WRLCK ? "WRITE " : "READ ") + "1 fe:00:2 " +
                  std::to_string(static_cast<long long>(l.start)) + " ";
  s += l.len == 0 ? std::string("EOF") : std::to_string(static_cast<long long>(l.start + l.len - 1));
  return s + "\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool cut = data[0] & 1;
  const int room = (data[0] >> 1) % 41;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);

  // Exactly the caller's room: anything written past it is outside `locks`.
  std::vector<tg::FdLock> locks(static_cast<size_t>(room));
  int lost = 0;
  const int count = parse(text, cut, locks.data(), room, &lost);
  static tg::FdLock all[kAll];
  int all_lost = 0;
  const int found = parse(text, false, all, kAll, &all_lost);

  FUZZ_CHECK(found >= 0 && found < kAll && all_lost == 0, "found %d, lost %d with room for all", found, all_lost);
  FUZZ_CHECK(count == (found < room ? found : room), "%d returned for %d found, room %d", count, found, room);
  FUZZ_CHECK(lost == found - count + (cut ? 1 : 0), "lost %d, found %d, returned %d, cut %d", lost, found, count, cut);
  for (int i = 0; i < found; ++i) {
    const tg::FdLock& l = all[i];
    FUZZ_CHECK(l.kind == tg::FdLock::flock || l.kind == tg::FdLock::ofd || l.kind == tg::FdLock::posix, "kind %d", l.kind);
    FUZZ_CHECK(l.type == F_RDLCK || l.type == F_WRLCK, "type %d", l.type);
    FUZZ_CHECK(l.start >= 0 && l.len >= 0, "range %lld+%lld", static_cast<long long>(l.start), static_cast<long long>(l.len));
    FUZZ_CHECK(l.len == 0 || l.start - 1 <= LLONG_MAX - l.len, "range %lld+%lld past OFFSET_MAX",
               static_cast<long long>(l.start), static_cast<long long>(l.len));
    if (i < count) FUZZ_CHECK(same(l, locks[static_cast<size_t>(i)]), "lock %d read two ways", i);
    tg::FdLock again{};
    int again_lost = 0;
    FUZZ_CHECK(parse(kernel_line(l), false, &again, 1, &again_lost) == 1 && same(l, again),
               "lock %d written back does not read the same: %s", i, kernel_line(l).c_str());
  }

  const size_t last_nl = text.rfind('\n');
  const std::string whole = last_nl == std::string::npos ? std::string() : text.substr(0, last_nl + 1);
  static tg::FdLock whole_locks[kAll];
  int whole_lost = 0;
  FUZZ_CHECK(parse(whole, false, whole_locks, kAll, &whole_lost) == found, "the line cut short was read");
  for (int i = 0; i < found; ++i) FUZZ_CHECK(same(all[i], whole_locks[i]), "lock %d differs without the cut line", i);
  return 0;
}
