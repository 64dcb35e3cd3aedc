/* Chaos: many things at once in one real process with libtruncguard.so
 * preloaded (LD_PRELOAD), where concurrency.cpp links the core in. Built
 * without sanitizers, like the victims; run it against build-asan's shim and
 * the shim's own ASan/UBSan checks run in it.
 *
 *   chaos DIR V1.so V2.so SEED SECONDS
 *
 * The shim's settings come from the environment; the driver reads
 * TRUNCGUARD_MODE and TRUNCGUARD_SCOPE only to know what it may assert. It
 * creates in DIR the files below (those the caller made stay: a victim maps
 * them), dlopen()s every one of them and keeps that handle, calling into
 * each until the end (the process maps them all), prints the seed, then for
 * SECONDS runs at once, each thread's operations drawn from SEED:
 *  - writers: each rewrites its own library ownN.so (and all of them
 *    shared.so) with V1 or V2: open O_TRUNC, open O_RDWR + pwrite +
 *    ftruncate (in place), fopen "w", truncate + rewrite; some of their
 *    write(2)/pwrite(2) loops are left by siglongjmp from a SIGUSR1 handler
 *    (the fd then closed and the file written again, whole);
 *  - a loader: dlopen()s a file by another name (DIR/alt/NAME, a symlink:
 *    glibc loads the file there now, not the object it has loaded) or ownN.so
 *    by its own (the stale object, or with TRUNCGUARD_RELOAD=fresh a fresh
 *    copy), calls into it and dlclose()s it, some handles later than others;
 *    only files whose writes never show a half-written file at the name
 *    (loadable()): a loader that maps one is the program's race, not the shim's;
 *  - fork: the child rewrites fork.so (in some rounds after closing every fd
 *    above 2 by close_range, closefrom or the raw system call) and _exits;
 *  - vfork: the child opens vfork.so O_TRUNC and execs /bin/true after
 *    writing it (its fd close-on-exec or inherited), or dup2s it to fd 1
 *    and execs /bin/cat V;
 *  - posix_spawn: /bin/cat V with fd 1 opened O_TRUNC on spawn.so by a file
 *    action, or given by adddup2 (the parent's copy closed after the child);
 *  - dup: rewrites dup.so, then closes its fd by dup2 of /dev/null onto it,
 *    by dup + close + close, F_DUPFD_CLOEXEC + close + close, or dup3 onto
 *    another fd of the file;
 *  - close_range: rewrites cr0..2.so through fds moved to 800+, closed by
 *    close_range(800, 899) or closefrom(800);
 *  - signals: SIGUSR1 (jump out of a writer's write) and SIGUSR2 (the
 *    handler rewrites sig.so) to random threads, every millisecond or so.
 * Victim processes (started by the caller) map some of the same files.
 * Then it checks: every write and child succeeded (a child that hangs for
 * 20 s fails, with its stack), each file holds the last version written,
 * whole (shared.so, whose writers race, only in atomic mode with scope elf),
 * the objects it keeps loaded still run their first version, no temp file
 * is left, its fds are those it had (/proc/self/fd before and after, the log
 * files aside), nothing hung (a watchdog: exit 3 after 30 s without
 * progress, with every thread's stack if gdb is there).
 * Exit 0 = pass, 1 = a check failed, 2 = setup error, 3 = no progress. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

#define NWRITERS 3
#define NCR 3
#define MAXFDS 256

static const char* g_dir;
static const char* g_vpath[2];
static unsigned char* g_v[2];
static size_t g_vlen[2];
static int g_atomic;
static int g_scope_elf;
static int g_no_jump_in_shim;
static atomic_int g_stop;
static atomic_long g_progress;
static atomic_int g_failures;
static unsigned long g_seed;

#define FAIL(...)                         \
  do {                                    \
    fprintf(stderr, "FAIL: " __VA_ARGS__); \
    fputc('\n', stderr);                  \
    atomic_fetch_add(&g_failures, 1);     \
  } while (0)

static unsigned long rnd(unsigned long* s) {  /* xorshift64* */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ul;
}

static void path_of(char* out, size_t n, const char* name) { snprintf(out, n, "%s/%s", g_dir, name); }

static void progress(void) { atomic_fetch_add(&g_progress, 1); }

/* Writes all of buf in random pieces; 0 or -1 (errno). */
static int write_pieces(int fd, const unsigned char* buf, size_t len, unsigned long* s) {
  size_t done = 0;
  while (done < len) {
    size_t n = 1 + rnd(s) % 16384;
    if (n > len - done) n = len - done;
    ssize_t w = write(fd, buf + done, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    done += (size_t)w;
  }
  return 0;
}

/* Whole-file comparison: 0 if PATH holds exactly version v (0/1). */
static const char* content_problem(const char* path, int v) {
  static __thread unsigned char buf[256 * 1024];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "cannot open";
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n < 0) return "cannot read";
  if ((size_t)n != g_vlen[v]) return "wrong size";
  if (memcmp(buf, g_v[v], g_vlen[v]) != 0) return "wrong bytes";
  return NULL;
}

static int which_version(const char* path) {
  if (!content_problem(path, 0)) return 0;
  if (!content_problem(path, 1)) return 1;
  return -1;
}

/* ------------------------------------------------------------ the handles */

typedef int (*work_fn)(int);
typedef int (*version_fn)(void);

static const char* const kFiles[] = {"own0.so", "own1.so", "own2.so", "shared.so", "fork.so", "vfork.so",
                                     "spawn.so", "sig.so", "dup.so", "cr0.so", "cr1.so", "cr2.so"};
#define NFILES (sizeof kFiles / sizeof kFiles[0])
static work_fn g_work[NFILES];
static version_fn g_version[NFILES];
static int g_first_version[NFILES];

/* ----------------------------------------------------------------- signals */

static __thread sigjmp_buf t_jump;
static __thread volatile sig_atomic_t t_armed;
static atomic_long g_jumps, g_usr1, g_usr2, g_sig_writes, g_sig_errors;
static atomic_int g_sig_busy;
static atomic_int g_sig_last = -1;
static pid_t g_pid;

static void on_usr1(int sig) {
  (void)sig;
  atomic_fetch_add(&g_usr1, 1);
  if (t_armed) {
    t_armed = 0;
    atomic_fetch_add(&g_jumps, 1);
    siglongjmp(t_jump, 1);
  }
}

static char g_sig_path[4096];
static __thread unsigned t_sig_count;
static void on_usr2(int sig) {
  (void)sig;
  atomic_fetch_add(&g_usr2, 1);
  if (syscall(SYS_getpid) != g_pid) return;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&g_sig_busy, &expected, 1)) return;
  const int saved = errno;
  const int v = (int)(++t_sig_count & 1);
  int fd = open(g_sig_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  int ok = fd >= 0;
  size_t done = 0;
  while (ok && done < g_vlen[v]) {
    ssize_t w = write(fd, g_v[v] + done, g_vlen[v] - done);
    if (w < 0 && errno != EINTR) ok = 0;
    if (w > 0) done += (size_t)w;
  }
  if (fd >= 0 && close(fd) != 0) ok = 0;
  if (ok) {
    atomic_store(&g_sig_last, v);
    atomic_fetch_add(&g_sig_writes, 1);
  } else {
    atomic_fetch_add(&g_sig_errors, 1);
  }
  atomic_store(&g_sig_busy, 0);
  errno = saved;
}

/* ----------------------------------------------------------------- writers */

/* Loads of ownN.so by another name must not read a half-written file (that
 * is the program's race, in replace mode, not the shim's): writers hold the
 * lock while the name may show one. In atomic mode with scope elf (every
 * write of an ELF file examined) only a truncate and a write left by a jump
 * can show one. */
static pthread_rwlock_t g_name_lock[NWRITERS];

struct writer {
  int id;
  pthread_t thread;
  unsigned long seed;
  int last;              /* version last written completely to ownN.so */
  long ops[4], jumps;
};

static const char* const kOpNames[] = {"open O_TRUNC", "open O_RDWR+pwrite+ftruncate", "fopen w", "truncate+rewrite"};

/* One rewrite of path with version v by `op`; returns 0, or -1 after a FAIL. */
static int rewrite(const char* path, int op, int v, unsigned long* s, int jumpable, int* jumped) {
  int volatile fd = -1;
  FILE* volatile f = NULL;
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  *jumped = 0;
  /* The open and the close are not left by a jump (the program would lose
   * the fd); the writes in between are. */
  pthread_sigmask(SIG_BLOCK, &usr1, &old);
  if (sigsetjmp(t_jump, 1)) {
    /* A jump out of a write: close what was open (the program's clean-up). */
    *jumped = 1;
    if (f) fclose(f);
    else if (fd >= 0) close(fd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);  /* the jump restored the mask saved above: SIGUSR1 blocked */
    return 0;
  }
  switch (op) {
    case 0: fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC); break;
    case 1: fd = open(path, O_RDWR | O_CLOEXEC); break;
    case 2: f = fopen(path, "we"); break;
    case 3:
      if (truncate(path, 0) != 0) {
        FAIL("truncate %s: %s", path, strerror(errno));
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return -1;
      }
      fd = open(path, O_WRONLY | O_CLOEXEC);
      break;
  }
  if (fd < 0 && !f) {
    FAIL("%s %s: %s", kOpNames[op], path, strerror(errno));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -1;
  }
  if (jumpable) t_armed = 1;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  int ok = 1;
  if (op == 2) {
    size_t done = 0;
    while (ok && done < g_vlen[v]) {
      size_t n = 1 + rnd(s) % 16384;
      if (n > g_vlen[v] - done) n = g_vlen[v] - done;
      if (fwrite(g_v[v] + done, 1, n, f) != n) ok = 0;
      done += n;
    }
  } else if (op == 1) {
    /* In place: the new bytes over the old, then the size. */
    size_t done = 0;
    while (ok && done < g_vlen[v]) {
      size_t n = 1 + rnd(s) % 16384;
      if (n > g_vlen[v] - done) n = g_vlen[v] - done;
      ssize_t w = pwrite(fd, g_v[v] + done, n, (off_t)done);
      if (w < 0 && errno != EINTR) ok = 0;
      if (w > 0) done += (size_t)w;
    }
    /* The ftruncate goes through the shim's look at the file, whose first
     * steps (before it takes anything) a jump may leave. With
     * CHAOS_NO_JUMP_IN_SHIM set it is not left by a jump: a sanitizer build
     * of the shim, in this program built without ASan, whose siglongjmp is
     * glibc's, not ASan's, would keep the redzones of the frames left behind
     * poisoned on the thread's stack (a false report later). */
    if (g_no_jump_in_shim) t_armed = 0;  /* the handler returns without jumping */
    if (ok && ftruncate(fd, (off_t)g_vlen[v]) != 0) ok = 0;
  } else {
    ok = write_pieces(fd, g_v[v], g_vlen[v], s) == 0;
  }
  pthread_sigmask(SIG_BLOCK, &usr1, &old);
  t_armed = 0;
  if (!ok) FAIL("%s %s: write: %s", kOpNames[op], path, strerror(errno));
  if (f) {
    if (fclose(f) != 0) { FAIL("fclose %s: %s", path, strerror(errno)); ok = 0; }
  } else if (close(fd) != 0) {
    FAIL("close %s (%s): %s", path, kOpNames[op], strerror(errno));
    ok = 0;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return ok ? 0 : -1;
}

static void* writer_main(void* arg) {
  struct writer* w = arg;
  char own[4096], shared[4096];
  snprintf(own, sizeof own, "%s/own%d.so", g_dir, w->id);
  path_of(shared, sizeof shared, "shared.so");
  while (!atomic_load(&g_stop)) {
    const int to_shared = rnd(&w->seed) % 5 == 0;
    /* shared.so is never truncated: the empty file then at the name is not
     * ELF, so a writer's open of it passes, in place, under the others. */
    const int op = (int)(rnd(&w->seed) % (to_shared ? 3 : 4));
    const int v = (int)(rnd(&w->seed) % 2);
    /* Only write(2) and pwrite(2) are left by a jump: out of fwrite, which
     * may be in malloc, the arena's lock would stay taken (the driver's bug). */
    const int jumpable = !to_shared && op != 2 && rnd(&w->seed) % 3 == 0;
    const int lock = !to_shared && (!g_atomic || !g_scope_elf || op == 3 || jumpable);
    int jumped = 0;
    if (lock) pthread_rwlock_wrlock(&g_name_lock[w->id]);
    int r = rewrite(to_shared ? shared : own, op, v, &w->seed, jumpable, &jumped);
    if (r == 0 && jumped) {
      ++w->jumps;
      r = rewrite(to_shared ? shared : own, 0, v, &w->seed, 0, &jumped);  /* done again, whole */
    }
    if (lock) pthread_rwlock_unlock(&g_name_lock[w->id]);
    if (r != 0) break;
    if (!to_shared) w->last = v;
    ++w->ops[op];
    progress();
  }
  return NULL;
}

/* ------------------------------------------------------------------ loader */

static atomic_long g_loads, g_load_failures;

/* Which files a load by another name may read while another thread, or a
 * child, writes them: only those whose writes never show a half-written file
 * at the name. ownN.so: under g_name_lock. In replace mode no other (the new
 * inode is at the name while it is written); in atomic mode with scope elf
 * all but spawn.so (a spawn's file action publishes the file empty at
 * once) and shared.so (a truncate). With another scope, a file that no
 * process maps when a write is checked is written in place (the check and
 * the write are two steps): no file at all. */
static int loadable(size_t k) {
  if (k < NWRITERS) return 1;
  return g_atomic && g_scope_elf && strcmp(kFiles[k], "spawn.so") != 0 && strcmp(kFiles[k], "shared.so") != 0;
}

static void* loader_main(void* arg) {
  unsigned long s = *(unsigned long*)arg;
  char alt[4096];
  void* held[4] = {0};
  while (!atomic_load(&g_stop)) {
    const size_t i = (size_t)(rnd(&s) % NFILES);
    if (!loadable(i)) continue;
    /* By its own name too (ownN.so): glibc returns the object loaded first,
     * a stale one; with TRUNCGUARD_RELOAD=fresh the shim loads the file there
     * now under another name. */
    const int own_name = i < NWRITERS && rnd(&s) % 3 == 0;
    snprintf(alt, sizeof alt, own_name ? "%s/%s" : "%s/alt/%s", g_dir, kFiles[i]);
    if (i < NWRITERS) pthread_rwlock_rdlock(&g_name_lock[i]);
    void* h = dlopen(alt, RTLD_NOW);
    if (i < NWRITERS) pthread_rwlock_unlock(&g_name_lock[i]);
    if (!h) {
      atomic_fetch_add(&g_load_failures, 1);
      if (atomic_load(&g_load_failures) < 4) fprintf(stderr, "# dlopen %s: %s\n", alt, dlerror());
    } else {
      atomic_fetch_add(&g_loads, 1);
      version_fn ver = (version_fn)(uintptr_t)dlsym(h, "tg_version");
      work_fn work = (work_fn)(uintptr_t)dlsym(h, "tg_work");
      if (ver && work) (void)(ver() + work((int)i));
      /* Sometimes held a while (the process maps that inode meanwhile):
       * dlclose later, in another order. */
      const int slot = (int)(rnd(&s) % 8);
      if (slot < 4) {
        if (held[slot]) dlclose(held[slot]);
        held[slot] = h;
      } else {
        dlclose(h);
      }
    }
    /* The process's own handles: calls into every file it keeps loaded. */
    for (size_t k = 0; k < NFILES; ++k) {
      (void)g_work[k]((int)k);
      if (g_version[k]() != g_first_version[k])
        FAIL("%s: the loaded object's version changed under the process (code swapped in place)", kFiles[k]);
    }
    progress();
  }
  for (int k = 0; k < 4; ++k)
    if (held[k]) dlclose(held[k]);
  return NULL;
}

/* -------------------------------------------------------------- children */

static atomic_long g_forks, g_vforks, g_spawns;
static int g_fork_last = -1, g_vfork_last = -1, g_spawn_last = -1;

/* Waits for a child, at most 20 s; 0 if it exited 0. */
static int reap(pid_t pid, const char* what) {
  for (int i = 0; i < 20000; ++i) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
      if (WIFSIGNALED(st)) FAIL("%s child %d killed by signal %d", what, pid, WTERMSIG(st));
      else FAIL("%s child %d exited %d", what, pid, WEXITSTATUS(st));
      return -1;
    }
    if (r < 0 && errno != EINTR) {
      FAIL("waitpid %s: %s", what, strerror(errno));
      return -1;
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  char cmd[256];
  snprintf(cmd, sizeof cmd, "cat /proc/%d/stack /proc/%d/wchan >&2; env -u LD_PRELOAD gdb -q -batch -p %d -ex bt 2>&1 | grep \"^#\" >&2", pid,
           pid, pid);
  FAIL("%s child %d hung (20 s); its stack:", what, pid);
  if (system(cmd) != 0) {}
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

/* A child's whole write of version v to fd (fork or vfork child: write(2)
 * only); 0, or -1. */
static int child_write(int fd, int v) {
  size_t done = 0;
  while (done < g_vlen[v]) {
    ssize_t w = write(fd, g_v[v] + done, g_vlen[v] - done);
    if (w <= 0) return -1;
    done += (size_t)w;
  }
  return 0;
}

static void* forker_main(void* arg) {
  unsigned long s = *(unsigned long*)arg;
  char path[4096];
  path_of(path, sizeof path, "fork.so");
  while (!atomic_load(&g_stop)) {
    const int v = (int)(rnd(&s) % 2);
    const int how = (int)(rnd(&s) % 3);  /* 0: write, 1: close fds >2 then write, 2: exit at once */
    pid_t pid = fork();
    if (pid < 0) { FAIL("fork: %s", strerror(errno)); break; }
    if (pid == 0) {
      if (how == 1) {  /* a daemon's clean slate, three ways */
        const unsigned long way = rnd(&s) % 3;
        if (way == 0) close_range(3, ~0u, 0);
        else if (way == 1) closefrom(3);
        else syscall(SYS_close_range, 3u, ~0u, 0);
      }
      if (how == 2) _exit(0);
      int fd = open(path, O_WRONLY | O_TRUNC);
      if (fd < 0) _exit(10);
      if (child_write(fd, v) != 0) _exit(11);
      if (close(fd) != 0) _exit(12);
      _exit(0);
    }
    if (reap(pid, "fork") != 0) break;
    if (how != 2) g_fork_last = v;
    atomic_fetch_add(&g_forks, 1);
    progress();
  }
  return NULL;
}

/* One vfork round (its own frame: nothing of the caller's is live across vfork). */
__attribute__((noinline)) static int vfork_round(const char* path, int v, int how) {
  char* true_argv[] = {"true", NULL};
  char* cat_argv[] = {"cat", (char*)g_vpath[v], NULL};
  pid_t pid = vfork();
  if (pid < 0) { FAIL("vfork: %s", strerror(errno)); return -1; }
  if (pid == 0) {
    int fd = open(path, O_WRONLY | O_TRUNC | (how == 0 ? O_CLOEXEC : 0));
    if (fd < 0) _exit(10);
    if (how == 2) {
      if (dup2(fd, 1) != 1) _exit(11);
      close(fd);
      execve("/bin/cat", cat_argv, environ);
      _exit(12);
    }
    if (child_write(fd, v) != 0) _exit(13);
    execve("/bin/true", true_argv, environ);
    _exit(14);
  }
  return reap(pid, "vfork");
}

static void* vforker_main(void* arg) {
  unsigned long s = *(unsigned long*)arg;
  char path[4096];
  path_of(path, sizeof path, "vfork.so");
  while (!atomic_load(&g_stop)) {
    const int v = (int)(rnd(&s) % 2);
    const int how = (int)(rnd(&s) % 3);  /* 0: write + exec true (cloexec), 1: the same, fd inherited, 2: cat > */
    if (vfork_round(path, v, how) != 0) break;
    g_vfork_last = v;
    atomic_fetch_add(&g_vforks, 1);
    progress();
  }
  return NULL;
}

static void* spawner_main(void* arg) {
  unsigned long s = *(unsigned long*)arg;
  char path[4096];
  path_of(path, sizeof path, "spawn.so");
  while (!atomic_load(&g_stop)) {
    const int v = (int)(rnd(&s) % 2);
    const int how = (int)(rnd(&s) % 2);  /* 0: addopen O_TRUNC, 1: adddup2 of the parent's fd */
    char* cat_argv[] = {"cat", (char*)g_vpath[v], NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    int fd = -1;
    if (how == 0) {
      posix_spawn_file_actions_addopen(&fa, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    } else {
      fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
      if (fd < 0) { FAIL("open %s: %s", path, strerror(errno)); break; }
      posix_spawn_file_actions_adddup2(&fa, fd, 1);
    }
    pid_t pid;
    int r = posix_spawn(&pid, "/bin/cat", &fa, NULL, cat_argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0) { FAIL("posix_spawn: %s", strerror(r)); break; }
    int bad = reap(pid, "posix_spawn");
    if (fd >= 0 && close(fd) != 0) { FAIL("close %s (after adddup2): %s", path, strerror(errno)); bad = 1; }
    if (bad) break;
    g_spawn_last = v;
    atomic_fetch_add(&g_spawns, 1);
    progress();
  }
  return NULL;
}

/* ------------------------------------------------------- dup, close_range */

static int g_dup_last = -1, g_cr_last[NCR] = {-1, -1, -1};
static atomic_long g_dups, g_ranges;

static void* dupper_main(void* arg) {
  unsigned long s = *(unsigned long*)arg;
  char path[4096];
  path_of(path, sizeof path, "dup.so");
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  while (!atomic_load(&g_stop)) {
    const int v = (int)(rnd(&s) % 2);
    const int how = (int)(rnd(&s) % 4);
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) { FAIL("open %s: %s", path, strerror(errno)); break; }
    int ok = write_pieces(fd, g_v[v], g_vlen[v], &s) == 0, e = 0;
    if (!ok) FAIL("write %s: %s", path, strerror(errno));
    switch (how) {
      case 0:  /* dup2 onto the watched fd closes it (publishes it in atomic mode) */
        if (dup2(devnull, fd) != fd) { e = errno; FAIL("dup2 onto %s: %s", path, strerror(e)); }
        if (close(fd) != 0) FAIL("close (after dup2): %s", strerror(errno));
        break;
      case 1: {
        int d = dup(fd);
        if (d < 0) FAIL("dup: %s", strerror(errno));
        if (close(fd) != 0) FAIL("close %s (a dup open): %s", path, strerror(errno));
        if (d >= 0 && close(d) != 0) FAIL("close %s (the dup): %s", path, strerror(errno));
        break;
      }
      case 2: {
        int d = fcntl(fd, F_DUPFD_CLOEXEC, 700);
        if (d < 0) FAIL("F_DUPFD_CLOEXEC: %s", strerror(errno));
        if (d >= 0 && close(d) != 0) FAIL("close %s (the F_DUPFD): %s", path, strerror(errno));
        if (close(fd) != 0) FAIL("close %s (after its F_DUPFD): %s", path, strerror(errno));
        break;
      }
      case 3: {  /* dup3 onto another watched fd of the same file */
        int d = open(path, O_RDONLY | O_CLOEXEC);
        if (d < 0 || dup3(fd, d, O_CLOEXEC) != d) FAIL("dup3 onto %s: %s", path, strerror(errno));
        if (close(fd) != 0) FAIL("close %s (after dup3): %s", path, strerror(errno));
        if (d >= 0 && close(d) != 0) FAIL("close %s (the dup3): %s", path, strerror(errno));
        break;
      }
    }
    if (!ok) break;
    g_dup_last = v;
    atomic_fetch_add(&g_dups, 1);
    progress();
  }
  close(devnull);
  return NULL;
}

static void* ranger_main(void* arg) {
  unsigned long s = *(unsigned long*)arg;
  char path[NCR][4096];
  for (int k = 0; k < NCR; ++k) {
    char name[16];
    snprintf(name, sizeof name, "cr%d.so", k);
    path_of(path[k], sizeof path[k], name);
  }
  while (!atomic_load(&g_stop)) {
    int v[NCR], ok = 1;
    for (int k = 0; k < NCR && ok; ++k) {
      v[k] = (int)(rnd(&s) % 2);
      int fd = open(path[k], O_WRONLY | O_TRUNC | O_CLOEXEC);
      if (fd < 0) { FAIL("open %s: %s", path[k], strerror(errno)); ok = 0; break; }
      if (write_pieces(fd, g_v[v[k]], g_vlen[v[k]], &s) != 0) { FAIL("write %s: %s", path[k], strerror(errno)); ok = 0; }
      if (dup2(fd, 800 + k) != 800 + k) { FAIL("dup2 to %d: %s", 800 + k, strerror(errno)); ok = 0; }
      if (close(fd) != 0) { FAIL("close %s (a dup open): %s", path[k], strerror(errno)); ok = 0; }
    }
    if (!ok) break;
    if (rnd(&s) % 2) {
      if (close_range(800, 899, 0) != 0) { FAIL("close_range: %s", strerror(errno)); break; }
    } else {
      closefrom(800);
    }
    for (int k = 0; k < NCR; ++k) g_cr_last[k] = v[k];
    atomic_fetch_add(&g_ranges, 1);
    progress();
  }
  return NULL;
}

/* ------------------------------------------------------------- signaller */

static pthread_t g_targets[32];
static int g_ntargets;

static void* signaller_main(void* arg) {
  unsigned long s = *(unsigned long*)arg;
  while (!atomic_load(&g_stop)) {
    /* Half of them to the writers (the threads a SIGUSR1 can jump out of a write). */
    const int t = (int)(rnd(&s) % 2 ? rnd(&s) % NWRITERS : rnd(&s) % (unsigned long)g_ntargets);
    pthread_kill(g_targets[t], rnd(&s) % 3 == 0 ? SIGUSR2 : SIGUSR1);
    struct timespec d = {0, (long)(200000 + rnd(&s) % 1000000)};
    nanosleep(&d, NULL);
  }
  return NULL;
}

/* ---------------------------------------------------------------- checks */

struct fdset { int n; int fd[MAXFDS]; char what[MAXFDS][300]; };

static void list_fds(struct fdset* out) {
  out->n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return;
  const int self = dirfd(d);
  struct dirent* e;
  while ((e = readdir(d)) && out->n < MAXFDS) {
    if (e->d_name[0] == '.') continue;
    const int fd = atoi(e->d_name);
    if (fd == self) continue;
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(p, out->what[out->n], sizeof out->what[0] - 1);
    out->what[out->n][k > 0 ? k : 0] = '\0';
    out->fd[out->n++] = fd;
  }
  closedir(d);
}

static int is_log(const char* what) {
  const char* log = getenv("TRUNCGUARD_LOG");
  return log && *log && strncmp(what, log, strlen(log)) == 0;
}

static void* watchdog_main(void* arg) {
  (void)arg;
  long last = -1;
  int still = 0;
  for (;;) {
    struct timespec d = {1, 0};
    while (nanosleep(&d, &d) != 0) {}
    long p = atomic_load(&g_progress);
    still = p == last ? still + 1 : 0;
    last = p;
    if (still >= 30) {
      fprintf(stderr, "FAIL: no progress for 30 s (seed %lu): deadlock? every thread's stack:\n", g_seed);
      char cmd[128];
      snprintf(cmd, sizeof cmd, "env -u LD_PRELOAD gdb -q -batch -p %d -ex 'thread apply all bt' 2>&1 | grep -v 'New LWP' >&2", (int)getpid());
      if (system(cmd) != 0) {}
      _exit(3);
    }
  }
  return NULL;
}

static unsigned char* slurp(const char* path, size_t* len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return NULL;
  unsigned char* b = malloc((size_t)st.st_size);
  if (!b || read(fd, b, (size_t)st.st_size) != st.st_size) return NULL;
  close(fd);
  *len = (size_t)st.st_size;
  return b;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: chaos DIR V1.so V2.so SEED SECONDS\n");
    return 2;
  }
  g_dir = argv[1];
  g_vpath[0] = argv[2];
  g_vpath[1] = argv[3];
  g_seed = strtoul(argv[4], NULL, 0);
  const double seconds = atof(argv[5]);
  const char* mode = getenv("TRUNCGUARD_MODE");
  g_atomic = mode && strcmp(mode, "atomic") == 0;
  const char* scope = getenv("TRUNCGUARD_SCOPE");
  g_scope_elf = scope && strcmp(scope, "elf") == 0;
  g_no_jump_in_shim = getenv("CHAOS_NO_JUMP_IN_SHIM") != NULL;
  g_pid = getpid();
  for (int i = 0; i < 2; ++i)
    if (!(g_v[i] = slurp(g_vpath[i], &g_vlen[i]))) { perror(g_vpath[i]); return 2; }

  /* The files, and a handle on each that stays open (the process maps them). */
  char p[4096], alt[4096];
  snprintf(alt, sizeof alt, "%s/alt", g_dir);
  if (mkdir(alt, 0755) != 0 && errno != EEXIST) { perror(alt); return 2; }
  for (size_t k = 0; k < NFILES; ++k) {
    path_of(p, sizeof p, kFiles[k]);
    if (access(p, F_OK) != 0) {  /* the caller may have made some (a victim maps them) */
      int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
      if (fd < 0 || write(fd, g_v[0], g_vlen[0]) != (ssize_t)g_vlen[0] || close(fd) != 0) { perror(p); return 2; }
    }
    void* h = dlopen(p, RTLD_NOW);
    if (!h) { fprintf(stderr, "dlopen %s: %s\n", p, dlerror()); return 2; }
    g_work[k] = (work_fn)(uintptr_t)dlsym(h, "tg_work");
    g_version[k] = (version_fn)(uintptr_t)dlsym(h, "tg_version");
    if (!g_work[k] || !g_version[k]) { fprintf(stderr, "%s: no tg_work/tg_version\n", p); return 2; }
    g_first_version[k] = g_version[k]();
  }
  for (size_t k = 0; k < NFILES; ++k) {
    char target[64];
    snprintf(target, sizeof target, "../%s", kFiles[k]);
    snprintf(p, sizeof p, "%.4000s/%s", alt, kFiles[k]);
    if (symlink(target, p) != 0 && errno != EEXIST) { perror(p); return 2; }
  }
  for (int i = 0; i < NWRITERS; ++i) pthread_rwlock_init(&g_name_lock[i], NULL);
  path_of(g_sig_path, sizeof g_sig_path, "sig.so");

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_flags = SA_RESTART;
  /* Neither handler runs inside the other: a jump out of the SIGUSR2
   * handler would leave it half done (the driver's bug, not the shim's). */
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR1);
  sigaddset(&sa.sa_mask, SIGUSR2);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_usr2;
  sigaction(SIGUSR2, &sa, NULL);

  static struct fdset before, after;
  list_fds(&before);
  printf("# seed %lu, %.1f s, mode %s, in %s\n", g_seed, seconds, g_atomic ? "atomic" : "replace", g_dir);
  fflush(stdout);

  pthread_t wd;
  pthread_create(&wd, NULL, watchdog_main, NULL);
  pthread_detach(wd);

  unsigned long seeds[16];
  unsigned long s = g_seed ? g_seed : 1;
  for (int i = 0; i < 16; ++i) seeds[i] = rnd(&s) | 1;

  static struct writer writers[NWRITERS];
  for (int i = 0; i < NWRITERS; ++i) {
    writers[i].id = i;
    writers[i].seed = seeds[i];
    writers[i].last = 0;
    pthread_create(&writers[i].thread, NULL, writer_main, &writers[i]);
    g_targets[g_ntargets++] = writers[i].thread;
  }
  pthread_t others[6];
  void* (*const mains[6])(void*) = {loader_main, forker_main, vforker_main, spawner_main, dupper_main, ranger_main};
  /* CHAOS_SKIP=loader,fork,vfork,spawn,dup,range: leave those out (to narrow a finding down). */
  static const char* const kOtherNames[6] = {"loader", "fork", "vfork", "spawn", "dup", "range"};
  const char* skip = getenv("CHAOS_SKIP");
  int skipped[6] = {0};
  for (int i = 0; i < 6; ++i) {
    skipped[i] = skip && strstr(skip, kOtherNames[i]) != NULL;
    if (skipped[i]) continue;
    pthread_create(&others[i], NULL, mains[i], &seeds[8 + i]);
    g_targets[g_ntargets++] = others[i];
  }
  pthread_t sig;
  pthread_create(&sig, NULL, signaller_main, &seeds[15]);

  struct timespec run = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&run, &run) != 0) {}
  atomic_store(&g_stop, 1);
  pthread_join(sig, NULL);
  for (int i = 0; i < NWRITERS; ++i) pthread_join(writers[i].thread, NULL);
  for (int i = 0; i < 6; ++i)
    if (!skipped[i]) pthread_join(others[i], NULL);
  while (atomic_load(&g_sig_busy)) sched_yield();
  /* Signals still on their way: handled before the checks. */
  struct timespec settle = {0, 50000000};
  nanosleep(&settle, NULL);

  /* ---- checks */
  long ops[4] = {0}, jumps = 0;
  for (int i = 0; i < NWRITERS; ++i) {
    for (int k = 0; k < 4; ++k) ops[k] += writers[i].ops[k];
    jumps += writers[i].jumps;
    char name[16];
    snprintf(name, sizeof name, "own%d.so", i);
    path_of(p, sizeof p, name);
    const char* why = content_problem(p, writers[i].last);
    if (why) FAIL("%s: %s (expected version %d complete; holds %d)", name, why, writers[i].last + 1, which_version(p) + 1);
  }
  path_of(p, sizeof p, "shared.so");
  /* Its writers race each other: one file is whole at the end only where
   * every write of it is atomic (atomic mode, every ELF write examined). */
  if (g_atomic && g_scope_elf && which_version(p) < 0) FAIL("shared.so holds neither version completely");
  struct { const char* name; int v; } last[] = {
      {"fork.so", g_fork_last}, {"vfork.so", g_vfork_last}, {"spawn.so", g_spawn_last},
      {"sig.so", atomic_load(&g_sig_last)}, {"dup.so", g_dup_last}, {"cr0.so", g_cr_last[0]},
      {"cr1.so", g_cr_last[1]}, {"cr2.so", g_cr_last[2]}};
  for (size_t k = 0; k < sizeof last / sizeof last[0]; ++k) {
    path_of(p, sizeof p, last[k].name);
    const int v = last[k].v < 0 ? 0 : last[k].v;
    const char* why = content_problem(p, v);
    if (why) FAIL("%s: %s (expected version %d complete; holds %d)", last[k].name, why, v + 1, which_version(p) + 1);
  }
  for (size_t k = 0; k < NFILES; ++k)
    if (g_version[k]() != g_first_version[k]) FAIL("%s: the loaded object's version changed", kFiles[k]);

  DIR* d = opendir(g_dir);
  struct dirent* e;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, ".tg-")) FAIL("temp file left behind: %s", e->d_name);
  if (d) closedir(d);

  list_fds(&after);
  for (int i = 0; i < after.n; ++i) {
    int known = 0;
    for (int j = 0; j < before.n && !known; ++j) known = before.fd[j] == after.fd[i] && !strcmp(before.what[j], after.what[i]);
    if (!known && !is_log(after.what[i])) FAIL("fd %d leaked: %s", after.fd[i], after.what[i]);
  }
  for (int j = 0; j < before.n; ++j) {
    int still = 0;
    for (int i = 0; i < after.n && !still; ++i) still = before.fd[j] == after.fd[i] && !strcmp(before.what[j], after.what[i]);
    if (!still) FAIL("fd %d (%s) was closed or changed behind the program's back", before.fd[j], before.what[j]);
  }

  printf("# writes: %ld open O_TRUNC, %ld in place, %ld fopen, %ld truncate+rewrite; %ld left by a jump\n", ops[0],
         ops[1], ops[2], ops[3], jumps);
  printf("# loads by another name: %ld (%ld failed); children: %ld fork, %ld vfork, %ld posix_spawn\n",
         atomic_load(&g_loads), atomic_load(&g_load_failures), atomic_load(&g_forks), atomic_load(&g_vforks),
         atomic_load(&g_spawns));
  printf("# dup rounds %ld, close_range rounds %ld; SIGUSR1 %ld (%ld jumps), SIGUSR2 %ld (%ld handler writes, %ld errors)\n",
         atomic_load(&g_dups), atomic_load(&g_ranges), atomic_load(&g_usr1), atomic_load(&g_jumps),
         atomic_load(&g_usr2), atomic_load(&g_sig_writes), atomic_load(&g_sig_errors));
  if (atomic_load(&g_sig_errors)) FAIL("%ld rewrites in the SIGUSR2 handler failed", atomic_load(&g_sig_errors));
  const int failures = atomic_load(&g_failures);
  if (failures) printf("%d check(s) failed (seed %lu)\n", failures, g_seed);
  else printf("ok (seed %lu)\n", g_seed);
  return failures ? 1 : 0;
}
