#pragma once
// Moving the program's fd to the new inode (ftruncate, F_SETFL, pwritev2,
// fallocate, freopen(NULL) of a library in use): its open file description
// is the program's, and what the program set on it goes with the fd.
//
// replace_file moves it before the new file takes the name (so that a move
// that fails leaves the name with the old file), and puts it back if the
// rename then fails: move_fd, then move_fd_back or, once every fd of the
// shim's on the new file is closed, move_fd_done.

#include <sys/stat.h>
#include <sys/types.h>

#include "fdinfo_locks.hpp"

namespace tg {

constexpr int kMaxFdSharers = 64;
constexpr int kMaxFdLocks = 32;

// Mapped working memory (guard.cpp's ActingMemory): no initialisers, set by the caller.
struct FdMove {
  // In: the caller's fd on the old file `old`, and an fd of the shim's on the
  // same description that is not one of the program's dups (-1: none).
  int fd;
  struct stat old;
  int own_dup;

  // Out, for the log.
  int sharers_moved;     // the program's other fds on the same description, moved too
  int sharers_unknown;   // the errno where they could not be looked for (no kcmp, no /proc, no fd free), else 0
  const char* sharers_step;  // ...and what failed: "kcmp", "/proc/thread-self/fd", "memory"
  int sharers_missed;    // found, but more than could be held, or closed meanwhile: left on the old file
  int locks_carried;     // flock, OFD and POSIX locks taken again on the new file
  int locks_lost;        // ...that could not be (someone took a conflicting one first)
  int locks_unknown;     // the errno of reading them (fdinfo: EMFILE...): any POSIX lock is released
  bool fd_gone;          // the caller's fd number no longer named the old file (another thread closed it)

  // Between move_fd and move_fd_back / move_fd_done.
  int sharers[kMaxFdSharers];
  bool sharer_cloexec[kMaxFdSharers];
  FdLock posix[kMaxFdLocks];  // POSIX locks: the process's, taken again only after the shim's fds are closed
  int posix_count;
};

// Moves m->fd and every other fd of this thread's table on its open file
// description (dup, dup2, F_DUPFD; not m->own_dup) to `made`, an fd on the
// new inode, which stays open: each keeps its number and close-on-exec bit;
// they share one new description, with fd's offset, and the F_SETOWN owner,
// F_SETSIG signal and flock and OFD locks taken through fd. Returns 0, or
// -errno where fd could not be moved (it then still names the old file, and
// so do its dups; or, `fd_gone`, it no longer names the old file at all).
// Its working memory (8 KiB) is mapped, not on the caller's stack.
int move_fd(FdMove* m, int made);

// After a failed rename: m->fd and the dups moved with it go back to
// `saved`, an fd on the old description. 0 or -errno (m->fd's).
int move_fd_back(FdMove* m, int saved);

// Once the shim's own fds on the file m->fd is on are closed (their close
// would release them): the POSIX locks held through fd, which its move off
// the old file released (any close of an fd on a file releases the process's
// POSIX locks there), are taken again through it. Where the move stands, on
// the new file; where it failed or went back (move_fd's failure, move_fd_back),
// on the old one again. Nothing where fd was no longer the program's (fd_gone).
void move_fd_done(FdMove* m);

}  // namespace tg
