// The one way in: every intercepted call becomes a WriteIntent and gets an Outcome.
#pragma once

#include <sys/types.h>

#include "settings.hpp"

namespace tg {

struct WriteIntent {
  const char* entry;   // the libc function called, for the log ("open", "fopen"...)
  int dirfd;           // AT_FDCWD or a directory fd
  const char* path;
  int flags;           // open(2) flags (truncate(2): O_WRONLY)
  off_t new_length;    // truncate(2)'s length; -1 for O_TRUNC opens
};

struct Outcome {
  enum Kind { pass, replaced, fail } kind;
  int value;  // replaced: the new fd; fail: the errno to return
};

// Settings, read once from the environment (safe before constructors run).
const Settings& settings();

// Called only for calls that may truncate; decides and acts. Never throws,
// never changes errno unless it returns `fail`.
Outcome guard_write(const WriteIntent& in);

// Per-thread re-entry guard: the shim's own work never comes back through it.
bool in_guard();

}  // namespace tg
