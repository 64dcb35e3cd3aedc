/* A program that holds a POSIX record lock (fcntl F_SETLK) on a file while it
 * writes that file again through other entry points: what a second SQLite
 * connection, or a daemon rewriting the pidfile it locked, does. POSIX locks
 * belong to the process, and any close() of any fd on the file releases them:
 * a write must not make the lock go.
 *
 *   lock_holder [--ofd|--flock] FILE STEP...
 *     Creates FILE (200 bytes of text), locks it whole with F_SETLK through
 *     fd A (O_RDWR; with --ofd an OFD lock, F_OFD_SETLK; with --flock,
 *     flock(LOCK_EX): both belong to A's open file description, so no other
 *     fd's close releases them), then runs each STEP and asks a child process
 *     whether it could take a lock of the same kind (it must not). Steps
 *     (every fd opened stays open):
 *       rdwr      open(FILE, O_RDWR)            a write in place
 *       wronly    open(FILE, O_WRONLY)
 *       trunc     open(FILE, O_WRONLY|O_TRUNC)  then writes the 200 bytes back
 *       ftruncate ftruncate(A, 100) then write the rest back
 *       fopen     fopen(FILE, "r+")
 *       vfork     20 times: ftruncate(A, 100), write the rest back, then a
 *                 vfork child closes its copy of A and exits (a daemon
 *                 starting children); prints "vfork: N more fds" and fails
 *                 (exit 1) if the program holds more than one fd more
 *       close2    open(FILE, O_RDONLY), then close it: POSIX releases the
 *                 lock here, with or without truncguard (the control: it
 *                 proves the child sees a released lock)
 *       closefrom closefrom(A + 1), closerange close_range(A + 1, ~0U, 0),
 *       closeloop close(A + 1) ... close(1023): a program closing every fd
 *                 above its own (which holds no other fd on the file here);
 *                 closeloop prints "closeloop: N closed" (the closes that
 *                 succeeded: a number not the program's fails EBADF)
 *       dup2over  dup2(A, A + 1), then close(A + 1), which must succeed (it
 *                 releases the lock, with or without truncguard)
 *       dup2fail  dup2(1000, A + 1), 1000 not open: fails EBADF, closing
 *                 nothing; then close(A + 1) fails EBADF too (A + 1 is not
 *                 the program's), and the lock stays
 *       exec      execv of this program (A, without FD_CLOEXEC, stays open,
 *                 and POSIX locks survive an exec), which checks the lock
 *                 and goes on with the steps after this one
 *       rdwrx     open(FILE, O_RDWR) while FILE (through A) is mapped
 *                 executable by this process: under truncguard --scope=self
 *                 the open is replaced (a new inode at the name), so the lock,
 *                 on A's file, is asked about through A (POSIX locks only);
 *                 prints "rdwrx: F_GETSIG N" of the fd it opened
 *       rdwrjump  (x86-64) a handler that siglongjmps out of an O_RDWR open
 *                 of FILE, mapped executable by this process (through A):
 *                 under truncguard, out of the look by name that the open
 *                 of a locked ELF file makes (a seccomp filter traps the
 *                 look's stat of the opened path, SIGSYS, as an alarm() at
 *                 that moment would). Then the fd the open left (the lowest
 *                 free number, the program never got it) is closed (the
 *                 lock taken again through A), a text file opened takes its
 *                 number, and FILE is opened O_WRONLY|O_TRUNC (a write of
 *                 the library the program maps): prints "rdwrjump: jumped"
 *                 or "rdwrjump: not jumped", then "rdwrjump: A's file N
 *                 bytes" (0: truncated in place); the lock asked through A
 *       rdwrnest  (x86-64) as rdwrx, and a signal handler opens a second
 *                 locked copy of FILE (FILE.2, locked through its own fd
 *                 B) O_RDWR in the middle of it (under truncguard: the
 *                 look by name, whose stat of the path the seccomp filter
 *                 traps; the handler makes that stat): prints "rdwrnest:
 *                 the handler opened" (or "no handler ran": no such stat)
 *                 and "rdwrnest: N fds more" (the program's, over the step)
 *       oldatime  sets the file's atime (through A) to 2001-01-01 00:00:00
 *                 UTC (978307200), older than its mtime: a read moves it
 *       countfds  prints "countfds: N fds" (the program's open fds)
 *       fork      a forked child prints "fork: the child has N fds" (its
 *                 open fds: POSIX locks are not inherited, so a kept fd it
 *                 inherited is closed there) and exits
 *       closeA    close(A): releases a lock of any kind (the control for
 *                 --ofd and --flock); the last step
 *     With LOCK_HOLDER_CONTENT=SRC in the environment, FILE is created with
 *     SRC's bytes instead (an ELF library: the guard's look at a write then
 *     goes on past the header).
 *     Prints "STEP: held" or "STEP: released" per step, and exits 0 if the
 *     lock was held after every step, 1 if not, 2 on an error. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "open_fds.h"

static char content[200];
enum { kPosix, kOfd, kFlock } g_kind = kPosix;

/* Takes the lock of this run's kind through fd: 0, or -1 (errno). */
static int take_lock(int fd) {
  if (g_kind == kFlock) return flock(fd, LOCK_EX | LOCK_NB);
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  return fcntl(fd, g_kind == kOfd ? F_OFD_SETLK : F_SETLK, &fl);
}

/* Can another process take a write lock on the file now? */
static int lock_held(const char* file) {
  pid_t c = fork();
  if (c < 0) { perror("fork"); exit(2); }
  if (c == 0) {
    int fd = open(file, O_RDWR);
    _exit(fd >= 0 && take_lock(fd) == 0 ? 0 : 1);
  }
  int st;
  if (waitpid(c, &st, 0) != c || !WIFEXITED(st)) { fprintf(stderr, "lock_holder: child failed\n"); exit(2); }
  return WEXITSTATUS(st) == 1;
}

/* Does another process see this one's POSIX lock on A's file (F_GETLK
 * through its copy of A, whatever file the name holds now)? */
static int lock_held_through(int a) {
  pid_t c = fork();
  if (c < 0) { perror("fork"); exit(2); }
  if (c == 0) {
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    _exit(fcntl(a, F_GETLK, &fl) == 0 && fl.l_type == F_WRLCK && fl.l_pid == getppid() ? 1 : 0);
  }
  int st;
  if (waitpid(c, &st, 0) != c || !WIFEXITED(st)) { fprintf(stderr, "lock_holder: child failed\n"); exit(2); }
  return WEXITSTATUS(st) == 1;
}

#if defined(__x86_64__)
/* rdwrjump: the path its open is given, at an address nothing else passes. */
static char jump_path[PATH_MAX];
static sigjmp_buf jump_back;
static volatile sig_atomic_t jump_armed;

static char stat_path[PATH_MAX];        /* jump_path's copy, which the filter lets through */
static const char* volatile nest_file;  /* rdwrnest: the handler's own open, once */
static volatile int nest_fd = -1;

/* SIGSYS of the filter below: an armed one jumps out (rdwrjump); else the
 * handler opens nest_file O_RDWR the first time (rdwrnest), and makes the
 * stat in the caller's place, through stat_path. */
static void jump_out(int sig, siginfo_t* si, void* ctx) {
  (void)sig;
  (void)si;
  if (jump_armed) {
    jump_armed = 0;
    siglongjmp(jump_back, 1);
  }
  const int saved = errno;
  const char* f = nest_file;
  if (f) {
    nest_file = NULL;
    nest_fd = open(f, O_RDWR);
  }
  greg_t* r = ((ucontext_t*)ctx)->uc_mcontext.gregs;
  const long v = syscall(SYS_newfstatat, r[REG_RDI], stat_path, r[REG_RDX], r[REG_R10]);
  r[REG_RAX] = v < 0 ? -errno : v;
  errno = saved;
}

/* Traps newfstatat(_, jump_path, ...). */
static int trap_stat_of_jump_path(void) {
  const uintptr_t p = (uintptr_t)jump_path;
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_newfstatat, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)p, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]) + 4),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(p >> 32), 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
  };
  struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = jump_out;
  sa.sa_flags = SA_SIGINFO;
  if (sigaction(SIGSYS, &sa, NULL) != 0) return -1;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}
#endif

static int check(int ok, const char* what) {
  if (!ok) { perror(what); exit(2); }
  return ok;
}

#if defined(__x86_64__)
/* rdwrjump's open of jump_path, expected at `lowest`: 1 if the handler
 * jumped out of it. (Its own frame: main's variables stay clear of the jump.) */
static int jumped_out_of_open(int lowest) {
  jump_armed = 1;
  if (sigsetjmp(jump_back, 1) != 0) return 1;
  check(open(jump_path, O_RDWR) == lowest, "open O_RDWR (at the lowest number)");
  jump_armed = 0;
  return 0;
}
#endif

int main(int argc, char** argv) {
  int first = 1;
  if (argc > 1 && strcmp(argv[1], "--ofd") == 0) g_kind = kOfd, first = 2;
  if (argc > 1 && strcmp(argv[1], "--flock") == 0) g_kind = kFlock, first = 2;
  if (argc < first + 2) { fprintf(stderr, "usage: lock_holder [--ofd|--flock] FILE STEP...\n"); return 2; }
  /* After the exec step: --after-exec=A,ALL_HELD (A is still open and locked). */
  int a = -1, all_held = 1, after_exec = 0;
  if (strncmp(argv[first], "--after-exec=", 13) == 0) {
    check(sscanf(argv[first] + 13, "%d,%d", &a, &all_held) == 2, "--after-exec");
    after_exec = first++;
  }
  const char* file = argv[first];
  memset(content, 'x', sizeof content);
  if (!after_exec) {
    a = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    check(a >= 0 && write(a, content, sizeof content) == (ssize_t)sizeof content, "create");
    const char* from = getenv("LOCK_HOLDER_CONTENT");
    if (from) {
      int src = open(from, O_RDONLY);
      check(src >= 0 && ftruncate(a, 0) == 0, from);
      char buf[65536];
      ssize_t n;
      while ((n = read(src, buf, sizeof buf)) > 0) check(pwrite(a, buf, (size_t)n, lseek(src, 0, SEEK_CUR) - n) == n, "copy");
      check(n == 0, "read");
      close(src);
    }
    check(take_lock(a) == 0, "lock");
    if (!lock_held(file)) { fprintf(stderr, "lock_holder: the child takes the lock we hold\n"); return 2; }
  }
  for (int i = first + (after_exec ? 0 : 1); i < argc; ++i) {
    const char* step = after_exec && i == first ? "exec" : argv[i];
    int by_fd = 0;
    if (after_exec && i == first) {
      /* the exec step, done: only its check below */
    } else if (strcmp(step, "exec") == 0) {
      char opt[64];
      snprintf(opt, sizeof opt, "--after-exec=%d,%d", a, all_held);
      char** nargv = calloc((size_t)argc + 2, sizeof(char*));
      check(nargv != NULL, "calloc");
      int n = 0;
      nargv[n++] = argv[0];
      if (first > 1 && argv[1][0] == '-' && argv[1][1] == '-' && strncmp(argv[1], "--after-exec=", 13) != 0)
        nargv[n++] = argv[1];
      nargv[n++] = opt;
      nargv[n++] = (char*)file;
      for (int j = i + 1; j < argc; ++j) nargv[n++] = argv[j];
      fflush(stdout);
      execv("/proc/self/exe", nargv);
      check(0, "execv");
    } else if (strcmp(step, "rdwr") == 0) {
      check(open(file, O_RDWR) >= 0, "open O_RDWR");
    } else if (strcmp(step, "rdwrx") == 0) {
      void* m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, a, 0);
      check(m != MAP_FAILED, "mmap");
      const int fd = open(file, O_RDWR);
      check(fd >= 0, "open O_RDWR");
      printf("rdwrx: F_GETSIG %d\n", fcntl(fd, F_GETSIG));
      munmap(m, 4096);
      by_fd = 1;
    } else if (strcmp(step, "rdwrjump") == 0) {
#if defined(__x86_64__)
      void* m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, a, 0);
      check(m != MAP_FAILED, "mmap");
      check(strlen(file) < sizeof jump_path, "path too long");
      strcpy(jump_path, file);
      strcpy(stat_path, file);
      const int lowest = open("/dev/null", O_RDONLY);
      check(lowest >= 0 && close(lowest) == 0, "/dev/null");
      check(trap_stat_of_jump_path() == 0, "seccomp");
      printf("rdwrjump: %s\n", jumped_out_of_open(lowest) ? "jumped" : "not jumped");
      /* The open's fd: closed (which releases the lock), its number a text file's. */
      check(fcntl(lowest, F_GETFD) >= 0 && close(lowest) == 0, "close the open's fd");
      check(take_lock(a) == 0, "lock again");
      char text_path[PATH_MAX + 8];
      snprintf(text_path, sizeof text_path, "%s.txt", file);
      const int text = open(text_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
      check(text == lowest && write(text, content, sizeof content) == (ssize_t)sizeof content, "text file");
      check(open(file, O_WRONLY | O_TRUNC) >= 0, "open O_WRONLY|O_TRUNC");
      struct stat st;
      check(fstat(a, &st) == 0, "fstat A");
      printf("rdwrjump: A's file %lld bytes\n", (long long)st.st_size);
      munmap(m, 4096);
      by_fd = 1;
#else
      fprintf(stderr, "lock_holder: rdwrjump is x86-64 only\n");
      return 2;
#endif
    } else if (strcmp(step, "rdwrnest") == 0) {
#if defined(__x86_64__)
      /* A second locked copy of FILE, which a signal handler opens O_RDWR
       * in the middle of the look at FILE's O_RDWR open. */
      char second[PATH_MAX + 8];
      snprintf(second, sizeof second, "%s.2", file);
      const int b = open(second, O_RDWR | O_CREAT | O_TRUNC, 0644);
      check(b >= 0, second);
      char buf[65536];
      ssize_t n;
      off_t at = 0;
      while ((n = pread(a, buf, sizeof buf, at)) > 0) check(pwrite(b, buf, (size_t)n, at) == n, "copy"), at += n;
      struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
      check(fcntl(b, F_SETLK, &fl) == 0, "lock the second file");
      void* m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, a, 0);
      check(m != MAP_FAILED, "mmap");
      check(strlen(file) < sizeof jump_path, "path too long");
      strcpy(jump_path, file);
      strcpy(stat_path, file);
      check(trap_stat_of_jump_path() == 0, "seccomp");
      const int before = open_fds();
      nest_file = second;
      check(open(jump_path, O_RDWR) >= 0, "open O_RDWR");
      printf("rdwrnest: %s\n", nest_file ? "no handler ran" : nest_fd >= 0 ? "the handler opened" : "the handler's open failed");
      printf("rdwrnest: %d fds more\n", open_fds() - before);
      munmap(m, 4096);
      by_fd = 1;
#else
      fprintf(stderr, "lock_holder: rdwrnest is x86-64 only\n");
      return 2;
#endif
    } else if (strcmp(step, "wronly") == 0) {
      check(open(file, O_WRONLY) >= 0, "open O_WRONLY");
    } else if (strcmp(step, "trunc") == 0) {
      int fd = open(file, O_WRONLY | O_TRUNC);
      check(fd >= 0 && write(fd, content, sizeof content) == (ssize_t)sizeof content, "open O_TRUNC");
    } else if (strcmp(step, "ftruncate") == 0) {
      check(ftruncate(a, 100) == 0, "ftruncate");
      check(pwrite(a, content, sizeof content, 0) == (ssize_t)sizeof content, "pwrite");
    } else if (strcmp(step, "fopen") == 0) {
      check(fopen(file, "r+") != NULL, "fopen r+");
    } else if (strcmp(step, "closefrom") == 0) {
      closefrom(a + 1);
    } else if (strcmp(step, "closerange") == 0) {
      check(close_range((unsigned)a + 1, ~0U, 0) == 0, "close_range");
    } else if (strcmp(step, "closeloop") == 0) {
      int closed = 0;
      for (int fd = a + 1; fd < 1024; ++fd) closed += close(fd) == 0;
      printf("closeloop: %d closed\n", closed);
    } else if (strcmp(step, "dup2over") == 0) {
      check(dup2(a, a + 1) == a + 1, "dup2");
      check(close(a + 1) == 0, "close the dup");
    } else if (strcmp(step, "dup2fail") == 0) {
      check(dup2(1000, a + 1) == -1 && errno == EBADF, "dup2 from fd 1000, not open, must fail EBADF");
      check(close(a + 1) == -1 && errno == EBADF, "close(A + 1) after the failed dup2 must fail EBADF");
    } else if (strcmp(step, "oldatime") == 0) {
      const struct timespec times[2] = {{.tv_sec = 978307200}, {.tv_nsec = UTIME_OMIT}};
      check(futimens(a, times) == 0, "futimens");
    } else if (strcmp(step, "countfds") == 0) {
      printf("countfds: %d fds\n", open_fds());
    } else if (strcmp(step, "fork") == 0) {
      pid_t c = fork();
      if (c == 0) {
        printf("fork: the child has %d fds\n", open_fds());
        fflush(stdout);
        _exit(0);
      }
      check(c > 0 && waitpid(c, NULL, 0) == c, "fork");
    } else if (strcmp(step, "closeA") == 0) {
      check(close(a) == 0, "close A");
    } else if (strcmp(step, "vfork") == 0) {
      const int before = open_fds();
      for (volatile int round = 0; round < 20; round = round + 1) {
        check(ftruncate(a, 100) == 0, "ftruncate");
        check(pwrite(a, content, sizeof content, 0) == (ssize_t)sizeof content, "pwrite");
        pid_t c = vfork();
        if (c == 0) {
          close(a);  /* the child's copy: the parent's lock stays */
          _exit(0);
        }
        check(c > 0 && waitpid(c, NULL, 0) == c, "vfork");
      }
      const int more = open_fds() - before;
      printf("vfork: %d more fds\n", more);
      if (more > 1) all_held = 0;
    } else if (strcmp(step, "close2") == 0) {
      int fd = open(file, O_RDONLY);
      check(fd >= 0, "open O_RDONLY");
      close(fd);
    } else {
      fprintf(stderr, "lock_holder: unknown step %s\n", step);
      return 2;
    }
    const int held = by_fd ? lock_held_through(a) : lock_held(file);
    printf("%s: %s\n", step, held ? "held" : "released");
    fflush(stdout);
    all_held &= held;
    if (!held && strcmp(step, "closeA") != 0 && fcntl(a, F_GETFD) >= 0) check(take_lock(a) == 0, "lock again");  /* for the next step */
  }
  return all_held ? 0 : 1;
}
