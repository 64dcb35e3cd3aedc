/* A program that times its writes out with a signal and siglongjmp, as
 * alarm()-guarded code does: a timer fires at a random moment during each
 * copy of SRC over DEST (open O_TRUNC, write, close), and its handler jumps
 * back out of whatever the write was doing, truncguard's work included.
 *
 *   jump_writer DEST SRC ROUNDS LAST [INSTALLER]
 *     ROUNDS interrupted copies of SRC (each timer 1 to 500 us) and a whole
 *     one; then the program loads DEST (dlopen: a victim library), copies LAST over it
 *     with no timer, and calls into it: that write must still be protected.
 *     Prints "jumped N of ROUNDS", "fds: BEFORE -> AFTER" (the program's
 *     open fds that are not its own write fds, before the first round and
 *     after the last copy: the shim's, left behind) and "still version N";
 *     exits 0, 2 on an error, or dies of SIGBUS/SIGSEGV if the library it
 *     runs was truncated.
 *     INSTALLER: how the handler is installed, one of the eight ways glibc
 *     has (default sigaction), or "syscall": libc's syscall(SYS_rt_sigaction)
 *     (x86-64); sysv_signal's handler is reset at delivery and re-installs
 *     itself, the System V way. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static sigjmp_buf back;
static char content[1 << 20];
static ssize_t content_len;

/* Not declared with _GNU_SOURCE (bsd_signal), or not at all (__sigaction). */
__sighandler_t bsd_signal(int sig, __sighandler_t handler);
int __sigaction(int sig, const struct sigaction* act, struct sigaction* old);

static const char* installer = "sigaction";

static void jump(int sig);

#if defined(__x86_64__)
/* The kernel wants a restorer (SA_RESTORER) on x86-64: rt_sigreturn, as glibc's. */
void jump_writer_restore_rt(void);
__asm__(".text\n.type jump_writer_restore_rt,@function\njump_writer_restore_rt:\n\tmov $15, %rax\n\tsyscall\n");
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* sigset: programs still call it */
static int install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = jump;
  const char* i = installer;
  if (!strcmp(i, "sigaction")) return sigaction(SIGALRM, &sa, NULL);
  if (!strcmp(i, "__sigaction")) return __sigaction(SIGALRM, &sa, NULL);
  if (!strcmp(i, "syscall")) {
#if defined(__x86_64__)
    struct {
      void (*handler)(int);
      unsigned long flags;
      void (*restorer)(void);
      unsigned long mask;
    } k = {jump, 0x04000000 /* SA_RESTORER */, jump_writer_restore_rt, 0};
    return (int)syscall(SYS_rt_sigaction, SIGALRM, &k, NULL, sizeof k.mask);
#else
    errno = ENOSYS;
    return -1;
#endif
  }
  __sighandler_t r = SIG_ERR;
  if (!strcmp(i, "signal")) r = signal(SIGALRM, jump);
  else if (!strcmp(i, "bsd_signal")) r = bsd_signal(SIGALRM, jump);
  else if (!strcmp(i, "ssignal")) r = ssignal(SIGALRM, jump);
  else if (!strcmp(i, "sysv_signal")) r = sysv_signal(SIGALRM, jump);
  else if (!strcmp(i, "__sysv_signal")) r = __sysv_signal(SIGALRM, jump);
  else if (!strcmp(i, "sigset")) r = sigset(SIGALRM, jump);
  else errno = EINVAL;
  return r == SIG_ERR ? -1 : 0;
}
#pragma GCC diagnostic pop

static void jump(int sig) {
  (void)sig;
  if (!strcmp(installer, "sysv_signal") || !strcmp(installer, "__sysv_signal")) install(); /* reset at delivery */
  siglongjmp(back, 1);
}

/* The open fds, less the write-only ones: those are the program's own, left
 * by a jump between the kernel's open and the program's assignment. */
static int open_fds(void) {
  DIR* d = opendir("/proc/self/fd");
  struct dirent* e;
  int n = 0;
  if (!d) return -1;
  while ((e = readdir(d))) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] == '.' || fd == dirfd(d)) continue;
    if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_WRONLY) ++n;
  }
  closedir(d);
  return n;
}

static int load(const char* path) {
  int f = open(path, O_RDONLY);
  if (f < 0 || (content_len = read(f, content, sizeof content)) <= 0) {
    perror(path);
    return -1;
  }
  close(f);
  return 0;
}

static void arm(long us) {
  struct itimerval t = {{0, 0}, {us / 1000000, us % 1000000}};
  setitimer(ITIMER_REAL, &t, NULL);
}

/* The copy; its fd is kept where the handler can see it (volatile), so a
 * jump out after the open doesn't count as the shim's leak. */
static volatile int fd = -1;
static int copy(const char* dest) {
  fd = open(dest, O_WRONLY | O_TRUNC);
  if (fd < 0) return -1;
  ssize_t w = write(fd, content, (size_t)content_len);
  int c = close(fd);
  fd = -1;
  return w == content_len && c == 0 ? 0 : -1;
}

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: jump_writer DEST SRC ROUNDS LAST [INSTALLER]\n");
    return 2;
  }
  if (load(argv[2]) < 0) return 2;
  if (argc == 6) installer = argv[5];
  if (install() < 0) {
    perror(installer);
    return 2;
  }
  const int rounds = atoi(argv[3]);
  const int before = open_fds();
  srand(1);
  volatile int jumped = 0, i = 0;
  for (i = 0; i < rounds; i = i + 1) {
    if (sigsetjmp(back, 1) == 0) {
      arm(1 + rand() % 500);
      if (copy(argv[1]) < 0) {
        arm(0);
        perror(argv[1]);
        return 2;
      }
      arm(0);
    } else {
      jumped = jumped + 1;
      if (fd >= 0) close(fd); /* the program's own fd, had the open returned */
      fd = -1;
    }
  }
  arm(0);
  printf("jumped %d of %d\n", jumped, rounds);
  if (copy(argv[1]) < 0) { /* whole again: the last round may have been cut short */
    perror(argv[1]);
    return 2;
  }
  void* lib = dlopen(argv[1], RTLD_NOW);
  int (*version)(void) = lib ? (int (*)(void))dlsym(lib, "tg_version") : NULL;
  if (!version) {
    fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
    return 2;
  }
  version();
  if (load(argv[4]) < 0 || copy(argv[1]) < 0) {
    perror(argv[1]);
    return 2;
  }
  printf("fds: %d -> %d\n", before, open_fds());
  printf("still version %d\n", version());
  fflush(stdout);
  return 0;
}
