#include "program_check.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "elf_probe.hpp"

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

std::string why_unprotected(const char* cmd) {
  const std::string path = std::strchr(cmd, '/') ? std::string(cmd) : found_in_path(cmd, true);
  if (path.empty() || access(path.c_str(), X_OK) != 0) return {};  // the exec will fail, and say why
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block
  if (fd < 0) return {};
  char interp[256];
  // Under no_new_privs (systemd's NoNewPrivileges=, docker's
  // no-new-privileges, a Landlock or seccomp sandbox) the exec ignores
  // set-ID bits: the program runs with our IDs, not in secure mode, and
  // loads the library (file capabilities still make it secure).
  const bool setid_applies = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1;
  const NoPreload why = why_no_preload(fd, interp, sizeof interp, setid_applies);
  close(fd);
  if (why == NoPreload::none) return {};
  std::string text = interp[0] ? "runs through " + std::string(interp) + ", which " : std::string();
  text += to_string(why);
  if (secure_mode(why)) return text + ": ld.so ignores LD_PRELOAD for it and removes it from what it starts, "
                                      "so nothing it runs is protected";
  if (why == NoPreload::static_elf)
    return text + ": ld.so never runs for it, so its own writes are not protected "
                  "(the dynamically linked programs it starts are)";
  return text + (why == NoPreload::class32 ? ": the library, built for this machine, can't be loaded into it "
                                             "(ld.so says \"wrong ELF class\")"
                                           : ": the library can't be loaded into it") +
         ", so its own writes are not protected; the programs it starts for this machine are";
}

}  // namespace tg
