/* A program whose threads are cancelled (pthread_cancel, deferred) in the
 * middle of their writes: eight threads copy SRC over the libraries given, the
 * main thread cancels one at a random moment every few milliseconds, joins it
 * and starts another. Cancellation points inside truncguard's work (its short
 * waits while another thread holds the file's lease) must act as they would
 * in the program's own calls, never hang.
 *
 *   cancel_writer --leased SRC ROUNDS LIB
 *     Each round, SRC is copied over LIB, then a child process takes a write lease on LIB (as Samba's
 *     oplocks) and keeps it 30 ms; a thread opens LIB O_TRUNC meanwhile (the
 *     open waits for the lease), and is cancelled 1 ms later. The cancel must
 *     end the thread: prints "cancelled N while waiting on a lease", exits 0,
 *     or 3 (with a message) if a cancelled thread is still there 10 s later.
 *   cancel_writer SRC SECONDS LIB...
 *     Prints "cancelled N, fds BEFORE -> AFTER" (the program's open fds before
 *     the first thread and after the last join; glibc's open can lose the fd
 *     it made to a cancel, so they are only shown) and exits 0, or 2 on an
 *     error. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "open_fds.h"

static char content[1 << 20];
static ssize_t content_len;
static char** libs;
static int nlibs;
static volatile int stop, errors;

static void close_fd(void* p) {
  if (*(int*)p >= 0) close(*(int*)p);
}

static void* writer(void* arg) {
  unsigned seed = (unsigned)(long)arg;
  while (!stop) {
    const char* lib = libs[rand_r(&seed) % nlibs];
    int fd = -1, old;
    pthread_cleanup_push(close_fd, &fd);
    fd = open(lib, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0 || write(fd, content, (size_t)content_len) != content_len) {
      perror(lib);
      errors = 1;
    }
    pthread_cleanup_pop(0);
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    if (fd >= 0 && close(fd) != 0) errors = 1;
    pthread_setcancelstate(old, NULL);
  }
  return NULL;
}

static void hung(int sig) {
  (void)sig;
  static const char msg[] = "a cancelled thread was still waiting 10 s later\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(3);
}

static void* open_leased(void* arg) {
  int fd = open((const char*)arg, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd >= 0) close(fd);
  return NULL;
}

static int leased(const char* lib, int rounds) {
  signal(SIGALRM, hung);
  for (int i = 0; i < rounds; ++i) {
    int fd = open(lib, O_WRONLY | O_TRUNC | O_CLOEXEC); /* a library again (the last round's open emptied it) */
    if (fd < 0 || write(fd, content, (size_t)content_len) != content_len || close(fd) != 0) {
      perror(lib);
      return 2;
    }
    int ready[2];
    if (pipe(ready) != 0) return 2;
    pid_t holder = fork();
    if (holder == 0) {
      int fd = open(lib, O_RDONLY);
      /* The break signal ignored (SIGIO would end the holder at once). */
      if (fd < 0 || fcntl(fd, F_SETSIG, SIGURG) != 0 || fcntl(fd, F_SETLEASE, F_WRLCK) != 0) _exit(77);
      (void)!write(ready[1], "x", 1);
      usleep(30000);
      _exit(0); /* the lease ends with the process */
    }
    char c;
    close(ready[1]);
    if (read(ready[0], &c, 1) != 1) {
      int st;
      waitpid(holder, &st, 0);
      fprintf(stderr, "no write lease on %s here\n", lib);
      return WIFEXITED(st) && WEXITSTATUS(st) == 77 ? 77 : 2;
    }
    close(ready[0]);
    pthread_t t;
    pthread_create(&t, NULL, open_leased, (void*)lib);
    usleep(1000);
    pthread_cancel(t);
    alarm(10);
    pthread_join(t, NULL);
    alarm(0);
    waitpid(holder, NULL, 0);
  }
  printf("cancelled %d while waiting on a lease\n", rounds);
  return 0;
}

int main(int argc, char** argv) {
  const int lease_rounds = argc == 5 && strcmp(argv[1], "--leased") == 0;
  argv += lease_rounds;
  argc -= lease_rounds;
  if (argc < 4) {
    fprintf(stderr, "usage: cancel_writer [--leased] SRC SECONDS|ROUNDS LIB...\n");
    return 2;
  }
  int src = open(argv[1], O_RDONLY);
  if (src < 0 || (content_len = read(src, content, sizeof content)) <= 0) {
    perror(argv[1]);
    return 2;
  }
  close(src);
  if (lease_rounds) return leased(argv[3], atoi(argv[2]));
  libs = argv + 3;
  nlibs = argc - 3;
  const time_t end = time(NULL) + atoi(argv[2]);
  const int before = open_fds();
  enum { kThreads = 8 };
  pthread_t t[kThreads];
  long started = 0, cancelled = 0;
  for (int i = 0; i < kThreads; ++i) pthread_create(&t[i], NULL, writer, (void*)++started);
  unsigned seed = 1;
  while (time(NULL) < end && !errors) {
    usleep(rand_r(&seed) % 3000);
    const int k = rand_r(&seed) % kThreads;
    pthread_cancel(t[k]);
    pthread_join(t[k], NULL);
    ++cancelled;
    pthread_create(&t[k], NULL, writer, (void*)++started);
  }
  stop = 1;
  for (int i = 0; i < kThreads; ++i) pthread_join(t[i], NULL);
  printf("cancelled %ld, fds %d -> %d\n", cancelled, before, open_fds());
  return errors ? 2 : 0;
}
