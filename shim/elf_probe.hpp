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

// True for the kinds that can be mapped as code, or might be.
inline bool maybe_code(ElfKind k) {
  return k == ElfKind::shared || k == ElfKind::executable || k == ElfKind::unreadable;
}

}  // namespace tg
