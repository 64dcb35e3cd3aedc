// passmatrix DIR ELF: a matrix of the calls the shim intercepts, under the
// error and odd conditions a program meets, on a text file, an unused ELF
// library (a copy of ELF) and a special file each. For each call it prints
// what the caller sees (result, errno, F_GETFL/F_GETFD, offset, fd number,
// the lowest free fd after it, heap use) and the files' state afterwards
// (size, content, inode, timestamps, mode). Run it with and without the shim
// and diff the outputs (tests/e2e/invisible.sh): they must be identical.
// Every case gets fresh files in DIR/NNN; errno is set to a sentinel before
// each call, so a success that clobbers errno shows.
//
// With PASSMATRIX_MAPPED=1 it runs the cases where the shim acts instead (the
// library is mapped executable by this process): only what the caller sees
// is printed, which must not differ either.
#define _GNU_SOURCE
#include <aio.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <grp.h>
#include <malloc.h>
#include <sched.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>

#include "glibc_aliases.h"

int __open_2(const char* path, int flags);
int __open64_2(const char* path, int flags);
int __openat_2(int dirfd, const char* path, int flags);
int __openat64_2(int dirfd, const char* path, int flags);

// A failed freopen leaves its FILE allocated (glibc's way, which the cases
// compare): not a leak to report in a sanitizer build.
const char* __asan_default_options(void) { return "detect_leaks=0"; }

enum { kSentinel = 4242 };
static const char* g_root;
static const char* g_elf;
static int g_mapped_mode;
static int g_case;
static int g_ignore_atime;  // documented: a non-owner's look moves atime (docs/guarantees.md)
static int g_free_fds;      // emfile cases: how many fds are left free
static char D[4096];  // this case's directory
static char P_text[4200], P_elf[4200], P_map[4200], P_dir[4200], P_link[4200], P_loop[4200], P_fifo[4200],
    P_missing[4200], P_nodir[4200], P_notdir[4200], P_long[8400], P_empty[4200], P_exe[4200], P_dangling[4200],
    P_pathmax[8400];
static struct stat before_text, before_elf, before_map, before_empty;
static void* g_mapping;
static size_t g_mapping_len;

static void die(const char* what) {
  fprintf(stderr, "passmatrix: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void copy_file(const char* from, const char* to, mode_t mode) {
  int in = open(from, O_RDONLY);
  int out = open(to, O_WRONLY | O_CREAT | O_EXCL, mode);
  if (in < 0 || out < 0) die(to);
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, n) != n) die("write");
  close(in);
  close(out);
  chmod(to, mode);
}

static void old_times(const char* p) {
  struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
  utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
}

// Fresh files for the next case.
static void fixture(void) {
  snprintf(D, sizeof D, "%s/%03d", g_root, ++g_case);
  if (mkdir(D, 0755) < 0) die(D);
  static const struct {
    char* path;
    const char* name;
  } names[] = {{P_text, "text"},       {P_elf, "lib.so"},      {P_map, "mapped.so"},  {P_dir, "dir"},
               {P_link, "link"},       {P_loop, "loop"},       {P_fifo, "fifo"},      {P_missing, "missing"},
               {P_nodir, "nodir/x"},   {P_notdir, "text/x"},   {P_empty, "empty"},    {P_exe, "exe"},
               {P_dangling, "dangling"}};
  for (unsigned i = 0; i < sizeof names / sizeof names[0]; ++i) snprintf(names[i].path, 4200, "%s/%s", D, names[i].name);
  int n = snprintf(P_long, sizeof P_long, "%s/", D);
  memset(P_long + n, 'n', 300);  // one component longer than NAME_MAX
  P_long[n + 300] = '\0';
  n = snprintf(P_pathmax, sizeof P_pathmax, "%s", D);  // a path longer than PATH_MAX
  while (n < 4200) n += snprintf(P_pathmax + n, sizeof P_pathmax - n, "/./././././././.");
  strcat(P_pathmax, "/text");
  FILE* f = fopen(P_text, "w");
  if (!f) die(P_text);
  for (int i = 0; i < 20; ++i) fprintf(f, "line %d of an ordinary text file\n", i);
  fclose(f);
  copy_file(g_elf, P_elf, 0755);
  copy_file(g_elf, P_map, 0755);
  if (mkdir(P_dir, 0755) < 0) die(P_dir);
  if (symlink("lib.so", P_link) < 0 || symlink("loop", P_loop) < 0 || symlink("missing", P_dangling) < 0)
    die("symlink");
  if (mkfifo(P_fifo, 0666) < 0) die(P_fifo);
  close(open(P_empty, O_WRONLY | O_CREAT, 0644));
  old_times(P_text), old_times(P_elf), old_times(P_map), old_times(P_empty);
  stat(P_text, &before_text), stat(P_elf, &before_elf), stat(P_map, &before_map), stat(P_empty, &before_empty);
  if (g_mapped_mode) {
    int fd = open(P_map, O_RDONLY);
    g_mapping_len = (size_t)before_map.st_size;
    g_mapping = mmap(NULL, g_mapping_len, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    if (g_mapping == MAP_FAILED) die("mmap");
    close(fd);
  }
}

static unsigned long crc(const char* p) {
  int fd = open(p, O_RDONLY | O_NONBLOCK | O_NOATIME);
  if (fd < 0) return 0;
  unsigned long h = 5381;
  unsigned char buf[4096];
  ssize_t n;
  off_t total = 0;  // (a file truncated to a huge size is sparse: its start will do)
  while (total < (1 << 20) && (n = read(fd, buf, sizeof buf)) > 0 && (total += n))
    for (ssize_t i = 0; i < n; ++i) h = h * 33 + buf[i];
  close(fd);
  return h;
}

static const char* cmp_ts(struct timespec a, struct timespec b) {
  return (a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec) ? "same" : "moved";
}

static void state_of(const char* label, const char* p, const struct stat* b) {
  struct stat st;
  if (lstat(p, &st) < 0) {
    printf("  %s: absent\n", label);
    return;
  }
  printf("  %s: size=%lld crc=%lx mode=%o ino=%s atime=%s mtime=%s ctime=%s\n", label, (long long)st.st_size,
         crc(p), st.st_mode, b && st.st_ino == b->st_ino ? "same" : "new", b && !g_ignore_atime ? cmp_ts(st.st_atim, b->st_atim) : "-",
         b ? cmp_ts(st.st_mtim, b->st_mtim) : "-", b ? cmp_ts(st.st_ctim, b->st_ctim) : "-");
}

// The lowest free fd number now (a leaked fd would move it).
static int lowest_free(void) {
  int fd = (int)syscall(SYS_fcntl, 0, F_DUPFD, 0);
  if (fd >= 0) syscall(SYS_close, fd);
  return fd;
}

static size_t heap_used(void) { return mallinfo2().uordblks; }

// An fd opened behind the shim's back, by a syscall instruction (as a Go
// program or a static binary opens): libc's syscall() is the shim's way in
// too, and would examine the open itself, before the fd calls under test.
static int raw_open(const char* p, int flags) {
#if defined(__x86_64__)
  long r;
  register long r10 __asm__("r10") = 0;
  __asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_openat), "D"((long)AT_FDCWD), "S"(p), "d"((long)flags), "r"(r10)
                   : "rcx", "r11", "memory");
  return r < 0 ? -1 : (int)r;
#else
  return (int)syscall(SYS_openat, AT_FDCWD, p, flags);
#endif
}

// What the caller sees of fd (if valid).
static void fd_view(int fd) {
  if (fd < 0) return;
  printf(" fl=%#lx fdfl=%ld off=%lld", syscall(SYS_fcntl, fd, F_GETFL), syscall(SYS_fcntl, fd, F_GETFD),
         (long long)lseek(fd, 0, SEEK_CUR));
}

static size_t g_heap0;
static void before_call(void) {
  g_heap0 = heap_used();
  errno = kSentinel;
}

// The end of every case: heap use and the lowest free fd, then (for pass
// cases) the files' state.
static void end_case(void) {
  printf(" heap=%+ld lowfree=%d\n", (long)(heap_used() - g_heap0), lowest_free());
  if (!g_mapped_mode) {
    state_of("text", P_text, &before_text);
    state_of("lib", P_elf, &before_elf);
    state_of("empty", P_empty, &before_empty);
    state_of("missing", P_missing, NULL);
  } else if (g_mapping) {
    munmap(g_mapping, g_mapping_len);
    g_mapping = NULL;
  }
  fflush(stdout);
}

// A case that returns a number (and maybe an fd to look at and close).
static void finish(const char* name, long ret, int err, int fd, int close_it) {
  printf("%03d %s: ret=%ld errno=%d", g_case, name, ret, err);
  fd_view(fd);
  if (fd >= 0 && close_it) close(fd);  // (atomic mode publishes at this close)
  end_case();
}

// A case that returns a stream (closed here).
static void stream_case(const char* name, FILE* f, int err) {
  int fd = f ? fileno(f) : -1;
  printf("%03d %s: ret=%s errno=%d", g_case, name, f ? "FILE" : "NULL", err);
  fd_view(fd);
  if (f) printf(" fwide=%d ftell=%ld fd=%d", fwide(f, 0), ftell(f), fd);
  if (f) fclose(f);
  end_case();
}

// ---------------------------------------------------------------- the open family

enum Target { T_TEXT, T_ELF, T_EMPTY, T_MISSING, T_NODIR, T_NOTDIR, T_DIR, T_LINK, T_LOOP, T_LONG, T_FIFO, T_NULL,
              T_DANGLING, T_PATHMAX, T_COUNT };
static const char* target_name[] = {"text", "lib", "empty", "missing", "nodir", "notdir", "dir", "link", "loop", "toolong", "fifo", "devnull",
                                    "dangling", "pathmax"};
static const char* target_path(int t) {
  switch (t) {
    case T_TEXT: return P_text;
    case T_ELF: return g_mapped_mode ? P_map : P_elf;
    case T_EMPTY: return P_empty;
    case T_MISSING: return P_missing;
    case T_NODIR: return P_nodir;
    case T_NOTDIR: return P_notdir;
    case T_DIR: return P_dir;
    case T_LINK: return P_link;
    case T_LOOP: return P_loop;
    case T_LONG: return P_long;
    case T_FIFO: return P_fifo;
    case T_NULL: return "/dev/null";
    case T_DANGLING: return P_dangling;
    case T_PATHMAX: return P_pathmax;
  }
  return "";
}

struct FlagSet {
  const char* name;
  int flags;
};
static const struct FlagSet flag_sets[] = {
    {"WRONLY|TRUNC", O_WRONLY | O_TRUNC},
    {"RDWR", O_RDWR},
    {"WRONLY", O_WRONLY},
    {"RDONLY", O_RDONLY},
    {"RDONLY|TRUNC", O_RDONLY | O_TRUNC},
    {"WRONLY|APPEND", O_WRONLY | O_APPEND},
    {"WRONLY|APPEND|TRUNC", O_WRONLY | O_APPEND | O_TRUNC},
    {"RDWR|APPEND", O_RDWR | O_APPEND},
    {"WRONLY|CREAT|TRUNC", O_WRONLY | O_CREAT | O_TRUNC},
    {"WRONLY|CREAT|EXCL", O_WRONLY | O_CREAT | O_EXCL},
    {"RDWR|CREAT", O_RDWR | O_CREAT},
    {"WRONLY|TRUNC|NOFOLLOW", O_WRONLY | O_TRUNC | O_NOFOLLOW},
    {"PATH|WRONLY|TRUNC", O_PATH | O_WRONLY | O_TRUNC},
    {"PATH", O_PATH},
    {"WRONLY|TRUNC|DIRECTORY", O_WRONLY | O_TRUNC | O_DIRECTORY},
    {"RDONLY|DIRECTORY", O_RDONLY | O_DIRECTORY},
    {"TMPFILE|WRONLY", O_TMPFILE | O_WRONLY},
    {"WRONLY|TRUNC|NONBLOCK", O_WRONLY | O_TRUNC | O_NONBLOCK},
    {"RDWR|TRUNC|NONBLOCK", O_RDWR | O_TRUNC | O_NONBLOCK},
    {"WRONLY|TRUNC|CLOEXEC", O_WRONLY | O_TRUNC | O_CLOEXEC},
    {"WRONLY|TRUNC|NOCTTY|SYNC", O_WRONLY | O_TRUNC | O_NOCTTY | O_SYNC},
    {"RDWR|TRUNC|DSYNC|NOATIME", O_RDWR | O_TRUNC | O_DSYNC | O_NOATIME},
    {"WRONLY|TRUNC|DIRECT", O_WRONLY | O_TRUNC | O_DIRECT},
    {"WRONLY|TRUNC|ASYNC", O_WRONLY | O_TRUNC | O_ASYNC},
    {"ACCMODE3|TRUNC", 3 | O_TRUNC},
};
enum { kFlagSets = sizeof flag_sets / sizeof flag_sets[0] };

enum Entry { E_OPEN, E_OPEN64, E_OPENAT, E_OPENAT64, E_OPENAT_DIRFD, E_OPEN_2, E_OPEN64_2, E_OPENAT_2, E_OPENAT64_2,
             E_SYS_OPENAT, E_SYS_OPEN, E___OPEN, E___OPEN64, E_COUNT };
static const char* entry_name[] = {"open", "open64", "openat", "openat64", "openat(dirfd)", "__open_2", "__open64_2", "__openat_2", "__openat64_2",
                                   "syscall(SYS_openat)", "syscall(SYS_open)", "__open", "__open64"};

static int call_open(int e, const char* p, int fl) {
  switch (e) {
    case E_OPEN: return open(p, fl, 0640);
    case E_OPEN64: return open64(p, fl, 0640);
    case E_OPENAT: return openat(AT_FDCWD, p, fl, 0640);
    case E_OPENAT64: return openat64(AT_FDCWD, p, fl, 0640);
    case E_OPENAT_DIRFD: {
      int d = (int)syscall(SYS_open, D, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      const char* rel = strncmp(p, D, strlen(D)) == 0 && p[strlen(D)] == '/' ? p + strlen(D) + 1 : p;
      errno = kSentinel;
      int r = openat(d, rel, fl, 0640);
      int e2 = errno;
      syscall(SYS_close, d);
      errno = e2;
      return r;
    }
    case E_OPEN_2: return __open_2(p, fl);
    case E_OPEN64_2: return __open64_2(p, fl);
    case E_OPENAT_2: return __openat_2(AT_FDCWD, p, fl);
    case E_OPENAT64_2: return __openat64_2(AT_FDCWD, p, fl);
    case E_SYS_OPENAT: return (int)syscall(SYS_openat, AT_FDCWD, p, fl, 0640);
#ifdef SYS_open
    case E_SYS_OPEN: return (int)syscall(SYS_open, p, fl, 0640);
#endif
    case E___OPEN: return __open(p, fl, 0640);
    case E___OPEN64: return __open64(p, fl, 0640);
  }
  return -1;
}

static void open_matrix(void) {
  for (int e = 0; e < E_COUNT; ++e) {
    const int full = e == E_OPEN;  // every target for open; the common ones for the others
    for (int t = 0; t < T_COUNT; ++t) {
      if (!full && t != T_TEXT && t != T_ELF && t != T_MISSING && t != T_NODIR && t != T_LOOP) continue;
      if (g_mapped_mode && t != T_ELF && t != T_LINK) continue;
      for (int k = 0; k < kFlagSets; ++k) {
        const int fl = flag_sets[k].flags;
        // The fortified entry points abort on O_CREAT/O_TMPFILE without a mode (glibc's rule).
        if (e >= E_OPEN_2 && e <= E_OPENAT64_2 && ((fl & O_CREAT) || (fl & O_TMPFILE) == O_TMPFILE)) continue;
        if (!full && k > 12) continue;
        // A FIFO without a reader blocks a write open (without O_NONBLOCK): not a case.
        if (t == T_FIFO && !(fl & O_NONBLOCK) && (fl & O_ACCMODE) == O_WRONLY && !(fl & O_PATH)) continue;
        if (t == T_FIFO && (fl & O_ACCMODE) == O_RDONLY && !(fl & O_PATH) && !(fl & O_NONBLOCK)) continue;
        fixture();
        char name[256];
        snprintf(name, sizeof name, "%s %s %s", entry_name[e], target_name[t], flag_sets[k].name);
        before_call();
        int r = call_open(e, target_path(t), fl);
        finish(name, r, errno, r, 1);
      }
    }
  }
}

// A FIFO with a reader: the write open succeeds.
static void fifo_cases(void) {
  static const int fls[] = {O_WRONLY | O_TRUNC, O_WRONLY | O_NONBLOCK, O_RDWR | O_TRUNC, O_WRONLY | O_TRUNC | O_NONBLOCK};
  for (unsigned i = 0; i < sizeof fls / sizeof fls[0]; ++i) {
    fixture();
    int reader = (int)syscall(SYS_open, P_fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    char name[64];
    snprintf(name, sizeof name, "open fifo-with-reader %#x", fls[i]);
    before_call();
    int r = open(P_fifo, fls[i]);
    int err = errno;
    syscall(SYS_close, reader);
    finish(name, r, err, r, 1);
  }
}

// A pty's slave, opened with O_NOCTTY and without.
static void pty_cases(void) {
  static const int fls[] = {O_WRONLY | O_TRUNC | O_NOCTTY, O_RDWR | O_NOCTTY, O_WRONLY | O_TRUNC};
  for (unsigned i = 0; i < sizeof fls / sizeof fls[0]; ++i) {
    fixture();
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0) {
      printf("pty: unavailable\n");
      if (m >= 0) close(m);
      return;
    }
    char slave[64];
    snprintf(slave, sizeof slave, "%s", ptsname(m));
    char name[64];
    snprintf(name, sizeof name, "open pty-slave %#x", fls[i]);
    before_call();
    int r = open(slave, fls[i]);
    int err = errno;
    printf("[ctty=%d] ", tcgetpgrp(r) >= 0);
    finish(name, r, err, r, 1);
    close(m);
  }
}

static void creat_cases(void) {
  static const char* entry[] = {"creat", "creat64", "syscall(SYS_creat)"};
  for (int t = 0; t < T_COUNT; ++t) {
    if (g_mapped_mode && t != T_ELF) continue;
    for (int which = 0; which < 3; ++which) {
      fixture();
      char name[64];
      snprintf(name, sizeof name, "%s %s", entry[which], target_name[t]);
      if (t == T_FIFO) continue;
      before_call();
#ifdef SYS_creat
      int r = which == 2 ? (int)syscall(SYS_creat, target_path(t), 0600)
#else
      int r = which == 2 ? (int)syscall(SYS_openat, AT_FDCWD, target_path(t), O_CREAT | O_WRONLY | O_TRUNC, 0600)
#endif
              : which ? creat64(target_path(t), 0600) : creat(target_path(t), 0600);
      finish(name, r, errno, r, 1);
    }
  }
}

// ---------------------------------------------------------------- stdio

static const char* modes[] = {"w",  "wx", "we", "w+",          "a",   "a+", "r", "r+", "wm", "wb", "w,ccs=UTF-8",
                              "r+,ccs=UTF-8", "wxe,ccs=UTF-8", "r+e", "", "z", "x"};
enum { kModes = sizeof modes / sizeof modes[0] };

static void fopen_matrix(void) {
  static const char* names[] = {"fopen", "fopen64", "_IO_fopen"};
  for (int which = 0; which < 3; ++which)
    for (int t = 0; t < T_COUNT; ++t) {
      if (t == T_FIFO) continue;
      if (g_mapped_mode && t != T_ELF) continue;
      if (which && t != T_TEXT && t != T_ELF && t != T_MISSING) continue;
      for (int m = 0; m < kModes; ++m) {
        fixture();
        char name[128];
        snprintf(name, sizeof name, "%s %s \"%s\"", names[which], target_name[t], modes[m]);
        before_call();
        FILE* f = which == 2 ? _IO_fopen(target_path(t), modes[m])
                  : which    ? fopen64(target_path(t), modes[m])
                             : fopen(target_path(t), modes[m]);
        stream_case(name, f, errno);
      }
    }
}

static void freopen_matrix(void) {
  static const int targets[] = {T_TEXT, T_ELF, T_MISSING, T_NODIR, T_DIR};
  for (int which = 0; which < 2; ++which)
    for (unsigned ti = 0; ti < sizeof targets / sizeof targets[0]; ++ti) {
      const int t = targets[ti];
      if (g_mapped_mode && t != T_ELF) continue;
      for (int m = 0; m < kModes; ++m) {
        // freopen(path, mode, stream on the text file, read-only)
        fixture();
        char name[128];
        snprintf(name, sizeof name, "%s %s \"%s\"", which ? "freopen64" : "freopen", target_name[t], modes[m]);
        FILE* s = fopen(P_text, "r");
        before_call();
        FILE* f = which ? freopen64(target_path(t), modes[m], s) : freopen(target_path(t), modes[m], s);
        stream_case(name, f, errno);
        // freopen(NULL, mode, stream opened on the target): only files that exist.
        if (t != T_TEXT && t != T_ELF) continue;
        for (int open_mode = 0; open_mode < 3; ++open_mode) {
          static const char* first[] = {"r", "r+", "a"};
          fixture();
          snprintf(name, sizeof name, "%s NULL on %s opened \"%s\" \"%s\"", which ? "freopen64" : "freopen",
                   target_name[t], first[open_mode], modes[m]);
          s = fopen(target_path(t), first[open_mode]);
          if (!s) die("fopen");
          before_call();
          f = which ? freopen64(NULL, modes[m], s) : freopen(NULL, modes[m], s);
          stream_case(name, f, errno);
        }
      }
    }
}

// ---------------------------------------------------------------- truncate & friends

static void truncate_matrix(void) {
  static const long long lengths[] = {0, 10, 100000, -1, 0x7fffffffffffffffLL};
  static const char* truncate_entry[] = {"truncate", "truncate64", "syscall(SYS_truncate)"};
  for (int which = 0; which < 3; ++which)
    for (int t = 0; t < T_COUNT; ++t) {
      if (g_mapped_mode && t != T_ELF && t != T_LINK) continue;
      for (unsigned l = 0; l < sizeof lengths / sizeof lengths[0]; ++l) {
        fixture();
        char name[128];
        snprintf(name, sizeof name, "%s %s %lld", truncate_entry[which], target_name[t], lengths[l]);
        before_call();
        int r = which == 2 ? (int)syscall(SYS_truncate, target_path(t), lengths[l])
                : which    ? truncate64(target_path(t), lengths[l])
                           : truncate(target_path(t), lengths[l]);
        finish(name, r, errno, -1, 0);
      }
    }
  // ftruncate on fds of each kind.
  static const struct FlagSet fd_kinds[] = {
      {"RDONLY", O_RDONLY}, {"WRONLY", O_WRONLY}, {"RDWR", O_RDWR}, {"WRONLY|APPEND", O_WRONLY | O_APPEND},
      {"PATH", O_PATH},     {"RDWR|NONBLOCK", O_RDWR | O_NONBLOCK}};
  static const int fd_targets[] = {T_TEXT, T_ELF, T_EMPTY, T_DIR, T_NULL};
  static const char* ftruncate_entry[] = {"ftruncate", "ftruncate64", "syscall(SYS_ftruncate)"};
  for (int which = 0; which < 3; ++which)
    for (unsigned ti = 0; ti < sizeof fd_targets / sizeof fd_targets[0]; ++ti)
      for (unsigned k = 0; k < sizeof fd_kinds / sizeof fd_kinds[0]; ++k)
        for (unsigned l = 0; l < sizeof lengths / sizeof lengths[0]; ++l) {
          const int t = fd_targets[ti];
          if (g_mapped_mode && t != T_ELF) continue;
          // An fd moved to the new inode loses O_NONBLOCK (documented).
          if (g_mapped_mode && (fd_kinds[k].flags & O_NONBLOCK)) continue;
          fixture();
          int fd = raw_open(target_path(t), fd_kinds[k].flags);
          char name[128];
          snprintf(name, sizeof name, "%s fd(%s %s) %lld", ftruncate_entry[which], target_name[t],
                   fd_kinds[k].name, lengths[l]);
          lseek(fd, 7, SEEK_SET);
          before_call();
          int r = which == 2 ? (int)syscall(SYS_ftruncate, fd, lengths[l])
                  : which    ? ftruncate64(fd, lengths[l])
                             : ftruncate(fd, lengths[l]);
          finish(name, r, errno, fd, 1);
        }
  before_call();
  int r = ftruncate(-1, 0);
  finish("ftruncate fd -1", r, errno, -1, 0);
  before_call();
  r = ftruncate(987, 0);
  finish("ftruncate fd 987 (closed)", r, errno, -1, 0);
  before_call();
  r = (int)syscall(SYS_ftruncate, -1, 0);
  finish("syscall(SYS_ftruncate) fd -1", r, errno, -1, 0);
}

// The calls that can change an append-only fd's file in place.
static void fd_change_matrix(void) {
  static const struct FlagSet fd_kinds[] = {{"WRONLY|APPEND", O_WRONLY | O_APPEND},
                                            {"RDWR|APPEND", O_RDWR | O_APPEND},
                                            {"WRONLY", O_WRONLY},
                                            {"RDONLY", O_RDONLY},
                                            {"PATH", O_PATH}};
  static const int fd_targets[] = {T_TEXT, T_ELF, T_EMPTY, T_NULL, T_DIR};
  for (unsigned ti = 0; ti < sizeof fd_targets / sizeof fd_targets[0]; ++ti)
    for (unsigned k = 0; k < sizeof fd_kinds / sizeof fd_kinds[0]; ++k)
      for (int call = 0; call < 14; ++call) {
        const int t = fd_targets[ti];
        if (g_mapped_mode && t != T_ELF) continue;
        fixture();
        int fd = raw_open(target_path(t), fd_kinds[k].flags);
        char name[128];
        long r = 0;
        struct iovec iov = {(void*)"xy", 2};
        before_call();
        switch (call) {
          case 0: r = fcntl(fd, F_SETFL, 0); break;
          case 1: r = fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK); break;
          case 2: r = fcntl64(fd, F_SETFL, O_NONBLOCK); break;
          case 3: r = pwritev2(fd, &iov, 1, 3, 0x20 /* RWF_NOAPPEND */); break;
          case 4: r = pwritev2(fd, &iov, 1, 3, 0x40000000 /* unknown flag */); break;
          case 5: r = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 8); break;
          case 6: r = fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 8); break;
          case 7: r = fallocate(fd, 0x4000 /* unknown mode */, 0, 8); break;
          case 8: r = fallocate64(fd, 0, 0, 1 << 20); break;
          case 9: r = syscall(SYS_fcntl, fd, F_SETFL, 0); break;
          case 10: r = syscall(SYS_fcntl, fd, F_SETFL, O_APPEND); break;
          case 11: r = syscall(SYS_pwritev2, fd, &iov, 1, 3, 0, 0x20 /* RWF_NOAPPEND */); break;
          case 12: r = syscall(SYS_fallocate, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 8); break;
          case 13: r = syscall(SYS_fallocate, fd, 0, 0, 1 << 20); break;
        }
        snprintf(name, sizeof name, "fdcall%d fd(%s %s)", call, target_name[t], fd_kinds[k].name);
        finish(name, r, errno, fd, 1);
      }
  // Bad fds.
  for (int call = 0; call < 7; ++call) {
    struct iovec iov = {(void*)"xy", 2};
    long r = 0;
    before_call();
    switch (call) {
      case 0: r = fcntl(-1, F_SETFL, 0); break;
      case 1: r = pwritev2(-1, &iov, 1, 0, 0x20); break;
      case 2: r = fallocate(-1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 8); break;
      case 3: r = fcntl(555, F_SETFL, 0); break;
      case 4: r = syscall(SYS_fcntl, -1, F_SETFL, 0); break;
      case 5: r = syscall(SYS_pwritev2, -1, &iov, 1, 0, 0, 0x20); break;
      case 6: r = syscall(SYS_fallocate, -1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 8); break;
    }
    char name[64];
    snprintf(name, sizeof name, "fdcall-badfd %d", call);
    finish(name, r, errno, -1, 0);
  }
}

// Writes, copies, syncs, dups and closes: watched in atomic mode only. The same
// An aio_write of "abc" on fd, waited for; its aio_error (aio_error64's with
// use64), as the program reads it.
static int aio_written(int fd, int use64) {
  struct aiocb cb = {.aio_fildes = fd, .aio_buf = (void*)"abc", .aio_nbytes = 3, .aio_offset = 5};
  const struct aiocb* list[1] = {&cb};
  if (aio_write(&cb) != 0) return -1;
  while (aio_error(&cb) == EINPROGRESS) aio_suspend(list, 1, NULL);
  errno = kSentinel;
  int r = use64 ? aio_error64((struct aiocb64*)&cb) : aio_error(&cb);
  int e = errno;
  aio_return(&cb);
  errno = e;
  return r;
}

// aio_fsync(op) of fd, waited for: its own result, or the request's error.
static int aio_synced(int fd, int op, int use64) {
  struct aiocb cb = {.aio_fildes = fd};
  const struct aiocb* list[1] = {&cb};
  int r = use64 ? aio_fsync64(op, (struct aiocb64*)&cb) : aio_fsync(op, &cb);
  if (r != 0) return r;
  while (aio_error(&cb) == EINPROGRESS) aio_suspend(list, 1, NULL);
  errno = kSentinel;
  r = aio_error(&cb);
  int e = errno;
  aio_return(&cb);
  errno = e;
  return r;
}

// msync of a page of fd mapped shared (FLAGS; OFFSET into the mapping).
static int msynced(int fd, int flags, size_t offset, int by_number) {
  char* m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return -1;
  int r = by_number ? (int)syscall(SYS_msync, m + offset, 4096 - offset, flags) : msync(m + offset, 4096 - offset, flags);
  int e = errno;
  syscall(SYS_munmap, m, 4096);
  errno = e;
  return r;
}

// through syscall() by number; any other number passes on.
static void io_matrix(void) {
  if (g_mapped_mode) return;
  // glibc's first aio_write sets up its pool and thread (the heap it takes
  // differs with any preloaded library's TLS): done before the cases.
  int nul = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY);
  aio_written(nul, 0);
  syscall(SYS_close, nul);
  for (int call = 0; call < 95; ++call) {
    fixture();
    int in = (int)syscall(SYS_openat, AT_FDCWD, P_text, O_RDONLY);
    int out = (int)syscall(SYS_openat, AT_FDCWD, P_elf, O_WRONLY);
    int rd = (int)syscall(SYS_openat, AT_FDCWD, P_elf, O_RDONLY);
    struct iovec iov = {(void*)"abc", 3};
    off64_t o1 = 0, o2 = 0;
    off_t so = 0;
    long r = 0;
    before_call();
    switch (call) {
      case 0: r = write(out, "abc", 3); break;
      case 1: r = write(rd, "abc", 3); break;
      case 2: r = write(-1, "abc", 3); break;
      case 3: r = pwrite(out, "abc", 3, 5); break;
      case 4: r = pwrite(out, "abc", 3, -1); break;
      case 5: r = pwrite64(rd, "abc", 3, 5); break;
      case 6: r = writev(out, &iov, 1); break;
      case 7: { volatile int cnt = -1; r = writev(out, &iov, cnt); } break;
      case 8: r = pwritev(out, &iov, 1, 9); break;
      case 9: r = copy_file_range(in, &o1, out, &o2, 100, 0); break;
      case 10: r = copy_file_range(in, NULL, rd, NULL, 100, 0); break;
      case 11: r = copy_file_range(in, NULL, out, NULL, 100, 7); break;
      case 12: r = sendfile(out, in, &so, 100); break;
      case 13: r = sendfile(rd, in, NULL, 100); break;
      case 14: r = dup2(out, out); break;
      case 15: r = dup2(-1, 40); break;
      case 16: r = dup2(out, 41); if (r >= 0) syscall(SYS_close, r); break;
      case 17: r = dup3(out, out, 0); break;
      case 18: r = dup3(out, 42, 0x1234); break;
      case 19: r = dup(-1); break;
      case 20: r = close(-1); break;
      case 21: r = close_range(60, 50, 0); break;
      case 22: r = close_range(60, 70, 0x80); break;
      case 23: r = fcntl(out, F_DUPFD_CLOEXEC, 0); if (r >= 0) syscall(SYS_close, r); break;
      case 24: r = syscall(SYS_close, -1); break;
      case 25: r = syscall(SYS_close, dup(out)); break;
      case 26: r = syscall(SYS_copy_file_range, in, NULL, out, NULL, 100, 0); break;
      case 27: r = syscall(SYS_fcntl, out, F_GETFL); break;
      case 28: r = syscall(SYS_write, out, "abc", 3); break;
      case 29: r = syscall(SYS_write, rd, "abc", 3); break;
      case 30: r = syscall(SYS_pwrite64, out, "abc", 3, -1); break;
      case 31: r = syscall(SYS_writev, out, &iov, 1); break;
      case 32: r = syscall(SYS_pwritev, out, &iov, 1, 9, 0); break;
      case 33: r = syscall(SYS_sendfile, rd, in, NULL, 100); break;
      case 34: r = syscall(SYS_dup, -1); break;
      case 35: r = syscall(SYS_dup3, out, out, 0); break;
      case 36: r = syscall(SYS_dup3, out, 43, 0); if (r >= 0) syscall(SYS_close, r); break;
#ifdef SYS_dup2
      case 37: r = syscall(SYS_dup2, -1, 40); break;
      case 38: r = syscall(SYS_dup2, out, 41); if (r >= 0) syscall(SYS_close, r); break;
#endif
      case 39: r = syscall(SYS_close_range, 60, 50, 0); break;
      case 40: r = syscall(SYS_close_range, 60, 70, 0x80); break;
      case 41: r = syscall(SYS_fcntl, out, F_DUPFD_CLOEXEC, 0); if (r >= 0) syscall(SYS_close, r); break;
      case 42: r = syscall(SYS_openat, AT_FDCWD, (const char*)8, O_WRONLY | O_TRUNC, 0); break;  // EFAULT
      case 43: r = syscall(SYS_truncate, (const char*)8, 0); break;
      case 44: r = syscall(-1); break;  // ENOSYS
      case 45: r = syscall(100000, 1, 2, 3, 4, 5, 6); break;
      case 46:    // openat2 passes through (docs/guarantees.md): RESOLVE_BENEATH refuses an absolute name
      case 47: {  // ... and without it, the text file is truncated as asked
        struct { uint64_t flags, mode, resolve; } how = {O_WRONLY | O_TRUNC, 0, call == 46 ? 0x08 /* RESOLVE_BENEATH */ : 0};
        r = syscall(SYS_openat2, AT_FDCWD, P_text, &how, sizeof how);
        if (r >= 0) syscall(SYS_close, r);
        break;
      }
      case 48: r = fsync(out); break;
      case 49: r = fsync(-1); break;
      case 50: r = fdatasync(rd); break;
      case 51: r = fdatasync(999); break;
      case 52: r = syscall(SYS_fsync, -1); break;
      case 53: r = syscall(SYS_fdatasync, out); break;
      case 54: r = pwritev64(out, &iov, 1, 9); break;
      case 55: r = pwritev64(rd, &iov, 1, 9); break;
      case 56: { off64_t so64 = 0; r = sendfile64(out, in, &so64, 100); } break;
      case 57: r = sendfile64(rd, in, NULL, 100); break;
      case 58: r = __write(out, "abc", 3); break;
      case 59: r = __write(rd, "abc", 3); break;
      case 60: r = __pwrite64(out, "abc", 3, 5); break;
      case 61: r = __pwrite64(rd, "abc", 3, 5); break;
      case 62: r = __close(-1); break;
      case 63: r = __dup2(-1, 40); break;
      case 64: r = __dup2(out, out); break;
      case 65: r = __dup2(out, 41); if (r >= 0) syscall(SYS_close, r); break;
      case 66: r = aio_written(out, 0); break;
      case 67: r = aio_written(rd, 0); break;
      case 68: r = aio_written(out, 1); break;
      case 69: r = aio_written(rd, 1); break;
      case 70: r = syncfs(out); break;
      case 71: r = syncfs(-1); break;
      case 72: sync(); break;
      case 73: r = syscall(SYS_sync); break;
      case 74: r = syscall(SYS_syncfs, 999); break;
      case 75: r = msynced(rd, MS_SYNC, 0, 0); break;
      case 76: r = msynced(rd, MS_SYNC | MS_ASYNC, 0, 0); break;  // EINVAL
      case 77: r = msynced(rd, MS_SYNC, 1, 0); break;             // EINVAL: not page-aligned
      case 78: r = msynced(rd, MS_ASYNC, 0, 1); break;
      case 79: r = msynced(rd, MS_SYNC, 0, 1); break;
      case 80: r = aio_synced(out, O_SYNC, 0); break;
      case 81: r = aio_synced(rd, O_DSYNC, 1); break;
      case 82: r = aio_synced(out, 12345, 0); break;  // EINVAL
      case 83: r = aio_synced(-1, O_SYNC, 1); break;  // EBADF
      case 84: r = rename(P_text, P_empty); break;
      case 85: r = rename(P_missing, P_text); break;                                       // ENOENT
      case 86: r = renameat(AT_FDCWD, P_elf, AT_FDCWD, P_dir); break;                      // EISDIR
      case 87: r = renameat(-1, "rel", AT_FDCWD, P_text); break;                           // EBADF
      case 88: r = renameat2(AT_FDCWD, P_text, AT_FDCWD, P_elf, RENAME_NOREPLACE); break;  // EEXIST
      case 89: r = renameat2(AT_FDCWD, P_text, AT_FDCWD, P_elf, 0x80); break;              // EINVAL
      case 90: r = syscall(SYS_rename, P_missing, P_text); break;                          // ENOENT
      case 91: r = syscall(SYS_renameat2, AT_FDCWD, P_elf, AT_FDCWD, P_text, RENAME_EXCHANGE); break;
      // Passed on their flags alone, before the kernel has read the path (EFAULT)
      case 92: r = syscall(SYS_openat, AT_FDCWD, (const char*)8, O_RDWR | O_CREAT | O_EXCL, 0600); break;
      case 93: r = syscall(SYS_open, (const char*)8, O_WRONLY | O_DIRECTORY); break;
      case 94: r = syscall(SYS_openat, AT_FDCWD, (const char*)8, O_RDWR | O_TMPFILE, 0600); break;
    }
    int err = errno;
    syscall(SYS_close, in), syscall(SYS_close, out), syscall(SYS_close, rd);
    char name[32];
    snprintf(name, sizeof name, "io %d", call);
    finish(name, r, err, -1, 0);
  }
  fixture();
  before_call();
  closefrom(900);
  finish("closefrom 900", 0, errno, -1, 0);
}

// Failed execs return; their errno must be the kernel's.
static void exec_matrix(void) {
  if (g_mapped_mode) return;
  char* const argv[] = {(char*)"x", NULL};
  char* const envp[] = {(char*)"A=1", NULL};
  for (int t = 0; t < T_COUNT; ++t) {
    if (t == T_ELF || t == T_LINK || t == T_NULL) continue;  // (lib.so is executable: it would run)
    for (int call = 0; call < 10; ++call) {
      fixture();
      const char* p = target_path(t);
      int dfd = (int)syscall(SYS_open, D, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      long r = 0;
      before_call();
      switch (call) {
        case 0: r = execve(p, argv, envp); break;
        case 1: r = execv(p, argv); break;
        case 2: r = execvp(p, argv); break;
        case 3: r = execvpe(p, argv, envp); break;
        case 4: r = execl(p, "x", (char*)NULL); break;
        case 5: r = execlp(p, "x", (char*)NULL); break;
        case 6: r = execle(p, "x", (char*)NULL, envp); break;
        case 7: r = execveat(dfd, strrchr(p, '/') + 1, argv, envp, 0); break;
        case 8: r = syscall(SYS_execve, p, argv, envp); break;
        case 9: r = syscall(SYS_execveat, dfd, strrchr(p, '/') + 1, argv, envp, 0); break;
      }
      int err = errno;
      syscall(SYS_close, dfd);
      char name[64];
      snprintf(name, sizeof name, "exec%d %s", call, target_name[t]);
      finish(name, r, err, -1, 0);
    }
  }
  before_call();
  long r = fexecve(-1, argv, envp);
  finish("fexecve -1", r, errno, -1, 0);
  fixture();
  before_call();
  r = execvp("passmatrix-no-such-command", argv);
  finish("execvp no-such-command", r, errno, -1, 0);
  // An executable open for writing can't run: the kernel's ETXTBSY (the
  // open passes: an ELF file nobody runs).
  for (int call = 0; call < 4; ++call) {
    fixture();
    copy_file("/bin/true", P_exe, 0755);
    const int w = open(P_exe, O_WRONLY | O_CLOEXEC);
    if (w < 0) die(P_exe);
    before_call();
    r = call == 0 ? execve(P_exe, argv, envp)
        : call == 1 ? execv(P_exe, argv)
        : call == 2 ? execl(P_exe, "x", (char*)NULL)
                    : syscall(SYS_execve, P_exe, argv, envp);
    int err = errno;
    char name[64];
    snprintf(name, sizeof name, "exec%d of an executable open for writing", call);
    finish(name, r, err, w, 1);
  }
  // posix_spawn_file_actions_addopen returns an error number.
  static const int targets[] = {T_TEXT, T_ELF, T_MISSING, T_NODIR};
  for (unsigned ti = 0; ti < 4; ++ti)
    for (int k = 0; k < 3; ++k) {
      fixture();
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      static const int fls[] = {O_WRONLY | O_TRUNC, O_RDWR, O_WRONLY | O_CREAT | O_TRUNC};
      before_call();
      int rr = posix_spawn_file_actions_addopen(&fa, k == 2 ? -1 : 1, target_path(targets[ti]), fls[k], 0644);
      int err = errno;
      posix_spawn_file_actions_destroy(&fa);
      char name[64];
      snprintf(name, sizeof name, "addopen %s %d", target_name[targets[ti]], k);
      finish(name, rr, err, -1, 0);
    }
}

// ---------------------------------------------------------------- other users, limits, read-only

// In a child (its output follows the parent's), so its state can't leak.
static void in_child(void (*body)(void)) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    body();
    fflush(stdout);
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
}

static void one_write_set(const char* label) {
  static const int targets[] = {T_TEXT, T_ELF, T_MISSING, T_DIR};
  static const int fls[] = {O_WRONLY | O_TRUNC, O_RDWR, O_RDONLY | O_TRUNC, O_WRONLY | O_CREAT | O_TRUNC, O_RDONLY};
  for (unsigned ti = 0; ti < 4; ++ti) {
    const int t = targets[ti];
    if (g_mapped_mode && t != T_ELF) continue;
    for (unsigned k = 0; k < 5; ++k) {
      char name[96];
      snprintf(name, sizeof name, "%s open %s %#x", label, target_name[t], fls[k]);
      before_call();
      int r = open(target_path(t), fls[k], 0644);
      finish(name, r, errno, r, 1);
    }
    char name[96];
    int r;
    // With no fd at all, no header can be read: truncate(2) fails with
    // ETXTBSY (documented in docs/guarantees.md, "What is not guaranteed").
    if (g_free_fds != 0 || strncmp(label, "emfile", 6) != 0) {
      snprintf(name, sizeof name, "%s truncate %s", label, target_name[t]);
      before_call();
      r = truncate(target_path(t), 0);
      finish(name, r, errno, -1, 0);
    }
    snprintf(name, sizeof name, "%s fopen %s w", label, target_name[t]);
    before_call();
    FILE* f = fopen(target_path(t), "w");
    stream_case(name, f, errno);
    snprintf(name, sizeof name, "%s creat %s", label, target_name[t]);
    before_call();
    r = creat(target_path(t), 0644);
    finish(name, r, errno, r, 1);
  }
}

static void as_nobody_body(void) {
  if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0) {
    printf("nobody: unavailable\n");
    return;
  }
  g_ignore_atime = 1;
  one_write_set("nobody");
}

static void nobody_cases(void) {
  if (geteuid() != 0) {
    printf("nobody: not root\n");
    return;
  }
  fixture();
  chmod(P_text, 0644), chmod(P_elf, 0755), chmod(P_map, 0755);
  in_child(as_nobody_body);
}

// Only g_free_fds fds left below the limit.
static void emfile_body(void) {
  int low = lowest_free();
  // Fill every hole below the top, then limit to `free` more.
  int top = low;
  struct rlimit rl = {(rlim_t)(top + g_free_fds), (rlim_t)(top + g_free_fds)};
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
    printf("emfile: unavailable\n");
    return;
  }
  char label[32];
  snprintf(label, sizeof label, "emfile%d", g_free_fds);
  one_write_set(label);
}

static void emfile_cases(void) {
  if (g_mapped_mode) return;  // a library in use: ETXTBSY where fds lack (reliability `limits`)
  for (g_free_fds = 0; g_free_fds < 3; ++g_free_fds) {
    fixture();
    in_child(emfile_body);
  }
}

// A file size limit (RLIMIT_FSIZE, soft) below what the call asks, SIGXFSZ
// ignored: the kernel's EFBIG, on a text file and an unused library. The
// limit is set back before the case is printed (stdout is a file).
static int g_efbig_case;
static void efbig_body(void) {
  static const int targets[] = {T_TEXT, T_ELF};
  const int t = targets[g_efbig_case / 7], k = g_efbig_case % 7;
  const char* p = target_path(t);
  struct rlimit old, rl;
  if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR || getrlimit(RLIMIT_FSIZE, &old) < 0) {
    printf("efbig: unavailable\n");
    return;
  }
  rl = old;
  rl.rlim_cur = 1024;
  const int fd = k == 0 ? -1 : open(p, (k == 6 ? O_WRONLY | O_APPEND : O_RDWR) | O_CLOEXEC);
  if (k != 0 && fd < 0) die(p);
  before_call();
  if (setrlimit(RLIMIT_FSIZE, &rl) < 0) die("setrlimit");
  long r = 0;
  switch (k) {
    case 0: r = truncate(p, 1 << 20); break;
    case 1: r = ftruncate(fd, 1 << 20); break;
    case 2: r = pwrite(fd, "x", 1, 1 << 20); break;
    case 3: r = fallocate(fd, 0, 0, 1 << 20); break;
    case 4: r = syscall(SYS_ftruncate, fd, 1 << 20); break;
    case 5: r = syscall(SYS_pwrite64, fd, "x", 1, 1 << 20); break;
    case 6: r = write(fd, "x", 1); break;  // O_APPEND: at the end, past the limit for the library
  }
  const int err = errno;
  setrlimit(RLIMIT_FSIZE, &old);
  char name[64];
  snprintf(name, sizeof name, "efbig %s %d", target_name[t], k);
  finish(name, r, err, fd, 1);
}

static void efbig_cases(void) {
  if (g_mapped_mode) return;  // a library in use: its shrinking copy stops at the limit (reliability `limits`)
  for (g_efbig_case = 0; g_efbig_case < 14; ++g_efbig_case) {
    fixture();
    in_child(efbig_body);
  }
}

static void erofs_body(void) {
  if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
      mount(D, D, NULL, MS_BIND, NULL) < 0 || mount(NULL, D, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
    printf("erofs: unavailable (%s)\n", strerror(errno));
    return;
  }
  one_write_set("erofs");
}

static void erofs_cases(void) {
  fixture();
  in_child(erofs_body);
}

// A running executable, opened for writing by nobody, who may not write it:
// the kernel answers EACCES before ETXTBSY, and truncguard passes (the
// caller may not write). Where the caller may, truncguard acts (e2e
// running_executable); the pass-through ETXTBSY is exec_matrix's (an
// executable open for writing).
static void etxtbsy_nobody_body(void) {
  if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0) return;
  static const int fls[] = {O_WRONLY, O_WRONLY | O_TRUNC, O_RDONLY | O_TRUNC};
  for (int k = 0; k < 3; ++k) {
    before_call();
    int r = open(P_exe, fls[k]);
    char name[64];
    snprintf(name, sizeof name, "etxtbsy-nobody %#x", fls[k]);
    finish(name, r, errno, r, 1);
  }
}

static void etxtbsy_cases(void) {
  if (g_mapped_mode || geteuid() != 0) return;
  fixture();
  copy_file("/bin/sleep", P_exe, 0755);
  pid_t pid = fork();
  if (pid == 0) {
    execl(P_exe, "sleep", "30", (char*)NULL);
    _exit(127);
  }
  // Until it runs the copy.
  char exe[64], target[4200];
  snprintf(exe, sizeof exe, "/proc/%d/exe", pid);
  for (int i = 0; i < 2000; ++i) {
    ssize_t n = readlink(exe, target, sizeof target - 1);
    if (n > 0 && (target[n] = '\0', strcmp(target, P_exe) == 0)) break;
    usleep(1000);
  }
  in_child(etxtbsy_nobody_body);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

// ---------------------------------------------------------------- signal handlers

// The shim's eight ways in only note a handler: every result, errno and old
// action must be glibc's. What is installed is read back with the raw call.
__sighandler_t bsd_signal(int sig, __sighandler_t handler);
int __sigaction(int sig, const struct sigaction* act, struct sigaction* old);
static void handler_a(int sig) { (void)sig; }
static void handler_b(int sig, siginfo_t* info, void* uc) { (void)sig, (void)info, (void)uc; }

static const char* handler_name(__sighandler_t h) {
  if (h == SIG_DFL) return "dfl";
  if (h == SIG_IGN) return "ign";
  if (h == SIG_ERR) return "err";
  if (h == SIG_HOLD) return "hold";
  if (h == handler_a) return "a";
  if ((void*)h == (void*)handler_b) return "b";
  return "other";
}

static void installed(int sig) {
  struct {
    void* handler;
    unsigned long flags;
    void* restorer;
    uint64_t mask;
  } k;
  if (syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof k.mask) == 0)
    printf(" now=%s flags=%#lx mask=%#llx", handler_name((__sighandler_t)k.handler), k.flags & ~0x04000000ul,
           (unsigned long long)k.mask);  // (less SA_RESTORER)
}

static const char* signal_entry[] = {"signal", "bsd_signal", "ssignal", "sysv_signal", "__sysv_signal", "sigset"};
static __sighandler_t call_signal(int e, int sig, __sighandler_t h) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // sigset: programs still call it
  switch (e) {
    case 0: return signal(sig, h);
    case 1: return bsd_signal(sig, h);
    case 2: return ssignal(sig, h);
    case 3: return sysv_signal(sig, h);
    case 4: return __sysv_signal(sig, h);
    default: return sigset(sig, h);
  }
#pragma GCC diagnostic pop
}

static void signal_cases(void) {
  fixture();
  static const int sigs[] = {SIGUSR1, SIGALRM, 0, -1, 65, SIGKILL, SIGSTOP, 32, 33, SIGSEGV};
  const __sighandler_t hs[] = {handler_a, SIG_IGN, SIG_DFL, SIG_HOLD, SIG_ERR};
  char name[96];
  for (int e = 0; e < 6; ++e)
    for (unsigned s = 0; s < sizeof sigs / sizeof sigs[0]; ++s)
      for (unsigned h = 0; h < sizeof hs / sizeof hs[0]; ++h) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        before_call();
        __sighandler_t old = call_signal(e, sigs[s], hs[h]);
        const int err = errno;
        snprintf(name, sizeof name, "%s(%d, %s)", signal_entry[e], sigs[s], handler_name(hs[h]));
        printf("%03d %s: ret=%s errno=%d", g_case, name, handler_name(old), err);
        installed(sigs[s]);
        end_case();
      }
  static const int flag_sets[] = {0, SA_SIGINFO, SA_RESTART | SA_NODEFER, SA_RESETHAND | SA_ONSTACK};
  for (int e = 0; e < 2; ++e)
    for (unsigned s = 0; s < sizeof sigs / sizeof sigs[0]; ++s)
      for (unsigned f = 0; f < sizeof flag_sets / sizeof flag_sets[0]; ++f)
        for (int alias = 0; alias < 3; ++alias) {  // old apart, old in act's storage, no act
          struct sigaction act, old;
          memset(&act, 0, sizeof act);
          memset(&old, 0x5a, sizeof old);
          act.sa_flags = flag_sets[f];
          if (act.sa_flags & SA_SIGINFO) act.sa_sigaction = handler_b;
          else act.sa_handler = handler_a;
          sigaddset(&act.sa_mask, SIGUSR2);
          struct sigaction* out = alias == 1 ? &act : &old;
          before_call();
          int r = e == 0 ? sigaction(sigs[s], alias == 2 ? NULL : &act, out)
                         : __sigaction(sigs[s], alias == 2 ? NULL : &act, out);
          const int err = errno;
          snprintf(name, sizeof name, "%s(%d, flags %#x, %s)", e ? "__sigaction" : "sigaction", sigs[s], flag_sets[f],
                   alias == 0 ? "old apart" : alias == 1 ? "old=act" : "query");
          printf("%03d %s: ret=%d errno=%d old=%s oldflags=%#x oldmask2=%d", g_case, name, r, err,
                 handler_name(out->sa_handler), out->sa_flags, sigismember(&out->sa_mask, SIGUSR2));
          installed(sigs[s]);
          end_case();
        }
  // syscall(SYS_rt_sigaction), the kernel's struct: an act the kernel can't
  // read (EFAULT) and a bad sigset size too. (Not glibc's own 32 and 33.)
  for (unsigned s = 0; s < sizeof sigs / sizeof sigs[0]; ++s)
    for (int k = 0; k < 3; ++k) {
      if (sigs[s] == 32 || sigs[s] == 33) continue;
      struct {
        void* handler;
        unsigned long flags;
        void* restorer;
        uint64_t mask;
      } act = {(void*)handler_a, 0x04000000 /* SA_RESTORER */, (void*)handler_a, 0}, old;
      memset(&old, 0x5a, sizeof old);
      before_call();
      long r = k == 0   ? syscall(SYS_rt_sigaction, sigs[s], &act, &old, sizeof act.mask)
               : k == 1 ? syscall(SYS_rt_sigaction, sigs[s], (void*)8, &old, sizeof act.mask)
                        : syscall(SYS_rt_sigaction, sigs[s], &act, NULL, 4);
      const int err = errno;
      snprintf(name, sizeof name, "syscall(SYS_rt_sigaction, %d) %d", sigs[s], k);
      printf("%03d %s: ret=%ld errno=%d old=%s", g_case, name, r, err, handler_name((__sighandler_t)old.handler));
      installed(sigs[s]);
      end_case();
    }
  // Back to what the rest of the matrix expects.
  for (unsigned s = 0; s < sizeof sigs / sizeof sigs[0]; ++s) signal(sigs[s], SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

// syscall() with fewer than seven arguments owns no stack slot of its
// caller's: glibc's reads the one above its return address (a seventh
// argument's place), never writes it. The caller's own data may live there (a
// futex word another thread sets: written back, the wake-up was lost). Here
// that slot is read-only: a write kills the program.
#if defined(__x86_64__)
static long syscall_on_stack(char* top, long nr, long a0) {
  long r;
  __asm__ volatile(
      "mov %%rsp, %%r12\n\t"
      "mov %[top], %%rsp\n\t"
      "xor %%eax, %%eax\n\t"
      "call syscall@PLT\n\t"
      "mov %%r12, %%rsp"
      : "=a"(r), "+D"(nr), "+S"(a0)
      : [top] "b"(top)
      : "r12", "rcx", "rdx", "r8", "r9", "r10", "r11", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
        "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
  return r;
}

static void stack_slot_cases(void) {
  const size_t rw = 256 << 10, page = 4096;
  char* base = mmap(NULL, rw + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED || mprotect(base + rw, page, PROT_READ) != 0) die("mmap");
  static const long calls[][2] = {{SYS_getpid, 0}, {SYS_close, -1}};  // passes; taken in
  for (int i = 0; i < 2; ++i) {
    before_call();
    long r = syscall_on_stack(base + rw, calls[i][0], calls[i][1]);
    int err = errno;
    if (calls[i][0] == SYS_getpid) r = r == getpid();
    char name[64];
    snprintf(name, sizeof name, "syscall(%ld) read-only slot above its return address", calls[i][0]);
    finish(name, r, err, -1, 0);
  }
  munmap(base, rw + page);
}
#else
static void stack_slot_cases(void) {}
#endif

// errno after successful calls that pass: readdir's loop and fopen's caller
// test it. (Covered by the sentinel in every case; here, the stream ones.)
static void errno_cases(void) {
  if (g_mapped_mode) return;
  fixture();
  before_call();
  DIR* d = opendir(D);
  int n = 0;
  struct dirent* de;
  while ((de = readdir(d)) != NULL) ++n;
  printf("readdir: n=%d errno=%d\n", n, errno);
  closedir(d);
  before_call();
  FILE* f = fopen(P_text, "a");
  fputs("more\n", f);
  int r = fclose(f);
  finish("fopen a + fclose", r, errno, -1, 0);
  before_call();
  f = fopen(P_text, "a");
  fputs("more\n", f);
  r = _IO_fclose(f);
  finish("fopen a + _IO_fclose", r, errno, -1, 0);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: passmatrix DIR ELF\n");
    return 2;
  }
  g_root = argv[1];
  g_elf = argv[2];
  g_mapped_mode = getenv("PASSMATRIX_MAPPED") != NULL;
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  // Thousands of small files: on a tmpfs of its own where it can (root, in a
  // mount namespace of its own), which is much faster than most disks.
  if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
      mount("passmatrix", g_root, "tmpfs", 0, "mode=755") == 0)
    printf("(on a tmpfs)\n");
  open_matrix();
  fifo_cases();
  pty_cases();
  creat_cases();
  fopen_matrix();
  freopen_matrix();
  truncate_matrix();
  fd_change_matrix();
  io_matrix();
  exec_matrix();
  nobody_cases();
  emfile_cases();
  erofs_cases();
  efbig_cases();
  etxtbsy_cases();
  errno_cases();
  stack_slot_cases();
  signal_cases();
  return 0;
}
