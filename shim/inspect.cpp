#include "inspect.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <tuple>

#include "escape.hpp"
#include "procmap_query.hpp"

namespace tg::inspect {
namespace {

using procmap::procmap_query;
using procmap::kCoveringOrNext;
using procmap::kFileBacked;
using procmap::kVmaExecutable;
using procmap::kVmaReadable;
using procmap::kVmaShared;
using procmap::kVmaWritable;
constexpr unsigned long kProcmapQuery = procmap::kQuery;

constexpr std::string_view kDeleted = " (deleted)";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// The next line of `text` from *pos, without its '\n' (the last line may lack
// one); false at the end.
bool next_line(std::string_view text, size_t* pos, std::string_view* line) {
  if (*pos >= text.size()) return false;
  size_t nl = text.find('\n', *pos);
  if (nl == std::string_view::npos) nl = text.size();
  *line = text.substr(*pos, nl - *pos);
  *pos = nl + 1;
  return true;
}

// Reads a whole (small) file; false if it can't be opened. errno is kept.
bool read_text(const std::string& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      errno = e;
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

// /proc/PID (pid 0: /proc/self), and a file in it.
std::string proc_dir(pid_t pid) { return pid == 0 ? std::string("/proc/self") : "/proc/" + std::to_string(pid); }
std::string proc_path(pid_t pid, const char* what) { return proc_dir(pid) + "/" + what; }

// /proc/PID/task/TID of a live thread of PID, "" if none: a process whose main
// thread exited while others run on (a daemon whose main() ends in
// pthread_exit) has no exe, root or ns links in /proc/PID any more; its
// threads' are the process's.
std::string live_thread_dir(pid_t pid) {
  pid_t tid = 0;
  const int fd = open_live_thread_maps(pid, &tid);
  if (fd < 0) return "";
  ::close(fd);
  return proc_dir(pid) + "/task/" + std::to_string(tid);
}

ReadStatus read_maps_text(int fd, std::vector<Mapping>* out) {
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // An exited process reads as empty; an error (EACCES, no memory to
      // read with...) means it was not looked at, which proves nothing.
      return errno == ESRCH ? ReadStatus::gone : ReadStatus::no_access;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  size_t pos = 0;
  for (std::string_view line; next_line(text, &pos, &line);) {
    Mapping m;
    if (parse_mapping(line, &m) && m.line.id.ino != 0 && !m.path.empty()) out->push_back(std::move(m));
  }
  return ReadStatus::ok;
}

// Walks every file-backed VMA with PROCMAP_QUERY. Returns false if the kernel
// lacks it (or a name does not fit): the caller reads the text instead.
bool read_maps_query(int fd, std::vector<Mapping>* out, ReadStatus* status) {
  std::vector<char> name(PATH_MAX + 64);
  uint64_t addr = 0;
  for (;;) {
    procmap_query q{};
    q.size = sizeof q;
    q.query_flags = kFileBacked | kCoveringOrNext;
    q.query_addr = addr;
    q.vma_name_addr = reinterpret_cast<uintptr_t>(name.data());
    q.vma_name_size = static_cast<uint32_t>(name.size());
    if (::ioctl(fd, kProcmapQuery, &q) != 0) {
      switch (errno) {
        case ENOENT: *status = ReadStatus::ok; return true;   // no more VMAs
        case ESRCH: *status = ReadStatus::ok; return true;    // kernel thread, or it exited: no mappings
        case EINTR: continue;
        // ENOTTY (before 6.11), ENAMETOOLONG; EPERM or ENOSYS from a seccomp
        // filter or an LSM (the kernel checks permission at open, not here).
        default: out->clear(); return false;
      }
    }
    if (q.inode != 0) {
      Mapping m;
      m.line.start = q.vma_start;
      m.line.end = q.vma_end;
      m.line.offset = q.vma_offset;
      m.line.readable = q.vma_flags & kVmaReadable;
      m.line.writable = q.vma_flags & kVmaWritable;
      m.line.executable = q.vma_flags & kVmaExecutable;
      m.line.shared = q.vma_flags & kVmaShared;
      m.line.id = FileId{q.dev_major, q.dev_minor, q.inode};
      if (q.vma_name_size > 0) m.path.assign(name.data(), strnlen(name.data(), q.vma_name_size));
      m.deleted = strip_deleted(&m.path);
      if (!m.path.empty()) out->push_back(std::move(m));
    }
    if (q.vma_end <= addr) { *status = ReadStatus::ok; return true; }  // never loop
    addr = q.vma_end;
  }
}

}  // namespace

// ------------------------------------------------------------------ parsing

bool strip_deleted(std::string* path) {
  if (!ends_with(*path, kDeleted)) return false;
  path->resize(path->size() - kDeleted.size());
  return true;
}

std::string unescape_maps_path(std::string_view p) {
  std::string out;
  out.reserve(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\' && p.substr(i, 4) == "\\012") {
      out += '\n';
      i += 3;
    } else {
      out += p[i];
    }
  }
  return out;
}

bool parse_mapping(std::string_view line, Mapping* out) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  Mapping m;
  if (!parse_maps_line(line.data(), line.size(), &m.line)) return false;
  // The path follows the fifth field (start-end perms offset dev inode) and
  // the padding spaces.
  size_t p = 0;
  for (int field = 0; field < 5; ++field) {
    while (p < line.size() && line[p] == ' ') ++p;
    while (p < line.size() && line[p] != ' ') ++p;
  }
  while (p < line.size() && line[p] == ' ') ++p;
  m.path = unescape_maps_path(line.substr(p));
  m.deleted = strip_deleted(&m.path);
  *out = std::move(m);
  return true;
}

bool is_pseudo_path(std::string_view path) {
  if (path.empty() || path[0] != '/') return true;  // [heap], anon_inode:..., [vdso]
  for (std::string_view prefix : {"/memfd:", "/SYSV", "/dev/zero", "/dev/shm/", "/[aio]", "/anon_hugepage",
                                  "/dmabuf:", "/i915", "/drm mm object"})
    if (starts_with(path, prefix)) return true;
  return false;
}

// ------------------------------------------------------------- processes

Unit unit_from_cgroup(std::string_view text) {
  // Prefer the unified hierarchy ("0::PATH"); on a v1 system, the line of the
  // systemd controller ("N:name=systemd:PATH").
  std::string_view v2, v1;
  size_t pos = 0;
  for (std::string_view line; next_line(text, &pos, &line);) {
    size_t c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view hier = line.substr(0, c1), controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string_view path = line.substr(c2 + 1);
    if (hier == "0" && controllers.empty()) v2 = path;
    else if (controllers == "name=systemd") v1 = path;
  }
  std::string_view path = !v1.empty() && v1 != "/" ? v1 : v2;
  Unit u;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view comp = path.substr(start, slash - start);
    start = slash + 1;
    if (comp.empty()) continue;
    bool is_unit = false;
    for (std::string_view suffix : {".service", ".scope", ".socket", ".mount", ".swap"})
      if (comp.size() > suffix.size() && ends_with(comp, suffix)) is_unit = true;
    if (!is_unit) continue;
    // A user's manager (user@UID.service) holds that user's units below it.
    if (starts_with(comp, "user@") && ends_with(comp, ".service") && u.manager.empty()) {
      u.manager = std::string(comp);
      u.name = std::string(comp);  // the manager itself, unless a unit is found below
      continue;
    }
    u.name = std::string(comp);
  }
  if (u.name == u.manager) u.manager.clear();  // the manager process itself is a system unit
  return u;
}

std::optional<uid_t> effective_uid_from_status(std::string_view text) {
  size_t pos = 0;
  for (std::string_view line; next_line(text, &pos, &line);) {
    if (!starts_with(line, "Uid:")) continue;
    // Uid: real effective saved filesystem
    size_t p = 4;
    for (int field = 0; field < 2; ++field) {
      while (p < line.size() && (line[p] == ' ' || line[p] == '\t')) ++p;
      size_t start = p;
      uint64_t v = 0;
      while (p < line.size() && line[p] >= '0' && line[p] <= '9') v = v * 10 + static_cast<uint64_t>(line[p++] - '0');
      if (p == start || v > UINT32_MAX) return std::nullopt;
      if (field == 1) return static_cast<uid_t>(v);
    }
  }
  return std::nullopt;
}

// ------------------------------------------------------------------ who

Match match_target(const Mapping& m, const Target& t) {
  if (t.exists && m.line.id == t.id) return Match::current;
  // A file of that name is replaced on the filesystem it is on: a deleted
  // file of that name elsewhere (in another mount namespace, a tmpfs of its
  // own over the directory) is another file, not an older version of ours.
  const bool same_dev = m.line.id.dev_major == t.id.dev_major && m.line.id.dev_minor == t.id.dev_minor;
  if (m.deleted && m.path == t.path && (!t.exists || same_dev)) return Match::replaced;
  return Match::none;
}

// ------------------------------------------------------------------ stale

bool is_nfs_silly_name(std::string_view path) {
  // ".nfs", the file id (16 hex digits), a counter (8): fs/nfs/unlink.c.
  const std::string_view name = path.substr(path.rfind('/') + 1);
  return name.size() == 28 && starts_with(name, ".nfs") &&
         name.find_first_not_of("0123456789abcdef", 4) == std::string_view::npos;
}

Staleness staleness(const Mapping& m, const PathNow& now) {
  if (m.deleted || is_nfs_silly_name(m.path)) return Staleness::deleted;
  switch (now.kind) {
    case PathNow::unknown: return Staleness::fresh;
    case PathNow::nothing: return Staleness::missing;
    case PathNow::file: break;
  }
  if (now.id.ino != m.line.id.ino) return Staleness::replaced;
  return Staleness::fresh;  // same inode number: same file, even where the devices are spelled differently
}

void add_stale_file(StaleProcess* p, StaleFile f) {
  for (const StaleFile& have : p->files)
    if (have.id == f.id && have.path == f.path) return;
  p->files.push_back(std::move(f));
}

std::vector<UnitGroup> group_by_unit(const std::vector<StaleProcess>& procs) {
  // Key: (outside any unit, user unit, manager, name).
  std::map<std::tuple<bool, bool, std::string, std::string>, UnitGroup> groups;
  for (const StaleProcess& p : procs) {
    const Unit& u = p.proc.unit;
    auto key = std::make_tuple(u.name.empty(), !u.manager.empty(), u.manager, u.name);
    UnitGroup& g = groups[key];
    g.unit = u;
    g.procs.push_back(&p);
  }
  std::vector<UnitGroup> out;
  for (auto& [key, g] : groups) {
    std::sort(g.procs.begin(), g.procs.end(),
              [](const StaleProcess* a, const StaleProcess* b) { return a->proc.pid < b->proc.pid; });
    out.push_back(std::move(g));
  }
  return out;
}

// ----------------------------------------------------------- reading /proc

ReadStatus read_mappings(pid_t pid, bool force_text, std::vector<Mapping>* out) {
  out->clear();
  // Permission is checked at open() (PTRACE_MODE_READ_FSCREDS): EACCES here
  // proves nothing about what the process maps.
  int fd = ::open(proc_path(pid, "maps").c_str(), O_RDONLY | O_CLOEXEC);
  // Only a process that exited is gone. EACCES, EPERM, but also no fd left to
  // look with (EMFILE, ENFILE, ENOMEM): not inspected, never "maps nothing".
  if (fd < 0) return (errno == ENOENT || errno == ESRCH) ? ReadStatus::gone : ReadStatus::no_access;
  auto read_fd = [&] {
    ReadStatus st = ReadStatus::ok;
    if (force_text || !read_maps_query(fd, out, &st)) st = read_maps_text(fd, out);
    ::close(fd);
    return st;
  };
  ReadStatus st = read_fd();
  // No file mapped at all: a kernel thread, or a process whose main thread
  // exited while its other threads run on (their maps are the process's).
  if (st == ReadStatus::ok && out->empty() && pid != 0) {
    fd = open_live_thread_maps(pid);
    if (fd >= 0) st = read_fd();
    else if (fd != -ESRCH && fd != -ENOENT) st = ReadStatus::no_access;
  }
  if (st != ReadStatus::ok) out->clear();
  return st;
}

bool list_pids(std::vector<pid_t>* out) {
  out->clear();
  if (!for_each_process([&](pid_t pid) {
        out->push_back(pid);
        return true;
      }))
    return false;
  std::sort(out->begin(), out->end());
  return true;
}

Process describe_process(pid_t pid) {
  Process p;
  p.pid = pid;
  std::string text;
  if (read_text(proc_path(pid, "comm"), &text)) {
    if (!text.empty() && text.back() == '\n') text.pop_back();
    p.comm = text;
  } else {
    p.comm = "?";
  }
  if (read_text(proc_path(pid, "status"), &text)) {
    if (auto uid = effective_uid_from_status(text)) {
      p.uid = *uid;
      p.uid_known = true;
    }
  }
  if (p.uid_known) {
    passwd pw{}, *res = nullptr;
    std::vector<char> buf(16384);
    if (getpwuid_r(p.uid, &pw, buf.data(), buf.size(), &res) == 0 && res && res->pw_name)
      p.user = res->pw_name;
    else
      p.user = std::to_string(p.uid);
  } else {
    p.user = "?";
  }
  std::vector<char> exe(PATH_MAX + 1);
  ssize_t n = ::readlink(proc_path(pid, "exe").c_str(), exe.data(), exe.size() - 1);
  if (n < 0 && errno == ENOENT && pid != 0) {  // its main thread exited: a live thread's
    const std::string task = live_thread_dir(pid);
    if (!task.empty()) n = ::readlink((task + "/exe").c_str(), exe.data(), exe.size() - 1);
  }
  if (n > 0) p.exe.assign(exe.data(), static_cast<size_t>(n));
  if (read_text(proc_path(pid, "cgroup"), &text)) p.unit = unit_from_cgroup(text);
  return p;
}

namespace {

// Is the process of /proc directory `dir` in our mount namespace? False if
// that can't be told.
bool in_our_mount_namespace(const std::string& dir) {
  struct stat ours, theirs;
  return ::stat("/proc/self/ns/mnt", &ours) == 0 && ::stat((dir + "/ns/mnt").c_str(), &theirs) == 0 &&
         ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino;
}

// Does what is at the path now lead to the inode a maps line names?
bool leads_to(const PathNow& now, const FileId& mapped) { return now.kind == PathNow::file && now.id.ino == mapped.ino; }

PathNow path_now(const std::string& p) {
  PathNow now;
  struct stat st;
  if (::stat(p.c_str(), &st) == 0) {
    now.kind = PathNow::file;
    now.id = maps_id_of_stat(p, st);
  } else if (errno == ENOENT || errno == ENOTDIR) {
    now.kind = PathNow::nothing;
  }
  return now;
}

}  // namespace

PathNow path_now_for_process(pid_t pid, const std::string& path, const FileId& mapped) {
  // The kernel names a mapping from the root of the reader (us) where the
  // file is reachable from it (a chrooted process's library is
  // "/srv/jail/lib/x.so"), else from the root of its mount namespace (a
  // container's files; every other process's, if we are the chrooted one).
  // The name does not say which: the file is the same if either view leads
  // to it; else the likelier view answers: ours for a process of our mount
  // namespace, its root (/proc/PID/root, if open to us) for another's.
  std::string dir = proc_dir(pid);
  struct stat st;
  bool root_open = ::stat((dir + "/root/").c_str(), &st) == 0;
  if (!root_open && errno == ENOENT && pid != 0) {  // its main thread exited: a live thread's root
    const std::string task = live_thread_dir(pid);
    if (!task.empty()) {
      dir = task;
      root_open = ::stat((dir + "/root/").c_str(), &st) == 0;
    }
  }
  const std::string root = dir + "/root";
  const bool ours_first = !root_open || in_our_mount_namespace(dir);
  const PathNow first = path_now(ours_first ? path : root + path);
  if (!root_open || leads_to(first, mapped)) return first;
  const PathNow second = path_now(ours_first ? root + path : path);
  return leads_to(second, mapped) ? second : first;
}

void keep_names_ending_in_deleted(pid_t pid, std::vector<Mapping>* maps) {
  for (Mapping& m : *maps) {
    if (!m.deleted || is_pseudo_path(m.path)) continue;
    const std::string whole = m.path + std::string(kDeleted);
    if (leads_to(path_now_for_process(pid, whole, m.line.id), m.line.id)) {
      m.path = whole;
      m.deleted = false;
    }
  }
}

FileId maps_id_of_stat(const std::string& path, const struct stat& st) {
  FileId id;
  // Only a regular file is opened: opening a FIFO runs its waiting writer,
  // opening a device may act (a watchdog arms, a tape rewinds).
  if (!S_ISREG(st.st_mode) || !maps_id_of_path(AT_FDCWD, path.c_str(), &id)) id = file_id_of(st.st_dev, st.st_ino);
  return id;
}

// ---------------------------------------------------------------- output

std::string escaped(std::string_view raw) {
  std::string in(raw);
  std::vector<char> out(in.size() * 4 + 8);
  size_t n = tg::escape(in.c_str(), out.data(), out.size());
  return std::string(out.data(), n);
}

std::string json_string(std::string_view raw) {
  std::string e = escaped(raw), out = "\"";
  for (char c : e) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

size_t display_width(std::string_view s) {
  size_t w = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++w;
  return w;
}

std::string format_table(const std::vector<std::vector<std::string>>& rows, std::string_view indent) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], display_width(r[i]));
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line(indent);
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line.append(width[i] - display_width(r[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  }
  return out;
}

std::string dev_string(const FileId& id) {
  return std::to_string(id.dev_major) + ":" + std::to_string(id.dev_minor);
}

const char* to_string(Match m) {
  switch (m) {
    case Match::current: return "current";
    case Match::replaced: return "replaced";
    case Match::none: return "none";
  }
  return "?";
}

const char* to_string(Staleness s) {
  switch (s) {
    case Staleness::fresh: return "fresh";
    case Staleness::deleted: return "deleted";
    case Staleness::replaced: return "replaced";
    case Staleness::missing: return "missing";
  }
  return "?";
}

}  // namespace tg::inspect
