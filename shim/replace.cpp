#include "replace.hpp"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <linux/fs.h>
#include <linux/limits.h>
#include <sys/resource.h>

#include "fd_move.hpp"
#include "scratch.hpp"

namespace tg {
namespace {

constexpr int kMaxSymlinks = 40;  // as the kernel's MAXSYMLINKS

// Splits `path` (modified in place) into its directory part and final name.
// Returns false for a path that names a directory ("", "x/", "/").
bool split(char* path, const char** dir, const char** base) {
  char* slash = std::strrchr(path, '/');
  if (!slash) {
    *dir = ".";
    *base = path;
  } else {
    *base = slash + 1;
    if (slash == path) *dir = "/";
    else { *slash = '\0'; *dir = path; }
  }
  return **base != '\0' && std::strcmp(*base, ".") != 0 && std::strcmp(*base, "..") != 0;
}

constexpr off_t kMaxOff = static_cast<off_t>(~0ULL >> 1);

// The largest file this process may write (RLIMIT_FSIZE, `ulimit -f`).
off_t file_size_limit() {
  struct rlimit rl;
  if (sys::call(SYS_prlimit64, 0, RLIMIT_FSIZE, nullptr, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
      rl.rlim_cur > static_cast<rlim_t>(kMaxOff))
    return kMaxOff;
  return static_cast<off_t>(rl.rlim_cur);
}

// The buffer of a copy without copy_file_range: mapped, not on the stack.
struct CopyBuffer {
  char bytes[64 * 1024];
};

// Copies src from *in to `limit` (or its end) into dst at *out, with read and
// write. At `out`, not the fd's offset: after a partial copy_file_range the
// offset is still 0, and the fd must be left there, as an open leaves it.
int copy_plain(int src, int dst, off_t limit, loff_t* in, loff_t* out) {
  Scratch<CopyBuffer> buf;
  if (!buf) return -buf.error();
  while (*in < limit) {
    const off_t left = limit - *in;
    const size_t want = left < static_cast<off_t>(sizeof buf->bytes) ? static_cast<size_t>(left) : sizeof buf->bytes;
    long n = sys::pread(src, buf->bytes, want, *in);
    if (n == -EINTR) continue;
    if (n < 0) return static_cast<int>(n);
    if (n == 0) break;  // the end of the old file, as it is now
    for (long done = 0; done < n;) {
      long w = sys::pwrite(dst, buf->bytes + done, static_cast<size_t>(n - done), *out);
      if (w == -EINTR) continue;
      if (w <= 0) return w == 0 ? -EIO : static_cast<int>(w);
      done += w;
      *out += w;
    }
    *in += n;
  }
  return 0;
}

// The caller's O_DIRECT off dst while the shim copies into it, back on after
// (F_SETFL). Direct I/O wants lengths and offsets aligned to the block size,
// and the old content ends where it ends: copy_file_range (which splices into
// dst) and the last pwrite fail with EINVAL. Measured on ext4: `dd
// conv=notrunc oflag=direct` over a library in use failed with ETXTBSY
// ("cannot copy the old content: Invalid argument") where without truncguard
// it succeeds. (XFS hid it: its reflink copies no bytes.) The kernel writes
// the copied pages back before the caller's own direct I/O on that range.
class BufferedWhileCopying {
 public:
  explicit BufferedWhileCopying(int fd) : fd_(fd) {
    const long fl = sys::call(SYS_fcntl, fd, F_GETFL);
    if (fl >= 0 && (fl & O_DIRECT) && sys::call(SYS_fcntl, fd, F_SETFL, fl & ~static_cast<long>(O_DIRECT)) == 0)
      flags_ = fl;
  }
  ~BufferedWhileCopying() {
    if (flags_ >= 0) sys::call(SYS_fcntl, fd_, F_SETFL, flags_);
  }
  BufferedWhileCopying(const BufferedWhileCopying&) = delete;
  BufferedWhileCopying& operator=(const BufferedWhileCopying&) = delete;

 private:
  int fd_;
  long flags_ = -1;  // the flags to restore, if O_DIRECT was taken off
};

// Copies `keep` (a length or kWholeFile) of src into the empty dst. The old
// file may change meanwhile (another writer): copy what is there now.
int copy_content(int src, int dst, off_t keep, off_t* copied) {
  *copied = 0;
  if (keep == 0) return 0;
  const BufferedWhileCopying buffered(dst);
  struct stat st;
  if (sys::fstat(src, &st) < 0) return -EIO;
  // Writing past RLIMIT_FSIZE raises SIGXFSZ, which kills the host by
  // default, where its own call may not grow the file at all (ftruncate to a
  // smaller size, a patch in place): the copy stops short of the limit and
  // fails instead (EFBIG, the errno the kernel gives with the signal).
  const off_t max = file_size_limit();
  if ((keep == kWholeFile ? st.st_size : keep) > max) return -EFBIG;
  // The whole file: a reflink shares the blocks (btrfs, xfs) and costs nothing.
  if ((keep == kWholeFile || keep == st.st_size) &&
      sys::ioctl(dst, FICLONE, reinterpret_cast<void*>(static_cast<long>(src))) == 0) {
    *copied = st.st_size;
    return 0;
  }
  const off_t limit = keep == kWholeFile ? max : keep;
  loff_t in = 0, out = 0;
  while (in < limit) {
    const size_t want = static_cast<size_t>(limit - in < (1 << 30) ? limit - in : (1 << 30));
    long n = sys::copy_file_range(src, &in, dst, &out, want);
    // EBADF: dst has the caller's O_APPEND, which copy_file_range refuses;
    // pwrite() then appends (Linux ignores its offset under O_APPEND), and
    // into a file written up to `out` that is the same copy. EPERM: a seccomp
    // filter that does not allow it (systemd's SystemCallFilter=, sandboxes;
    // coreutils falls back on it too); measured: `dd conv=notrunc` failed
    // with ETXTBSY where without truncguard it succeeds.
    if (n == -EXDEV || n == -EINVAL || n == -ENOSYS || n == -EOPNOTSUPP || n == -EBADF || n == -EPERM) {
      const int r = copy_plain(src, dst, limit, &in, &out);  // no copy_file_range here
      if (r < 0) return r;
      break;
    }
    if (n == -EINTR) continue;
    if (n < 0) return static_cast<int>(n);
    if (n == 0) break;  // the end of the old file, as it is now
  }
  if (keep == kWholeFile && in == max) {  // the old file grew past the limit meanwhile?
    char more;
    if (sys::pread(src, &more, 1, in) > 0) return -EFBIG;
  }
  *copied = in;
  // A length: exactly that long, as truncate(2) leaves it.
  if (keep != kWholeFile && in < keep) {
    int r = static_cast<int>(sys::call(SYS_ftruncate, dst, keep));
    if (r < 0) return r;
  }
  return 0;
}

// The names and a value of extended attributes: mapped, only for a file
// that has some (most have none: one flistxattr says so). As large as Linux
// allows: XFS and tmpfs hold values of up to 64 KiB (ext4 of a block), and a
// smaller buffer lost them (ERANGE: "could not be copied").
struct XattrMemory {
  char names[XATTR_LIST_MAX];
  char value[XATTR_SIZE_MAX];
};

constexpr char kAccessAcl[] = "system.posix_acl_access";
constexpr char kFileCaps[] = "security.capability";

// Copies every extended attribute but file capabilities, which a chown would
// remove (copy_metadata sets them after it): `*caps` says if they are listed.
// False if the old file has none at all (its list is empty).
bool copy_xattrs(int src, int dst, ReplaceReport* rep, bool* caps) {
  char few[256];  // the names of a few; a file with none needs no more
  long n = sys::flistxattr(src, few, sizeof few);
  if (n == 0) return false;
  if (n < 0 && n != -ERANGE) return true;  // none to be had (no xattrs on this filesystem), or not known
  Scratch<XattrMemory> mem;
  if (!mem) {  // they can't be copied: say so (one at least, if it is not known how many)
    int count = 0;
    for (long off = 0; n > 0 && off < n; off += static_cast<long>(std::strlen(few + off)) + 1) ++count;
    rep->xattrs_failed += count > 0 ? count : 1;
    return true;
  }
  char* names = mem->names;
  if (n > 0) std::memcpy(names, few, static_cast<size_t>(n));
  else n = sys::flistxattr(src, names, sizeof mem->names);
  if (n == -ERANGE) ++rep->xattrs_failed;
  for (long off = 0; n > 0 && off < n;) {
    const char* name = names + off;
    off += static_cast<long>(std::strlen(name)) + 1;
    if (std::strcmp(name, kFileCaps) == 0) {
      *caps = true;
      continue;
    }
    long v = sys::fgetxattr(src, name, mem->value, sizeof mem->value);
    if (v >= 0 && sys::fsetxattr(dst, name, mem->value, static_cast<size_t>(v), 0) == 0) {
      ++rep->xattrs_copied;
      if (std::strcmp(name, kAccessAcl) == 0) rep->acl_copied = true;
    } else {
      ++rep->xattrs_failed;
    }
  }
  return true;
}

// What an access ACL (its xattr value: a version, then {tag, perm, id}
// entries, little-endian) grants the owning group: group::, within mask::.
mode_t owning_group_bits(const unsigned char* acl, long len) {
  unsigned group = 0, mask = 7;
  for (long off = 4; off + 8 <= len; off += 8) {
    const unsigned tag = acl[off] | acl[off + 1] << 8, perm = acl[off + 2] & 7u;
    if (tag == 0x04) group = perm;        // ACL_GROUP_OBJ
    else if (tag == 0x10) mask = perm;    // ACL_MASK
  }
  return static_cast<mode_t>((group & mask) << 3);
}

// The new file's access ACL, and the mode it gets. It inherits its
// directory's default ACL as its access ACL; the old file may have none (it
// predates the default ACL, or it was removed): then the new one must not
// have one either, as the old inode written in place would not (measured on
// ext4 and tmpfs: "user:1234:rwx" gained). Where the old file's ACL could not
// be copied (ids not mapped in this user namespace, which the kernel shows as
// -1 and refuses to set; no memory), the inherited one must not stand in for
// it, and the mode's group bits, which under an ACL are its mask, become what
// it granted the owning group (measured in a user namespace: group::r-x with
// mask::rwx became a plain rwx for the group). Unknown (an ACL too large to
// read here): none. One fgetxattr, where the ACL was not copied and the old
// file's list of extended attributes was not empty (`listed_none`: an ACL
// is listed as system.posix_acl_access). Where the inherited ACL can't be
// removed (a seccomp filter refusing fremovexattr), the new file keeps it,
// which the log says (ENODATA: none was inherited).
void settle_access_acl(int src, int dst, bool listed_none, ReplaceReport* rep, mode_t* mode) {
  if (rep->acl_copied) return;
  unsigned char acl[4 + 8 * 32];  // read only to find group:: and mask::
  const long n = listed_none ? -ENODATA : sys::fgetxattr(src, kAccessAcl, acl, sizeof acl);
  if (n != -ENODATA && n != -ERANGE && n < 0) return;  // no ACLs here, or not to be known
  if (const int r = sys::fremovexattr(dst, kAccessAcl); r < 0 && r != -ENODATA && r != -EOPNOTSUPP)
    rep->acl_inherited_errno = -r;
  if (n == -ENODATA) return;
  rep->acl_lost = true;
  *mode = (*mode & ~static_cast<mode_t>(S_IRWXG)) | (n > 0 ? owning_group_bits(acl, n) : 0);
}

// Is capability `cap` (a CAP_* number) in this process's effective set?
bool effective_cap(unsigned cap) {
  struct { uint32_t version; int pid; } head = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
  struct { uint32_t effective, permitted, inheritable; } data[2] = {};
  return sys::call(SYS_capget, &head, data) == 0 && (data[cap / 32].effective & (1u << (cap % 32)));
}

// Does this process have CAP_FSETID in the initial user namespace, as the
// kernel's capable() asks? (In a user namespace of its own, a root that has
// it there still has its setuid bits removed.)
bool capable_fsetid() {
  // No /proc to tell (an error): the usual case, the initial namespace.
  return effective_cap(4 /* CAP_FSETID */) &&
         sys::in_initial_namespace("/proc/self/ns/user", sys::kInitUserNamespace) != 0;
}

bool in_group(gid_t gid) {
  if (gid == getegid()) return true;
  gid_t groups[64];
  const int n = getgroups(64, groups);
  for (int i = 0; i < n; ++i)
    if (groups[i] == gid) return true;
  return n < 0;  // more groups than that: don't take a bit the kernel may keep
}

// The mode bits the kernel's truncation of the old file would have left: a
// writer without CAP_FSETID loses setuid, and setgid where the file is
// group-executable or the writer is not in its group (fs/attr.c,
// setattr_should_drop_suidgid, called by do_truncate and file_remove_privs).
mode_t mode_after_truncation(const struct stat& st) {
  mode_t mode = st.st_mode & 07777;
  if (!(mode & (S_ISUID | S_ISGID)) || capable_fsetid()) return mode;
  mode &= ~static_cast<mode_t>(S_ISUID);
  if ((mode & S_IXGRP) || !in_group(st.st_gid)) mode &= ~static_cast<mode_t>(S_ISGID);
  return mode;
}

// Owner and mode go through the program's libc calls (so that another
// preload, fakeroot, sees them). Under ThreadSanitizer, through the kernel,
// like the shim's own opens and closes of these fds: TSan, seeing only the
// libc calls, takes an fd number the shim closed and the program reused for
// a race.
#if defined(__SANITIZE_THREAD__)
int as_libc(int r) { return r < 0 ? (errno = -r, -1) : r; }
int program_fstat(int fd, struct stat* st) { return as_libc(sys::fstat(fd, st)); }
int program_fchown(int fd, uid_t uid, gid_t gid) { return as_libc(sys::fchown(fd, uid, gid)); }
int program_fchmod(int fd, mode_t mode) { return as_libc(sys::fchmod(fd, mode)); }
#else
int program_fstat(int fd, struct stat* st) { return ::fstat(fd, st); }
int program_fchown(int fd, uid_t uid, gid_t gid) { return ::fchown(fd, uid, gid); }
int program_fchmod(int fd, mode_t mode) { return ::fchmod(fd, mode); }
#endif

// The old file's owner, group and mode as the program sees them, through
// the fstat the program itself calls: a preload that keeps its own view of
// ownership (fakeroot) answers with that view. Only for the same inode;
// otherwise (no fd, a failure) the kernel's answer, `st`.
struct stat owner_as_seen(int src, const struct stat& st) {
  struct stat seen;
  const int saved = errno;
  const bool same = src >= 0 && program_fstat(src, &seen) == 0 && seen.st_dev == st.st_dev && seen.st_ino == st.st_ino;
  errno = saved;
  return same ? seen : st;
}

// The group, then extended attributes (ACLs among them), mode and times, then
// the owner, then file capabilities: all but the last need the writer to own
// the file or to have CAP_FOWNER, and after a chown to another user only the
// latter will do (measured: root without CAP_FOWNER, `setpriv
// --inh-caps=-fowner`, left a library it replaced with mode 0600 and the
// times of its copy). The group goes first and setuid waits for the owner:
// the mode's group bits and setgid are for the old file's group, setuid for
// its owner, never, even for a moment, for the writer's (root's copy of
// another user's setuid file, at a name in the directory, was setuid root
// until the chown). The chown removes file capabilities (they are set after
// it, by CAP_SETFCAP, which needs no ownership), and setuid, and setgid on a
// group-executable file: the mode is set again after it, where those bits
// went; a writer that neither owns the new file then nor has CAP_FOWNER can't,
// and the new file has them no more (`setid_lost`).
// `truncated`: the writer's call shortens the file, which in place would have
// removed its privileges at once (file capabilities for every writer, setuid
// and setgid as mode_after_truncation says): the new inode does not get
// them either. A write in place gets them all: the kernel removes them from
// the new inode at the writer's first write, as it would from the old.
// Owner and mode are set through the fchown and fchmod the program calls,
// for the same reason as owner_as_seen: under fakeroot, the new inode then
// has the owner fakeroot showed for the old one (not its own default, root).
void copy_metadata(int src, const struct stat& old, int dst, bool truncated, ReplaceReport* rep) {
  const struct stat st = owner_as_seen(src, old);
  const int saved = errno;
  rep->mode = truncated ? mode_after_truncation(st) : st.st_mode & 07777;
  // The new file's own owner and group, as the program sees them: not always
  // the writer's (a setgid directory gives its group; the filesystem uid).
  struct stat made;
  if (program_fstat(dst, &made) != 0) {
    made.st_uid = geteuid();
    made.st_gid = getegid();
  }
  const bool other_owner = st.st_uid != made.st_uid;
  if (st.st_gid != made.st_gid && program_fchown(dst, static_cast<uid_t>(-1), st.st_gid) < 0) {
    rep->owner_kept = false;  // (the group of the writer's: as the old file's can't be had)
    rep->owner_unmapped = errno == EINVAL;
    rep->owner_errno = errno;
  }
  bool caps = false;
  if (src >= 0) {
    const bool listed_any = copy_xattrs(src, dst, rep, &caps);
    settle_access_acl(src, dst, !listed_any, rep, &rep->mode);
  }
  if (program_fchmod(dst, other_owner ? rep->mode & ~static_cast<mode_t>(S_ISUID) : rep->mode) < 0)
    rep->mode_errno = errno;  // (a seccomp filter...): the new file keeps 0600, which the log says
  // A write in place changes the times only by writing (the kernel then sets
  // the mtime, of the new inode as of the old): until it writes, the new
  // inode has the old one's atime and mtime. Measured: `touch -a` (which
  // opens O_WRONLY and writes nothing) left a library in use with a new mtime.
  // Where they can't be set (a seccomp filter, a FUSE server that refuses
  // it), the new inode has the times of the copy, which the log says.
  if (!truncated) {
    const struct timespec times[2] = {old.st_atim, old.st_mtim};
    if (const long r = sys::call(SYS_utimensat, dst, nullptr, times, 0); r < 0) rep->times_errno = static_cast<int>(-r);
  }
  if (other_owner) {
    if (program_fchown(dst, st.st_uid, static_cast<gid_t>(-1)) < 0) {
      rep->owner_kept = false;
      // An owner outside this user namespace shows as the overflow id (65534), which is not mapped.
      rep->owner_unmapped = rep->owner_unmapped || errno == EINVAL;
      if (!rep->owner_errno) rep->owner_errno = errno;
    }
    struct stat now;
    // Where the first fchmod failed too (a seccomp filter), the mode's note
    // says what the file has: this one would blame ownership (the writer may
    // have CAP_FOWNER) and a mode set before, which is not.
    if ((rep->mode & (S_ISUID | S_ISGID)) && program_fstat(dst, &now) == 0 && (now.st_mode & 07777) != rep->mode &&
        program_fchmod(dst, rep->mode) < 0 && !rep->mode_errno)
      rep->setid_lost = rep->mode & ~now.st_mode & (S_ISUID | S_ISGID);
  }
  if (caps && !truncated) {
    char value[64];  // a capability set is 24 bytes at most (struct vfs_ns_cap_data)
    const long n = sys::fgetxattr(src, kFileCaps, value, sizeof value);
    if (n >= 0 && sys::fsetxattr(dst, kFileCaps, value, static_cast<size_t>(n), 0) == 0) ++rep->xattrs_copied;
    else ++rep->xattrs_failed;
  }
  errno = saved;
}

int fail(ReplaceReport* rep, const char* step, int err) {
  rep->failed_step = step;
  rep->error = -err;
  return err;
}

}  // namespace

int resolve_target(int dirfd, const char* path, bool follow, Target* t) {
  Scratch<ResolveMemory> mem;
  if (!mem) return -mem.error();
  return resolve_target(dirfd, path, follow, t, mem.get());
}

int resolve_target(int dirfd, const char* path, bool follow, Target* t, ResolveMemory* mem) {
  if (!path || !*path) return -ENOENT;
  char* buf = mem->path;
  size_t len = std::strlen(path);
  if (len >= sizeof mem->path) return -ENAMETOOLONG;
  std::memcpy(buf, path, len + 1);
  sys::Fd base_dir;  // the directory a relative symlink is resolved from
  int from = dirfd;
  for (int hops = 0;; ++hops) {
    const char* dir;
    const char* base;
    if (!split(buf, &dir, &base)) return -EISDIR;
    sys::Fd d(sys::openat(from, dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!d.ok()) return d.get();
    if (std::strlen(base) > NAME_MAX) return -ENAMETOOLONG;
    struct stat st;
    int r = sys::fstatat(d.get(), base, &st, AT_SYMLINK_NOFOLLOW);
    if (r < 0) return r;
    if (S_ISLNK(st.st_mode) && follow) {
      if (hops >= kMaxSymlinks) return -ELOOP;
      char* link = mem->link;
      long n = sys::readlinkat(d.get(), base, link, sizeof mem->link - 1);
      if (n < 0) return static_cast<int>(n);
      link[n] = '\0';
      std::memcpy(buf, link, static_cast<size_t>(n) + 1);
      base_dir.reset(d.release());
      from = base_dir.get();
      t->via_symlink = true;
      continue;
    }
    std::strcpy(t->base, base);
    t->st = st;
    t->dir.reset(d.release());
    return 0;
  }
}

namespace {

// An O_CREAT|O_EXCL open that a security module refuses after the file was
// made (Landlock without WRITE_FILE beneath the directory, only MAKE_REG)
// fails with EACCES, and leaves the empty file at the name.
bool may_have_created(int err) { return err == -EACCES || err == -EPERM; }

// A sandbox that lets this process write files here but not truncate them
// (Landlock without TRUNCATE) refuses the file's own truncation with EACCES;
// replacing it instead would turn that refusal into a success. A new file
// in the same directory has no more rights than the old one, the usual
// ruleset granting them to a directory and all beneath: its truncation (to
// 0, of an empty file: nothing changes) asks. Only for a write that truncates.
// Through a second fd on it: ext4 flushes a file truncated to 0 when the fd
// it was truncated through closes (auto_da_alloc), and that fd is the
// writer's: its close then started writeback of the whole new file (a deploy
// of 200 libraries on ext4: +50 us a file). The second fd's close clears that
// on an empty file. Where it can't be opened (no fd left, /proc hidden, a
// mode without write), the writer's fd asks.
const char* truncation_refused(int fd, off_t keep, int* err) {
  if (keep == kWholeFile) return nullptr;
  char proc[32];
  sys::fd_link(fd, proc, sizeof proc);
  const sys::Fd probe(sys::openat(AT_FDCWD, proc, O_WRONLY | O_CLOEXEC | O_NOCTTY));
  if (sys::ftruncate(probe.ok() ? probe.get() : fd, 0) != -EACCES) return nullptr;
  *err = -EACCES;
  return "a sandbox refuses to truncate files here (Landlock), as it would the file's own truncation";
}

}  // namespace

int make_unnamed(const Target& t, int flags, off_t keep, int src, ReplaceReport* rep) {
  // No O_EXCL: that would forbid linking it in later.
  sys::Fd fd(sys::openat(t.dir.get(), ".", (flags & ~(O_CREAT | O_EXCL)) | O_TMPFILE, 0600));
  if (!fd.ok()) return fail(rep, "cannot create an unnamed file in the directory (O_TMPFILE)", fd.get());
  int refused = 0;
  if (const char* step = truncation_refused(fd.get(), keep, &refused)) return fail(rep, step, refused);
  int r = copy_content(src, fd.get(), keep, &rep->copied);
  if (r < 0) return fail(rep, "cannot copy the old content", r);
  copy_metadata(src, t.st, fd.get(), keep != kWholeFile, rep);
  struct stat st;
  if (sys::fstat(fd.get(), &st) == 0) rep->new_ino = st.st_ino;
  return fd.release();
}

namespace {

#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif

// Is the name a mount point (a file mounted over it)? The kernel says so
// (STATX_ATTR_MOUNT_ROOT, Linux 5.8+), for a file bound from the same
// filesystem too. Before that, a device other than the directory's; which
// is no mount point on an overlay with layers on other filesystems, where
// stat() gives a file the device of its layer.
bool is_mount_point(const Target& t, const struct stat& dir) {
  struct statx sx;
  if (sys::call(SYS_statx, t.dir.get(), t.base, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &sx) == 0 &&
      (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
    return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  return dir.st_dev != t.st.st_dev;
}

}  // namespace

bool owner_or_capable(uid_t owner, uid_t fs_uid) { return fs_uid == owner || effective_cap(3 /* CAP_FOWNER */); }

bool can_rename_over(const Target& t, int src, int* err, const char** why) {
  struct stat dir;
  if (sys::fstat(t.dir.get(), &dir) < 0) return true;  // don't guess: the rename will tell
  *err = EBUSY;
  if (is_mount_point(t, dir)) {
    *why = "the name is a mount point (a file mounted over it)";
    return false;
  }
  *err = EPERM;
  // As the kernel's check_sticky: the filesystem uid, and CAP_FOWNER (not
  // uid 0: root under `setpriv --bounding-set=-fowner` has no say over another's
  // file there, and its atomic write was lost at the close). Asked only in a
  // sticky directory (sys::fs_uid).
  if (dir.st_mode & S_ISVTX) {
    const uid_t me = sys::fs_uid();
    if (me != dir.st_uid && !owner_or_capable(t.st.st_uid, me)) {
      *why = "the directory is sticky and neither it nor the file is ours";
      return false;
    }
  }
  int flags = 0;
  if (src >= 0 && sys::ioctl(src, FS_IOC_GETFLAGS, &flags) == 0 && (flags & (FS_IMMUTABLE_FL | FS_APPEND_FL))) {
    *why = "the file is immutable or append-only";
    return false;
  }
  sys::Fd d(sys::openat(t.dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  flags = 0;
  if (d.ok() && sys::ioctl(d.get(), FS_IOC_GETFLAGS, &flags) == 0 && (flags & (FS_IMMUTABLE_FL | FS_APPEND_FL))) {
    *why = "the directory is immutable or append-only";
    return false;
  }
  return true;
}

bool sticky_refuses_creat(const Target& t) {
  struct stat dir;
  if (sys::fstat(t.dir.get(), &dir) < 0 || !(dir.st_mode & S_ISVTX) || !(dir.st_mode & (S_IWOTH | S_IWGRP)) ||
      t.st.st_uid == dir.st_uid)
    return false;
  if (t.st.st_uid == sys::fs_uid()) return false;  // the opener's own file
  sys::Fd sysctl(sys::openat(AT_FDCWD, "/proc/sys/fs/protected_regular", O_RDONLY | O_CLOEXEC));
  char level = '0';
  if (!sysctl.ok() || sys::read(sysctl.get(), &level, 1) != 1) return false;  // not known: the kernel's default, 0
  return level == '2' || (level == '1' && (dir.st_mode & S_IWOTH));
}

int remove_temp(int dir, const char* tmp, int fd) {
  int r = sys::unlinkat(dir, tmp, 0);
  if (r == -EPERM && fd >= 0 && sys::fchown(fd, sys::fs_uid(), static_cast<gid_t>(-1)) == 0)
    r = sys::unlinkat(dir, tmp, 0);
  return r;
}

void temp_name(const char* base, char* out, size_t len) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  unsigned char rnd[12];
  if (sys::getrandom(rnd, sizeof rnd, 0x0001 /* GRND_NONBLOCK */) != static_cast<long>(sizeof rnd)) {
    // No entropy yet (early boot): still unguessable enough together with O_EXCL.
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long x = static_cast<unsigned long long>(ts.tv_nsec) ^
                           (static_cast<unsigned long long>(ts.tv_sec) << 20) ^
                           (static_cast<unsigned long long>(sys::getpid()) << 40) ^
                           reinterpret_cast<unsigned long long>(&x);
    for (unsigned char& b : rnd) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      b = static_cast<unsigned char>(x);
    }
  }
  char suffix[16];
  for (size_t i = 0; i < sizeof rnd; ++i) suffix[i] = kAlphabet[rnd[i] & 31];
  suffix[sizeof rnd] = '\0';
  // ".BASE.tg-" + 12 characters must stay within NAME_MAX.
  std::snprintf(out, len, ".%.*s.tg-%s", static_cast<int>(NAME_MAX - 1 - 4 - 12), base, suffix);
}

namespace {

// Is the file examined (t.st) still at t's name? The name is examined, and
// the directory opened, before the scan of the processes and the copy,
// which take milliseconds to seconds (a large library without reflinks):
// meanwhile a deploy may have renamed its own new file, or a symlink, over
// the name, and the rename of the new inode would replace that (a symlink
// became a regular file with the old content, where the writer's real open
// follows it). Gone (ENOENT) counts as changed; an error that says nothing
// about the name (EIO, no memory), as unchanged: the rename will tell.
bool still_at_name(const Target& t, const char* name) {
  struct stat now;
  const int r = sys::fstatat(t.dir.get(), name, &now, AT_SYMLINK_NOFOLLOW);
  if (r == -ENOENT) return false;
  return r < 0 || (now.st_dev == t.st.st_dev && now.st_ino == t.st.st_ino);
}

constexpr char kNameChanged[] = "another file was put at the name meanwhile";

// The new file at the temp name `tmp` goes, after a failure: where it can't,
// the report says it stays there (a copy of the library, hidden in the
// directory, which the log names).
void drop_temp(int dir, const char* tmp, int fd, ReplaceReport* rep) {
  if (const int r = remove_temp(dir, tmp, fd); r < 0 && r != -ENOENT) {
    rep->temp_left_error = -r;
    std::memcpy(rep->temp_left, tmp, sizeof rep->temp_left);
  }
}

// The step a failed move_fd logs: the fd's number given to another file by
// another thread, or the move itself.
const char* not_moved_step(const FdMove& m) { return m.fd_gone ? kFdGone : kFdNotMoved; }

// rename() that never replaces a file at `to` (RENAME_NOREPLACE), where the
// filesystem can say so; a plain rename() where it can't (EINVAL: NFS, some
// FUSE servers), which is as good for a name no one else has.
int rename_noreplace(int dir, const char* from, const char* to) {
  const int r = static_cast<int>(sys::call(SYS_renameat2, dir, from, dir, to, RENAME_NOREPLACE));
  return r == -EINVAL || r == -ENOSYS ? sys::renameat(dir, from, dir, to) : r;
}

// Mode unlink: install(1)'s sequence as the name shows it (the old file goes,
// then a new one is created with O_EXCL and filled). The old file is moved
// aside to a temp name rather than unlinked, and unlinked only once the new
// one is complete: where the new file can't be created or filled (no inode
// or block left, a quota, EFBIG, EIO), the old one is renamed back. Unlinked
// at once, it could not be (linkat refuses an inode with no name left:
// ENOENT), and the name was left missing, or holding the empty or partial
// copy, the library's content gone from it (measured on a full tmpfs: `dd
// conv=notrunc` got ETXTBSY and left a 0-byte file at the name).
int unlink_and_create(const Target& t, int flags, off_t keep, int src, ReplaceReport* rep, FdMove* onto) {
  const int dir = t.dir.get();
  char aside[NAME_MAX + 1];
  int r = -EEXIST;
  for (int attempt = 0; attempt < 16 && r == -EEXIST; ++attempt) {
    temp_name(t.base, aside, sizeof aside);
    r = rename_noreplace(dir, t.base, aside);
  }
  if (r < 0) return fail(rep, "cannot move the old file away from the name", r);
  // What was moved aside must be the file examined: another put at the name
  // since (a deploy's rename, a symlink) goes back, untouched (it was
  // unlinked once the new file was made).
  if (!still_at_name(t, aside)) {
    const int back = rename_noreplace(dir, aside, t.base);
    if (back == 0) {
      rep->name_changed = true;
    } else {  // (someone took the name again meanwhile) that file stays under the temp name, which the log gives
      rep->putback_error = -back;
      std::memcpy(rep->kept_aside, aside, sizeof aside);
    }
    return fail(rep, kNameChanged, -ESTALE);
  }
  sys::Fd fd(sys::openat(dir, t.base, flags, 0600));
  const char* step = nullptr;
  int err = 0;
  if (!fd.ok()) {
    step = "cannot create the new file";
    err = fd.get();
  } else if (!(step = truncation_refused(fd.get(), keep, &err)) &&
             (err = copy_content(src, fd.get(), keep, &rep->copied)) < 0) {
    step = "cannot copy the old content";
  } else if (onto && (err = move_fd(onto, fd.get())) < 0) {
    step = not_moved_step(*onto);  // the new file is complete; the caller's fd is not on it
  }
  if (step) {
    // The old file back at the name: where the create failed, only if the
    // name is still free; over the new file otherwise (ours, incomplete).
    // (Not back: someone else's file took the name meanwhile; it stays, and
    // the old one goes, as after install's unlink.) Where the rename itself
    // fails (EIO, a quota: btrfs's rename can give EDQUOT), the old file is
    // kept under its temp name, which the log gives: deleted, the library's
    // content was gone. The name then holds the new file, if it was created
    // (incomplete: the log says so too). A create refused after it made the
    // file left that file, empty and ours, at the name: the old one goes back
    // over it (the library was deleted, the name left holding 0 bytes).
    struct stat made;
    const bool made_empty = !fd.ok() && may_have_created(err) &&
                            sys::fstatat(dir, t.base, &made, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(made.st_mode) &&
                            made.st_size == 0 && made.st_uid == sys::fs_uid();
    const int back = fd.ok() || made_empty ? sys::renameat(dir, aside, dir, t.base)
                                           : rename_noreplace(dir, aside, t.base);
    rep->restored_old = back == 0;
    if (back == -EEXIST) {
      sys::unlinkat(dir, aside, 0);
    } else if (back < 0) {
      rep->putback_error = -back;
      std::memcpy(rep->kept_aside, aside, sizeof aside);
      rep->incomplete_at_name = fd.ok() && step != kFdNotMoved && step != kFdGone;
      rep->new_at_name = step == kFdNotMoved;
    }
    return fail(rep, step, err);
  }
  // Not removed (a seccomp filter, EIO): the old library stays, hidden under
  // its temp name, which the log gives (it holds the old content's blocks).
  if (const int gone = sys::unlinkat(dir, aside, 0); gone < 0) {
    rep->aside_left_error = -gone;
    std::memcpy(rep->kept_aside, aside, sizeof aside);
  }
  copy_metadata(src, t.st, fd.get(), keep != kWholeFile, rep);
  struct stat st;
  if (sys::fstat(fd.get(), &st) == 0) rep->new_ino = st.st_ino;
  return onto ? onto->fd : fd.release();
}

}  // namespace

const char kFdNotMoved[] = "cannot move the caller's fd to the new file";
const char kFdGone[] = "its fd was closed or given another file meanwhile (another thread)";

int replace_file(const Target& t, Mode mode, int flags, off_t keep, int src, ReplaceReport* rep, FdMove* onto) {
  const int dir = t.dir.get();
  if (mode == Mode::unlink) return unlink_and_create(t, flags, keep, src, rep, onto);

  // An append-only directory (chattr +a) lets a file be made in it, but none
  // be renamed over another or removed: a temp file made there could neither
  // take the name nor go away (each write left one behind, a copy of the
  // library for a write in place). Known before making it: one statx.
  struct statx sx;
  if (sys::call(SYS_statx, dir, "", AT_EMPTY_PATH, 0, &sx) == 0 && (sx.stx_attributes_mask & STATX_ATTR_APPEND) &&
      (sx.stx_attributes & STATX_ATTR_APPEND))
    return fail(rep, "the directory is append-only: no file can be renamed over the name there", -EPERM);

  // Replace: build the new inode under a temp name, then rename() it over the
  // name, which never disappears (unlike install's unlink + create).
  char tmp[NAME_MAX + 1];
  sys::Fd fd;
  for (int attempt = 0; attempt < 16 && !fd.ok(); ++attempt) {
    temp_name(t.base, tmp, sizeof tmp);
    fd.reset(sys::openat(dir, tmp, flags, 0600));
    if (fd.get() != -EEXIST) break;
  }
  if (!fd.ok()) {
    if (may_have_created(fd.get())) drop_temp(dir, tmp, -1, rep);  // O_EXCL: if it is there, it is ours
    return fail(rep, "cannot create a temporary file in the directory", fd.get());
  }
  int refused = 0;
  if (const char* step = truncation_refused(fd.get(), keep, &refused)) {
    drop_temp(dir, tmp, fd.get(), rep);
    return fail(rep, step, refused);
  }
  int r = copy_content(src, fd.get(), keep, &rep->copied);
  if (r == 0) {
    copy_metadata(src, t.st, fd.get(), keep != kWholeFile, rep);
    if (!still_at_name(t, t.base)) {
      drop_temp(dir, tmp, fd.get(), rep);
      rep->name_changed = true;
      return fail(rep, kNameChanged, -ESTALE);
    }
    // `onto` moves to the new file first, while the old one is still at
    // the name: where it can't, the name keeps the old file; where the
    // rename then fails, `onto` goes back to the old file, kept meanwhile
    // as `saved` (the same open file: its offset, its flags).
    sys::Fd saved;
    if (onto) {
      saved.reset(sys::dup_high(onto->fd));
      onto->own_dup = saved.get();
      if (saved.ok()) {
        if (const int moved = move_fd(onto, fd.get()); moved < 0) {
          drop_temp(dir, tmp, fd.get(), rep);
          return fail(rep, not_moved_step(*onto), moved);
        }
      }
    }
    r = sys::renameat(dir, tmp, dir, t.base);
    if (r < 0) {
      if (saved.ok()) {
        const int back = move_fd_back(onto, saved.get());
        rep->fd_not_restored = back < 0 ? -back : 0;
      }
      drop_temp(dir, tmp, fd.get(), rep);
      return fail(rep, "cannot rename the new file over the name", r);
    }
    struct stat st;
    if (sys::fstat(fd.get(), &st) == 0) rep->new_ino = st.st_ino;
    if (!onto) return fd.release();
    if (saved.ok()) return onto->fd;
    // No fd left to keep the old file open with (EMFILE): the caller's fd
    // moves after the rename. Where that fails, the name holds the new file
    // (the caller's write not done), and the log says where the old one is.
    if (const int moved = move_fd(onto, fd.get()); moved < 0) {
      rep->new_at_name = !onto->fd_gone;
      return fail(rep, not_moved_step(*onto), moved);
    }
    return onto->fd;
  }
  drop_temp(dir, tmp, fd.get(), rep);
  return fail(rep, "cannot copy the old content", r);
}

}  // namespace tg
