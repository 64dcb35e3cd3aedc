#include "decision.hpp"

#include <fcntl.h>

namespace tg {

const char* to_string(Reason r) {
  switch (r) {
    case Reason::not_writing: return "does not write";
    case Reason::append_only: return "appends only: no byte already in the file can change";
    case Reason::exclusive_create: return "O_EXCL: creates a new file or fails";
    case Reason::not_regular: return "not a regular file";
    case Reason::missing: return "no such file";
    case Reason::empty_file: return "empty file";
    case Reason::not_shrinking: return "does not shrink the file";
    case Reason::not_code: return "not an ELF shared object or executable";
    case Reason::lease_being_broken:
      return "another process's lease on it is being broken, and the open does not wait (O_NONBLOCK) or its wait was "
             "interrupted: it fails as the kernel's own open would (EWOULDBLOCK, EINTR), truncating nothing";
    case Reason::kernel_interface:
      return "a kernel interface file (sysfs, procfs...): never code, and not read (reading runs the kernel's code)";
    case Reason::not_mapped: return "no process maps it executable";
    case Reason::unshared: return "no process has it open or mapped (the kernel granted a write lease)";
    case Reason::not_mapped_by_self: return "this process does not map it executable (scope self)";
    case Reason::no_write_permission: return "caller may not write it; the real call answers";
    case Reason::made_for_this_fd: return "truncguard made this inode for this fd: the same writer goes on";
    case Reason::no_direct_io: return "O_DIRECT, which this filesystem refuses: the real call answers (EINVAL)";
    case Reason::unexaminable_fd:
      return "without /proc, the file of this write-only fd can be neither read nor named: the real call answers";
    case Reason::protected_regular:
      return "O_CREAT of another user's file in a sticky directory, which fs.protected_regular refuses: the real call answers (EACCES)";
    case Reason::noatime_not_owner:
      return "O_NOATIME on a file the caller neither owns nor has CAP_FOWNER for: the real call answers (EPERM)";
    case Reason::append_only_file:
      return "an append-only file (chattr +a), which the kernel lets only an append change: the real call answers (EPERM)";
    case Reason::open_failed: return "the open failed: nothing was opened, nothing can change";
    case Reason::mapped: return "mapped executable";
    case Reason::uninspected_elf: return "some processes could not be inspected: replace unless proven unmapped";
    case Reason::other_machines_elf:
      return "on a filesystem other machines share (NFS, SMB...), whose processes can't be inspected: replace unless "
             "proven unmapped";
    case Reason::self_uninspected: return "this process's own maps could not be read: replace unless proven unmapped";
    case Reason::scope_elf: return "ELF shared object or executable (scope elf)";
  }
  return "?";
}

Verdict check_flags(int flags) {
  if (!may_change_content(flags)) {
    const bool appends = (flags & O_ACCMODE) == O_WRONLY && (flags & O_APPEND) && (flags & O_PATH) != O_PATH;
    return {false, appends ? Reason::append_only : Reason::not_writing};
  }
  if ((flags & O_CREAT) && (flags & O_EXCL)) return {false, Reason::exclusive_create};
  if ((flags & O_DIRECTORY) || (flags & O_TMPFILE) == O_TMPFILE) return {false, Reason::not_regular};
  return {true, Reason::mapped};  // "go on": the later stages decide
}

Verdict check_file(const struct stat& st, off_t new_length) {
  if (!S_ISREG(st.st_mode)) return {false, Reason::not_regular};
  if (st.st_size == 0) return {false, Reason::empty_file};
  // Writes in place (new_length -1) change mapped pages whatever they do; a
  // truncation only loses what lies past the new end.
  if (new_length >= 0 && new_length >= st.st_size) return {false, Reason::not_shrinking};
  return {true, Reason::mapped};
}

Verdict check_elf(ElfKind kind) {
  if (!maybe_code(kind)) return {false, Reason::not_code};
  return {true, Reason::mapped};
}

Verdict check_mapping(Scope scope, ElfKind kind, const MappingFacts& m) {
  switch (scope) {
    case Scope::elf:
      return {maybe_code(kind), maybe_code(kind) ? Reason::scope_elf : Reason::not_code};
    case Scope::self:
      if (m.mapped_by_self) return {true, Reason::mapped};
      // Not being able to look (no fd left, no memory) is not "not mapped".
      if (m.self_uninspected && maybe_code(kind)) return {true, Reason::self_uninspected};
      return {false, Reason::not_mapped_by_self};
    case Scope::system:
    case Scope::pid_namespace: {
      if (m.proven_unshared) return {false, Reason::unshared};
      if (m.mapped_by_self || m.mapped_by_others > 0) return {true, Reason::mapped};
      // A scan that could not read some processes proves nothing about them;
      // scope namespace leaves the processes outside this PID namespace out.
      const bool unseen = m.uninspected > 0 || m.proc_missing || (m.outside_pid_ns && scope == Scope::system);
      if (unseen && maybe_code(kind)) return {true, Reason::uninspected_elf};
      // Nor does it see the processes of other machines that mount the
      // filesystem; scope namespace leaves them out too.
      if (m.other_machines && scope == Scope::system && maybe_code(kind)) return {true, Reason::other_machines_elf};
      return {false, Reason::not_mapped};
    }
  }
  return {false, Reason::not_mapped};
}

int replacement_flags(int caller_flags) {
  // O_CREAT|O_EXCL never follows a symlink at the last component, so no
  // O_NOFOLLOW is added: F_GETFL would show it, and the fd must look exactly
  // like the one the caller asked for.
  int keep = caller_flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_DIRECTORY | O_TMPFILE | O_PATH);
  return keep | O_CREAT | O_EXCL;
}

int fopen_mode_flags(const char* mode) {
  if (!mode) return -1;
  int flags;
  switch (mode[0]) {
    case 'r': flags = O_RDONLY; break;
    case 'w': flags = O_WRONLY | O_CREAT | O_TRUNC; break;
    case 'a': flags = O_WRONLY | O_CREAT | O_APPEND; break;
    default: return -1;
  }
  // glibc reads up to 7 modifier characters and stops at ',' (",ccs=").
  for (int i = 1; i < 8 && mode[i] && mode[i] != ','; ++i) {
    switch (mode[i]) {
      case '+': flags = (flags & ~O_ACCMODE) | O_RDWR; break;
      case 'x': flags |= O_EXCL; break;
      case 'e': flags |= O_CLOEXEC; break;
      default: break;  // 'b', 't', 'm', 'c': no open(2) flag
    }
  }
  return flags;
}

}  // namespace tg
