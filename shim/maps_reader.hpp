// Who maps a file executable: /proc/PID/maps, matched by device and inode
// (as fuser, lsof and needrestart do).
//
// Linux 6.11+ answers binary PROCMAP_QUERY ioctls on an open maps file; older
// kernels answer ENOTTY and we parse the text. Permission to read another
// process's maps is checked at open(): EACCES/EPERM means "could not inspect",
// which proves nothing about that process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <sys/stat.h>
#include <sys/types.h>

namespace tg {

struct FileId {
  unsigned dev_major = 0;
  unsigned dev_minor = 0;
  uint64_t ino = 0;
  bool operator==(const FileId&) const = default;
};
FileId file_id_of(dev_t dev, ino_t ino);

// How /proc/PID/maps names a mapping of the file open at `fd` (stat'ed as
// `st`, a regular file). Usually stat()'s device and inode, but not on btrfs:
// stat() gives the subvolume's device, the maps the filesystem's (measured:
// 0:40 and 0:41 for two subvolumes' files, 0:39 for both in the maps), so a
// scan by stat()'s id finds nobody. The kernel is asked instead (on btrfs
// and bcachefs, the filesystems with subvolumes): one page of the file is
// mapped here for a moment and looked up in our own maps.
FileId maps_id_of(int fd, const struct stat& st);
FileId maps_id_of(int fd, const struct stat& st, long fs_type);  // fs_type: sys::fs_type(fd)
// The same for a name (opened read-only; stat()'s id if it can't be read).
// False if it does not exist.
bool maps_id_of_path(int dirfd, const char* path, FileId* out);

// One line of /proc/PID/maps, parsed.
struct MapsLine {
  uint64_t start = 0, end = 0, offset = 0;
  bool readable = false, writable = false, executable = false, shared = false;
  FileId id;
};

// Parses "start-end perms offset major:minor inode [path]". False if malformed.
bool parse_maps_line(const char* line, size_t len, MapsLine* out);

// Called for each executable file mapping; returns true to stop the walk.
using ExecVisitor = bool (*)(const FileId& id, void* ctx);

// Which file mappings a walk visits: the executable ones (who runs a file),
// or the shared writable ones (a writer writing a file through memory).
enum class Mappings { executable, shared_writable };

// Feeds maps text in chunks of any size; remembers a partial line between
// calls, and calls visit() for each executable file mapping.
class MapsTextReader {
 public:
  MapsTextReader(ExecVisitor visit, void* ctx, Mappings kind = Mappings::executable)
      : visit_(visit), ctx_(ctx), kind_(kind) {}
  void feed(const char* data, size_t len);
  void finish();  // a last line without newline
  bool stopped() const { return stopped_; }
 private:
  void take_line(const char* line, size_t len);
  ExecVisitor visit_;
  void* ctx_;
  Mappings kind_;
  bool stopped_ = false;
  bool overflow_ = false;  // current line too long to hold: skip to newline
  char partial_[512];
  size_t partial_len_ = 0;
};

// Does maps text map `target` executable? (MapsTextReader with a comparison.)
class MapsTextMatcher {
 public:
  explicit MapsTextMatcher(FileId target) : target_(target), reader_(&matches, this) {}
  void feed(const char* data, size_t len) { reader_.feed(data, len); }
  void finish() { reader_.finish(); }
  bool found() const { return reader_.stopped(); }
 private:
  static bool matches(const FileId& id, void* self) { return id == static_cast<MapsTextMatcher*>(self)->target_; }
  FileId target_;
  MapsTextReader reader_;
};

// no_access: the process could not be inspected (permission, or no fd or
// memory to look with); gone: it exited, or has no memory (a kernel thread).
enum class MapsAnswer { mapped, not_mapped, no_access, gone };

// Walks the file mappings of `kind` (executable ones by default) of the
// process whose maps file is open at `maps_fd` (PROCMAP_QUERY, or the text
// on kernels without it). Returns
// `mapped` if visit() stopped the walk.
MapsAnswer for_each_file_mapping(int maps_fd, ExecVisitor visit, void* ctx,
                                 Mappings kind = Mappings::executable);

// Does this process map `id` shared and writable (MAP_SHARED, PROT_WRITE)?
// Atomic mode: a writer that closed its fd may still be writing the file
// through such a mapping. False where the maps can't be read.
bool self_maps_shared_writable(FileId id);

// Does the process whose maps file is open at `maps_fd` map `id` executable?
// Uses PROCMAP_QUERY, or the text when the kernel lacks it.
MapsAnswer maps_fd_maps_exec(int maps_fd, FileId id);

// The same answer from the text alone (the fallback where the kernel lacks
// PROCMAP_QUERY), so the benchmarks can price both on the same walk.
MapsAnswer maps_fd_text_exec(int maps_fd, FileId id);

// Opens /proc/PID/maps (pid 0: self) and answers as above.
MapsAnswer process_maps_exec(pid_t pid, FileId id);

// Opens /proc/PID/maps (pid 0: self): an fd, or -errno (permission is
// checked here, at open).
int open_maps(pid_t pid);

// A process whose main thread exited while its other threads run on (a
// daemon whose main() ends in pthread_exit) has no memory in /proc/PID/maps
// any more: it reads as a kernel thread's (PROCMAP_QUERY's ESRCH, no text).
// Its threads' maps are the process's: opens /proc/PID/task/TID/maps of a
// thread other than PID. An fd (and that thread's id in *tid_out, if given);
// -ESRCH if there is none; else -errno.
int open_live_thread_maps(pid_t pid, pid_t* tid_out = nullptr);

// Calls per_process(pid, ctx) for every process (numeric entry) of /proc
// until it returns false. False if /proc can't be read (also partly: then some
// processes were never seen).
bool for_each_process(bool (*per_process)(pid_t pid, void* ctx), void* ctx);

template <typename F>  // F: bool(pid_t), e.g. a capturing lambda
bool for_each_process(F per_process) {
  return for_each_process([](pid_t pid, void* f) { return (*static_cast<F*>(f))(pid); }, &per_process);
}

// True if /proc is mounted with hidepid=invisible or ptraceable: the
// processes we may not ptrace are left out of the walk altogether, so a scan
// can't say "nobody" (it counts one uninspected process for them; measured:
// without this, nobody's `truncguard cp` truncated a library a root service
// ran: "pass (no process maps it executable)", the service died of SIGBUS).
bool proc_hides_processes();

// True if /proc lists the processes of one PID namespace only (a container's,
// `unshare -p`, systemd's PrivatePIDs=): the processes outside it run unseen,
// so a scan can't say "nobody" of them either (measured: a deploy in its own
// PID namespace truncated a library a process outside ran: SIGBUS).
bool proc_leaves_out_other_pid_namespaces();

// A scan of every process whose maps can be read.
struct ScanResult {
  static constexpr int kMaxPids = 8;
  int mapped = 0;          // processes found mapping it executable
  pid_t pids[kMaxPids] = {};
  int inspected = 0;
  int uninspected = 0;     // maps could not be read (permission)
  bool proc_missing = false;  // /proc not mounted: nothing could be inspected
  bool outside_pid_ns = false;  // /proc shows one PID namespace: the processes outside it were not seen
  long reused_ms = -1;        // answered from a snapshot taken this long ago (-1: a fresh walk)
};
ScanResult scan_processes(FileId id, bool stop_at_first = false);

// Every executable file mapping of every process we may inspect, at one moment:
// one walk serves many files (a deploy replacing hundreds of libraries).
struct ExecMapping {
  FileId id;
  pid_t pid;
};
struct Snapshot {
  static constexpr size_t kCapacity = 16384;  // mmap'ed on first use
  ExecMapping* entries = nullptr;
  size_t count = 0;
  int inspected = 0;
  int uninspected = 0;
  bool proc_missing = false;
  bool outside_pid_ns = false;
  bool overflow = false;
};
// Takes a snapshot. False if it did not fit (then scan per file instead).
bool take_snapshot(Snapshot* s);
// What a scan_processes(id) would have said at the snapshot's moment.
ScanResult lookup(const Snapshot& s, FileId id);

// True if the kernel proves that no other open file exists on the inode that
// `fd` (opened O_RDONLY) refers to: it grants a write lease only then
// (fs/locks.c, check_conflicting_open: i_writecount and i_readcount, Linux
// 5.3+), and every mapping holds an open file. This proof covers processes we
// may not inspect and other PID namespaces. False proves nothing: a reader,
// a missing CAP_LEASE (not the file's owner), a filesystem without leases, or
// a stacking one (overlayfs, FUSE, ecryptfs), where a mapping holds the file
// underneath and the lease would be granted on a mapped file.
bool proves_unshared(int fd);
bool proves_unshared(int fd, long fs_type);  // fs_type: sys::fs_type(fd), asked already

// A network or cluster filesystem (NFS, SMB, Ceph, AFS, 9p, GFS2, OCFS2,
// Lustre...), by statfs f_type: other machines may run its files, and
// neither the lease nor this machine's /proc sees them.
bool shared_with_other_machines(long fs_type);


// The file mapped at `addr` in this process (PROCMAP_QUERY, or the text).
bool self_file_at(unsigned long addr, FileId* out);

// Reads /proc/PID/comm into buf ("?" if unreadable).
void process_name(pid_t pid, char* buf, size_t len);

}  // namespace tg
