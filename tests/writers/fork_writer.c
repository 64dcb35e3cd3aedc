/* A program that rewrites a library nobody maps (truncguard proves that with
 * a write lease, for microseconds) in one thread, while another thread forks
 * children that live a while without exec (a prefork server, a worker pool).
 * A child forked while the lease was held inherits an fd on the leased file:
 * the lease must still end when truncguard is done, not when that child exits,
 * or every open of the file (the writer's next one, any process's) waits for
 * the child, up to /proc/sys/fs/lease-break-time (45 s).
 *
 *   fork_writer DEST SRC SECONDS CHILD_MS
 *     Copies SRC over DEST (open O_TRUNC, write, close) in a loop for SECONDS,
 *     while the main thread forks children that sleep CHILD_MS and exit.
 *     Prints "writes N, forks N, slowest write MS ms", exits 0, or 2 on an error. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char content[1 << 20];
static ssize_t content_len;
static const char* dest;
static volatile int stop;
static long writes, slowest_us, errors;

static long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

static void* writer(void* arg) {
  (void)arg;
  while (!stop) {
    long start = now_us();
    int fd = open(dest, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0 || write(fd, content, (size_t)content_len) != content_len || close(fd) != 0) {
      perror(dest);
      errors++;
      return NULL;
    }
    long took = now_us() - start;
    if (took > slowest_us) slowest_us = took;
    writes++;
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: fork_writer DEST SRC SECONDS CHILD_MS\n");
    return 2;
  }
  dest = argv[1];
  int src = open(argv[2], O_RDONLY);
  if (src < 0 || (content_len = read(src, content, sizeof content)) <= 0) {
    perror(argv[2]);
    return 2;
  }
  close(src);
  const long end = now_us() + atol(argv[3]) * 1000000L;
  const useconds_t child_us = (useconds_t)atol(argv[4]) * 1000;
  pthread_t t;
  pthread_create(&t, NULL, writer, NULL);
  long forks = 0;
  while (now_us() < end && !errors) {
    pid_t p = fork();
    if (p == 0) {
      usleep(child_us);
      _exit(0);
    }
    if (p < 0) {
      perror("fork");
      break;
    }
    forks++;
    usleep(2000); /* the children overlap: one is always alive */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
  }
  stop = 1;
  pthread_join(t, NULL);
  while (wait(NULL) > 0) {
  }
  printf("writes %ld, forks %ld, slowest write %ld ms\n", writes, forks, slowest_us / 1000);
  return errors ? 2 : 0;
}
