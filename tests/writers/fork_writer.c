/* A program that rewrites a library nobody maps (truncguard proves that with
 * a write lease, for microseconds) in one thread, while another thread forks
 * children that live a while without exec (a prefork server, a worker pool).
 * A child forked while the lease was held inherits an fd on the leased file:
 * the lease must still end when truncguard is done, not when that child exits,
 * or every open of the file (the writer's next one, any process's) waits for
 * the child, up to /proc/sys/fs/lease-break-time (45 s).
 *
 *   fork_writer DEST SRC SECONDS CHILD_MS [vfork]
 *     Copies SRC over DEST (open O_TRUNC, write, close) in a loop for SECONDS,
 *     while the main thread forks children that sleep CHILD_MS and exit.
 *     With "vfork": vforks them (the main thread waits for each; a third
 *     thread reads /proc/locks meanwhile).
 *     Between forks the main thread reads /proc/locks: a lease on DEST that
 *     is being broken is one an open of DEST waits for (nothing else here
 *     takes leases, so it can only be one a write's look left behind).
 *     Prints "writes N, forks N, leases broken N, slowest write MS ms", exits
 *     0, or 2 on an error. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char content[1 << 20];
static ssize_t content_len;
static const char* dest;
static volatile int stop;
static long writes, slowest_us, errors;

/* Whether /proc/locks shows a lease on DEST being broken: "N: LEASE  BREAKING ...
 * MAJ:MIN:INO ...". DEST is truncated in place (nobody maps it), so its inode
 * stays the same. */
static int lease_breaking_on_dest(void) {
  static char buf[1 << 16];
  struct stat st;
  if (stat(dest, &st) != 0) return 0;
  int fd = open("/proc/locks", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  char want[64];
  snprintf(want, sizeof want, " %02x:%02x:%lu ", major(st.st_dev), minor(st.st_dev), (unsigned long)st.st_ino);
  for (char* line = buf; *line;) {
    char* end = strchr(line, '\n');
    if (end) *end = '\0';
    const int found = strstr(line, " LEASE ") && strstr(line, " BREAKING ") && strstr(line, want);
    if (!end || found) return found;
    line = end + 1;
  }
  return 0;
}

static long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

static volatile long broken;

/* vfork mode: the main thread waits in vfork, so another one looks. */
static void* watcher(void* arg) {
  (void)arg;
  while (!stop) {
    usleep(2000);
    broken += lease_breaking_on_dest();
  }
  return NULL;
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
  const int use_vfork = argc == 6 && strcmp(argv[5], "vfork") == 0;
  if (argc != 5 + use_vfork) {
    fprintf(stderr, "usage: fork_writer DEST SRC SECONDS CHILD_MS [vfork]\n");
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
  pthread_t t, w;
  pthread_create(&t, NULL, writer, NULL);
  if (use_vfork) pthread_create(&w, NULL, watcher, NULL);
  long forks = 0;
  while (now_us() < end && !errors) {
    pid_t p = use_vfork ? vfork() : fork();
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
    if (!use_vfork) broken += lease_breaking_on_dest();
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
  }
  stop = 1;
  pthread_join(t, NULL);
  if (use_vfork) pthread_join(w, NULL);
  while (wait(NULL) > 0) {
  }
  printf("writes %ld, %s %ld, leases broken %ld, slowest write %ld ms\n", writes, use_vfork ? "vforks" : "forks", forks,
         broken, slowest_us / 1000);
  return errors ? 2 : 0;
}
