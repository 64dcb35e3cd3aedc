/* How much stack a write needs: runs one operation on a stack of exactly N
 * bytes, with a large PROT_NONE guard below it, so that an overflow is a
 * clean SIGSEGV (no frame can jump over the guard into other memory).
 * Built without sanitizers and linked with -z now (no lazy PLT resolver on
 * the small stack: its register save area would be measured too).
 *
 *   stack_probe [OPTIONS] OP N PATH
 *       One attempt, in a child process: OP on PATH from a stack of N bytes.
 *       Prints one line of facts, e.g.
 *         op=open-trunc stack=thread:20480 result=ok inode=new content=data victim=survived
 *       result: ok, error:ENAME (the call failed), crashed:SIGNAME (the stack
 *       overflowed, or anything else killed the child), exit:N;
 *       inode: same or new (PATH's inode after, against before), missing;
 *       content: old (--fresh's), data (--data's), empty, other;
 *       victim (with --victim): survived, changed (it saw its code change:
 *       exit 3), killed:SIGNAME, exit:N.
 *       Exit status 0 if result=ok, 1 otherwise (victim and content are for
 *       the caller to judge).
 *   stack_probe --min [OPTIONS] OP PATH
 *       Searches the smallest N (to 16 bytes) at which OP gives result=ok,
 *       one fresh attempt per N. Prints "min=N" (for threads, "min=<=N" when
 *       it works at the smallest stack a thread may have), or "min=none".
 *
 * OPTIONS
 *   --thread        a pthread whose stack (pthread_attr_setstack) is the N
 *                   bytes; glibc puts its TLS and thread descriptor at the
 *                   top of it (N >= PTHREAD_STACK_MIN). Default: a
 *                   makecontext coroutine, whose N bytes are all stack.
 *   --fresh=SRC     PATH is first made a new file with SRC's content.
 *   --data=FILE     what the writing operations write (default: 4 KiB of text).
 *   --victim=PROG   PROG PATH MS READYFILE runs while OP runs (tests/victim/victim:
 *                   it dlopens PATH and keeps calling it), without LD_PRELOAD;
 *                   released and reaped after OP.
 *   --no-memory     the operation runs with RLIMIT_AS at the address space
 *                   already in use: no new mapping can be made (mmap fails
 *                   with ENOMEM).
 *   --cold          no warm-up. By default the program first makes each call
 *                   the operations use once, on its ordinary stack, with
 *                   arguments that do nothing (as nearly every program has
 *                   by the time it runs a coroutine): what is measured is
 *                   then the call itself, not the first-call resolution of
 *                   the next definition (dlsym, in the preloaded library).
 *
 * OP
 *   open-rdonly     open(PATH, O_RDONLY), close: the pass-through path.
 *   open-trunc      open(PATH, O_WRONLY|O_TRUNC), write the data, close: cp.
 *   ftruncate       PATH is opened O_WRONLY before the victim starts (an fd
 *                   that predates the mapping); on the small stack:
 *                   ftruncate(fd, half its size).
 *   dlopen          dlopen(PATH, RTLD_NOW), then dlclose.
 *   dlsym           dlopen(PATH) on the ordinary stack; on the small stack,
 *                   dlsym(handle, "tg_version") and dlsym(RTLD_DEFAULT, "open").
 *   exec            open(PATH, O_WRONLY|O_TRUNC) (no O_CLOEXEC) and write the
 *                   data, on the ordinary stack; on the small stack,
 *                   execv("/bin/true"): atomic mode hands the pending file
 *                   over to the new image there. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

extern char** environ;

enum { kGuard = 1 << 20 }; /* below the stack: more than any frame */

static const char* g_op;
static const char* g_path;
static const char* g_fresh;
static const char* g_victim;
static int g_thread;
static int g_no_memory;
static char* g_data;
static size_t g_data_len;
static char* g_old; /* --fresh's content */
static size_t g_old_len;

/* The operation's outcome, set on the small stack. */
static int g_fd = -1;    /* ftruncate: opened before the victim */
static void* g_handle;   /* dlsym: PATH, loaded first */
static int g_ok;
static int g_errno;

/* Setup I/O goes straight to the kernel: it is not what is measured, and the
 * preloaded shim need not see it. */
static int raw_open(const char* path, int flags, int mode) {
  return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

static char* slurp(const char* path, size_t* len) {
  int fd = raw_open(path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0) return NULL;
  char* buf = malloc((size_t)st.st_size + 1);
  size_t n = 0;
  while (buf && n < (size_t)st.st_size) {
    long r = syscall(SYS_read, fd, buf + n, (size_t)st.st_size - n);
    if (r <= 0) break;
    n += (size_t)r;
  }
  syscall(SYS_close, fd);
  *len = n;
  return buf;
}

static int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void make_fresh(void) {
  syscall(SYS_unlinkat, AT_FDCWD, g_path, 0);
  int fd = raw_open(g_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
  if (fd < 0) { fprintf(stderr, "stack_probe: cannot create %s: %s\n", g_path, strerror(errno)); exit(2); }
  for (size_t done = 0; done < g_old_len;) {
    long w = syscall(SYS_write, fd, g_old + done, g_old_len - done);
    if (w <= 0) { fprintf(stderr, "stack_probe: cannot write %s\n", g_path); exit(2); }
    done += (size_t)w;
  }
  syscall(SYS_close, fd);
}

/* ---------------------------------------------------------- the operations */

static void fail_with(int e) {
  g_ok = 0;
  g_errno = e;
}

/* RLIMIT_AS at what is mapped now (/proc/self/statm: pages), read raw. */
static int limit_address_space(void) {
  char buf[64] = "";
  int fd = raw_open("/proc/self/statm", O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return -1;
  long n = syscall(SYS_read, fd, buf, sizeof buf - 1);
  syscall(SYS_close, fd);
  if (n <= 0) return -1;
  const struct rlimit as = {strtoul(buf, NULL, 10) * (rlim_t)sysconf(_SC_PAGESIZE),
                            strtoul(buf, NULL, 10) * (rlim_t)sysconf(_SC_PAGESIZE)};
  return setrlimit(RLIMIT_AS, &as);
}

static void op_body(void) {
  g_ok = 1;
  if (g_no_memory && limit_address_space() != 0) return fail_with(EDOM);
  if (!strcmp(g_op, "open-rdonly")) {
    int fd = open(g_path, O_RDONLY);
    if (fd < 0) return fail_with(errno);
    close(fd);
  } else if (!strcmp(g_op, "open-trunc")) {
    int fd = open(g_path, O_WRONLY | O_TRUNC);
    if (fd < 0) return fail_with(errno);
    if (write_all(fd, g_data, g_data_len) != 0) { fail_with(errno); close(fd); return; }
    if (close(fd) != 0) return fail_with(errno);
  } else if (!strcmp(g_op, "ftruncate")) {
    struct stat st;
    if (fstat(g_fd, &st) != 0) return fail_with(errno);
    if (ftruncate(g_fd, st.st_size / 2) != 0) return fail_with(errno);
  } else if (!strcmp(g_op, "dlopen")) {
    void* h = dlopen(g_path, RTLD_NOW);
    if (!h) return fail_with(ENOEXEC);
    if (dlclose(h) != 0) return fail_with(EINVAL);
  } else if (!strcmp(g_op, "dlsym")) {
    if (!dlsym(g_handle, "tg_version") || !dlsym(RTLD_DEFAULT, "open")) return fail_with(ENOENT);
  } else if (!strcmp(g_op, "exec")) {
    char* const argv[] = {(char*)"true", NULL};
    execv("/bin/true", argv);
    fail_with(errno);
  } else {
    fail_with(ENOSYS);
  }
}

static void* thread_main(void* unused) {
  (void)unused;
  op_body();
  return NULL;
}

static ucontext_t g_main_ctx, g_op_ctx;
static void coroutine_main(void) { op_body(); } /* returns to g_main_ctx (uc_link) */

/* Runs op_body on exactly n bytes of stack: [stack, stack + n), the guard below. */
static int run_on_small_stack(size_t n) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t rounded = (n + page - 1) / page * page;
  char* region = mmap(NULL, kGuard + rounded, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (region == MAP_FAILED) return -1;
  /* The usable bytes end exactly at the guard: the stack is the n bytes
   * just above it (its top may be below the region's end). */
  char* stack = region + kGuard;
  if (mprotect(stack, rounded, PROT_READ | PROT_WRITE) != 0) return -1;
  if (g_thread) {
    pthread_attr_t attr;
    pthread_t t;
    int e = pthread_attr_init(&attr);
    if (!e) e = pthread_attr_setstack(&attr, stack, n);
    if (!e) e = pthread_create(&t, &attr, thread_main, NULL);
    if (e) { fprintf(stderr, "stack_probe: a thread with a %zu-byte stack: %s\n", n, strerror(e)); return -1; }
    pthread_join(t, NULL);
  } else {
    if (getcontext(&g_op_ctx) != 0) return -1;
    g_op_ctx.uc_stack.ss_sp = stack;
    g_op_ctx.uc_stack.ss_size = n;
    g_op_ctx.uc_link = &g_main_ctx;
    makecontext(&g_op_ctx, coroutine_main, 0);
    if (swapcontext(&g_main_ctx, &g_op_ctx) != 0) return -1;
  }
  return 0;
}

/* --------------------------------------------------------------- attempts */

static const char* signame(int sig) {
  const char* s = sigabbrev_np(sig);
  return s ? s : "?";
}

static pid_t start_victim(char* ready) {
  snprintf(ready, PATH_MAX, "%s.ready", g_path);
  syscall(SYS_unlinkat, AT_FDCWD, ready, 0);
  pid_t pid = fork();
  if (pid == 0) {
    unsetenv("LD_PRELOAD");
    int null = raw_open("/dev/null", O_WRONLY, 0);
    if (null >= 0) dup2(null, STDOUT_FILENO);  /* "loaded version 1": not a fact of ours */
    execl(g_victim, g_victim, g_path, "20000", ready, (char*)NULL);
    _exit(127);
  }
  for (int i = 0; i < 10000; ++i) { /* up to 10 s */
    if (access(ready, F_OK) == 0) return pid;
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      fprintf(stderr, "stack_probe: the victim ended before it was ready\n");
      exit(2);
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  fprintf(stderr, "stack_probe: the victim is not ready after 10 s\n");
  kill(pid, SIGKILL);
  exit(2);
}

static void describe(int status, char* out, size_t len, const char* ok_word) {
  if (WIFSIGNALED(status)) snprintf(out, len, "%s:%s", ok_word ? "killed" : "crashed", signame(WTERMSIG(status)));
  else if (ok_word && WEXITSTATUS(status) == 0) snprintf(out, len, "%s", ok_word);
  else if (ok_word && WEXITSTATUS(status) == 3) snprintf(out, len, "changed");
  else snprintf(out, len, "exit:%d", WEXITSTATUS(status));
}

/* "ok" or "error:ENAME" to fd, without stdio's buffers (no allocation:
 * with --no-memory there is none to be had). */
static void report(int fd, int error) {
  char msg[48];
  const char* name = error ? strerrorname_np(error) : NULL;
  int n = error ? snprintf(msg, sizeof msg, "error:%s", name ? name : "E?") : snprintf(msg, sizeof msg, "ok");
  if (write(fd, msg, (size_t)n) < 0) {}
}

/* One attempt: returns 1 if the operation worked; `facts` gets the line. */
static int attempt(size_t n, char* facts, size_t len) {
  if (g_fresh) make_fresh();
  struct stat before = {0};
  const int existed = stat(g_path, &before) == 0;
  g_fd = -1;
  if (!strcmp(g_op, "ftruncate")) {
    /* Before anything maps it: the open itself has nothing to protect. */
    g_fd = open(g_path, O_WRONLY | O_CLOEXEC);
    if (g_fd < 0) { fprintf(stderr, "stack_probe: open %s: %s\n", g_path, strerror(errno)); exit(2); }
  }
  char ready[PATH_MAX];
  pid_t victim = g_victim ? start_victim(ready) : 0;
  /* The result travels back through a pipe: "ok" or an errno name. */
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) exit(2);
  pid_t child = fork();
  if (child == 0) {
    close(pfd[0]);
    const struct rlimit no_core = {0, 0};  /* too small a stack crashes, by design: no core file */
    setrlimit(RLIMIT_CORE, &no_core);
    if (!strcmp(g_op, "exec")) {
      int fd = open(g_path, O_WRONLY | O_TRUNC);
      if (fd < 0 || write_all(fd, g_data, g_data_len) != 0) {
        report(pfd[1], errno);
        _exit(1);
      }
      /* An exec that works says nothing: /bin/true's exit 0 is the answer. */
    }
    if (!strcmp(g_op, "dlsym") && !(g_handle = dlopen(g_path, RTLD_NOW))) {
      report(pfd[1], ENOEXEC);
      _exit(1);
    }
    int r = run_on_small_stack(n);
    if (r != 0) _exit(2);
    report(pfd[1], g_ok ? 0 : g_errno);
    _exit(g_ok ? 0 : 1);
  }
  close(pfd[1]);
  char result[64] = "";
  ssize_t got = read(pfd[0], result, sizeof result - 1);
  close(pfd[0]);
  result[got > 0 ? got : 0] = '\0';
  int status;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
  if (g_fd >= 0) close(g_fd);
  if (WIFSIGNALED(status) || (!result[0] && WEXITSTATUS(status) != 0) || WEXITSTATUS(status) == 2)
    describe(status, result, sizeof result, NULL);
  else if (!result[0])
    snprintf(result, sizeof result, "ok");  /* exec: /bin/true's exit 0 */
  char victim_fate[64] = "none";
  if (victim) {
    syscall(SYS_unlinkat, AT_FDCWD, ready, 0);  /* release it: a few more calls, then exit */
    int vs;
    while (waitpid(victim, &vs, 0) < 0 && errno == EINTR) {}
    describe(vs, victim_fate, sizeof victim_fate, "survived");
  }
  struct stat after;
  const char* inode = "missing";
  const char* content = "other";
  if (stat(g_path, &after) == 0) {
    inode = existed && after.st_ino == before.st_ino && after.st_dev == before.st_dev ? "same" : "new";
    size_t clen;
    char* now = slurp(g_path, &clen);
    if (now && clen == 0) content = "empty";
    else if (now && g_old && clen == g_old_len && !memcmp(now, g_old, clen)) content = "old";
    else if (now && clen == g_data_len && !memcmp(now, g_data, clen)) content = "data";
    else if (now && g_old && clen == g_old_len / 2 && !memcmp(now, g_old, clen)) content = "half";
    free(now);
  }
  snprintf(facts, len, "op=%s stack=%s:%zu result=%s inode=%s content=%s victim=%s", g_op,
           g_thread ? "thread" : "coroutine", n, result, inode, content, victim_fate);
  return !strcmp(result, "ok");
}

/* Each call the operations make, once, doing nothing. */
static void warm_up(void) {
  int fd = open("/dev/null", O_RDONLY);
  if (fd >= 0) close(fd);
  close(-1);
  if (write(-1, "", 0) < 0) {}
  if (ftruncate(-1, 0) < 0) {}
  struct stat st;
  fstat(-1, &st);
  void* self = dlopen(NULL, RTLD_NOW);
  if (self) {
    if (dlsym(self, "stack_probe_none")) {}
    dlclose(self);
  }
  char* const argv[] = {(char*)"none", NULL};
  execv("/nonexistent/stack_probe", argv);
  execve("/nonexistent/stack_probe", argv, environ);
}

static int usage(void) {
  fprintf(stderr, "usage: stack_probe [--thread] [--cold] [--no-memory] [--fresh=SRC] [--data=FILE] [--victim=PROG] OP N PATH\n"
                  "       stack_probe --min [OPTIONS] OP PATH\n");
  return 2;
}

int main(int argc, char** argv) {
  int search = 0, cold = 0;
  const char* data_file = NULL;
  int i = 1;
  for (; i < argc && !strncmp(argv[i], "--", 2); ++i) {
    if (!strcmp(argv[i], "--min")) search = 1;
    else if (!strcmp(argv[i], "--thread")) g_thread = 1;
    else if (!strcmp(argv[i], "--cold")) cold = 1;
    else if (!strcmp(argv[i], "--no-memory")) g_no_memory = 1;
    else if (!strncmp(argv[i], "--fresh=", 8)) g_fresh = argv[i] + 8;
    else if (!strncmp(argv[i], "--data=", 7)) data_file = argv[i] + 7;
    else if (!strncmp(argv[i], "--victim=", 9)) g_victim = argv[i] + 9;
    else return usage();
  }
  if (argc - i != (search ? 2 : 3)) return usage();
  g_op = argv[i];
  g_path = argv[argc - 1];
  if (data_file) {
    g_data = slurp(data_file, &g_data_len);
    if (!g_data) { fprintf(stderr, "stack_probe: cannot read %s\n", data_file); return 2; }
  } else {
    g_data_len = 4096;
    g_data = malloc(g_data_len);
    for (size_t k = 0; k < g_data_len; ++k) g_data[k] = (k % 64 == 63) ? '\n' : (char)('a' + k % 26);
  }
  if (g_fresh && !(g_old = slurp(g_fresh, &g_old_len))) {
    fprintf(stderr, "stack_probe: cannot read %s\n", g_fresh);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!cold) warm_up();
  char facts[512];
  if (!search) {
    const int ok = attempt((size_t)strtoul(argv[i + 1], NULL, 0), facts, sizeof facts);
    printf("%s\n", facts);
    return ok ? 0 : 1;
  }
  /* The smallest stack that works: assumed monotonic (more stack never hurts). */
  const long min_thread = sysconf(_SC_THREAD_STACK_MIN);
  size_t lo = g_thread ? (size_t)(min_thread > 0 ? min_thread : 16384) : 256, hi = 1 << 20;
  if (!attempt(hi, facts, sizeof facts)) {
    printf("min=none (%s)\n", facts);
    return 1;
  }
  if (attempt(lo, facts, sizeof facts)) {
    printf("min=%s%zu\n", g_thread ? "<=" : "", lo);
    return 0;
  }
  while (hi - lo > 16) { /* lo fails, hi works */
    const size_t mid = (lo + (hi - lo) / 2) & ~(size_t)15;
    if (attempt(mid, facts, sizeof facts)) hi = mid;
    else lo = mid;
  }
  printf("min=%zu\n", hi);
  return 0;
}
