// The interposed libc entry points: each turns its arguments into one
// WriteIntent for the guard, or passes straight through.
//
// Pass-through path (all but a few calls): one flag test and the real call.
// No allocation, no lock, no system call, errno untouched.
#include <aio.h>
#include <alloca.h>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <spawn.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "decision.hpp"
#include "dl_bindings.hpp"
#include "dl_watch.hpp"
#include "elf_probe.hpp"
#include "fork_gate.hpp"
#include "guard.hpp"
#include "log.hpp"
#include "maps_reader.hpp"
#include "pending.hpp"
#include "posix_locks.hpp"
#include "real.hpp"
#include "signals.hpp"
#include "sys.hpp"

// glibc's fortified entry points (-D_FORTIFY_SOURCE callers); not in the headers
// unless fortification is on, so declared here.
extern "C" {
int __open_2(const char* path, int flags);
int __open64_2(const char* path, int flags);
int __openat_2(int dirfd, const char* path, int flags);
int __openat64_2(int dirfd, const char* path, int flags);
int __fcntl(int fd, int cmd, ...);
// glibc's walk of the open streams (exported since GLIBC_2.2.5, in no installed
// header); weak: without them, exit's flush alone.
FILE* _IO_iter_begin() __attribute__((weak));
FILE* _IO_iter_end() __attribute__((weak));
FILE* _IO_iter_next(FILE* it) __attribute__((weak));
FILE* _IO_iter_file(FILE* it) __attribute__((weak));
void _IO_list_lock() __attribute__((weak));
void _IO_list_unlock() __attribute__((weak));
int __open(const char* path, int flags, ...);
int __open64(const char* path, int flags, ...);
int __close(int fd);
FILE* _IO_fopen(const char* path, const char* mode);
int _IO_fclose(FILE* stream);
int __dup2(int oldfd, int newfd) noexcept;
ssize_t __write(int fd, const void* buf, size_t n);
ssize_t __pwrite64(int fd, const void* buf, size_t n, off64_t off);
}

namespace {

// The mode argument exists only with O_CREAT or O_TMPFILE (promoted to int).
inline bool needs_mode(int flags) { return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE; }

// Without a next definition (should never happen), go to the kernel directly.
[[gnu::noinline]] int raw_openat(int dirfd, const char* path, int flags, mode_t mode) {
  return static_cast<int>(tg::sys::call_errno(SYS_openat, dirfd, path, flags, mode));
}

// The program closes fd: while the guard keeps fds of its own parked on files
// with POSIX locks (posix_locks.hpp), note which file fd was on, so that the
// fds parked there are closed after it (its close releases the locks anyway).
struct ClosingFile {
  explicit ClosingFile(int fd) : ClosingFile(fd, tg::posix_locks::any_parked()) {}
  ClosingFile(int fd, bool any_parked)
      : known(__builtin_expect(any_parked, 0) && fd >= 0 && tg::sys::fstat(fd, &st) == 0) {}
  void closed() const {
    if (known) tg::posix_locks::program_closed(st.st_dev, st.st_ino);
  }
  struct stat st;
  bool known;
};

// guarded_close where an fd is parked or pending, out of line: the
// pass-through keeps no frame.
template <typename CallReal>
[[gnu::noinline]] int guarded_close_tables(int fd, CallReal call_real) {
  // An fd of ours parked on a file the program locks (a loop closing every
  // fd above its own): not the program's, so EBADF as without truncguard,
  // and its close would release the program's locks.
  const bool any_parked = tg::posix_locks::any_parked();
  if (__builtin_expect(any_parked, 0) && !tg::in_guard() && tg::posix_locks::is_parked(fd)) {
    errno = EBADF;
    return -1;
  }
  const int publish_error = (__builtin_expect(tg::pending::any(), 0) && !tg::in_guard()) ? tg::pending::closing(fd) : 0;
  ClosingFile file(fd, any_parked);
  const int r = call_real();
  file.closed();  // (even on EINTR: the fd is gone, and the locks with it)
  if (publish_error && r == 0) {
    errno = publish_error;
    return -1;
  }
  return r;
}

// The one way in for a close of fd by the program (close(), or
// syscall(SYS_close)); `call_real()` closes it. A publication that fails
// at close (a race the checks at open could not see) is reported by close
// itself, as an NFS write error would be: the writer must not believe its
// new file is in place. While no fd is parked or pending (two loads), a tail
// call to the real close.
template <typename CallReal>
inline int guarded_close(int fd, CallReal call_real) {
  if (__builtin_expect(!tg::posix_locks::any_parked() && !tg::pending::any(), 1)) return call_real();
  return guarded_close_tables(fd, call_real);
}

// Closes an fd that the real open returned, through the real close (so that
// whatever sits behind the real open, a sanitizer included, sees it closed).
inline void real_close(int fd) {
  auto f = TG_REAL(close);
  if (f) f(fd);
  else tg::sys::call_errno(SYS_close, fd);
}

// An entry point's real open, called from the one out-of-line copy of the
// examination below: `call(flags)` runs the entry point's `call_real`.
// (Two words: passed in registers.)
struct RealOpen {
  const void* call_real;
  int (*run)(const void* call_real, int flags);
  int operator()(int flags) const { return run(call_real, flags); }
};

// An open for reading and writing that truncates nothing (SQLite's, `1<>`)
// is looked at after the real open, through its own fd: it reads the header
// with no second path walk, open and close of the shim's. (Write-only fds
// can't read it.) O_DIRECT reads need aligned buffers; F_SETFL, which the
// look uses for O_NOATIME, would act on O_ASYNC. One mask, inline in the
// entry points that return the fd (not fopen: its FILE* is glibc's).
inline bool look_after_open(int flags) {
  return (flags & (O_ACCMODE | O_TRUNC | O_DIRECT | O_ASYNC)) == O_RDWR;
}

// guarded_open's examination, out of line (the pass-through keeps no frame)
// and one copy for all the entry points.
[[gnu::noinline]] int guarded_open_examined(const char* entry, int dirfd, const char* path, int flags,
                                            RealOpen call_real) {
  if (tg::in_guard()) return call_real(flags);
  const tg::WriteKind kind = (flags & O_TRUNC) ? tg::WriteKind::truncate_open : tg::WriteKind::in_place_open;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const tg::Outcome o = tg::guard_write({entry, kind, dirfd, path, -1, flags, 0});
    switch (o.kind) {
      case tg::Outcome::replaced: return o.value;
      case tg::Outcome::fail: errno = o.value; return -1;
      case tg::Outcome::pass: return call_real(flags);
      case tg::Outcome::pass_if_absent: break;
    }
    // The name was missing when checked. Open it without truncating anything
    // that appeared since: create exclusively, or open without O_TRUNC.
    const int saved = errno;
    const int safe = (flags & O_CREAT) ? (flags | O_EXCL) : (flags & ~O_TRUNC);
    const int fd = call_real(safe);
    if (fd >= 0 && (flags & O_CREAT)) return fd;  // created: a new, empty file, as asked
    if (fd < 0 && errno != EEXIST) return fd;     // still missing (ENOENT...): the real answer
    if (fd >= 0) real_close(fd);                  // something is there now: check it again
    errno = saved;
  }
  return call_real(flags);
}

// look_after_open's way, out of line: the real open, then the look through
// its fd. A file that may be code (or a running executable's ETXTBSY) is
// looked at by name, as every other write, its fd closed again.
[[gnu::noinline]] int guarded_open_then_look(const char* entry, int dirfd, const char* path, int flags,
                                             RealOpen call_real) {
  if (tg::in_guard() || !tg::check_flags(flags).act)
    return guarded_open_examined(entry, dirfd, path, flags, call_real);
  const int caller_errno = errno;
  const int fd = call_real(flags);
  const tg::WriteIntent in{entry, tg::WriteKind::in_place_open, dirfd, path, -1, flags, 0};
  if (fd < 0 && errno != ETXTBSY) {
    tg::open_failed(in, errno);
    return fd;
  }
  if (fd >= 0) {
    if (tg::settled_after_open(in, fd)) return fd;
    // Closing it where a POSIX lock is held would keep (park) it: one fd
    // more at each such open. It stays the program's while the name is looked at.
    if (!tg::closed_unless_locked(fd)) {
      if (const int r = tg::looked_at_keeping(in, fd); r != tg::kLookAgain) return r;
    }
  }
  errno = caller_errno;
  return guarded_open_examined(entry, dirfd, path, flags, call_real);
}

// The one way in for every open-like call. `call_real(flags)` performs the
// original call (with these flags where the entry point takes flags). An open
// that can't change the file is a tail call to the real one.
template <typename CallReal>
inline int guarded_open(const char* entry, int dirfd, const char* path, int flags, CallReal call_real,
                        bool gives_fd = true) {
  if (__builtin_expect(!tg::may_change_content(flags), 1)) return call_real(flags);
  const RealOpen real{&call_real, [](const void* c, int fl) { return (*static_cast<const CallReal*>(c))(fl); }};
  if (gives_fd && look_after_open(flags)) return guarded_open_then_look(entry, dirfd, path, flags, real);
  return guarded_open_examined(entry, dirfd, path, flags, real);
}

template <typename CallReal>
inline int guarded_truncate(const char* entry, const char* path, off_t length, CallReal call_real) {
  if (length < 0 || tg::in_guard()) return call_real();
  const tg::Outcome o = tg::guard_write({entry, tg::WriteKind::truncate_path, AT_FDCWD, path, -1, O_WRONLY, length});
  switch (o.kind) {
    case tg::Outcome::replaced: return 0;
    case tg::Outcome::fail: errno = o.value; return -1;
    case tg::Outcome::pass:
    case tg::Outcome::pass_if_absent: break;  // (only opens get the second kind)
  }
  return call_real();
}

template <typename CallReal>
inline int guarded_ftruncate(const char* entry, int fd, off_t length, CallReal call_real) {
  if (length < 0 || tg::in_guard()) return call_real();
  // An fd not open for writing: the kernel refuses (EINVAL), so must we.
  const long fl = tg::sys::call(SYS_fcntl, fd, F_GETFL);
  if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY) return call_real();
  const tg::Outcome o = tg::guard_write({entry, tg::WriteKind::truncate_fd, AT_FDCWD, nullptr, fd, 0, length});
  switch (o.kind) {
    case tg::Outcome::replaced: return 0;
    case tg::Outcome::fail: errno = o.value; return -1;
    case tg::Outcome::pass:
    case tg::Outcome::pass_if_absent: break;  // (only opens get the second kind)
  }
  return call_real();
}

// fopen-like calls: the open(2) flags their mode means ("r" reads: passes).
inline int writing_fopen_flags(const char* mode) {
  const int flags = tg::fopen_mode_flags(mode);
  return flags < 0 ? 0 : flags;
}

// freopen(NULL, mode, stream) will reopen fd's own file with these flags: the
// guard moves fd to a new inode first, as for ftruncate (to an empty one for
// "w", a copy for "r+"). Only if the caller may write the file: a stream opened
// "r" proves nothing, and the kernel must keep refusing what it refuses.
// Returns the errno to fail with, or 0.
inline int reopen_own_file(const char* entry, int fd, int flags) {
  if (fd < 0 || !tg::may_change_content(flags) || tg::in_guard()) return 0;
  char proc[32];
  tg::sys::fd_link(fd, proc, sizeof proc);
  if (tg::sys::may_write(AT_FDCWD, proc, false) < 0) return 0;  // the real freopen answers
  const tg::WriteKind kind = (flags & O_TRUNC) ? tg::WriteKind::truncate_fd : tg::WriteKind::in_place_fd;
  const int saved = errno;
  const tg::Outcome o = tg::guard_write({entry, kind, AT_FDCWD, nullptr, fd, flags, 0});
  errno = saved;
  return o.kind == tg::Outcome::fail ? o.value : 0;
}

// fopen/freopen's missing-name retry: the safe open by flags, through the
// real openat (a FILE* is made from the fd by the caller, as for a replaced file).
inline int safe_reopen(const char* path, int fl) {
  auto f = TG_REAL(openat);
  return f ? f(AT_FDCWD, path, fl, 0666) : raw_openat(AT_FDCWD, path, fl, 0666);
}

// The stream on pending fd goes to its file. stdio's own writes go through
// libc-internal calls that the write wrappers don't see: its error flag does.
inline void flush_pending_stream(FILE* stream, int fd) {
  if (fflush(stream) != 0 || ferror(stream)) {
    // The stream lost data; errno may be from anything since then.
    const int e = errno;
    tg::pending::write_failed(fd, (e == ENOSPC || e == EDQUOT || e == EFBIG) ? e : EIO);
  }
}

// fclose and freopen close the stream's fd inside libc, out of close()'s
// reach: a file pending there (atomic mode) is published first, once the
// stream's buffer is in the file. Returns the publication's error, or 0.
inline int stream_closing(FILE* stream) {
  if (__builtin_expect(!tg::pending::any(), 1) || !stream || tg::in_guard()) return 0;
  const int fd = fileno(stream);
  if (fd < 0) return 0;
  flush_pending_stream(stream, fd);
  return tg::pending::closing(fd);
}

// A freopen that fails leaves its stream as glibc's own failure does: its
// file closed, the FILE still allocated (a program may still fclose it), not
// freed by an fclose of ours. The real freopen does it, with a name no open
// can succeed on ("": ENOENT) and so touches no file; then the error.
using FreopenFn = FILE* (*)(const char*, const char*, FILE*);
inline FILE* failed_freopen(FreopenFn real, const char* mode, FILE* stream, int err) {
  if (stream) real("", mode, stream);
  errno = err;
  return nullptr;
}

// ---- An fd that can only append (O_WRONLY|O_APPEND), whose open passed
// (may_change_content), is examined when it could change bytes already in the
// file: fcntl(F_SETFL) without O_APPEND, pwritev2(RWF_NOAPPEND), and fallocate
// that punches, zeroes, collapses or inserts. Mapped executable: the fd moves
// to a new inode first (as for ftruncate), then the real call runs on it.

constexpr int kRwfNoAppend = 0x20;  // RWF_NOAPPEND (Linux 6.9), not in glibc 2.36's headers

// The one way in for those calls: `changes` is the cheap test of the call's own
// arguments; only then is the fd asked for its flags (one fcntl).
template <typename CallReal>
inline auto guarded_fd_change(const char* entry, int fd, bool changes, CallReal call_real) -> decltype(call_real()) {
  if (__builtin_expect(!changes, 1) || tg::in_guard()) return call_real();
  const long fl = tg::sys::call(SYS_fcntl, fd, F_GETFL);
  if (fl < 0 || (fl & O_ACCMODE) != O_WRONLY || !(fl & O_APPEND)) return call_real();  // examined at its open
  const tg::Outcome o = tg::guard_write({entry, tg::WriteKind::in_place_fd, AT_FDCWD, nullptr, fd, O_WRONLY | O_APPEND, 0});
  if (o.kind == tg::Outcome::fail) {
    errno = o.value;
    return -1;
  }
  return call_real();
}

// Atomic mode must never publish a file whose writing failed (ENOSPC...):
// the writes that can fail are watched, at the cost of a branch on failure.
[[gnu::noinline]] void write_failed(int fd) {
  const int e = errno;
  tg::pending::write_failed(fd, e);
  errno = e;
}

template <typename R>
inline R watched_write(R r, int fd) {
  if (__builtin_expect(r < 0, 0) && tg::pending::any()) write_failed(fd);
  return r;
}

// fsync, fdatasync: a pending file that the writer synced is published with
// its directory synced (pending::synced), as the sync promised. One branch
// when nothing is pending.
inline int watched_sync(int r, int fd) {
  if (r == 0 && __builtin_expect(tg::pending::any(), 0)) tg::pending::synced(fd);
  return r;
}

// sync, syncfs, msync(MS_SYNC): they make every file (of a filesystem, of a
// mapping) durable, the pending ones too; their publications sync the
// directory (pending::synced_all). One branch when nothing is pending.
inline int watched_sync_all(int r) {
  if (r == 0 && __builtin_expect(tg::pending::any(), 0)) tg::pending::synced_all();
  return r;
}

// rename, renameat, renameat2: a pending file whose name the writer renames
// before its last close (write, fsync, rename, close) is published first
// (pending::renaming), so that the rename moves the new content. An exchange
// (RENAME_EXCHANGE) moves the destination's file too: a pending file there
// is published first as well, or the exchange moved the old file out and put
// another at its name, where the close then refused to publish (the new
// content lost). One branch when nothing is pending; errno as the real call
// leaves it, but where the file could not be published first. A rename that
// fails after such a publication (EXDEV, a missing directory,
// RENAME_NOREPLACE onto a name in use) left the file published at its name:
// the log says so (it said only that the rename would move the new file),
// under the file's name in the log (the rename may name it by another path:
// relative to a directory fd, through a symlink). Off the inline path (its
// names are 2 KiB of stack): only with files pending.
template <typename CallReal>
__attribute__((noinline)) auto rename_with_pending(int fromdir, const char* from, int todir, const char* to,
                                                   unsigned flags, CallReal call_real) {
  const int e = errno;
  char from_as[tg::pending::kLogName], to_as[tg::pending::kLogName];
  from_as[0] = to_as[0] = '\0';
  int err = tg::pending::renaming(fromdir, from, from_as);
  if (!err && (flags & RENAME_EXCHANGE)) err = tg::pending::renaming(todir, to, to_as);
  // Not published (no room, a failed write): the rename is not made and
  // fails with that error, which the writer's close would have given. An
  // exchange whose destination could not be published: its source was,
  // for a rename that is now not made, which the log says too.
  if (err) {
    if (from_as[0]) tg::pending::rename_failed(from_as, err);
    errno = err;
    return static_cast<decltype(call_real())>(-1);
  }
  errno = e;
  const auto r = call_real();
  if (r < 0 && from_as[0]) tg::pending::rename_failed(from_as, errno);
  if (r < 0 && to_as[0]) tg::pending::rename_failed(to_as, errno);
  return r;
}
template <typename CallReal>
inline auto watched_rename(int fromdir, const char* from, int todir, const char* to, unsigned flags,
                           CallReal call_real) {
  if (__builtin_expect(tg::pending::any(), 0) && !tg::in_guard())
    return rename_with_pending(fromdir, from, todir, to, flags, call_real);
  return call_real();
}

// fcntl: F_SETFL without O_APPEND is examined (guarded_fd_change); an fd
// F_DUPFD made is a new name for a pending file. `arg` as glibc reads it.
template <typename CallReal>
inline int guarded_fcntl(const char* entry, int fd, int cmd, long arg, CallReal call_real) {
  const bool drops_append = cmd == F_SETFL && !(arg & O_APPEND);
  const int r = guarded_fd_change(entry, fd, drops_append, call_real);
  if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && __builtin_expect(tg::pending::any(), 0))
    tg::pending::duplicated(fd, r);
  return r;
}

// dup, dup2, dup3 (newfd < 0: dup): dup2/dup3 close `newfd` first when it is
// open, and that close may publish; the new fd is another name for a pending file.
// A dup3 with flags the kernel refuses (EINVAL) closes nothing: publishing
// there put the half-written file at the name while the writer went on; nor
// does one onto a number at or above the soft RLIMIT_NOFILE (EBADF), which a
// program may have lowered below a pending fd it holds.
template <typename CallReal>
inline int guarded_dup(int oldfd, int newfd, int flags, CallReal call_real) {
  if (__builtin_expect(tg::pending::any(), 0) && newfd >= 0 && oldfd != newfd && !(flags & ~O_CLOEXEC) &&
      tg::sys::call(SYS_fcntl, oldfd, F_GETFD) >= 0 && static_cast<rlim_t>(newfd) < tg::sys::fd_limits().rlim_cur)
    tg::pending::closing(newfd);
  // Onto an fd of ours parked on a locked file: the number is the program's
  // from now on (the kernel closes ours, as the program meant to replace
  // whatever was there), never to be refused or closed as ours. A dup that
  // fails (oldfd not open, bad flags) closes nothing: the fd is ours again.
  tg::posix_locks::Forgotten forgotten;
  if (__builtin_expect(tg::posix_locks::any_parked(), 0) && newfd >= 0 && oldfd != newfd && !tg::in_guard())
    forgotten = tg::posix_locks::forget(newfd);
  const int r = call_real();
  if (__builtin_expect(forgotten.fd >= 0, 0) && r < 0) {
    const int saved = errno;
    tg::posix_locks::unforget(forgotten);
    errno = saved;
  }
  if (r >= 0 && __builtin_expect(tg::pending::any(), 0)) tg::pending::duplicated(oldfd, r);
  return r;
}

// Punching, zeroing, collapsing or inserting changes bytes in place;
// allocating, keeping the size and unsharing don't.
inline bool changes_content(int fallocate_mode) {
  return (fallocate_mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_UNSHARE_RANGE)) != 0;
}

}  // namespace

#define TG_OPEN_MODE(flags)                    \
  mode_t mode = 0;                             \
  if (needs_mode(flags)) {                     \
    va_list ap;                                \
    va_start(ap, flags);                       \
    mode = static_cast<mode_t>(va_arg(ap, int)); \
    va_end(ap);                                \
  }

extern "C" {

// open, open64, and glibc's public aliases of them, __open and __open64
// (GLIBC_2.2.5), which a program may call by these names.
#define TG_OPEN(name)                                                                  \
  __attribute__((visibility("default"))) int name(const char* path, int flags, ...) { \
    TG_OPEN_MODE(flags);                                                               \
    return guarded_open(#name, AT_FDCWD, path, flags, [=](int fl) {                    \
      auto f = TG_REAL(name);                                                          \
      return f ? f(path, fl, mode) : raw_openat(AT_FDCWD, path, fl, mode);             \
    });                                                                                \
  }

TG_OPEN(open)
TG_OPEN(open64)
TG_OPEN(__open)
TG_OPEN(__open64)

__attribute__((visibility("default"))) int openat(int dirfd, const char* path, int flags, ...) {
  TG_OPEN_MODE(flags);
  return guarded_open("openat", dirfd, path, flags, [=](int fl) {
    auto f = TG_REAL(openat);
    return f ? f(dirfd, path, fl, mode) : raw_openat(dirfd, path, fl, mode);
  });
}

__attribute__((visibility("default"))) int openat64(int dirfd, const char* path, int flags, ...) {
  TG_OPEN_MODE(flags);
  return guarded_open("openat64", dirfd, path, flags, [=](int fl) {
    auto f = TG_REAL(openat64);
    return f ? f(dirfd, path, fl, mode) : raw_openat(dirfd, path, fl, mode);
  });
}

__attribute__((visibility("default"))) int creat(const char* path, mode_t mode) {
  return guarded_open("creat", AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, [=](int fl) {
    auto f = TG_REAL(creat);
    if (f && fl == (O_CREAT | O_WRONLY | O_TRUNC)) return f(path, mode);
    auto o = TG_REAL(open);  // creat with other flags: open says it
    return o ? o(path, fl, mode) : raw_openat(AT_FDCWD, path, fl, mode);
  });
}

__attribute__((visibility("default"))) int creat64(const char* path, mode_t mode) {
  return guarded_open("creat64", AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, [=](int fl) {
    auto f = TG_REAL(creat64);
    if (f && fl == (O_CREAT | O_WRONLY | O_TRUNC)) return f(path, mode);
    auto o = TG_REAL(open64);
    return o ? o(path, fl, mode) : raw_openat(AT_FDCWD, path, fl, mode);
  });
}

__attribute__((visibility("default"))) int __open_2(const char* path, int flags) {
  return guarded_open("__open_2", AT_FDCWD, path, flags, [=](int fl) {
    auto f = TG_REAL(__open_2);
    return f ? f(path, fl) : raw_openat(AT_FDCWD, path, fl, 0);
  });
}

__attribute__((visibility("default"))) int __open64_2(const char* path, int flags) {
  return guarded_open("__open64_2", AT_FDCWD, path, flags, [=](int fl) {
    auto f = TG_REAL(__open64_2);
    return f ? f(path, fl) : raw_openat(AT_FDCWD, path, fl, 0);
  });
}

__attribute__((visibility("default"))) int __openat_2(int dirfd, const char* path, int flags) {
  return guarded_open("__openat_2", dirfd, path, flags, [=](int fl) {
    auto f = TG_REAL(__openat_2);
    return f ? f(dirfd, path, fl) : raw_openat(dirfd, path, fl, 0);
  });
}

__attribute__((visibility("default"))) int __openat64_2(int dirfd, const char* path, int flags) {
  return guarded_open("__openat64_2", dirfd, path, flags, [=](int fl) {
    auto f = TG_REAL(__openat64_2);
    return f ? f(dirfd, path, fl) : raw_openat(dirfd, path, fl, 0);
  });
}

// The FILE* for fd, the caller's fopen mode. fdopen reads only what open(2)
// takes from it: ",ccs=CHARSET" (a stream bound to that encoding, oriented
// wide) is fopen's alone. With it, the real fopen opens the same file again
// (/proc/thread-self/fd, without 'x', which would refuse it: the file is fd's own,
// new and empty or a copy) and its fd takes fd's number, the lowest free one.
// Where that can't be done (no /proc), fdopen, and the stream is unbound.
using FopenFn = FILE* (*)(const char*, const char*);
inline FILE* stream_on(int fd, const char* mode, FopenFn real) {
  const char* ccs = std::strstr(mode, ",ccs=");
  char m[64];
  if (!ccs || !real || std::strlen(mode) >= sizeof m) return fdopen(fd, mode);
  size_t n = 0;
  for (const char* c = mode; *c; ++c)
    if (c >= ccs || *c != 'x') m[n++] = *c;
  m[n] = '\0';
  char proc[32];
  tg::sys::fd_link(fd, proc, sizeof proc);
  FILE* fp = real(proc, m);
  if (!fp) return fdopen(fd, mode);
  const int other = fileno(fp);
  const long fdflags = tg::sys::call(SYS_fcntl, other, F_GETFD);
  if (fdflags < 0 || tg::sys::call(SYS_dup3, other, fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
    fclose(fp);
    return fdopen(fd, mode);
  }
  tg::sys::close(other);
  fp->_fileno = fd;  // as glibc's own freopen does after its dup3
  return fp;
}

// The step a pending file's close logs where fopen could make no stream on it.
constexpr char kNoStream[] = "the writer's fopen failed: no stream could be made on the new file (fdopen)";

// fopen: the new inode's fd becomes the FILE*, with the caller's mode.
#define TG_FOPEN(name)                                                                   \
  __attribute__((visibility("default"))) FILE* name(const char* path, const char* mode) { \
    const int flags = writing_fopen_flags(mode);                                      \
    FILE* result = nullptr;                                                              \
    int fd = guarded_open(#name, AT_FDCWD, path, flags, [&](int fl) -> int {             \
      if (fl != flags) return safe_reopen(path, fl); /* the missing-name retry */         \
      auto f = TG_REAL(name);                                                            \
      if (f) result = f(path, mode);                                                     \
      else errno = ENOSYS;                                                               \
      return -2; /* marks "the real call ran" */                                         \
    }, false);                                                                           \
    if (fd == -2) return result;                                                         \
    if (fd < 0) return nullptr;                                                          \
    FILE* fp = stream_on(fd, mode, TG_REAL(name));                                       \
    if (!fp) { /* (no memory): the fopen fails, and its file is never published */       \
      const int e = errno;                                                               \
      tg::pending::never_publish(fd, kNoStream, e);                                      \
      close(fd);                                                                         \
      errno = e;                                                                         \
    }                                                                                    \
    return fp;                                                                           \
  }

TG_FOPEN(fopen)
TG_FOPEN(fopen64)
TG_FOPEN(_IO_fopen)  // (glibc's public alias of fopen, GLIBC_2.2.5)

// freopen: once the name holds a new, empty inode, the real freopen's own
// O_TRUNC only empties that new file, and the stream keeps glibc's semantics
// (same fd number for std streams, orientation reset...). With no path, glibc
// reopens the stream's own file through /proc/self/fd with an internal open:
// the stream's fd moves to the new inode first (reopen_own_file). Either way
// glibc closes the stream's old file itself: pending there, it is published first.
#define TG_FREOPEN(name)                                                                               \
  __attribute__((visibility("default"))) FILE* name(const char* path, const char* mode, FILE* stream) { \
    auto f = TG_REAL(name);                                                                            \
    if (!f) { errno = ENOSYS; return nullptr; }                                                        \
    /* The stream's file is closed first (inside libc): published, as at fclose. */                   \
    const int saved = errno;                                                                           \
    if (const int published = stream_closing(stream)) return failed_freopen(f, mode, stream, published); \
    errno = saved;                                                                                     \
    if (!path) {                                                                                       \
      const int err = stream ? reopen_own_file(#name, fileno(stream), writing_fopen_flags(mode)) : 0;  \
      if (err) return failed_freopen(f, mode, stream, err);                                            \
    }                                                                                                  \
    const int flags = path ? writing_fopen_flags(mode) : 0;                                         \
    int fd = guarded_open(#name, AT_FDCWD, path, flags, [&](int fl) -> int {                           \
      return fl != flags ? safe_reopen(path, fl) : -2;                                                 \
    }, false);                                                                                         \
    if (fd >= 0) close(fd);                                                                            \
    else if (fd == -1) return failed_freopen(f, mode, stream, errno);                                  \
    return f(path, mode, stream);                                                                      \
  }

TG_FREOPEN(freopen)
TG_FREOPEN(freopen64)

__attribute__((visibility("default"))) int truncate(const char* path, off_t length) {
  return guarded_truncate("truncate", path, length, [&] {
    auto f = TG_REAL(truncate);
    return f ? f(path, length) : static_cast<int>(tg::sys::call_errno(SYS_truncate, path, length));
  });
}

__attribute__((visibility("default"))) int truncate64(const char* path, off64_t length) {
  return guarded_truncate("truncate64", path, static_cast<off_t>(length), [&] {
    auto f = TG_REAL(truncate64);
    return f ? f(path, length) : static_cast<int>(tg::sys::call_errno(SYS_truncate, path, length));
  });
}

__attribute__((visibility("default"))) int ftruncate(int fd, off_t length) {
  return guarded_ftruncate("ftruncate", fd, length, [&] {
    auto f = TG_REAL(ftruncate);
    return f ? f(fd, length) : static_cast<int>(tg::sys::call_errno(SYS_ftruncate, fd, length));
  });
}

__attribute__((visibility("default"))) int ftruncate64(int fd, off64_t length) {
  return guarded_ftruncate("ftruncate64", fd, static_cast<off_t>(length), [&] {
    auto f = TG_REAL(ftruncate64);
    return f ? f(fd, length) : static_cast<int>(tg::sys::call_errno(SYS_ftruncate, fd, length));
  });
}

// ---- Atomic mode: the last close publishes (pending.hpp). Without pending
// files (every process not in atomic mode), each of these is one atomic load
// and the real call.

__attribute__((visibility("default"))) int close(int fd) {
  return guarded_close(fd, [fd] {
    auto f = TG_REAL(close);
    return f ? f(fd) : static_cast<int>(tg::sys::call_errno(SYS_close, fd));
  });
}

// glibc's public alias (GLIBC_2.2.5): the same function.
__attribute__((visibility("default"), alias("close"))) int __close(int fd);

}  // extern "C"

namespace {

int real_close_range(unsigned first, unsigned last, int flags) {
  auto f = TG_REAL(close_range);
  return f ? f(first, last, flags) : static_cast<int>(tg::sys::call_errno(SYS_close_range, first, last, flags));
}

// The real close_range (`real(first, last, flags)`) over [first, last], less
// the `n` fds in `kept` (ascending, inside the range): in pieces between them.
// Returns the first failure, else 0. With nothing left to close, the flags are
// still checked (fd ~0U is never open), so that bad flags fail as they would have.
template <typename RealRange>
int close_range_around(unsigned first, unsigned last, int flags, const int* kept, int n, RealRange real) {
  unsigned from = first;
  bool called = false;
  for (int i = 0; i < n; ++i) {
    const unsigned k = static_cast<unsigned>(kept[i]);
    if (k > from) {
      const int r = real(from, k - 1, flags);
      if (r < 0) return r;
      called = true;
    }
    from = k + 1;  // an fd number is an int: no overflow
  }
  if (from <= last) return real(from, last, flags);
  return called ? 0 : real(~0U, ~0U, flags);
}

// close_range and closefrom close many fds inside the kernel: publish the
// pending ones among them first (CLOSE_RANGE_CLOEXEC closes nothing). The
// directory fds truncguard keeps for the files still pending are not the
// program's: a program that closes every fd above its own (closefrom(n), a
// server going on; a range up to ~0) must not make those files unpublishable,
// so they are left open, and the rest of the range is closed around them.
// The one way in for close_range() and syscall(SYS_close_range), whose real
// call is the next syscall(): resolved at start-up, as a vfork child needs
// (the next close_range, looked up there on first use, waited for the loader
// lock that another thread's dlopen held).
// The fds truncguard keeps that lie in [first, last], ascending, once each:
// the directories of pending files, and the fds parked on files the program
// holds POSIX locks on (closing one released the program's locks: another
// process took the lock of a daemon that had only run closefrom above its
// own lock fd).
constexpr int kMaxKept = tg::pending::kMaxFiles + tg::posix_locks::kMaxParked;
int kept_in_range(unsigned first, unsigned last, int* kept) {
  int n = tg::pending::kept_fds_in(first, last, kept, tg::pending::kMaxFiles);
  int parked[tg::posix_locks::kMaxParked];
  const int m = tg::posix_locks::parked_in(first, last, parked, tg::posix_locks::kMaxParked);
  for (int j = 0; j < m; ++j) {
    int i = n;
    bool seen = false;
    for (int k = 0; k < n && !seen; ++k) seen = kept[k] == parked[j];
    if (seen) continue;
    for (++n; i > 0 && kept[i - 1] > parked[j]; --i) kept[i] = kept[i - 1];  // insertion, ascending
    kept[i] = parked[j];
  }
  return n;
}

template <typename RealRange>
int guarded_close_range(unsigned first, unsigned last, int flags, RealRange real) {
  // Flags it refuses (EINVAL) close nothing either: nothing is published.
  constexpr int kKnownFlags = CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC;
  if (__builtin_expect(!tg::pending::any() && !tg::posix_locks::any_parked(), 1) || tg::in_guard() ||
      (flags & CLOSE_RANGE_CLOEXEC) || (flags & ~kKnownFlags) || first > last)
    return real(first, last, flags);
  const int publish_error = tg::pending::closing_range(first, last);
  int kept[kMaxKept];
  const int n = kept_in_range(first, last, kept);
  const int r = n ? close_range_around(first, last, flags, kept, n, real) : real(first, last, flags);
  if (publish_error && r == 0) {
    errno = publish_error;
    return -1;
  }
  return r;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int close_range(unsigned first, unsigned last, int flags) {
  return guarded_close_range(first, last, flags, real_close_range);
}

// closefrom returns nothing: a failed publication is only in the log.
__attribute__((visibility("default"))) void closefrom(int lowfd) {
  auto f = TG_REAL(closefrom);
  if (__builtin_expect(tg::pending::any() || tg::posix_locks::any_parked(), 0) && !tg::in_guard() && lowfd >= 0) {
    tg::pending::closing_range(static_cast<unsigned>(lowfd), ~0U);
    int kept[kMaxKept];
    const int n = kept_in_range(static_cast<unsigned>(lowfd), ~0U, kept);
    if (n > 0) {
      // Below the highest kept fd, in pieces (one by one where the kernel has
      // no close_range: at most a few hundred numbers); above it, closefrom.
      unsigned from = static_cast<unsigned>(lowfd);
      for (int i = 0; i < n; ++i) {
        const unsigned k = static_cast<unsigned>(kept[i]);
        if (k > from && real_close_range(from, k - 1, 0) < 0)
          for (unsigned fd = from; fd < k; ++fd) tg::sys::close(static_cast<int>(fd));
        from = k + 1;
      }
      lowfd = static_cast<int>(from);
    }
  }
  if (f) f(lowfd);
  else tg::sys::call_errno(SYS_close_range, static_cast<unsigned>(lowfd < 0 ? 0 : lowfd), ~0U, 0);
}

// Atomic mode: a file whose last fd the program closed while it still mapped
// the file shared and writable is published once it is unmapped
// (pending::unmapped). One branch when nothing is pending.
__attribute__((visibility("default"))) int munmap(void* addr, size_t len) {
  auto f = TG_REAL(munmap);
  const int r = f ? f(addr, len) : static_cast<int>(tg::sys::call_errno(SYS_munmap, addr, len));
  if (r == 0 && __builtin_expect(tg::pending::any(), 0) && !tg::in_guard()) {
    const int saved = errno;
    tg::pending::unmapped();
    errno = saved;
  }
  return r;
}

__attribute__((visibility("default"))) ssize_t write(int fd, const void* buf, size_t n) {
  auto f = TG_REAL(write);
  return watched_write(f ? f(fd, buf, n) : tg::sys::call_errno(SYS_write, fd, buf, n), fd);
}
__attribute__((visibility("default"))) ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  auto f = TG_REAL(pwrite);
  return watched_write(f ? f(fd, buf, n, off) : tg::sys::call_errno(SYS_pwrite64, fd, buf, n, off), fd);
}
__attribute__((visibility("default"))) ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  auto f = TG_REAL(pwrite64);
  return watched_write(f ? f(fd, buf, n, off) : tg::sys::call_errno(SYS_pwrite64, fd, buf, n, off), fd);
}
// glibc's public aliases of write and pwrite64 (GLIBC_2.2.5), which a program
// may call by these names: unwatched, their failure went unseen. The same
// functions: libc's own are aliases too.
__attribute__((visibility("default"), alias("write"))) ssize_t __write(int fd, const void* buf, size_t n);
__attribute__((visibility("default"), alias("pwrite64"))) ssize_t __pwrite64(int fd, const void* buf, size_t n,
                                                                              off64_t off);
__attribute__((visibility("default"))) ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  auto f = TG_REAL(writev);
  return watched_write(f ? f(fd, iov, cnt) : tg::sys::call_errno(SYS_writev, fd, iov, cnt), fd);
}
__attribute__((visibility("default"))) ssize_t pwritev(int fd, const struct iovec* iov, int cnt, off_t off) {
  auto f = TG_REAL(pwritev);
  return watched_write(f ? f(fd, iov, cnt, off) : tg::sys::call_errno(SYS_pwritev, fd, iov, cnt, off, 0), fd);
}
// What a program built with _FILE_OFFSET_BITS=64 calls for pwritev (glibc's
// headers rename it, as they do pwrite and sendfile).
__attribute__((visibility("default"))) ssize_t pwritev64(int fd, const struct iovec* iov, int cnt, off64_t off) {
  auto f = TG_REAL(pwritev64);
  return watched_write(f ? f(fd, iov, cnt, off) : tg::sys::call_errno(SYS_pwritev, fd, iov, cnt, off, 0), fd);
}
__attribute__((visibility("default"))) ssize_t copy_file_range(int in, off64_t* in_off, int out, off64_t* out_off,
                                                               size_t len, unsigned flags) {
  auto f = TG_REAL(copy_file_range);
  return watched_write(f ? f(in, in_off, out, out_off, len, flags)
                   : tg::sys::call_errno(SYS_copy_file_range, in, in_off, out, out_off, len, flags), out);
}
// splice into a file (pv, and other pipe-to-file copiers) writes it as copy_file_range does.
__attribute__((visibility("default"))) ssize_t splice(int in, loff_t* in_off, int out, loff_t* out_off, size_t len,
                                                      unsigned flags) {
  auto f = TG_REAL(splice);
  return watched_write(f ? f(in, in_off, out, out_off, len, flags)
                   : tg::sys::call_errno(SYS_splice, in, in_off, out, out_off, len, flags), out);
}
__attribute__((visibility("default"))) ssize_t sendfile(int out, int in, off_t* off, size_t count) {
  auto f = TG_REAL(sendfile);
  return watched_write(f ? f(out, in, off, count) : tg::sys::call_errno(SYS_sendfile, out, in, off, count), out);
}
__attribute__((visibility("default"))) ssize_t sendfile64(int out, int in, off64_t* off, size_t count) {
  auto f = TG_REAL(sendfile64);
  return watched_write(f ? f(out, in, off, count) : tg::sys::call_errno(SYS_sendfile, out, in, off, count), out);
}

// aio_write, lio_listio: glibc's helper threads write with internal calls,
// out of the wrappers' sight; the program learns a failure from aio_error,
// and so does the shim (one test of its result).
#define TG_AIO_ERROR(name, Cb)                                                        \
  __attribute__((visibility("default"))) int name(const Cb* cb) noexcept {           \
    auto f = TG_REAL(name);                                                           \
    if (!f) {                                                                         \
      errno = ENOSYS;                                                                 \
      return -1;                                                                      \
    }                                                                                 \
    const int r = f(cb);                                                              \
    if (__builtin_expect(r > 0, 0) && tg::pending::any()) {                           \
      const int saved = errno;                                                        \
      tg::pending::write_failed(cb->aio_fildes, r);                                   \
      errno = saved;                                                                  \
    }                                                                                 \
    return r;                                                                         \
  }

TG_AIO_ERROR(aio_error, struct aiocb)
TG_AIO_ERROR(aio_error64, struct aiocb64)

__attribute__((visibility("default"))) int fsync(int fd) {
  auto f = TG_REAL(fsync);
  return watched_sync(f ? f(fd) : static_cast<int>(tg::sys::call_errno(SYS_fsync, fd)), fd);
}
__attribute__((visibility("default"))) int fdatasync(int fd) {
  auto f = TG_REAL(fdatasync);
  return watched_sync(f ? f(fd) : static_cast<int>(tg::sys::call_errno(SYS_fdatasync, fd)), fd);
}

__attribute__((visibility("default"))) int rename(const char* from, const char* to) noexcept {
  return watched_rename(AT_FDCWD, from, AT_FDCWD, to, 0, [&] {
    auto f = TG_REAL(rename);
    return f ? f(from, to) : static_cast<int>(tg::sys::call_errno(SYS_rename, from, to));
  });
}
__attribute__((visibility("default"))) int renameat(int fromdir, const char* from, int todir, const char* to) noexcept {
  return watched_rename(fromdir, from, todir, to, 0, [&] {
    auto f = TG_REAL(renameat);
    return f ? f(fromdir, from, todir, to) : static_cast<int>(tg::sys::call_errno(SYS_renameat, fromdir, from, todir, to));
  });
}
__attribute__((visibility("default"))) int renameat2(int fromdir, const char* from, int todir, const char* to,
                                                     unsigned flags) noexcept {
  return watched_rename(fromdir, from, todir, to, flags, [&] {
    auto f = TG_REAL(renameat2);
    return f ? f(fromdir, from, todir, to, flags)
             : static_cast<int>(tg::sys::call_errno(SYS_renameat2, fromdir, from, todir, to, flags));
  });
}

__attribute__((visibility("default"))) void sync() noexcept {
  auto f = TG_REAL(sync);
  if (f) f();
  else tg::sys::call(SYS_sync);
  watched_sync_all(0);
}
__attribute__((visibility("default"))) int syncfs(int fd) noexcept {
  auto f = TG_REAL(syncfs);
  return watched_sync_all(f ? f(fd) : static_cast<int>(tg::sys::call_errno(SYS_syncfs, fd)));
}
__attribute__((visibility("default"))) int msync(void* addr, size_t len, int flags) {
  auto f = TG_REAL(msync);
  const int r = f ? f(addr, len, flags) : static_cast<int>(tg::sys::call_errno(SYS_msync, addr, len, flags));
  return (flags & MS_SYNC) ? watched_sync_all(r) : r;
}
// aio_fsync: glibc's helper thread syncs with an internal call; a request
// queued is taken as the sync done (at worst, one directory fsync more).
#define TG_AIO_FSYNC(name, Cb)                                                        \
  __attribute__((visibility("default"))) int name(int op, Cb* cb) noexcept {         \
    auto f = TG_REAL(name);                                                           \
    if (!f) {                                                                         \
      errno = ENOSYS;                                                                 \
      return -1;                                                                      \
    }                                                                                 \
    const int r = f(op, cb);                                                          \
    return r == 0 ? watched_sync(r, cb->aio_fildes) : r;                              \
  }

TG_AIO_FSYNC(aio_fsync, struct aiocb)
TG_AIO_FSYNC(aio_fsync64, struct aiocb64)

// pwritev2 and fallocate: see guarded_fd_change.
#define TG_PWRITEV2(name)                                                                                               \
  __attribute__((visibility("default"))) ssize_t name(int fd, const struct iovec* iov, int cnt, off_t off,              \
                                                      int flags) {                                                      \
    auto f = TG_REAL(name);                                                                                             \
    return watched_write(guarded_fd_change(#name, fd, (flags & kRwfNoAppend) != 0,                                      \
                                           [&]() -> ssize_t {                                                           \
                                             return f ? f(fd, iov, cnt, off, flags)                                     \
                                                      : tg::sys::call_errno(SYS_pwritev2, fd, iov, cnt, off, 0, flags); \
                                           }),                                                                          \
                         fd);                                                                                           \
  }

TG_PWRITEV2(pwritev2)
TG_PWRITEV2(pwritev64v2)

#define TG_FALLOCATE(name)                                                                               \
  __attribute__((visibility("default"))) int name(int fd, int mode, off_t off, off_t len) {             \
    auto f = TG_REAL(name);                                                                              \
    return guarded_fd_change(#name, fd, changes_content(mode), [&] {                                     \
      return f ? f(fd, mode, off, len) : static_cast<int>(tg::sys::call_errno(SYS_fallocate, fd, mode, off, len)); \
    });                                                                                                  \
  }

TG_FALLOCATE(fallocate)
TG_FALLOCATE(fallocate64)

// fclose closes its fd inside libc, out of close()'s reach: publish first
// (stream_closing).
__attribute__((visibility("default"))) int fclose(FILE* stream) {
  const int publish_error = stream_closing(stream);
  ClosingFile file(__builtin_expect(tg::posix_locks::any_parked(), 0) && stream ? fileno(stream) : -1);
  auto f = TG_REAL(fclose);
  if (!f) { errno = ENOSYS; return EOF; }
  const int r = f(stream);
  file.closed();
  if (publish_error && r == 0) {
    errno = publish_error;
    return EOF;
  }
  return r;
}

// glibc's public alias (GLIBC_2.2.5): the same function.
__attribute__((visibility("default"), alias("fclose"))) int _IO_fclose(FILE* stream);

__attribute__((visibility("default"))) int dup(int oldfd) {
  return guarded_dup(oldfd, -1, 0, [&] {
    auto f = TG_REAL(dup);
    return f ? f(oldfd) : static_cast<int>(tg::sys::call_errno(SYS_dup, oldfd));
  });
}

__attribute__((visibility("default"))) int dup2(int oldfd, int newfd) {
  return guarded_dup(oldfd, newfd, 0, [&] {
    auto f = TG_REAL(dup2);
    return f ? f(oldfd, newfd) : static_cast<int>(tg::sys::call_errno(SYS_dup2, oldfd, newfd));
  });
}

__attribute__((visibility("default"))) int dup3(int oldfd, int newfd, int flags) {
  return guarded_dup(oldfd, newfd, flags, [&] {
    auto f = TG_REAL(dup3);
    return f ? f(oldfd, newfd, flags) : static_cast<int>(tg::sys::call_errno(SYS_dup3, oldfd, newfd, flags));
  });
}

// glibc's public alias (GLIBC_2.2.5): the same function.
__attribute__((visibility("default"), alias("dup2"))) int __dup2(int oldfd, int newfd);

// fcntl's third argument is an int or a pointer depending on cmd; glibc's own
// fcntl reads it as a pointer whatever the cmd, and so do we.
#define TG_FCNTL(name)                                                                    \
  __attribute__((visibility("default"))) int name(int fd, int cmd, ...) {                 \
    va_list ap;                                                                           \
    va_start(ap, cmd);                                                                    \
    void* arg = va_arg(ap, void*);                                                        \
    va_end(ap);                                                                           \
    auto f = TG_REAL(name);                                                               \
    return guarded_fcntl(#name, fd, cmd, reinterpret_cast<long>(arg), [&] {               \
      return f ? f(fd, cmd, arg) : static_cast<int>(tg::sys::call_errno(SYS_fcntl, fd, cmd, arg)); \
    });                                                                                   \
  }

TG_FCNTL(fcntl)
TG_FCNTL(fcntl64)
TG_FCNTL(__fcntl)

}  // extern "C"

namespace {

// exec: pending files whose fds survive exec are handed to the new image in
// the environment; the others are published now. The new environment is built
// on the stack (exec may run in a vfork child: no allocation, and no mapping,
// which would stay in the parent's address space), in an array of exactly the
// size needed, as execl's: a thread with a small stack could not hold one for
// the largest environment.
constexpr size_t kMaxEnv = 4096;

// Does `envp` preload this library? A pending file is handed over only to a
// new image that loads it again, which needs LD_PRELOAD in the environment
// it is given (env -i, env -u LD_PRELOAD, execve with an environment of the
// program's own, python's subprocess with env=...), or the library in
// /etc/ld.so.preload, which ld.so loads into every program whatever its
// environment. Each list (LD_PRELOAD: the last one, which ld.so uses) split
// as ld.so splits it: a path names this file (the file this library's text
// maps: the one it was loaded from, even if another has since been put at
// that name), or a bare name is this file's name (ld.so looks it up in its
// search path), as is the last part of a path with a token ld.so expands
// ($LIB, ${PLATFORM}, $ORIGIN: the new image's values, which this one can't
// know), or a path names a build of truncguard that reads the same hand-over
// (its ELF note says which: an upgrade put it there since this one was
// loaded). In doubt (our own name unknown), yes: the hand-over is what
// happened before this check. Returns nullptr for yes, else why not, for the
// note (naming the list that names another file at truncguard's path).
// Asked here, at need, not by the constructor (dladdr and a stat there cost
// every process about 9 us): the loader's entry is read without its lock and
// the files with raw calls, as exec may come from a vfork child.
constexpr char kNoPreload[] = "its environment does not preload truncguard";
constexpr char kOtherBuild[] =
    "its LD_PRELOAD names truncguard's path, where this library's file no longer is, nor a build that reads "
    "its hand-over (truncguard replaced or removed since the program started?)";
constexpr char kOtherBuildSystem[] =
    "/etc/ld.so.preload names truncguard's path, where this library's file no longer is, nor a build that reads "
    "its hand-over (truncguard replaced or removed since the program started?)";

struct Self {
  const char* base;     // the last part of the name ld.so loaded this library by
  tg::FileId id;        // the file it was loaded from
  int known = -1;       // id: asked at the first path
};

enum class Entry { other, self, other_build };

// One entry of a preload list (NUL-terminated).
Entry preload_entry(const char* name, Self& self) {
  const char* slash = std::strrchr(name, '/');
  const char* base = slash ? slash + 1 : name;
  if (!slash || std::strchr(name, '$')) return std::strcmp(base, self.base) == 0 ? Entry::self : Entry::other;
  if (self.known < 0) self.known = tg::self_file_at(reinterpret_cast<unsigned long>(&preload_entry), &self.id);
  tg::FileId id;
  if (self.known && tg::maps_id_of_path(AT_FDCWD, name, &id) && id == self.id) return Entry::self;
  // Another file: a build of truncguard that reads this hand-over takes the
  // files over; anything else (another library, a build of another version
  // or older than the note) may not: they are published at the exec.
  tg::sys::Fd fd(tg::sys::openat(AT_FDCWD, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  const unsigned version = fd.ok() ? tg::hand_over_version(fd.get()) : 0;
  if (version == tg::pending::kHandOverVersion) return Entry::self;
  return version != 0 || std::strcmp(base, self.base) == 0 ? Entry::other_build : Entry::other;
}

// An entry too long to look at (ld.so loads it all the same: glibc 2.36
// has no limit there), the `n` bytes at `p`: known by its last part, as one
// with ld.so's tokens is. (Taken for this library in doubt, another
// library's long path had the file handed over to a program that never
// loaded truncguard: the content lost.)
Entry long_entry(const char* p, size_t n, const Self& self) {
  const char* base = p + n;
  while (base > p && base[-1] != '/') --base;
  const size_t len = static_cast<size_t>(p + n - base);
  return len == std::strlen(self.base) && std::memcmp(base, self.base, len) == 0 ? Entry::self : Entry::other;
}

// The entries of `list` (up to `end`), split at `seps`: the best answer of
// preload_entry. Each is copied into `name` (`cap` bytes), or, where `name`
// is null, ended in place (`list` is then the shim's own copy).
Entry preload_list(char* list, const char* end, const char* seps, Self& self, char* name, size_t cap) {
  Entry best = Entry::other;
  for (char* p = list; p < end && *p;) {
    size_t n = std::strcspn(p, seps);
    if (n > static_cast<size_t>(end - p)) n = static_cast<size_t>(end - p);
    const bool last = p + n >= end || !p[n];
    if (n > 0) {
      const char* entry = p;
      if (name && n < cap) {
        std::memcpy(name, p, n);
        name[n] = '\0';
        entry = name;
      } else if (!name) {
        p[n] = '\0';  // a separator, or the end the caller left room for
      }
      const Entry e = entry == p && name ? long_entry(p, n, self) : preload_entry(entry, self);
      if (e == Entry::self) return e;
      if (e == Entry::other_build) best = e;
    }
    if (last) break;
    p += n + 1;
  }
  return best;
}

// /etc/ld.so.preload, as ld.so reads it (rtld.c): a '#' to the end of its
// line a comment, blanked first; then the entries, split at ": \t\n", up to
// the first NUL byte left (strsep stops there: one after it is never loaded).
// Read in pieces through `buf` (`cap` bytes), whatever its length: an entry
// cut by a piece's end is carried to the next; of one longer than `buf`, only
// its last part is kept, and compared (long_entry). A read that fails ends
// the file there (ld.so could not read it either).
Entry system_preload_list(Self& self, char* buf, size_t cap) {
  tg::sys::Fd fd(tg::sys::openat(AT_FDCWD, "/etc/ld.so.preload", O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.ok()) return Entry::other;  // none (ld.so reads none either)
  constexpr char kSeps[] = ": \t\n";
  Entry best = Entry::other;
  size_t have = 0;    // an entry's start carried from the last piece
  bool cut = false;   // buf starts with the last part of an entry longer than it
  bool comment = false;
  for (size_t total = 0; total < (size_t{1} << 20);) {  // (ld.so reads it whole; 1 MiB is ample)
    const long got = tg::sys::read(fd.get(), buf + have, cap - 1 - have);
    bool end = got <= 0;
    if (got > 0) total += static_cast<size_t>(got);
    size_t len = have;
    for (; len < have + static_cast<size_t>(got > 0 ? got : 0); ++len) {
      if (buf[len] == '#') comment = true;
      else if (buf[len] == '\n') comment = false;
      if (comment) buf[len] = ' ';
      else if (buf[len] == '\0') {
        end = true;
        break;
      }
    }
    size_t from = 0;  // after the long entry, where it ends in this piece
    if (cut) {
      while (from < len && !std::strchr(kSeps, buf[from])) ++from;
      if (from < len || end) {
        if (long_entry(buf, from, self) == Entry::self) return Entry::self;
        cut = false;
      }
    }
    // Up to the last separator, unless the file ends here.
    size_t upto = len;
    if (!end)
      while (upto > from && !std::strchr(kSeps, buf[upto - 1])) --upto;
    if (cut || (!end && upto == 0 && len == cap - 1)) {
      // An entry longer than `buf`, not ended yet: its last part only (none
      // where a part fills `buf`: no file has such a name).
      size_t slash = len;
      while (slash > 0 && buf[slash - 1] != '/') --slash;
      have = slash > 0 || len < cap - 1 ? len - slash : 0;
      std::memmove(buf, buf + len - have, have);
      cut = true;
      continue;
    }
    const char kept = buf[upto];  // preload_list ends the last entry there
    buf[upto] = '\0';
    const Entry e = preload_list(buf + from, buf + upto, kSeps, self, nullptr, 0);
    if (e == Entry::self) return e;
    if (e == Entry::other_build) best = e;
    if (end) return best;
    buf[upto] = kept;
    have = len - upto;
    std::memmove(buf, buf + upto, have);
  }
  return best;
}

const char* env_cannot_adopt(char* const envp[]) {
  struct dl_find_object found;
  if (_dl_find_object(reinterpret_cast<void*>(&env_cannot_adopt), &found) != 0 || !found.dlfo_link_map ||
      !found.dlfo_link_map->l_name || !found.dlfo_link_map->l_name[0])
    return nullptr;
  const char* slash = std::strrchr(found.dlfo_link_map->l_name, '/');
  Self self{slash ? slash + 1 : found.dlfo_link_map->l_name, {}};
  char name[1024];  // exec may come from a thread with a small stack
  Entry e = Entry::other;
  const char* list = nullptr;
  for (size_t i = 0; envp && envp[i]; ++i)
    if (std::strncmp(envp[i], "LD_PRELOAD=", 11) == 0) list = envp[i] + 11;
  if (list && (e = preload_list(const_cast<char*>(list), list + std::strlen(list), " :", self, name, sizeof name)) ==
                  Entry::self)
    return nullptr;
  const Entry s = system_preload_list(self, name, sizeof name);
  if (s == Entry::self) return nullptr;
  if (s == Entry::other_build && e != Entry::other_build) return kOtherBuildSystem;
  return e == Entry::other_build ? kOtherBuild : kNoPreload;
}

// The program an exec is about to run: `path` relative to `dirfd` (as
// execve and execveat find it; an empty path with AT_EMPTY_PATH is dirfd
// itself), or, with `search`, a bare name looked up in PATH as execvpe does.
struct ExecTarget {
  int dirfd;
  const char* path;
  bool search = false;
  int flags = 0;
};

// `name` in the PATH entry dir[0..len), too long for a buffer on the stack
// (a PATH entry may be up to PATH_MAX): its directory walked a component at
// a time, as the kernel resolves it, in `comp` (NAME_MAX + 1 bytes at least).
// An fd, or -errno as the kernel's lookup of the whole name would fail.
int openat_in_long_dir(const char* dir, size_t len, const char* name, int flags, char* comp) {
  int at = tg::sys::openat(AT_FDCWD, dir[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  for (size_t i = 0; at >= 0 && i < len;) {
    size_t j = i;
    while (j < len && dir[j] != '/') ++j;
    if (j > i) {
      if (j - i > NAME_MAX) {
        tg::sys::close(at);
        return -ENAMETOOLONG;
      }
      std::memcpy(comp, dir + i, j - i);
      comp[j - i] = '\0';
      const int next = tg::sys::openat(at, comp, O_PATH | O_DIRECTORY | O_CLOEXEC);
      tg::sys::close(at);
      at = next;
    }
    i = j + 1;
  }
  if (at < 0) return at;
  const int fd = tg::sys::openat(at, name, flags);
  tg::sys::close(at);
  return fd;
}

// Its file, opened for reading (or the fd it is), or -1 where it can't be
// told which file that is (then it is taken to load the shim, as before).
int open_exec_target(const ExecTarget& t, bool* own) {
  *own = true;
  const int nofollow = (t.flags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0;
  if (!t.path || (!*t.path && (t.flags & AT_EMPTY_PATH))) {
    *own = false;
    return t.dirfd;
  }
  // O_NONBLOCK: a FIFO at the name (which exec refuses) must not block here.
  const int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
  if (!t.search || std::strchr(t.path, '/')) return tg::sys::openat(t.dirfd, t.path, flags | nofollow);
  const char* dirs = getenv("PATH");
  if (!dirs) dirs = "/bin:/usr/bin";  // glibc's default
  char full[512];  // a small stack may be all there is
  const size_t n = std::strlen(t.path);
  // glibc's execvpe skips an entry as long as PATH's first PATH_MAX - 1
  // bytes, and tries the current directory in its place (its loop goes on
  // from the colon: an empty entry).
  const size_t path_len = strnlen(dirs, PATH_MAX - 1) + 1;
  for (const char* p = dirs;; ++p) {
    size_t d = std::strcspn(p, ":");
    if (d >= path_len) {
      if (!p[d]) return -1;  // the last one: execvpe gives up
      p += d;
      d = 0;
    }
    int fd = -1;
    if (d + 1 + n < sizeof full) {
      size_t k = 0;
      if (d == 0) full[k++] = '.';
      std::memcpy(full + k, p, d);
      k += d;
      full[k++] = '/';
      std::memcpy(full + k, t.path, n + 1);
      fd = tg::sys::openat(AT_FDCWD, full, flags);
    } else if (d + 1 + n < PATH_MAX) {
      // It was skipped: a static program found there was taken to load the
      // shim, handed a pending file, and the write was lost.
      fd = openat_in_long_dir(p, d, t.path, flags, full);
    } else {
      fd = -ENAMETOOLONG;  // execve refuses the name
    }
    // execvpe goes on to the next entry only where the name is missing or
    // can't be run (ENOENT, ENOTDIR, EACCES...); a name the kernel can't
    // look up (ELOOP: a symlink loop, ENAMETOOLONG) ends its search, and the
    // exec fails. A program found further on was taken for the one to run:
    // a static one had the pending files published at an exec that failed.
    if (fd == -ELOOP || fd == -ENAMETOOLONG) return -1;
    struct stat st;
    if (fd >= 0 && tg::sys::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111)) return fd;
    if (fd >= 0) tg::sys::close(fd);
    p += d;
    if (!*p) return -1;
  }
}

// Why the program `t` names can't load the shim (static, another ELF class,
// secure mode...): then it could never publish a pending file. Into `buf`, or
// nullptr where it can, or where that can't be told.
const char* exec_target_cannot_load(const ExecTarget& t, char* buf, size_t len) {
  bool own;
  const int fd = open_exec_target(t, &own);
  if (fd < 0) return nullptr;
  char interp[128];
  const tg::NoPreload why = tg::why_no_preload(fd, interp, sizeof interp);
  if (own) tg::sys::close(fd);
  if (why == tg::NoPreload::none) return nullptr;
  const char* who = interp[0] ? "its #! interpreter " : "the program it runs ";
  const char* what = tg::to_string(why);
  const size_t a = std::strlen(who), b = std::strlen(what);
  if (a + b + 1 > len) return nullptr;
  std::memcpy(buf, who, a);
  std::memcpy(buf + a, what, b + 1);
  return buf;
}

// What an exec reads of its caller's memory (the path, argv and envp and
// each of their strings: fs/exec.c), read here only where the kernel could
// read it too: a pointer it refuses makes the exec fail with EFAULT, where
// the shim, reading it first, crashed the program. The kernel says whether
// a page is readable (sys::readable); one found so is read directly, and a
// few are remembered (the strings of an environment lie together). Where the
// kernel can't be asked (rt_sigprocmask refused by a seccomp filter), the
// memory is taken to be readable, as before.
class ExecMemory {
 public:
  ExecMemory() {
    for (uintptr_t& k : known_) k = 1;  // no page's address
  }
  bool string(const char* s) {
    for (uintptr_t p = reinterpret_cast<uintptr_t>(s);; p = page_of(p) + kPage) {
      if (!page_readable(p)) return false;
      if (std::memchr(reinterpret_cast<const char*>(p), 0, page_of(p) + kPage - p)) return true;
    }
  }
  // A NULL-terminated array of strings (a null array: none, as Linux takes it).
  bool strings(char* const* a) {
    for (size_t i = 0; a; ++i) {
      const uintptr_t entry = reinterpret_cast<uintptr_t>(a + i);
      if (!page_readable(entry) || !page_readable(entry + sizeof(char*) - 1)) return false;
      if (!a[i]) return true;
      if (!string(a[i])) return false;
    }
    return true;
  }

 private:
  static constexpr uintptr_t kPage = 4096;  // Linux's smallest: a larger page is several of these
  static constexpr int kKnown = 8;
  static uintptr_t page_of(uintptr_t p) { return p & ~(kPage - 1); }
  bool page_readable(uintptr_t p) {
    const uintptr_t page = page_of(p);
    for (const uintptr_t k : known_)
      if (k == page) return true;
    if (tg::sys::readable(reinterpret_cast<const void*>(page)) == 0) return false;
    known_[next_++ % kKnown] = page;
    return true;
  }
  uintptr_t known_[kKnown];
  unsigned next_ = 0;
};

// A vfork child that execs never leaves the frames of the exec wrappers, and
// it runs on its parent's stack. In a sanitizer build of the shim preloaded
// into a program built without ASan (whose vfork is glibc's, not ASan's, which
// would clean up after the child), the redzones ASan poisons around these
// frames' arrays and alloca stayed poisoned in the parent's stack shadow: the
// next call of the shim there (the next vfork child's open) was reported as a
// stack-buffer-overflow, and that child aborted. These frames get no redzones.
#define TG_EXEC_FRAME __attribute__((no_sanitize("address")))

// An environment too large to copy here is passed on as it is, whole: the
// pending files are then published at this exec instead of handed over; so
// are they when the program can't load the shim, whatever its environment
// says (a static binary, a 32-bit one, a set-id one). An exec the kernel
// will refuse for its memory (EFAULT) is passed on as it is too: it fails as
// without the shim, and nothing is published or handed over.
// An exec: the new image has none of this one's objects, so nothing would
// remove the TRUNCGUARD_RELOAD=fresh names made for them (they stayed on
// disk for good, each holding that version's blocks). Removed before the
// exec; one that fails costs only their removal at the unload (the name is
// gone already). One atomic load where none were made; none removed in a
// vfork child (they are its parent's).
TG_EXEC_FRAME inline void exec_begins() { tg::dl::remove_fresh_names(); }

// Nothing for the new image (no pending file, no fd kept on a locked file):
// the exec goes on as it came. Two atomic loads.
TG_EXEC_FRAME inline bool nothing_to_hand_over() {
  return !tg::pending::any() && !tg::posix_locks::any_parked();
}

template <typename Exec>
TG_EXEC_FRAME int exec_with_pending(char* const argv[], char* const envp[], const ExecTarget& target, Exec exec) {
  const bool pending = tg::pending::any(), kept = tg::posix_locks::any_parked();
  if (__builtin_expect(!pending && !kept, 1)) return exec(envp);
  ExecMemory mem;
  if ((target.path && !mem.string(target.path)) || !mem.strings(argv) || !mem.strings(envp)) return exec(envp);
  size_t count = 0;
  while (envp && envp[count]) ++count;
  char why[96];
  const char* no_env = count >= kMaxEnv ? "its environment has too many variables to add the hand-over to"
                                        : env_cannot_adopt(envp);
  const char* cannot = no_env ? no_env : exec_target_cannot_load(target, why, sizeof why);
  const char* entry = pending ? tg::pending::prepare_exec(cannot) : nullptr;
  // The fds kept on locked files stay open across the exec (without a
  // hand-over too: the locks matter more than an fd more in the new image).
  const char* kept_entry = kept ? tg::posix_locks::exec_begins(cannot == nullptr) : nullptr;
  int r;
  if (!entry && !kept_entry) {
    r = exec(envp);
  } else {
    const char** env = static_cast<const char**>(alloca((count + 3) * sizeof(char*)));
    size_t n = 0;
    static const char kVar[] = "TRUNCGUARD_PENDING=";
    constexpr size_t kKeptLen = sizeof tg::posix_locks::kEnvName - 1;
    for (size_t i = 0; i < count; ++i)
      if (std::strncmp(envp[i], kVar, sizeof kVar - 1) != 0 &&
          !(std::strncmp(envp[i], tg::posix_locks::kEnvName, kKeptLen) == 0 && envp[i][kKeptLen] == '='))
        env[n++] = envp[i];
    if (entry) env[n++] = entry;
    if (kept_entry) env[n++] = kept_entry;
    env[n] = nullptr;
    r = exec(const_cast<char* const*>(env));
  }
  const int saved = errno;  // the exec failed (ENOENT, EACCES...): the program goes on
  if (pending) tg::pending::exec_failed();
  if (kept) tg::posix_locks::exec_failed();
  errno = saved;
  return r;
}

}  // namespace

extern "C" {

TG_EXEC_FRAME __attribute__((visibility("default"))) int execve(const char* path, char* const argv[], char* const envp[]) {
  auto f = TG_REAL(execve);
  if (!f) { errno = ENOSYS; return -1; }
  exec_begins();
  if (__builtin_expect(nothing_to_hand_over(), 1)) return f(path, argv, envp);
  return exec_with_pending(argv, envp, {AT_FDCWD, path}, [&](char* const* env) { return f(path, argv, env); });
}

TG_EXEC_FRAME __attribute__((visibility("default"))) int execvpe(const char* file, char* const argv[], char* const envp[]) {
  auto f = TG_REAL(execvpe);
  if (!f) { errno = ENOSYS; return -1; }
  exec_begins();
  if (__builtin_expect(nothing_to_hand_over(), 1)) return f(file, argv, envp);
  return exec_with_pending(argv, envp, {AT_FDCWD, file, true}, [&](char* const* env) { return f(file, argv, env); });
}

TG_EXEC_FRAME __attribute__((visibility("default"))) int execv(const char* path, char* const argv[]) {
  exec_begins();
  if (__builtin_expect(nothing_to_hand_over(), 1)) {
    auto f = TG_REAL(execv);
    if (!f) { errno = ENOSYS; return -1; }
    return f(path, argv);
  }
  return execve(path, argv, environ);
}

TG_EXEC_FRAME __attribute__((visibility("default"))) int execvp(const char* file, char* const argv[]) {
  exec_begins();
  if (__builtin_expect(nothing_to_hand_over(), 1)) {
    auto f = TG_REAL(execvp);
    if (!f) { errno = ENOSYS; return -1; }
    return f(file, argv);
  }
  return execvpe(file, argv, environ);
}

// execl, execlp, execle: glibc builds argv and calls execve internally,
// out of reach; so do it here, on the stack (they may run in a vfork child),
// in an array of exactly the size needed, as glibc's own execl does: these
// are on the pass-through path, and a thread with a small stack (32 KiB)
// could not hold an array for the largest argument list.
constexpr int kMaxExecArgs = 4096;

// How many pointers argv needs: `first`, the arguments after it and the
// terminating NULL; 0 if there are more than kMaxExecArgs. Reads a copy of
// the caller's va_list. Not inline, as gather_args below.
__attribute__((noinline)) size_t count_args(const char* first, va_list* ap) {
  if (!first) return 1;
  for (size_t n = 2; n <= static_cast<size_t>(kMaxExecArgs) + 1; ++n)
    if (!va_arg(*ap, const char*)) return n;
  return 0;
}

// Fills argv from `first` and the variadic rest, up to the terminating NULL.
// Not inline in the wrappers: glibc declares their first argument nonnull,
// and a caller passing NULL must not make us read past the arguments.
__attribute__((noinline)) bool gather_args(const char* first, va_list* ap, const char** argv) {
  int n = 0;
  argv[n++] = first;
  while (first && n <= kMaxExecArgs) {
    argv[n] = va_arg(*ap, const char*);
    if (!argv[n++]) return true;
  }
  return first == nullptr;
}
#define TG_GATHER_ARGS(first, ap, argv, ok)                                                     \
  va_list counted;                                                                              \
  va_copy(counted, ap);                                                                         \
  const size_t argc_ = count_args(first, &counted);                                             \
  va_end(counted);                                                                              \
  const char** argv = static_cast<const char**>(alloca((argc_ ? argc_ : 1) * sizeof(char*)));   \
  const bool ok = argc_ != 0 && gather_args(first, &ap, argv);

TG_EXEC_FRAME __attribute__((visibility("default"))) int execl(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  TG_GATHER_ARGS(arg, ap, argv, ok);
  va_end(ap);
  if (!ok) { errno = E2BIG; return -1; }
  return execve(path, const_cast<char* const*>(argv), environ);
}

TG_EXEC_FRAME __attribute__((visibility("default"))) int execlp(const char* file, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  TG_GATHER_ARGS(arg, ap, argv, ok);
  va_end(ap);
  if (!ok) { errno = E2BIG; return -1; }
  return execvpe(file, const_cast<char* const*>(argv), environ);
}

TG_EXEC_FRAME __attribute__((visibility("default"))) int execle(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  TG_GATHER_ARGS(arg, ap, argv, ok);
  char* const* envp = va_arg(ap, char* const*);  // after the terminating NULL
  va_end(ap);
  if (!ok) { errno = E2BIG; return -1; }
  return execve(path, const_cast<char* const*>(argv), envp);
}

TG_EXEC_FRAME __attribute__((visibility("default"))) int fexecve(int fd, char* const argv[], char* const envp[]) {
  auto f = TG_REAL(fexecve);
  if (!f) { errno = ENOSYS; return -1; }
  exec_begins();
  if (__builtin_expect(nothing_to_hand_over(), 1)) return f(fd, argv, envp);
  return exec_with_pending(argv, envp, {fd, nullptr}, [&](char* const* env) { return f(fd, argv, env); });
}

// execveat (glibc 2.34+): the same, relative to a directory fd.
TG_EXEC_FRAME __attribute__((visibility("default"))) int execveat(int dirfd, const char* path, char* const argv[],
                                                    char* const envp[], int flags) {
  auto f = TG_REAL(execveat);
  if (!f) { errno = ENOSYS; return -1; }
  exec_begins();
  if (__builtin_expect(nothing_to_hand_over(), 1)) return f(dirfd, path, argv, envp, flags);
  return exec_with_pending(argv, envp, {dirfd, path, false, flags},
                           [&](char* const* env) { return f(dirfd, path, argv, env, flags); });
}

// posix_spawn's file actions are opened by the child inside glibc, out of the
// shim's reach. So the file gets its new inode when the action is added: the
// child's open then meets the new inode (empty for O_TRUNC, a copy otherwise)
// and writes there. (Earlier than the spawn itself, with the same outcome.)
__attribute__((visibility("default"))) int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t* actions,
                                                                          int fd, const char* path, int oflag,
                                                                          mode_t mode) {
  auto f = TG_REAL(posix_spawn_file_actions_addopen);
  if (!f) return ENOSYS;
  if (tg::may_change_content(oflag) && !tg::in_guard()) {
    const tg::WriteKind kind = (oflag & O_TRUNC) ? tg::WriteKind::truncate_open : tg::WriteKind::in_place_open;
    const int saved = errno;
    const tg::Outcome o = tg::guard_write({"posix_spawn_file_actions_addopen", kind, AT_FDCWD, path, -1, oflag, 0});
    if (o.kind == tg::Outcome::fail) return o.value;  // this function returns error numbers
    if (o.kind == tg::Outcome::replaced) {
      const int err = tg::pending::any() ? tg::pending::closing(o.value) : 0;  // atomic: publish now
      tg::sys::close(o.value);
      errno = saved;
      if (err) return err;
    }
  }
  return f(actions, fd, path, oflag, mode);
}

// dlclose has no caller-dependent behaviour: a plain wrapper. (dlopen does:
// it is a real tail call in dl_trampoline.S.)
// How deep this thread is in dlclose: one called from a destructor that
// another dlclose runs only marks the object; the outer one unloads it.
__attribute__((tls_model("initial-exec"))) static thread_local int t_dlclose_depth = 0;

__attribute__((visibility("default"))) int dlclose(void* handle) {
  tg::dl::CloseWatch watch;
  if (!tg::in_guard()) tg::dl::before_close(handle, __builtin_return_address(0), &watch);
  auto f = TG_REAL(dlclose);
  if (!f) return -1;
  ++t_dlclose_depth;
  const int r = f(handle);
  --t_dlclose_depth;
  if (watch.valid) tg::dl::after_close(watch, r, t_dlclose_depth > 0);
  return r;
}

}  // extern "C"

// ---- syscall(): a program's system call by number. The numbers that have a
// wrapper above go through that wrapper's guarded function (one way in), the
// real call being the next syscall(), with its result and errno: a
// syscall(SYS_openat, ..., O_TRUNC) or syscall(SYS_ftruncate) over a library in
// use is protected as openat() and ftruncate() are, and libuv's
// syscall(SYS_close, fd) publishes in atomic mode (measured: node's
// writeFileSync over a library in use lost its new content). Every other
// number: a switch, then the next syscall() with six arguments, which glibc's
// own reads whatever the caller passed (the sixth from the caller's stack).
//
// Defined with seven long parameters, not `...`, on x86-64 and aarch64: in
// their ABIs a variadic call passes its integer arguments as a call with
// these parameters does (registers, then the stack), which glibc's own
// syscall() relies on too; va_arg's walk cost some 80 instructions a call on
// the pass-through path (Rust's std makes its futex calls through syscall()).
// Other ABIs need not pass them so (some pass a variadic call's arguments
// otherwise than a fixed one's): there it is `...` and va_arg, checked by
// nothing but the compiler, as no test here runs on another architecture.
// The numbers taken in are worked on in routed_syscall, out of the entry's
// way: for the others, the entry is a switch and a call.
// SYS_openat2 passes: its RESOLVE_* flags would have to bind every open the
// guard makes (docs/guarantees.md, "What is not guaranteed").
namespace {

// The process ends (_exit, _Exit, syscall(SYS_exit_group)): see exit_now.
inline void exiting() {
  tg::dl::remove_fresh_names();
  if (__builtin_expect(tg::pending::any(), 0) && !tg::in_guard()) tg::pending::publish_all();
}

// The next syscall(), resolved by the constructor too: a first call from a
// signal handler or a vfork child must not run dlsym.
using SyscallFn = long (*)(long, ...);
constinit std::atomic<SyscallFn> g_real_syscall{nullptr};

__attribute__((noinline)) long next_syscall(long nr, const long* a) {
  const SyscallFn f = tg::real::next(g_real_syscall, "syscall");
  return f ? f(nr, a[0], a[1], a[2], a[3], a[4], a[5]) : tg::sys::call_errno(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

// The same call with argument `i` replaced (an open's flags, an exec's environment).
long next_syscall_with(long nr, const long* a, int i, long v) {
  long b[6] = {a[0], a[1], a[2], a[3], a[4], a[5]};
  b[i] = v;
  return next_syscall(nr, b);
}

template <typename T>
T* as_ptr(long v) { return reinterpret_cast<T*>(v); }

// The kernel takes the number's low 32 bits (x86-64 and arm64: an int), and so
// must the switches: syscall(SYS_openat | 1L << 32, ...) is an openat.
constexpr int kernel_number(long nr) { return static_cast<int>(nr); }

__attribute__((noinline)) long routed_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  const long a[6] = {a0, a1, a2, a3, a4, a5};
  const int fd = static_cast<int>(a[0]);
  auto real = [&] { return next_syscall(nr, a); };
  auto real_int = [&] { return static_cast<int>(next_syscall(nr, a)); };
  constexpr int kCreat = O_CREAT | O_WRONLY | O_TRUNC;
  switch (kernel_number(nr)) {
#ifdef SYS_open  // (x86-64: open, creat, dup2; newer ports have only the *at forms)
    case SYS_open:
      return guarded_open("syscall(SYS_open)", AT_FDCWD, as_ptr<const char>(a[0]), static_cast<int>(a[1]),
                          [&](int fl) { return static_cast<int>(next_syscall_with(nr, a, 1, fl)); });
    case SYS_creat:
      return guarded_open("syscall(SYS_creat)", AT_FDCWD, as_ptr<const char>(a[0]), kCreat, [&](int fl) {
        if (fl == kCreat) return real_int();
        const long b[6] = {AT_FDCWD, a[0], fl, a[1], 0, 0};  // creat with other flags: openat says it
        return static_cast<int>(next_syscall(SYS_openat, b));
      });
    case SYS_dup2:
      return guarded_dup(fd, static_cast<int>(a[1]), 0, real_int);
#endif
    case SYS_openat:
      return guarded_open("syscall(SYS_openat)", fd, as_ptr<const char>(a[1]), static_cast<int>(a[2]),
                          [&](int fl) { return static_cast<int>(next_syscall_with(nr, a, 2, fl)); });
    case SYS_truncate:
      return guarded_truncate("syscall(SYS_truncate)", as_ptr<const char>(a[0]), a[1], real_int);
    case SYS_ftruncate:
      return guarded_ftruncate("syscall(SYS_ftruncate)", fd, a[1], real_int);
    case SYS_fallocate:
      return guarded_fd_change("syscall(SYS_fallocate)", fd, changes_content(static_cast<int>(a[1])), real);
    case SYS_pwritev2:  // (fd, iov, cnt, pos_l, pos_h, flags)
      return watched_write(guarded_fd_change("syscall(SYS_pwritev2)", fd, (a[5] & kRwfNoAppend) != 0, real), fd);
    case SYS_fcntl:
      return guarded_fcntl("syscall(SYS_fcntl)", fd, static_cast<int>(a[1]), a[2], real_int);
    case SYS_dup:
      return guarded_dup(fd, -1, 0, real_int);
    case SYS_dup3:
      return guarded_dup(fd, static_cast<int>(a[1]), static_cast<int>(a[2]), real_int);
    case SYS_close:
      return guarded_close(fd, real_int);
    case SYS_close_range:  // (its pieces through the next syscall() too)
      return guarded_close_range(static_cast<unsigned>(a[0]), static_cast<unsigned>(a[1]), static_cast<int>(a[2]),
                                 [&](unsigned first, unsigned last, int flags) {
                                   const long b[6] = {first, last, flags, 0, 0, 0};
                                   return static_cast<int>(next_syscall(nr, b));
                                 });
    case SYS_write:
    case SYS_pwrite64:
    case SYS_writev:
    case SYS_pwritev:
    case SYS_sendfile:
      return watched_write(real(), fd);
    case SYS_copy_file_range:  // (in, in_off, out, ...)
    case SYS_splice:           // the same
      return watched_write(real(), static_cast<int>(a[2]));
    case SYS_fsync:
    case SYS_fdatasync:
      return watched_sync(real_int(), fd);
    case SYS_sync:
    case SYS_syncfs:
      return watched_sync_all(real_int());
#ifdef SYS_rename
    case SYS_rename:  // (from, to)
      return watched_rename(AT_FDCWD, as_ptr<const char>(a[0]), AT_FDCWD, as_ptr<const char>(a[1]), 0, real);
#endif
    case SYS_renameat:   // (fromdir, from, todir, to)
    case SYS_renameat2:  // (..., flags)
      return watched_rename(fd, as_ptr<const char>(a[1]), static_cast<int>(a[2]), as_ptr<const char>(a[3]),
                            kernel_number(nr) == SYS_renameat2 ? static_cast<unsigned>(a[4]) : 0u, real);
    case SYS_msync:  // (addr, len, flags)
      return (a[2] & MS_SYNC) ? watched_sync_all(real_int()) : real();
    case SYS_rt_sigaction: {  // (sig, act, oldact, sigsetsize): as sigaction, the handler is noted
      // Once installed, read back from the kernel: `act` may be a pointer the
      // kernel refuses (EFAULT), which the shim must not read itself.
      const long r = real();
      long installed[8];  // the kernel's struct sigaction, handler first
      if (r == 0 && a[1] && tg::sys::call(SYS_rt_sigaction, a[0], nullptr, installed, a[3]) == 0)
        tg::note_handler(static_cast<int>(a[0]), reinterpret_cast<__sighandler_t>(installed[0]));
      return r;
    }
    default:
      return real();
  }
}

// The next syscall() with these arguments, none of them in an array (no
// redzone in the frame of an exec that never returns).
__attribute__((noinline)) long next_syscall_args(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  const SyscallFn f = tg::real::next(g_real_syscall, "syscall");
  return f ? f(nr, a0, a1, a2, a3, a4, a5) : tg::sys::call_errno(nr, a0, a1, a2, a3, a4, a5);
}

// The calls a vfork child makes last (an exec, the exit): it never leaves
// their frames, so they get no ASan redzones (TG_EXEC_FRAME), and they are
// kept out of routed_syscall, whose arrays' redzones a child that exec'ed in
// there left poisoned in its parent's stack shadow (the next vfork child's
// open was reported as a stack-buffer-overflow and aborted), as the exec
// wrappers' did (b712fe9). The entry on the way (syscall_entry) keeps no
// array either. (TG_EXEC_FRAME on the entry itself, which returns for every
// other call, left use-after-scope poison behind under GCC 12.)
TG_EXEC_FRAME __attribute__((noinline)) long final_syscall(long nr, long a0, long a1, long a2, long a3, long a4,
                                                           long a5) {
  // No array here: the arguments go on as they came (next_syscall_args).
  auto real = [&] { return next_syscall_args(nr, a0, a1, a2, a3, a4, a5); };
  switch (kernel_number(nr)) {
    case SYS_execve:
      exec_begins();
      if (__builtin_expect(nothing_to_hand_over(), 1)) return real();
      return exec_with_pending(as_ptr<char* const>(a1), as_ptr<char* const>(a2), {AT_FDCWD, as_ptr<const char>(a0)}, [&](char* const* env) {
        return static_cast<int>(next_syscall_args(nr, a0, a1, reinterpret_cast<long>(env), a3, a4, a5));
      });
    case SYS_exit_group:
      exiting();
      return real();
    case SYS_execveat:  // (dirfd, path, argv, envp, flags)
      exec_begins();
      if (__builtin_expect(nothing_to_hand_over(), 1)) return real();
      return exec_with_pending(as_ptr<char* const>(a2), as_ptr<char* const>(a3), {static_cast<int>(a0), as_ptr<const char>(a1), false, static_cast<int>(a4)},
                               [&](char* const* env) {
                                 return static_cast<int>(next_syscall_args(nr, a0, a1, a2, reinterpret_cast<long>(env), a4, a5));
                               });
    default:
      return real();
  }
}

constexpr bool final_call(int nr) { return nr == SYS_execve || nr == SYS_execveat || nr == SYS_exit_group; }

// The numbers routed_syscall takes in (each has its case there).
constexpr bool routed(int nr) {
  switch (nr) {
#ifdef SYS_open
    case SYS_open:
    case SYS_creat:
    case SYS_dup2:
#endif
    case SYS_openat:
    case SYS_truncate:
    case SYS_ftruncate:
    case SYS_fallocate:
    case SYS_pwritev2:
    case SYS_fcntl:
    case SYS_dup:
    case SYS_dup3:
    case SYS_close:
    case SYS_close_range:
    case SYS_write:
    case SYS_pwrite64:
    case SYS_writev:
    case SYS_pwritev:
    case SYS_sendfile:
    case SYS_copy_file_range:
    case SYS_splice:
    case SYS_fsync:
    case SYS_fdatasync:
#ifdef SYS_rename
    case SYS_rename:
#endif
    case SYS_renameat:
    case SYS_renameat2:
    case SYS_sync:
    case SYS_syncfs:
    case SYS_msync:
    case SYS_execve:
    case SYS_rt_sigaction:
    case SYS_exit_group:
    case SYS_execveat:
      return true;
    default:
      return false;
  }
}

// The entry's work: the numbers taken in routed, the others to the next syscall().
__attribute__((always_inline)) inline long dispatch_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  if (__builtin_expect(routed(kernel_number(nr)), 0))
    return final_call(kernel_number(nr)) ? final_syscall(nr, a0, a1, a2, a3, a4, a5)
                                         : routed_syscall(nr, a0, a1, a2, a3, a4, a5);
  if (const SyscallFn f = g_real_syscall.load(std::memory_order_acquire)) return f(nr, a0, a1, a2, a3, a4, a5);
  return next_syscall_args(nr, a0, a1, a2, a3, a4, a5);  // (before the constructor: dlsym)
}

}  // namespace

#if defined(__x86_64__) || defined(__aarch64__)
extern "C" __attribute__((visibility("default"))) long syscall_entry(long nr, long a0, long a1, long a2, long a3,
                                                                     long a4, long a5) __asm__("syscall");
long syscall_entry(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  long r = dispatch_syscall(nr, a0, a1, a2, a3, a4, a5);
  // No tail call: it stores a5 back where it was read, the caller's stack
  // above the return address, which a call with fewer than seven arguments
  // does not give us (a variable of the caller's there, changed meanwhile by
  // another thread, a futex word, got its old value back).
  __asm__ volatile("" : "+r"(r));
  return r;
}
#else
extern "C" __attribute__((visibility("default"))) long syscall(long nr, ...) noexcept {
  va_list ap;
  va_start(ap, nr);
  long a[6];
  for (long& v : a) v = va_arg(ap, long);  // six, whatever the caller passed: as glibc's own reads them
  va_end(ap);
  return dispatch_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
#endif

// ---- The program's signal handlers. Once it has one, the shim's work on a
// write holds the thread's signals back (signals.hpp): a handler that jumps
// out (siglongjmp) must not abandon it half-way. Each way in records the
// handler first (a signal may come as soon as it is installed), then calls
// the next definition: results and errno are that one's.

extern "C" {

// Not declared with _GNU_SOURCE (bsd_signal), or not at all (__sigaction).
__sighandler_t bsd_signal(int sig, __sighandler_t handler) noexcept;
int __sigaction(int sig, const struct sigaction* act, struct sigaction* old) noexcept;

#define TG_SIGNAL(name)                                                                                \
  __attribute__((visibility("default"))) __sighandler_t name(int sig, __sighandler_t handler) noexcept { \
    tg::note_handler(sig, handler);                                                                    \
    auto f = TG_REAL(name);                                                                            \
    if (!f) { errno = ENOSYS; return SIG_ERR; }                                                        \
    return f(sig, handler);                                                                            \
  }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // sigset: programs still call it
TG_SIGNAL(signal)
TG_SIGNAL(bsd_signal)
TG_SIGNAL(ssignal)
TG_SIGNAL(sysv_signal)
TG_SIGNAL(__sysv_signal)
TG_SIGNAL(sigset)
#pragma GCC diagnostic pop

#define TG_SIGACTION(name)                                                                            \
  __attribute__((visibility("default"))) int name(int sig, const struct sigaction* act,                \
                                                  struct sigaction* old) noexcept {                    \
    if (act) tg::note_handler(sig, act->sa_handler); /* sa_sigaction shares its storage */            \
    auto f = TG_REAL(name);                                                                            \
    if (!f) { errno = ENOSYS; return -1; }                                                             \
    return f(sig, act, old);                                                                           \
  }
TG_SIGACTION(sigaction)
TG_SIGACTION(__sigaction)

}  // extern "C"

// Read the settings (and print their warnings) once, early, in every process,
// and take over the files a previous image of this process left pending.
namespace {

// The next _exit and _Exit, resolved at start-up: they are called from vfork
// children, which must not take the loader's locks (dlsym) that a thread of
// the parent may hold.
std::atomic<void (*)(int)> g_real_exit{nullptr}, g_real_Exit{nullptr};

// _exit() and _Exit() end the process without destructors, and the kernel
// closes every fd: that is the writer's last close. So a file pending in this
// process is published there, as at exit() (dash, Debian's /bin/sh, always
// ends with _exit(): a file a dash script opened itself, `exec >lib.so`, was
// never published, the write lost). The streams are not flushed: _exit()
// doesn't. A vfork child owns no pending file (they are its parent's), so it
// publishes nothing. A crash still publishes nothing: the old file stays.
[[noreturn]] void exit_now(const std::atomic<void (*)(int)>& next, int status) {
  exiting();
  if (auto f = next.load(std::memory_order_acquire)) f(status);
  for (;;) tg::sys::call(SYS_exit_group, status);  // before our constructor: the kernel's own
}

}  // namespace

extern "C" {
__attribute__((visibility("default"))) void _exit(int status) { exit_now(g_real_exit, status); }
__attribute__((visibility("default"))) void _Exit(int status) { exit_now(g_real_Exit, status); }
}

// The copy ld.so loads as an LD_AUDIT module (truncguard --audit) only
// reports: the files belong to the program's own copy.
__attribute__((constructor)) static void truncguard_init() {
  (void)tg::settings();
  if (tg::dl::is_audit_copy()) return;
  tg::real::next(g_real_exit, "_exit");
  tg::real::next(g_real_Exit, "_Exit");
  tg::real::next(g_real_syscall, "syscall");
  tg::dl::remember_initial_objects();
  tg::fork_gate::install();  // fork() waits for the shim's walks of the loaded objects
  tg::posix_locks::install_fork_handler();
  tg::posix_locks::adopt_from_environment();
  tg::pending::adopt_from_environment();
  tg::dl::hooks_ready();
  if (tg::log::enabled(tg::kBacktrace)) tg::log::load_unwinder();
}

// exit() flushes the streams only after this destructor, and fcloseall()
// only flushes them: a stream on a pending file that lost data (a failed
// fwrite left its error flag set; or this last flush fails) fails its file,
// which fflush(NULL) alone did not say (measured: a library left half-written
// by fwrite onto a full filesystem was published at exit).
static void flush_pending_streams() {
  if (!_IO_iter_begin || !_IO_iter_end || !_IO_iter_next || !_IO_iter_file || !_IO_list_lock || !_IO_list_unlock)
    return;
  _IO_list_lock();
  for (FILE* it = _IO_iter_begin(); it != _IO_iter_end(); it = _IO_iter_next(it)) {
    FILE* stream = _IO_iter_file(it);
    const int fd = stream ? fileno(stream) : -1;
    if (fd >= 0 && tg::pending::is_pending(fd)) flush_pending_stream(stream, fd);
  }
  _IO_list_unlock();
}

// exit() without close: the writer is done. Flush the streams first (exit
// would only do it after this destructor), then publish. (_exit, _Exit and
// exit_group publish through exiting(), without the flush; a crash publishes
// nothing: the unnamed inode vanishes and the old file stays.) The fresh
// reload names go too.
__attribute__((destructor)) static void truncguard_fini() {
  tg::dl::remove_fresh_names();
  if (!tg::pending::any()) return;
  flush_pending_streams();
  fflush(nullptr);
  tg::pending::publish_all();
}
