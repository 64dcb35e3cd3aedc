// The cheap filter: is this file an ELF shared object or executable at all?
// Most O_TRUNC opens are of text or object files (ET_REL), never mapped for code.
#pragma once

#include <cstddef>

namespace tg {

enum class ElfKind {
  not_elf,     // no ELF magic (text, archives, images...)
  other,       // ELF, but relocatable object or core dump: never loaded as code
  shared,      // ET_DYN: shared object or PIE executable
  executable,  // ET_EXEC
  unreadable,  // could not read the header: counts as "may be ELF"
};

// Classifies the first bytes of a file (at least 18 are needed).
ElfKind classify_elf(const unsigned char* header, size_t len);

// Opens nothing: reads the header from an fd the caller opened for reading.
ElfKind probe_elf_fd(int fd);

const char* to_string(ElfKind k);

// Is the file open at fd on a kernel interface filesystem (sysfs, procfs,
// debugfs, cgroupfs, configfs, efivarfs...)? None of its files is code, and
// reading one runs kernel code: a driver's show(), which may block, talk to
// the hardware or clear a counter, or fail (a write-only attribute).
bool on_kernel_interface_fs(int fd);

// Why ld.so can't preload this library into a program.
enum class NoPreload {
  none,           // it can (or that can't be told: not ELF, unreadable: in doubt, it can)
  static_elf,     // no dynamic loader: ld.so never runs
  class32,        // another ELF class: ld.so says "wrong ELF class" and goes on without it
  other_class,
  other_machine,
  setuid,         // secure mode (AT_SECURE): ld.so ignores LD_PRELOAD, and drops it
  setgid,
  capabilities,   // file capabilities, for a user other than root
};
// "is statically linked", "is setuid"...
const char* to_string(NoPreload r);
inline bool secure_mode(NoPreload r) {
  return r == NoPreload::setuid || r == NoPreload::setgid || r == NoPreload::capabilities;
}

// Why ld.so can't preload this library into the program in `fd` (a file
// about to be exec'ed, open for reading). A #! script is judged by its
// interpreter (one level): the reason is then the interpreter's, and its
// path is in `interp` (otherwise ""). Raw system calls, no allocation, under
// 1 KiB of stack: it runs at exec, in vfork children too. `setid_applies`
// false: the exec will ignore set-user-ID and set-group-ID bits (the caller
// runs with no_new_privs, which the command asks prctl about; the library
// asks nothing the program would not).
NoPreload why_no_preload(int fd, char* interp, size_t len, bool setid_applies = true);

// The library marks itself with an ELF note (owner "truncguard", in a
// PT_NOTE segment) whose 4-byte description is the version of the atomic
// mode's exec hand-over it reads and writes (TRUNCGUARD_PENDING's format),
// so that another build of it, put at its path by an upgrade, can be told
// from another library there, and from a build of another format.
constexpr char kNoteOwner[] = "truncguard";
constexpr unsigned kNoteHandOver = 1;  // the note's type
// That version in the ELF file open at `fd` (for reading), or 0 where it has
// no such note (another library, a build older than the note) or can't be
// read. Raw system calls, no allocation, a few hundred bytes of stack: it
// runs at exec, in vfork children too.
unsigned hand_over_version(int fd);

// True for the kinds that can be mapped as code, or might be.
inline bool maybe_code(ElfKind k) {
  return k == ElfKind::shared || k == ElfKind::executable || k == ElfKind::unreadable;
}

}  // namespace tg
