// tg_syscall_loop [N]: N calls each of syscall(SYS_gettid), syscall(SYS_futex)
// (a FUTEX_WAKE nobody waits for) and syscall(SYS_getrandom) (8 bytes), timed
// apart; prints ns per call. Run with and without LD_PRELOAD=libtruncguard.so:
// the difference is the cost of the shim's syscall() on the pass-through path.
#define _GNU_SOURCE
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char** argv) {
  const long n = argc > 1 ? atol(argv[1]) : 2000000;
  static int word;
  char buf[8];
  const char* names[] = {"gettid", "futex", "getrandom"};
  for (int which = 0; which < 3; ++which) {
    const double t0 = now();
    for (long i = 0; i < n; ++i) {
      long r = which == 0   ? syscall(SYS_gettid)
               : which == 1 ? syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0)
                            : syscall(SYS_getrandom, buf, sizeof buf, 0);
      if (r < 0) return perror("syscall"), 1;
    }
    printf("%s %.1f ns/call\n", names[which], (now() - t0) / n);
  }
  return 0;
}
