// Logging in the style of glibc's LD_DEBUG: "%10d:\t" then the message,
// one write(2) per line, to stderr or to TRUNCGUARD_LOG.PID.
#pragma once

#include <cstddef>
#include <sys/types.h>

#include "escape.hpp"
#include "settings.hpp"

namespace tg::log {

// Takes the categories and the destination from the settings.
void configure(const Settings& s);
bool enabled(unsigned category);

// Writes one line; the PID prefix and the newline are added here.
void line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Writes the libunwind backtrace of the caller, frames inside the shim skipped.
void backtrace();

// Pure helpers (unit tested).
// "%10d:\t" into buf; returns its length.
size_t format_prefix(char* buf, size_t len, pid_t pid);
using tg::escape;  // escape.hpp: file names in log lines

// Printing an escaped path: `char buf[kPathBuf]; log::escape(p, buf, sizeof buf)`.
constexpr size_t kPathBuf = 1536;

}  // namespace tg::log
