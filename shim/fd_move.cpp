#include "fd_move.hpp"

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/file.h>

#include "scratch.hpp"
#include "sys.hpp"

namespace tg {
namespace {

// kcmp(KCMP_FILE): 0 when both fds of this thread's table are one open file
// description; -errno where the kernel can't tell (no CONFIG_KCMP: ENOSYS; a
// seccomp filter: EPERM). By thread id: a thread that unshared its table
// (CLONE_FILES) has its own.
long same_file(pid_t tid, int a, int b) { return sys::call(SYS_kcmp, tid, tid, KCMP_FILE, a, b); }

using Lock = FdLock;
constexpr int kMaxLocks = kMaxFdLocks;

struct FdMoveMemory {
  char buf[8192];  // a directory listing, an fdinfo
  Lock locks[kMaxLocks];
};

// The fds of this thread's table other than `fd` (and `own`, the shim's) on
// its open file description. 0, or where they can't be looked for the errno,
// and in *step what failed.
int find_sharers(int fd, int made, int own, pid_t tid, FdMoveMemory* mem, int* sharers, int* count, int* missed,
                 const char** step) {
  *count = 0;
  *step = "kcmp";  // (no kcmp here: ENOSYS; a seccomp filter: EPERM)
  if (const long k = same_file(tid, fd, fd); k != 0) return k < 0 ? static_cast<int>(-k) : EIO;
  *step = "/proc/thread-self/fd";  // (no fd left: EMFILE; no /proc: ENOENT)
  const sys::Fd dir(sys::openat(AT_FDCWD, "/proc/thread-self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.ok()) return -dir.get();
  for (;;) {
    const long n = sys::getdents64(dir.get(), mem->buf, sizeof mem->buf);
    if (n < 0) return static_cast<int>(-n);
    if (n == 0) return 0;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(mem->buf + off);
      off += d->d_reclen;
      int other = 0;
      const char* p = d->d_name;
      if (*p < '0' || *p > '9') continue;
      for (; *p >= '0' && *p <= '9'; ++p) other = other * 10 + (*p - '0');
      if (other == fd || other == made || other == own || other == dir.get()) continue;
      if (same_file(tid, fd, other) != 0) continue;
      if (*count < kMaxFdSharers) sharers[(*count)++] = other;
      else ++*missed;
    }
  }
}

// The locks taken through fd's description, as its fdinfo lists them
// (parse_fdinfo_locks). Leases are not locks the program can take again here
// (a write lease passes the write unexamined; a read lease needs a read-only
// fd): not listed.
int read_locks(int fd, FdMoveMemory* mem, Lock* locks, int* lost, int* unknown) {
  char path[48];
  sys::proc_fd_path("/proc/thread-self/fdinfo/", fd, path, sizeof path);
  const sys::Fd info(sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC));
  if (!info.ok()) {
    *unknown = -info.get();  // (no fd left: EMFILE; no /proc)
    return 0;
  }
  long n = 0, r = 0;
  while (n < static_cast<long>(sizeof mem->buf) - 1 &&
         (r = sys::read(info.get(), mem->buf + n, sizeof mem->buf - 1 - n)) > 0)
    n += r;
  if (n <= 0) {
    *unknown = r < 0 ? static_cast<int>(-r) : EIO;  // (an fdinfo has at least its pos: line)
    return 0;
  }
  // A listing cut short by the buffer (hundreds of locks): its last line,
  // cut, is not read, and the rest are lost.
  const bool cut = n == static_cast<long>(sizeof mem->buf) - 1;
  return parse_fdinfo_locks(mem->buf, static_cast<size_t>(n), cut, locks, kMaxLocks, lost);
}

bool take_lock(int fd, const Lock& l) {
  if (l.kind == Lock::flock)
    return sys::call(SYS_flock, fd, (l.type == F_WRLCK ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0;
  struct flock fl {};
  fl.l_type = l.type;
  fl.l_whence = SEEK_SET;
  fl.l_start = l.start;
  fl.l_len = l.len;
  return sys::call(SYS_fcntl, fd, l.kind == Lock::ofd ? F_OFD_SETLK : F_SETLK, &fl) == 0;
}

bool cloexec(int fd) {
  const long fdflags = sys::call(SYS_fcntl, fd, F_GETFD);
  return fdflags > 0 && (fdflags & FD_CLOEXEC);
}

int dup_onto(int from, int fd, bool cloexec) { return sys::dup3_onto(from, fd, cloexec ? O_CLOEXEC : 0); }

// The program's fd was closed by another thread meanwhile, or its number
// given to another file: nothing to move, and no lock of it to take back.
int fd_gone(FdMove* m) {
  m->fd_gone = true;
  m->posix_count = 0;  // (the number is no longer the program's fd on the file)
  return -EBADF;
}

}  // namespace

int move_fd(FdMove* m, int made) {
  const int fd = m->fd;
  Scratch<FdMoveMemory> mem;
  const pid_t tid = static_cast<pid_t>(sys::call(SYS_gettid));
  // Per description, read from the old one before any fd leaves it.
  struct f_owner_ex owner {};
  if (sys::call(SYS_fcntl, fd, F_GETOWN_EX, &owner) == 0 && owner.pid != 0)
    sys::call(SYS_fcntl, made, F_SETOWN_EX, &owner);
  if (const long sig = sys::call(SYS_fcntl, fd, F_GETSIG); sig > 0) sys::call(SYS_fcntl, made, F_SETSIG, sig);
  const int nlocks = mem ? read_locks(fd, mem.get(), mem->locks, &m->locks_lost, &m->locks_unknown) : 0;
  if (!mem) m->locks_unknown = mem.error();
  // flock and OFD locks belong to the description: taken on `made` now
  // (the new file is only ours), they stay with it. POSIX locks, the
  // process's, wait for move_fd_done.
  m->posix_count = 0;
  for (int i = 0; i < nlocks; ++i) {
    const Lock& l = mem->locks[i];
    if (l.kind == Lock::posix) m->posix[m->posix_count++] = l;
    else if (take_lock(made, l)) ++m->locks_carried;
    else ++m->locks_lost;
  }
  // The offset must go with it: an fd moved at offset 0 instead of the
  // program's writes its next bytes over the start of the new file. Where it
  // can't be read or set (a seccomp filter), the fd does not move. (After
  // the locks are read: the POSIX ones, released on the old file by the
  // shim's own fds' close meanwhile, are then taken again there.)
  const long off = sys::call(SYS_lseek, fd, 0L, SEEK_CUR);
  if (off < 0)  // (closed by another thread meanwhile, or its number given to a pipe: gone, as below)
    return sys::refers_to(fd, m->old.st_dev, m->old.st_ino) ? static_cast<int>(off) : fd_gone(m);
  if (off > 0) {
    const long set = sys::call(SYS_lseek, made, off, SEEK_SET);
    if (set != off) return set < 0 ? static_cast<int>(set) : -EIO;
  }
  int count = 0;
  m->sharers_step = "memory";  // (to look in /proc with: nothing but fd moves)
  m->sharers_unknown = !mem ? (mem.error() ? mem.error() : ENOMEM)
                            : find_sharers(fd, made, m->own_dup, tid, mem.get(), m->sharers, &count,
                                           &m->sharers_missed, &m->sharers_step);
  if (!sys::refers_to(fd, m->old.st_dev, m->old.st_ino)) return fd_gone(m);
  // Each still on fd's description (another thread may have closed one and
  // reused its number meanwhile): onto the new one, fd itself last. A fd
  // that can't move takes its dups back.
  m->sharers_moved = 0;
  for (int i = 0; i < count; ++i) {
    const int other = m->sharers[i];
    const bool ce = cloexec(other);
    if (same_file(tid, fd, other) == 0 && dup_onto(made, other, ce) >= 0) {
      m->sharers[m->sharers_moved] = other;
      m->sharer_cloexec[m->sharers_moved++] = ce;
    } else {
      ++m->sharers_missed;
    }
  }
  const int r = dup_onto(made, fd, cloexec(fd));
  if (r < 0) {
    for (int i = 0; i < m->sharers_moved; ++i) dup_onto(fd, m->sharers[i], m->sharer_cloexec[i]);
    m->sharers_missed += m->sharers_moved;
    m->sharers_moved = 0;
    return r;
  }
  return 0;
}

int move_fd_back(FdMove* m, int saved) {
  for (int i = 0; i < m->sharers_moved; ++i) dup_onto(saved, m->sharers[i], m->sharer_cloexec[i]);
  m->sharers_moved = 0;
  // (The POSIX locks, released on the old file by the move, wait for
  // move_fd_done too: `saved`'s close would release them again.)
  const int r = dup_onto(saved, m->fd, cloexec(m->fd));
  return r < 0 ? r : 0;
}

void move_fd_done(FdMove* m) {
  for (int i = 0; i < m->posix_count; ++i) {
    if (take_lock(m->fd, m->posix[i])) ++m->locks_carried;
    else ++m->locks_lost;
  }
  m->posix_count = 0;
}

}  // namespace tg
