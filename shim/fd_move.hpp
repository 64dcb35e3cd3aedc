#pragma once
// Moving the program's fd to the new inode (ftruncate, F_SETFL, pwritev2,
// fallocate, freopen(NULL) of a library in use): its open file description
// is the program's, and what the program set on it goes with the fd.

#include <sys/stat.h>

namespace tg {

// What a move did, for the log.
struct FdMove {
  int sharers_moved = 0;   // the program's other fds on the same description, moved too
  bool sharers_unknown = false;  // they could not be looked for (no kcmp, no /proc)
  int sharers_missed = 0;  // found, but more than could be held, or closed meanwhile: left on the old file
  int locks_carried = 0;   // flock, OFD and POSIX locks taken again on the new file
  int locks_lost = 0;      // ...that could not be (someone took a conflicting one first)
  bool fd_gone = false;    // the caller's fd number no longer named the old file (another thread closed it)
  int no_memory = 0;       // the errno of mapping the memory to look in /proc with: nothing but fd moved
};

// Moves `fd` (on the file `old`) and every other fd of this thread's table on
// its open file description (dup, dup2, F_DUPFD) to `made`, an fd on the new
// inode: each keeps its number and close-on-exec bit; they share one new
// description, with fd's offset, and the F_SETOWN owner, F_SETSIG signal and
// locks (flock, OFD, this process's POSIX locks) taken through fd. `made` is
// closed. Returns 0, or -errno where fd could not be moved (it then still
// names the old file, or, `fd_gone`, no longer the old file at all). Its
// working memory (10 KiB) is mapped, not on the caller's stack.
int move_fd(int fd, const struct stat& old, int made, FdMove* out);

}  // namespace tg
