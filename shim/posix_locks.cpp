#include "posix_locks.hpp"

#include <atomic>
#include <fcntl.h>
#include <sys/stat.h>

#include "sys.hpp"

namespace tg::posix_locks {
namespace {

// fd: -1 free, -2 being filled, else the parked fd (pid, dev, ino valid).
// pid: the process whose fd it is. A vfork child shares this table but not
// its parent's fds, and a fork child copies it: neither may close an fd by
// number for the other, and a slot of another process's is free to take.
struct Parked {
  std::atomic<int> fd{-1};
  pid_t pid = 0;
  dev_t dev = 0;
  ino_t ino = 0;
};
constexpr int kSlots = 64;
Parked g_parked[kSlots];
std::atomic<int> g_count{0};

// Is a POSIX lock (or an OFD lock) held on fd's file? F_OFD_GETLK asks as
// another owner (this open file description), so the process's own POSIX
// locks conflict with it and are reported. In doubt (an error), yes.
bool locked(int fd) {
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (sys::call(SYS_fcntl, fd, F_OFD_GETLK, &fl) < 0) return true;
  return fl.l_type != F_UNLCK;
}

}  // namespace

void close_own(int fd) {
  if (fd < 0) return;
  if (!locked(fd)) {
    sys::close(fd);
    return;
  }
  struct stat st;
  if (sys::fstat(fd, &st) != 0) return;  // no identity to release it by: it stays open
  const pid_t me = sys::getpid();
  for (Parked& p : g_parked) {
    int was = p.fd.load(std::memory_order_acquire);
    if (was == -2 || (was >= 0 && p.pid == me)) continue;
    if (p.fd.compare_exchange_strong(was, -2, std::memory_order_acquire)) {
      if (was == -1) g_count.fetch_add(1, std::memory_order_relaxed);
      p.pid = me;
      p.dev = st.st_dev;
      p.ino = st.st_ino;
      p.fd.store(fd, std::memory_order_release);
      return;
    }
  }
  // No slot: the fd stays open until the process ends. One fd is cheaper
  // than another process taking the lock.
}

bool any_parked() { return g_count.load(std::memory_order_relaxed) > 0; }

void program_closed(dev_t dev, ino_t ino) {
  const pid_t me = sys::getpid();
  for (Parked& p : g_parked) {
    int fd = p.fd.load(std::memory_order_acquire);
    if (fd < 0 || p.pid != me || p.dev != dev || p.ino != ino) continue;
    if (p.fd.compare_exchange_strong(fd, -1, std::memory_order_acq_rel)) {
      g_count.fetch_sub(1, std::memory_order_relaxed);
      sys::close(fd);
    }
  }
}

}  // namespace tg::posix_locks
