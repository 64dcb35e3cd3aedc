/* A sleeping process that maps libraries executable, as a running service
 * does: the "victims" of the many-file deploy benchmark.
 *
 *   tg_mapper SECONDS READYFILE LIB...
 *
 * dlopen()s every LIB, creates READYFILE, then sleeps until killed (the
 * benchmark script sends SIGTERM) or until SECONDS have passed (a safety net
 * should the script itself be killed). It never wakes up otherwise, so a few
 * hundred of them add no load to the measurement. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: tg_mapper SECONDS READYFILE LIB...\n");
    return 2;
  }
  unsigned seconds = (unsigned)atoi(argv[1]);
  for (int i = 3; i < argc; ++i) {
    if (!dlopen(argv[i], RTLD_NOW | RTLD_LOCAL)) {
      fprintf(stderr, "tg_mapper: %s\n", dlerror());
      return 2;
    }
  }
  int fd = open(argv[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    perror("tg_mapper: READYFILE");
    return 2;
  }
  close(fd);
  alarm(seconds);  /* default action of SIGALRM: terminate */
  for (;;) pause();
}
