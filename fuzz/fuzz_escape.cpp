// tg::escape: whatever the input bytes and the output size,
//  - the output fits (NUL included) and its length is what escape returns;
//  - it holds no raw control byte (< 0x20, 0x7f) nor C1 control, and is strictly valid UTF-8;
//  - uncut, it unescapes back to the input exactly (so a name can't be
//    confused with another); cut, it is a prefix of the uncut output at an
//    escape boundary, followed by "..." (or as many dots as fit).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "escape.hpp"
#include "fuzz_common.hpp"

namespace {

// \n \t \r \\ \xHH -> bytes; false if `s` is not a well-formed escape.
bool unescape(const std::string& s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') { *out += s[i]; continue; }
    if (++i >= s.size()) return false;
    switch (s[i]) {
      case 'n': *out += '\n'; break;
      case 't': *out += '\t'; break;
      case 'r': *out += '\r'; break;
      case '\\': *out += '\\'; break;
      case 'x': {
        auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
        if (i + 2 >= s.size()) return false;
        int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
        if (hi < 0 || lo < 0) return false;
        *out += static_cast<char>(hi * 16 + lo);
        i += 2;
        break;
      }
      default: return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t out_len = (static_cast<size_t>(data[0]) << 8 | data[1]) % 2100;
  const std::string in(reinterpret_cast<const char*>(data + 2), strnlen(reinterpret_cast<const char*>(data + 2), size - 2));

  // The uncut form, with room to spare (at most 4 bytes per input byte).
  std::vector<char> big(in.size() * 4 + 8);
  const size_t full_len = tg::escape(in.c_str(), big.data(), big.size());
  const std::string full(big.data());
  FUZZ_CHECK(full_len == full.size(), "returned %zu, wrote %zu", full_len, full.size());
  std::string back;
  FUZZ_CHECK(unescape(full, &back) && back == in, "escape is not reversible: \"%s\"", full.c_str());

  // The size under test, exactly (ASan sees any write past it).
  std::vector<char> out(out_len ? out_len : 1, '\x7e');
  const size_t n = tg::escape(in.c_str(), out_len ? out.data() : nullptr, out_len);
  if (out_len == 0) {
    FUZZ_CHECK(n == 0, "out_len 0 returned %zu", n);
    return 0;
  }
  const size_t len = strnlen(out.data(), out_len);
  FUZZ_CHECK(len < out_len, "no NUL within %zu bytes", out_len);
  FUZZ_CHECK(n == len, "returned %zu, wrote %zu bytes", n, len);
  const auto* u = reinterpret_cast<const unsigned char*>(out.data());
  for (size_t i = 0; i < len; ++i)
    FUZZ_CHECK(u[i] >= 0x20 && u[i] != 0x7f, "raw control byte 0x%02x at %zu", u[i], i);
  for (size_t i = 0; i + 1 < len; ++i)  // nor a C1 control (U+0080-U+009F), valid UTF-8 as it is
    FUZZ_CHECK(!(u[i] == 0xc2 && u[i + 1] < 0xa0), "raw C1 control U+%04x at %zu", u[i + 1], i);
  const size_t bad = utf8_invalid_at(u, len);
  FUZZ_CHECK(bad == len, "output is not valid UTF-8 at byte %zu (0x%02x %02x %02x %02x) of \"%s\"", bad, u[bad],
             bad + 1 < len ? u[bad + 1] : 0, bad + 2 < len ? u[bad + 2] : 0, bad + 3 < len ? u[bad + 3] : 0,
             out.data());

  const std::string got(out.data(), len);
  if (got == full) return 0;  // uncut
  // Cut: PREFIX + dots, PREFIX a prefix of the uncut output that unescapes to
  // a prefix of the input (so no escape was cut in half).
  size_t dots = 0;
  while (dots < 3 && dots < got.size() && got[got.size() - 1 - dots] == '.') ++dots;
  FUZZ_CHECK(dots == 3 || dots == out_len - 1, "cut output without \"...\": \"%s\"", got.c_str());
  bool ok = false;
  for (size_t d = 0; d <= dots && !ok; ++d) {  // the prefix itself may end in dots
    const std::string prefix = got.substr(0, got.size() - d);
    std::string un;
    ok = full.compare(0, prefix.size(), prefix) == 0 && unescape(prefix, &un) && in.compare(0, un.size(), un) == 0 &&
         got.size() - prefix.size() == d;
  }
  FUZZ_CHECK(ok, "cut output \"%s\" is not a clean prefix of \"%s\"", got.c_str(), full.c_str());
  return 0;
}
