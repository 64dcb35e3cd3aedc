// Escaping for anything the shim prints that it did not write itself: file
// names, setting values, process names. A newline or a terminal escape in a
// file name must not forge a log line or repaint the operator's terminal.
#pragma once

#include <cstddef>

namespace tg {

// Copies `in` into `out` with control characters, backslashes and bytes that are
// not valid UTF-8 escaped (\n, \t, \r, \\, \xHH). Truncates with "..." if out
// is too small; never cuts an escape in half. Returns the length written.
size_t escape(const char* in, char* out, size_t out_len);

}  // namespace tg
