// Raw system calls for the shim's own file work.
//
// Why: the shim must never re-enter its own wrappers (or another preload's)
// while it inspects or replaces a file, and must work before constructors
// run and inside vfork children. Each helper returns the result or -errno and
// leaves the caller's errno alone, so "errors are values" all the way up.
#pragma once

#include <atomic>
#include <cerrno>
#include <dlfcn.h>
#include <cstdint>
#include <type_traits>
#include <ctime>
#include <csignal>
#include <cstddef>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

// A large zero-initialised table (kilobytes: records, pending groups, spare
// log memory), put after every small global. Start-up writes a dozen small
// globals; left between the tables they fell on 6 different .bss pages, each
// a page fault in every process (.lbss follows .bss in the same segment: no
// extra mapping). Not under ASan: a global in a section of its own gets no
// redzones. x86-64 only: elsewhere .lbss is no bss section (the compiler
// would write the tables' zeros into the file).
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define TG_LARGE_TABLE __attribute__((section(".lbss.tg")))
#else
#define TG_LARGE_TABLE
#endif

namespace tg::sys {

// One system call, made here and not through libc's syscall(): the shim
// interposes syscall() itself (a program's syscall(SYS_close, fd) must
// publish in atomic mode: interpose.cpp), and its own calls must not pass
// through that. Returns the result or -errno; errno is never touched.
inline long raw(long nr, long a, long b, long c, long d, long e, long f) {
#if defined(__x86_64__)
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long r;
  __asm__ volatile("syscall"
                   : "=a"(r)
                   : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return r;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = nr;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
#else
  // Not through ::syscall, which is the shim's own (it would route SYS_openat
  // & co. back into the guard): the next one, glibc's.
  using SyscallFn = long (*)(long, ...);
  static constinit std::atomic<SyscallFn> next{nullptr};
  SyscallFn fn = next.load(std::memory_order_acquire);
  if (!fn) next.store(fn = reinterpret_cast<SyscallFn>(dlsym(RTLD_NEXT, "syscall")), std::memory_order_release);
  const int saved = errno;
  long r = fn(nr, a, b, c, d, e, f);
  if (r < 0) r = -errno;
  errno = saved;
  return r;
#endif
}

// An argument as the kernel takes it: a register's worth.
template <typename T>
inline long arg(T v) {
  if constexpr (std::is_null_pointer_v<T>) return 0;
  else if constexpr (std::is_pointer_v<T>) return reinterpret_cast<long>(v);
  else return static_cast<long>(v);
}

// A kernel result in libc's convention, as glibc's syscall() gives it: -4095
// to -1 are errors (-1 and errno), anything else (an mmap address with the
// top bit set) is a result.
inline long with_errno(long r) {
  if (r < 0 && r > -4096) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}

// One syscall, errno preserved, failure returned as -errno.
template <typename... Args>
inline long call(long nr, Args... args) {
  static_assert(sizeof...(Args) <= 6, "a system call takes at most six arguments");
  long a[6] = {arg(args)...};
  return raw(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

// call() with libc's convention: where a wrapper has no next definition to
// call, the kernel's answer as the libc function would give it.
template <typename... Args>
inline long call_errno(long nr, Args... args) {
  return with_errno(call(nr, args...));
}

inline int openat(int dirfd, const char* path, int flags, mode_t mode = 0) {
  return static_cast<int>(call(SYS_openat, dirfd, path, flags, mode));
}
inline int close(int fd) { return static_cast<int>(call(SYS_close, fd)); }
inline long read(int fd, void* buf, size_t n) { return call(SYS_read, fd, buf, n); }
inline long pread(int fd, void* buf, size_t n, off_t off) { return call(SYS_pread64, fd, buf, n, off); }
inline long write(int fd, const void* buf, size_t n) { return call(SYS_write, fd, buf, n); }
inline long pwrite(int fd, const void* buf, size_t n, off_t off) { return call(SYS_pwrite64, fd, buf, n, off); }
inline int ftruncate(int fd, off_t len) { return static_cast<int>(call(SYS_ftruncate, fd, len)); }
inline int fstatat(int dirfd, const char* path, struct stat* st, int flags) {
  return static_cast<int>(call(SYS_newfstatat, dirfd, path, st, flags));
}
// fstat as glibc's fstat() makes it (2.33 on): newfstatat(fd, "",
// AT_EMPTY_PATH), never the fstat system call, which a seccomp allow-list
// made by watching programs (strace, systemd's SystemCallLog=, a container
// profile generator) lacks and may kill on. A negative fd is EBADF without a
// call, as glibc's: AT_FDCWD with "" would be the working directory.
// Always inline, as the raw fstat was: -Os made a function of it, whose call
// cost the O_RDWR look of a text file 7 instructions (callgrind).
[[gnu::always_inline]] inline int fstat(int fd, struct stat* st) {
  return fd < 0 ? -EBADF : sys::fstatat(fd, "", st, AT_EMPTY_PATH);
}
// True if `fd` still refers to the file (dev, ino): a number the shim keeps
// may have been closed by the program behind its back and reused.
inline bool refers_to(int fd, dev_t dev, ino_t ino) {
  struct stat st;
  return sys::fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}
inline long readlinkat(int dirfd, const char* path, char* buf, size_t n) {
  return call(SYS_readlinkat, dirfd, path, buf, n);
}
inline int renameat(int olddir, const char* oldp, int newdir, const char* newp) {
  return static_cast<int>(call(SYS_renameat, olddir, oldp, newdir, newp));
}
inline int unlinkat(int dirfd, const char* path, int flags) {
  return static_cast<int>(call(SYS_unlinkat, dirfd, path, flags));
}
inline int faccessat2(int dirfd, const char* path, int mode, int flags) {
  return static_cast<int>(call(SYS_faccessat2, dirfd, path, mode, flags));
}
// May the caller write it (W_OK)? 0 or -errno. faccessat2 asks for the
// effective ids (AT_EACCESS). Where it is missing (ENOSYS: Linux before 5.8)
// or denied by a seccomp filter written before it (EPERM: Docker before
// 20.10, older systemd SystemCallFilter= sets; measured: a library in use
// passed as "caller may not write it" and was truncated), faccessat answers
// (glibc's faccessat() falls back to it too), for the real ids: the effective
// ones in every program ld.so preloads into (not setuid). An immutable
// file's EPERM it gives too.
inline int may_write(int dirfd, const char* path, bool nofollow) {
  const int r = faccessat2(dirfd, path, W_OK, AT_EACCESS | (nofollow ? AT_SYMLINK_NOFOLLOW : 0));
  if (r != -ENOSYS && r != -EPERM) return r;
  return static_cast<int>(call(SYS_faccessat, dirfd, path, W_OK));
}
// Is this process in the initial namespace of a kind? The initial ones have
// fixed inode numbers (include/linux/proc_ns.h). 1 or 0, or -errno if
// /proc/self/ns/KIND can't be read (no /proc, or a kernel without it).
constexpr ino_t kInitPidNamespace = 0xEFFFFFFCU;   // PROC_PID_INIT_INO
constexpr ino_t kInitUserNamespace = 0xEFFFFFFDU;  // PROC_USER_INIT_INO
inline int in_initial_namespace(const char* ns_link, ino_t initial) {
  struct stat st;
  const int r = tg::sys::fstatat(AT_FDCWD, ns_link, &st, 0);
  return r < 0 ? r : st.st_ino == initial;
}
// The filesystem type (statfs f_type) of the file open at fd; 0 if unknown.
inline long fs_type(int fd) {
  struct statfs fs;
  return call(SYS_fstatfs, fd, &fs) < 0 ? 0 : static_cast<long>(fs.f_type);
}
inline int fchown(int fd, uid_t uid, gid_t gid) { return static_cast<int>(call(SYS_fchown, fd, uid, gid)); }
inline int fchmod(int fd, mode_t mode) { return static_cast<int>(call(SYS_fchmod, fd, mode)); }
inline int ioctl(int fd, unsigned long req, void* arg) { return static_cast<int>(call(SYS_ioctl, fd, req, arg)); }
inline long getdents64(int fd, void* buf, size_t n) { return call(SYS_getdents64, fd, buf, n); }
inline pid_t getpid() { return static_cast<pid_t>(call(SYS_getpid)); }
// The filesystem uid, which the kernel's permission checks use: setfsuid with
// an invalid id changes nothing and returns it. (setfsuid is in systemd's
// @privileged set, which a hardened service's filter may kill on: ask it only
// where the answer is needed.)
inline uid_t fs_uid() { return static_cast<uid_t>(call(SYS_setfsuid, static_cast<uid_t>(-1))); }

// Can this process read the byte at `p`, as the kernel reads a system call's
// arguments from memory (copy_from_user: EFAULT where it can't)? Asked of the
// kernel by the same kind of read: rt_sigprocmask copies its new mask (the
// aligned word holding `p`, in p's page) before it looks at `how`, invalid
// here (EINVAL: the mask unchanged). Not process_vm_readv, which can't read
// some memory the program itself can (memfd_secret, VM_PFNMAP mappings).
// 1, 0, or -1 where it can't be asked (a seccomp filter that refuses it).
inline int readable(const void* p) {
  constexpr uintptr_t kSigsetSize = (_NSIG - 1) / 8;  // the kernel's sigset_t
  uintptr_t word = reinterpret_cast<uintptr_t>(p) & ~(kSigsetSize - 1);
  if (word == 0) word = kSigsetSize;  // (a null mask is none, read nowhere: the next word of page 0)
  const long r = call(SYS_rt_sigprocmask, -1L, word, 0L, static_cast<long>(kSigsetSize));
  return r == -EINVAL ? 1 : r == -EFAULT ? 0 : -1;
}
inline long flistxattr(int fd, char* buf, size_t n) { return call(SYS_flistxattr, fd, buf, n); }
inline long fgetxattr(int fd, const char* name, void* buf, size_t n) { return call(SYS_fgetxattr, fd, name, buf, n); }
inline int fremovexattr(int fd, const char* name) { return static_cast<int>(call(SYS_fremovexattr, fd, name)); }
inline int fsetxattr(int fd, const char* name, const void* v, size_t n, int flags) {
  return static_cast<int>(call(SYS_fsetxattr, fd, name, v, n, flags));
}
inline long copy_file_range(int in, loff_t* in_off, int out, loff_t* out_off, size_t n) {
  return call(SYS_copy_file_range, in, in_off, out, out_off, n, 0U);
}
inline long getrandom(void* buf, size_t n, unsigned flags) { return call(SYS_getrandom, buf, n, flags); }
inline int linkat(int olddir, const char* oldp, int newdir, const char* newp, int flags) {
  return static_cast<int>(call(SYS_linkat, olddir, oldp, newdir, newp, flags));
}

// CLOCK_MONOTONIC in nanoseconds (the vDSO: no system call).
inline uint64_t monotonic_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
inline long monotonic_ms() { return static_cast<long>(monotonic_ns() / 1000000); }

// `dir` followed by fd's number into out (len bytes), without stdio.
inline void proc_fd_path(const char* dir, int fd, char* out, size_t len) {
  char digits[16];
  int n = 0;
  for (unsigned v = static_cast<unsigned>(fd); n == 0 || v; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
  size_t o = 0;
  for (const char* p = dir; *p && o + 1 < len;) out[o++] = *p++;
  while (n && o + 1 < len) out[o++] = digits[--n];
  out[o] = '\0';
}

// "/proc/thread-self/fd/N" into out (len bytes; 32 hold any fd), without
// stdio: the name through which an fd's file is reopened, linked or checked.
// The calling thread's: /proc/self/fd is the main thread's, empty once it
// has exited while others run on (a daemon whose main() ends in pthread_exit).
inline void fd_link(int fd, char* out, size_t len) { proc_fd_path("/proc/thread-self/fd/", fd, out, len); }

// The shim's long-lived fds (the directory kept for an atomic publication,
// the log file) stay out of the numbers a program expects from its next
// opens, the lowest free ones (close(1), then open() to redirect stdout; a
// daemon's close(0..2) and three opens): as a dup, close-on-exec, at the
// lowest free number at or above kHighFd, or half the soft fd limit where
// that is lower (F_DUPFD beyond the limit fails). Not higher: the kernel's fd
// table grows to the highest number in use. Where nothing is free up there
// (a small limit, nearly used up), the lowest free number: the fd is never
// refused for want of a high one. Returns the new fd, or -errno.
constexpr long kHighFd = 512;
inline int dup_high(int fd) {
  struct rlimit rl;
  long base = kHighFd;
  if (call(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &rl) == 0 && rl.rlim_cur / 2 < static_cast<rlim_t>(kHighFd))
    base = static_cast<long>(rl.rlim_cur / 2);
  long r = call(SYS_fcntl, fd, F_DUPFD_CLOEXEC, base);
  if (r == -EMFILE || r == -EINVAL) r = call(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 0L);
  return static_cast<int>(r);
}

// The limits on fd numbers (RLIMIT_NOFILE): the kernel gives no new fd, nor
// dup2/dup3 onto one, at or above the soft limit, which a program may lower
// below fds it already holds (opened, or inherited, before). Unknown: none.
inline struct rlimit fd_limits() {
  struct rlimit rl;
  if (call(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &rl) < 0) rl = {RLIM_INFINITY, RLIM_INFINITY};
  return rl;
}

// dup3 onto `newfd`, a number the program holds: above the soft limit, the
// soft limit is raised (up to the hard one) for the dup3 and set back, unless
// the program set a limit of its own meanwhile (another thread's setrlimit),
// which then stays. (A thread that opens an fd meanwhile, every lower number
// in use, gets one above the limit where it would have had EMFILE.) dup3's
// result or -errno.
inline int dup3_onto(int oldfd, int newfd, int flags) {
  long r = call(SYS_dup3, oldfd, newfd, flags);
  if (r != -EBADF || newfd < 0) return static_cast<int>(r);
  const struct rlimit rl = fd_limits();
  const rlim_t wanted = static_cast<rlim_t>(newfd) + 1;
  if (rl.rlim_cur >= wanted || rl.rlim_max < wanted) return static_cast<int>(r);
  const struct rlimit raised = {wanted, rl.rlim_max};
  if (call(SYS_prlimit64, 0, RLIMIT_NOFILE, &raised, nullptr) < 0) return static_cast<int>(r);
  r = call(SYS_dup3, oldfd, newfd, flags);
  struct rlimit now;
  if (call(SYS_prlimit64, 0, RLIMIT_NOFILE, &rl, &now) == 0 &&
      (now.rlim_cur != raised.rlim_cur || now.rlim_max != raised.rlim_max))
    call(SYS_prlimit64, 0, RLIMIT_NOFILE, &now, nullptr);
  return static_cast<int>(r);
}

// Closes an fd when it goes out of scope (the shim's own fds only).
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  int release() { int f = fd_; fd_ = -1; return f; }
  void reset(int fd = -1) { if (fd_ >= 0) sys::close(fd_); fd_ = fd; }
 private:
  int fd_;
};

}  // namespace tg::sys
