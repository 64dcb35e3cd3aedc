#include "guard.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <linux/fs.h>
#include <sched.h>
#include <sys/auxv.h>

#include "decision.hpp"
#include "dl_bindings.hpp"
#include "elf_probe.hpp"
#include "fd_move.hpp"
#include "log.hpp"
#include "maps_reader.hpp"
#include "pending.hpp"
#include "posix_locks.hpp"
#include "replace.hpp"
#include "scratch.hpp"
#include "signals.hpp"
#include "sys.hpp"

namespace tg {
namespace {

// The shim's own work makes raw system calls and never comes back through its
// wrappers, so a guarded call nested in another on the same thread is a signal
// handler that interrupted the shim (a fault's: others wait, Working): it
// is protected like any other call. The depth limit only stops a runaway (a
// handler interrupted by a handler...).
// initial-exec: no __tls_get_addr (which may allocate) on the way in.
constexpr int kMaxGuardDepth = 2;
__attribute__((tls_model("initial-exec"))) thread_local int t_guard_depth = 0;
__attribute__((tls_model("initial-exec"))) thread_local bool t_loading_settings = false;

// The inode this thread last moved an fd onto. An append-only fd is examined
// at every pwritev2(RWF_NOAPPEND) or fallocate: after the first has moved it
// to a new inode, the next ones are the same writer going on with its own new
// file, which no running program had mapped. Without this, each call would
// scan again, and where some process can't be inspected, copy again.
struct MadeForFd {
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
};
__attribute__((tls_model("initial-exec"))) thread_local MadeForFd t_made_for_fd;

// This thread works on a write: from the first fd the shim takes for it to
// after the last is closed, its asynchronous signals wait (signals.hpp), so
// that a handler that jumps out of the write finds the shim done: before,
// after two such jumps the depth stayed up, and every later write of that
// thread went unprotected. The depth counts the writes being worked on.
class Working {
 public:
  Working() = default;
  Working(const Working&) = delete;
  Working& operator=(const Working&) = delete;
  ~Working() { end(); }
  void begin() {
    if (on_) return;
    on_ = true;
    signals_.hold();
    ++t_guard_depth;
  }
  // Also before a wait the program's signals must interrupt (a lease break).
  void end() {
    if (!on_) return;
    on_ = false;
    --t_guard_depth;
    signals_.release();
  }

 private:
  SignalsHeld signals_;
  bool on_ = false;
};

// Inline always: the core is built for size, and with several users -Os
// made these two calls of their own on every examined write.
struct ErrnoKeeper {
  [[gnu::always_inline]] ErrnoKeeper() : saved(errno) {}
  [[gnu::always_inline]] ~ErrnoKeeper() { errno = saved; }
  int saved;
};

Settings g_settings;
std::atomic<int> g_settings_state{0};  // 0 none, 1 being read, 2 ready

void warn(const char* message) {
  log::Event e{log::EventKind::warning};
  e.message = message;
  log::emit(e);
}

void print_help_and_exit() {
  // To the person who asked, not into TRUNCGUARD_LOG's file: glibc's
  // LD_DEBUG=help prints its list whatever LD_DEBUG_OUTPUT says. The
  // process ends here, so the settings need not be put back.
  g_settings.log_path[0] = '\0';
  log::configure(g_settings);
  log::line("Valid options for the TRUNCGUARD_DEBUG environment variable are:");
  log::line("%s", "");
  for (const CategoryInfo* c = kCategories; c->name; ++c) log::line("  %-10s %s", c->name, c->help);
  log::line("%s", "");
  log::line("To direct the output into a file instead of standard error, use TRUNCGUARD_LOG=FILE:");
  log::line("the output goes to FILE.PID.");
  _exit(0);  // as LD_DEBUG=help does
}

// A relative TRUNCGUARD_LOG names a file in the directory the process
// started in, as LD_DEBUG_OUTPUT's, which ld.so opens at start-up: the shim
// opens it at the first line and looks it up again at each (rotation), and a
// program that had changed directory since (a daemon's chdir("/"), make -C, a
// deploy script's cd into the library directory) got a second FILE.PID made
// there, its lines split between the two. Made absolute once, here; left
// relative if the directory has no name (removed). False if the whole is too
// long: then the log goes to stderr, as for a name too long (the caller warns,
// once the log's format is set).
bool anchor_log_path(Settings& s) {
  if (s.log_path[0] == '\0' || s.log_path[0] == '/') return true;
  TG_LARGE_TABLE static char cwd[PATH_MAX];  // (a page touched only here)
  const long n = sys::call(SYS_getcwd, cwd, sizeof cwd);
  if (n <= 1 || cwd[0] != '/') return true;  // unreachable or no name: as it was
  const size_t dir_len = static_cast<size_t>(n) - 1, rel_len = std::strlen(s.log_path);
  if (dir_len + 1 + rel_len + 12 >= sizeof s.log_path) {  // room for ".PID", as parse_settings leaves
    s.log_path[0] = '\0';
    return false;
  }
  std::memmove(s.log_path + dir_len + 1, s.log_path, rel_len + 1);
  std::memcpy(s.log_path, cwd, dir_len);
  s.log_path[dir_len] = '/';
  return true;
}

// Not inlined into settings(): its 5 KiB Settings temporary must not be in
// the frame of every call, which only reads them (a thread's stack may be small).
__attribute__((noinline)) void load_settings() {
  const bool secure = getauxval(AT_SECURE) != 0;
  g_settings = parse_settings([](const char* n) -> const char* { return getenv(n); }, secure);
  const bool anchored = anchor_log_path(g_settings);
  log::configure(g_settings);
  if (secure) {
    // Nor for the programs it starts, as ld.so removes LD_DEBUG_OUTPUT and
    // LD_DEBUG: a setuid-root program that makes its real uid root too
    // (setuid(0)) and runs a helper gives it no secure execution, and the
    // helper, truncguard in /etc/ld.so.preload, created the caller's
    // TRUNCGUARD_LOG file as root wherever the caller said (in /etc).
    // (The settings hold their own copy of the name.)
    pending::environ_remove("TRUNCGUARD_LOG", sizeof "TRUNCGUARD_LOG" - 1);
    pending::environ_remove("TRUNCGUARD_DEBUG", sizeof "TRUNCGUARD_DEBUG" - 1);
  }
  if (dl::is_audit_copy()) return;  // the program's own copy says it (truncguard --audit)
  for (int i = 0; i < g_settings.warning_count; ++i) warn(g_settings.warnings[i]);
  if (!anchored) warn("TRUNCGUARD_LOG is too long once made absolute; logging to stderr");
  if (g_settings.log_ignored) warn("TRUNCGUARD_LOG ignored: secure execution (a setuid, setgid or file-capabilities program)");
  if (g_settings.debug_ignored) warn("TRUNCGUARD_DEBUG ignored: secure execution (a setuid, setgid or file-capabilities program)");
  if (g_settings.debug_help) print_help_and_exit();
}

// Who maps it, for the log: the processes found (with their names) and a
// sentence such as "pid 12 (victim), pid 14 (victim)" or "this process (pid 9)".
struct Who {
  log::Mapper mappers[ScanResult::kMaxPids];
  int count;
  char text[512];
};

// The working memory of a write that may be acted on (an ELF file whose
// content would change): kilobytes of names and sentences, which must not be
// on the caller's stack (scratch.hpp). Mapped at the first such write and
// kept for the next (a deploy replaces files one after another): 16 KiB.
struct ActingMemory {
  char fd_path[PATH_MAX];  // an fd kind: the name the fd was opened under
  FdMove move;             // an fd kind: its move to the new file
  ResolveMemory resolve;   // resolve_target's copies of the path and a link
  Who who;
  char msg[log::kPathBuf + 96];
  char target[log::kPathBuf];
};

void describe_who(Reason reason, const ScanResult& scan, bool self, ElfKind kind, pid_t me, Who* who) {
  char* out = who->text;
  const size_t len = sizeof who->text;
  int shown = scan.mapped < ScanResult::kMaxPids ? scan.mapped : ScanResult::kMaxPids;
  for (int i = 0; i < shown; ++i) {
    log::Mapper& m = who->mappers[who->count++];
    m.pid = scan.pids[i];
    process_name(scan.pids[i], m.comm, sizeof m.comm);
  }
  size_t o = 0;
  auto add = [&](const char* fmt, auto... args) {
    if (o < len) {
      int n = std::snprintf(out + o, len - o, fmt, args...);
      if (n > 0) o += static_cast<size_t>(n);
    }
  };
  // "it is an ELF shared object"; a file the writer may not read counts as
  // one too, and says so.
  char it_is[64];
  if (kind == ElfKind::unreadable) std::snprintf(it_is, sizeof it_is, "its header could not be read");
  else std::snprintf(it_is, sizeof it_is, "it is an %s", to_string(kind));
  if (reason == Reason::scope_elf) {
    add("nobody checked: scope elf, and %s", it_is);
  } else if (reason == Reason::self_uninspected) {
    add("nobody known: this process's own maps could not be read, and %s", it_is);
  } else if (reason == Reason::uninspected_elf && scan.proc_missing) {
    add("nobody known: /proc could not be read, and %s", it_is);
  } else if (reason == Reason::other_machines_elf) {
    add("no process of this machine, but other machines share this filesystem (their processes can't be seen), and %s",
        it_is);
  } else if (reason == Reason::uninspected_elf) {
    if (scan.uninspected > 0)
      add("no readable process, but %d process%s could not be inspected%s and %s", scan.uninspected,
          scan.uninspected == 1 ? "" : "es", scan.outside_pid_ns ? ", nor those outside this PID namespace," : "",
          it_is);
    else
      add("no readable process, but the processes outside this PID namespace could not be inspected and %s", it_is);
  } else {
    if (me == 0) me = sys::getpid();  // not asked by the scan (scope self)
    if (self) add("this process (pid %d)", static_cast<int>(me));
    for (int i = 0; i < who->count; ++i) {
      if (who->mappers[i].pid == me) continue;
      char esc[96];
      log::escape(who->mappers[i].comm, esc, sizeof esc);
      add("%spid %d (%s)", o ? ", " : "", static_cast<int>(who->mappers[i].pid), esc);
    }
    if (scan.mapped > shown) add(" and %d more", scan.mapped - shown);
  }
  // An answer reused from this process's snapshot says what was true then.
  if (scan.reused_ms >= 0) add(", per a scan %ld ms ago", scan.reused_ms);
}

void log_decision(const WriteIntent& in, const char* name, bool act, Reason r) {
  if (!log::enabled(kDecisions)) return;
  char fd_name[32];
  if (!name) {  // an fd whose name is not known (yet)
    std::snprintf(fd_name, sizeof fd_name, "fd %d", in.fd);
    name = fd_name;
  }
  log::Event e{log::EventKind::decision};
  e.file = name;
  e.entry = in.entry;
  e.act = act;
  e.reason = to_string(r);
  log::emit(e);
}

Outcome log_pass(const WriteIntent& in, const char* name, Reason r) {
  log_decision(in, name, false, r);
  return {Outcome::pass, 0};
}

// Nothing (or something else) was at the name when looked at: something may
// appear before the real open. A truncating open then re-checks instead of
// truncating whatever is there (guarded_open in interpose.cpp).
Outcome changed_under_us(const WriteIntent& in, const char* name) {
  Outcome o = log_pass(in, name, Reason::missing);
  if (in.kind == WriteKind::truncate_open) o.kind = Outcome::pass_if_absent;
  return o;
}

// The name examined reaches another file (or none) by the time its
// directory is looked in. An open with O_TRUNC is retried by its caller
// without truncating what appeared (pass_if_absent); the other calls
// (truncate(2), an open without O_TRUNC) were let through unexamined, onto
// whatever the name held now, a library renamed there included: they are
// examined again from the start, up to the attempts guard_write allows.
Outcome name_changed_before_acting(const WriteIntent& in, const char* name, bool* again) {
  if (again && in.kind != WriteKind::truncate_open) {
    *again = true;
    return {Outcome::pass, 0};
  }
  return changed_under_us(in, name);
}

// Errors of resolve_target that are about the name itself: it is gone, or is
// no longer what was examined (the real call gives its own answer).
bool names_nothing(int resolved) {
  return resolved == -ENOENT || resolved == -ENOTDIR || resolved == -ELOOP || resolved == -EISDIR ||
         resolved == -ENAMETOOLONG;
}

// The kinds whose real call needs a new fd of its own (an open).
bool opens_an_fd(WriteKind k) { return k == WriteKind::truncate_open || k == WriteKind::in_place_open; }

// An open gives the lowest free fd number (POSIX), and programs rely on it
// (close(1), then open() to redirect stdout). The new inode's fd was made
// while the shim's own fds (the header, the directory) held lower numbers:
// once they are closed, it moves down, keeping its close-on-exec bit.
int lowest_number(int fd, bool cloexec) {
  const long low = sys::call(SYS_fcntl, fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
  if (low < 0) return fd;
  if (low > fd) {  // nothing free below it
    sys::close(static_cast<int>(low));
    return fd;
  }
  sys::close(fd);
  return static_cast<int>(low);
}
int lowest_number(int fd) {
  const long fdflags = sys::call(SYS_fcntl, fd, F_GETFD);
  return fdflags < 0 ? fd : lowest_number(fd, fdflags & FD_CLOEXEC);
}

// Atomic mode: the fd the caller gets on the unnamed inode `made` (taken
// over). An O_TMPFILE fd shows O_TMPFILE (__O_TMPFILE|O_DIRECTORY) in F_GETFL,
// which F_SETFL can't clear: the caller gets a plain open of the same inode,
// through /proc/thread-self/fd, with its own flags (less O_NOFOLLOW, which a /proc
// magic link refuses with ELOOP), so F_GETFL is an ordinary open's. Opened
// once the shim's own fds are closed, it takes the lowest free number, as
// open(2) gives. Where that open fails (no /proc, a file mode or an LSM that
// refuses it), the O_TMPFILE fd itself, moved to the lowest free number.
int callers_fd(int made, int caller_flags) {
  char proc[32];
  sys::fd_link(made, proc, sizeof proc);
  const int fd = sys::openat(AT_FDCWD, proc, replacement_flags(caller_flags) & ~(O_CREAT | O_EXCL | O_NOFOLLOW));
  if (fd < 0) return lowest_number(made);
  sys::close(made);
  return fd < made ? fd : lowest_number(fd);  // `made` held a lower number
}

// No new inode can be made: the documented fallback, always logged.
Outcome cannot_protect(const Settings& s, const WriteIntent& in, const char* name, const char* step, int error,
                       bool restored_old, const char* kept_aside = nullptr, int putback_error = 0,
                       bool incomplete_at_name = false) {
  log::Event fail{log::EventKind::cannot_protect};
  fail.file = name;
  fail.entry = in.entry;
  fail.step = step;
  fail.error = error;
  fail.restored_old = restored_old;
  fail.kept_aside = kept_aside;
  fail.putback_error = putback_error;
  fail.incomplete_at_name = incomplete_at_name;
  fail.truncating_anyway = s.on_fail == OnFail::truncate;
  log::emit(fail);  // failures are always reported
  if (fail.truncating_anyway) return {Outcome::pass, 0};
  return {Outcome::fail, ETXTBSY};
}

using log::note;

}  // namespace

bool in_guard() { return t_guard_depth >= kMaxGuardDepth; }

// The fallback while the settings can't be read (one copy: a Settings is 5 KiB).
const Settings kDefaultSettings;

const Settings& settings() {
  if (g_settings_state.load(std::memory_order_acquire) == 2) return g_settings;
  int expected = 0;
  if (g_settings_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    t_loading_settings = true;
    load_settings();
    t_loading_settings = false;
    g_settings_state.store(2, std::memory_order_release);
  } else if (t_loading_settings) {
    // A signal handler interrupted this very thread while it read them:
    // waiting would never end. The defaults are the safe answer.
    return kDefaultSettings;
  } else {
    // Another thread is reading them: wait, but not forever (a fork child
    // taken meanwhile has no such thread); then the defaults are safe.
    for (int i = 0; i < 100000 && g_settings_state.load(std::memory_order_acquire) != 2; ++i) sched_yield();
    if (g_settings_state.load(std::memory_order_acquire) != 2) return kDefaultSettings;
  }
  return g_settings;
}

namespace {

// What the guard learned about the file, cheapest facts first.
struct Examined {
  Working working;        // from the first fd taken to after the last is closed
  sys::Fd src;            // read fd on the file (or not ok: unreadable)
  int src_error = 0;      // why src could not be opened (EACCES, EMFILE...)
  bool path_looked_at = false;  // the kernel has read the path (fstatat), whatever it answered
  bool path_fault = false;  // the kernel refused the path's memory (EFAULT): never read it
  struct stat st {};
  ElfKind kind = ElfKind::unreadable;
  long src_fs_type = -1;  // src's filesystem, once asked (-1: not yet)
  long fs_type() {
    if (src_fs_type == -1) src_fs_type = sys::fs_type(src.get());
    return src_fs_type;
  }
  bool src_programs = false;  // src is the program's fd (looked_at_keeping's), never closed here
  // src is closed without taking the program's POSIX locks on the file with it.
  [[gnu::always_inline]] void close_src() {
    if (__builtin_expect(src_programs, 0)) (void)src.release();
    else posix_locks::close_own(src.release());
    src_programs = false;
  }
  ~Examined() { close_src(); }
};

// The smallest ELF header (Elf32_Ehdr): a shorter file can't be ELF, and
// needs no open to tell (most redirections write such small files).
constexpr off_t kMinElfSize = 52;

off_t content_after(const WriteIntent& in) {
  switch (in.kind) {
    case WriteKind::truncate_open: return 0;
    case WriteKind::in_place_open:
    case WriteKind::in_place_fd: return -1;
    default: return in.new_length;
  }
}

// O_NONBLOCK: an open never waits on someone's lease (a regular file ignores
// it otherwise). It fails with EWOULDBLOCK while a lease is held: if that is
// another truncguard's proof (another thread, another writer), it lasts
// microseconds, so try again a little; a long-held lease (Samba...) is then
// waited for, on that inode only (open_after_lease_break), unless `wait` is false.
// O_NOATIME: looking at the header must not change the file's atime (it is
// allowed to the file's owner and to root; others get EPERM and read without).
// An EPERM without it is final (an on-access scanner's fanotify FAN_DENY, a
// FUSE server): asking again would only ask the scanner or the server again.
int open_for_reading(int dirfd, const char* path, int flags, bool wait = false) {
  int fd = -EWOULDBLOCK;
  int noatime = O_NOATIME;
  for (int attempt = 0; attempt < 200 && fd == -EWOULDBLOCK; ++attempt) {
    fd = sys::openat(dirfd, path, flags | (wait ? 0 : O_NONBLOCK) | noatime);
    if (fd == -EPERM && noatime) {
      noatime = 0;
      fd = -EWOULDBLOCK;  // once more, without it
      continue;
    }
    if (fd == -EWOULDBLOCK) {
      struct timespec pause = {0, 20000};  // 20 us: 4 ms at most in all
      nanosleep(&pause, nullptr);
    }
  }
  return fd;
}

// An O_PATH fd on the file at the name: it opens nothing (no driver's open,
// no lease break, no inotify event, never waits on a FIFO).
int path_only(int dirfd, const char* path, bool follow) {
  return sys::openat(dirfd, path, O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
}

// Another process's lease on the file is being broken (our open began the
// break; Samba's oplocks, an F_SETLEASE holder): the writer's own open would
// wait until the holder lets go (at most /proc/sys/fs/lease-break-time), and
// so does the look at the header. Counting the file as unreadable instead
// made it "maybe a library in use": a text file was replaced under the
// holder, before it had flushed what it cached, or an in-place write failed
// with ETXTBSY. The wait is on the inode examined (an O_PATH fd reopened
// through /proc/thread-self/fd), so nothing swapped in at the name since (a FIFO)
// can make it hang; if that inode is gone, or there is no /proc, the file
// stays unreadable, as before.
__attribute__((noinline)) int open_after_lease_break(int dirfd, const char* path, bool follow, const struct stat& st) {
  sys::Fd where(path_only(dirfd, path, follow));
  if (!where.ok() || !sys::refers_to(where.get(), st.st_dev, st.st_ino)) return -EWOULDBLOCK;
  char proc[32];
  sys::fd_link(where.get(), proc, sizeof proc);
  const int fd = open_for_reading(AT_FDCWD, proc, O_RDONLY | O_CLOEXEC | O_NOCTTY, true);
  return fd == -ENOENT ? -EWOULDBLOCK : fd;  // no /proc
}

// The name an fd was opened under, into `out` (PATH_MAX bytes): 1, or 0 if
// it has none (deleted, anonymous: nothing to give a new inode to), or
// -errno if it can't be read (no /proc: a chroot or container without it).
int fd_name(int fd, char* out) {
  char proc[32];
  sys::fd_link(fd, proc, sizeof proc);
  long n = sys::readlinkat(AT_FDCWD, proc, out, PATH_MAX - 1);
  if (n < 0) return static_cast<int>(n);
  if (n == 0 || out[0] != '/') return 0;
  out[n] = '\0';
  return 1;
}

// Does the filesystem of the file open at fd refuse direct I/O? (F_SETFL
// fails with EINVAL for O_DIRECT where the open would.) fd's flags are put back.
__attribute__((noinline)) bool refuses_direct_io(int fd) {
  const long fl = sys::call(SYS_fcntl, fd, F_GETFL);
  if (fl < 0 || (fl & O_DIRECT)) return false;
  const long r = sys::call(SYS_fcntl, fd, F_SETFL, fl | O_DIRECT);
  if (r == 0) sys::call(SYS_fcntl, fd, F_SETFL, fl);
  return r == -EINVAL;
}

// Is the file open at fd append-only (chattr +a)? (False where it can't be told.)
bool append_only_file(int fd) {
  int attr = 0;
  return fd >= 0 && sys::ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0 && (attr & FS_APPEND_FL);
}

// A file the program keeps locked already has an fd of ours parked on it
// (Examined::close_src): it is read through that one, since a new open could
// not be closed either (a daemon that rewrote a file it keeps locked gained
// an fd per write, until EMFILE). close_src gives it back. The program's own
// new fd (looked_at_keeping's: the open's WriteIntent's fd, `programs_fd`)
// comes first, while it is the file at the name: beside it, an fd of ours was
// kept too at each replaced O_RDWR open (two fds where one did); close_src
// leaves it. (It was a note of the thread's: a handler that jumped out of the
// look before it was read left it, and a later look at the file read through
// whatever file took the number since: a text file, "not code", and the
// truncation of the library went through.)
[[gnu::noinline]] bool read_programs_fd(int programs_fd, Examined* ex) {
  struct stat now;
  if (sys::fstat(programs_fd, &now) != 0 || now.st_dev != ex->st.st_dev ||
      now.st_ino != ex->st.st_ino)
    return false;
  ex->src.reset(programs_fd);
  ex->src_programs = true;
  return true;
}
[[gnu::always_inline]] inline bool read_parked(int programs_fd, Examined* ex) {
  if (__builtin_expect(programs_fd >= 0, 0) && read_programs_fd(programs_fd, ex)) return true;
  const int fd = posix_locks::borrow(ex->st.st_dev, ex->st.st_ino);  // -1 at once while nothing is kept
  if (fd < 0) return false;
  ex->src.reset(fd);
  return true;
}

// Does fd still refer to the file `st` describes? (If fstat fails, it is
// not known otherwise.) Its own frame: the stat is not kept on the stack of
// every examined write.
__attribute__((noinline)) bool refers_to_stat(int fd, const struct stat& st) {
  struct stat now;
  return sys::fstat(fd, &now) != 0 || (now.st_dev == st.st_dev && now.st_ino == st.st_ino);
}

// Kernel interface files (sysfs, procfs...) are never read to look for a
// header: reading one runs a driver's code, and a write-only attribute can't
// be read at all (its header counted as unreadable: maybe a library in use,
// and the write failed with ETXTBSY). They occupy no blocks
// (a sysfs attribute says 4096 bytes), so only such files are asked about,
// through an O_PATH fd.
__attribute__((noinline)) bool kernel_interface_at(int dirfd, const char* path, bool follow) {
  sys::Fd where(path_only(dirfd, path, follow));
  return where.ok() && on_kernel_interface_fs(where.get());
}

// Stages 1-3: flags, stat, ELF header. For the common case (not ELF) this
// costs fstatat, openat, pread and close, and nothing more.
__attribute__((noinline)) bool examine(const WriteIntent& in, Examined* ex, Reason* why) {
  if (!on_fd(in.kind)) {
    Verdict v = check_flags(in.flags);
    if (!v.act) { *why = v.reason; return false; }
    const bool follow = !(in.flags & O_NOFOLLOW);
    ex->path_looked_at = true;
    if (const int r = sys::fstatat(in.dirfd, in.path, &ex->st, follow ? 0 : AT_SYMLINK_NOFOLLOW); r < 0) {
      ex->path_fault = r == -EFAULT;
      *why = Reason::missing;
      return false;
    }
    v = check_file(ex->st, content_after(in));
    if (!v.act) { *why = v.reason; return false; }
    if (ex->st.st_size < kMinElfSize) { *why = Reason::not_code; return false; }
    if (ex->st.st_blocks == 0 && kernel_interface_at(in.dirfd, in.path, follow)) {
      *why = Reason::kernel_interface;
      return false;
    }
    ex->working.begin();
    if (!read_parked(in.fd, ex)) {  // (an open's in.fd: looked_at_keeping's)
      ex->src.reset(open_for_reading(in.dirfd, in.path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (follow ? 0 : O_NOFOLLOW)));
      if (ex->src.get() == -EWOULDBLOCK) {
        // A caller that asked O_NONBLOCK gets the kernel's answer at once.
        if (in.flags & O_NONBLOCK) { *why = Reason::lease_being_broken; return false; }
        ex->working.end();  // the wait is the program's own open's: its signals interrupt it
        ex->src.reset(open_after_lease_break(in.dirfd, in.path, follow, ex->st));
        ex->working.begin();
        // A signal the program handles without SA_RESTART ended the wait: its own open would end so.
        if (ex->src.get() == -EINTR) { *why = Reason::lease_being_broken; return false; }
      }
    }
    if (!ex->src.ok()) ex->src_error = -ex->src.get();
  } else {
    if (sys::fstat(in.fd, &ex->st) < 0) { *why = Reason::missing; return false; }
    const MadeForFd& made = t_made_for_fd;
    if (in.kind == WriteKind::in_place_fd && made.fd == in.fd && made.dev == ex->st.st_dev && made.ino == ex->st.st_ino) {
      *why = Reason::made_for_this_fd;
      return false;
    }
    Verdict v = check_file(ex->st, content_after(in));
    if (!v.act) { *why = v.reason; return false; }
    if (ex->st.st_size < kMinElfSize) { *why = Reason::not_code; return false; }
    if (ex->st.st_blocks == 0 && on_kernel_interface_fs(in.fd)) {
      *why = Reason::kernel_interface;
      return false;
    }
    // The caller holds a write lease on it (Samba's oplocks): the kernel
    // proves no other open file and no mapping exists, and our own open to
    // read the header would break the caller's lease.
    if (sys::call(SYS_fcntl, in.fd, F_GETLEASE) == F_WRLCK) {
      *why = Reason::unshared;
      return false;
    }
    // The fd may be write-only: read the file through /proc/thread-self/fd. (Its
    // name is read later, only for an ELF file: fd_name.)
    char proc[32];
    sys::fd_link(in.fd, proc, sizeof proc);
    ex->working.begin();
    if (!read_parked(-1, ex)) ex->src.reset(open_for_reading(AT_FDCWD, proc, O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!ex->src.ok()) ex->src_error = -ex->src.get();
  }
  if (ex->src.ok()) ex->kind = probe_elf_fd(ex->src.get());
  // No /proc to reopen it by: a readable fd is read in place (pread: its
  // offset stays), so that only an ELF file goes on (measured in a chroot
  // without /proc: the ftruncate of a library in use passed as "no such file",
  // and the program died of SIGSEGV).
  else if (on_fd(in.kind) && (sys::call(SYS_fcntl, in.fd, F_GETFL) & O_ACCMODE) == O_RDWR)
    ex->kind = probe_elf_fd(in.fd);
  Verdict v = check_elf(ex->kind);
  if (!v.act) { *why = v.reason; return false; }
  // Only now, for an ELF file: is what we read what we stat'ed?
  if (ex->src.ok() && !refers_to_stat(ex->src.get(), ex->st)) {
    *why = Reason::missing;  // swapped between the stat and the open: let the real call decide
    return false;
  }
  return true;
}

// One snapshot of every executable mapping, shared by the writes of this
// process. Only answers that lead to acting are reused ("X maps it", or "some
// processes could not be inspected" for an ELF file): they can only go stale
// in the harmless direction (the mapper exits; we replace a file we need not
// have). An answer that would let the write truncate is always taken fresh, so
// the race between the check and the write is no wider than without reuse.
// Nor is any answer reused for a file no name reaches (`fresh`): there acting
// means failing the write, and a stale "X maps it" is not harmless. The
// snapshot names files by device and inode number, which ext4 gives to the
// next file made once the mapped one is freed: an atomic writer's unnamed new
// file got the number of a library deleted since the snapshot (another
// process's, which then ended), and the writer's ftruncate of its own fd
// (node's copyFileSync) failed with ETXTBSY.
constexpr uint64_t kSnapshotReuseNs = 10ull * 1000 * 1000 * 1000;
Snapshot g_snapshot;
uint64_t g_snapshot_ns = 0;
bool g_snapshot_valid = false;
std::atomic_flag g_snapshot_busy = ATOMIC_FLAG_INIT;

// What the scan tells the decision (the lease proved nothing). `me`: this
// process, told apart from the others for the log; 0 where only the verdict
// matters (it is the same for both).
MappingFacts facts_of(const ScanResult& r, pid_t me) {
  MappingFacts f;
  for (int i = 0; me != 0 && i < r.mapped && i < ScanResult::kMaxPids; ++i)
    if (r.pids[i] == me) f.mapped_by_self = true;
  f.mapped_by_others = r.mapped - (f.mapped_by_self ? 1 : 0);
  f.uninspected = r.uninspected;
  f.proc_missing = r.proc_missing;
  f.outside_pid_ns = r.outside_pid_ns;
  return f;
}

bool leads_to_acting(Scope scope, const ScanResult& r, ElfKind kind, bool other_machines) {
  MappingFacts f = facts_of(r, 0);
  f.other_machines = other_machines;
  return check_mapping(scope, kind, f).act;
}

ScanResult scan_with_reuse(Scope scope, FileId id, ElfKind kind, bool other_machines, bool fresh) {
  // Another thread is using the snapshot (or a fork caught it busy): never wait.
  if (g_snapshot_busy.test_and_set(std::memory_order_acquire)) return scan_processes(id);
  ScanResult r;
  const uint64_t now = sys::monotonic_ns();
  bool answered = false;
  if (!fresh && g_snapshot_valid && now - g_snapshot_ns < kSnapshotReuseNs) {
    r = lookup(g_snapshot, id);
    answered = leads_to_acting(scope, r, kind, other_machines);
    if (answered) r.reused_ms = static_cast<long>((now - g_snapshot_ns) / 1000000);
  }
  if (!answered) {
    g_snapshot_valid = take_snapshot(&g_snapshot);
    g_snapshot_ns = now;
    r = g_snapshot_valid ? lookup(g_snapshot, id) : scan_processes(id);
  }
  g_snapshot_busy.clear(std::memory_order_release);
  return r;
}

// Stage 4: who maps it. A write lease proves "nobody", where it can be had:
// not while the caller itself holds the file open for writing (ftruncate, F_SETFL...).
// *me: this process's pid, where the scan needed it (else 0). `nameless`:
// no name reaches the file, so acting fails the write: the answer is fresh.
Verdict examine_mapping(const Settings& s, const WriteIntent& in, Examined& ex, bool nameless, MappingFacts* facts,
                        ScanResult* scan, pid_t* me) {
  // The id the maps show (btrfs: not stat()'s device), read from the fd only
  // when some maps are to be searched: not for a granted lease, nor scope elf.
  auto maps_id = [&ex] {
    return ex.src.ok() ? maps_id_of(ex.src.get(), ex.st, ex.fs_type()) : file_id_of(ex.st.st_dev, ex.st.st_ino);
  };
  // Not through the program's fd (looked_at_keeping's): the lease's F_SETSIG
  // would stay on it (its F_GETSIG: SIGURG), and that fd, open for writing,
  // fails a write lease anyway.
  const bool lease_possible = !on_fd(in.kind) && ex.src.ok() && !ex.src_programs;
  if (scope_needs_scan(s.scope) && lease_possible && proves_unshared(ex.src.get(), ex.fs_type())) {
    facts->proven_unshared = true;
  } else if (scope_needs_scan(s.scope)) {
    // A write-only fd the writer may not read through /proc: its own filesystem.
    const bool other_machines =
        shared_with_other_machines(ex.src.ok() ? ex.fs_type() : on_fd(in.kind) ? sys::fs_type(in.fd) : 0);
    *scan = scan_with_reuse(s.scope, maps_id(), ex.kind, other_machines, nameless);
    // Scope namespace: the processes outside it don't count, nor are they said to.
    if (s.scope == Scope::pid_namespace) scan->outside_pid_ns = false;
    *me = sys::getpid();
    *facts = facts_of(*scan, *me);
    facts->other_machines = other_machines;
  } else if (scope_needs_self(s.scope)) {
    const MapsAnswer self = process_maps_exec(0, maps_id());
    facts->mapped_by_self = self == MapsAnswer::mapped;
    facts->self_uninspected = self != MapsAnswer::mapped && self != MapsAnswer::not_mapped;
  }
  return check_mapping(s.scope, ex.kind, *facts);
}

// The new fd's flags: the caller's, for an open; the fd's own, for an fd (ftruncate, F_SETFL...).
int new_fd_flags(const WriteIntent& in) {
  switch (in.kind) {
    case WriteKind::truncate_path: return O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    case WriteKind::truncate_fd:
    case WriteKind::in_place_fd: {
      long fl = sys::call(SYS_fcntl, in.fd, F_GETFL);
      // O_DIRECT too: the fd moved onto the new inode must do the I/O its
      // writer asked for (the copy into it is buffered: copy_content). And
      // O_NONBLOCK, which F_GETFL shows (the fd lost it).
      int keep = fl < 0 ? O_WRONLY
                        : static_cast<int>(fl) &
                              (O_ACCMODE | O_APPEND | O_SYNC | O_DSYNC | O_NOATIME | O_DIRECT | O_NONBLOCK);
      // A read-only fd is freopen(NULL)'s stream opened "r": the copy is
      // written through the new fd, and glibc reopens the file anyway.
      if ((keep & O_ACCMODE) == O_RDONLY) keep = (keep & ~O_ACCMODE) | O_RDWR;
      return keep | O_CREAT | O_EXCL | O_CLOEXEC;
    }
    default: return replacement_flags(in.flags);
  }
}

// How many bytes of the old content the new inode starts with.
off_t bytes_to_keep(const WriteIntent& in) {
  switch (in.kind) {
    case WriteKind::truncate_open: return 0;
    case WriteKind::in_place_open:
    case WriteKind::in_place_fd: return kWholeFile;
    default: return in.new_length;
  }
}

// What moving the caller's fd could not carry, in the log: the program's other
// fds on the description that stay on the old file, locks it held.
// `moved`: the move stands (else the fd is on the old file, where its POSIX
// locks were taken again).
void report_move(const char* name, const FdMove& m, bool moved, ActingMemory* mem) {
  char* msg = mem->msg;
  constexpr size_t kMsg = sizeof mem->msg;
  if (moved && (m.sharers_missed > 0 || m.sharers_unknown)) {
    if (m.sharers_unknown)
      std::snprintf(msg, kMsg,
                    "its fd's duplicates (dup, F_DUPFD) could not be looked for (%s: %s): any stay on the old file",
                    m.sharers_step ? m.sharers_step : "?", strerrordesc_np(m.sharers_unknown));
    else
      std::snprintf(msg, kMsg, "%d of its fd's duplicates (dup, F_DUPFD) %s on the old file", m.sharers_missed,
                    m.sharers_missed == 1 ? "stays" : "stay");
    note(name, "fd_duplicates", msg);
  }
  if (m.locks_lost > 0) {
    std::snprintf(msg, kMsg, "%d of the locks held through its fd could not be taken again on the %s file",
                  m.locks_lost, moved ? "new" : "old");
    note(name, "locks", msg);
  }
  if (moved && m.locks_unknown) {
    std::snprintf(msg, kMsg,
                  "the locks held through its fd could not be read (%s): any it held on the old file are released",
                  strerrordesc_np(m.locks_unknown));
    note(name, "locks", msg);
  }
}

// A symlink's target, named for the log (escaped into mem->target): its
// absolute path, as the kernel names the directory held open, for the link
// may be in another directory than its target (lib/libfoo.so.1 ->
// /opt/foo/libfoo.so.1.2.3, or ../other/...: its name alone named no file
// near the link). Its name alone where /proc can't say, says the
// directory was deleted, or gives a path too long to add the name to.
const char* name_target(const Target& t, ActingMemory* mem) {
  char* raw = mem->resolve.link;  // free once the name is resolved
  constexpr size_t kRaw = sizeof mem->resolve.link;
  char proc[32];
  sys::fd_link(t.dir.get(), proc, sizeof proc);
  constexpr long kRoom = static_cast<long>(kRaw - NAME_MAX - 2);  // for "/" and the name after it
  const long n = sys::readlinkat(AT_FDCWD, proc, raw, kRoom);
  constexpr char kDeleted[] = " (deleted)";
  constexpr long kDel = sizeof kDeleted - 1;
  if (n > 0 && n < kRoom && raw[0] == '/' && !(n >= kDel && std::memcmp(raw + n - kDel, kDeleted, kDel) == 0)) {
    size_t o = static_cast<size_t>(n);
    if (o > 1) raw[o++] = '/';
    std::strcpy(raw + o, t.base);
  } else {
    std::strcpy(raw, t.base);
  }
  log::escape(raw, mem->target, sizeof mem->target);
  return mem->target;
}

// The new file, not put at the name, could not be removed from its temp name:
// a copy of the library stays hidden in the directory, which the log names.
void report_temp_left(const char* name, const ReplaceReport& rep, ActingMemory* mem) {
  if (!rep.temp_left_error) return;
  log::escape(rep.temp_left, mem->target, sizeof mem->target);
  std::snprintf(mem->msg, sizeof mem->msg,
                "the new file, not put at the name, could not be removed (%s): it stays as %.1100s in its directory",
                strerrordesc_np(rep.temp_left_error), mem->target);
  note(name, "temp_left", mem->msg);
}

// The replaced line, then what the operator should know about it. `new_fd`:
// the fd on the new inode, which the lines must not go into (log::KeepOutOf).
// `target`: a symlink's target as name_target named it while t.dir was open
// (null: named here, through t.dir).
void report_success(const char* name, log::Event* ev, const Target& t, const ReplaceReport& rep, int new_fd,
                    ActingMemory* mem, const char* target = nullptr) {
  const log::KeepOutOf not_into_the_file(new_fd);
  if (log::enabled(kRewrites)) {
    ev->new_ino = static_cast<unsigned long>(rep.new_ino);
    ev->kept_bytes = rep.copied;
    log::emit(*ev);
    char* msg = mem->msg;
    constexpr size_t kMsg = sizeof mem->msg;
    if (t.via_symlink) {
      std::snprintf(msg, kMsg, "is a symlink: it was kept, and its target %s was replaced",
                    target ? target : name_target(t, mem));
      note(name, "symlink", msg);
    }
    if (t.st.st_nlink > 1) {
      std::snprintf(msg, kMsg, "has %lu hard links; the other %s the old content",
                    static_cast<unsigned long>(t.st.st_nlink), t.st.st_nlink == 2 ? "name keeps" : "names keep");
      note(name, "hard_links", msg);
    }
    struct stat made;
    if (!rep.owner_kept) {
      // The new file's owner and group as they are: the group may have been
      // kept (a writer of the file's group), or be a setgid directory's.
      if (sys::fstat(new_fd, &made) != 0) {
        made.st_uid = geteuid();
        made.st_gid = getegid();
      }
      std::snprintf(msg, kMsg, "owner %u:%u could not be kept (%s); the new file is owned by %u:%u",
                    static_cast<unsigned>(t.st.st_uid), static_cast<unsigned>(t.st.st_gid),
                    rep.owner_unmapped                                ? "not mapped in this user namespace: the real owner is outside it"
                    : rep.owner_errno == EPERM || rep.owner_errno == 0 ? "not permitted"
                                                                        : strerrordesc_np(rep.owner_errno),
                    static_cast<unsigned>(made.st_uid), static_cast<unsigned>(made.st_gid));
      note(name, "owner", msg);
    }
    if (rep.mode_errno && sys::fstat(new_fd, &made) == 0 && (made.st_mode & 07777) != rep.mode) {
      std::snprintf(msg, kMsg, "its permission bits could not be set (%s): mode %04o instead of %04o",
                    strerrordesc_np(rep.mode_errno), static_cast<unsigned>(made.st_mode & 07777),
                    static_cast<unsigned>(rep.mode));
      note(name, "mode", msg);
    }
    if (rep.times_errno) {
      std::snprintf(msg, kMsg,
                    "the old file's access and modification times could not be given to the new one (%s): it has "
                    "the times of the copy",
                    strerrordesc_np(rep.times_errno));
      note(name, "times", msg);
    }
    if (rep.setid_lost) {
      std::snprintf(msg, kMsg,
                    "its setuid/setgid bits, which giving the new file the old owner removed, could not be set "
                    "again (the writer neither owns it nor has CAP_FOWNER): mode %04o instead of %04o",
                    static_cast<unsigned>(rep.mode & ~rep.setid_lost),
                    static_cast<unsigned>(rep.mode));
      note(name, "setid", msg);
    }
    if (rep.xattrs_failed > 0) {
      std::snprintf(msg, kMsg, "%d extended attribute%s could not be copied", rep.xattrs_failed,
                    rep.xattrs_failed == 1 ? "" : "s");
      note(name, "xattrs", msg);
    }
    if (rep.aside_left_error) {
      log::escape(rep.kept_aside, mem->target, sizeof mem->target);
      std::snprintf(msg, kMsg, "the old file could not be removed (%s): it stays as %s in its directory",
                    strerrordesc_np(rep.aside_left_error), mem->target);
      note(name, "old_kept", msg);
    }
    if (rep.acl_lost && !rep.acl_inherited_errno) {
      std::snprintf(msg, kMsg,
                    "its ACL could not be copied: the new file has none, and mode %04o (the owning group "
                    "keeps what the ACL gave it) instead of %04o",
                    static_cast<unsigned>(rep.mode), static_cast<unsigned>(t.st.st_mode & 07777));
      note(name, "acl", msg);
    }
    if (rep.acl_inherited_errno) {
      std::snprintf(msg, kMsg,
                    "the ACL it inherited from its directory's default ACL could not be removed (%s): the new file "
                    "has it, where the old file had %s",
                    strerrordesc_np(rep.acl_inherited_errno), rep.acl_lost ? "one that could not be copied" : "none");
      note(name, "acl", msg);
    }
  }
  if (log::enabled(kBacktrace)) log::backtrace();
}

// Atomic mode: the caller writes into an unnamed inode that is published at
// its last close. False (with a note) where that is impossible here: the
// caller then falls back to replace.
// The caller's fd gets the number open(2) would give, the lowest free one
// once the shim's own fds are closed: so it is registered for publication
// only then, under that number, in room reserved before (while a full table
// can still fall back to replace, which needs those fds).
bool act_atomic(const WriteIntent& in, const char* name, Target& t, Examined& ex, off_t keep, log::Event* ev,
                ActingMemory* mem, Outcome* out) {
  char msg[256];
  // The rename happens at close, where the writer may not look at errors:
  // what would make it fail is checked now, so the write fails at open.
  int err = 0;
  const char* why = nullptr;
  if (!can_rename_over(t, ex.src.get(), &err, &why)) {
    // Replacing it needs that rename too: the fallback fails as well, and says so next.
    std::snprintf(msg, sizeof msg,
                  "cannot be published atomically here (%s); nor replaced at open, which needs the same rename", why);
    note(name, "atomic_fallback", msg);
    return false;
  }
  ReplaceReport rep;
  int fd = (keep != 0 && !ex.src.ok()) ? -EACCES
                                       : make_unnamed(t, replacement_flags(in.flags), keep, ex.src.get(), &rep);
  if (fd < 0) {
    if (rep.failed_step)
      std::snprintf(msg, sizeof msg, "cannot be published atomically here (%s: %s); replaced at open instead",
                    rep.failed_step, strerrordesc_np(rep.error));
    else  // (no make_unnamed: no rep.error) Replacing it needs the old content too.
      std::snprintf(msg, sizeof msg,
                    "cannot be published atomically here (cannot read the old file: %s); nor replaced at open, "
                    "which needs its content too",
                    strerrordesc_np(ex.src_error ? ex.src_error : EACCES));
    note(name, "atomic_fallback", msg);
    return false;
  }
  // Kept until the publication: out of the low numbers (sys::dup_high).
  const int dirfd = sys::dup_high(t.dir.get());
  if (dirfd < 0) {  // no fd left (EMFILE) to keep the directory for the publication
    sys::close(fd);
    std::snprintf(msg, sizeof msg,
                  "cannot be published atomically here (cannot keep its directory open: %s); replaced at open instead",
                  strerrordesc_np(-dirfd));
    note(name, "atomic_fallback", msg);
    return false;
  }
  pending::Reservation room;
  if (!pending::reserve(fd, dirfd, t.base, name, static_cast<unsigned long>(ex.st.st_ino), &room)) {
    sys::close(dirfd);
    sys::close(fd);
    note(name, "atomic_fallback", "too many files pending publication in this process; replaced at open instead");
    return false;
  }
  // A symlink's target is named through the directory's fd (its absolute
  // path), which is closed below: named now. (Named after, it was its bare
  // name, which names no file next to a link in another directory.)
  const char* target = t.via_symlink && log::enabled(kRewrites) ? name_target(t, mem) : nullptr;
  // Nothing can fail from here. The shim's own fds are done with: their
  // numbers are the caller's again.
  ex.close_src();
  t.dir.reset();
  fd = callers_fd(fd, in.flags);
  pending::commit(room, fd);
  report_success(name, ev, t, rep, fd, mem, target);
  *out = {Outcome::replaced, fd};
  return true;
}

}  // namespace

namespace {

// Stage 4 on, for an ELF file whose content would change (rare): a frame of
// its own, so that the checks every examined write goes through stay small.
// From here on, the memory to work in is mapped, not taken from the caller's
// stack; without it, the write fails as any write that can't be protected.
// `again`: where the name changed while the new file was made, set (nothing
// was changed) for the write to be examined again; null on the last attempt.
__attribute__((noinline)) Outcome act_on_elf(const Settings& s, const WriteIntent& in, Examined& ex, bool* again) {
  const char* name = on_fd(in.kind) ? nullptr : in.path;
  Scratch<ActingMemory, Reuse::keep_one> mem;
  if (!mem) {
    char fd_text[32];
    if (!name) {
      std::snprintf(fd_text, sizeof fd_text, "fd %d", in.fd);
      name = fd_text;
    }
    return cannot_protect(s, in, name, "no memory to work in", mem.error(), false);
  }
  // An fd whose file no name reaches any more (deleted, or another file put
  // at its name): the real call still acts on that file, which may be mapped.
  bool nameless = false;
  if (on_fd(in.kind)) {
    const int named = fd_name(in.fd, mem->fd_path);
    // Not to be named (no /proc): no new inode can be given to it. An ELF
    // file (read through the fd) is not written unchecked; a write-only fd's
    // file, of which nothing could be read, is left to the real call, or
    // every `truncate -s` there (open O_WRONLY, ftruncate) would fail.
    if (named < 0 && ex.kind == ElfKind::unreadable) return log_pass(in, name, Reason::unexaminable_fd);
    if (named <= 0) std::snprintf(mem->fd_path, PATH_MAX, "fd %d", in.fd);
    if (named < 0)
      return cannot_protect(s, in, mem->fd_path, "cannot read the file's name (/proc/thread-self/fd)", -named, false);
    nameless = named == 0;
    name = mem->fd_path;
  }

  // The file the name finally reaches, and its directory, held open.
  Target t;
  const int dirfd = on_fd(in.kind) ? AT_FDCWD : in.dirfd;
  const bool follow = on_fd(in.kind) || !(in.flags & O_NOFOLLOW);
  const int resolved = nameless ? -ENOENT : resolve_target(dirfd, name, follow, &t, &mem->resolve);
  // The name changed since it was examined (or vanished): check again rather
  // than let the real call truncate whatever is there now. An fd's call
  // acts on its own file whatever the name holds: it is looked at below.
  if (names_nothing(resolved) || (resolved == 0 && (t.st.st_dev != ex.st.st_dev || t.st.st_ino != ex.st.st_ino))) {
    if (!on_fd(in.kind)) return name_changed_before_acting(in, name, again);
    nameless = true;
  }
  // Any other error (no fd left for the directory, no memory; a name the
  // writer can no longer reach from an fd) says nothing about the name: the
  // file is still looked at, and where it must be protected the write fails
  // below instead of truncating it unchecked. Except an open for which the
  // shim got no fd at all: the caller's own open gets none either, and the
  // kernel answers (EMFILE), without O_TRUNC (guarded_open).
  if ((resolved == -EMFILE || resolved == -ENFILE) && !ex.src.ok() && opens_an_fd(in.kind))
    return changed_under_us(in, name);

  // Replacing a file the caller could not write would turn an EACCES into a
  // success: leave such calls to the kernel. (ETXTBSY is not checked here,
  // which is how a running executable still gets replaced.) A writable fd
  // already proves the right to write.
  if (!on_fd(in.kind)) {
    int acc = resolved == 0 ? sys::may_write(t.dir.get(), t.base, true) : sys::may_write(in.dirfd, in.path, !follow);
    if (acc == -ENOENT) return name_changed_before_acting(in, name, again);
    if (acc < 0 && acc != -ENOSYS) return log_pass(in, name, Reason::no_write_permission);
    // Nor an open the kernel refuses for its sticky directory (where root's
    // rename is allowed): the file the opener was protected from would
    // become a new one holding its content, owned by that file's owner.
    if (resolved == 0 && (in.flags & O_CREAT) && sticky_refuses_creat(t))
      return log_pass(in, name, Reason::protected_regular);
    // Nor an O_NOATIME open the kernel refuses (EPERM): the new file, the
    // opener's own until it takes the old owner, took it.
    if (resolved == 0 && (in.flags & O_NOATIME) && !owner_or_capable(t.st.st_uid))
      return log_pass(in, name, Reason::noatime_not_owner);
  }

  // O_DIRECT where the filesystem has no direct I/O (ramfs; tmpfs before
  // Linux 6.6): the kernel's open fails with EINVAL before it truncates
  // anything, and programs fall back to a buffered open on that answer. A
  // new inode there can't take O_DIRECT either: the caller would get ETXTBSY
  // instead (and not fall back). F_SETFL asks the same of our own read fd.
  if (opens_an_fd(in.kind) && (in.flags & O_DIRECT) && ex.src.ok() && refuses_direct_io(ex.src.get()))
    return log_pass(in, name, Reason::no_direct_io);

  MappingFacts facts;
  ScanResult scan;
  pid_t me = 0;
  Verdict v = examine_mapping(s, in, ex, nameless, &facts, &scan, &me);
  // A nameless file no process is known to map (some could not be
  // inspected; scope elf): the real call, as for a name that changed.
  if (nameless && v.act && v.reason != Reason::mapped) return changed_under_us(in, name);
  if (!v.act) return log_pass(in, name, v.reason);
  // An append-only file (chattr +a): the kernel refuses the truncation, an
  // open for writing without O_APPEND, F_SETFL dropping it, RWF_NOAPPEND and
  // fallocate over its bytes (EPERM), and changes nothing. Replacing it made a
  // copy only to fail the rename over it (ETXTBSY, where the caller expects EPERM).
  // Asked only here, where it would act: a file it passes anyway needs no ioctl.
  if (append_only_file(on_fd(in.kind) ? in.fd : ex.src.get())) return log_pass(in, name, Reason::append_only_file);
  log_decision(in, name, true, v.reason);

  Who& who = mem->who;
  describe_who(v.reason, scan, facts.mapped_by_self, ex.kind, me, &who);
  const off_t keep = bytes_to_keep(in);
  log::Event ev{log::EventKind::replaced};
  ev.file = name;
  ev.entry = in.entry;
  ev.reason = to_string(v.reason);
  ev.mode = to_string(s.mode);
  ev.old_ino = static_cast<unsigned long>(ex.st.st_ino);
  ev.who = who.text;
  ev.mappers = who.mappers;
  ev.mapper_count = who.count;
  ev.mapper_total = scan.mapped;
  ev.by_self = facts.mapped_by_self;
  ev.uninspected = scan.uninspected;
  ev.outside_pid_ns = scan.outside_pid_ns;
  ev.scan_age_ms = scan.reused_ms;

  if (s.mode == Mode::dry_run) {
    ev.kind = log::EventKind::would_replace;
    // What the new file would start with, as copy_content would copy it.
    ev.kept_bytes = keep == kWholeFile || keep > ex.st.st_size ? ex.st.st_size : keep;
    if (log::enabled(kRewrites)) {
      log::emit(ev);
      // As the replacement's own note would say: which file, the links kept.
      if (resolved == 0 && t.via_symlink) {
        std::snprintf(mem->msg, sizeof mem->msg, "is a symlink: it would be kept, and its target %s replaced",
                      name_target(t, mem.get()));
        note(name, "symlink", mem->msg);
      }
    }
    return {Outcome::pass, 0};
  }

  // A process maps the fd's file, which no name reaches: the real call would
  // truncate (or change) it under that process (it was let through, and
  // killed it), and no new inode can take its place at a name.
  if (nameless)
    return cannot_protect(s, in, name,
                          "its file is no longer at its name (deleted, or another file put there): no new file can "
                          "take its place",
                          ENOENT, false);
  if (resolved < 0) return cannot_protect(s, in, name, "cannot open the file's directory", -resolved, false);

  if (s.mode == Mode::atomic) {
    // Only an open leaves a writer behind to wait for; truncate(2), ftruncate(2)
    // and an fd that stops appending already hold or are done: replace them.
    Outcome o;
    if (opens_an_fd(in.kind) && act_atomic(in, name, t, ex, keep, &ev, mem.get(), &o))
      return o;
    ev.mode = to_string(Mode::replace);
  }

  // The caller's fd moves to the new file by a dup3 onto its number, which
  // the hard limit on fd numbers (lowered since it was opened) may forbid:
  // then the name must not change.
  if (on_fd(in.kind) && static_cast<rlim_t>(in.fd) >= sys::fd_limits().rlim_max)
    return cannot_protect(s, in, name, "its fd number is above the hard limit on open files (RLIMIT_NOFILE)", EBADF,
                          false);
  // An fd (ftruncate, F_SETFL...): its number names the new inode from
  // here on, at the same offset (or, where it can't, the name keeps the old).
  ReplaceReport rep;
  FdMove* move = nullptr;
  if (on_fd(in.kind)) {
    move = &mem->move;
    *move = {};
    move->fd = in.fd;
    move->old = ex.st;
    move->own_dup = -1;
  }
  int fd = (keep != 0 && !ex.src.ok()) ? -EACCES
                                       : replace_file(t, s.mode, new_fd_flags(in), keep, ex.src.get(), &rep, move);
  // (replace_file's fds on the files are closed.) Where the fd could not
  // move or went back, its POSIX locks, released meanwhile, are taken again
  // on the old file.
  if (move) move_fd_done(move);
  if (fd < 0 && rep.name_changed) {
    // Checked again from the start (the new file at the name may be mapped
    // too), or, on the last attempt, as a name that changed before.
    if (log::enabled(kRewrites))
      note(name, "name_changed", "another file was put at the name while the new one was made: it stays, and the write is checked again");
    report_temp_left(name, rep, mem.get());
    if (!again) return changed_under_us(in, name);
    *again = true;
    return {Outcome::pass, 0};
  }
  if (fd < 0) {
    if (rep.failed_step) {
      const Outcome o = cannot_protect(s, in, name, rep.failed_step, rep.error, rep.restored_old,
                                       rep.kept_aside[0] && !rep.new_at_name ? rep.kept_aside : nullptr,
                                       rep.putback_error, rep.incomplete_at_name);
      // The caller's fd could not be moved, nor the name left with the old
      // file (or the fd put back on it): what is where.
      if (rep.new_at_name || rep.fd_not_restored) {
        struct stat now;
        const unsigned long at_name =
            sys::fstatat(t.dir.get(), t.base, &now, AT_SYMLINK_NOFOLLOW) == 0 ? static_cast<unsigned long>(now.st_ino) : 0;
        if (rep.fd_not_restored) {
          std::snprintf(mem->msg, sizeof mem->msg,
                        "the caller's fd, moved to the new file, could not be put back on the old one (%s): it is on "
                        "the new file, which no name reaches; the name keeps the old file [ino %lu]",
                        strerrordesc_np(rep.fd_not_restored), at_name);
        } else if (rep.kept_aside[0]) {
          log::escape(rep.kept_aside, mem->target, sizeof mem->target);
          std::snprintf(mem->msg, sizeof mem->msg,
                        "the name holds the new file [ino %lu], which was to take its place; the old file, still the "
                        "caller's fd's, could not be put back (%s): it is kept as %.1000s in its directory",
                        at_name, strerrordesc_np(rep.putback_error), mem->target);
        } else {
          std::snprintf(mem->msg, sizeof mem->msg,
                        "the name holds the new file [ino %lu], which was to take its place; the old file, still the "
                        "caller's fd's, is at no name",
                        at_name);
        }
        note(name, "fd_not_moved", mem->msg);
      }
      report_temp_left(name, rep, mem.get());
      if (move && log::enabled(kRewrites)) report_move(name, *move, false, mem.get());
      // The step failed at the link's target, in its directory, which the
      // line's name (the writer's: the link) does not show. Always said, as
      // the failure is.
      if (t.via_symlink) {
        std::snprintf(mem->msg, sizeof mem->msg,
                      "is a symlink: it was kept, and its target %s, in whose directory the new file is made, was "
                      "not replaced",
                      name_target(t, mem.get()));
        note(name, "symlink", mem->msg);
      }
      return o;
    }
    return cannot_protect(s, in, name, "cannot read the old file to keep its content",
                          ex.src_error ? ex.src_error : EACCES, false);
  }

  report_success(name, &ev, t, rep, on_fd(in.kind) ? in.fd : fd, mem.get());
  if (move && log::enabled(kRewrites)) report_move(name, *move, true, mem.get());
  if (on_fd(in.kind)) t_made_for_fd = {in.fd, t.st.st_dev, static_cast<ino_t>(rep.new_ino)};
  if (in.kind == WriteKind::truncate_path) {
    sys::close(fd);
    return {Outcome::replaced, 0};
  }
  if (on_fd(in.kind)) {
    log::made_at_fd(in.fd);
    return {Outcome::replaced, 0};
  }
  // The shim's own fds are done with: their numbers are the caller's again.
  ex.close_src();
  t.dir.reset();
  // Opened with the caller's O_CLOEXEC (replacement_flags): no F_GETFD to ask.
  fd = lowest_number(fd, (in.flags & O_CLOEXEC) != 0);
  log::made_at_fd(fd);
  return {Outcome::replaced, fd};
}

// The write is left to the real call (or to the kernel's answer): why, in the log.
Outcome passed(const WriteIntent& in, Examined& ex, Reason why) {
  // A path at an address the kernel refused: the decisions log would have
  // read it (SIGSEGV); the real call fails with EFAULT. A call passed on its
  // flags alone (O_EXCL, O_DIRECTORY, O_TMPFILE) has had no path read by the
  // kernel yet: the log has it looked at first (only when it logs decisions).
  if (!on_fd(in.kind) && !ex.path_looked_at && log::enabled(kDecisions)) {
    struct stat st;
    ex.path_fault = sys::fstatat(in.dirfd, in.path, &st, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) == -EFAULT;
  }
  const char* name = on_fd(in.kind) ? nullptr : ex.path_fault ? "(an address the kernel refused)" : in.path;
  if (why == Reason::lease_being_broken) {  // nothing truncated: the kernel's answer
    log_decision(in, name, false, why);
    return {Outcome::fail, ex.src.get() == -EINTR ? EINTR : EWOULDBLOCK};
  }
  return why == Reason::missing ? changed_under_us(in, name) : log_pass(in, name, why);
}

// O_NOATIME on the program's own fd (opened with `flags`) while this lives:
// reading through it must not move the file's atime, as open_for_reading's
// O_NOATIME (its owner and root only: others read without it). F_SETFL sets
// O_APPEND and O_NONBLOCK too: they are put back as opened.
class NoatimeWhile {
 public:
  [[gnu::always_inline]] NoatimeWhile(int fd, int flags)
      : fd_(fd),
        status_(flags & (O_APPEND | O_NONBLOCK)),
        on_(!(flags & O_NOATIME) && sys::call(SYS_fcntl, fd, F_SETFL, status_ | O_NOATIME) == 0) {}
  [[gnu::always_inline]] ~NoatimeWhile() {
    if (on_) sys::call(SYS_fcntl, fd_, F_SETFL, status_);
  }
  NoatimeWhile(const NoatimeWhile&) = delete;
  NoatimeWhile& operator=(const NoatimeWhile&) = delete;

 private:
  int fd_;
  int status_;
  bool on_;
};

// The header, read through the program's own fd (pread: its offset stays).
ElfKind probe_keeping_atime(int fd, int flags) {
  NoatimeWhile noatime(fd, flags);
  return probe_elf_fd(fd);
}

}  // namespace

bool settled_after_open(const WriteIntent& in, int fd) {
  ErrnoKeeper keep_errno;
  struct stat st;
  if (sys::fstat(fd, &st) < 0) return false;
  Verdict v = check_file(st, content_after(in));
  if (v.act) {
    if (st.st_size < kMinElfSize) v.reason = Reason::not_code;
    else if (st.st_blocks == 0 && on_kernel_interface_fs(fd)) v.reason = Reason::kernel_interface;
    else if (!maybe_code(probe_keeping_atime(fd, in.flags))) v.reason = Reason::not_code;
    else return false;
  }
  const log::KeepOutOf not_into_the_file(fd);  // the program's new fd: maybe 2
  log_pass(in, in.path, v.reason);
  return true;
}

void open_failed(const WriteIntent& in, int error) {
  if (!log::enabled(kDecisions)) return;
  ErrnoKeeper keep_errno;
  const char* name = in.path;
  Reason why = Reason::open_failed;
  switch (error) {
    case EFAULT:  // never read: the log would fault where the kernel refused
      name = "(an address the kernel refused)";
      why = Reason::missing;
      break;
    case ENOENT:
    case ENOTDIR:
    case ELOOP:
    case ENAMETOOLONG: why = Reason::missing; break;
    case EISDIR:
    case ENXIO:
    case ENODEV: why = Reason::not_regular; break;
    case EACCES:
    case EPERM:
    case EROFS: why = Reason::no_write_permission; break;
    case EWOULDBLOCK: why = Reason::lease_being_broken; break;
    default: break;
  }
  log_decision(in, name, false, why);
}

void close_opened_again(int fd) {
  // Kept (parked) while its file is locked: it must not outlive an exec then.
  sys::call(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
  posix_locks::close_own(fd);
}

bool closed_unless_locked(int fd) {
  if (posix_locks::locked(fd)) return false;
  // Nothing kept (or lent) by this process: close_own would ask for a lock
  // again, and close; and F_SETFD is for an fd it keeps.
  if (posix_locks::any_parked()) close_opened_again(fd);
  else sys::close(fd);
  return true;
}

int looked_at_keeping(const WriteIntent& in, int fd) {
  // The look reads the file through fd (read_parked: the open's in.fd),
  // without moving its atime.
  WriteIntent look = in;
  look.fd = fd;
  Outcome o{};
  {
    NoatimeWhile noatime(fd, in.flags);
    o = guard_write(look);
  }
  switch (o.kind) {
    case Outcome::pass:
    case Outcome::pass_if_absent: {  // (the second: truncating opens only)
      // The file looked at is fd's only if the name still reaches it: a file
      // put at the name since the open (over a library in use) was what the
      // look passed, and fd would write the library in place.
      ErrnoKeeper keep_errno;
      struct stat at, own;
      const int follow = (in.flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0;
      if (sys::fstatat(in.dirfd, in.path, &at, follow) == 0 && sys::fstat(fd, &own) == 0 &&
          at.st_dev == own.st_dev && at.st_ino == own.st_ino)
        return fd;
      close_opened_again(fd);
      return kLookAgain;
    }
    case Outcome::replaced: close_opened_again(fd); return o.value;
    case Outcome::fail: close_opened_again(fd); errno = o.value; return -1;
  }
  return fd;
}

Outcome guard_write(const WriteIntent& in) {
  ErrnoKeeper keep_errno;
  // The program's fd the write goes through (ftruncate, a write in place, an
  // O_RDWR open's own fd): where it is 2, its lines must not go into the file.
  const log::KeepOutOf not_into_the_file(in.fd);
  const Settings& s = settings();
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    Examined ex;
    Reason why;
    if (examine(in, &ex, &why)) {
      bool again = false;
      const Outcome o = act_on_elf(s, in, ex, attempt < kAttempts ? &again : nullptr);
      if (again) continue;
      return o;
    }
    return passed(in, ex, why);
  }
}

}  // namespace tg
