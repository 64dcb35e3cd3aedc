// The program's POSIX record locks (fcntl F_SETLK, lockf) belong to the
// process and the inode, and ANY close() of ANY fd on that inode releases
// them all (POSIX; fs/locks.c locks_remove_posix). The guard opens the file
// to read its header and closes that fd: a program that held a lock on the
// file it was opening again (a second SQLite connection, a daemon's pidfile
// it rewrites) lost it, and another process could take it. So an fd of the
// guard's own on a file that may hold such locks is not closed but kept
// ("parked") until the program itself closes an fd on that inode, which
// releases the locks anyway.
#pragma once

#include <sys/types.h>

#include <atomic>

namespace tg::posix_locks {

// From the constructor: the table belongs to this process, and after fork to
// the child (a vfork child, sharing the memory, never touches it).
void install_fork_handler();

// Is a POSIX lock (or an OFD lock) held on fd's file, by anyone? In doubt
// (an error), yes.
bool locked(int fd);

// Closes fd (the guard's own, on a file the program may lock), or parks it
// when a POSIX lock is held on its file (by anyone: the kernel reports the
// first it finds, so one of this process's may hide behind another's).
void close_own(int fd);

// A parked fd on (dev, ino), lent to the guard to read the file through
// instead of opening it again (each such open would have to be parked too:
// a daemon that rewrites a file it keeps locked gained an fd per write), or
// -1. It goes back with close_own().
int borrow(dev_t dev, ino_t ino);

namespace detail {
extern std::atomic<int> g_count;     // fds parked
extern std::atomic<pid_t> g_owner;   // the process whose fds the table holds (0: not yet known)
bool mine();                         // this process is g_owner (not a vfork child sharing its memory)
}  // namespace detail

// True if any fd is parked: the program's close() then looks up its file.
// Inline: every close() of the program asks it.
inline bool any_parked() {
  return detail::g_count.load(std::memory_order_relaxed) > 0 && detail::mine();
}

// The program closed an fd on (dev, ino): its locks there are gone, so the
// fds parked on that file are closed too.
void program_closed(dev_t dev, ino_t ino);

// The most fds ever parked at once.
constexpr int kMaxParked = 64;

// Is `fd` one of ours, parked (not lent)? The program's close of that number
// (a loop closing every fd above its own) must not close it: that released
// the program's locks on the file, which it still held through its own fd.
bool is_parked(int fd);

// dup2/dup3 onto `fd`: if it is parked, it is no longer ours (not closed here:
// the dup replaces it). Returns what was forgotten (fd -1: nothing), for
// unforget() when the dup fails: a failed dup2/dup3 closes nothing, and the
// kept fd, forgotten, was closed by the program's next close of that number
// (which fails EBADF without truncguard), releasing its locks.
struct Forgotten {
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
};
Forgotten forget(int fd);
void unforget(const Forgotten& f);

// close_range/closefrom: the parked fds in [first, last] (still ours), in
// ascending order, at most `max`. The caller leaves them open, for the same
// reason. Returns how many.
int parked_in(unsigned first, unsigned last, int* out, int max);

// execve: the kept fds are close-on-exec, and the kernel's close of one at
// the exec released the locks the program keeps across it through its own
// fd (POSIX locks survive an exec: a daemon that rewrote the pidfile it
// keeps locked, then re-executed itself, lost its lock). So before the exec
// each kept fd on a file still locked loses FD_CLOEXEC, and its file offset
// (never used: the shim reads with pread) is set to a random mark. With
// `hand_over`, returns the entry "TRUNCGUARD_KEPT_FDS=MARK:FD,DEV,INO:..."
// for the new image's environment (nullptr: none), which takes each such fd
// back as its own kept fd, or closes it when no lock is left on the file;
// only an fd at the mark, on that file, is taken: never one the new image
// owns. Nothing in a vfork child (its fds hold none of the parent's locks).
const char* exec_begins(bool hand_over);
// The exec failed: the kept fds are close-on-exec again.
void exec_failed();
// The new image (from the constructor, after install_fork_handler).
void adopt_from_environment();
constexpr char kEnvName[] = "TRUNCGUARD_KEPT_FDS";

}  // namespace tg::posix_locks
