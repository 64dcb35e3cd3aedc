/* A process that keeps calling into a dlopen'ed library: the "running
 * service" of the bug report.
 *
 *   victim LIB.so MILLISECONDS [READYFILE]
 *     dlopen(LIB, RTLD_NOW), print "victim: loaded version N", create
 *     READYFILE, then call tg_work() and tg_version() about every
 *     millisecond for MILLISECONDS.  If READYFILE is given and is removed,
 *     the victim makes a few more calls and stops early: tests release it
 *     that way instead of guessing a duration.
 *     The last line says "released" or "time is up".
 *     Exit 0 if the version never changed, 3 if it changed under us (the
 *     code was swapped in place), 2 on usage/load errors; if the code was
 *     destroyed the process dies by a signal (SIGSEGV or SIGBUS).
 *     With TG_VICTIM_LEADER_EXITS=1 in the environment, a second thread makes
 *     the calls and the main thread exits (pthread_exit): a daemon whose
 *     /proc/PID/maps reads empty while it runs the library. With
 *     TG_VICTIM_LEADER_EXITS=traced, a thread named "traced" is made first
 *     and exits once a tracer is attached to it: it stays in the task list,
 *     with no memory, until its tracer reaps it (an exiting thread, held).
 *   victim --once LIB.so
 *     print "version N" and exit 0: what a fresh process loads. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

typedef int (*version_fn)(void);
typedef int (*work_fn)(int);

static void load(const char* lib, version_fn* version, work_fn* work) {
  void* h = dlopen(lib, RTLD_NOW);
  if (!h) {
    fprintf(stderr, "victim: dlopen: %s\n", dlerror());
    exit(2);
  }
  *version = (version_fn)(void (*)(void))dlsym(h, "tg_version");
  *work = (work_fn)(void (*)(void))dlsym(h, "tg_work");
  if (!*version || !*work) {
    fprintf(stderr, "victim: %s lacks tg_version/tg_work\n", lib);
    exit(2);
  }
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void touch(const char* path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    fprintf(stderr, "victim: cannot create %s: %s\n", path, strerror(errno));
    exit(2);
  }
  close(fd);
}

struct calls {
  version_fn version;
  work_fn work;
  int first;
  const char* ready;
  long long duration;
};

/* The calls into the library until the time is up or READYFILE is gone;
 * the exit status. */
static int make_calls(const struct calls* c) {
  const struct timespec tick = {0, 1000 * 1000};
  const long long end = now_ms() + c->duration;
  int released = -1;  /* calls left once READYFILE is gone */
  for (int i = 0; now_ms() < end && released != 0; ++i) {
    c->work(i);  /* first: the PLT call is what an unrelocated GOT kills */
    int v = c->version();
    if (v != c->first) {
      printf("victim: version changed from %d to %d\n", c->first, v);
      return 3;
    }
    if (released > 0) --released;
    else if (released < 0 && c->ready && access(c->ready, F_OK) != 0) released = 5;
    nanosleep(&tick, NULL);
  }
  /* "released" tells a test the calls went on until it said stop. */
  printf("victim: %s, still version %d\n", released == 0 ? "released" : "time is up", c->first);
  return 0;
}

static void* calls_thread(void* c) { exit(make_calls(c)); }

/* Until a tracer is attached to this thread, then return (exit). */
static void* exits_when_traced(void* unused) {
  (void)unused;
  prctl(PR_SET_NAME, "traced");
  for (;;) {
    char buf[4096];
    FILE* f = fopen("/proc/thread-self/status", "r");
    int traced = 0;
    while (f && fgets(buf, sizeof buf, f))
      if (strncmp(buf, "TracerPid:", 10) == 0) traced = atoi(buf + 10) != 0;
    if (f) fclose(f);
    if (traced) return NULL;
    usleep(1000);
  }
}

int main(int argc, char** argv) {
  version_fn version;
  work_fn work;

  if (argc == 3 && strcmp(argv[1], "--once") == 0) {
    load(argv[2], &version, &work);
    work(1);
    printf("version %d\n", version());
    return 0;
  }
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: victim LIB.so MILLISECONDS [READYFILE]\n"
                    "       victim --once LIB.so\n");
    return 2;
  }
  const char* ready = argc == 4 ? argv[3] : NULL;
  long long duration = atoll(argv[2]);

  load(argv[1], &version, &work);
  const int first = version();
  printf("victim: loaded version %d\n", first);
  fflush(stdout);
  if (ready) touch(ready);

  static struct calls c;
  c = (struct calls){version, work, first, ready, duration};
  if (getenv("TG_VICTIM_LEADER_EXITS")) {
    pthread_t t;
    if ((strcmp(getenv("TG_VICTIM_LEADER_EXITS"), "traced") == 0 &&
         pthread_create(&t, NULL, exits_when_traced, NULL) != 0) ||
        pthread_create(&t, NULL, calls_thread, &c) != 0) {
      fprintf(stderr, "victim: pthread_create failed\n");
      return 2;
    }
    pthread_exit(NULL);
  }
  return make_calls(&c);
}
