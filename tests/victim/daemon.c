/* A running executable: the daemon whose binary gets updated under it.
 *
 *   daemon_vN MILLISECONDS [READYFILE]
 *     create READYFILE, then work about every millisecond for MILLISECONDS
 *     (or until READYFILE is removed: "released") and exit 0.
 *   daemon_vN --version
 *     print "daemon version N".
 * Built twice with -DVICTIM_VERSION=1 / =2; v2 is larger (padding), so a
 * partly rewritten binary would not run the same code. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef VICTIM_VERSION
#error "build with -DVICTIM_VERSION=N"
#endif

static int counter;
#if VICTIM_VERSION == 2
static volatile char padding[64 * 1024] = {2};
#endif

/* noinline: a real call into the executable's own text on every tick. */
__attribute__((noinline)) static int work(int x) {
  char buf[64];
  counter++;
  int n = snprintf(buf, sizeof buf, "d%d:%d:%d", VICTIM_VERSION, x, counter);
#if VICTIM_VERSION == 2
  n += padding[(unsigned)counter % sizeof padding];
#endif
  return n + (int)strlen(buf);
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    printf("daemon version %d\n", VICTIM_VERSION);
    return 0;
  }
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: daemon MILLISECONDS [READYFILE]\n       daemon --version\n");
    return 2;
  }
  const char* ready = argc == 3 ? argv[2] : NULL;
  if (ready) {
    int fd = open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      fprintf(stderr, "daemon: cannot create %s: %s\n", ready, strerror(errno));
      return 2;
    }
    close(fd);
  }
  printf("daemon: running version %d\n", VICTIM_VERSION);
  fflush(stdout);

  const struct timespec tick = {0, 1000 * 1000};
  const long long end = now_ms() + atoll(argv[1]);
  int released = -1;
  for (int i = 0; now_ms() < end && released != 0; ++i) {
    work(i);
    if (released > 0) --released;
    else if (released < 0 && ready && access(ready, F_OK) != 0) released = 5;
    nanosleep(&tick, NULL);
  }
  printf("daemon: %s, version %d\n", released == 0 ? "released" : "time is up", VICTIM_VERSION);
  return 0;
}
