#include "settings.hpp"

#include "escape.hpp"

#include <cstdio>
#include <cstring>
#include <initializer_list>

namespace tg {

const CategoryInfo kCategories[] = {
    {"rewrites", kRewrites, "one line per protected write (on by default)"},
    {"reloads", kReloads, "stale and fresh dlopen reloads, libraries that will not unload after dlclose (on by default)"},
    {"decisions", kDecisions, "every writing open or truncate considered, and why"},
    {"backtrace", kBacktrace, "a backtrace of the call site with each protected write; with reloads, where each handle still open on a stale library was opened"},
    {"bindings", kBindings, "each dlsym/dlvsym: the line glibc's LD_DEBUG=bindings prints for it"},
    {"files", kFiles, "each dlopen, dlsym, dlclose: the file, its inode, the open count, the caller; libraries kept loaded by handles still open"},
    {"all", kAllCategories, "all of the above"},
    {"none", 0, "nothing but errors and warnings"},
    {nullptr, 0, nullptr},
};

const char* to_string(Scope s) {
  switch (s) {
    case Scope::system: return "system";
    case Scope::self: return "self";
    case Scope::elf: return "elf";
    case Scope::pid_namespace: return "namespace";
  }
  return "?";
}
const char* to_string(Mode m) {
  switch (m) {
    case Mode::replace: return "replace";
    case Mode::unlink: return "unlink";
    case Mode::dry_run: return "dry-run";
    case Mode::atomic: return "atomic";
  }
  return "?";
}
const char* to_string(OnFail f) {
  switch (f) {
    case OnFail::etxtbsy: return "etxtbsy";
    case OnFail::truncate: return "truncate";
  }
  return "?";
}

const char* to_string(LogFormat f) { return f == LogFormat::json ? "json" : "text"; }
const char* to_string(Reload r) { return r == Reload::fresh ? "fresh" : "warn"; }

bool parse_reload(const char* v, Reload* out) {
  for (Reload r : {Reload::warn, Reload::fresh})
    if (std::strcmp(v, to_string(r)) == 0) { *out = r; return true; }
  return false;
}

bool parse_log_format(const char* v, LogFormat* out) {
  for (LogFormat f : {LogFormat::text, LogFormat::json})
    if (std::strcmp(v, to_string(f)) == 0) { *out = f; return true; }
  return false;
}

bool parse_scope(const char* v, Scope* out) {
  for (Scope s : {Scope::system, Scope::self, Scope::elf, Scope::pid_namespace})
    if (std::strcmp(v, to_string(s)) == 0) { *out = s; return true; }
  return false;
}
bool parse_mode(const char* v, Mode* out) {
  for (Mode m : {Mode::replace, Mode::unlink, Mode::dry_run, Mode::atomic})
    if (std::strcmp(v, to_string(m)) == 0) { *out = m; return true; }
  return false;
}
bool parse_on_fail(const char* v, OnFail* out) {
  for (OnFail f : {OnFail::etxtbsy, OnFail::truncate})
    if (std::strcmp(v, to_string(f)) == 0) { *out = f; return true; }
  return false;
}

bool parse_debug_words(const char* v, unsigned* out, bool* help, bool* named, UnknownWord on_unknown, void* ctx) {
  unsigned bits = 0;
  bool ok = true;
  if (named) *named = false;
  // Separators as in LD_DEBUG: comma, space, colon.
  const char* p = v;
  while (*p) {
    while (*p == ',' || *p == ' ' || *p == ':') ++p;
    const char* start = p;
    while (*p && *p != ',' && *p != ' ' && *p != ':') ++p;
    size_t len = static_cast<size_t>(p - start);
    if (len == 0) continue;
    bool known = false;
    if (len == 4 && std::strncmp(start, "help", 4) == 0) {
      *help = true;
      known = true;
    }
    for (const CategoryInfo* c = kCategories; !known && c->name; ++c) {
      if (std::strlen(c->name) == len && std::strncmp(c->name, start, len) == 0) {
        bits |= c->bits;
        known = true;
      }
    }
    if (known && named) *named = true;
    if (!known) {
      ok = false;
      if (on_unknown) on_unknown(ctx, start, len);
    }
  }
  *out = bits;
  return ok;
}

namespace {
struct FirstBad {
  char* buf;
  size_t len;
  bool taken;
};
void copy_first_bad(void* ctx, const char* word, size_t len) {
  auto* b = static_cast<FirstBad*>(ctx);
  if (b->taken || b->len == 0) return;
  b->taken = true;
  size_t n = len < b->len - 1 ? len : b->len - 1;
  std::memcpy(b->buf, word, n);
  b->buf[n] = '\0';
}
}  // namespace

bool parse_debug(const char* v, unsigned* out, bool* help, char* bad, size_t bad_len, bool* named) {
  FirstBad first{bad, bad_len, false};
  return parse_debug_words(v, out, help, named, &copy_first_bad, &first);
}

namespace {

// `value` comes from the user: escaped and cut short before it is quoted.
void warn(Settings& s, const char* fmt, const char* value) {
  if (s.warning_count >= Settings::kMaxWarnings) return;
  char quoted[64];
  escape(value, quoted, sizeof quoted);
  std::snprintf(s.warnings[s.warning_count++], Settings::kWarningLen, fmt, quoted);
}

void warn_unknown_debug_word(void* ctx, const char* word, size_t len) {
  char bad[64];
  const size_t n = len < sizeof bad - 1 ? len : sizeof bad - 1;
  std::memcpy(bad, word, n);
  bad[n] = '\0';
  warn(*static_cast<Settings*>(ctx), "debug option `%s' unknown; try TRUNCGUARD_DEBUG=help", bad);
}

}  // namespace

Settings parse_settings(EnvLookup lookup, bool secure) {
  Settings s;
  if (const char* v = lookup("TRUNCGUARD_SCOPE"); v && *v && !parse_scope(v, &s.scope))
    warn(s, "unknown TRUNCGUARD_SCOPE=%s (expected system, namespace, self or elf); using system", v);
  if (const char* v = lookup("TRUNCGUARD_MODE"); v && *v && !parse_mode(v, &s.mode))
    warn(s, "unknown TRUNCGUARD_MODE=%s (expected replace, atomic, unlink or dry-run); using replace", v);
  if (const char* v = lookup("TRUNCGUARD_ON_FAIL"); v && *v && !parse_on_fail(v, &s.on_fail))
    warn(s, "unknown TRUNCGUARD_ON_FAIL=%s (expected etxtbsy or truncate); using etxtbsy", v);
  if (const char* v = lookup("TRUNCGUARD_RELOAD"); v && *v && !parse_reload(v, &s.reload))
    warn(s, "unknown TRUNCGUARD_RELOAD=%s (expected warn or fresh); using warn", v);
  if (const char* v = lookup("TRUNCGUARD_LOG_FORMAT"); v && *v && !parse_log_format(v, &s.log_format))
    warn(s, "unknown TRUNCGUARD_LOG_FORMAT=%s (expected text or json); using text", v);
  if (const char* v = lookup("TRUNCGUARD_DEBUG"); v && *v) {
    unsigned bits = 0;
    bool named = false;
    // A warning for each unknown word, as LD_DEBUG gives (it named the first only).
    parse_debug_words(v, &bits, &s.debug_help, &named, &warn_unknown_debug_word, &s);
    // The known words apply, as in LD_DEBUG; a value that names none (a
    // typo, only separators) keeps the default, as an unknown value of the
    // other settings does, rather than silencing every protected write.
    // Under secure execution the categories are the caller's choice of what
    // a setuid program tells about itself (the backtrace's addresses undo
    // its ASLR; decisions name the files it writes): ignored, as glibc 2.36
    // ignores LD_DEBUG's there ("help" is still honoured, as LD_DEBUG's is).
    if (named && secure) s.debug_ignored = true;
    else if (named) s.debug = bits;
  }
  if (const char* v = lookup("TRUNCGUARD_LOG"); v && *v) {
    if (secure) {
      s.log_ignored = true;
    } else if (std::strlen(v) + 12 >= sizeof s.log_path) {  // room for ".PID"
      warn(s, "TRUNCGUARD_LOG is too long (%s); logging to stderr", v);
    } else {
      std::strcpy(s.log_path, v);
    }
  }
  return s;
}

}  // namespace tg
