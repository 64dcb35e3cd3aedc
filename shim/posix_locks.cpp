#include "posix_locks.hpp"

#include <atomic>
#include <fcntl.h>
#include <pthread.h>
#include <cstdio>
#include <sys/auxv.h>
#include <sys/stat.h>

#include "pending.hpp"
#include "sys.hpp"

namespace tg::posix_locks {

namespace detail {
std::atomic<int> g_count{0};
std::atomic<pid_t> g_owner{0};
}  // namespace detail

namespace {
using detail::g_count;
using detail::g_owner;

// fd: -1 free, -2 being filled, kLent while `lent` is in the guard's hands
// (borrow), else the parked fd (dev, ino valid).
constexpr int kLent = -3;
struct Parked {
  std::atomic<int> fd{-1};
  std::atomic<int> lent{-1};  // set by the borrower once it holds the slot
  dev_t dev = 0;
  ino_t ino = 0;
};
constexpr int kSlots = kMaxParked;
Parked g_parked[kSlots];
// g_count (posix_locks.hpp): the fds parked.
// The process whose fds the table holds. A vfork child shares this memory but
// has its own fd table: its close of the locked file (python's subprocess
// closes every fd before exec) freed the parent's slot and closed the child's
// copy, and the parent's fd was never closed again (one fd more per child).
// A forked child gets its own copy of both: on_fork_child makes it its own.
// (g_owner, in posix_locks.hpp: read by the inline any_parked.)
using detail::mine;

// fork: the child's copies of the parked fds hold none of the parent's locks
// (POSIX locks are not inherited): closed, and the table is the child's.
void on_fork_child() {
  for (Parked& p : g_parked) {
    const int fd = p.fd.exchange(-1, std::memory_order_acq_rel);
    if (fd >= 0) sys::close(fd);
    p.lent.store(-1, std::memory_order_relaxed);
  }
  g_count.store(0, std::memory_order_relaxed);
  g_owner.store(sys::getpid(), std::memory_order_release);
}

// A slot whose fd the program closed behind our back (close_range,
// closefrom, a loop of close: the number may be its own file now) is
// forgotten, never read or closed. Called by the slot's holder (fd kLent).
bool still_ours(Parked& p, int fd) {
  if (sys::refers_to(fd, p.dev, p.ino)) return true;
  p.fd.store(-1, std::memory_order_release);
  g_count.fetch_sub(1, std::memory_order_relaxed);
  return false;
}

}  // namespace

// F_OFD_GETLK asks as another owner (this open file description), so the
// process's own POSIX locks conflict with it and are reported.
bool locked(int fd) {
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (sys::call(SYS_fcntl, fd, F_OFD_GETLK, &fl) < 0) return true;
  return fl.l_type != F_UNLCK;
}

void install_fork_handler() {
  g_owner.store(sys::getpid(), std::memory_order_release);
  pthread_atfork(nullptr, nullptr, &on_fork_child);
}

int borrow(dev_t dev, ino_t ino) {
  // Nothing kept (the common case): no getpid, no walk of the table.
  if (g_count.load(std::memory_order_relaxed) == 0 || !mine()) return -1;
  for (Parked& p : g_parked) {
    int fd = p.fd.load(std::memory_order_acquire);
    if (fd < 0 || p.dev != dev || p.ino != ino) continue;
    if (p.fd.compare_exchange_strong(fd, kLent, std::memory_order_acq_rel)) {
      if (!still_ours(p, fd)) continue;
      p.lent.store(fd, std::memory_order_release);
      return fd;
    }
  }
  return -1;
}

void close_own(int fd) {
  if (fd < 0) return;
  // Nothing kept or lent, and no lock on the file (the common case): closed,
  // with no getpid and no walk of the table.
  if (g_count.load(std::memory_order_relaxed) == 0 && !locked(fd)) {
    sys::close(fd);
    return;
  }
  if (!mine()) {  // a vfork child: the table is its parent's
    if (!locked(fd)) sys::close(fd);
    return;
  }
  // A lent fd goes back to its slot while a lock is still held (else the
  // program's close released them meanwhile: it is closed below).
  for (Parked& p : g_parked) {
    if (p.fd.load(std::memory_order_acquire) != kLent || p.lent.load(std::memory_order_acquire) != fd) continue;
    p.lent.store(-1, std::memory_order_relaxed);
    if (locked(fd)) {
      p.fd.store(fd, std::memory_order_release);
      return;
    }
    p.fd.store(-1, std::memory_order_release);
    g_count.fetch_sub(1, std::memory_order_relaxed);
    sys::close(fd);
    return;
  }
  if (!locked(fd)) {
    sys::close(fd);
    return;
  }
  struct stat st;
  const bool known = sys::fstat(fd, &st) == 0;
  for (Parked& p : g_parked) {
    int free_slot = -1;
    if (known && p.fd.compare_exchange_strong(free_slot, -2, std::memory_order_acquire)) {
      p.dev = st.st_dev;
      p.ino = st.st_ino;
      p.fd.store(fd, std::memory_order_release);
      g_count.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  // No slot (or no identity to release it by): the fd stays open until the
  // process ends. One fd is cheaper than another process taking the lock.
}

// (0: before the constructor ran, or a test that links the shim: no vfork yet.)
bool detail::mine() {
  const pid_t owner = g_owner.load(std::memory_order_acquire);
  return owner == 0 || owner == sys::getpid();
}

void program_closed(dev_t dev, ino_t ino) {
  if (!mine()) return;
  for (Parked& p : g_parked) {
    int fd = p.fd.load(std::memory_order_acquire);
    if (fd < 0 || p.dev != dev || p.ino != ino) continue;
    if (p.fd.compare_exchange_strong(fd, kLent, std::memory_order_acq_rel) && still_ours(p, fd)) {
      p.fd.store(-1, std::memory_order_release);
      g_count.fetch_sub(1, std::memory_order_relaxed);
      sys::close(fd);
    }
  }
}

bool is_parked(int fd) {
  if (fd < 0 || !any_parked()) return false;
  for (Parked& p : g_parked)
    if (p.fd.load(std::memory_order_acquire) == fd) return sys::refers_to(fd, p.dev, p.ino);
  return false;
}

Forgotten forget(int fd) {
  if (fd < 0 || !any_parked()) return {};
  for (Parked& p : g_parked) {
    int expected = fd;
    // Taken (-2, as a slot being filled) before it is freed: its identity is
    // read by no one else meanwhile.
    if (p.fd.compare_exchange_strong(expected, -2, std::memory_order_acq_rel, std::memory_order_acquire)) {
      const Forgotten f{fd, p.dev, p.ino};
      p.fd.store(-1, std::memory_order_release);
      g_count.fetch_sub(1, std::memory_order_relaxed);
      return f;
    }
  }
  return {};
}

void unforget(const Forgotten& f) {
  if (f.fd < 0 || !mine() || !sys::refers_to(f.fd, f.dev, f.ino)) return;
  for (Parked& p : g_parked) {
    int free_slot = -1;
    if (p.fd.compare_exchange_strong(free_slot, -2, std::memory_order_acquire, std::memory_order_relaxed)) {
      p.dev = f.dev;
      p.ino = f.ino;
      p.fd.store(f.fd, std::memory_order_release);
      g_count.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
}

int parked_in(unsigned first, unsigned last, int* out, int max) {
  if (!any_parked()) return 0;
  int n = 0;
  for (Parked& p : g_parked) {
    if (n == max) break;
    const int fd = p.fd.load(std::memory_order_acquire);
    if (fd < 0 || static_cast<unsigned>(fd) < first || static_cast<unsigned>(fd) > last) continue;
    if (!sys::refers_to(fd, p.dev, p.ino)) continue;  // closed behind our back: the program's number now
    int i = n++;
    for (; i > 0 && out[i - 1] > fd; --i) out[i] = out[i - 1];  // insertion, ascending
    out[i] = fd;
  }
  return n;
}

namespace {
// The entry handed to the new image (an exec may come from a thread with a
// small stack). Two threads exec'ing at once: the second hands nothing over.
TG_LARGE_TABLE char g_entry[sizeof kEnvName + 24 + kSlots * 64];
std::atomic<bool> g_entry_busy{false};

// Reads decimal digits at *p (at least one), up to `stop`.
bool read_number(const char** p, char stop, unsigned long long* out) {
  unsigned long long v = 0;
  const char* q = *p;
  for (; *q >= '0' && *q <= '9'; ++q) {
    if (v > (~0ULL - 9) / 10) return false;
    v = v * 10 + static_cast<unsigned long long>(*q - '0');
  }
  if (q == *p || *q != stop) return false;
  *p = q + 1;
  *out = v;
  return true;
}
}  // namespace

const char* exec_begins(bool hand_over) {
  if (!any_parked()) return nullptr;
  unsigned long long mark = 0;
  if (sys::getrandom(&mark, sizeof mark, 0x0001 /* GRND_NONBLOCK */) != sizeof mark)
    mark = static_cast<unsigned long long>(sys::getpid()) * 0x9e3779b97f4a7c15ULL ^ reinterpret_cast<uintptr_t>(&mark);
  mark = (1ULL << 32) + mark % (1ULL << 39);  // past any lock file
  // Within every kept file's filesystem's largest offset: an offset past it
  // (EINVAL: vfat's is 4 GiB, ext2's and ext3's with 1 KiB blocks 16 GiB) is
  // halved until each takes it, down to 1 MiB. (The fd was left close-on-exec
  // and not handed over: its close at the exec released the program's locks.)
  for (Parked& p : g_parked) {
    const int fd = p.fd.load(std::memory_order_acquire);
    if (fd < 0 || !sys::refers_to(fd, p.dev, p.ino) || !locked(fd)) continue;
    while (mark >= (2ULL << 20) && sys::call(SYS_lseek, fd, static_cast<long>(mark), SEEK_SET) == -EINVAL) mark >>= 1;
  }
  const bool write = hand_over && !g_entry_busy.exchange(true, std::memory_order_acquire);
  size_t n = 0;
  if (write) n = static_cast<size_t>(std::snprintf(g_entry, sizeof g_entry, "%s=%llu", kEnvName, mark));
  bool any = false;
  for (Parked& p : g_parked) {
    const int fd = p.fd.load(std::memory_order_acquire);
    if (fd < 0 || !sys::refers_to(fd, p.dev, p.ino) || !locked(fd)) continue;
    if (sys::call(SYS_lseek, fd, static_cast<long>(mark), SEEK_SET) < 0) continue;
    sys::call(SYS_fcntl, fd, F_SETFD, 0);
    if (write && n + 64 < sizeof g_entry) {
      n += static_cast<size_t>(std::snprintf(g_entry + n, sizeof g_entry - n, ":%d,%llu,%llu", fd,
                                             static_cast<unsigned long long>(p.dev),
                                             static_cast<unsigned long long>(p.ino)));
      any = true;
    }
  }
  if (write && !any) g_entry_busy.store(false, std::memory_order_release);
  return any ? g_entry : nullptr;
}

void exec_failed() {
  if (!any_parked()) return;
  for (Parked& p : g_parked) {
    const int fd = p.fd.load(std::memory_order_acquire);
    if (fd >= 0 && sys::refers_to(fd, p.dev, p.ino)) sys::call(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
  }
  g_entry_busy.store(false, std::memory_order_release);
}

void adopt_from_environment() {
  constexpr size_t kLen = sizeof kEnvName - 1;
  const char* v = pending::environ_value(kEnvName, kLen);
  if (!v) return;
  // Under secure execution the environment is the caller's: nothing taken
  // (the fds, if any, stay open, as without the entry).
  unsigned long long mark, fd, dev, ino;
  const char* p = v;
  if (!getauxval(AT_SECURE) && read_number(&p, ':', &mark)) {
    for (;;) {
      const char* q = p;
      if (!read_number(&q, ',', &fd) || !read_number(&q, ',', &dev)) break;
      const char* r = q;
      const bool last = read_number(&r, '\0', &ino);
      if (!last && !read_number(&q, ':', &ino)) break;
      if (fd <= 0x7fffffff && sys::refers_to(static_cast<int>(fd), static_cast<dev_t>(dev), static_cast<ino_t>(ino)) &&
          sys::call(SYS_lseek, static_cast<int>(fd), 0, SEEK_CUR) == static_cast<long>(mark)) {
        sys::call(SYS_lseek, static_cast<int>(fd), 0, SEEK_SET);
        sys::call(SYS_fcntl, static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
        close_own(static_cast<int>(fd));  // kept while a lock is held, else closed
      }
      if (last) break;
      p = q;
    }
  }
  pending::environ_remove(kEnvName, kLen);  // not for this program's own children
}

}  // namespace tg::posix_locks
