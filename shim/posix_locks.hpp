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

namespace tg::posix_locks {

// From the constructor: the table belongs to this process, and after fork to
// the child (a vfork child, sharing the memory, never touches it).
void install_fork_handler();

// Closes fd (the guard's own, on a file the program may lock), or parks it
// when a POSIX lock is held on its file (by anyone: the kernel reports the
// first it finds, so one of this process's may hide behind another's).
void close_own(int fd);

// A parked fd on (dev, ino), lent to the guard to read the file through
// instead of opening it again (each such open would have to be parked too:
// a daemon that rewrites a file it keeps locked gained an fd per write), or
// -1. It goes back with close_own().
int borrow(dev_t dev, ino_t ino);

// True if any fd is parked: the program's close() then looks up its file.
bool any_parked();

// The program closed an fd on (dev, ino): its locks there are gone, so the
// fds parked on that file are closed too.
void program_closed(dev_t dev, ino_t ino);

}  // namespace tg::posix_locks
