// The settings parser, with a fuzzer-driven environment.
//  - parse_settings: never more warnings than it has room for, each one
//    NUL-terminated and free of raw control bytes (a value can't forge a log
//    line); a valid value is taken, an invalid one leaves the default; under
//    secure execution TRUNCGUARD_LOG is never taken and TRUNCGUARD_DEBUG's
//    categories are ignored ("help" is not); the log path is either the
//    value or empty.
//  - parse_scope/mode/on_fail/log_format: true exactly for the names that
//    to_string gives back.
//  - parse_debug: the bits and the "help" flag an independent tokenizer
//    finds; the unknown word copied NUL-terminated within the buffer given.
#include <fuzzer/FuzzedDataProvider.h>

#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "settings.hpp"

namespace {

const char* const kVars[] = {"TRUNCGUARD_SCOPE", "TRUNCGUARD_MODE", "TRUNCGUARD_ON_FAIL",
                             "TRUNCGUARD_LOG_FORMAT", "TRUNCGUARD_DEBUG", "TRUNCGUARD_LOG"};
constexpr int kNumVars = 6;
std::string g_values[kNumVars];
bool g_present[kNumVars];

const char* lookup(const char* name) {
  for (int i = 0; i < kNumVars; ++i)
    if (std::strcmp(name, kVars[i]) == 0) return g_present[i] ? g_values[i].c_str() : nullptr;
  return nullptr;  // any other name: unset
}

// parse_X(v) is true exactly when v is one of the names to_string gives.
template <typename E, typename Parse>
bool known_name(const char* v, Parse parse, E* out) {
  bool ok = parse(v, out);
  bool listed = false;
  for (int k = 0; k < 16; ++k) {
    const char* name = tg::to_string(static_cast<E>(k));
    if (std::strcmp(name, "?") != 0 && std::strcmp(name, v) == 0) listed = true;
  }
  FUZZ_CHECK(ok == listed, "parse of \"%s\" says %d, the names say %d", v, ok, listed);
  if (ok) FUZZ_CHECK(std::strcmp(tg::to_string(*out), v) == 0, "\"%s\" parsed as %s", v, tg::to_string(*out));
  return ok;
}

// The debug list, tokenized independently (separators: comma, space, colon).
// `named`, if given: whether some word was known (help, a category, none).
bool debug_oracle(const std::string& v, unsigned* bits, bool* help, bool* named = nullptr) {
  *bits = 0;
  *help = false;
  bool ok = true;
  bool any = false;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    if (word == "help") *help = any = true;
    else {
      bool known = false;
      for (const tg::CategoryInfo* c = tg::kCategories; c->name; ++c)
        if (word == c->name) { *bits |= c->bits; known = true; }
      if (!known) ok = false;
      any = any || known;
    }
    word.clear();
  };
  for (char c : v) {
    if (c == ',' || c == ' ' || c == ':') flush();
    else word += c;
  }
  flush();
  if (named) *named = any;
  return ok;
}

void check_text(const char* s, size_t cap, const char* what) {
  const size_t n = strnlen(s, cap);
  FUZZ_CHECK(n < cap, "%s is not NUL-terminated within %zu bytes", what, cap);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    FUZZ_CHECK(c >= 0x20 && c != 0x7f, "%s has a raw control byte 0x%02x: %s", what, c, s);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const bool secure = fdp.ConsumeBool();
  for (int i = 0; i < kNumVars; ++i) {
    g_present[i] = fdp.ConsumeBool();
    g_values[i] = fdp.ConsumeRandomLengthString(i == 5 ? 5000 : 300);
    g_values[i] = g_values[i].c_str();  // an environment value ends at its first NUL
  }
  const size_t bad_len = fdp.ConsumeIntegralInRange<size_t>(1, 80);

  // ---- the whole environment
  const tg::Settings s = tg::parse_settings(lookup, secure);
  FUZZ_CHECK(s.warning_count >= 0 && s.warning_count <= tg::Settings::kMaxWarnings, "%d warnings", s.warning_count);
  for (int i = 0; i < s.warning_count; ++i) check_text(s.warnings[i], tg::Settings::kWarningLen, "a warning");
  FUZZ_CHECK(strnlen(s.log_path, sizeof s.log_path) < sizeof s.log_path, "log_path not terminated");

  const char* v;
  tg::Scope sc;
  if ((v = lookup("TRUNCGUARD_SCOPE")) && *v)
    FUZZ_CHECK(s.scope == (known_name(v, tg::parse_scope, &sc) ? sc : tg::Scope::system), "scope");
  tg::Mode md;
  if ((v = lookup("TRUNCGUARD_MODE")) && *v)
    FUZZ_CHECK(s.mode == (known_name(v, tg::parse_mode, &md) ? md : tg::Mode::replace), "mode");
  tg::OnFail of;
  if ((v = lookup("TRUNCGUARD_ON_FAIL")) && *v)
    FUZZ_CHECK(s.on_fail == (known_name(v, tg::parse_on_fail, &of) ? of : tg::OnFail::etxtbsy), "on_fail");
  tg::LogFormat lf;
  if ((v = lookup("TRUNCGUARD_LOG_FORMAT")) && *v)
    FUZZ_CHECK(s.log_format == (known_name(v, tg::parse_log_format, &lf) ? lf : tg::LogFormat::text), "log_format");
  if ((v = lookup("TRUNCGUARD_DEBUG")) && *v) {
    unsigned bits;
    bool help, named;
    debug_oracle(v, &bits, &help, &named);
    // No known word, or secure execution (the categories are ignored there,
    // "help" is not): the default stays.
    if (!named || secure) bits = tg::Settings{}.debug;
    FUZZ_CHECK(s.debug == bits && s.debug_help == help, "TRUNCGUARD_DEBUG=\"%s\": bits %u help %d, expected %u %d", v,
               s.debug, s.debug_help, bits, help);
    FUZZ_CHECK(s.debug_ignored == (named && secure), "TRUNCGUARD_DEBUG=\"%s\" (secure %d): debug_ignored %d", v, secure,
               s.debug_ignored);
  }
  v = lookup("TRUNCGUARD_LOG");
  if (secure) {
    FUZZ_CHECK(s.log_path[0] == '\0', "secure execution took TRUNCGUARD_LOG=%s", s.log_path);
    FUZZ_CHECK(s.log_ignored == (v && *v), "log_ignored %d", s.log_ignored);
  } else if (v && *v) {
    FUZZ_CHECK(std::strcmp(s.log_path, v) == 0 || s.log_path[0] == '\0', "log_path \"%s\" for \"%s\"", s.log_path, v);
  } else {
    FUZZ_CHECK(s.log_path[0] == '\0', "log_path \"%s\" without TRUNCGUARD_LOG", s.log_path);
  }

  // ---- parse_debug alone, with a fuzzer-chosen buffer for the bad word
  const std::string dv = g_values[4];
  std::vector<char> bad(bad_len, '\x7e');
  unsigned bits = 0xdeadu, obits;
  bool help = false, ohelp;
  const bool ok = tg::parse_debug(dv.c_str(), &bits, &help, bad.data(), bad.size());
  const bool ook = debug_oracle(dv, &obits, &ohelp);
  FUZZ_CHECK(ok == ook && bits == obits && help == ohelp, "parse_debug(\"%s\"): %d %u %d, expected %d %u %d",
             dv.c_str(), ok, bits, help, ook, obits, ohelp);
  if (!ok) {
    FUZZ_CHECK(strnlen(bad.data(), bad.size()) < bad.size(), "the bad word is not NUL-terminated in %zu bytes", bad_len);
    if (bad_len > 1) FUZZ_CHECK(bad[0] != '\0', "no bad word reported for \"%s\"", dv.c_str());
  }
  return 0;
}
