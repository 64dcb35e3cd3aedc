#include "escape.hpp"

#include <cstring>

namespace tg {

namespace {

// Length of the valid UTF-8 sequence starting at p, or 0 if there is none
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t utf8_sequence(const unsigned char* p) {
  const unsigned char c = p[0];
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;       // overlong
    else if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;       // overlong
    else if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (p[1] < lo || p[1] > hi) return 0;  // also stops at the terminating NUL
  for (size_t i = 2; i < n; ++i)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return n;
}

}  // namespace

namespace {
size_t escape_with_limit(const char* in, char* out, size_t out_len, size_t limit, bool* cut);
}  // namespace

size_t escape(const char* in, char* out, size_t out_len) {
  if (out_len == 0) return 0;
  // Everything, if it fits; otherwise cut, with room kept for "...".
  bool cut = false;
  size_t n = escape_with_limit(in, out, out_len, out_len - 1, &cut);
  if (!cut) return n;
  return escape_with_limit(in, out, out_len, out_len > 4 ? out_len - 4 : 0, &cut);
}

namespace {

size_t escape_with_limit(const char* in, char* out, size_t out_len, size_t limit, bool* cut) {
  *cut = false;
  static const char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(in ? in : "(null)");
  size_t o = 0;
  while (*p) {
    char tmp[8];
    size_t n = 0;
    size_t consumed = 1;
    unsigned char c = *p;
    if (c == '\n') { tmp[0] = '\\'; tmp[1] = 'n'; n = 2; }
    else if (c == '\t') { tmp[0] = '\\'; tmp[1] = 't'; n = 2; }
    else if (c == '\r') { tmp[0] = '\\'; tmp[1] = 'r'; n = 2; }
    else if (c == '\\') { tmp[0] = '\\'; tmp[1] = '\\'; n = 2; }
    else if (c < 0x20 || c == 0x7f) { tmp[0] = '\\'; tmp[1] = 'x'; tmp[2] = kHex[c >> 4]; tmp[3] = kHex[c & 15]; n = 4; }
    else if (c < 0x80) { tmp[0] = static_cast<char>(c); n = 1; }
    // (a C1 control, U+0080-U+009F, is valid UTF-8 but a control all the
    // same: U+009B is CSI to a terminal, U+0085 a newline: escaped bytewise)
    else if (size_t seq = utf8_sequence(p); seq > 0 && !(c == 0xC2 && p[1] < 0xA0)) {
      std::memcpy(tmp, p, seq);
      n = consumed = seq;
    } else { tmp[0] = '\\'; tmp[1] = 'x'; tmp[2] = kHex[c >> 4]; tmp[3] = kHex[c & 15]; n = 4; }
    if (o + n > limit) {
      *cut = true;
      size_t dots = out_len - 1 - o < 3 ? out_len - 1 - o : 3;
      std::memcpy(out + o, "...", dots);
      o += dots;
      break;
    }
    std::memcpy(out + o, tmp, n);
    o += n;
    p += consumed;
  }
  out[o] = '\0';
  return o;
}

}  // namespace

}  // namespace tg
