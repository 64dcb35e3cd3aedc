/* fd_truncator DEST SRC READY GO [syscall|high|hard]: opens DEST O_RDWR and seeks to
 * offset 100 while nobody maps it, creates READY, waits for GO to exist (the
 * test starts a victim on DEST meanwhile), then ftruncate(fd, 0) (with
 * "syscall": libc's syscall(SYS_ftruncate, fd, 0)) and writes SRC's bytes
 * with pwrite at 0: the "open early, truncate late" writer. With "high", the
 * fd is moved to number 600 and the soft RLIMIT_NOFILE lowered to 64 before
 * READY (a program that lowers its limit below an fd it holds; the kernel
 * lets it use that fd), and it prints the soft limit after the ftruncate.
 * With "hard", the hard limit too, and a failed ftruncate is printed as
 * "ftruncate: ERROR" and ends it with status 0. With "race", as "high", and
 * a thread that, once it sees the soft limit changed (truncguard raising it
 * for its dup3 onto fd 600), sets a soft limit of 48 of its own: the program
 * changing its limit meanwhile (tests/e2e/ftruncate.sh slows that dup3).
 * With "nonblock", DEST is opened with O_NONBLOCK too (a flag F_GETFL shows).
 * With "dup", a dup of the fd is made at fd 50 (F_DUPFD) before READY, and SRC's
 * bytes are written through that dup after the ftruncate (a program that
 * truncates through one fd and writes through another on the same open file
 * description); it prints "dup offset=N" (the offset the two share), then
 * "after a seek of the fd by 7: dup offset=N" (one offset: N+7). A
 * second dup, F_DUPFD_CLOEXEC at fd 51, has FD_CLOEXEC where fd 50 has not:
 * "dups' FD_CLOEXEC: 50=0 51=1" says each kept its own.
 * With "state", before READY the fd gets an F_SETOWN owner (this process)
 * and F_SETSIG signal (SIGUSR1), a flock, an OFD lock on bytes 0-9 and a POSIX
 * lock on 20-29; after the ftruncate it prints "owner=SAME|N sig=N" and what
 * a child process gets when it tries each lock on DEST's name: "other
 * process: ofd LOCKED|GOT flock LOCKED|GOT posix LOCKED|GOT".
 * With "reuse", a thread closes the fd as soon as truncguard's new file
 * appears next to DEST (before the fd moves to it) and puts DEST.other at
 * the fd's number (dup2, which closes it); the ftruncate's result is printed
 * ("ftruncate: ok|ERROR"), then "fd N names: other|the library|something
 * else", and the thread's bytes are written through that number (exit 0).
 * Prints "offset=N flags=0x.. cloexec=N" after the ftruncate, so the test can
 * check the fd kept its offset and flags. Exit 0 on success. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// "race": waits (up to 20 s) for the soft limit to leave 64, then 0.1 s
// more, then sets 48. (Set at once, it could come before truncguard's dup3
// itself, which then met a limit of 48 and failed with EBADF: seen under
// load, where every system call of the traced program is slow. The test
// delays that dup3's return by 0.5 s, so 0.1 s lands inside it.)
static void* set_own_limit(void* unused) {
  (void)unused;
  struct rlimit rl;
  struct timespec tick = {0, 100000}, settle = {0, 100000000};
  for (int i = 0; i < 200000; ++i) {
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != 64) {
      nanosleep(&settle, NULL);
      rl.rlim_cur = 48;
      setrlimit(RLIMIT_NOFILE, &rl);
      break;
    }
    nanosleep(&tick, NULL);
  }
  return NULL;
}

// A child tries, without waiting, the three locks the program holds, on the
// file at DEST's name: "LOCKED" where it is refused (EAGAIN).
static void other_process_tries(const char* path) {
  fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    int fd = open(path, O_RDONLY);
    struct flock ofd = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    struct flock px = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 10};
    const char* o = fcntl(fd, F_OFD_SETLK, &ofd) == 0 ? "GOT" : errno == EAGAIN ? "LOCKED" : strerror(errno);
    const char* f = flock(fd, LOCK_SH | LOCK_NB) == 0 ? "GOT" : errno == EWOULDBLOCK ? "LOCKED" : strerror(errno);
    const char* p = fcntl(fd, F_SETLK, &px) == 0 ? "GOT" : errno == EAGAIN ? "LOCKED" : strerror(errno);
    printf("other process: ofd %s flock %s posix %s\n", o, f, p);
    fflush(stdout);
    _exit(0);
  }
  waitpid(child, NULL, 0);
}

// "reuse": waits (up to 20 s) for truncguard's new file to appear next to
// DEST (".BASE.tg-..."), then puts DEST.other at the fd's number (dup2).
struct reuse_args {
  const char* dest;
  int fd;
  ino_t ino;
};
static int temp_file_next_to(const char* dest) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", dest);
  char* slash = strrchr(dir, '/');
  const char* base = slash ? slash + 1 : dest;
  char prefix[4096];
  snprintf(prefix, sizeof prefix, ".%s.tg-", base);
  if (slash) *slash = '\0';
  DIR* d = opendir(slash ? dir : ".");
  if (!d) return 0;
  int found = 0;
  for (struct dirent* e; !found && (e = readdir(d));) found = !strncmp(e->d_name, prefix, strlen(prefix));
  closedir(d);
  return found;
}
static void* reuse_number(void* p) {
  struct reuse_args* a = p;
  struct timespec tick = {0, 1000000};
  for (int i = 0; i < 20000 && !temp_file_next_to(a->dest); ++i) nanosleep(&tick, NULL);
  char other[4096];
  snprintf(other, sizeof other, "%s.other", a->dest);
  // Onto the fd's number with dup2 (which closes it), not close + open: the
  // lowest free number may be taken by the shim's own fd meanwhile.
  int fd = open(other, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || dup2(fd, a->fd) != a->fd) fprintf(stderr, "fd_truncator: reuse: %s\n", strerror(errno));
  if (fd >= 0 && fd != a->fd) close(fd);
  return NULL;
}

int main(int argc, char** argv) {
  const int raw = argc == 6 && !strcmp(argv[5], "syscall"), hard = argc == 6 && !strcmp(argv[5], "hard");
  const int race = argc == 6 && !strcmp(argv[5], "race");
  const int nonblock = argc == 6 && !strcmp(argv[5], "nonblock");
  const int dup_variant = argc == 6 && !strcmp(argv[5], "dup"), state = argc == 6 && !strcmp(argv[5], "state");
  const int reuse = argc == 6 && !strcmp(argv[5], "reuse");
  const int high = hard || race || (argc == 6 && !strcmp(argv[5], "high"));
  if (argc != 5 && !raw && !high && !nonblock && !dup_variant && !state && !reuse) {
    fprintf(stderr, "usage: fd_truncator DEST SRC READY GO [syscall|high|hard|race|nonblock|dup|state|reuse]\n");
    return 2;
  }
  int fd = open(argv[1], O_RDWR | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
  if (fd < 0 || lseek(fd, 100, SEEK_SET) != 100) return perror("fd_truncator: open"), 1;
  struct rlimit rl;
  if (high) {
    if (dup3(fd, 600, O_CLOEXEC) != 600 || close(fd) != 0) return perror("fd_truncator: dup3"), 1;
    fd = 600;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return perror("fd_truncator: getrlimit"), 1;
    rl.rlim_cur = 64;
    if (hard) rl.rlim_max = 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return perror("fd_truncator: setrlimit"), 1;
  }
  int writes_through = fd;
  if (dup_variant && (writes_through = fcntl(fd, F_DUPFD, 50)) != 50) return perror("fd_truncator: F_DUPFD"), 1;
  if (dup_variant && fcntl(fd, F_DUPFD_CLOEXEC, 51) != 51) return perror("fd_truncator: F_DUPFD_CLOEXEC"), 1;
  if (state) {
    signal(SIGUSR1, SIG_IGN);
    struct flock ofd = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    struct flock px = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 10};
    if (fcntl(fd, F_SETOWN, getpid()) != 0 || fcntl(fd, F_SETSIG, SIGUSR1) != 0 || flock(fd, LOCK_EX) != 0 ||
        fcntl(fd, F_OFD_SETLK, &ofd) != 0 || fcntl(fd, F_SETLK, &px) != 0)
      return perror("fd_truncator: state"), 1;
  }
  pthread_t thread;
  if (race && pthread_create(&thread, NULL, set_own_limit, NULL) != 0) return perror("fd_truncator: thread"), 1;
  int before = fcntl(fd, F_GETFL);
  close(open(argv[3], O_WRONLY | O_CREAT, 0644));
  struct timespec tick = {0, 5000000};
  for (int i = 0; i < 2000 && access(argv[4], F_OK) != 0; ++i) nanosleep(&tick, NULL);
  if (reuse) {
    struct stat st;
    static struct reuse_args args;
    if (fstat(fd, &st) != 0) return perror("fd_truncator: fstat"), 1;
    args = (struct reuse_args){argv[1], fd, st.st_ino};
    if (pthread_create(&thread, NULL, reuse_number, &args) != 0) return perror("fd_truncator: thread"), 1;
    const int r = ftruncate(fd, 0);
    printf("ftruncate: %s\n", r == 0 ? "ok" : strerror(errno));
    pthread_join(thread, NULL);
    char other[4096];
    snprintf(other, sizeof other, "%s.other", argv[1]);
    struct stat at_fd, o, lib;
    const int known = fstat(fd, &at_fd) == 0 && stat(other, &o) == 0 && stat(argv[1], &lib) == 0;
    printf("fd %d names: %s\n", fd,
           !known ? "nothing" : at_fd.st_ino == o.st_ino ? "other" : at_fd.st_ino == lib.st_ino ? "the library" : "something else");
    return write(fd, "the thread's bytes\n", 19) == 19 ? 0 : 1;
  }
  if ((raw ? syscall(SYS_ftruncate, fd, 0) : ftruncate(fd, 0)) != 0) {
    if (!hard) return perror("fd_truncator: ftruncate"), 1;
    printf("ftruncate: %s\n", strerror(errno));
    return 0;
  }
  if (race) pthread_join(thread, NULL);
  printf("offset=%ld flags=0x%x cloexec=%d\n", (long)lseek(fd, 0, SEEK_CUR),
         fcntl(fd, F_GETFL) == before ? before : -1, (fcntl(fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
  if (high && getrlimit(RLIMIT_NOFILE, &rl) == 0) printf("soft limit %ld\n", (long)rl.rlim_cur);
  if (dup_variant) {
    printf("dup offset=%ld\n", (long)lseek(writes_through, 0, SEEK_CUR));
    // One offset for both, not two at 100: a seek through the fd moves the dup's.
    const off_t was = lseek(fd, 0, SEEK_CUR);
    lseek(fd, 7, SEEK_CUR);
    printf("after a seek of the fd by 7: dup offset=%ld\n", (long)lseek(writes_through, 0, SEEK_CUR));
    lseek(fd, was, SEEK_SET);
    printf("dups' FD_CLOEXEC: 50=%d 51=%d\n", (fcntl(50, F_GETFD) & FD_CLOEXEC) ? 1 : 0,
           (fcntl(51, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
  }
  if (state) {
    const int owner = fcntl(fd, F_GETOWN);
    printf("owner=%s sig=%d\n", owner == getpid() ? "SAME" : owner == 0 ? "0" : "OTHER", fcntl(fd, F_GETSIG));
    other_process_tries(argv[1]);
  }
  int in = open(argv[2], O_RDONLY);
  if (in < 0) return perror("fd_truncator: src"), 1;
  char buf[65536];
  ssize_t n;
  off_t at = 0;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    if (pwrite(writes_through, buf, (size_t)n, at) != n) return perror("fd_truncator: pwrite"), 1;
    at += n;
  }
  return close(fd) == 0 ? 0 : 1;
}
