// Logging in the style of glibc's LD_DEBUG: "%10d:\t" then the message,
// one write(2) per line, to stderr or to TRUNCGUARD_LOG.PID.
#pragma once

#include <cstddef>
#include <sys/types.h>

#include "escape.hpp"
#include "settings.hpp"

namespace tg::log {

// Takes the categories and the destination from the settings, which must
// live as long as the process (the destination is not copied).
void configure(const Settings& s);
bool enabled(unsigned category);

// Writes one line; the PID prefix and the newline are added here. For
// text that is not an Event: warnings, TRUNCGUARD_DEBUG=help.
void line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// What the guard has to say, in one structure, printed as an LD_DEBUG-style
// line or (TRUNCGUARD_LOG_FORMAT=json) as one JSON object per line.
enum class EventKind {
  decision, replaced, would_replace, published, cannot_protect, note, warning,
  binding,       // category bindings: glibc's LD_DEBUG=bindings line for a dlsym (or, audit, a PLT binding)
  lookup_error,  // category bindings: glibc's line for a dlsym that found nothing
  dl_call,       // category files: a dlopen, dlsym or dlclose, or (audit) a real load or unload
};

struct Mapper {
  pid_t pid;
  char comm[32];  // raw, escaped when printed
};

struct Event {
  EventKind kind;
  const char* file = nullptr;    // as the program named it (raw)
  const char* entry = nullptr;   // the libc function called
  bool act = false;              // decision: act or pass
  const char* reason = nullptr;  // decision: why; replaced: why it counted as in use
  const char* mode = nullptr;
  unsigned long old_ino = 0, new_ino = 0;
  long long kept_bytes = 0;      // bytes of the old content the new inode starts with
  const char* who = nullptr;     // text form of who maps it (already escaped)
  const Mapper* mappers = nullptr;
  int mapper_count = 0;          // entries in `mappers`
  int mapper_total = 0;          // processes found (may exceed mapper_count)
  bool by_self = false;
  int uninspected = 0;
  bool outside_pid_ns = false;   // the processes outside this PID namespace were not seen
  long scan_age_ms = -1;         // the who-maps-it answer came from a snapshot this old (-1: fresh)
  const char* step = nullptr;    // cannot_protect: what could not be done
  int error = 0;                 // cannot_protect: its errno
  bool truncating_anyway = false;
  bool restored_old = false;
  const char* kept_aside = nullptr;  // cannot_protect, mode unlink: the old file could not be put back
  int putback_error = 0;             // (why), and is kept under this name in its directory
  bool incomplete_at_name = false;   // (while the name holds the new file, incomplete)
  const char* note = nullptr;    // note: a stable key (hard_links, symlink, owner, xattrs)
  const char* message = nullptr; // note, warning: the sentence (no raw user data); published: what ended it;
                                 // cannot_protect: what happens instead, if not the fallback
  // binding, lookup_error, dl_call. Names of objects as glibc spells them
  // (the program's own: its argv[0]); `file` is the object looked in / opened.
  long ns = -1;                  // namespace of `file` (-1: none, e.g. RTLD_DEFAULT)
  const char* symbol = nullptr;
  const char* version = nullptr; // dlvsym's version, or the reference's
  bool protected_ref = false;    // binding: the reference is STV_PROTECTED
  const char* to = nullptr;      // binding: the defining object; dl_call: where the symbol is
  long to_ns = -1;
  const char* call = nullptr;    // dl_call: dlopen, dlsym, dlclose, load, unload
  const char* caller = nullptr;  // dl_call: the object that made the call
  long caller_ns = -1;
  const char* detail = nullptr;  // dl_call: dlopen's mode; dlclose's outcome
  int opens = -1;                // dl_call: opens seen without a matching close (-1: unknown)
  int already_open = -1;         // dlopen, before glibc runs: the opens of that object without a close (-1: unknown)
};
void emit(const Event& e);
bool json();

// Lines for stderr never go into a file the shim is making or publishing.
// A program that closed fd 2 and then opened a library in use got the new
// inode at that number (close(2), then open(); a daemon's close(0..2), then
// its opens): "stderr" is the library then, and a line written there would
// be part of it. So a line for stderr is dropped (as on a closed fd 2):
// - while a KeepOutOf(fd) lives on this thread and `fd` is 2: the new fd
//   the guard reports on, the fd whose close publishes, the program's fd a
//   write goes through (its ftruncate, an O_RDWR open's own fd);
// - while fd 2 is one of this process's files pending publication;
// - while fd 2 holds the file the shim last gave the program at that number
//   (made_at_fd): the library replaced there, once its write has returned
//   (modes replace, unlink), until the program puts another file at fd 2.
//   A program exec'ed with that fd 2 does not know it.
class KeepOutOf {
 public:
  explicit KeepOutOf(int fd);
  ~KeepOutOf();
  KeepOutOf(const KeepOutOf&) = delete;
  KeepOutOf& operator=(const KeepOutOf&) = delete;

 private:
  bool was_;
};

// The shim gave the program `fd` on a new file it made; see above.
void made_at_fd(int fd);

// A note event: `key` is its stable JSON name, `message` the sentence.
void note(const char* file, const char* key, const char* message);

// Writes the libunwind backtrace of the caller, frames inside the shim skipped.
// libunwind is loaded (dlopen) the first time, or early by load_unwinder().
void backtrace();
// Loads libunwind now (the constructor does, when the backtrace category is
// on, so the first backtrace doesn't dlopen inside a write); false: unavailable.
bool load_unwinder();

// Pure helpers (unit tested).
// The text of a binding / lookup_error event, without the prefix: the line
// glibc's LD_DEBUG=bindings prints (elf/dl-lookup.c, _dl_debug_bindings;
// elf/dl-error-skeleton.c for a failed lookup). Returns its length.
size_t format_binding(char* buf, size_t len, const Event& e);
size_t format_lookup_error(char* buf, size_t len, const Event& e);
// "%10d:\t" into buf; returns its length.
size_t format_prefix(char* buf, size_t len, pid_t pid);
using tg::escape;  // escape.hpp: file names in log lines

// Printing an escaped path: `char buf[kPathBuf]; log::escape(p, buf, sizeof buf)`.
constexpr size_t kPathBuf = 1536;

}  // namespace tg::log
