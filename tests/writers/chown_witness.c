/* libchown_witness.so: a preload that, at each fchown of a regular file,
 * appends "UID:GID MODE" of that file just before the chown to the file
 * named by TG_CHOWN_WITNESS: what a file given to another owner was until
 * then (tests/e2e/metadata_window.sh). Listed after libtruncguard.so in
 * LD_PRELOAD, it sees the shim's fchown of the new inode. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int fchown(int fd, uid_t uid, gid_t gid) {
  int (*real)(int, uid_t, gid_t) = (int (*)(int, uid_t, gid_t))dlsym(RTLD_NEXT, "fchown");
  const char* out = getenv("TG_CHOWN_WITNESS");
  struct stat st;
  if (out && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    char line[64];
    const int n = snprintf(line, sizeof line, "%u:%u %o\n", (unsigned)st.st_uid, (unsigned)st.st_gid,
                           (unsigned)(st.st_mode & 07777));
    const int w = open(out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (w >= 0) {
      if (write(w, line, (size_t)n) != n) abort();
      close(w);
    }
  }
  return real ? real(fd, uid, gid) : -1;
}
