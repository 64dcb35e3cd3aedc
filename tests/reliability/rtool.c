/* Small programs for the reliability tests, one per subcommand. Built without
 * sanitizers (a sanitizer's SIGBUS/SIGSEGV handler would hide what the soak
 * counts) and without _FILE_OFFSET_BITS=64, so open() is the plain symbol.
 *
 *   rtool loader LIB V1 V2 STOPFILE OUTFILE
 *       Until STOPFILE exists: read LIB by name and compare it with V1 and V2
 *       (a partial or mixed file counts as "partial"), then, in a child
 *       process, dlopen(LIB), call tg_work() and tg_version(), dlclose.  A
 *       child killed by a signal (a half-written library) counts as "crash".
 *       Writes key=value counts to OUTFILE.
 *   rtool write-loop DEST SRC N CREATE
 *       N times: open(DEST, O_WRONLY|O_TRUNC, plus O_CREAT if CREATE is 1),
 *       write SRC, close.  Prints "writes=N missing=N errors=N first_error=..."
 *       (missing: ENOENT without O_CREAT); exit 0 if no error.
 *   rtool swap-loop DIR NAME SRC1 SRC2 STOPFILE
 *       Until STOPFILE exists, swaps what DIR/NAME is, only ever exposing a
 *       complete copy of SRC1 or SRC2 or nothing: rename a complete copy
 *       over it, unlink it, link a complete copy back in.  Prints counts.
 *   rtool open FLAGS PATH
 *       open(PATH, FLAGS) (FLAGS: comma list of RDONLY WRONLY RDWR TRUNC
 *       CREAT APPEND PATH DIRECTORY NONBLOCK NOFOLLOW), prints "ok ino=N"
 *       or "error=ENAME"; exit 0 either way (the caller compares).
 *   rtool openat-copy DIR NAME SRC
 *       openat(open(DIR, O_DIRECTORY), NAME, O_WRONLY|O_TRUNC), copy SRC.
 *   rtool truncate PATH LENGTH
 *       truncate(2); prints "ok" or "error=ENAME"; exit 0 if ok, else 1.
 *   rtool redirect HOW LIB SRC
 *       A shell's "cat SRC > LIB": a child opens LIB (O_WRONLY|O_TRUNC),
 *       dup2()s it to fd 1 and runs /bin/cat SRC.  HOW: vfork-execv (vfork,
 *       then execv), fork-execl (fork, then execl) or vfork-execl-twice
 *       (vfork, then execl, done twice: the second child runs on the stack
 *       the first one left when it exec'ed) or vfork-syscall-execve-twice
 *       (the same through syscall(SYS_execve)).  The
 *       parent then opens 8 fds, closes fd 1 and then its fds one by one, and
 *       checks after each close that its other fds are still open: prints
 *       "fds intact" or "fd N was closed behind the program's back" (exit 1).
 *   rtool spawn-trunc PATH
 *       posix_spawn("/bin/true") with the file action
 *       open(PATH, O_WRONLY|O_TRUNC) on fd 1 (a redirection done by libc
 *       inside the spawn).  Exit status of the child.
 *   rtool freopen-null MODE PATH
 *       fopen(PATH, "r"), then freopen(NULL, MODE, stream): glibc reopens the
 *       stream's own file through /proc/self/fd with an internal open. For
 *       "r+" it then writes 64 bytes of 0xcc at offset 4096, where a
 *       library's code starts (a patch in place).
 *   rtool log-fd-reuse TEXT DATA close_range|closefrom|loop
 *       A program that closes every fd it did not open: open(TEXT, O_WRONLY|
 *       O_TRUNC) (the shim logs a decision: its log fd is now open), then
 *       every fd from 3 up: the close_range system call (raw: no libc
 *       wrapper sees it), closefrom(3), or close() of each up to 1023; then
 *       open(DATA, O_WRONLY|O_CREAT|O_APPEND) (pass-through, not logged),
 *       moved (dup2) to the log's old number (the shim keeps its log out of
 *       the low numbers: a program that opens many files gets it all the
 *       same); then TEXT again (logged), then "data\n" written to DATA.
 *       Prints "fd=N log=N" (DATA's fd, the log's old one).
 *   rtool lease-ftruncate PATH
 *       A program with a write lease on its own file (as Samba's oplocks):
 *       open(PATH, O_RDWR), F_SETSIG SIGUSR1 (counted), F_SETLEASE F_WRLCK,
 *       ftruncate(fd, 10), then F_GETLEASE. Prints "breaks=N lease=L"
 *       (N: lease-break signals received; L: 1 if the lease is still a
 *       write lease); exit 0 if the ftruncate succeeded.
 *   rtool lease-hold PATH MS READY
 *       Another process's write lease, as Samba's oplocks or an F_SETLEASE
 *       cache hold one: open(PATH, O_RDWR), F_SETLEASE F_WRLCK, creates READY.
 *       At the first lease-break signal (SIGIO) it waits MS ms (a client
 *       flushing what it cached), appends "flushed\n" to PATH through its fd,
 *       then releases the lease. Prints "breaks=N" (signals received by then)
 *       and, 300 ms later, "breaks after=N"; exit 0, or 1 if no break came
 *       within 10 s, or 77 if no write lease can be had here.
 *   rtool fanotify-deny PATH READY
 *       An on-access scanner that refuses a file (a quarantined one): a
 *       fanotify listener answers FAN_DENY to every open of PATH (the opener
 *       gets EPERM), creates READY once listening, and at SIGTERM prints
 *       "denied=N", the opens it refused. Needs CAP_SYS_ADMIN; exit 77
 *       where fanotify permission events can't be had.
 *   rtool ftruncate-rdonly PATH
 *       ftruncate(open(PATH, O_RDONLY), 0), which the kernel refuses (EINVAL).
 *       Prints "ok" or "error=ENAME"; exit 0 if ok, else 1.
 *   rtool ftruncate-fd FD LENGTH
 *       ftruncate(FD, LENGTH) on an fd the caller opened (a shell's 3<>FILE).
 *       Prints "ok" or "error=ENAME"; exit 0 if ok, else 1.
 *   rtool ftruncate-fd-ino FD LENGTH
 *       The same, then says which file the fd is on after it: prints
 *       "ok ino=N" or "error=ENAME ino=N" (N: fstat(FD)'s inode).
 *   rtool ftruncate-fd-lock FD LENGTH
 *       As ftruncate-fd-ino, with a POSIX lock (F_WRLCK) on bytes 20-29
 *       taken through FD first (by F_SETLKW, which nobody contends: a
 *       filter denying F_SETLK denies the shim's own taking it again); then a child process asks for that
 *       range through the fd (F_GETLK, as another owner): prints the same,
 *       then " posix=held" or " posix=released" (the program's lock, on the
 *       file the fd is on after the ftruncate).
 *   rtool fopen-nomem MODE PATH
 *       fopen(PATH, MODE) while every malloc fails (ENOMEM: rtool's own
 *       malloc, which glibc's fopen and fdopen call too). Prints "ok" or
 *       "error=ENAME"; exit 0 if the fopen succeeded.
 *   rtool open-after-close FD PATH
 *       close(FD), then open(PATH, O_WRONLY|O_TRUNC|O_CLOEXEC), which POSIX
 *       gives the lowest free number, FD (the old way to redirect stdout).
 *       Prints "fd=N cloexec=N" or "error=ENAME"; exit 0 either way.
 *   rtool small-stack-execl BYTES l|lp|le
 *       A thread with a stack of BYTES (at least the system's minimum) calls
 *       execl("/bin/true", "true", NULL), execlp("true", "true", NULL) or
 *       execle("/bin/true", "true", NULL, environ): the exit status is
 *       true's, or the crash's if the exec wrapper does not fit that stack.
 *   rtool with-free-fds N CMD [ARG...]
 *       A program that has used all but N of its file descriptors: sets
 *       RLIMIT_NOFILE to 64, holds every other descriptor open on /dev/null
 *       (inherited) and execs CMD. N >= 1: the dynamic loader of CMD needs
 *       one to open its libraries (and closes it again).
 *   rtool main-thread-exits SUBCOMMAND [ARG...]
 *       rtool SUBCOMMAND run by a second thread once the main thread has
 *       exited (pthread_exit), as in a daemon whose main() ends that way:
 *       /proc/self/fd and /proc/self/maps are then empty. Exit status the
 *       subcommand's.
 *   rtool ptrace-hold TID
 *       Attaches to thread TID (PTRACE_SEIZE: it runs on), prints "ok" and
 *       waits until killed, never reaping it: once TID exits, it stays in
 *       its process's task list, with no memory, as an exiting thread is
 *       for a moment.
 *   rtool deny SYSCALL[=ARG|~FD|>FD]:ERRNO[,...] CMD [ARG...]
 *       A seccomp filter, as a hardened service has: SYSCALL (ioctl, fcntl,
 *       getdents64, mmap, copy_file_range, faccessat2, fsync, fchown,
 *       renameat, renameat2, unlinkat, linkat, openat, dup3, statx, lseek,
 *       pwrite64, ftruncate, kcmp, utimensat, fremovexattr, or a number)
 *       fails with ERRNO (EPERM, EACCES,
 *       ENOSYS, ENOMEM, EINVAL, EDQUOT, EIO, EINTR, ENOSPC, EMFILE, EBADF,
 *       EBUSY), only when its second
 *       argument is ARG if given (a number, or PROCMAP_QUERY, F_SETLEASE,
 *       F_SETLK, FICLONE), or only when its first argument is NOT the number FD
 *       (fsync~1:EINVAL: a filesystem with no fsync for directories, the
 *       writer's file at fd 1), or only when its first argument is above
 *       the number FD (dup3>500:EBADF: a dup3 from the fds the shim keeps
 *       high, sys::dup_high, and not from the others); then execs CMD. ERRNO KILL kills the process
 *       instead (SIGSYS), as systemd's SystemCallFilter= does without
 *       SystemCallErrorNumber=; SYSCALL setfsuid too. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

static const char* errname(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case ETXTBSY: return "ETXTBSY";
    case ENOSPC: return "ENOSPC";
    case EISDIR: return "EISDIR";
    case ENOTDIR: return "ENOTDIR";
    case ENXIO: return "ENXIO";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EBUSY: return "EBUSY";
    case EXDEV: return "EXDEV";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case ELOOP: return "ELOOP";
    case EEXIST: return "EEXIST";
    default: return strerrorname_np(e) ? strerrorname_np(e) : "E?";
  }
}

static char* slurp(const char* path, size_t* len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 1 << 16, n = 0;
  char* buf = malloc(cap);
  for (;;) {
    if (n == cap) buf = realloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  *len = n;
  return buf;
}

static int copy_into(int out, const char* src) {
  size_t n;
  char* data = slurp(src, &n);
  if (!data) return -1;
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(out, data + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { free(data); return -1; }
    done += (size_t)w;
  }
  free(data);
  return 0;
}

/* ------------------------------------------------------------------ loader */

/* One load in a child process, so a fault (a half-written library, even
 * inside dlopen) is counted and the loop goes on.  Exit codes: */
enum { kLoadOk = 0, kLoadEnoent = 10, kLoadFailed = 11, kLoadBadVersion = 12 };

static char* g_first_failure; /* MAP_SHARED: written by the first failing child */

static int load_once(const char* lib, int iter) {
  void* h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    if (e && strstr(e, "No such file or directory")) return kLoadEnoent;
    if (!g_first_failure[0]) snprintf(g_first_failure, 512, "%s", e ? e : "?");
    return kLoadFailed;
  }
  int (*version)(void) = (int (*)(void))dlsym(h, "tg_version");
  int (*work)(int) = (int (*)(int))dlsym(h, "tg_work");
  if (!version || !work) {
    if (!g_first_failure[0]) snprintf(g_first_failure, 512, "tg_version/tg_work missing");
    return kLoadFailed;
  }
  work(iter); /* a half-written library faults here: its pages are not there */
  int v = version();
  dlclose(h);
  return v == 1 || v == 2 ? kLoadOk : kLoadBadVersion;
}

static int loader(char** a) {
  const char *lib = a[0], *v1p = a[1], *v2p = a[2], *stop = a[3], *out = a[4];
  size_t n1, n2;
  char* v1 = slurp(v1p, &n1);
  char* v2 = slurp(v2p, &n2);
  if (!v1 || !v2) { fprintf(stderr, "loader: cannot read %s or %s\n", v1p, v2p); return 2; }
  g_first_failure = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (g_first_failure == MAP_FAILED) return 2;
  g_first_failure[0] = '\0';
  long iters = 0, loads = 0, enoent = 0, failed = 0, bad_version = 0, crashes = 0;
  long reads = 0, read_enoent = 0, partial = 0;
  char first_partial[128] = "", first_crash[64] = "";
  while (access(stop, F_OK) != 0) {
    ++iters;
    /* 1. What a reader sees at the name: all of v1, all of v2, or nothing. */
    size_t n;
    char* got = slurp(lib, &n);
    if (!got) {
      ++read_enoent;
    } else {
      ++reads;
      if (!((n == n1 && memcmp(got, v1, n) == 0) || (n == n2 && memcmp(got, v2, n) == 0))) {
        if (!partial++) snprintf(first_partial, sizeof first_partial, "%zu bytes (v1 %zu, v2 %zu)", n, n1, n2);
      }
      free(got);
    }
    /* 2. What a loader gets. */
    pid_t pid = fork();
    if (pid == 0) _exit(load_once(lib, (int)iters));
    if (pid < 0) { perror("loader: fork"); return 2; }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFSIGNALED(st)) {
      if (!crashes++) snprintf(first_crash, sizeof first_crash, "signal %d", WTERMSIG(st));
    } else switch (WEXITSTATUS(st)) {
      case kLoadOk: ++loads; break;
      case kLoadEnoent: ++enoent; break;
      case kLoadBadVersion: ++bad_version; break;
      default: ++failed; break;
    }
  }
  FILE* f = fopen(out, "w");
  if (!f) return 2;
  fprintf(f, "iterations=%ld\nloads=%ld\nenoent=%ld\nfailed=%ld\nbad_version=%ld\ncrashes=%ld\n", iters, loads, enoent,
          failed, bad_version, crashes);
  fprintf(f, "reads=%ld\nread_enoent=%ld\npartial=%ld\n", reads, read_enoent, partial);
  fprintf(f, "first_failure=%s\nfirst_partial=%s\nfirst_crash=%s\n", g_first_failure, first_partial, first_crash);
  fclose(f);
  return 0;
}

/* --------------------------------------------------------- write/swap loops */

static int write_loop(char** a) {
  const char *dest = a[0], *src = a[1];
  long n = atol(a[2]), errors = 0, missing = 0;
  const int create = atoi(a[3]) ? O_CREAT : 0;
  char first[256] = "";
  for (long i = 0; i < n; ++i) {
    int fd = open(dest, O_WRONLY | O_TRUNC | O_CLOEXEC | create, 0644);
    if (fd < 0 && errno == ENOENT && !create) {
      ++missing;
      continue;
    }
    if (fd < 0 || copy_into(fd, src) < 0) {
      if (!errors++) snprintf(first, sizeof first, "%s: %s", fd < 0 ? "open" : "write", strerror(errno));
    }
    if (fd >= 0 && close(fd) != 0 && !errors++) snprintf(first, sizeof first, "close: %s", strerror(errno));
  }
  printf("writes=%ld missing=%ld errors=%ld first_error=%s\n", n, missing, errors, first);
  return errors ? 1 : 0;
}

static int swap_loop(char** a) {
  const char *dir = a[0], *name = a[1], *src1 = a[2], *src2 = a[3], *stop = a[4];
  char path[4096], tmp[4096], aside[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(tmp, sizeof tmp, "%s/swap.tmp", dir);
  snprintf(aside, sizeof aside, "%s/swap.aside", dir);
  long renames = 0, unlinks = 0, links = 0, errors = 0;
  for (unsigned i = 0; access(stop, F_OK) != 0; ++i) {
    const char* src = (i & 1) ? src2 : src1;
    /* a complete copy, written under another name first */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || copy_into(fd, src) < 0) ++errors;
    if (fd >= 0) close(fd);
    switch (i % 4) {
      case 0:
      case 2:  /* swapped: a new inode at the name */
        if (rename(tmp, path) == 0) ++renames; else ++errors;
        break;
      case 1:  /* removed, then a complete file linked back in */
        if (unlink(path) == 0) ++unlinks;
        if (rename(tmp, aside) != 0) ++errors;
        if (link(aside, path) == 0) ++links;
        else if (errno != EEXIST) ++errors;  /* the writer recreated it meanwhile */
        unlink(aside);
        break;
      case 3:  /* removed */
        if (unlink(path) == 0) ++unlinks;
        unlink(tmp);
        break;
    }
    struct timespec t = {0, 200 * 1000};
    nanosleep(&t, NULL);
  }
  printf("renames=%ld unlinks=%ld links=%ld errors=%ld\n", renames, unlinks, links, errors);
  return errors ? 1 : 0;
}

/* ------------------------------------------------------------ single calls */

static int parse_flags(const char* s) {
  static const struct { const char* name; int flag; } kFlags[] = {
      {"RDONLY", O_RDONLY}, {"WRONLY", O_WRONLY}, {"RDWR", O_RDWR}, {"TRUNC", O_TRUNC},
      {"CREAT", O_CREAT}, {"APPEND", O_APPEND}, {"PATH", O_PATH}, {"DIRECTORY", O_DIRECTORY},
      {"NONBLOCK", O_NONBLOCK}, {"NOFOLLOW", O_NOFOLLOW}, {NULL, 0}};
  int flags = 0;
  char* copy = strdup(s);
  for (char* w = strtok(copy, ","); w; w = strtok(NULL, ",")) {
    int found = 0;
    for (int i = 0; kFlags[i].name; ++i)
      if (!strcmp(w, kFlags[i].name)) { flags |= kFlags[i].flag; found = 1; }
    if (!found) { fprintf(stderr, "rtool: unknown flag %s\n", w); exit(2); }
  }
  free(copy);
  return flags;
}

static int do_open(char** a) {
  int fd = open(a[1], parse_flags(a[0]) | O_CLOEXEC, 0644);
  if (fd < 0) { printf("error=%s\n", errname(errno)); return 0; }
  struct stat st;
  fstat(fd, &st);
  printf("ok ino=%lu\n", (unsigned long)st.st_ino);
  close(fd);
  return 0;
}

static int openat_copy(char** a) {
  int dir = open(a[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) { perror("rtool: open dir"); return 1; }
  int fd = openat(dir, a[1], O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) { printf("error=%s\n", errname(errno)); return 1; }
  int r = copy_into(fd, a[2]);
  close(fd);
  close(dir);
  return r < 0 ? 1 : 0;
}

static int do_truncate(char** a) {
  if (truncate(a[0], atol(a[1])) != 0) { printf("error=%s\n", errname(errno)); return 1; }
  printf("ok\n");
  return 0;
}

static int redirect(char** a) {
  const int raw = !strcmp(a[0], "vfork-syscall-execve-twice");
  const int twice = raw || !strcmp(a[0], "vfork-execl-twice");
  const int use_vfork = twice || !strcmp(a[0], "vfork-execv");
  if (!use_vfork && strcmp(a[0], "fork-execl")) {
    fprintf(stderr, "rtool: redirect vfork-execv|fork-execl|vfork-execl-twice|vfork-syscall-execve-twice\n");
    return 2;
  }
  char* argv[] = {"cat", a[2], NULL};
  const char* lib = a[1];
  for (int round = 0; round < (twice ? 2 : 1); ++round) {
    pid_t pid = use_vfork ? vfork() : fork();
    if (pid == 0) {
      int fd = open(lib, O_WRONLY | O_TRUNC);
      if (fd < 0) _exit(3);
      if (dup2(fd, 1) < 0) _exit(4);
      close(fd);
      if (raw) syscall(SYS_execve, "/bin/cat", argv, environ);
      else if (use_vfork && !twice) execv("/bin/cat", argv);
      else execl("/bin/cat", "cat", a[2], (char*)NULL);
      _exit(127);
    }
    if (pid < 0) { perror("rtool: vfork"); return 2; }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "rtool: the child of round %d failed (%s %d)\n", round + 1,
              WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
      return 2;
    }
  }
  int fds[8];
  for (int i = 0; i < 8; ++i) fds[i] = open("/dev/null", O_RDONLY);
  int bad = -1;
  close(1);
  for (int i = 0; i < 8 && bad < 0; ++i) {
    for (int j = i; j < 8; ++j)
      if (fcntl(fds[j], F_GETFD) < 0) { bad = fds[j]; break; }
    close(fds[i]);
  }
  if (bad >= 0) { fprintf(stderr, "fd %d was closed behind the program's back\n", bad); return 1; }
  fprintf(stderr, "fds intact\n");
  return 0;
}

/* vfork-then-read LIB SRC DATA: a vfork child overwrites LIB (dlopen'ed by
 * the parent) with SRC and exits; the parent then opens DATA on 64 fds
 * (the numbers the child's fds had) and overwrites LIB with SRC itself.
 * Each fd must still be at offset 0: nothing else read from it. Prints
 * "offsets intact" or "fd N was read behind the program's back (offset M)". */
static int copy_to(const char* path, const char* src) {
  int in = open(src, O_RDONLY | O_CLOEXEC), out = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  char buf[8192];
  ssize_t n;
  int ok = in >= 0 && out >= 0;
  while (ok && (n = read(in, buf, sizeof buf)) > 0) ok = write(out, buf, (size_t)n) == n;
  if (in >= 0) close(in);
  if (out >= 0 && close(out) != 0) ok = 0;
  return ok ? 0 : -1;
}

static int vfork_then_read(char** a) {
  if (!dlopen(a[0], RTLD_NOW)) { fprintf(stderr, "rtool: dlopen: %s\n", dlerror()); return 2; }
  pid_t pid = vfork();
  if (pid == 0) _exit(copy_to(a[0], a[1]) == 0 ? 0 : 3);
  if (pid < 0) { perror("rtool: vfork"); return 2; }
  int st;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "rtool: the child failed (status %d)\n", st); return 2; }
  int fds[64];
  for (int i = 0; i < 64; ++i)
    if ((fds[i] = open(a[2], O_RDONLY | O_CLOEXEC)) < 0) { perror("rtool: open DATA"); return 2; }
  if (copy_to(a[0], a[1]) != 0) { perror("rtool: the parent's write"); return 2; }
  int bad = 0;
  for (int i = 0; i < 64; ++i) {
    const off_t off = lseek(fds[i], 0, SEEK_CUR);
    if (off != 0) {
      fprintf(stderr, "fd %d was read behind the program's back (offset %ld)\n", fds[i], (long)off);
      bad = 1;
    }
  }
  if (!bad) fprintf(stderr, "offsets intact\n");
  return bad;
}

static int spawn_trunc(char** a) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, a[0], O_WRONLY | O_TRUNC, 0);
  char* argv[] = {"true", NULL};
  pid_t pid;
  int r = posix_spawn(&pid, "/bin/true", &fa, NULL, argv, environ);
  if (r != 0) { printf("error=%s\n", errname(r)); return 1; }
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int freopen_null(char** a) {
  FILE* f = fopen(a[1], "r");
  if (!f) { printf("error=%s\n", errname(errno)); return 1; }
  f = freopen(NULL, a[0], f);
  if (!f) { printf("error=%s\n", errname(errno)); return 1; }
  if (!strcmp(a[0], "r+")) {
    char patch[64];
    memset(patch, 0xcc, sizeof patch);
    if (fseek(f, 4096, SEEK_SET) != 0 || fwrite(patch, 1, sizeof patch, f) != sizeof patch) { printf("error=%s\n", errname(errno)); return 1; }
  }
  if (fclose(f) != 0) { printf("error=%s\n", errname(errno)); return 1; }
  printf("ok\n");
  return 0;
}

/* The number of the fd open on this process's log file ($TRUNCGUARD_LOG.PID), or -1. */
static int fd_on_log(void) {
  const char* log = getenv("TRUNCGUARD_LOG");
  char want[4200], p[64], link[4200];
  if (!log) return -1;
  snprintf(want, sizeof want, "%s.%d", log, (int)getpid());
  for (int fd = 0; fd < 4096; ++fd) {
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(p, link, sizeof link - 1);
    if (k <= 0) continue;
    link[k] = '\0';
    if (!strcmp(link, want)) return fd;
  }
  return -1;
}

static int log_fd_reuse(char** a) {
  int fd = open(a[0], O_WRONLY | O_TRUNC);
  if (fd < 0) { printf("error=%s\n", errname(errno)); return 1; }
  close(fd);
  const int log_fd = fd_on_log();
  if (log_fd < 3) { printf("error=no log fd above 2 (%d)\n", log_fd); return 1; }
  if (!strcmp(a[2], "closefrom")) closefrom(3);
  else if (!strcmp(a[2], "loop")) for (int i = 3; i < 1024; ++i) close(i);
  else syscall(SYS_close_range, 3U, ~0U, 0);
  int data = open(a[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (data >= 0 && data != log_fd) {
    const int moved = dup2(data, log_fd);
    close(data);
    data = moved;
  }
  fd = open(a[0], O_WRONLY | O_TRUNC);
  if (data < 0 || fd < 0 || write(data, "data\n", 5) != 5) { printf("error=%s\n", errname(errno)); return 1; }
  close(fd);
  printf("fd=%d log=%d\n", data, log_fd);
  return close(data) == 0 ? 0 : 1;
}

static volatile sig_atomic_t g_breaks;
static void on_break(int sig) { (void)sig; g_breaks++; }

static int lease_ftruncate(char** a) {
  signal(SIGUSR1, on_break);
  int fd = open(a[0], O_RDWR);
  if (fd < 0 || fcntl(fd, F_SETSIG, SIGUSR1) != 0 || fcntl(fd, F_SETLEASE, F_WRLCK) != 0) {
    printf("error=%s\n", errname(errno));
    return 1;
  }
  int r = ftruncate(fd, 10);
  int e = errno;
  struct timespec pause = {0, 50000000};  /* a lease-break signal has time to arrive */
  nanosleep(&pause, NULL);
  printf("breaks=%d lease=%d\n", (int)g_breaks, fcntl(fd, F_GETLEASE) == F_WRLCK);
  if (r != 0) { printf("error=%s\n", errname(e)); return 1; }
  return 0;
}

static int lease_hold(char** a) {
  signal(SIGIO, on_break);
  int fd = open(a[0], O_RDWR);
  if (fd < 0 || fcntl(fd, F_SETLEASE, F_WRLCK) != 0) {
    printf("no write lease: error=%s\n", errname(errno));
    return 77;
  }
  int ready = open(a[2], O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (ready < 0) { printf("error=%s\n", errname(errno)); return 2; }
  close(ready);
  struct timespec tick = {0, 1000000};
  for (int i = 0; i < 10000 && !g_breaks; ++i) nanosleep(&tick, NULL);
  if (!g_breaks) { printf("no break\n"); return 1; }
  long ms = strtol(a[1], NULL, 10);
  struct timespec flush = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&flush, NULL);
  if (pwrite(fd, "flushed\n", 8, lseek(fd, 0, SEEK_END)) != 8 || fcntl(fd, F_SETLEASE, F_UNLCK) != 0) {
    printf("error=%s\n", errname(errno));
    return 2;
  }
  printf("breaks=%d\n", (int)g_breaks);
  fflush(stdout);
  struct timespec later = {0, 300000000};
  nanosleep(&later, NULL);
  printf("breaks after=%d\n", (int)g_breaks);
  return 0;
}

static int ptrace_hold(char** a) {
  if (ptrace(PTRACE_SEIZE, (pid_t)atoi(a[0]), NULL, NULL) != 0) {
    printf("error=%s\n", errname(errno));
    return 1;
  }
  printf("ok\n");
  fflush(stdout);
  for (;;) pause();
}

static volatile sig_atomic_t g_stop;
static void on_stop(int sig) { (void)sig; g_stop = 1; }

static int fanotify_deny(char** a) {
  int fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY | O_LARGEFILE);
  if (fan < 0 || fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, a[0]) != 0) {
    printf("no fanotify permission events: error=%s\n", errname(errno));
    return 77;
  }
  struct sigaction sa = {.sa_handler = on_stop};  /* no SA_RESTART: read() returns */
  sigaction(SIGTERM, &sa, NULL);
  int ready = open(a[1], O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (ready < 0) { printf("error=%s\n", errname(errno)); return 2; }
  close(ready);
  long denied = 0;
  char buf[4096] __attribute__((aligned(8)));
  while (!g_stop) {
    ssize_t n = read(fan, buf, sizeof buf);
    if (n <= 0) continue;  /* EINTR: SIGTERM */
    for (struct fanotify_event_metadata* m = (struct fanotify_event_metadata*)buf; FAN_EVENT_OK(m, n);
         m = FAN_EVENT_NEXT(m, n)) {
      struct fanotify_response r = {.fd = m->fd, .response = FAN_DENY};
      if (write(fan, &r, sizeof r) == (ssize_t)sizeof r) ++denied;
      if (m->fd >= 0) close(m->fd);
    }
  }
  printf("denied=%ld\n", denied);
  return 0;
}

static int ftruncate_rdonly(char** a) {
  int fd = open(a[0], O_RDONLY);
  if (fd < 0 || ftruncate(fd, 0) != 0) { printf("error=%s\n", errname(errno)); return 1; }
  printf("ok\n");
  return 0;
}

static int ftruncate_fd(char** a) {
  if (ftruncate(atoi(a[0]), atol(a[1])) != 0) { printf("error=%s\n", errname(errno)); return 1; }
  printf("ok\n");
  return 0;
}

static int ftruncate_fd_ino(char** a) {
  const int fd = atoi(a[0]);
  const int r = ftruncate(fd, atol(a[1]));
  const int e = errno;
  struct stat st;
  const long ino = fstat(fd, &st) == 0 ? (long)st.st_ino : -1;
  if (r != 0) { printf("error=%s ino=%ld\n", errname(e), ino); return 1; }
  printf("ok ino=%ld\n", ino);
  return 0;
}

static int ftruncate_fd_lock(char** a) {
  const int fd = atoi(a[0]);
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 10};
  if (fcntl(fd, F_SETLKW, &fl) != 0) { printf("lock: %s\n", errname(errno)); return 2; }
  const int r = ftruncate(fd, atol(a[1]));
  const int e = errno;
  struct stat st;
  const long ino = fstat(fd, &st) == 0 ? (long)st.st_ino : -1;
  if (r != 0) printf("error=%s ino=%ld", errname(e), ino);
  else printf("ok ino=%ld", ino);
  fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 10};
    if (fcntl(fd, F_GETLK, &q) != 0) { printf(" posix=%s\n", errname(errno)); fflush(stdout); _exit(2); }
    printf(" posix=%s\n", q.l_type == F_UNLCK ? "released" : "held");
    fflush(stdout);
    _exit(0);
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status)) return 2;
  return r == 0 ? 0 : 1;
}

/* malloc, failing (ENOMEM) while g_fail_mallocs is set: what a program out
 * of memory (or under a cgroup's limit) gets. glibc's own calls (fdopen's
 * FILE) come here too. All four are glibc's (__libc_*), so that an
 * allocator preloaded with the shim (ASan's, under build-asan) never frees
 * what glibc's malloc gave. */
extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void __libc_free(void*);
static volatile int g_fail_mallocs;
void* malloc(size_t n) {
  if (g_fail_mallocs) { errno = ENOMEM; return NULL; }
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) {
  if (g_fail_mallocs) { errno = ENOMEM; return NULL; }
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t n) {
  if (g_fail_mallocs) { errno = ENOMEM; return NULL; }
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }

static int fopen_nomem(char** a) {
  g_fail_mallocs = 1;
  FILE* f = fopen(a[1], a[0]);
  const int e = errno;
  g_fail_mallocs = 0;
  if (!f) { printf("error=%s\n", errname(e)); return 1; }
  printf("ok\n");
  return fclose(f) == 0 ? 0 : 1;
}

static int open_after_close(char** a) {
  close(atoi(a[0]));
  int fd = open(a[1], O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) { printf("error=%s\n", errname(errno)); return 0; }
  printf("fd=%d cloexec=%d\n", fd, (fcntl(fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
  return 0;
}

static void* execl_true(void* which) {
  if (!strcmp(which, "lp")) execlp("true", "true", (char*)NULL);
  else if (!strcmp(which, "le")) execle("/bin/true", "true", (char*)NULL, environ);
  else execl("/bin/true", "true", (char*)NULL);
  perror("rtool: exec");
  return NULL;
}

static int small_stack_execl(char** a) {
  size_t size = (size_t)atol(a[0]);
  const long min = sysconf(_SC_THREAD_STACK_MIN);
  if (min > 0 && size < (size_t)min) size = (size_t)min;
  pthread_attr_t attr;
  pthread_t t;
  if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, size) != 0 ||
      pthread_create(&t, &attr, execl_true, a[1]) != 0) {
    fprintf(stderr, "rtool: cannot start a thread with a %zu-byte stack\n", size);
    return 2;
  }
  pthread_join(t, NULL);
  return 1;  /* the exec failed */
}

/* ------------------------------------------------- limits, then exec CMD */

static int with_free_fds(int argc, char** a) {
  const int want = atoi(a[0]);
  struct rlimit rl = {64, 64};
  if (argc < 2 || want < 1 || setrlimit(RLIMIT_NOFILE, &rl) != 0) { fprintf(stderr, "rtool: with-free-fds N>=1 CMD...\n"); return 2; }
  int fds[64], n = 0;
  for (int fd; n < 64 && (fd = open("/dev/null", O_RDONLY)) >= 0;) fds[n++] = fd;
  for (int i = 0; i < want && n > 0; ++i) close(fds[--n]);
  execvp(a[1], a + 1);
  fprintf(stderr, "rtool: exec %s: %s\n", a[1], strerror(errno));
  return 127;
}

static long deny_number(const char* what, const char* s) {
  static const struct { const char* name; long value; } kNames[] = {
      {"ioctl", SYS_ioctl}, {"fcntl", SYS_fcntl}, {"getdents64", SYS_getdents64}, {"mmap", SYS_mmap},
      {"copy_file_range", SYS_copy_file_range}, {"faccessat2", SYS_faccessat2}, {"setfsuid", SYS_setfsuid},
      {"fsync", SYS_fsync}, {"renameat", SYS_renameat}, {"unlinkat", SYS_unlinkat}, {"dup3", SYS_dup3},
      {"renameat2", SYS_renameat2}, {"statx", SYS_statx}, {"linkat", SYS_linkat}, {"openat", SYS_openat},
      {"lseek", SYS_lseek}, {"pwrite64", SYS_pwrite64}, {"ftruncate", SYS_ftruncate}, {"EINTR", EINTR},
      {"ENOSPC", ENOSPC}, {"EMFILE", EMFILE}, {"EBADF", EBADF}, {"EBUSY", EBUSY}, {"EIO", EIO}, {"KILL", -1}, {"EPERM", EPERM}, {"EACCES", EACCES}, {"ENOSYS", ENOSYS},
      {"ENOMEM", ENOMEM}, {"EINVAL", EINVAL}, {"EDQUOT", EDQUOT}, {"fchown", SYS_fchown},
      /* PROCMAP_QUERY (Linux 6.11): _IOWR('f', 17, struct procmap_query), 104 bytes */
      {"PROCMAP_QUERY", (long)_IOWR('f', 17, char[104])}, {"F_SETLEASE", F_SETLEASE}, {"F_SETLK", F_SETLK},
      {"FICLONE", (long)_IOW(0x94, 9, int)}, /* linux/fs.h */ {"kcmp", SYS_kcmp}, {"utimensat", SYS_utimensat},
      {"fremovexattr", SYS_fremovexattr}, {NULL, 0}};
  for (int i = 0; kNames[i].name; ++i)
    if (!strcmp(s, kNames[i].name)) return kNames[i].value;
  char* end;
  long v = strtol(s, &end, 0);
  if (*s && !*end) return v;
  fprintf(stderr, "rtool: deny: unknown %s %s\n", what, s);
  exit(2);
}

static int deny(int argc, char** a) {
  if (argc < 2) { fprintf(stderr, "rtool: deny SPEC CMD...\n"); return 2; }
  struct sock_filter f[64];
  int n = 0;
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  char* spec = strdup(a[0]);
  for (char* rule = strtok(spec, ","); rule && n < 56; rule = strtok(NULL, ",")) {
    char* colon = strchr(rule, ':');
    if (!colon) { fprintf(stderr, "rtool: deny: %s: no :ERRNO\n", rule); return 2; }
    *colon = '\0';
    char* eq = strchr(rule, '=');
    if (eq) *eq = '\0';
    char* except = strchr(rule, '~');
    if (except) *except = '\0';
    char* above = strchr(rule, '>');
    if (above) *above = '\0';
    const long nr = deny_number("system call", rule), err = deny_number("errno", colon + 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    if (eq) {  /* the low 32 bits of the second argument */
      f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 3);
      f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]));
      f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)deny_number("argument", eq + 1), 0, 1);
    } else if (except || above) {  /* the low 32 bits of the first argument are not FD (~), or above it (>) */
      f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 3);
      f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
      const unsigned fd = (unsigned)deny_number("fd", (except ? except : above) + 1);
      f[n++] = except ? (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, fd, 1, 0)
                      : (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, fd, 0, 1);
    } else {
      f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1);
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, err < 0 ? SECCOMP_RET_KILL_PROCESS
                                                                    : SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA));
  }
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog prog = {(unsigned short)n, f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    fprintf(stderr, "rtool: deny: seccomp: %s\n", strerror(errno));
    return 3;
  }
  execvp(a[1], a + 1);
  fprintf(stderr, "rtool: exec %s: %s\n", a[1], strerror(errno));
  return 127;
}

static int run(int argc, char** argv);

static int main_thread_exits_argc;
static char** main_thread_exits_argv;
static void* after_main_thread(void* unused) {
  (void)unused;
  char status[64], buf[4096];
  snprintf(status, sizeof status, "/proc/%d/status", (int)getpid());
  for (int i = 0; i < 500; ++i) {  /* until the main thread is a zombie */
    int fd = open(status, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    if (n > 0 && (buf[n] = '\0', strstr(buf, "State:\tZ"))) break;
    usleep(10000);
  }
  exit(run(main_thread_exits_argc, main_thread_exits_argv));
}

int main(int argc, char** argv) {
  if (argc > 2 && !strcmp(argv[1], "main-thread-exits")) {
    main_thread_exits_argc = argc - 1;
    main_thread_exits_argv = argv + 1;
    pthread_t t;
    if (pthread_create(&t, NULL, after_main_thread, NULL) != 0) { fprintf(stderr, "rtool: pthread_create\n"); return 2; }
    pthread_exit(NULL);
  }
  return run(argc, argv);
}

static int run(int argc, char** argv) {
  if (argc > 3 && !strcmp(argv[1], "with-free-fds")) return with_free_fds(argc - 2, argv + 2);
  if (argc > 3 && !strcmp(argv[1], "deny")) return deny(argc - 2, argv + 2);
  static const struct { const char* name; int args; int (*fn)(char**); } kCmds[] = {
      {"loader", 5, loader},       {"write-loop", 4, write_loop}, {"swap-loop", 5, swap_loop},
      {"open", 2, do_open},        {"openat-copy", 3, openat_copy}, {"truncate", 2, do_truncate},
      {"spawn-trunc", 1, spawn_trunc}, {"redirect", 3, redirect}, {"freopen-null", 2, freopen_null},
      {"ftruncate-rdonly", 1, ftruncate_rdonly}, {"log-fd-reuse", 3, log_fd_reuse},
      {"lease-ftruncate", 1, lease_ftruncate}, {"lease-hold", 3, lease_hold}, {"fanotify-deny", 2, fanotify_deny}, {"ftruncate-fd", 2, ftruncate_fd},
      {"ftruncate-fd-ino", 2, ftruncate_fd_ino}, {"ftruncate-fd-lock", 2, ftruncate_fd_lock}, {"fopen-nomem", 2, fopen_nomem},
      {"open-after-close", 2, open_after_close}, {"small-stack-execl", 2, small_stack_execl},
      {"ptrace-hold", 1, ptrace_hold}, {"vfork-then-read", 3, vfork_then_read}, {NULL, 0, NULL}};
  for (int i = 0; argc > 1 && kCmds[i].name; ++i)
    if (!strcmp(argv[1], kCmds[i].name)) {
      if (argc - 2 != kCmds[i].args) break;
      return kCmds[i].fn(argv + 2);
    }
  fprintf(stderr, "usage: rtool loader|write-loop|swap-loop|open|openat-copy|truncate|spawn-trunc|redirect|freopen-null|ftruncate-rdonly|ftruncate-fd|ftruncate-fd-ino|ftruncate-fd-lock|fopen-nomem|open-after-close|small-stack-execl|log-fd-reuse|lease-ftruncate|lease-hold|fanotify-deny|with-free-fds|deny|main-thread-exits|ptrace-hold ARGS (see the source)\n");
  return 2;
}
