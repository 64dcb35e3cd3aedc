#include "maps_reader.hpp"

#include <cstdio>
#include <cstring>
#include <csignal>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>

#include "sys.hpp"

namespace tg {
namespace {

// Debian 12's headers predate PROCMAP_QUERY (Linux 6.11): declare it here,
// as include/uapi/linux/fs.h defines it.
struct procmap_query {
  uint64_t size;
  uint64_t query_flags;
  uint64_t query_addr;
  uint64_t vma_start;
  uint64_t vma_end;
  uint64_t vma_flags;
  uint64_t vma_page_size;
  uint64_t vma_offset;
  uint64_t inode;
  uint32_t dev_major;
  uint32_t dev_minor;
  uint32_t vma_name_size;
  uint32_t build_id_size;
  uint64_t vma_name_addr;
  uint64_t build_id_addr;
};
constexpr uint64_t PROCMAP_QUERY_VMA_EXECUTABLE = 0x04;
constexpr uint64_t PROCMAP_QUERY_COVERING_OR_NEXT_VMA = 0x10;
constexpr uint64_t PROCMAP_QUERY_FILE_BACKED_VMA = 0x20;
constexpr unsigned long PROCMAP_QUERY = _IOWR('f', 17, struct procmap_query);

bool parse_hex(const char*& p, const char* end, uint64_t* out) {
  uint64_t v = 0;
  const char* start = p;
  while (p < end) {
    char c = *p;
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
    else break;
    v = v * 16 + d;
    ++p;
  }
  *out = v;
  return p != start;
}

bool parse_dec(const char*& p, const char* end, uint64_t* out) {
  uint64_t v = 0;
  const char* start = p;
  while (p < end && *p >= '0' && *p <= '9') v = v * 10 + static_cast<uint64_t>(*p++ - '0');
  *out = v;
  return p != start;
}

bool expect(const char*& p, const char* end, char c) {
  if (p < end && *p == c) { ++p; return true; }
  return false;
}

void skip_spaces(const char*& p, const char* end) {
  while (p < end && *p == ' ') ++p;
}

// Text walk of a maps file from offset 0 (the fd may have been used already).
MapsAnswer text_maps_exec(int fd, FileId id) {
  MapsTextMatcher m(id);
  char buf[4096];
  off_t off = 0;
  for (;;) {
    long n = sys::pread(fd, buf, sizeof buf, off);
    if (n == -EINTR) continue;
    if (n == -ESRCH) return MapsAnswer::gone;
    if (n == -EACCES || n == -EPERM) return MapsAnswer::no_access;
    if (n < 0) return MapsAnswer::gone;
    if (n == 0) break;
    m.feed(buf, static_cast<size_t>(n));
    if (m.found()) return MapsAnswer::mapped;
    off += n;
  }
  m.finish();
  return m.found() ? MapsAnswer::mapped : MapsAnswer::not_mapped;
}

}  // namespace

FileId file_id_of(dev_t dev, ino_t ino) {
  return FileId{major(dev), minor(dev), static_cast<uint64_t>(ino)};
}

bool parse_maps_line(const char* line, size_t len, MapsLine* out) {
  const char* p = line;
  const char* end = line + len;
  MapsLine m;
  uint64_t maj = 0, min = 0;
  if (!parse_hex(p, end, &m.start) || !expect(p, end, '-') || !parse_hex(p, end, &m.end)) return false;
  skip_spaces(p, end);
  if (end - p < 4) return false;
  m.readable = p[0] == 'r';
  m.writable = p[1] == 'w';
  m.executable = p[2] == 'x';
  m.shared = p[3] == 's';
  p += 4;
  skip_spaces(p, end);
  if (!parse_hex(p, end, &m.offset)) return false;
  skip_spaces(p, end);
  if (!parse_hex(p, end, &maj) || !expect(p, end, ':') || !parse_hex(p, end, &min)) return false;
  skip_spaces(p, end);
  if (!parse_dec(p, end, &m.id.ino)) return false;
  if (p < end && *p != ' ' && *p != '\n') return false;
  m.id.dev_major = static_cast<unsigned>(maj);
  m.id.dev_minor = static_cast<unsigned>(min);
  *out = m;
  return true;
}

void MapsTextMatcher::take_line(const char* line, size_t len) {
  MapsLine m;
  if (parse_maps_line(line, len, &m) && m.executable && m.id.ino != 0 && m.id == target_) found_ = true;
}

void MapsTextMatcher::feed(const char* data, size_t len) {
  const char* p = data;
  const char* end = data + len;
  while (p < end && !found_) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* stop = nl ? nl : end;
    size_t chunk = static_cast<size_t>(stop - p);
    if (!overflow_) {
      // Only the fields up to the inode matter; a long path may be cut off.
      size_t room = sizeof partial_ - partial_len_;
      size_t take = chunk < room ? chunk : room;
      std::memcpy(partial_ + partial_len_, p, take);
      partial_len_ += take;
      if (take < chunk) overflow_ = true;
    }
    if (nl) {
      take_line(partial_, partial_len_);
      partial_len_ = 0;
      overflow_ = false;
      p = nl + 1;
    } else {
      p = end;
    }
  }
}

void MapsTextMatcher::finish() {
  if (partial_len_ > 0) take_line(partial_, partial_len_);
  partial_len_ = 0;
  overflow_ = false;
}

MapsAnswer maps_fd_maps_exec(int fd, FileId id) {
  procmap_query q{};
  uint64_t addr = 0;
  for (;;) {
    std::memset(&q, 0, sizeof q);
    q.size = sizeof q;
    q.query_flags = PROCMAP_QUERY_VMA_EXECUTABLE | PROCMAP_QUERY_FILE_BACKED_VMA | PROCMAP_QUERY_COVERING_OR_NEXT_VMA;
    q.query_addr = addr;
    int r = sys::ioctl(fd, PROCMAP_QUERY, &q);
    if (r == -ENOENT) return MapsAnswer::not_mapped;  // no more executable file mappings
    if (r == -ENOTTY || r == -EINVAL) return text_maps_exec(fd, id);  // kernel without it
    if (r == -ESRCH) return MapsAnswer::gone;  // kernel thread or exited
    if (r == -EACCES || r == -EPERM) return MapsAnswer::no_access;
    if (r < 0) return text_maps_exec(fd, id);
    if (q.inode == id.ino && q.dev_major == id.dev_major && q.dev_minor == id.dev_minor) return MapsAnswer::mapped;
    if (q.vma_end <= addr) return MapsAnswer::not_mapped;  // never loop
    addr = q.vma_end;
  }
}

MapsAnswer process_maps_exec(pid_t pid, FileId id) {
  char path[32];
  if (pid == 0) std::strcpy(path, "/proc/self/maps");
  else {
    // Hand-rolled: no stdio in paths that may run in a vfork child.
    char digits[16];
    int n = 0;
    for (unsigned v = static_cast<unsigned>(pid); v; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
    char* o = path;
    for (const char* s = "/proc/"; *s;) *o++ = *s++;
    while (n) *o++ = digits[--n];
    for (const char* s = "/maps"; *s;) *o++ = *s++;
    *o = '\0';
  }
  int fd = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd == -EACCES || fd == -EPERM) return MapsAnswer::no_access;
  if (fd < 0) return MapsAnswer::gone;
  MapsAnswer a = maps_fd_maps_exec(fd, id);
  sys::close(fd);
  return a;
}

ScanResult scan_processes(FileId id, bool stop_at_first) {
  ScanResult r;
  sys::Fd proc(sys::openat(AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!proc.ok()) {
    r.proc_missing = true;
    return r;
  }
  alignas(8) char buf[8192];
  for (;;) {
    long n = sys::getdents64(proc.get(), buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      const char* name = d->d_name;
      if (name[0] < '1' || name[0] > '9') continue;
      pid_t pid = 0;
      bool numeric = true;
      for (const char* c = name; *c; ++c) {
        if (*c < '0' || *c > '9') { numeric = false; break; }
        pid = pid * 10 + (*c - '0');
      }
      if (!numeric) continue;
      switch (process_maps_exec(pid, id)) {
        case MapsAnswer::mapped:
          if (r.mapped < ScanResult::kMaxPids) r.pids[r.mapped] = pid;
          ++r.mapped;
          ++r.inspected;
          if (stop_at_first) return r;
          break;
        case MapsAnswer::not_mapped: ++r.inspected; break;
        case MapsAnswer::no_access: ++r.uninspected; break;
        case MapsAnswer::gone: break;
      }
    }
  }
  return r;
}

bool proves_unshared(int fd) {
  // The lease lives for microseconds. Should another process open the file in
  // that window, the kernel signals the lease holder (us): SIGURG, ignored by
  // default, instead of SIGIO, whose default action would kill the host.
  if (sys::call(SYS_fcntl, fd, F_SETSIG, SIGURG) < 0) return false;
  if (sys::call(SYS_fcntl, fd, F_SETLEASE, F_WRLCK) < 0) return false;
  sys::call(SYS_fcntl, fd, F_SETLEASE, F_UNLCK);
  return true;
}

void process_name(pid_t pid, char* buf, size_t len) {
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%d/comm", static_cast<int>(pid));
  sys::Fd fd(sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC));
  long n = fd.ok() ? sys::read(fd.get(), buf, len - 1) : -1;
  if (n <= 0) {
    std::strncpy(buf, "?", len);
    return;
  }
  if (buf[n - 1] == '\n') --n;
  buf[n] = '\0';
}

}  // namespace tg
