#include "program_check.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace tg {

std::string found_in_path(const char* name, bool runnable) {
  const char* path = getenv("PATH");
  const std::string dirs = path ? path : "/bin:/usr/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(start, end - start);
    const std::string full = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st;
    if (stat(full.c_str(), &st) == 0 && (!runnable || (S_ISREG(st.st_mode) && access(full.c_str(), X_OK) == 0)))
      return full;
    start = end + 1;
  }
  return {};
}

namespace {

// The class and machine the command was built for: the library's.
bool own_header(Elf64_Ehdr* eh) {
  const int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = pread(fd, eh, sizeof *eh, 0) == static_cast<ssize_t>(sizeof *eh);
  close(fd);
  return ok;
}

// Does ld.so run this program in secure mode (AT_SECURE), where it ignores
// LD_PRELOAD? A set-id bit that changes the effective ids (not on a nosuid
// mount), or file capabilities for a user other than root.
std::string set_id(const std::string& path, const struct stat& st) {
  struct statvfs vfs;
  if (statvfs(path.c_str(), &vfs) == 0 && (vfs.f_flag & ST_NOSUID)) return {};
  if ((st.st_mode & S_ISUID) && st.st_uid != getuid()) return "setuid";
  if ((st.st_mode & S_ISGID) && (st.st_mode & S_IXGRP) && st.st_gid != getgid()) return "setgid";
  if (getuid() != 0 && getxattr(path.c_str(), "security.capability", nullptr, 0) > 0) return "given file capabilities";
  return {};
}

// What the ELF file at `path` is, if the library can't be loaded into it.
std::string why_not_elf(const std::string& path, const unsigned char* head, size_t n, const struct stat& st) {
  if (const std::string how = set_id(path, st); !how.empty())
    return "is " + how + ": ld.so ignores LD_PRELOAD for it and removes it from what it starts, "
           "so nothing it runs is protected";
  Elf64_Ehdr own;
  if (!own_header(&own)) return {};
  if (head[EI_CLASS] != own.e_ident[EI_CLASS]) {
    const bool is32 = head[EI_CLASS] == ELFCLASS32;
    return std::string("is a ") + (is32 ? "32-bit program (ELFCLASS32)" : "program of another ELF class") +
           ": the library, built for this machine, can't be loaded into it (ld.so says \"wrong ELF class\"), "
           "so its own writes are not protected; the programs it starts for this machine are";
  }
  Elf64_Half machine;
  std::memcpy(&machine, head + offsetof(Elf64_Ehdr, e_machine), sizeof machine);
  if (machine != own.e_machine)
    return "is a program for another machine (e_machine " + std::to_string(machine) +
           "): the library can't be loaded into it, so its own writes are not protected";
  if (n < sizeof(Elf64_Ehdr)) return {};
  Elf64_Ehdr eh;
  std::memcpy(&eh, head, sizeof eh);
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) return {};
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  bool interp = false, read_all = eh.e_phentsize == sizeof(Elf64_Phdr);
  for (unsigned i = 0; read_all && i < eh.e_phnum && !interp; ++i) {
    Elf64_Phdr ph;
    read_all = pread(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph)) == sizeof ph;
    interp = read_all && ph.p_type == PT_INTERP;
  }
  close(fd);
  // No PT_INTERP: ET_EXEC, or static-pie (ET_DYN with an entry point; a
  // shared library without one is no program).
  if (!read_all || interp || (eh.e_type == ET_DYN && eh.e_entry == 0)) return {};
  return "is statically linked: ld.so never runs for it, so its own writes are not protected "
         "(the dynamically linked programs it starts are)";
}

std::string check(const std::string& path, int depth) {
  if (access(path.c_str(), X_OK) != 0) return {};  // the exec will fail, and say why
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  unsigned char head[256];
  const ssize_t n = read(fd, head, sizeof head);
  struct stat st;
  const bool stat_ok = fstat(fd, &st) == 0;
  close(fd);
  if (n < 4 || !stat_ok) return {};
  if (n >= EI_NIDENT && std::memcmp(head, ELFMAG, SELFMAG) == 0)
    return why_not_elf(path, head, static_cast<size_t>(n), st);
  // A script: the kernel runs its interpreter (set-id bits on a script are
  // ignored), which is what loads, or can't load, the library.
  if (head[0] != '#' || head[1] != '!' || depth > 0) return {};
  const std::string line(reinterpret_cast<const char*>(head) + 2, static_cast<size_t>(n) - 2);
  const size_t start = line.find_first_not_of(" \t");
  if (start == std::string::npos) return {};
  const size_t end = line.find_first_of(" \t\n", start);
  const std::string interp = line.substr(start, end == std::string::npos ? std::string::npos : end - start);
  const std::string why = check(interp, depth + 1);
  return why.empty() ? why : "runs through " + interp + ", which " + why;
}

}  // namespace

std::string why_unprotected(const char* cmd) {
  const std::string path = std::strchr(cmd, '/') ? std::string(cmd) : found_in_path(cmd, true);
  return path.empty() ? std::string() : check(path, 0);
}

}  // namespace tg
