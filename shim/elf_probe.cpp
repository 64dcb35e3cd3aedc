#include "elf_probe.hpp"

#include <elf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

#include <cstring>
#include <type_traits>

#include "sys.hpp"

namespace tg {

ElfKind classify_elf(const unsigned char* h, size_t len) {
  if (len < EI_NIDENT + 2) return ElfKind::not_elf;
  if (h[EI_MAG0] != ELFMAG0 || h[EI_MAG1] != ELFMAG1 || h[EI_MAG2] != ELFMAG2 || h[EI_MAG3] != ELFMAG3)
    return ElfKind::not_elf;
  if (h[EI_CLASS] != ELFCLASS32 && h[EI_CLASS] != ELFCLASS64) return ElfKind::other;
  unsigned type;
  if (h[EI_DATA] == ELFDATA2LSB) type = h[16] | (h[17] << 8);
  else if (h[EI_DATA] == ELFDATA2MSB) type = (h[16] << 8) | h[17];
  else return ElfKind::other;
  if (type == ET_DYN) return ElfKind::shared;
  if (type == ET_EXEC) return ElfKind::executable;
  return ElfKind::other;
}

ElfKind probe_elf_fd(int fd) {
  unsigned char h[EI_NIDENT + 2];
  long n;
  do n = sys::pread(fd, h, sizeof h, 0); while (n == -EINTR);
  if (n < 0) return ElfKind::unreadable;
  return classify_elf(h, static_cast<size_t>(n));
}

bool on_kernel_interface_fs(int fd) {
  // statfs f_type values: linux/magic.h, or the kernel source where it has none.
  static constexpr long kTypes[] = {
      SYSFS_MAGIC,    PROC_SUPER_MAGIC, DEBUGFS_MAGIC,      TRACEFS_MAGIC,       SECURITYFS_MAGIC,
      EFIVARFS_MAGIC, BPF_FS_MAGIC,     CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, PSTOREFS_MAGIC,
      BINFMTFS_MAGIC, SELINUX_MAGIC,    SMACK_MAGIC,        XENFS_SUPER_MAGIC,
      0x62656570,  // configfs (fs/configfs/mount.c)
      0x65735543,  // fusectl (fs/fuse/control.c)
      0x19800202,  // mqueue (ipc/mqueue.c)
      0x6e667364,  // nfsd (fs/nfsd/nfsctl.c)
      0x76a9f425,  // ocfs2 dlmfs: an open takes a cluster lock (fs/ocfs2/dlmfs/userdlm.h)
      0xa647361,   // functionfs: USB gadget endpoints (drivers/usb/gadget/function/f_fs.c)
      0xaee71ee7,  // gadgetfs (drivers/usb/gadget/legacy/inode.c)
  };
  const long type = sys::fs_type(fd);
  for (long t : kTypes)
    if (type == t) return true;
  return false;
}

namespace {

// This library's own ELF class and machine: what ld.so can preload it into.
using OwnEhdr = std::conditional_t<sizeof(void*) == 8, Elf64_Ehdr, Elf32_Ehdr>;
using OwnPhdr = std::conditional_t<sizeof(void*) == 8, Elf64_Phdr, Elf32_Phdr>;
constexpr unsigned char kOwnClass = sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32;
#if defined(__x86_64__)
constexpr unsigned kOwnMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kOwnMachine = EM_AARCH64;
#elif defined(__i386__)
constexpr unsigned kOwnMachine = EM_386;
#else
constexpr unsigned kOwnMachine = EM_NONE;  // not checked
#endif

// ld.so's secure mode (AT_SECURE): a set-id bit that changes the effective
// ids (not on a nosuid mount), or file capabilities for a user other than root.
NoPreload secure_mode(int fd, bool setid_applies) {
  struct stat st;
  struct statfs fs;
  if (sys::fstat(fd, &st) < 0 || (sys::call(SYS_fstatfs, fd, &fs) == 0 && (fs.f_flags & ST_NOSUID))) return NoPreload::none;
  const auto ruid = static_cast<uid_t>(sys::call(SYS_getuid));
  if (setid_applies && (st.st_mode & S_ISUID) && st.st_uid != ruid) return NoPreload::setuid;
  if (setid_applies && (st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) &&
      st.st_gid != static_cast<gid_t>(sys::call(SYS_getgid)))
    return NoPreload::setgid;
  if (ruid != 0 && sys::fgetxattr(fd, "security.capability", nullptr, 0) > 0)
    return NoPreload::capabilities;
  return NoPreload::none;
}

NoPreload why_not(int fd, char* interp, size_t len, int depth, bool setid_applies) {
  unsigned char h[sizeof(OwnEhdr) > 128 ? sizeof(OwnEhdr) : 128];
  long n;
  do n = sys::pread(fd, h, sizeof h, 0); while (n == -EINTR);
  // A script's set-id bits are not the kernel's concern: it takes the
  // credentials from the interpreter's file (measured: a setuid script of
  // another user's ran with the caller's uid, and the note said "is setuid").
  const bool script = n >= 2 && h[0] == '#' && h[1] == '!';
  if (!script)
    if (const NoPreload secure = secure_mode(fd, setid_applies); secure != NoPreload::none) return secure;
  if (n >= 4 && script && depth == 0 && interp && len > 1) {
    // The kernel runs the interpreter: the first word of the line.
    size_t i = 2, k = 0;
    while (i < static_cast<size_t>(n) && (h[i] == ' ' || h[i] == '\t')) ++i;
    while (i < static_cast<size_t>(n) && h[i] != ' ' && h[i] != '\t' && h[i] != '\n' && k + 1 < len)
      interp[k++] = static_cast<char>(h[i++]);
    interp[k] = '\0';
    sys::Fd ifd(k == 0 || i == static_cast<size_t>(n) ? -ENOENT  // cut short: in doubt
                                                       : sys::openat(AT_FDCWD, interp, O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    const NoPreload why = ifd.ok() ? why_not(ifd.get(), nullptr, 0, depth + 1, setid_applies) : NoPreload::none;
    if (why == NoPreload::none) interp[0] = '\0';
    return why;
  }
  if (n < static_cast<long>(sizeof(OwnEhdr)) || std::memcmp(h, ELFMAG, SELFMAG) != 0) return NoPreload::none;
  if (h[EI_CLASS] != kOwnClass)
    return h[EI_CLASS] == ELFCLASS32 ? NoPreload::class32 : NoPreload::other_class;
  OwnEhdr eh;
  std::memcpy(&eh, h, sizeof eh);
  if (kOwnMachine != EM_NONE && eh.e_machine != kOwnMachine) return NoPreload::other_machine;
  if ((eh.e_type != ET_EXEC && eh.e_type != ET_DYN) || eh.e_phentsize != sizeof(OwnPhdr)) return NoPreload::none;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    OwnPhdr ph;
    if (sys::pread(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph)) != sizeof ph) return NoPreload::none;
    if (ph.p_type == PT_INTERP) return NoPreload::none;
  }
  // No dynamic loader: ET_EXEC, or static-pie (ET_DYN with an entry point;
  // a shared library without one is no program).
  if (eh.e_type == ET_DYN && eh.e_entry == 0) return NoPreload::none;
  return NoPreload::static_elf;
}

}  // namespace

unsigned hand_over_version(int fd) {
  OwnEhdr eh;
  if (sys::pread(fd, &eh, sizeof eh, 0) != sizeof eh || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != kOwnClass || eh.e_type != ET_DYN || eh.e_phentsize != sizeof(OwnPhdr))
    return 0;
  constexpr size_t kOwnerSize = sizeof kNoteOwner;  // with its NUL, as a note's name is
  constexpr unsigned kMaxNotes = 64;                // looked at in each note segment
  for (unsigned i = 0; i < eh.e_phnum && i < 64; ++i) {
    OwnPhdr ph;
    if (sys::pread(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph)) != sizeof ph) return 0;
    if (ph.p_type != PT_NOTE || ph.p_align > 8) continue;
    const uint64_t align = ph.p_align == 8 ? 8 : 4;
    // Each note: namesz, descsz, type (4 bytes each), the name, the
    // description, each padded to the segment's alignment. A segment holds a
    // few (build-id, ABI tag, properties, ours): a crafted one as long as a
    // huge sparse file, all empty notes, would be walked 12 bytes a read.
    uint64_t at = 0;
    for (unsigned k = 0; k < kMaxNotes && at + 12 <= ph.p_filesz; ++k) {
      struct {
        uint32_t namesz, descsz, type;
        char name[(kOwnerSize + 3) & ~size_t{3}];
        uint32_t desc;
      } n;
      const long got = sys::pread(fd, &n, sizeof n, static_cast<off_t>(ph.p_offset + at));
      if (got < 12) break;
      if (got == static_cast<long>(sizeof n) && n.namesz == kOwnerSize && n.descsz == 4 && n.type == kNoteHandOver &&
          std::memcmp(n.name, kNoteOwner, kOwnerSize) == 0 && align == 4)
        return n.desc;
      at += 12 + ((uint64_t{n.namesz} + align - 1) & ~(align - 1)) + ((uint64_t{n.descsz} + align - 1) & ~(align - 1));
    }
  }
  return 0;
}

NoPreload why_no_preload(int fd, char* interp, size_t len, bool setid_applies) {
  if (interp && len) interp[0] = '\0';
  return why_not(fd, interp, len, 0, setid_applies);
}

const char* to_string(NoPreload r) {
  switch (r) {
    case NoPreload::none: return "can load it";
    case NoPreload::static_elf: return "is statically linked";
    case NoPreload::class32: return "is a 32-bit program (ELFCLASS32)";
    case NoPreload::other_class: return "is of another ELF class";
    case NoPreload::other_machine: return "is a program for another machine";
    case NoPreload::setuid: return "is setuid";
    case NoPreload::setgid: return "is setgid";
    case NoPreload::capabilities: return "has file capabilities";
  }
  return "?";
}

const char* to_string(ElfKind k) {
  switch (k) {
    case ElfKind::not_elf: return "not ELF";
    case ElfKind::other: return "ELF but not a shared object or executable";
    case ElfKind::shared: return "ELF shared object";
    case ElfKind::executable: return "ELF executable";
    case ElfKind::unreadable: return "header unreadable";
  }
  return "?";
}

}  // namespace tg
