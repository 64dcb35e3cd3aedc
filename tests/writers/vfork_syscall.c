/* vfork_syscall SLOW_LIB: a vfork child's syscall() must not wait for the
 * loader's lock that another thread holds (a multi-threaded program spawning
 * children: vfork, close the fds above its own, exec). A thread dlopens
 * SLOW_LIB, whose constructor sleeps holding that lock; meanwhile a vfork
 * child calls syscall(SYS_close_range), then (the proof that the lock was
 * held then) another calls dlsym. Prints "close_range MS ms, dlsym MS ms". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void* load(void* lib) {
  if (!dlopen(lib, RTLD_NOW)) fprintf(stderr, "vfork_syscall: %s\n", dlerror());
  return NULL;
}

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* How long a vfork child making call `which` held its parent. */
static long vfork_child_ms(int which) {
  const long t0 = now_ms();
  const pid_t pid = vfork();
  if (pid == 0) {
    if (which == 0) syscall(SYS_close_range, 1000, 1000, 0);
    else dlsym(RTLD_DEFAULT, "vfork_syscall_none");
    _exit(0);
  }
  const long ms = now_ms() - t0;
  waitpid(pid, NULL, 0);
  return ms;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: vfork_syscall SLOW_LIB\n");
    return 2;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, load, argv[1]) != 0) return 2;
  usleep(300000);  /* the loading thread is in the constructor by now */
  const long close_range_ms = vfork_child_ms(0);
  const long dlsym_ms = vfork_child_ms(1);
  pthread_join(t, NULL);
  printf("close_range %ld ms, dlsym %ld ms\n", close_range_ms, dlsym_ms);
  return 0;
}
