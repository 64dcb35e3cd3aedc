// Configuration: the TRUNCGUARD_* environment, parsed without allocation.
//
// The same parser serves the shim (at start-up) and the truncguard command
// (to reject bad option values before exec), so both say the same thing.
#pragma once

#include <climits>
#include <cstddef>

namespace tg {

enum class Scope { system, self, elf, pid_namespace };
enum class Mode { replace, unlink, dry_run, atomic };
enum class OnFail { etxtbsy, truncate };
enum class LogFormat { text, json };
enum class Reload { warn, fresh };

// Log categories, like LD_DEBUG's.
enum Category : unsigned {
  kRewrites = 1u << 0,   // one line per protected write (default)
  kDecisions = 1u << 1,  // every writing open or truncate considered, and why
  kBacktrace = 1u << 2,  // call-site backtrace with each protected write
  kReloads = 1u << 3,    // stale dlopen reloads, libraries that stay loaded (default)
  kBindings = 1u << 4,   // each dlsym: the line glibc's LD_DEBUG=bindings prints for it
  kFiles = 1u << 5,      // each dlopen, dlsym, dlclose: file, inode, open count, caller
  kAllCategories = kRewrites | kDecisions | kBacktrace | kReloads | kBindings | kFiles,
};

struct CategoryInfo {
  const char* name;
  unsigned bits;
  const char* help;
};
// The table `TRUNCGUARD_DEBUG=help` prints; ends with a null name.
extern const CategoryInfo kCategories[];

const char* to_string(Scope s);
const char* to_string(Mode m);
const char* to_string(OnFail f);
const char* to_string(LogFormat f);
const char* to_string(Reload r);

struct Settings {
  Scope scope = Scope::system;
  Mode mode = Mode::replace;
  OnFail on_fail = OnFail::etxtbsy;
  LogFormat log_format = LogFormat::text;
  Reload reload = Reload::warn;
  unsigned debug = kRewrites | kReloads;
  bool debug_help = false;    // TRUNCGUARD_DEBUG contained "help"
  bool log_ignored = false;   // TRUNCGUARD_LOG dropped under secure execution
  bool debug_ignored = false; // TRUNCGUARD_DEBUG's categories dropped under secure execution
  char log_path[PATH_MAX] = {};  // empty: stderr

  // Problems found while parsing: reported once, defaults used instead.
  static constexpr int kMaxWarnings = 6;
  static constexpr size_t kWarningLen = 200;
  int warning_count = 0;
  char warnings[kMaxWarnings][kWarningLen] = {};
};

// Reads TRUNCGUARD_* through `lookup` (getenv in production).
// `secure` is true under secure execution (AT_SECURE): then TRUNCGUARD_LOG is
// ignored, so a setuid program can't be made to write where the user chooses,
// and so are TRUNCGUARD_DEBUG's categories (not its "help"), as glibc ignores
// LD_DEBUG_OUTPUT and LD_DEBUG there.
using EnvLookup = const char* (*)(const char* name);
Settings parse_settings(EnvLookup lookup, bool secure);

// Parsers for one value each; false if the value is not known.
bool parse_scope(const char* v, Scope* out);
bool parse_mode(const char* v, Mode* out);
bool parse_on_fail(const char* v, OnFail* out);
bool parse_log_format(const char* v, LogFormat* out);
bool parse_reload(const char* v, Reload* out);
// Parses a comma list. On an unknown word, copies it into `bad` and returns false
// (the known words are still applied). `named`, if given: whether the list
// names any known word (a category, "none" or "help").
bool parse_debug(const char* v, unsigned* out, bool* help, char* bad, size_t bad_len, bool* named = nullptr);
// The same, calling `on_unknown` (if given) for each unknown word.
using UnknownWord = void (*)(void* ctx, const char* word, size_t len);
bool parse_debug_words(const char* v, unsigned* out, bool* help, bool* named, UnknownWord on_unknown, void* ctx);

}  // namespace tg
