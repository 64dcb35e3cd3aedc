// POSIX record locks as the unit tests take and check them (shared by the
// tests of the guard's parked fds and of the write lease).
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace tg::unit {

// Could another process take a write lock on the file?
inline bool locked_for_others(const std::string& path) {
  pid_t c = fork();
  if (c == 0) {
    int fd = open(path.c_str(), O_RDWR);
    struct flock fl = {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    _exit(fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0 ? 0 : 1);
  }
  int st = 0;
  waitpid(c, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 1;
}

// An fd on `path` (created) through which this process holds a write lock on all of it.
inline int open_locked(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT, 0644);
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (fd >= 0 && fcntl(fd, F_SETLK, &fl) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace tg::unit
