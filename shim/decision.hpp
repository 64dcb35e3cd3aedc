// The decision core: should this write be turned into "new inode at the same name"?
//
// Pure functions, in the order the guard asks them (cheapest first), so unit
// tests can call them directly without any preload. Each answers act/pass and
// a reason that the `decisions` log category prints.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "elf_probe.hpp"
#include "settings.hpp"

namespace tg {

enum class Reason {
  // pass
  not_writing,         // read-only, O_PATH
  append_only,         // O_WRONLY|O_APPEND: adds bytes, changes none
  exclusive_create,    // O_CREAT|O_EXCL: fails on an existing file anyway
  not_regular,         // directory, FIFO, device, socket, /proc file...
  missing,             // nothing at that name (or it can't be resolved)
  empty_file,          // nothing to lose
  not_shrinking,       // truncate() to the same size or larger
  not_code,            // not an ELF shared object or executable
  kernel_interface,    // sysfs, procfs...: never code, and only the real call may touch it
  lease_being_broken,  // another's lease: the open is O_NONBLOCK (EWOULDBLOCK), or its wait was interrupted (EINTR)
  not_mapped,          // every process inspected; none maps it executable
  unshared,            // the kernel proves nobody else has it open (write lease)
  not_mapped_by_self,  // scope self: this process doesn't map it
  no_write_permission, // the real call would fail: let it
  made_for_this_fd,    // the inode truncguard just made for this fd: its writer goes on
  no_direct_io,        // O_DIRECT where the filesystem has none: the real open fails (EINVAL), truncating nothing
  unexaminable_fd,     // no /proc: a write-only fd's file can be neither read nor named
  protected_regular,   // O_CREAT of another's file in a sticky directory: fs.protected_regular refuses it (EACCES)
  noatime_not_owner,   // O_NOATIME on a file the caller neither owns nor has CAP_FOWNER for: refused (EPERM)
  append_only_file,    // chattr +a: the kernel refuses every write but an append (EPERM), changing nothing
  open_failed,         // an O_RDWR open looked at after the real open, which failed: nothing was opened
  // act
  mapped,              // a process maps it executable
  uninspected_elf,     // not proven unmapped: some processes could not be inspected
  other_machines_elf,  // not proven unmapped: on NFS, SMB... other machines' processes can't be inspected
  self_uninspected,    // scope self: this process's own maps could not be read (no fd left...)
  scope_elf,           // scope elf: every ELF shared object or executable
};

struct Verdict {
  bool act;
  Reason reason;
};

const char* to_string(Reason r);

// True if an open with these flags can change bytes already in the file:
// write access, or O_TRUNC (Linux truncates even with O_RDONLY, checking write
// permission), and not O_PATH (which ignores both). An fd that can only append
// (O_WRONLY|O_APPEND) can't: it adds bytes past the end of file, which no
// mapping runs. Such an fd is examined when it could do more (fcntl F_SETFL
// without O_APPEND, pwritev2 RWF_NOAPPEND, fallocate over existing bytes,
// ftruncate). The whole pass-through test.
inline bool may_change_content(int flags) {
  if (__builtin_expect(!(flags & (O_ACCMODE | O_TRUNC)), 1)) return false;  // read-only: most opens, one test
  const int access = flags & O_ACCMODE;
  const bool append_only = access == O_WRONLY && (flags & O_APPEND) && !(flags & O_TRUNC);
  return ((access != O_RDONLY && !append_only) || (flags & O_TRUNC)) && (flags & O_PATH) != O_PATH;
}

// True if it truncates.
inline bool may_truncate(int flags) { return may_change_content(flags) && (flags & O_TRUNC); }

// Stage 1, from the flags alone.
Verdict check_flags(int flags);

// Stage 2, from the file's stat. `new_length` is the size the write leaves
// (0 for O_TRUNC, the new size for truncate/ftruncate), or -1 for a write in
// place that keeps the content (open for writing without O_TRUNC).
Verdict check_file(const struct stat& st, off_t new_length);

// Stage 3, from the ELF header.
Verdict check_elf(ElfKind kind);

// Stage 4, from who maps it.
struct MappingFacts {
  bool mapped_by_self = false;   // this process maps it executable
  int mapped_by_others = 0;      // other processes found mapping it
  int uninspected = 0;           // processes whose maps could not be read
  bool proc_missing = false;     // /proc unavailable: nothing was inspected
  bool outside_pid_ns = false;   // /proc shows one PID namespace: the processes outside it were not seen
  bool proven_unshared = false;  // a write lease was granted: no other open file, no mapping
  bool self_uninspected = false; // scope self: this process's own maps could not be read
  bool other_machines = false;   // a network or cluster filesystem: other machines' processes were not seen
};
Verdict check_mapping(Scope scope, ElfKind kind, const MappingFacts& m);

// Which mapping facts the scope needs. Scopes system and namespace ask the
// kernel for proof first (one lease); the /proc scan runs only when that
// proves nothing.
inline bool scope_needs_scan(Scope s) { return s == Scope::system || s == Scope::pid_namespace; }
inline bool scope_needs_self(Scope s) { return s != Scope::elf; }

// The flags for the new inode's fd: the caller's access mode and status flags
// (O_APPEND, O_CLOEXEC, O_SYNC...), created exclusively (so never through a link).
int replacement_flags(int caller_flags);

// fopen/freopen mode string -> open(2) flags; -1 if the mode is invalid.
int fopen_mode_flags(const char* mode);

}  // namespace tg
