#include "log.hpp"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "sys.hpp"

namespace tg::log {
namespace {

unsigned g_categories = kRewrites;
char g_log_path[PATH_MAX] = {};
// The log file belongs to the process that opened it: after fork the child
// opens its own FILE.PID, as LD_DEBUG_OUTPUT's name promises one file per PID.
std::atomic<int> g_log_fd{-1};
std::atomic<pid_t> g_log_pid{0};
std::atomic<pid_t> g_open_failed_pid{0};

void write_all(int fd, const char* buf, size_t len) {
  while (len > 0) {
    long w = sys::write(fd, buf, len);
    if (w == -EINTR) continue;
    if (w <= 0) return;  // nowhere to report a failed log write: drop it
    buf += w;
    len -= static_cast<size_t>(w);
  }
}

int destination_fd(pid_t pid) {
  if (g_log_path[0] == '\0') return STDERR_FILENO;
  if (g_log_pid.load(std::memory_order_acquire) == pid) {
    int fd = g_log_fd.load(std::memory_order_acquire);
    if (fd >= 0) return fd;
  }
  char name[PATH_MAX + 16];
  std::snprintf(name, sizeof name, "%s.%d", g_log_path, static_cast<int>(pid));
  // As LD_DEBUG_OUTPUT: append, create, never through a symlink.
  int fd = sys::openat(AT_FDCWD, name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (fd < 0) {
    // Say so once per process, on stderr, where the lines will go instead.
    if (g_open_failed_pid.exchange(pid) != pid) {
      char esc[kPathBuf], msg[kPathBuf + 160];
      escape(name, esc, sizeof esc);
      size_t n = format_prefix(msg, sizeof msg, pid);
      int m = std::snprintf(msg + n, sizeof msg - n, "warning: cannot open the log file %s: %s; logging to stderr\n",
                            esc, strerrordesc_np(-fd));
      if (m > 0) write_all(STDERR_FILENO, msg, n + static_cast<size_t>(m) < sizeof msg ? n + m : sizeof msg - 1);
    }
    return STDERR_FILENO;
  }
  g_log_fd.store(fd, std::memory_order_release);
  g_log_pid.store(pid, std::memory_order_release);
  return fd;
}

}  // namespace

void configure(const Settings& s) {
  g_categories = s.debug;
  std::memcpy(g_log_path, s.log_path, sizeof g_log_path);
}

bool enabled(unsigned category) { return (g_categories & category) != 0; }

size_t format_prefix(char* buf, size_t len, pid_t pid) {
  int n = std::snprintf(buf, len, "%10d:\t", static_cast<int>(pid));
  return n < 0 ? 0 : (static_cast<size_t>(n) < len ? static_cast<size_t>(n) : len - 1);
}

void line(const char* fmt, ...) {
  char buf[4096];
  const pid_t pid = sys::getpid();
  size_t len = format_prefix(buf, sizeof buf, pid);
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf + len, sizeof buf - len - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  len += static_cast<size_t>(n) < sizeof buf - len - 1 ? static_cast<size_t>(n) : sizeof buf - len - 2;
  buf[len++] = '\n';
  write_all(destination_fd(pid), buf, len);
}

void backtrace() {
  unw_context_t ctx;
  unw_cursor_t cursor;
  if (unw_getcontext(&ctx) != 0 || unw_init_local(&cursor, &ctx) != 0) {
    line("backtrace: unavailable (libunwind could not start)");
    return;
  }
  Dl_info self{};
  dladdr(reinterpret_cast<void*>(&backtrace), &self);
  line("backtrace:");
  int frame = 0;
  while (unw_step(&cursor) > 0 && frame < 32) {
    unw_word_t ip = 0, off = 0;
    unw_get_reg(&cursor, UNW_REG_IP, &ip);
    Dl_info info{};
    dladdr(reinterpret_cast<void*>(ip), &info);
    if (info.dli_fbase && info.dli_fbase == self.dli_fbase) continue;  // the shim's own frames
    char name[256];
    if (unw_get_proc_name(&cursor, name, sizeof name, &off) != 0) std::strcpy(name, "??");
    char object[log::kPathBuf];
    escape(info.dli_fname && *info.dli_fname ? info.dli_fname : "?", object, sizeof object);
    line("  #%d 0x%lx %s+0x%lx (%s)", frame++, static_cast<unsigned long>(ip), name,
         static_cast<unsigned long>(off), object);
  }
}

}  // namespace tg::log
