#include "elf_probe.hpp"

#include <elf.h>

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
