// The one way in: every intercepted call becomes a WriteIntent and gets an Outcome.
#pragma once

#include <sys/types.h>

#include "settings.hpp"

namespace tg {

enum class WriteKind {
  truncate_open,  // open/fopen/creat with O_TRUNC: the content goes
  in_place_open,  // open for writing without O_TRUNC: the content is changed in place
  truncate_path,  // truncate(2) to new_length
  truncate_fd,    // ftruncate(2) of fd to new_length
  in_place_fd,    // an append-only fd about to write anywhere (fcntl F_SETFL, pwritev2, fallocate)
};

// The kinds that name the file by an fd (whose fd the guard swaps onto the new inode).
inline bool on_fd(WriteKind k) { return k == WriteKind::truncate_fd || k == WriteKind::in_place_fd; }

struct WriteIntent {
  const char* entry;   // the libc function called, for the log ("open", "fopen"...)
  WriteKind kind;
  int dirfd;           // AT_FDCWD or a directory fd (opens, truncate)
  const char* path;    // (opens, truncate)
  int fd;              // (ftruncate, in_place_fd; an O_RDWR open: the program's new fd, read through by looked_at_keeping's look, else -1)
  int flags;           // open(2) flags (truncate: O_WRONLY)
  off_t new_length;    // truncate/ftruncate's length
};

struct Outcome {
  // pass_if_absent: the name was missing (or changed) when checked; the real
  // call must not truncate what may have appeared since (see guarded_open).
  enum Kind { pass, replaced, fail, pass_if_absent } kind;
  int value;  // replaced: the new fd (opens); fail: the errno to return
};

// Settings, read once from the environment (safe before constructors run).
const Settings& settings();

// Called only for calls that may write; decides and acts. Never throws,
// never changes errno unless it returns `fail`.
Outcome guard_write(const WriteIntent& in);

// An open for reading and writing without O_TRUNC (SQLite's, a shell's
// `1<>`), looked at after the real open through the program's own new fd:
// true if the file is plainly not code (not a regular file, empty, shorter
// than an ELF header, a kernel interface file, no ELF magic), logged as
// guard_write logs a pass. False where it may be code: the caller then
// closes fd (close_opened_again) and takes guard_write's way. Leaves errno
// and fd's flags as they were.
bool settled_after_open(const WriteIntent& in, int fd);

// The real open of such an open failed with `error`: the decisions log says
// why nothing was looked at, as guard_write's look by name said (the kernel's
// answer gives the reason). Leaves errno as it was.
void open_failed(const WriteIntent& in, int error);

// Closes an fd that settled_after_open could not settle, without taking the
// program's POSIX locks on its file with it.
void close_opened_again(int fd);

// Closes such an fd where no POSIX lock is held on its file (true), as
// close_opened_again does, with one F_OFD_GETLK; else leaves it open (false),
// for looked_at_keeping.
bool closed_unless_locked(int fd);

// Such an fd on a file a POSIX lock is held on (posix_locks::locked), which
// could only be kept (parked), not closed: it stays open while the file is
// looked at by name (guard_write), and is the open's answer where that lets
// the open pass and the name still reaches fd's file (else fd is closed and
// the answer is kLookAgain: the caller opens by name as for other writes).
// Else (replaced, failed) it is closed as close_opened_again does, and the
// answer is guard_write's (errno set where it fails).
constexpr int kLookAgain = -2;
int looked_at_keeping(const WriteIntent& in, int fd);

// True when guarded calls are nested too deep on this thread (a signal
// handler interrupting a signal handler interrupting the shim): pass through.
bool in_guard();

}  // namespace tg
