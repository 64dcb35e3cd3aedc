// One log event with fuzzer-chosen file and process names, in both formats:
//  - text: exactly one line, "%10d:\t" then no raw control byte at all, valid
//    UTF-8 (a name can't forge a second line or repaint a terminal);
//  - json: exactly one line (or nothing, if it didn't fit), one valid JSON
//    object whose "file" is the name escaped as in the text log.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "escape.hpp"
#include "fuzz_common.hpp"
#include "log.hpp"
#include "pending.hpp"
#include "settings.hpp"

// The log asks atomic mode's table whether fd 2 is a file being published
// (then a line for stderr is dropped). This target links the log alone, with
// no file ever pending: the answers atomic mode gives before its first write
// (any(), inline in pending.hpp, reads the count of pending fds: 0).
namespace tg::pending {
std::atomic<int> detail::g_live_slots{0};
bool is_pending(int) { return false; }
}  // namespace tg::pending

namespace {

// A minimal JSON reader: enough to say "valid" and to fetch top-level strings.
struct Json {
  const std::string& s;
  size_t i = 0;
  std::string file;  // the top-level "file", unescaped
  explicit Json(const std::string& text) : s(text) {}
  void ws() { while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) ++i; }
  bool str(std::string* out) {
    if (i >= s.size() || s[i] != '"') return false;
    for (++i; i < s.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c == '"') { ++i; return true; }
      if (c < 0x20) return false;
      if (c != '\\') { *out += static_cast<char>(c); continue; }
      if (++i >= s.size()) return false;
      switch (s[i]) {
        case '"': *out += '"'; break;
        case '\\': *out += '\\'; break;
        case '/': *out += '/'; break;
        case 'b': *out += '\b'; break;
        case 'f': *out += '\f'; break;
        case 'n': *out += '\n'; break;
        case 'r': *out += '\r'; break;
        case 't': *out += '\t'; break;
        case 'u':
          if (i + 4 >= s.size()) return false;
          for (int k = 1; k <= 4; ++k)
            if (!isxdigit(static_cast<unsigned char>(s[i + k]))) return false;
          *out += '?';
          i += 4;
          break;
        default: return false;
      }
    }
    return false;
  }
  bool value(int depth) {
    ws();
    if (i >= s.size() || depth > 16) return false;
    std::string tmp;
    switch (s[i]) {
      case '"': return str(&tmp);
      case '{': return object(depth + 1, false);
      case '[': {
        ++i;
        ws();
        if (i < s.size() && s[i] == ']') { ++i; return true; }
        for (;;) {
          if (!value(depth + 1)) return false;
          ws();
          if (i < s.size() && s[i] == ',') { ++i; continue; }
          if (i < s.size() && s[i] == ']') { ++i; return true; }
          return false;
        }
      }
      case 't': return lit("true");
      case 'f': return lit("false");
      case 'n': return lit("null");
      default: {
        size_t start = i;
        if (s[i] == '-') ++i;
        while (i < s.size() && isdigit(static_cast<unsigned char>(s[i]))) ++i;
        return i > start && isdigit(static_cast<unsigned char>(s[i - 1]));
      }
    }
  }
  bool lit(const char* w) {
    size_t n = std::strlen(w);
    if (s.compare(i, n, w) != 0) return false;
    i += n;
    return true;
  }
  bool object(int depth, bool top) {
    if (i >= s.size() || s[i] != '{') return false;
    ++i;
    ws();
    if (i < s.size() && s[i] == '}') { ++i; return true; }
    for (;;) {
      ws();
      std::string key;
      if (!str(&key)) return false;
      ws();
      if (i >= s.size() || s[i] != ':') return false;
      ++i;
      ws();
      if (top && key == "file") {
        std::string v;
        if (!str(&v)) return false;
        file = v;
      } else if (!value(depth)) {
        return false;
      }
      ws();
      if (i < s.size() && s[i] == ',') { ++i; continue; }
      if (i < s.size() && s[i] == '}') { ++i; return true; }
      return false;
    }
  }
};

// Runs emit() with stderr going to a memory file; returns what it wrote.
std::string capture(const tg::log::Event& e) {
  static int mem = memfd_create("fuzz-log", 0);
  ftruncate(mem, 0);
  lseek(mem, 0, SEEK_SET);
  int saved = dup(2);
  dup2(mem, 2);
  tg::log::emit(e);
  dup2(saved, 2);
  close(saved);
  std::string out(static_cast<size_t>(lseek(mem, 0, SEEK_CUR)), '\0');
  pread(mem, out.data(), out.size(), 0);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const bool json = fdp.ConsumeBool();
  const auto kind = static_cast<tg::log::EventKind>(fdp.ConsumeIntegralInRange<int>(0, 6));
  const std::string file = fdp.ConsumeRandomLengthString(5000);
  const std::string comm1 = fdp.ConsumeRandomLengthString(40);
  const std::string comm2 = fdp.ConsumeRandomLengthString(40);
  const int mappers = fdp.ConsumeIntegralInRange<int>(0, 2);
  const bool with_message = fdp.ConsumeBool();

  tg::Settings s;
  s.log_format = json ? tg::LogFormat::json : tg::LogFormat::text;
  s.debug = tg::kAllCategories;
  tg::log::configure(s);

  tg::log::Mapper m[2] = {};
  m[0].pid = 7;
  std::snprintf(m[0].comm, sizeof m[0].comm, "%s", comm1.c_str());
  m[1].pid = 8;
  std::snprintf(m[1].comm, sizeof m[1].comm, "%s", comm2.c_str());
  char who[512];
  tg::escape(comm1.c_str(), who, sizeof who);  // "who" arrives escaped

  tg::log::Event e{kind};
  e.file = file.c_str();
  e.entry = "open";
  e.reason = "mapped";
  e.mode = "replace";
  e.old_ino = 12;
  e.new_ino = 13;
  e.who = who;
  e.mappers = m;
  e.mapper_count = mappers;
  e.mapper_total = mappers;
  e.step = "cannot rename the new file over the name";
  e.error = 16;
  e.note = "hard_links";
  e.message = with_message ? "a sentence the shim wrote" : nullptr;
  if (kind == tg::log::EventKind::note || kind == tg::log::EventKind::warning) e.message = "a sentence the shim wrote";

  const std::string out = capture(e);
  if (out.empty()) {
    FUZZ_CHECK(json, "the text log wrote nothing");
    return 0;  // a JSON object too large for its buffer is dropped, not cut
  }
  FUZZ_CHECK(out.back() == '\n' && out.find('\n') == out.size() - 1, "not exactly one line: %s", out.c_str());
  const auto* u = reinterpret_cast<const unsigned char*>(out.data());
  const size_t bad = utf8_invalid_at(u, out.size());
  FUZZ_CHECK(bad == out.size(), "not valid UTF-8 at byte %zu: %s", bad, out.c_str());
  char esc[tg::log::kPathBuf];
  tg::escape(file.c_str(), esc, sizeof esc);
  if (json) {
    Json j(out);
    FUZZ_CHECK(j.object(0, true), "invalid JSON at byte %zu: %s", j.i, out.c_str());
    j.ws();
    FUZZ_CHECK(j.i == out.size(), "trailing bytes after the object: %s", out.c_str());
    FUZZ_CHECK(j.file == esc, "\"file\" is \"%s\", the text log says \"%s\"", j.file.c_str(), esc);
  } else {
    FUZZ_CHECK(out.size() > 12 && out[10] == ':' && out[11] == '\t', "no LD_DEBUG prefix: %s", out.c_str());
    for (size_t i = 12; i + 1 < out.size(); ++i)
      FUZZ_CHECK(u[i] >= 0x20 && u[i] != 0x7f, "raw control byte 0x%02x at %zu: %s", u[i], i, out.c_str());
    if (kind != tg::log::EventKind::warning)
      FUZZ_CHECK(out.find(esc) != std::string::npos, "the escaped name is not in the line: %s", out.c_str());
  }
  return 0;
}
