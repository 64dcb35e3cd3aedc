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
  if (fd < 0) return STDERR_FILENO;
  g_log_fd.store(fd, std::memory_order_release);
  g_log_pid.store(pid, std::memory_order_release);
  return fd;
}

void write_all(int fd, const char* buf, size_t len) {
  while (len > 0) {
    long w = sys::write(fd, buf, len);
    if (w == -EINTR) continue;
    if (w <= 0) return;  // nowhere to report a failed log write: drop it
    buf += w;
    len -= static_cast<size_t>(w);
  }
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

namespace {

// Length of the valid UTF-8 sequence starting at p, or 0 if there is none.
size_t utf8_sequence(const unsigned char* p) {
  unsigned char c = p[0];
  size_t n;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) n = 3;
  else if (c >= 0xF0 && c <= 0xF4) n = 4;
  else return 0;
  for (size_t i = 1; i < n; ++i)
    if ((p[i] & 0xC0) != 0x80) return 0;  // also stops at the terminating NUL
  return n;
}

}  // namespace

size_t escape(const char* in, char* out, size_t out_len) {
  if (out_len == 0) return 0;
  static const char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(in ? in : "(null)");
  size_t o = 0;
  const size_t limit = out_len > 4 ? out_len - 4 : 0;  // keep room for "..." + NUL
  while (*p) {
    char tmp[8];
    size_t n = 0;
    size_t consumed = 1;
    unsigned char c = *p;
    if (c == '\n') { tmp[0] = '\\'; tmp[1] = 'n'; n = 2; }
    else if (c == '\t') { tmp[0] = '\\'; tmp[1] = 't'; n = 2; }
    else if (c == '\r') { tmp[0] = '\\'; tmp[1] = 'r'; n = 2; }
    else if (c == '\\') { tmp[0] = '\\'; tmp[1] = '\\'; n = 2; }
    else if (c < 0x20 || c == 0x7f) { tmp[0] = '\\'; tmp[1] = 'x'; tmp[2] = kHex[c >> 4]; tmp[3] = kHex[c & 15]; n = 4; }
    else if (c < 0x80) { tmp[0] = static_cast<char>(c); n = 1; }
    else if (size_t seq = utf8_sequence(p); seq > 0) {
      std::memcpy(tmp, p, seq);
      n = consumed = seq;
    } else { tmp[0] = '\\'; tmp[1] = 'x'; tmp[2] = kHex[c >> 4]; tmp[3] = kHex[c & 15]; n = 4; }
    if (o + n > limit) {
      size_t dots = out_len - 1 - o < 3 ? out_len - 1 - o : 3;
      std::memcpy(out + o, "...", dots);
      o += dots;
      break;
    }
    std::memcpy(out + o, tmp, n);
    o += n;
    p += consumed;
  }
  out[o] = '\0';
  return o;
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
