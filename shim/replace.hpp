// The action: give the name a new inode and leave the old one to its users.
//
// Truncation unmaps a file's pages from every process, even their private
// copy-on-write pages (mm/truncate.c); a new inode at the name does not touch
// the old one, which lives on while anything maps it. Everything here works
// relative to a directory fd of the resolved parent, with raw syscalls.
#pragma once

#include <climits>
#include <sys/stat.h>

#include "settings.hpp"
#include "sys.hpp"

namespace tg {

struct FdMove;  // fd_move.hpp

// The file a path finally names: its directory (held open) and its own name.
struct Target {
  sys::Fd dir;
  char base[NAME_MAX + 1] = {};
  struct stat st {};
  bool via_symlink = false;
};

// resolve_target's working memory: a copy of the path to cut in two, and a
// symlink's target (8 KiB: not for the caller's stack, see scratch.hpp).
struct ResolveMemory {
  char path[PATH_MAX];
  char link[PATH_MAX];
};

// Resolves `path` relative to `dirfd`. With `follow`, a final symlink is
// followed (the link stays; its target is what gets replaced).
// Returns 0, or -errno (the real call will report its own error).
int resolve_target(int dirfd, const char* path, bool follow, Target* t, ResolveMemory* mem);
// The same in memory of its own, mapped for the call (-ENOMEM without).
int resolve_target(int dirfd, const char* path, bool follow, Target* t);

struct ReplaceReport {
  const char* failed_step = nullptr;  // what could not be done, if anything
  int error = 0;                      // its errno
  ino_t new_ino = 0;
  bool owner_kept = true;             // fchown to the old owner worked (or was not needed)
  bool owner_unmapped = false;        // it failed because the owner is not mapped in this user namespace
  int owner_errno = 0;                // the first failed fchown's errno (EPERM; EDQUOT under a quota...)
  int xattrs_copied = 0;
  int xattrs_failed = 0;
  bool acl_copied = false;            // the old file's access ACL is the new one's
  bool acl_lost = false;              // the old file had an access ACL that could not be copied
  int acl_inherited_errno = 0;        // the access ACL the new file inherited from its directory's default
                                      // ACL, where the old one's was not copied, could not be removed (errno)
  mode_t mode = 0;                    // the new file's permission bits
  mode_t setid_lost = 0;              // setuid/setgid bits the chown removed and that could not be set again
  int mode_errno = 0;                 // the new file's permission bits could not be set (fchmod's errno):
                                      // it has the mode it was created with
  int times_errno = 0;                // a write in place: the old file's atime and mtime could not be given
                                      // to the new one (utimensat's errno): it has the times of the copy
  bool restored_old = false;          // unlink mode: the old file was put back at the name after a failure
  int putback_error = 0;              // unlink mode: it could not be (errno), and is kept as `kept_aside`
  char kept_aside[NAME_MAX + 1] = {};
  bool incomplete_at_name = false;    // ... while the name holds the new file, which could not be filled
  int aside_left_error = 0;           // unlink mode, done: the old file, moved aside, could not be removed
                                      // (errno); it stays as `kept_aside`
  bool new_at_name = false;           // `onto`: the caller's fd could not be moved (failed_step), and the
                                      // name holds the new file all the same: the old file, still the fd's, is
                                      // `kept_aside` (unlink mode: its put-back failed) or at no name
  int fd_not_restored = 0;            // `onto`: moved to the new file, it could not be put back on the old
                                      // one (errno) when the rename failed: it names the removed new file
  int temp_left_error = 0;            // the new file, not put at the name, could not be removed from its
  char temp_left[NAME_MAX + 1] = {};  // temp name (errno): it stays there, under `temp_left`
  off_t copied = 0;                   // bytes of the old content the new inode starts with
  bool name_changed = false;          // the name no longer held the file examined when the new one was
                                      // to take it: nothing was changed there (the write is checked again)
};

// How much of the old content the new inode starts with: a length (the new
// inode is exactly that long, zero-padded if the old file has shrunk since it
// was looked at, as truncate(2) would make it), or all of it, to its end now.
constexpr off_t kWholeFile = -1;

// Makes the new inode at t's name. `flags` are the new fd's open flags
// (see replacement_flags); `keep` (a length, or kWholeFile) says what is
// copied from `src`;
// `src` is a read fd on the old file or -1. Returns the new fd or -errno.
// `onto` (ftruncate, F_SETFL...: the caller's fd on the old file, or null):
// that fd number, with its dups, is moved to the new file (fd_move.hpp's
// move_fd) before the old file leaves the name for good; returns onto->fd.
// Where the move fails, the name keeps the old file (mode unlink: it is put
// back, `restored_old`), and the call fails with the move's error. The
// caller ends a move that stands with move_fd_done.
int replace_file(const Target& t, Mode mode, int flags, off_t keep, int src, ReplaceReport* rep,
                 FdMove* onto = nullptr);

// What the log says where the caller's fd could not be moved to the new file,
// and where another thread closed it (or put another file at its number) meanwhile.
extern const char kFdNotMoved[];
extern const char kFdGone[];

// Atomic mode: a new inode with no name yet (O_TMPFILE) in t's directory,
// with the old metadata and `keep` (as for replace_file) of `src`. Returns the fd or -errno
// (-EOPNOTSUPP and friends where the filesystem has no O_TMPFILE).
int make_unnamed(const Target& t, int flags, off_t keep, int src, ReplaceReport* rep);

// The kernel's inode_owner_or_capable: is this process's filesystem uid
// `owner`, or has it CAP_FOWNER? (What O_NOATIME, a chmod, times set
// explicitly and a sticky directory's rename ask of the opener.) `fs_uid`:
// this process's, where the caller has it already.
bool owner_or_capable(uid_t owner, uid_t fs_uid = sys::fs_uid());

// Can a new file be renamed over t's name later? False (with the errno a
// rename would give, and why) where it can't: a sticky directory and a file
// or directory owned by someone else, an immutable or append-only file or
// directory, a name that is a mount point (a bind-mounted file).
bool can_rename_over(const Target& t, int src, int* err, const char** why);

// Would the kernel refuse an O_CREAT open of t's existing file? In a sticky
// directory, a file owned neither by the opener nor by the directory's owner,
// with fs.protected_regular on (the directory world-writable, or
// group-writable at level 2), root included (fs/namei.c, may_create_in_sticky).
bool sticky_refuses_creat(const Target& t);

// Removes the temp name `tmp` in `dir` of the file open at `fd`, after a
// failed rename. In a sticky directory a writer without CAP_FOWNER may remove
// only its own files, and the file has taken the old file's owner: it is
// made the writer's again for that (it was left behind). Returns 0, or the
// unlink's -errno (EIO, a filter refusing it: the file stays there).
int remove_temp(int dir, const char* tmp, int fd);

// Unguessable temp name in the same directory: ".BASE.tg-XXXXXXXXXXXX".
void temp_name(const char* base, char* out, size_t len);

}  // namespace tg
