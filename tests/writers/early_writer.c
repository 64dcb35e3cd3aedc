/* libearly_writer.so: a preloaded library whose constructor overwrites a file
 * (TG_EARLY_DEST with TG_EARLY_SRC's bytes, via open(O_TRUNC)) before the
 * program's main() and, listed after libtruncguard.so in LD_PRELOAD, before
 * truncguard's own constructor has run (ld.so initialises the later preload
 * first). The shim must already protect that write. With TG_EARLY_SYSCALL set,
 * the open is libc's syscall(SYS_openat, ...): the shim's syscall() before
 * its constructor has resolved the next one. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((constructor)) static void early_write(void) {
  const char* dest = getenv("TG_EARLY_DEST");
  const char* src = getenv("TG_EARLY_SRC");
  if (!dest || !src) return;
  int in = open(src, O_RDONLY);
  int out = getenv("TG_EARLY_SYSCALL") ? (int)syscall(SYS_openat, AT_FDCWD, dest, O_WRONLY | O_TRUNC)
                                       : open(dest, O_WRONLY | O_TRUNC);
  if (in < 0 || out < 0) {
    perror("early_writer: open");
    _exit(1);
  }
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) _exit(1);
  close(in);
  close(out);
  fprintf(stderr, "early_writer: wrote %s from a constructor\n", dest);
}
