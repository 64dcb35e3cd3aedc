// Threads, fork, vfork, posix_spawn and a signal handler, all inside the shim
// at once. Built with the core and the interposer linked in (no LD_PRELOAD),
// so the same binary runs under ThreadSanitizer, ASan+UBSan, or neither.
//
//   concurrency [--scope=self|elf|system] [--mode=replace|atomic] [--threads=N]
//               [--seconds=S] [--skip=fork,vfork,spawn,signal]
//
// What runs at the same time, for S seconds:
//  - N worker threads, each overwriting its own two "libraries" (small ELF
//    files it keeps mapped executable, so the shim must replace them) and
//    two shared ones, through open, openat with a real directory fd, fopen,
//    creat, truncate and guard_write itself;
//  - a thread that fork()s while the workers are inside the shim; the child
//    overwrites a mapped library through the shim and must finish;
//  - a thread that vfork()s (child: a truncating open through the shim, then
//    execve) and one that posix_spawn()s with a truncating file action;
//  - SIGALRM every millisecond (ITIMER_REAL), whose handler overwrites a
//    library the process keeps mapped, through the interposed open.
// Then it checks: every write succeeded and went to a new inode (private
// files), each name holds one complete payload, no temp file is left, no fd
// leaked, every child exited 0 in time, nothing deadlocked (a watchdog).
//
// Exit 0 = pass, 1 = a check failed (printed), 2 = setup error / deadlock.
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "guard.hpp"

extern char** environ;

namespace {

constexpr size_t kSize = 8192;         // every payload: an ELF header, then one byte value
constexpr size_t kHeader = 64;

std::string g_dir;
int g_dirfd = -1;
std::atomic<bool> g_stop{false};
std::atomic<int> g_failures{0};
std::atomic<long> g_progress{0};       // bumped by every finished operation (watchdog)

#define CHECK_FAIL(...)                                   \
  do {                                                    \
    std::fprintf(stderr, "FAIL: " __VA_ARGS__);           \
    std::fputc('\n', stderr);                             \
    g_failures.fetch_add(1, std::memory_order_relaxed);   \
  } while (0)

// A payload: an ELF64 little-endian ET_DYN header (what the shim's ELF probe
// looks at), then kSize - kHeader bytes of `v`.
void make_payload(unsigned char* buf, unsigned char v) {
  std::memset(buf, v, kSize);
  std::memset(buf, 0, kHeader);
  buf[0] = 0x7f; buf[1] = 'E'; buf[2] = 'L'; buf[3] = 'F';
  buf[4] = 2;   // ELFCLASS64
  buf[5] = 1;   // ELFDATA2LSB
  buf[6] = 1;   // EV_CURRENT
  buf[16] = 3;  // ET_DYN
}

// 0 if `fd` holds exactly one complete payload; else a description.
const char* payload_problem(int fd, unsigned char* value_out = nullptr) {
  static thread_local unsigned char buf[kSize + 1];
  struct stat st;
  if (fstat(fd, &st) != 0) return "cannot stat";
  if (static_cast<size_t>(st.st_size) != kSize) return "wrong size (partial or mixed write)";
  if (pread(fd, buf, kSize, 0) != static_cast<ssize_t>(kSize)) return "short read";
  if (buf[0] != 0x7f || buf[16] != 3) return "no ELF header";
  unsigned char v = buf[kHeader];
  for (size_t i = kHeader; i < kSize; ++i)
    if (buf[i] != v) return "mixed content";
  if (value_out) *value_out = v;
  return nullptr;
}

bool write_all(int fd, const unsigned char* buf, size_t len) {
  // Two writes: a torn payload would show as mixed content.
  size_t half = len / 2;
  return write(fd, buf, half) == static_cast<ssize_t>(half) &&
         write(fd, buf + half, len - half) == static_cast<ssize_t>(len - half);
}

ino_t inode_at(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// A mapping that makes a file "mapped executable" for the shim.
struct ExecMap {
  void* addr = nullptr;
  ino_t ino = 0;
  bool map(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);  // read-only: passes through
    if (fd < 0) return false;
    void* a = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    struct stat st;
    fstat(fd, &st);
    close(fd);
    if (a == MAP_FAILED) return false;
    unmap();
    addr = a;
    ino = st.st_ino;
    return true;
  }
  void unmap() {
    if (addr) munmap(addr, 4096);
    addr = nullptr;
  }
};

// ------------------------------------------------------------------ workers

struct WorkerStats {
  long ops = 0;
  long replaced = 0;      // private files: the name got a new inode
  long in_place = 0;      // private files: the mapped inode was written in place
  long by_kind[6] = {};
};

enum OpKind { k_open, k_openat, k_fopen, k_creat, k_truncate, k_guard };
const char* const kOpNames[] = {"open", "openat(dirfd)", "fopen", "creat", "truncate+rewrite", "guard_write"};

// One overwrite of `path` (relative name `name` for openat) with `payload`.
// Returns false (after reporting) on any error.
bool overwrite(OpKind kind, const std::string& path, const std::string& name, const unsigned char* payload) {
  int fd = -1;
  switch (kind) {
    case k_open: fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC); break;
    case k_openat: fd = openat(g_dirfd, name.c_str(), O_RDWR | O_TRUNC | O_CLOEXEC); break;
    case k_creat: fd = creat(path.c_str(), 0644); break;
    case k_fopen: {
      FILE* f = fopen(path.c_str(), "we");
      if (!f) { CHECK_FAIL("fopen %s: %s", path.c_str(), strerror(errno)); return false; }
      bool ok = std::fwrite(payload, 1, kSize / 2, f) == kSize / 2 && std::fflush(f) == 0 &&
                std::fwrite(payload + kSize / 2, 1, kSize - kSize / 2, f) == kSize - kSize / 2;
      if (!ok) CHECK_FAIL("fwrite %s: %s", path.c_str(), strerror(errno));
      // fclose reports a publication that failed (atomic mode).
      if (std::fclose(f) != 0) {
        CHECK_FAIL("fclose %s: %s", path.c_str(), strerror(errno));
        ok = false;
      }
      return ok;
    }
    case k_truncate:
      // The shape of "truncate, then rewrite in place".
      if (truncate(path.c_str(), 0) != 0) { CHECK_FAIL("truncate %s: %s", path.c_str(), strerror(errno)); return false; }
      fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
      break;
    case k_guard: {
      tg::WriteIntent in{};
      in.entry = "test";
      in.kind = tg::WriteKind::truncate_open;
      in.dirfd = AT_FDCWD;
      in.path = path.c_str();
      in.flags = O_WRONLY | O_TRUNC | O_CLOEXEC;
      in.new_length = -1;
      tg::Outcome o = tg::guard_write(in);
      if (o.kind == tg::Outcome::fail) { CHECK_FAIL("guard_write %s: %s", path.c_str(), strerror(o.value)); return false; }
      fd = o.kind == tg::Outcome::replaced ? o.value
                                           : static_cast<int>(syscall(SYS_openat, AT_FDCWD, path.c_str(),
                                                                      O_WRONLY | O_TRUNC | O_CLOEXEC, 0));
      break;
    }
  }
  if (fd < 0) { CHECK_FAIL("%s %s: %s", kOpNames[kind], path.c_str(), strerror(errno)); return false; }
  bool ok = write_all(fd, payload, kSize);
  if (!ok) CHECK_FAIL("write %s: %s", path.c_str(), strerror(errno));
  // close reports a publication that failed (atomic mode).
  if (close(fd) != 0) {
    CHECK_FAIL("close %s (after %s): %s", path.c_str(), kOpNames[kind], strerror(errno));
    ok = false;
  }
  return ok;
}

struct Worker {
  int id;
  pthread_t thread;
  WorkerStats stats;
  std::string priv_name[2], priv_path[2];
  ExecMap map[2];
  unsigned char last[2] = {0, 0};
};

std::string g_shared_path[2], g_shared_name[2];

void* worker_main(void* arg) {
  auto* w = static_cast<Worker*>(arg);
  unsigned seed = 0x9e3779b9u * static_cast<unsigned>(w->id + 1);
  std::vector<unsigned char> payload(kSize);
  for (long iter = 0; !g_stop.load(std::memory_order_relaxed); ++iter) {
    seed = seed * 1103515245u + 12345u;
    const OpKind kind = static_cast<OpKind>((seed >> 16) % 6);
    const unsigned char v = static_cast<unsigned char>(1 + (seed >> 8) % 250);
    make_payload(payload.data(), v);
    const int which = static_cast<int>((seed >> 4) & 1);
    if ((seed >> 20) % 4 == 0) {
      // A shared file: other threads write it too; only the structure is checked.
      overwrite(kind, g_shared_path[which], g_shared_name[which], payload.data());
    } else {
      const std::string& p = w->priv_path[which];
      const ino_t before = inode_at(p);
      const bool mapped_before = w->map[which].addr && w->map[which].ino == before;
      if (!overwrite(kind, p, w->priv_name[which], payload.data())) break;
      const ino_t after = inode_at(p);
      if (mapped_before) {
        if (after != before) ++w->stats.replaced;
        else {
          ++w->stats.in_place;
          CHECK_FAIL("thread %d: %s of %s (mapped executable by this process): the name still holds inode %lu "
                     "afterwards (written in place, or the new file never published)",
                     w->id, kOpNames[kind], p.c_str(), static_cast<unsigned long>(before));
        }
      }
      w->last[which] = v;
      if (!w->map[which].map(p)) CHECK_FAIL("mmap %s: %s", p.c_str(), strerror(errno));
    }
    ++w->stats.ops;
    ++w->stats.by_kind[kind];
    g_progress.fetch_add(1, std::memory_order_relaxed);
  }
  return nullptr;
}

// ------------------------------------------------------------ fork & friends

struct ChildStats {
  std::atomic<long> forks{0}, vforks{0}, spawns{0};
};
ChildStats g_children;

// Waits for `pid` up to 20 s; true if it exited 0.
bool reap(pid_t pid, const char* what) {
  int status = 0;
  for (int i = 0; i < 20000; ++i) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
      if (WIFSIGNALED(status))
        CHECK_FAIL("%s child %d killed by signal %d (SIGALRM = deadlocked inside the shim)", what, pid, WTERMSIG(status));
      else
        CHECK_FAIL("%s child %d exited %d", what, pid, WEXITSTATUS(status));
      return false;
    }
    if (r < 0 && errno != EINTR) { CHECK_FAIL("waitpid: %s", strerror(errno)); return false; }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, nullptr);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  CHECK_FAIL("%s child %d did not finish in 20 s (deadlock after fork?)", what, pid);
  return false;
}

void* forker_main(void*) {
  const std::string path = g_dir + "/fork.so";
  ExecMap m;
  unsigned char payload[kSize];
  for (unsigned n = 0; !g_stop.load(std::memory_order_relaxed); ++n) {
    make_payload(payload, static_cast<unsigned char>(1 + n % 250));
    if (!m.map(path)) { CHECK_FAIL("mmap %s: %s", path.c_str(), strerror(errno)); break; }
    pid_t pid = fork();
    if (pid == 0) {
      // The child inherits the mapping: the shim must replace, not truncate,
      // whatever the parent's other threads were doing in the shim.
      alarm(15);
      const ino_t before = m.ino;
      int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
      if (fd < 0) _exit(3);
      struct stat st;
      if (fstat(fd, &st) != 0 || st.st_ino == before) _exit(4);
      if (!write_all(fd, payload, kSize)) _exit(5);
      if (close(fd) != 0) _exit(6);  // the publication failed
      _exit(0);
    }
    if (pid < 0) { CHECK_FAIL("fork: %s", strerror(errno)); break; }
    if (reap(pid, "fork")) {
      int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      unsigned char v = 0;
      const char* problem = fd >= 0 ? payload_problem(fd, &v) : "cannot open";
      if (problem || v != payload[kHeader])
        CHECK_FAIL("after fork: %s: %s", path.c_str(), problem ? problem : "the child's write is not at the name (lost)");
      if (fd >= 0) close(fd);
    }
    ++g_children.forks;
    g_progress.fetch_add(1, std::memory_order_relaxed);
  }
  m.unmap();
  return nullptr;
}

void* vforker_main(void*) {
  const std::string path = g_dir + "/vfork.so";
  const char* cpath = path.c_str();
  ExecMap m;
  char* const argv[] = {const_cast<char*>("true"), nullptr};
  for (unsigned n = 0; !g_stop.load(std::memory_order_relaxed); ++n) {
    if (!m.map(path)) { CHECK_FAIL("mmap %s: %s", cpath, strerror(errno)); break; }
    const bool open_in_child = n % 2 == 0;
    // Between vfork and execve the child runs on this thread's stack, with
    // the parent's memory: the shim must not take a lock or allocate there.
    pid_t pid = vfork();
    if (pid == 0) {
      if (open_in_child) {
        int fd = open(cpath, O_WRONLY | O_TRUNC);  // as a shell's "> file" before exec
        if (fd < 0) _exit(3);
        if (close(fd) != 0) _exit(4);  // the publication failed
      }
      execve("/bin/true", argv, environ);
      _exit(127);
    }
    if (pid < 0) { CHECK_FAIL("vfork: %s", strerror(errno)); break; }
    reap(pid, "vfork");
    if (open_in_child) {
      // The open replaced the (mapped) file with a new, empty one; refill it.
      if (inode_at(path) == m.ino)
        CHECK_FAIL("vfork child: %s (mapped) still holds inode %lu after the child's write (written in place, or "
                   "never published)", cpath, static_cast<unsigned long>(m.ino));
      unsigned char payload[kSize];
      make_payload(payload, 7);
      int fd = open(cpath, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || !write_all(fd, payload, kSize)) CHECK_FAIL("refill %s: %s", cpath, strerror(errno));
      if (fd >= 0) close(fd);
    }
    ++g_children.vforks;
    g_progress.fetch_add(1, std::memory_order_relaxed);
  }
  m.unmap();
  return nullptr;
}

void* spawner_main(void*) {
  const std::string out = g_dir + "/spawn.out";
  char* const argv[] = {const_cast<char*>("true"), nullptr};
  while (!g_stop.load(std::memory_order_relaxed)) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int r = posix_spawn(&pid, "/bin/true", &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0) { CHECK_FAIL("posix_spawn: %s", strerror(r)); break; }
    reap(pid, "posix_spawn");
    ++g_children.spawns;
    g_progress.fetch_add(1, std::memory_order_relaxed);
  }
  return nullptr;
}

// ------------------------------------------------------------ the signal

// Only async-signal-safe calls here, and the interposed open.
char g_sig_path[4096];
std::atomic<long> g_sig_fired{0};
std::atomic<long> g_sig_opens{0}, g_sig_in_place{0}, g_sig_errors{0};
std::atomic<ino_t> g_sig_mapped_ino{0};
void* g_sig_map = nullptr;  // owned by whoever holds g_sig_busy
std::atomic<bool> g_sig_armed{true};
std::atomic<bool> g_sig_busy{false};  // a second SIGALRM may run on another thread
pid_t g_main_pid = 0;                 // TSan can deliver a deferred SIGALRM in a fork child

void on_alarm(int) {
  g_sig_fired.fetch_add(1, std::memory_order_relaxed);
  if (!g_sig_armed.load() || static_cast<pid_t>(syscall(SYS_getpid)) != g_main_pid ||
      g_sig_busy.exchange(true, std::memory_order_acquire))
    return;
  const int saved = errno;
  int fd = open(g_sig_path, O_RDWR | O_TRUNC | O_CLOEXEC);  // readable: it gets mapped
  if (fd < 0) {
    g_sig_errors.fetch_add(1, std::memory_order_relaxed);
  } else {
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_ino == g_sig_mapped_ino.load(std::memory_order_relaxed))
      g_sig_in_place.fetch_add(1, std::memory_order_relaxed);  // a mapped file truncated in place
    static unsigned char payload[kSize];
    make_payload(payload, 9);
    (void)!write(fd, payload, kSize);
    // Map the new inode, so the next signal finds it mapped again.
    void* a = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    if (close(fd) != 0) g_sig_errors.fetch_add(1, std::memory_order_relaxed);  // the publication failed
    if (a != MAP_FAILED) {
      if (g_sig_map) munmap(g_sig_map, 4096);
      g_sig_map = a;
      g_sig_mapped_ino.store(st.st_ino, std::memory_order_relaxed);
    }
    g_sig_opens.fetch_add(1, std::memory_order_relaxed);
  }
  g_sig_busy.store(false, std::memory_order_release);
  errno = saved;
}

// ------------------------------------------------------------------- checks

int count_fds(int* log_fds) {
  int n = 0;
  *log_fds = 0;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  const std::string log_prefix = g_dir + "/log.";
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    ++n;
    char link[4096];
    char p[300];
    std::snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
    ssize_t k = readlink(p, link, sizeof link - 1);
    if (k > 0) {
      link[k] = '\0';
      if (std::strncmp(link, log_prefix.c_str(), log_prefix.size()) == 0) ++*log_fds;
    }
  }
  closedir(d);
  return n - 1;  // the directory stream itself
}

int setup_file(const std::string& path, unsigned char v) {
  unsigned char payload[kSize];
  make_payload(payload, v);
  int fd = static_cast<int>(syscall(SYS_openat, AT_FDCWD, path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd < 0 || !write_all(fd, payload, kSize)) {
    std::fprintf(stderr, "setup: cannot write %s: %s\n", path.c_str(), strerror(errno));
    std::exit(2);
  }
  close(fd);
  return 0;
}

double now_s() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// Progress must not stop for 20 s, and the whole run must end in time.
// (Sleeps are cut short by SIGALRM: time is measured, not counted.)
void* watchdog_main(void* arg) {
  const double limit_s = static_cast<double>(*static_cast<long*>(arg));
  const double start = now_s();
  double last_change = start;
  long last = -1;
  for (;;) {
    struct timespec s = {0, 100 * 1000 * 1000};
    nanosleep(&s, nullptr);
    const long p = g_progress.load();
    const double t = now_s();
    if (p != last) { last = p; last_change = t; }
    if (t - last_change >= 20 || t - start > limit_s) {
      std::fflush(stdout);
      std::fprintf(stderr, "FAIL: no progress for %.0f s (%.0f s in all): deadlock? progress counter %ld\n",
                   t - last_change, t - start, p);
      std::fflush(stderr);
      _exit(2);
    }
  }
  return nullptr;
}

std::string arg_value(int argc, char** argv, const char* name, const char* def) {
  const size_t n = std::strlen(name);
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], name, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string scope = arg_value(argc, argv, "--scope", "self");
  const int nthreads = std::atoi(arg_value(argc, argv, "--threads", "8").c_str());
  const double seconds = std::atof(arg_value(argc, argv, "--seconds", "3").c_str());
  const std::string mode = arg_value(argc, argv, "--mode", "replace");
  const std::string skip = "," + arg_value(argc, argv, "--skip", "") + ",";
  auto skipped = [&](const char* what) { return skip.find(std::string(",") + what + ",") != std::string::npos; };

  // The shim reads its settings once, at start-up: set them, then run again.
  if (!getenv("TG_CONCURRENCY_DIR")) {
    // Under /tmp, as every other test's files (tests/e2e/lib.sh, temp_dir.hpp),
    // not $TMPDIR: on a noexec mount there the PROT_EXEC mappings failed
    // (EPERM), and a quote in it broke the rm -rf below.
    std::string tmpl = "/tmp/tg-concurrency.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) { std::perror("mkdtemp"); return 2; }
    std::string dir = buf.data();
    setenv("TG_CONCURRENCY_DIR", dir.c_str(), 1);
    setenv("TRUNCGUARD_SCOPE", scope.c_str(), 1);
    setenv("TRUNCGUARD_LOG", (dir + "/log").c_str(), 1);
    // TG_CONCURRENCY_DECISIONS=1: log every decision too (for a post-mortem with TG_KEEP=1).
    setenv("TRUNCGUARD_DEBUG", getenv("TG_CONCURRENCY_DECISIONS") ? "decisions,rewrites" : "rewrites", 1);
    setenv("TRUNCGUARD_MODE", mode.c_str(), 1);
    unsetenv("TRUNCGUARD_ON_FAIL");
    unsetenv("TRUNCGUARD_LOG_FORMAT");
    unsetenv("LD_PRELOAD");
    pid_t pid = fork();
    if (pid == 0) {
      execv("/proc/self/exe", argv);
      std::perror("execv /proc/self/exe");
      _exit(2);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!getenv("TG_KEEP")) {
      std::string rm = "rm -rf '" + dir + "'";
      if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "cannot remove %s\n", dir.c_str());
    } else {
      std::fprintf(stderr, "# kept %s\n", dir.c_str());
    }
    if (WIFSIGNALED(status)) {
      std::fprintf(stderr, "FAIL: the test process was killed by signal %d\n", WTERMSIG(status));
      return 1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
  }

  g_dir = getenv("TG_CONCURRENCY_DIR");
  g_dirfd = open(g_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (g_dirfd < 0) { std::perror("open dir"); return 2; }
  std::printf("# %d worker threads, %.1f s, scope %s, mode %s, in %s\n", nthreads, seconds, scope.c_str(), mode.c_str(),
              g_dir.c_str());
  if (tg::settings().warning_count > 0) {
    std::printf("FAIL: the shim did not take the settings: %s\n", tg::settings().warnings[0]);
    return 2;
  }

  std::vector<Worker> workers(static_cast<size_t>(nthreads));
  for (int i = 0; i < nthreads; ++i) {
    Worker& w = workers[static_cast<size_t>(i)];
    w.id = i;
    for (int j = 0; j < 2; ++j) {
      w.priv_name[j] = "t" + std::to_string(i) + "-" + std::to_string(j) + ".so";
      w.priv_path[j] = g_dir + "/" + w.priv_name[j];
      setup_file(w.priv_path[j], 1);
      if (!w.map[j].map(w.priv_path[j])) { std::perror("mmap PROT_EXEC (noexec /tmp?)"); return 2; }
    }
  }
  for (int j = 0; j < 2; ++j) {
    g_shared_name[j] = "shared" + std::to_string(j) + ".so";
    g_shared_path[j] = g_dir + "/" + g_shared_name[j];
    setup_file(g_shared_path[j], 1);
  }
  setup_file(g_dir + "/fork.so", 1);
  setup_file(g_dir + "/vfork.so", 1);
  std::snprintf(g_sig_path, sizeof g_sig_path, "%s/signal.so", g_dir.c_str());
  setup_file(g_sig_path, 1);
  {
    int fd = open(g_sig_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    fstat(fd, &st);
    g_sig_map = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    g_sig_mapped_ino.store(st.st_ino);
    close(fd);
  }

  // The log file is opened by the first log line, by whichever thread gets
  // there first: log fds are counted apart from the others.
  int log_fds_before = 0;
  const int fds_before = count_fds(&log_fds_before);

  long limit = static_cast<long>(seconds) + 60;
  pthread_t watchdog;
  pthread_create(&watchdog, nullptr, watchdog_main, &limit);
  pthread_detach(watchdog);

  g_main_pid = getpid();
  struct sigaction sa{};
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, nullptr);

  for (Worker& w : workers) pthread_create(&w.thread, nullptr, worker_main, &w);
  pthread_t forker{}, vforker{}, spawner{};
  if (!skipped("fork")) pthread_create(&forker, nullptr, forker_main, nullptr);
  if (!skipped("vfork")) pthread_create(&vforker, nullptr, vforker_main, nullptr);
  if (!skipped("spawn")) pthread_create(&spawner, nullptr, spawner_main, nullptr);

  struct itimerval it{};
  it.it_interval.tv_usec = 1000;
  it.it_value.tv_usec = 1000;
  if (!skipped("signal")) setitimer(ITIMER_REAL, &it, nullptr);

  struct timespec run;
  run.tv_sec = static_cast<time_t>(seconds);
  run.tv_nsec = static_cast<long>((seconds - static_cast<double>(run.tv_sec)) * 1e9);
  while (nanosleep(&run, &run) != 0 && errno == EINTR) {}

  g_stop.store(true);
  for (Worker& w : workers) pthread_join(w.thread, nullptr);
  if (!skipped("fork")) pthread_join(forker, nullptr);
  if (!skipped("vfork")) pthread_join(vforker, nullptr);
  if (!skipped("spawn")) pthread_join(spawner, nullptr);
  it = {};
  setitimer(ITIMER_REAL, &it, nullptr);
  g_sig_armed.store(false);
  while (g_sig_busy.exchange(true, std::memory_order_acquire)) sched_yield();  // a handler still running

  // ---------------------------------------------------------------- checks
  long ops = 0, replaced = 0, in_place = 0, by_kind[6] = {};
  for (Worker& w : workers) {
    ops += w.stats.ops;
    replaced += w.stats.replaced;
    in_place += w.stats.in_place;
    for (int k = 0; k < 6; ++k) by_kind[k] += w.stats.by_kind[k];
    for (int j = 0; j < 2; ++j) {
      w.map[j].unmap();
      int fd = open(w.priv_path[j].c_str(), O_RDONLY | O_CLOEXEC);
      unsigned char v = 0;
      const char* problem = fd >= 0 ? payload_problem(fd, &v) : "cannot open";
      if (!problem && w.last[j] != 0 && v != w.last[j]) problem = "not the last content written";
      if (problem) CHECK_FAIL("%s: %s", w.priv_path[j].c_str(), problem);
      if (fd >= 0) close(fd);
    }
  }
  for (int j = 0; j < 2; ++j) {
    int fd = open(g_shared_path[j].c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<size_t>(st.st_size) != kSize)
      CHECK_FAIL("%s: missing or wrong size", g_shared_path[j].c_str());
    if (fd >= 0) close(fd);
  }
  if (g_sig_map) munmap(g_sig_map, 4096);

  std::printf("# operations: %ld (", ops);
  for (int k = 0; k < 6; ++k) std::printf("%s%s %ld", k ? ", " : "", kOpNames[k], by_kind[k]);
  std::printf(")\n# private mapped files: %ld replaced, %ld written in place\n", replaced, in_place);
  std::printf("# children: %ld fork, %ld vfork, %ld posix_spawn\n", g_children.forks.load(), g_children.vforks.load(),
              g_children.spawns.load());
  std::printf("# SIGALRM: %ld delivered, %ld handler opens, %ld of them truncated the mapped file in place, %ld errors\n",
              g_sig_fired.load(), g_sig_opens.load(), g_sig_in_place.load(), g_sig_errors.load());
  if (ops == 0 || replaced == 0) CHECK_FAIL("nothing was replaced: the test did not exercise the shim");
  if ((!skipped("fork") && g_children.forks == 0) || (!skipped("vfork") && g_children.vforks == 0) ||
      (!skipped("spawn") && g_children.spawns == 0))
    CHECK_FAIL("a child kind never ran");
  if (!skipped("signal") && g_sig_opens.load() == 0) CHECK_FAIL("the signal handler never opened its file");
  if (g_sig_errors.load() > 0) CHECK_FAIL("%ld opens or closes in the signal handler failed", g_sig_errors.load());
  if (g_sig_in_place.load() > 0)
    CHECK_FAIL("%ld opens in the SIGALRM handler truncated a file this process maps executable in place: "
               "the handler interrupted the shim on the same thread, whose re-entry guard then let the open "
               "through unprotected",
               g_sig_in_place.load());

  // Temp files left behind?
  if (DIR* d = opendir(g_dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::strstr(e->d_name, ".tg-")) CHECK_FAIL("temp file left behind: %s", e->d_name);
    closedir(d);
  }
  int log_fds_after = 0;
  const int fds_after = count_fds(&log_fds_after);
  std::printf("# fds: %d before, %d after (log files: %d before, %d after)\n", fds_before, fds_after,
              log_fds_before, log_fds_after);
  if (fds_after - log_fds_after != fds_before - log_fds_before)
    CHECK_FAIL("fd leak: %d fds (not counting log files) before, %d after", fds_before - log_fds_before,
               fds_after - log_fds_after);
  // One log file per process, opened once: threads whose first lines race
  // each open it, and all but the one kept close theirs (log.cpp).
  if (log_fds_after > 1)
    CHECK_FAIL("%d fds open on this process's log file (expected 1): the log fd was opened again and the old one "
               "never closed (a vfork child that logged stores its own fd and pid in the parent's memory)",
               log_fds_after);
  // ... and each process's lines in its own file: FILE.PID holds lines of PID
  // alone (a fork child writing on through its parent's log fd would put its
  // lines, and its pid, in the parent's file).
  int log_files = 0;
  if (DIR* d = opendir(g_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (std::strncmp(e->d_name, "log.", 4) != 0) continue;
      ++log_files;
      const std::string pid = e->d_name + 4;
      FILE* f = std::fopen((g_dir + "/" + e->d_name).c_str(), "re");
      char line[4096];
      while (f && std::fgets(line, sizeof line, f)) {
        const char* p = line + std::strspn(line, " ");
        if (std::strncmp(p, pid.c_str(), pid.size()) != 0 || p[pid.size()] != ':') {
          CHECK_FAIL("%s has a line of another process: %s", e->d_name, line);
          break;
        }
      }
      if (f) std::fclose(f);
    }
    closedir(d);
  }
  if (!skipped("fork") && log_files < 2) CHECK_FAIL("no child has its own log file (%d log files)", log_files);

  const int failures = g_failures.load();
  if (failures) std::printf("%d check(s) failed\n", failures);
  else std::printf("ok: no deadlock, no failed write, no torn file, no temp file, no leaked fd\n");
  return failures ? 1 : 0;
}
