#include "log.hpp"

#include <atomic>
#include <climits>
#include <initializer_list>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <pthread.h>
#include <sys/auxv.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "fork_gate.hpp"
#include "pending.hpp"
#include "scratch.hpp"
#include "signals.hpp"
#include "sys.hpp"

#ifndef TG_LIBUNWIND  // set by meson (option libunwind_soname)
#define TG_LIBUNWIND "libunwind.so.8"
#endif

namespace tg::log {
namespace {

unsigned g_categories = kRewrites;
bool g_json = false;
// The settings' own string (they live as long as the process): a copy here
// wrote 4 KiB, two pages faulted in at every start-up for an empty name.
const char* g_log_path = "";
// The log file belongs to the process that opened it: after fork the child
// opens its own FILE.PID, as LD_DEBUG_OUTPUT's name promises one file per PID.
// Only the process that owns this memory caches its fd: a vfork child shares
// the memory but not the fd table, so it opens, writes and closes per line.
std::atomic<int> g_log_fd{-1};
// The cached fd's file. A program may close every fd it does not know
// (close_range, closefrom, a loop of close) and reuse the number for its own
// file: each line first checks that the fd still is the log file, so a line
// never lands in the program's data (it reopens the log instead).
std::atomic<dev_t> g_log_dev{0};
std::atomic<ino_t> g_log_ino{0};
std::atomic<pid_t> g_owner_pid{0};
std::atomic<pid_t> g_open_failed_pid{0};

// KeepOutOf: stderr is the file being made or published (initial-exec: no
// __tls_get_addr, which may allocate, on the way to a log line).
__attribute__((tls_model("initial-exec"))) thread_local bool t_keep_out_of_stderr = false;

// The file the shim last gave the program at fd 2 (made_at_fd): ino 0, none.
// Inherited by a forked child, which shares that fd.
std::atomic<dev_t> g_made_at_stderr_dev{0};
std::atomic<ino_t> g_made_at_stderr_ino{0};

// May a line go to fd 2? Not into a file the shim makes or publishes, nor
// into one it gave the program there while fd 2 still holds it (log.hpp).
bool stderr_writable() {
  if (t_keep_out_of_stderr) return false;
  if (pending::any() && pending::is_pending(STDERR_FILENO)) return false;
  const ino_t made = g_made_at_stderr_ino.load(std::memory_order_acquire);
  if (made == 0) return true;
  struct stat st;
  return !(sys::fstat(STDERR_FILENO, &st) == 0 && st.st_ino == made &&
           st.st_dev == g_made_at_stderr_dev.load(std::memory_order_acquire));
}

// One line's working memory. A line needs a few KiB (escaped names, the line
// itself, a JSON object), which a thread with a small stack can't spare
// (coroutines, 16 KiB threads): it is formatted here instead. One spare in
// static memory serves whoever takes it first (no system call); a line
// written while it is taken (another thread, a signal handler in the middle
// of a line, a fork or vfork child that was handed it taken) maps its own.
// Never waited for: a line that gets neither memory is lost.
struct LineMem {
  char line[4096];            // the text line: prefix, text, newline
  char json[8192];            // or the JSON object
  char esc[3][kPathBuf];      // escaped names
  char text[kPathBuf + 256];  // composed parts of a line
  char symbol[640];           // a dl_call's " `symbol' [version]"
  char sym[2][256];           // escaped symbol and version
  char name[PATH_MAX + 16];   // the log file's name, FILE.PID
};
TG_LARGE_TABLE LineMem g_spare_line;
std::atomic_flag g_spare_line_taken = ATOMIC_FLAG_INIT;

class LineScratch {
 public:
  LineScratch() {
    if (!g_spare_line_taken.test_and_set(std::memory_order_acquire)) {
      mem_ = &g_spare_line;
      return;
    }
    const long r = map_scratch(sizeof(LineMem));
    if (r >= 0) {
      mem_ = reinterpret_cast<LineMem*>(r);
      mapped_ = true;
    }
  }
  LineScratch(const LineScratch&) = delete;
  LineScratch& operator=(const LineScratch&) = delete;
  ~LineScratch() {
    if (mapped_) unmap_scratch(mem_, sizeof(LineMem));
    else if (mem_) g_spare_line_taken.clear(std::memory_order_release);
  }
  LineMem* get() const { return mem_; }

 private:
  LineMem* mem_ = nullptr;
  bool mapped_ = false;
};

// fork (not vfork, which runs no atfork handlers): the child owns its copy.
void on_fork_child() {
  int fd = g_log_fd.exchange(-1);
  if (fd >= 0) sys::close(fd);
  g_owner_pid.store(sys::getpid());
}

// A log line never raises SIGPIPE: stderr may be a pipe whose reader is gone
// (`deploy 2>&1 | head`), and the program, which may write nothing there
// itself, must not die of the shim's line (cp was killed between the new
// inode and its copy: the library left empty). Nor SIGXFSZ: a log file that
// grows past the program's RLIMIT_FSIZE (`ulimit -f`) killed it at the next
// line ("File size limit exceeded", a shell writing empty files). Both wait
// while the line is written; one that the write raised is taken back, unless
// one was already pending (the program's own stays). Raw calls: nothing
// allocated. Returns 0, or the errno that stopped the line (EIO for a write
// of nothing).
int write_all(int fd, const char* buf, size_t len) {
  const uint64_t pipe_sig = signal_bit(SIGPIPE), fsize_sig = signal_bit(SIGXFSZ);
  const uint64_t sigs = pipe_sig | fsize_sig;
  uint64_t mask = 0, pending = 0;
  const bool blocked = sys::call(SYS_rt_sigprocmask, SIG_BLOCK, &sigs, &mask, sizeof mask) == 0;
  if (blocked) sys::call(SYS_rt_sigpending, &pending, sizeof pending);
  uint64_t raised = 0;
  int error = 0;
  while (len > 0) {
    long w = sys::write(fd, buf, len);
    if (w == -EINTR) continue;
    if (w == -EPIPE) raised |= pipe_sig;
    if (w == -EFBIG) raised |= fsize_sig;
    if (w <= 0) {  // the caller decides where else the line goes
      error = w < 0 ? static_cast<int>(-w) : EIO;
      break;
    }
    buf += w;
    len -= static_cast<size_t>(w);
  }
  if (!blocked) return error;
  for (const uint64_t sig : {pipe_sig, fsize_sig}) {
    if (!(raised & sig) || (pending & sig)) continue;
    const struct timespec now = {0, 0};
    sys::call(SYS_rt_sigtimedwait, &sig, nullptr, &now, sizeof sig);
  }
  sys::call(SYS_rt_sigprocmask, SIG_SETMASK, &mask, nullptr, sizeof mask);
  return error;
}

// Opens the log file `name` as LD_DEBUG_OUTPUT does: append, create, never
// through a symlink. And only a regular file of one name: the name may be in
// a directory others can write (and FILE.PID is predictable), where a FIFO
// put there blocked the open (the writer hung) and a hard link made the lines
// go into another file. O_NONBLOCK: a FIFO, or a lease on the file, never
// blocks it. The fd, or -1 with *why set.
int open_log(const char* name, struct stat* st, const char** why) {
  int fd = sys::openat(AT_FDCWD, name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0666);
  if (fd < 0) {
    *why = strerrordesc_np(-fd);
    return -1;
  }
  if (sys::fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_nlink != 1) {
    sys::close(fd);
    *why = "not a regular file with one name";
    return -1;
  }
  return fd;
}

size_t format_json_warning(char* buf, size_t cap, pid_t pid, const char* message, char* esc);

// Says once per process (`said` holds the pid it was said in), on stderr,
// where the lines go instead, why the log file can't `what` ("open",
// "write"). The line itself is in m->line (text) or m->json (JSON; or, a
// backtrace's, elsewhere): the other parts are free. In the JSON format, a
// warning object, as every other warning there (a text line among the
// objects broke a reader that parses stderr line by line).
void warn_log_file(std::atomic<pid_t>& said, pid_t pid, const char* what, const char* name, const char* why,
                   LineMem* m) {
  if (said.exchange(pid) == pid) return;
  char* esc = m->esc[0];
  char* msg = m->text;
  const size_t cap = sizeof m->text;
  escape(name, esc, kPathBuf);
  if (g_json) {
    const int w = std::snprintf(msg, cap, "cannot %s the log file %s: %s; logging to stderr", what, esc, why);
    const size_t len = w > 0 ? format_json_warning(m->line, sizeof m->line, pid, msg, m->esc[1]) : 0;
    if (len && stderr_writable()) write_all(STDERR_FILENO, m->line, len);
    return;
  }
  size_t n = format_prefix(msg, cap, pid);
  int w = std::snprintf(msg + n, cap - n, "warning: cannot %s the log file %s: %s; logging to stderr\n", what, esc, why);
  if (w > 0 && stderr_writable())
    write_all(STDERR_FILENO, msg, n + static_cast<size_t>(w) < cap ? n + w : cap - 1);
}
void warn_unopenable(pid_t pid, const char* name, const char* why, LineMem* m) {
  warn_log_file(g_open_failed_pid, pid, "open", name, why, m);
}
// The log file took none or only part of a line: a full filesystem (ENOSPC,
// a quota, EFBIG), an I/O error. The line was lost without a word, a
// protected write's with it.
std::atomic<pid_t> g_write_failed_pid{0};
void warn_unwritable(pid_t pid, const char* name, int error, LineMem* m) {
  warn_log_file(g_write_failed_pid, pid, "write", name, strerrordesc_np(error), m);
}

// Is `name` still the file open at the cached fd? logrotate's `create`
// renames FILE.PID away (and compresses and deletes it later) and makes a new
// FILE.PID: a daemon kept writing into the old one for the rest of its life,
// and its lines were lost with it.
bool still_at_its_name(const char* name) {
  struct stat st;
  return sys::fstatat(AT_FDCWD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         st.st_dev == g_log_dev.load(std::memory_order_acquire) &&
         st.st_ino == g_log_ino.load(std::memory_order_acquire);
}

// Where this process's lines go. *close_after: the caller closes the fd
// after its write (a process that may not cache it).
int destination_fd(pid_t pid, bool* close_after, LineMem* m) {
  *close_after = false;
  if (g_log_path[0] == '\0') return STDERR_FILENO;
  char* name = m->name;
  std::snprintf(name, sizeof m->name, "%s.%d", g_log_path, static_cast<int>(pid));
  const bool owner = g_owner_pid.load(std::memory_order_acquire) == pid;
  int cached = owner ? g_log_fd.load(std::memory_order_acquire) : -1;
  if (cached >= 0 &&
      !sys::refers_to(cached, g_log_dev.load(std::memory_order_acquire), g_log_ino.load(std::memory_order_acquire))) {
    // Closed behind our back, the number perhaps the program's now: forget
    // it (never close it) and open the log again.
    g_log_fd.compare_exchange_strong(cached, -1, std::memory_order_acq_rel);
    cached = -1;
  }
  if (cached >= 0 && still_at_its_name(name)) return cached;
  struct stat st;
  const char* why = nullptr;
  int fd = open_log(name, &st, &why);
  if (fd < 0) {
    // Rotated, and the new name can't be opened (a `create` mode this user
    // may not write, after a privilege drop): the old file still takes them.
    if (cached >= 0) return cached;
    warn_unopenable(pid, name, why, m);
    return STDERR_FILENO;
  }
  if (!owner) {
    *close_after = true;
    return fd;
  }
  if (cached >= 0) {
    // Rotated: the new file takes the old one's number, in one step, so a
    // thread writing a line meanwhile writes into one log file or the other,
    // never into a closed number the program may have reused.
    g_log_dev.store(st.st_dev, std::memory_order_release);
    g_log_ino.store(st.st_ino, std::memory_order_release);
    const long r = sys::dup3_onto(fd, cached, O_CLOEXEC);  // (a number above a lowered limit too)
    sys::close(fd);
    return r < 0 ? STDERR_FILENO : cached;
  }
  // Kept open from now on: out of the numbers the program's next opens get.
  if (const int high = sys::dup_high(fd); high >= 0) {
    sys::close(fd);
    fd = high;
  }
  g_log_dev.store(st.st_dev, std::memory_order_release);
  g_log_ino.store(st.st_ino, std::memory_order_release);
  int expected = -1;
  if (!g_log_fd.compare_exchange_strong(expected, fd, std::memory_order_acq_rel)) {
    sys::close(fd);  // another thread got there first
    return expected;
  }
  return fd;
}

// m->line or m->json holds the line; m->name the log file's name, if any.
void write_line(pid_t pid, const char* buf, size_t len, LineMem* m) {
  bool close_after;
  int fd = destination_fd(pid, &close_after, m);
  if (fd == STDERR_FILENO && !stderr_writable()) return;
  const int error = write_all(fd, buf, len);
  if (close_after) sys::close(fd);
  if (error == 0 || fd == STDERR_FILENO) return;
  // The log file took none or part of it: the whole line goes to stderr,
  // as when the file can't be opened (a part written stays in the file).
  warn_unwritable(pid, m->name, error, m);
  if (stderr_writable()) write_all(STDERR_FILENO, buf, len);
}

}  // namespace

void configure(const Settings& s) {
  if (g_owner_pid.exchange(sys::getpid()) == 0) pthread_atfork(nullptr, nullptr, &on_fork_child);
  g_categories = s.debug;
  g_json = s.log_format == LogFormat::json;
  g_log_path = s.log_path;
}

KeepOutOf::KeepOutOf(int fd) : was_(t_keep_out_of_stderr) {
  if (fd == STDERR_FILENO) t_keep_out_of_stderr = true;
}
KeepOutOf::~KeepOutOf() { t_keep_out_of_stderr = was_; }

void made_at_fd(int fd) {
  if (fd != STDERR_FILENO) return;
  struct stat st;
  if (sys::fstat(fd, &st) != 0) return;
  g_made_at_stderr_dev.store(st.st_dev, std::memory_order_release);
  g_made_at_stderr_ino.store(st.st_ino, std::memory_order_release);
}

bool enabled(unsigned category) { return (g_categories & category) != 0; }
bool json() { return g_json; }

size_t format_prefix(char* buf, size_t len, pid_t pid) {
  int n = std::snprintf(buf, len, "%10d:\t", static_cast<int>(pid));
  return n < 0 ? 0 : (static_cast<size_t>(n) < len ? static_cast<size_t>(n) : len - 1);
}

namespace {

// "%10d:\t", the text, a newline, in m->line; then written.
void vput(LineMem* m, pid_t pid, const char* fmt, va_list ap) {
  char* buf = m->line;
  const size_t cap = sizeof m->line;
  size_t len = format_prefix(buf, cap, pid);
  int n = std::vsnprintf(buf + len, cap - len - 1, fmt, ap);
  if (n < 0) return;
  len += static_cast<size_t>(n) < cap - len - 1 ? static_cast<size_t>(n) : cap - len - 2;
  buf[len++] = '\n';
  write_line(pid, buf, len, m);
}

__attribute__((format(printf, 3, 4))) void put(LineMem* m, pid_t pid, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vput(m, pid, fmt, ap);
  va_end(ap);
}

// Appends to a fixed buffer, cutting what does not fit; always NUL-terminated.
struct Out {
  char* buf;
  size_t cap;  // > 0
  size_t len = 0;
  void str(const char* s) {
    while (*s && len + 1 < cap) buf[len++] = *s++;
    buf[len] = '\0';
  }
  // `s` escaped as into a buffer of `max` bytes (cut there with "...").
  void esc(const char* s, size_t max) {
    const size_t room = cap - len < max ? cap - len : max;
    len += escape(s, buf + len, room);
  }
  void num(long v) {
    char n[24];
    std::snprintf(n, sizeof n, "%ld", v);
    str(n);
  }
};

}  // namespace

void line(const char* fmt, ...) {
  LineScratch mem;
  if (!mem.get()) return;  // no memory to format it in: lost
  va_list ap;
  va_start(ap, fmt);
  vput(mem.get(), sys::getpid(), fmt, ap);
  va_end(ap);
}


namespace {

// One JSON object, built in a fixed buffer (no allocation). Strings from the
// outside are first escaped as in the text log (\n, \xHH...), then JSON-encoded,
// so both formats spell a file name the same way.
class Json {
 public:
  // `esc`: kPathBuf bytes to escape strings in.
  Json(char* buf, size_t cap, char* esc) : buf_(buf), cap_(cap), esc_(esc) { put('{'); }
  void str(const char* key, const char* value) {
    if (!value) return;
    escape(value, esc_, kPathBuf);
    this->key(key);
    quoted(esc_);
  }
  // Text the shim composed itself, whose outside parts are already escaped:
  // only JSON-encoded (escaping it again would double every backslash).
  void text(const char* key, const char* value) {
    if (!value) return;
    this->key(key);
    quoted(value);
  }
  void num(const char* key, long long v) {
    this->key(key);
    char n[24];
    std::snprintf(n, sizeof n, "%lld", v);
    raw(n);
  }
  void boolean(const char* key, bool v) {
    this->key(key);
    raw(v ? "true" : "false");
  }
  void begin_array(const char* key) { this->key(key); put('['); first_ = true; }
  void end_array() { put(']'); first_ = false; }
  void begin_object() { if (!first_) put(','); put('{'); first_ = true; }
  void end_object() { put('}'); first_ = false; }
  // Closes the object, adds the newline; returns the length (cut short
  // objects are dropped rather than written as broken JSON).
  size_t finish() {
    put('}');
    put('\n');
    return overflow_ ? 0 : len_;
  }

 private:
  void put(char c) {
    if (len_ + 1 < cap_) buf_[len_++] = c;
    else overflow_ = true;
  }
  void raw(const char* s) { while (*s) put(*s++); }
  void key(const char* k) {
    if (!first_) put(',');
    first_ = false;
    quoted(k);
    put(':');
  }
  void quoted(const char* s) {
    put('"');
    for (; *s; ++s) {
      const unsigned char c = static_cast<unsigned char>(*s);
      if (c < 0x20) {  // never in our text, but JSON must stay valid whatever comes
        char u[8];
        std::snprintf(u, sizeof u, "\\u%04x", c);
        raw(u);
        continue;
      }
      if (c == '"' || c == '\\') put('\\');
      put(*s);
    }
    put('"');
  }
  char* buf_;
  size_t cap_;
  char* esc_;
  size_t len_ = 0;
  bool first_ = true;
  bool overflow_ = false;
};

// A warning object ({"pid","event":"warning","message"}, as emit_json makes)
// for `message`, composed by the shim (its outside parts already escaped).
size_t format_json_warning(char* buf, size_t cap, pid_t pid, const char* message, char* esc) {
  Json j(buf, cap, esc);
  j.num("pid", pid);
  j.str("event", "warning");
  j.text("message", message);
  return j.finish();
}

const char* kind_name(EventKind k) {
  switch (k) {
    case EventKind::decision: return "decision";
    case EventKind::replaced: return "replaced";
    case EventKind::would_replace: return "would_replace";
    case EventKind::published: return "published";
    case EventKind::cannot_protect: return "cannot_protect";
    case EventKind::note: return "note";
    case EventKind::warning: return "warning";
    case EventKind::binding: return "binding";
    case EventKind::lookup_error: return "lookup_error";
    case EventKind::dl_call: return "dl_call";
  }
  return "?";
}

void emit_json(const Event& e, pid_t pid, LineMem* m) {
  Json j(m->json, sizeof m->json, m->esc[0]);
  j.num("pid", pid);
  j.str("event", kind_name(e.kind));
  j.str("file", e.file);
  j.str("entry", e.entry);
  switch (e.kind) {
    case EventKind::decision:
      j.str("action", e.act ? "act" : "pass");
      j.str("reason", e.reason);
      break;
    case EventKind::replaced:
    case EventKind::would_replace:
      j.str("mode", e.mode);
      j.num("old_ino", static_cast<long long>(e.old_ino));
      if (e.kind == EventKind::replaced) j.num("new_ino", static_cast<long long>(e.new_ino));
      j.num("kept_bytes", e.kept_bytes);
      j.str("reason", e.reason);
      j.boolean("mapped_by_self", e.by_self);
      j.begin_array("mapped_by");
      for (int i = 0; i < e.mapper_count; ++i) {
        j.begin_object();
        j.num("pid", e.mappers[i].pid);
        j.str("comm", e.mappers[i].comm);
        j.end_object();
      }
      j.end_array();
      j.num("mapped_by_total", e.mapper_total);
      j.num("uninspected", e.uninspected);
      if (e.outside_pid_ns) j.boolean("outside_pid_namespace", true);
      if (e.scan_age_ms >= 0) j.num("scan_age_ms", e.scan_age_ms);
      break;
    case EventKind::published:
      j.str("mode", e.mode);
      j.num("old_ino", static_cast<long long>(e.old_ino));
      j.num("new_ino", static_cast<long long>(e.new_ino));
      break;
    case EventKind::cannot_protect:
      j.str("step", e.step);
      j.str("error", strerrordesc_np(e.error));
      j.num("errno", e.error);
      j.str("fallback", e.message ? "none" : (e.truncating_anyway ? "truncate" : "etxtbsy"));
      j.text("message", e.message);
      if (e.restored_old) j.boolean("restored_old", true);
      if (e.kept_aside) {
        j.str("kept_aside", e.kept_aside);
        j.num("putback_errno", e.putback_error);
        if (e.incomplete_at_name) j.boolean("incomplete_at_name", true);
      }
      break;
    case EventKind::note:
      j.str("note", e.note);
      j.text("message", e.message);
      break;
    case EventKind::warning:
      j.text("message", e.message);
      break;
    case EventKind::binding:
    case EventKind::lookup_error:  // a binding that found nothing
      j.num("ns", e.ns);
      j.str("symbol", e.symbol);
      j.str("version", e.version);
      if (e.kind == EventKind::lookup_error) break;
      j.str("to", e.to);
      j.num("to_ns", e.to_ns);
      j.boolean("protected", e.protected_ref);
      break;
    case EventKind::dl_call:
      j.str("call", e.call);
      if (e.ns >= 0) j.num("ns", e.ns);
      j.str("symbol", e.symbol);
      j.str("version", e.version);
      j.str("caller", e.caller);
      if (e.caller_ns >= 0) j.num("caller_ns", e.caller_ns);
      j.str("defined_in", e.to);
      if (e.to_ns >= 0) j.num("defined_in_ns", e.to_ns);
      if (e.old_ino) j.num("ino", static_cast<long long>(e.old_ino));
      if (e.opens >= 0) j.num("opens", e.opens);
      if (e.already_open >= 0) j.num("already_open", e.already_open);
      j.str("detail", e.detail);
      break;
  }
  size_t len = j.finish();
  if (len) write_line(pid, m->json, len, m);
}

}  // namespace

// A dl_call line, in the spirit of LD_DEBUG=files:
//   file=./plug.so [0];  dlsym `run' by ./main [0]: in ./plug.so [0], ino 1234, opens 1
static void emit_dl_call(const Event& e, pid_t pid, LineMem* m) {
  char *file = m->esc[0], *caller = m->esc[1], *to = m->esc[2], *sym = m->symbol;
  char ns[24] = "", cns[24] = "", tns[24] = "";
  escape(e.file, file, kPathBuf);
  escape(e.caller ? e.caller : "?", caller, kPathBuf);
  escape(e.to, to, kPathBuf);
  sym[0] = '\0';
  if (e.symbol) {
    char *s = m->sym[0], *v = m->sym[1];
    escape(e.symbol, s, sizeof m->sym[0]);
    escape(e.version, v, sizeof m->sym[1]);
    std::snprintf(sym, sizeof m->symbol, " `%s'%s%s%s", s, e.version ? " [" : "", e.version ? v : "",
                  e.version ? "]" : "");
  }
  if (e.ns >= 0) std::snprintf(ns, sizeof ns, " [%ld]", e.ns);
  if (e.caller_ns >= 0) std::snprintf(cns, sizeof cns, " [%ld]", e.caller_ns);
  if (e.to_ns >= 0) std::snprintf(tns, sizeof tns, " [%ld]", e.to_ns);
  char* facts = m->text;
  constexpr size_t kFacts = kPathBuf + 128;  // as before: the facts are cut there
  static_assert(kFacts <= sizeof m->text);
  size_t o = 0;
  auto add = [&](const char* fmt, auto... args) {
    if (o < kFacts) {
      int n = std::snprintf(facts + o, kFacts - o, fmt, args...);
      if (n > 0) o += static_cast<size_t>(n);
    }
  };
  facts[0] = '\0';
  if (e.symbol) {
    if (e.to) add("in %s%s", to, tns);
    // Found where the shim can't tell (a detail says so: a thread-local
    // variable of a dependency), not "not found".
    else if (!e.detail) add("%s", "not found");
  }
  if (e.detail) add("%s%s", o ? ", " : "", e.detail);
  if (e.old_ino) add("%sino %lu", o ? ", " : "", e.old_ino);
  if (e.opens >= 0) add("%sopens %d", o ? ", " : "", e.opens);
  if (e.already_open >= 0) add("%salready open %d", o ? ", " : "", e.already_open);
  if (e.caller)
    put(m, pid, "file=%s%s;  %s%s by %s%s%s%s", file, ns, e.call, sym, caller, cns, o ? ": " : "", facts);
  else
    put(m, pid, "file=%s%s;  %s%s%s%s", file, ns, e.call, sym, o ? ": " : "", facts);
}

void note(const char* file, const char* key, const char* message) {
  Event e{EventKind::note};
  e.file = file;
  e.note = key;
  e.message = message;
  emit(e);
}

void emit(const Event& e) {
  LineScratch mem;
  LineMem* m = mem.get();
  if (!m) return;  // no memory to format it in: lost
  const pid_t pid = sys::getpid();
  if (g_json) return emit_json(e, pid, m);
  char* file = m->esc[0];
  escape(e.file, file, kPathBuf);
  switch (e.kind) {
    case EventKind::decision:
      put(m, pid, "decision file=%s: %s (%s) [%s]", file, e.act ? "act" : "pass", e.reason, e.entry);
      return;
    case EventKind::would_replace:
      put(m, pid, "would replace file=%s [ino %lu] (mode dry-run); mapped executable by %s", file, e.old_ino, e.who);
      return;
    case EventKind::replaced:
      if (e.kept_bytes > 0) std::snprintf(m->text, sizeof m->text, "; kept %lld byte%s of the old content", e.kept_bytes,
                                      e.kept_bytes == 1 ? "" : "s");
      put(m, pid, "replaced file=%s [ino %lu -> %lu] (mode %s); mapped executable by %s%s%s", file, e.old_ino,
           e.new_ino, e.mode, e.who, e.kept_bytes > 0 ? m->text : "",
           std::strcmp(e.mode, "atomic") == 0 ? "; published when the writer closes it" : "");
      return;
    case EventKind::published:
      put(m, pid, "published file=%s [ino %lu -> %lu] (mode atomic): %s", file, e.old_ino, e.new_ino, e.message);
      return;
    case EventKind::cannot_protect:
      if (e.kept_aside) {
        escape(e.kept_aside, m->esc[1], kPathBuf);
        std::snprintf(m->text, sizeof m->text, " (the old file could not be put back: %s; it is kept as %s in its directory%s)",
                      strerrordesc_np(e.putback_error), m->esc[1],
                      e.incomplete_at_name ? ", and the name holds the incomplete new file" : ", and the name is empty");
      }
      put(m, pid, "cannot protect file=%s: %s: %s%s; %s", file, e.step, strerrordesc_np(e.error),
           e.restored_old ? " (the old file was put back)" : e.kept_aside ? m->text : "",
           e.message ? e.message
                     : (e.truncating_anyway ? "truncating anyway (TRUNCGUARD_ON_FAIL=truncate)" : "failing with ETXTBSY"));
      return;
    case EventKind::note:
      put(m, pid, "note file=%s %s", file, e.message);
      return;
    case EventKind::warning:
      put(m, pid, "warning: %s", e.message);
      return;
    case EventKind::binding:
    case EventKind::lookup_error: {
      // Straight into the line, after the prefix.
      char* buf = m->line;
      const size_t cap = sizeof m->line;
      size_t len = format_prefix(buf, cap, pid);
      len += e.kind == EventKind::binding ? format_binding(buf + len, cap - len - 1, e)
                                          : format_lookup_error(buf + len, cap - len - 1, e);
      buf[len++] = '\n';
      write_line(pid, buf, len, m);
      return;
    }
    case EventKind::dl_call:
      emit_dl_call(e, pid, m);
      return;
  }
}

size_t format_binding(char* buf, size_t len, const Event& e) {
  if (len == 0) return 0;
  // Escaped straight into buf, each name cut where it always was.
  Out o{buf, len};
  o.str("binding file ");
  o.esc(e.file, kPathBuf);
  o.str(" [");
  o.num(e.ns);
  o.str("] to ");
  o.esc(e.to, kPathBuf);
  o.str(" [");
  o.num(e.to_ns);
  o.str("]: ");
  o.str(e.protected_ref ? "protected" : "normal");
  o.str(" symbol `");
  o.esc(e.symbol, 512);
  o.str("'");
  if (e.version) {
    o.str(" [");
    o.esc(e.version, 256);
    o.str("]");
  }
  return o.len;
}

size_t format_lookup_error(char* buf, size_t len, const Event& e) {
  if (len == 0) return 0;
  Out o{buf, len};
  o.esc(e.file, kPathBuf);
  o.str(": error: symbol lookup error: undefined symbol: ");
  o.esc(e.symbol, 512);
  if (e.version) {
    o.str(", version ");
    o.esc(e.version, 256);
  }
  o.str(" (fatal)");
  return o.len;
}

namespace {
// libunwind is loaded only for the backtrace category: linked, it and its
// liblzma would cost every process ~110 KiB and their start-up work.
struct Unwind {
  int (*getcontext)(unw_context_t*);
  int (*init_local)(unw_cursor_t*, unw_context_t*);
  int (*step)(unw_cursor_t*);
  int (*get_reg)(unw_cursor_t*, unw_regnum_t, unw_word_t*);
  int (*get_proc_name)(unw_cursor_t*, char*, size_t, unw_word_t*);
};
Unwind g_unwind;

// A backtrace's working memory, off the stack as a line's: libunwind's
// context and cursor (2 KiB) and the JSON object of up to 32 frames.
struct BacktraceMem {
  unw_context_t ctx;
  unw_cursor_t cursor;
  char json[16384];
  char esc[kPathBuf];     // the Json's escapes
  char object[kPathBuf];  // a frame's object, escaped
  char name[256];
  char sym[300];
  char exe[PATH_MAX];     // the main program's path
};
std::atomic<int> g_unwind_state{0};  // 0 not tried, 1 loading, 2 loaded, 3 unavailable

// libunwind walks the loaded objects (dl_iterate_phdr) in unw_init_local,
// unw_step and unw_get_proc_name: each call holds fork() off, as the shim's
// own walks do (fork_gate.hpp). A fork of another thread in the middle left
// the child's next dlopen or dl_iterate_phdr waiting forever.
template <typename Fn, typename... Args>
int unwind_call(Fn fn, Args... args) {
  const bool took = fork_gate::hold();
  const int r = fn(args...);
  if (took) fork_gate::let_go();
  return r;
}
char g_unwind_error[256];

#define TG_STR2(x) #x
#define TG_STR(x) TG_STR2(x)
template <typename Fn>
bool bind(void* lib, Fn* slot, const char* name) {
  *slot = reinterpret_cast<Fn>(dlsym(lib, name));
  return *slot != nullptr;
}
}  // namespace

bool load_unwinder() {
  int state = g_unwind_state.load(std::memory_order_acquire);
  if (state >= 2) return state == 2;
  int expected = 0;
  if (!g_unwind_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    for (int i = 0; i < 100000 && g_unwind_state.load(std::memory_order_acquire) == 1; ++i) sched_yield();
    return g_unwind_state.load(std::memory_order_acquire) == 2;
  }
  // dlmopen, which the shim does not watch: its own load is not the program's
  // (files category). A soname: the caller's identity does not matter.
  void* lib = dlmopen(LM_ID_BASE, TG_LIBUNWIND, RTLD_NOW | RTLD_LOCAL);
  bool ok = lib && bind(lib, &g_unwind.getcontext, TG_STR(unw_tdep_getcontext)) &&
            bind(lib, &g_unwind.init_local, TG_STR(unw_init_local)) && bind(lib, &g_unwind.step, TG_STR(unw_step)) &&
            bind(lib, &g_unwind.get_reg, TG_STR(unw_get_reg)) &&
            bind(lib, &g_unwind.get_proc_name, TG_STR(unw_get_proc_name));
  if (!ok) {
    const char* why = dlerror();
    // glibc's message names the file it tried, from a directory of
    // LD_LIBRARY_PATH's (any bytes): escaped, as every name in a line.
    escape(why ? why : "a function is missing", g_unwind_error, sizeof g_unwind_error);
  }
  g_unwind_state.store(ok ? 2 : 3, std::memory_order_release);
  return ok;
}

namespace {
// Does process `a` share its memory with process `b` (a vfork child and its
// parent)? True where the kernel can't tell.
bool shares_memory_with(pid_t a, pid_t b) {
  constexpr int kKcmpVm = 1;  // KCMP_VM (linux/kcmp.h)
  const long r = sys::call(SYS_kcmp, a, b, kKcmpVm, 0, 0);
  if (r == -ESRCH) return false;
  return r <= 0;
}
}  // namespace

void backtrace() {
  // libunwind keeps the fds of its memory-validation pipe in static memory,
  // which a vfork child shares with its parent but not its fd table: the
  // child's first backtrace made them there and left their numbers to the
  // parent, whose next backtrace then read (and, failing, closed) whatever
  // the program had opened at those numbers since (a byte of its data file
  // gone; a pending file's directory fd closed).
  // Not the owner is not enough to tell: a child made without fork()'s
  // atfork handlers (glibc's _Fork, a raw clone without CLONE_VM) has its own
  // copy of the memory and of the fd table, as a fork child; its backtrace
  // was refused, with a warning that called it a vfork child. kcmp tells
  // whether the memory is the owner's (an owner gone shares nothing); where
  // it can't tell (no kcmp, not permitted), refused as before.
  const pid_t owner = g_owner_pid.load(std::memory_order_relaxed);
  const pid_t me = sys::getpid();
  if (owner != 0 && owner != me && shares_memory_with(me, owner)) {
    Event e{EventKind::warning};
    e.message = "backtrace not taken in a vfork child (libunwind's state there is its parent's)";
    emit(e);
    return;
  }
  if (!load_unwinder()) {
    static std::atomic<bool> warned{false};
    if (warned.exchange(true)) return;  // once per process
    Event e{EventKind::warning};
    char msg[400];
    std::snprintf(msg, sizeof msg, "backtrace unavailable: cannot load %s (%s)", TG_LIBUNWIND, g_unwind_error);
    e.message = msg;
    emit(e);
    return;
  }
  Scratch<BacktraceMem> mem;
  if (!mem) {
    Event e{EventKind::warning};
    e.message = "backtrace unavailable (no memory to take it in)";
    emit(e);
    return;
  }
  BacktraceMem* b = mem.get();
  if (g_unwind.getcontext(&b->ctx) != 0 || unwind_call(g_unwind.init_local, &b->cursor, &b->ctx) != 0) {
    Event e{EventKind::warning};
    e.message = "backtrace unavailable (libunwind could not start)";
    emit(e);
    return;
  }
  Dl_info self{};
  dladdr(reinterpret_cast<void*>(&backtrace), &self);
  // The main program's frames: glibc's dladdr (elf/dl-addr.c, _dl_addr)
  // names the main program by _dl_argv[0], whatever it was executed as
  // ("cp" from PATH, or any name exec -a gave), where the other frames have
  // their object's path; backtrace_symbols does the same, and libunwind names
  // procedures, not objects. Its path, as /proc/self/exe resolves it (or, no
  // /proc, the name execve was given, AT_EXECFN). Only where the kernel
  // executed the program (AT_BASE, the interpreter's address, is set): run
  // as `ld.so PROGRAM`, /proc/self/exe is ld.so, AT_BASE is 0, and the
  // program keeps dladdr's name (the one ld.so was given).
  Dl_info main_prog{};
  const char* exe = nullptr;
  if (getauxval(AT_BASE) != 0) {
    dladdr(reinterpret_cast<void*>(getauxval(AT_PHDR)), &main_prog);
    if (long n = sys::readlinkat(AT_FDCWD, "/proc/self/exe", b->exe, sizeof b->exe - 1); n > 0) {
      b->exe[n] = '\0';
      exe = b->exe;
    } else {
      exe = reinterpret_cast<const char*>(getauxval(AT_EXECFN));
    }
  }
  const pid_t pid = sys::getpid();
  Json j(b->json, sizeof b->json, b->esc);
  if (g_json) {
    j.num("pid", pid);
    j.str("event", "backtrace");
    j.begin_array("frames");
  } else {
    line("backtrace:");
  }
  int frame = 0;
  while (unwind_call(g_unwind.step, &b->cursor) > 0 && frame < 32) {
    unw_word_t ip = 0, off = 0;
    g_unwind.get_reg(&b->cursor, UNW_REG_IP, &ip);
    Dl_info info{};
    dladdr(reinterpret_cast<void*>(ip), &info);
    if (info.dli_fbase && info.dli_fbase == self.dli_fbase) continue;  // the shim's own frames
    char* name = b->name;
    if (unwind_call(g_unwind.get_proc_name, &b->cursor, name, sizeof b->name, &off) != 0) {
      // No symbol (a stripped program): the offset in the object, for addr2line.
      std::strcpy(name, "??");
      off = info.dli_fbase ? ip - reinterpret_cast<unw_word_t>(info.dli_fbase) : 0;
    }
    const char* object = info.dli_fname && *info.dli_fname ? info.dli_fname : "?";
    if (exe && *exe && info.dli_fbase && info.dli_fbase == main_prog.dli_fbase) object = exe;
    if (g_json) {
      char ipbuf[24];
      std::snprintf(ipbuf, sizeof ipbuf, "0x%lx", static_cast<unsigned long>(ip));
      std::snprintf(b->sym, sizeof b->sym, "%s+0x%lx", name, static_cast<unsigned long>(off));
      j.begin_object();
      j.num("frame", frame);
      j.str("ip", ipbuf);
      j.str("symbol", b->sym);
      j.str("object", object);
      j.end_object();
    } else {
      escape(object, b->object, sizeof b->object);
      escape(name, b->sym, sizeof b->sym);  // an ELF symbol's name is any bytes
      line("  #%d 0x%lx %s+0x%lx (%s)", frame, static_cast<unsigned long>(ip), b->sym,
           static_cast<unsigned long>(off), b->object);
    }
    ++frame;
  }
  if (g_json) {
    j.end_array();
    size_t len = j.finish();
    LineScratch line_mem;  // for the log file's name
    if (len && line_mem.get()) write_line(pid, b->json, len, line_mem.get());
  }
}

}  // namespace tg::log
