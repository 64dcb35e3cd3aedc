#include "maps_reader.hpp"

#include <climits>
#include <cstdio>
#include <cstring>
#include <csignal>
#include <dirent.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "procmap_query.hpp"
#include "sys.hpp"

namespace tg {
namespace {

using procmap::procmap_query;
constexpr uint64_t PROCMAP_QUERY_VMA_EXECUTABLE = procmap::kVmaExecutable;
constexpr uint64_t PROCMAP_QUERY_COVERING_OR_NEXT_VMA = procmap::kCoveringOrNext;
constexpr uint64_t PROCMAP_QUERY_FILE_BACKED_VMA = procmap::kFileBacked;
constexpr unsigned long PROCMAP_QUERY = procmap::kQuery;

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

// Text walk of a maps file from offset 0 (the fd may have been used already),
// calling visit() for each executable file mapping until it returns true.
// The buffers here and below are small on purpose: this runs on the stack
// of a writer's thread, which may be a coroutine's or a 16 KiB one. A smaller
// read costs a few more system calls, never a different answer (the reader
// takes the text in chunks of any size).
MapsAnswer text_walk(int fd, ExecVisitor visit, void* ctx, Mappings kind = Mappings::executable) {
  MapsTextReader reader(visit, ctx, kind);
  char buf[2048];
  off_t off = 0;
  for (;;) {
    long n = sys::pread(fd, buf, sizeof buf, off);
    if (n == -EINTR) continue;
    if (n == -ESRCH) return MapsAnswer::gone;
    // EACCES, EPERM, or no memory to read with: this process was not looked
    // at, which proves nothing about it (an exited one reads as empty).
    if (n < 0) return MapsAnswer::no_access;
    if (n == 0) break;
    reader.feed(buf, static_cast<size_t>(n));
    if (reader.stopped()) return MapsAnswer::mapped;
    off += n;
  }
  // Empty: no memory (a kernel thread, or a process whose main thread exited),
  // as PROCMAP_QUERY's ESRCH says.
  if (off == 0) return MapsAnswer::gone;
  reader.finish();
  return reader.stopped() ? MapsAnswer::mapped : MapsAnswer::not_mapped;
}

bool same_file(const FileId& seen, void* ctx) { return seen == *static_cast<const FileId*>(ctx); }

// Calls take(line, len) for each line of the text at `fd` (read from its
// start; a line longer than 512 bytes is cut there) until take returns true.
// True if one did: the /proc files read line by line outside the maps walk.
template <typename Take>
bool find_line(int fd, Take take) {
  char buf[1024], line[512];
  size_t len = 0;
  off_t off = 0;
  for (;;) {
    long n = sys::pread(fd, buf, sizeof buf, off);
    if (n <= 0) return false;
    off += n;
    for (long i = 0; i < n; ++i) {
      if (buf[i] != '\n') {
        if (len < sizeof line) line[len++] = buf[i];
        continue;
      }
      if (take(line, len)) return true;
      len = 0;
    }
  }
}

// statfs f_type values (linux/magic.h) the lease proof and the maps' id ask about.
constexpr long kOverlayfs = OVERLAYFS_SUPER_MAGIC, kFuse = FUSE_SUPER_MAGIC, kEcryptfs = ECRYPTFS_SUPER_MAGIC,
               kBtrfs = BTRFS_SUPER_MAGIC, kProc = PROC_SUPER_MAGIC,
               kBcachefs = 0xca451a4e;  // not in Debian 12's linux/magic.h

}  // namespace

// major() and minor() as glibc defines them, here: it inlines them only when
// not optimising for size, and the core is (-Os): they were calls to libc,
// two more symbols for ld.so to bind in every process at start-up.
FileId file_id_of(dev_t dev, ino_t ino) {
  const auto dev_major = static_cast<unsigned>(((dev & 0x00000000000fff00u) >> 8) | ((dev & 0xfffff00000000000u) >> 32));
  const auto dev_minor = static_cast<unsigned>((dev & 0x00000000000000ffu) | ((dev & 0x00000ffffff00000u) >> 12));
  return FileId{dev_major, dev_minor, static_cast<uint64_t>(ino)};
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

void MapsTextReader::take_line(const char* line, size_t len) {
  MapsLine m;
  if (!parse_maps_line(line, len, &m) || m.id.ino == 0) return;
  const bool wanted = kind_ == Mappings::executable ? m.executable : (m.shared && m.writable);
  if (wanted && visit_(m.id, ctx_)) stopped_ = true;
}

void MapsTextReader::feed(const char* data, size_t len) {
  const char* p = data;
  const char* end = data + len;
  while (p < end && !stopped_) {
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

void MapsTextReader::finish() {
  if (partial_len_ > 0 && !stopped_) take_line(partial_, partial_len_);
  partial_len_ = 0;
  overflow_ = false;
}

MapsAnswer for_each_file_mapping(int fd, ExecVisitor visit, void* ctx, Mappings kind) {
  const uint64_t wanted = kind == Mappings::executable ? PROCMAP_QUERY_VMA_EXECUTABLE
                                                       : procmap::kVmaShared | procmap::kVmaWritable;
  procmap_query q{};
  uint64_t addr = 0;
  for (;;) {
    std::memset(&q, 0, sizeof q);
    q.size = sizeof q;
    q.query_flags = wanted | PROCMAP_QUERY_FILE_BACKED_VMA | PROCMAP_QUERY_COVERING_OR_NEXT_VMA;
    q.query_addr = addr;
    int r = sys::ioctl(fd, PROCMAP_QUERY, &q);
    if (r == -ENOENT) return MapsAnswer::not_mapped;  // no more executable file mappings
    if (r == -ENOTTY || r == -EINVAL) return text_walk(fd, visit, ctx, kind);  // kernel without it
    if (r == -ESRCH) return MapsAnswer::gone;  // kernel thread or exited
    // Anything else (EPERM or ENOSYS from a seccomp filter or an LSM: the
    // kernel checks permission at open, not here): the text answers, and says
    // itself if the process may not be read.
    if (r < 0) return text_walk(fd, visit, ctx, kind);
    if (visit(FileId{q.dev_major, q.dev_minor, q.inode}, ctx)) return MapsAnswer::mapped;
    if (q.vma_end <= addr) return MapsAnswer::not_mapped;  // never loop
    addr = q.vma_end;
  }
}

MapsAnswer maps_fd_maps_exec(int fd, FileId id) { return for_each_file_mapping(fd, &same_file, &id); }
MapsAnswer maps_fd_text_exec(int fd, FileId id) { return text_walk(fd, &same_file, &id); }

bool self_maps_shared_writable(FileId id) {
  const int fd = open_maps(0);
  if (fd < 0) return false;
  const MapsAnswer a = for_each_file_mapping(fd, &same_file, &id, Mappings::shared_writable);
  sys::close(fd);
  return a == MapsAnswer::mapped;
}

namespace {

// Hand-rolled path building: no stdio in paths that may run in a vfork child.
char* put(char* o, const char* s) {
  while (*s) *o++ = *s++;
  return o;
}
char* put_number(char* o, unsigned v) {
  char digits[16];
  int n = 0;
  do digits[n++] = static_cast<char>('0' + v % 10); while (v /= 10);
  while (n) *o++ = digits[--n];
  return o;
}

}  // namespace

// Our own maps: the calling thread's, which is alive (the main thread's,
// /proc/self's, read empty once it has exited while others run on).
constexpr const char* kOwnMaps = "/proc/thread-self/maps";

int open_maps(pid_t pid) {
  char path[32];
  if (pid == 0) std::strcpy(path, kOwnMaps);
  else *put(put_number(put(path, "/proc/"), static_cast<unsigned>(pid)), "/maps") = '\0';
  return sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
}

int open_live_thread_maps(pid_t pid, pid_t* tid_out) {
  char path[64];
  char* task = put(put_number(put(path, "/proc/"), static_cast<unsigned>(pid)), "/task/");
  *task = '\0';
  // The task directory's link count is 2 plus the threads the kernel still
  // counts (an exited main thread among them until the process is reaped):
  // 3 is a kernel thread or a process with one thread, nothing to look for.
  // One stat instead of an open, two getdents and a close for each of the
  // kernel threads every scan meets (60 of 80 /proc entries here).
  struct stat st;
  if (sys::fstatat(AT_FDCWD, path, &st, 0) == 0 && st.st_nlink <= 3) return -ESRCH;
  sys::Fd dir(sys::openat(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.ok()) return dir.get();
  alignas(8) char buf[512];
  for (;;) {
    long n = sys::getdents64(dir.get(), buf, sizeof buf);
    if (n < 0) return static_cast<int>(n);
    if (n == 0) return -ESRCH;  // no other thread (a kernel thread, or it exited)
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      unsigned tid = 0;
      const char* c = d->d_name;
      for (; *c >= '0' && *c <= '9' && tid < INT_MAX / 10; ++c) tid = tid * 10 + static_cast<unsigned>(*c - '0');
      if (*c != '\0' || tid == 0 || tid == static_cast<unsigned>(pid)) continue;
      *put(put_number(task, tid), "/maps") = '\0';
      int fd = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
      if (fd == -ENOENT || fd == -ESRCH) continue;  // that thread exited meanwhile: the next one
      // The open took the thread's memory, if it has any: an exiting thread
      // (listed until reaped) has none, and its maps read empty. The next one.
      char first;
      if (fd < 0 || sys::pread(fd, &first, 1, 0) != 0) {
        if (tid_out) *tid_out = static_cast<pid_t>(tid);
        return fd;
      }
      sys::close(fd);
    }
  }
}

namespace {

// The walk of a maps file open_maps or open_live_thread_maps gave (-errno: none).
MapsAnswer walk_opened(int fd, ExecVisitor visit, void* ctx) {
  if (fd == -ENOENT || fd == -ESRCH) return MapsAnswer::gone;  // exited
  // EACCES or EPERM, but also no fd or memory to look with (EMFILE, ENFILE,
  // ENOMEM: a writer at its fd limit): not inspected, never "not mapped".
  if (fd < 0) return MapsAnswer::no_access;
  const MapsAnswer a = for_each_file_mapping(fd, visit, ctx);
  sys::close(fd);
  return a;
}

MapsAnswer process_walk(pid_t pid, ExecVisitor visit, void* ctx) {
  const int fd = open_maps(pid);
  if (fd == -ENOENT || fd == -ESRCH) return MapsAnswer::gone;  // exited: no thread to look for
  const MapsAnswer a = walk_opened(fd, visit, ctx);
  if (a != MapsAnswer::gone) return a;
  // No memory: a kernel thread, an exited process, or one whose main thread
  // exited while others run on (their maps are the process's).
  return walk_opened(open_live_thread_maps(pid), visit, ctx);
}

}  // namespace

bool for_each_process(bool (*per_process)(pid_t pid, void* ctx), void* ctx) {
  sys::Fd proc(sys::openat(AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!proc.ok()) return false;
  // A chroot's or container's /proc that is no proc filesystem (the empty
  // directory of a chroot without /proc mounted, a tmpfs over it) lists no
  // process, which is not "nobody maps it" (measured: "pass (no process maps
  // it executable)", and the victim outside the chroot died of SIGSEGV).
  if (sys::fs_type(proc.get()) != kProc) return false;
  alignas(8) char buf[1024];  // ~40 entries a call (the largest is 280 bytes)
  for (;;) {
    long n = sys::getdents64(proc.get(), buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) return false;  // a partial walk: the rest of /proc was not read
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      const char* name = d->d_name;
      if (name[0] < '1' || name[0] > '9') continue;
      pid_t pid = 0;
      bool numeric = true;
      for (const char* c = name; *c; ++c) {
        if (*c < '0' || *c > '9' || pid > INT_MAX / 10) { numeric = false; break; }
        pid = pid * 10 + (*c - '0');
      }
      if (numeric && !per_process(pid, ctx)) return true;
    }
  }
  return true;
}

namespace {

// One line of /proc/self/mountinfo: is it the proc mount at /proc, and do its
// options hide processes? ("ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - TYPE SOURCE SUPEROPTS")
int proc_mount_hides(const char* line, size_t len) {
  const char* end = line + len;
  const char* p = line;
  for (int field = 0; field < 4; ++field) {  // to the mount point
    while (p < end && *p != ' ') ++p;
    if (p < end) ++p;
  }
  const char* mp = p;
  while (p < end && *p != ' ') ++p;
  if (p - mp != 5 || std::memcmp(mp, "/proc", 5) != 0) return -1;
  const char* sep = nullptr;
  for (const char* q = p; q + 3 <= end; ++q)
    if (q[0] == ' ' && q[1] == '-' && q[2] == ' ') { sep = q + 3; break; }
  if (!sep || end - sep < 5 || std::memcmp(sep, "proc ", 5) != 0) return -1;
  // hidepid=invisible (2) and hidepid=ptraceable (4) leave out of /proc the
  // processes we may not ptrace; noaccess (1) lists them (open says EACCES).
  for (const char* q = sep; q + 8 <= end; ++q) {
    if (std::memcmp(q, "hidepid=", 8) != 0) continue;
    const char* v = q + 8;
    const size_t rest = static_cast<size_t>(end - v);
    return (rest >= 1 && (*v == '2' || *v == '4')) || (rest >= 9 && std::memcmp(v, "invisible", 9) == 0) ||
           (rest >= 10 && std::memcmp(v, "ptraceable", 10) == 0);
  }
  return 0;
}

}  // namespace

bool proc_hides_processes() {
  // The calling thread's: /proc/self/mountinfo can't be read (EINVAL) once
  // the main thread has exited while others run on.
  sys::Fd fd(sys::openat(AT_FDCWD, "/proc/thread-self/mountinfo", O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return false;
  int hides = 0;  // the last proc mount at /proc is the one on top
  find_line(fd.get(), [&](const char* line, size_t len) {
    const int h = proc_mount_hides(line, len);
    if (h >= 0) hides = h;
    return false;  // every line
  });
  return hides == 1;
}

bool proc_leaves_out_other_pid_namespaces() {
  // Our own namespace is the one /proc shows when /proc/self resolves in it.
  const int r = sys::in_initial_namespace("/proc/self/ns/pid", sys::kInitPidNamespace);
  if (r >= 0) return r == 0;
  // No ns/pid: a kernel without namespaces, whose /proc lists every process
  // (if it lists this one). Any other failure: we can't tell, so assume it
  // does leave some out (the answer that never calls a scan complete).
  struct stat st;
  return !(r == -ENOENT && sys::fstatat(AT_FDCWD, "/proc/self", &st, 0) == 0);
}

MapsAnswer process_maps_exec(pid_t pid, FileId id) { return process_walk(pid, &same_file, &id); }

ScanResult scan_processes(FileId id, bool stop_at_first) {
  ScanResult r;
  bool ok = for_each_process([&](pid_t pid) {
    switch (process_maps_exec(pid, id)) {
      case MapsAnswer::mapped:
        if (r.mapped < ScanResult::kMaxPids) r.pids[r.mapped] = pid;
        ++r.mapped;
        ++r.inspected;
        return !stop_at_first;
      case MapsAnswer::not_mapped: ++r.inspected; break;
      case MapsAnswer::no_access: ++r.uninspected; break;
      case MapsAnswer::gone: break;
    }
    return true;
  });
  r.proc_missing = !ok;
  if (ok && proc_hides_processes()) ++r.uninspected;  // those we were not shown
  r.outside_pid_ns = ok && proc_leaves_out_other_pid_namespaces();
  return r;
}

namespace {

struct Collect {
  Snapshot* snap;
  pid_t pid;
};

bool collect_one(const FileId& id, void* ctx) {
  auto* c = static_cast<Collect*>(ctx);
  Snapshot& s = *c->snap;
  // Consecutive executable mappings of one file in one process: keep one.
  if (s.count > 0 && s.entries[s.count - 1].pid == c->pid && s.entries[s.count - 1].id == id) return false;
  if (s.count == Snapshot::kCapacity) {
    s.overflow = true;
    return true;  // stop: the snapshot is unusable anyway
  }
  s.entries[s.count++] = ExecMapping{id, c->pid};
  return false;
}

}  // namespace

bool take_snapshot(Snapshot* s) {
  if (!s->entries) {
    // Only once, only when a deploy needs it: not part of an idle process's RSS.
    void* mem = mmap(nullptr, sizeof(ExecMapping) * Snapshot::kCapacity, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return false;
    s->entries = static_cast<ExecMapping*>(mem);
  }
  s->count = 0;
  s->inspected = s->uninspected = 0;
  s->overflow = false;
  bool ok = for_each_process([&](pid_t pid) {
    Collect c{s, pid};
    switch (process_walk(pid, &collect_one, &c)) {
      case MapsAnswer::not_mapped: ++s->inspected; break;
      case MapsAnswer::no_access: ++s->uninspected; break;
      case MapsAnswer::mapped: return false;  // overflow
      case MapsAnswer::gone: break;
    }
    return true;
  });
  s->proc_missing = !ok;
  if (ok && proc_hides_processes()) ++s->uninspected;  // those we were not shown
  s->outside_pid_ns = ok && proc_leaves_out_other_pid_namespaces();
  return !s->overflow;
}

ScanResult lookup(const Snapshot& s, FileId id) {
  ScanResult r;
  pid_t last = 0;
  for (size_t i = 0; i < s.count; ++i) {
    const ExecMapping& m = s.entries[i];
    if (!(m.id == id) || m.pid == last) continue;
    if (r.mapped < ScanResult::kMaxPids) r.pids[r.mapped] = m.pid;
    ++r.mapped;
    last = m.pid;
  }
  r.inspected = s.inspected;
  r.uninspected = s.uninspected;
  r.proc_missing = s.proc_missing;
  r.outside_pid_ns = s.outside_pid_ns;
  return r;
}

namespace {

// Stacking filesystems: a mapping of one of their files holds the file
// underneath (overlayfs maps the upper or lower file; FUSE passthrough and
// ecryptfs the backing one), so no open file is left on the inode the
// writer sees, and the kernel grants a write lease on a file that a running
// program maps. Measured on overlayfs: the lease was granted, the victim died.
// Nor does it see other machines' mappings of a shared filesystem's file: one
// that does not ask its server grants the local kernel's lease whatever other
// machines have open (Ceph and 9p did until they were made to refuse it, 2021).
bool lease_sees_mappings(long fs_type) {
  return fs_type != 0 && fs_type != kOverlayfs && fs_type != kFuse && fs_type != kEcryptfs &&
         !shared_with_other_machines(fs_type);
}

}  // namespace

bool shared_with_other_machines(long fs_type) {
  switch (static_cast<unsigned long>(fs_type) & 0xffffffffUL) {
    case NFS_SUPER_MAGIC:
    case SMB_SUPER_MAGIC:
    case CIFS_SUPER_MAGIC:
    case SMB2_SUPER_MAGIC:
    case CEPH_SUPER_MAGIC:
    case AFS_SUPER_MAGIC:
    case AFS_FS_MAGIC:
    case V9FS_MAGIC:
    case CODA_SUPER_MAGIC:
    case OCFS2_SUPER_MAGIC:
    case 0x01161970:  // GFS2 (not in Debian 12's linux/magic.h)
    case 0x0bd00bd0:  // Lustre
    case 0x47504653:  // IBM Storage Scale (GPFS)
    case 0x20030528:  // OrangeFS
    case 0x19830326:  // BeeGFS (FhGFS)
    case 0x013111a8:  // IBRIX
    case 0xaad7aaea:  // Panasas PanFS
    case 0x61636673:  // Oracle ACFS
    case 0xbeefdead:  // StorNext (SNFS)
    case 0xa501fcf5:  // VxFS: cluster mode (CFS) looks the same
    case 0x786f4256:  // VirtualBox shared folders: the host runs them too
    case 0xbacbacbc:  // VMware shared folders
    case 0x7c7c6673:  // Parallels shared folders
      return true;
    default: return false;
  }
}

bool proves_unshared(int fd) { return proves_unshared(fd, sys::fs_type(fd)); }

bool proves_unshared(int fd, long fs_type) {
  if (!lease_sees_mappings(fs_type)) return false;  // the /proc scan decides
  // The lease lives for microseconds. Should another process open the file in
  // that window, the kernel signals the lease holder (us): SIGURG, ignored by
  // default, instead of SIGIO, whose default action would kill the host.
  if (sys::call(SYS_fcntl, fd, F_SETSIG, SIGURG) < 0) return false;
  if (sys::call(SYS_fcntl, fd, F_SETLEASE, F_WRLCK) < 0) return false;
  // Ended here, not left to the close of fd: a child that another thread
  // forked (or vforked, posix_spawn) meanwhile holds fd's open file too, and
  // the lease lived on with it: every open of the file (the writer's next)
  // waited for that child to exit or exec, up to lease-break-time (45 s).
  sys::call(SYS_fcntl, fd, F_SETLEASE, F_UNLCK);
  return true;
}

bool self_file_at(unsigned long addr, FileId* out) {
  sys::Fd fd(sys::openat(AT_FDCWD, kOwnMaps, O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return false;
  procmap_query q{};
  q.size = sizeof q;
  q.query_flags = PROCMAP_QUERY_FILE_BACKED_VMA;  // the VMA covering addr, file-backed
  q.query_addr = addr;
  int r = sys::ioctl(fd.get(), PROCMAP_QUERY, &q);
  if (r == 0) {
    *out = FileId{q.dev_major, q.dev_minor, q.inode};
    return true;
  }
  if (r == -ENOENT || r == -ESRCH) return false;  // nothing file-backed there
  // Older kernels (ENOTTY, EINVAL), or the ioctl denied (a seccomp filter's
  // EPERM or ENOSYS): the text, line by line.
  return find_line(fd.get(), [&](const char* line, size_t len) {
    MapsLine m;
    if (!parse_maps_line(line, len, &m) || m.start > addr || addr >= m.end || !m.id.ino) return false;
    *out = m.id;
    return true;
  });
}

FileId maps_id_of(int fd, const struct stat& st) { return maps_id_of(fd, st, sys::fs_type(fd)); }

FileId maps_id_of(int fd, const struct stat& st, long type) {
  const FileId from_stat = file_id_of(st.st_dev, st.st_ino);
  // Only filesystems with subvolumes give stat() a device of its own (the
  // mapping below costs about 8 us: one fstatfs spares it everywhere else).
  // So does overlayfs whose layers are not all on one filesystem (a
  // squashfs or erofs image under a tmpfs: live systems, containers): a
  // file's st_dev is a device it makes for the layer the file came from
  // (measured: 0:43 and ino 1 from stat(), 00:41 and ino 1 in the maps).
  if (type != kBtrfs && type != kBcachefs && type != kOverlayfs) return from_stat;
  const long page = sys::call(SYS_mmap, nullptr, 4096UL, PROT_READ, MAP_PRIVATE, fd, 0L);
  if (page < 0 && page > -4096) return from_stat;  // not mappable (nor, then, mapped)
  FileId seen;
  const bool found = self_file_at(static_cast<unsigned long>(page), &seen);
  sys::call(SYS_munmap, page, 4096UL);
  return found && seen.ino == from_stat.ino ? seen : from_stat;
}

bool maps_id_of_path(int dirfd, const char* path, FileId* out) {
  sys::Fd fd(sys::openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  struct stat st;
  if (fd.ok() && sys::fstat(fd.get(), &st) == 0) {
    *out = S_ISREG(st.st_mode) ? maps_id_of(fd.get(), st) : file_id_of(st.st_dev, st.st_ino);
    return true;
  }
  if (sys::fstatat(dirfd, path, &st, 0) < 0) return false;  // unreadable: stat's answer
  *out = file_id_of(st.st_dev, st.st_ino);
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
