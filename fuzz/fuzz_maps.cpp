// The /proc/PID/maps text reader.
//  - parse_maps_line reads only the bytes it is given (an exact-size heap
//    copy: ASan sees any read past them), and what it parses prints back and
//    parses again to the same fields.
//  - MapsTextMatcher: feeding the same text in fuzzer-chosen chunks gives
//    the same answer as feeding it whole (a line cut between two reads must
//    not be lost or matched twice); and a short line that names the target,
//    executable, is always found.
#include <fuzzer/FuzzedDataProvider.h>

#include <cinttypes>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "maps_reader.hpp"

namespace {

bool same(const tg::MapsLine& a, const tg::MapsLine& b) {
  return a.start == b.start && a.end == b.end && a.offset == b.offset && a.readable == b.readable &&
         a.writable == b.writable && a.executable == b.executable && a.shared == b.shared && a.id == b.id;
}

void check_line(const char* p, size_t n) {
  std::vector<char> exact(p, p + n);  // no terminator: the parser must use the length
  tg::MapsLine m;
  if (!tg::parse_maps_line(exact.data(), exact.size(), &m)) return;
  char again[256];
  int k = std::snprintf(again, sizeof again, "%" PRIx64 "-%" PRIx64 " %c%c%c%c %08" PRIx64 " %02x:%02x %" PRIu64 " /x",
                        m.start, m.end, m.readable ? 'r' : '-', m.writable ? 'w' : '-', m.executable ? 'x' : '-',
                        m.shared ? 's' : 'p', m.offset, m.id.dev_major, m.id.dev_minor, m.id.ino);
  tg::MapsLine m2;
  FUZZ_CHECK(tg::parse_maps_line(again, static_cast<size_t>(k), &m2), "its own output does not parse: %s", again);
  FUZZ_CHECK(same(m, m2), "parses differently printed back: %s", again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const uint8_t target_mode = fdp.ConsumeIntegral<uint8_t>();
  tg::FileId target{fdp.ConsumeIntegralInRange<unsigned>(0, 300), fdp.ConsumeIntegralInRange<unsigned>(0, 300),
                    fdp.ConsumeIntegral<uint64_t>()};
  std::vector<size_t> chunks;
  for (int i = 0, n = fdp.ConsumeIntegralInRange<int>(0, 64); i < n; ++i)
    chunks.push_back(fdp.ConsumeIntegralInRange<size_t>(1, 700));
  const std::string text = fdp.ConsumeRemainingBytesAsString();

  // Every line by itself; remember the ids of short executable lines.
  std::vector<tg::FileId> short_exec;
  bool long_lines = false;
  for (size_t start = 0; start <= text.size();) {
    size_t nl = text.find('\n', start);
    size_t end = nl == std::string::npos ? text.size() : nl;
    check_line(text.data() + start, end - start);
    tg::MapsLine m;
    if (end - start >= 500) long_lines = true;
    else if (tg::parse_maps_line(text.data() + start, end - start, &m) && m.executable && m.id.ino != 0)
      short_exec.push_back(m.id);
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  // Half the time, look for a file the text does name.
  if (!short_exec.empty() && (target_mode & 1)) target = short_exec[target_mode % short_exec.size()];

  tg::MapsTextMatcher whole(target);
  whole.feed(text.data(), text.size());
  whole.finish();

  tg::MapsTextMatcher cut(target);
  size_t off = 0;
  for (size_t i = 0; off < text.size(); ++i) {
    size_t n = chunks.empty() ? 1 : chunks[i % chunks.size()];
    if (n > text.size() - off) n = text.size() - off;
    std::vector<char> piece(text.data() + off, text.data() + off + n);  // exact size, fresh each time
    cut.feed(piece.data(), piece.size());
    off += n;
  }
  cut.finish();
  FUZZ_CHECK(whole.found() == cut.found(), "whole text: %d, in chunks: %d", whole.found(), cut.found());

  bool named = false;
  for (const tg::FileId& id : short_exec)
    if (id == target) named = true;
  if (named) FUZZ_CHECK(whole.found(), "a short executable line names the target, but it was not found");
  if (whole.found() && !long_lines) FUZZ_CHECK(named, "found, but no line names the target");
  return 0;
}
