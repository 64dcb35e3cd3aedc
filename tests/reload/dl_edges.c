/* dl_edges STEP...: dlopen, dlsym, dlclose at their edges; one line per step,
 * so a run without truncguard and one with it can be compared line by line.
 *   open:FLAGS:PATH     dlopen; PATH "NULL" is NULL, "LONG:N:PREFIX" is PREFIX
 *                       and N times 'a'. FLAGS: l LAZY, n NOW, g GLOBAL,
 *                       L NOLOAD, d NODELETE, b DEEPBIND, x an invalid bit,
 *                       0 none. Prints "new #K" or "same as #K" (the handle
 *                       table) or NULL, then errno and dlerror()
 *   mopen:FLAGS:PATH    dlmopen(LM_ID_NEWLM, ...)
 *   topen:FLAGS:PATH    dlopen from a thread that then ends (no other dl
 *                       call in it); the handle is main's
 *   wopen:FLAGS:PATH    the same from a thread that then waits, alive, with
 *                       no other dl call, until the program exits
 *   close:K             dlclose handle #K
 *   keys                pthread_key_create until it fails: prints how many
 *                       keys the program could make
 *   closefake:NAME      dlclose of a handle that is not one (zeroed memory
 *                       whose l_name is NAME): glibc fails, "NAME: shared
 *                       object not open"
 *   closenull           dlclose(NULL) (glibc crashes)
 *   keeperr:PATH        dlopen PATH (meant to fail), then the first calls of
 *                       functions the shim wraps (invalid fds, a missing path:
 *                       no effect), then prints dlerror()
 *   chdir:DIR           chdir(DIR)
 *   openclose:PATH      dlopen(PATH, RTLD_NOW) and dlclose it (no handle kept)
 *   sym:K:NAME          dlsym(handle #K, NAME)
 *   run:CMD             system(CMD)
 *   atexit:PATH         at exit, an atexit handler dlopens PATH, looks up
 *                       tg_version, calls it and dlcloses it
 *   threads:N:SECS:A:B  N threads dlopen/dlsym/dlopen(NOLOAD)/dlclose/dlclose
 *                       A (even threads) or B (odd ones) for SECS seconds
 *   reopen:N:SECS:A     N threads dlopen A (RTLD_NOW), call its tg_version
 *                       and dlclose it, for SECS seconds; prints the first
 *                       failure's dlerror()
 *   racepin:A           a thread's dlclose of A (one of two handles) stalls in
 *                       the shim while it writes its log line (stderr is a
 *                       full pipe); meanwhile main closes the other handle
 *                       with glibc's own dlclose, so A unloads, keeps the page
 *                       of A's old .dynamic mapped PROT_NONE and loads A
 *                       again, elsewhere; then lets the thread go on
 *   sigopen:WHERE:A     dlopen A while a signal handler dlopens and dlcloses A;
 *                       SIGUSR1 is sent once main waits in the shim's log
 *                       write (WHERE "shim": stderr is a full pipe, which the
 *                       handler drains) or for glibc's loader lock after it
 *                       ("glibc": a thread dlopens $TG_CTOR_WAIT, whose
 *                       constructor waits until the handler has run 0.2 s);
 *                       prints both versions (or the dlerror()), then
 *                       dlcloses main's handle
 *   forks:N:A:B         a thread does dlopen/dlclose of B (kept loaded by a
 *                       handle of main's) while main forks N children that
 *                       dlopen A; a child found asleep in a futex wait
 *                       counts as hung (and ends the step): it has no other
 *                       thread to wake it. (Not a child slow for 2 s: a
 *                       loaded machine made that a hang.) One still alive
 *                       after 60 s counts as hung too.
 * errno is set to 777 before each step: the shim must leave it as glibc does. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void* handles[256];
static int n_handles;

static int flags_of(const char* s) {
  int m = 0;
  for (; *s && *s != ':'; ++s) switch (*s) {
      case 'l': m |= RTLD_LAZY; break;
      case 'n': m |= RTLD_NOW; break;
      case 'g': m |= RTLD_GLOBAL; break;
      case 'L': m |= RTLD_NOLOAD; break;
      case 'd': m |= RTLD_NODELETE; break;
      case 'b': m |= RTLD_DEEPBIND; break;
      case 'x': m |= 0x100000; break;
    }
  return m;
}

static const char* after(const char* s, int colons) {
  while (colons-- > 0) {
    s = strchr(s, ':');
    if (!s) return "";
    ++s;
  }
  return s;
}

static char* path_of(const char* p) {
  if (!strcmp(p, "NULL")) return NULL;
  if (strncmp(p, "LONG:", 5)) return strdup(p);
  int k = atoi(p + 5);
  const char* prefix = after(p, 2);
  size_t len = strlen(prefix);
  char* s = malloc(len + k + 1);
  memcpy(s, prefix, len);
  memset(s + len, 'a', k);
  s[len + k] = '\0';
  return s;
}

static void show_handle(const char* step, void* h) {
  const int e = errno;
  const char* err = dlerror();
  int k = -1;
  for (int i = 0; i < n_handles; ++i)
    if (handles[i] == h) k = i;
  if (h && k < 0 && n_handles < 256) {
    handles[n_handles] = h;
    printf("%s -> new #%d", step, n_handles++);
  } else if (h) {
    printf("%s -> same as #%d", step, k);
  } else {
    printf("%s -> NULL", step);
  }
  printf(" errno=%d dlerror=%s\n", e, err ? err : "(null)");
}

static void show_result(const char* step, int r) {
  const int e = errno;
  const char* err = dlerror();
  printf("%s -> %d errno=%d dlerror=%s\n", step, r, e, err ? err : "(null)");
}

static const char* at_exit_lib;
static void at_exit(void) {
  errno = 777;
  void* h = dlopen(at_exit_lib, RTLD_NOW);
  int (*v)(void) = h ? (int (*)(void))dlsym(h, "tg_version") : NULL;
  int version = v ? v() : -1;
  int closed = h ? dlclose(h) : -9;
  const char* err = dlerror();
  printf("atexit: version %d, dlclose %d, errno=%d dlerror=%s\n", version, closed, errno, err ? err : "(null)");
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static volatile int stop;
static const char* thread_lib[2];
static int worker_failed;

static void* worker(void* arg) {
  const char* lib = thread_lib[(long)arg & 1];
  while (!stop) {
    void* h = dlopen(lib, RTLD_NOW | (((long)arg & 2) ? RTLD_GLOBAL : 0));
    void* again = h ? dlopen(lib, RTLD_NOW | RTLD_NOLOAD) : NULL;
    if (!h || again != h || !dlsym(h, "tg_version") || dlclose(again) || dlclose(h)) {
      worker_failed = 1;
      return NULL;
    }
  }
  return NULL;
}

static void threads(const char* step) {
  int n = atoi(after(step, 1));
  double secs = atof(after(step, 2));
  char* a = strdup(after(step, 3));
  char* b = strchr(a, ':');
  if (!b || n < 1 || n > 64) { printf("%s -> bad step\n", step); exit(2); }
  *b++ = '\0';
  thread_lib[0] = a;
  thread_lib[1] = b;
  pthread_t t[64];
  stop = 0;
  for (long i = 0; i < n; ++i) pthread_create(&t[i], NULL, worker, (void*)i);
  const double end = now() + secs;
  while (now() < end) usleep(10000);
  stop = 1;
  for (int i = 0; i < n; ++i) pthread_join(t[i], NULL);
  printf("threads -> %s\n", worker_failed ? "a dlopen, dlsym or dlclose failed" : "all worked");
}

static const char* topen_path;
static int topen_flags;
static void* topen_thread(void* arg) {
  (void)arg;
  return dlopen(topen_path, topen_flags);
}
static void* volatile wopen_handle;
static volatile int wopen_done;
static void* wopen_thread(void* arg) {
  (void)arg;
  wopen_handle = dlopen(topen_path, topen_flags);
  wopen_done = 1;
  for (;;) pause();
  return NULL;
}

static char reopen_error[512];
static void* reopen_worker(void* arg) {
  const char* lib = arg;
  while (!stop) {
    void* h = dlopen(lib, RTLD_NOW);
    int (*v)(void) = h ? (int (*)(void))dlsym(h, "tg_version") : NULL;
    const char* err = !h || !v ? dlerror() : NULL;
    if ((!v || v() < 1 || dlclose(h)) && !reopen_error[0])
      snprintf(reopen_error, sizeof reopen_error, "%s", err ? err : "tg_version or dlclose failed");
  }
  return NULL;
}

static void reopen(const char* step) {
  int n = atoi(after(step, 1));
  double secs = atof(after(step, 2));
  if (n < 1 || n > 64) { printf("%s -> bad step\n", step); exit(2); }
  pthread_t t[64];
  stop = 0;
  for (int i = 0; i < n; ++i) pthread_create(&t[i], NULL, reopen_worker, (void*)after(step, 3));
  const double end = now() + secs;
  while (now() < end) usleep(10000);
  stop = 1;
  for (int i = 0; i < n; ++i) pthread_join(t[i], NULL);
  printf("reopen -> %s\n", reopen_error[0] ? reopen_error : "all worked");
}

static void* racepin_handle;
static volatile pid_t racepin_tid;
static volatile int racepin_done;
static void* racepin_close(void* arg) {
  (void)arg;
  racepin_tid = (pid_t)syscall(SYS_gettid);
  int r = dlclose(racepin_handle);
  racepin_done = 1 + (r != 0);
  return NULL;
}
/* stderr becomes a full pipe (p[1]; p[0] reads it): the shim's next log
 * write blocks. Returns a copy of the former stderr. */
static int stderr_to_full_pipe(int p[2]) {
  if (pipe(p)) exit(2);
  fcntl(p[1], F_SETPIPE_SZ, 4096);
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  char junk[512];
  memset(junk, '.', sizeof junk);
  while (write(p[1], junk, sizeof junk) > 0) {}
  fcntl(p[1], F_SETFL, 0);
  const int saved_stderr = dup(2);
  dup2(p[1], 2);
  return saved_stderr;
}
static void drain(int fd) {
  char buf[4096];
  const int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  while (read(fd, buf, sizeof buf) > 0) {}
  fcntl(fd, F_SETFL, fl);
}

/* sigopen: a signal handler's dlopen/dlclose in the middle of main's dlopen,
 * inside the shim (main waits in the shim's log write: stderr is a full
 * pipe) or inside glibc (main waits for the loader's lock, which another
 * thread holds in a constructor until the handler has run a while) */
static const char* sig_lib;
static const char* sig_slow;  /* in glibc: the plugin whose constructor waits */
static int sig_pipe[2], sig_saved_stderr, ctor_go[2], ctor_ready[2];
static volatile int sig_version = -2;
static void sig_handler(int sig) {
  (void)sig;
  const int e = errno;
  drain(sig_pipe[0]);
  void* h = dlopen(sig_lib, RTLD_NOW);
  int (*v)(void) = h ? (int (*)(void))dlsym(h, "tg_version") : NULL;
  sig_version = v ? v() : -1;
  if (h) dlclose(h);
  errno = e;
}
static pthread_t sig_main;
static volatile pid_t sig_main_tid;
static volatile int sig_stalled;
static int waits_in(pid_t tid, const char* what) {
  char path[64], wchan[64] = "";
  snprintf(path, sizeof path, "/proc/self/task/%d/wchan", (int)tid);
  FILE* f = fopen(path, "r");
  if (!f) return 0;
  if (!fgets(wchan, sizeof wchan, f)) wchan[0] = 0;
  fclose(f);
  return strstr(wchan, what) != NULL;
}
static int wait_until_waits_in(pid_t tid, const char* what) {
  const double end = now() + 5;
  while (now() < end && !stop)
    if (waits_in(tid, what)) return 1;
    else usleep(1000);
  return 0;
}
static void* slow_open(void* arg) {
  void* h = dlopen(arg, RTLD_NOW);
  char c = 'd';  /* done: wakes the watcher even if the constructor never ran */
  if (write(ctor_ready[1], &c, 1) != 1) exit(2);
  return h;
}
static void* sig_watch(void* arg) {
  (void)arg;
  if (!(sig_stalled = wait_until_waits_in(sig_main_tid, "pipe"))) return NULL;
  if (!sig_slow) {
    pthread_kill(sig_main, SIGUSR1);
    return NULL;
  }
  pthread_t t;
  char c;
  pthread_create(&t, NULL, slow_open, (void*)sig_slow);
  sig_stalled = read(ctor_ready[0], &c, 1) == 1;  /* it holds the loader's lock */
  dup2(sig_saved_stderr, 2);
  drain(sig_pipe[0]);  /* main goes on into glibc's dlopen, and waits for the lock */
  if ((sig_stalled = sig_stalled && wait_until_waits_in(sig_main_tid, "futex"))) {
    pthread_kill(sig_main, SIGUSR1);
    usleep(200000);  /* the handler's dl calls wait for the lock too */
  }
  c = 'g';
  if (write(ctor_go[1], &c, 1) != 1) exit(2);
  pthread_join(t, NULL);
  return NULL;
}
static void sigopen(const char* step) {
  sig_lib = after(step, 2);
  sig_slow = !strncmp(after(step, 1), "glibc:", 6) ? getenv("TG_CTOR_WAIT") : NULL;
  if (sig_slow) {
    char fds[32];
    if (pipe(ctor_go) || pipe(ctor_ready)) exit(2);
    snprintf(fds, sizeof fds, "%d %d", ctor_go[0], ctor_ready[1]);
    setenv("TG_CTOR_FDS", fds, 1);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = sig_handler;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  sig_main = pthread_self();
  sig_main_tid = (pid_t)syscall(SYS_gettid);
  sig_saved_stderr = stderr_to_full_pipe(sig_pipe);
  stop = 0;
  pthread_t t;
  pthread_create(&t, NULL, sig_watch, NULL);
  void* h = dlopen(sig_lib, RTLD_NOW);
  stop = 1;
  int (*v)(void) = h ? (int (*)(void))dlsym(h, "tg_version") : NULL;
  const int version = v ? v() : -1;
  const char* err = h ? NULL : dlerror();
  dup2(sig_saved_stderr, 2);
  drain(sig_pipe[0]);
  pthread_join(t, NULL);
  const int closed = h ? dlclose(h) : -9;
  printf("sigopen -> %s; dlopen: ", sig_stalled ? "stalled" : "not stalled");
  if (v) printf("version %d", version);
  else printf("NULL (%s)", err ? err : "no tg_version");
  printf("; the handler's: %d; dlclose %d\n", sig_version, closed);
}

static void racepin(const char* step) {
  const char* lib = after(step, 1);
  /* glibc's own dlopen and dlclose, not the shim's: main must not write a
   * log line while the thread holds the pipe full */
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  void* (*real_open)(const char*, int) = libc ? (void* (*)(const char*, int))dlsym(libc, "dlopen") : NULL;
  int (*real_close)(void*) = libc ? (int (*)(void*))dlsym(libc, "dlclose") : NULL;
  void* h1 = dlopen(lib, RTLD_NOW);
  void* h2 = dlopen(lib, RTLD_NOW);
  if (!real_open || !real_close || !h1 || h2 != h1) { printf("%s -> setup failed\n", step); exit(2); }
  const uintptr_t dynamic = (uintptr_t)((struct link_map*)h1)->l_ld;
  int p[2];
  const int saved_stderr = stderr_to_full_pipe(p);
  racepin_handle = h1;
  pthread_t t;
  pthread_create(&t, NULL, racepin_close, NULL);
  /* until its dlclose is done (no shim) or it waits on the pipe (the shim) */
  const double end = now() + 5;
  int stalled = 0;
  while (now() < end && !racepin_done && !(stalled = racepin_tid && waits_in(racepin_tid, "pipe"))) usleep(1000);
  real_close(h2);
  void* gone = real_open(lib, RTLD_NOW | RTLD_NOLOAD);
  const long page = sysconf(_SC_PAGESIZE);
  void* hole = mmap((void*)(dynamic & ~(uintptr_t)(page - 1)), page, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  void* h3 = real_open(lib, RTLD_NOW);
  dup2(saved_stderr, 2);
  while (!racepin_done) {
    drain(p[0]);
    usleep(1000);
  }
  pthread_join(t, NULL);
  printf("racepin -> the thread's dlclose %s; %s; unloaded %s; old .dynamic %s; reloaded %s\n",
         racepin_done == 1 ? "worked" : "failed", stalled ? "stalled" : "not stalled", gone ? "no" : "yes",
         hole == MAP_FAILED ? "not held" : "held", h3 ? "yes" : "no");
  if (gone) real_close(gone);
  if (h3) real_close(h3);
  if (hole != MAP_FAILED) munmap(hole, page);
}

/* Is the process `pid`, a forked child with one thread, asleep in a futex
 * wait (a lock that a thread of its parent held at the fork)? Nothing will
 * ever wake it. (Its kernel function, /proc/PID/wchan: futex_do_wait here,
 * futex_wait_queue on older kernels; "0" while it runs.) */
static int asleep_in_futex(pid_t pid) {
  char path[64], buf[128] = "";
  snprintf(path, sizeof path, "/proc/%d/wchan", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n > 0) buf[n] = '\0';
  return strstr(buf, "futex") != NULL;
}

static void forks(const char* step) {
  int n = atoi(after(step, 1));
  char* a = strdup(after(step, 2));
  char* b = strchr(a, ':');
  if (!b) { printf("%s -> bad step\n", step); exit(2); }
  *b++ = '\0';
  /* main keeps B loaded: the thread's dlopen/dlclose only count, so glibc's
   * own locks are never held across a fork (glibc does not make a child
   * safe from a load in progress in another thread) */
  void* keep = dlopen(b, RTLD_NOW);
  if (!keep) { printf("%s -> dlopen(%s) failed\n", step, b); exit(2); }
  thread_lib[0] = thread_lib[1] = b;
  stop = 0;
  pthread_t t;
  pthread_create(&t, NULL, worker, (void*)0);
  int hung = 0, failed = 0;
  for (int i = 0; i < n; ++i) {
    pid_t p = fork();
    if (p == 0) {
      void* h = dlopen(a, RTLD_NOW);
      _exit(h && dlsym(h, "tg_version") && dlclose(h) == 0 ? 0 : 3);
    }
    int st = 0, stuck = 0;
    const double give_up = now() + 60;  /* a last resort: never a measure of slowness */
    while (waitpid(p, &st, WNOHANG) == 0) {
      if (asleep_in_futex(p) || now() > give_up) {
        stuck = 1;
        kill(p, SIGKILL);
        waitpid(p, &st, 0);
        break;
      }
      usleep(200);
    }
    if (stuck) {
      ++hung;
      break;
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      ++failed;
    }
  }
  stop = 1;
  pthread_join(t, NULL);
  dlclose(keep);
  printf("forks -> %d hung, %d failed%s\n", hung, failed, worker_failed ? ", the thread failed" : "");
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  for (int i = 1; i < argc; ++i) {
    const char* step = argv[i];
    errno = 777;
    if (!strncmp(step, "open:", 5) || !strncmp(step, "mopen:", 6)) {
      char* path = path_of(after(step, 2));
      void* h = step[0] == 'm' ? dlmopen(LM_ID_NEWLM, path, flags_of(after(step, 1)))
                               : dlopen(path, flags_of(after(step, 1)));
      show_handle(step, h);
      free(path);
    } else if (!strncmp(step, "topen:", 6)) {
      char* path = path_of(after(step, 2));
      topen_path = path;
      topen_flags = flags_of(after(step, 1));
      pthread_t t;
      void* h = NULL;
      if (pthread_create(&t, NULL, topen_thread, NULL) == 0) pthread_join(t, &h);
      show_handle(step, h);
      free(path);
    } else if (!strncmp(step, "wopen:", 6)) {
      char* path = path_of(after(step, 2));
      topen_path = path;
      topen_flags = flags_of(after(step, 1));
      pthread_t t;
      if (pthread_create(&t, NULL, wopen_thread, NULL) == 0)
        while (!wopen_done) usleep(1000);
      show_handle(step, wopen_handle);
    } else if (!strncmp(step, "close:", 6)) {
      int k = atoi(after(step, 1));
      if (k < 0 || k >= n_handles) { printf("%s -> no such handle\n", step); return 2; }
      show_result(step, dlclose(handles[k]));
    } else if (!strncmp(step, "closefake:", 10)) {
      static char fake[8192] __attribute__((aligned(64)));
      memset(fake, 0, sizeof fake);
      *(const char**)(fake + 8) = after(step, 1);  /* l_name */
      show_result(step, dlclose(fake));
    } else if (!strncmp(step, "chdir:", 6)) {
      printf("%s -> %d\n", step, chdir(after(step, 1)));
    } else if (!strncmp(step, "openclose:", 10)) {
      void* h = dlopen(after(step, 1), RTLD_NOW);
      const char* err = h ? NULL : dlerror();
      printf("%s -> %s\n", step, h ? (dlclose(h) == 0 ? "closed" : "dlclose failed") : err);
    } else if (!strncmp(step, "keeperr:", 8)) {
      void* h = dlopen(after(step, 1), RTLD_NOW);
      struct iovec iov = {NULL, 0};
      (void)!dup(-1), (void)!dup2(-1, -1), (void)!dup3(-1, -1, 0), (void)!close(-1);
      closefrom(1 << 30);
      (void)!writev(-1, &iov, 1), (void)!pwrite(-1, "", 0, 0), (void)!ftruncate(-1, 0);
      (void)!truncate("/nonexistent/keeperr", 0), (void)!sendfile(-1, -1, NULL, 0);
      (void)!copy_file_range(-1, NULL, -1, NULL, 0, 0);
      const char* err = dlerror();
      printf("%s -> %s, then dlerror=%s\n", step, h ? "opened" : "NULL", err ? err : "(null)");
    } else if (!strcmp(step, "closenull")) {
      void* volatile null = NULL;
      show_result(step, dlclose(null));
    } else if (!strncmp(step, "sym:", 4)) {
      int k = atoi(after(step, 1));
      if (k < 0 || k >= n_handles) { printf("%s -> no such handle\n", step); return 2; }
      void* s = dlsym(handles[k], after(step, 2));
      const int e = errno;
      const char* err = dlerror();
      printf("%s -> %s errno=%d dlerror=%s\n", step, s ? "found" : "NULL", e, err ? err : "(null)");
    } else if (!strcmp(step, "keys")) {
      pthread_key_t k;
      int n = 0;
      while (pthread_key_create(&k, NULL) == 0) ++n;
      printf("keys -> %d\n", n);
    } else if (!strncmp(step, "run:", 4)) {
      printf("%s -> %d\n", step, system(step + 4));
    } else if (!strncmp(step, "atexit:", 7)) {
      at_exit_lib = after(step, 1);
      atexit(at_exit);
      printf("%s -> registered\n", step);
    } else if (!strncmp(step, "threads:", 8)) {
      threads(step);
    } else if (!strncmp(step, "reopen:", 7)) {
      reopen(step);
    } else if (!strncmp(step, "sigopen:", 8)) {
      sigopen(step);
    } else if (!strncmp(step, "racepin:", 8)) {
      racepin(step);
    } else if (!strncmp(step, "forks:", 6)) {
      forks(step);
    } else {
      printf("%s -> unknown step\n", step);
      return 2;
    }
  }
  return 0;
}
