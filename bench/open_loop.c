/* A loop of open-like calls, for the measurements that need a whole program
 * rather than Google Benchmark: system-call counts (strace), instruction
 * counts (callgrind), allocation counts (with tg_alloc_count preloaded) and
 * resident memory.
 *
 *   tg_open_loop MODE N FILE [--mem]
 *
 * MODE (each iteration):
 *   rdonly   open(FILE, O_RDONLY) + close                      (pass-through)
 *   append   open(FILE, O_WRONLY|O_APPEND) + close             (pass-through)
 *   inplace  open(FILE, O_WRONLY) + close                      (examined: a write in place)
 *   inplace_rdwr  open(FILE, O_RDWR) + close                   (examined through its own fd)
 *   trunc    open(FILE, O_WRONLY|O_TRUNC) + write FILE's original content back + close
 *            (the file is never empty when opened: text, ET_REL or an unmapped ET_DYN)
 *   new      open(FILE, O_WRONLY|O_CREAT|O_TRUNC) of a missing name + close + unlink
 *   mapped   map FILE executable (mmap PROT_EXEC), then as `trunc`, then unmap:
 *            with the shim, the protected replacement (scan, new inode, rename)
 *   fopen_w  fopen(FILE, "w") + fwrite FILE's original content back + fclose:
 *            glibc allocates one FILE per call, with or without the shim (the
 *            positive control of the allocation count)
 *
 * One iteration runs first, uncounted (the shim resolves the next `open` on
 * its first call); then the N counted ones run in run_loop(), which
 * callgrind can select with --toggle-collect=run_loop, between two
 * getppid() system calls that mark the region in an strace log.
 *
 * Prints one line:
 *   mode=M n=N first_allocs=A allocs=B frees=C [rss_kb=R pss_kb=P uss_kb=U shim_rss_kb=S]
 * The allocation counts come from tg_alloc_count when it is preloaded
 * (first_allocs: during the first, uncounted call), else they are -1. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum mode { M_RDONLY, M_APPEND, M_INPLACE, M_INPLACE_RDWR, M_TRUNC, M_NEW, M_MAPPED, M_FOPEN_W };

static const char* g_path;
static char* g_content;
static size_t g_len;

static void die(const char* what) {
  fprintf(stderr, "tg_open_loop: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void write_all(int fd) {
  for (size_t done = 0; done < g_len;) {
    ssize_t w = write(fd, g_content + done, g_len - done);
    if (w < 0) die("write");
    done += (size_t)w;
  }
}

static void one(enum mode m) {
  int fd;
  void* map = NULL;
  FILE* fp;
  switch (m) {
    case M_FOPEN_W:
      fp = fopen(g_path, "w");
      if (!fp) die("fopen");
      if (fwrite(g_content, 1, g_len, fp) != g_len) die("fwrite");
      if (fclose(fp) != 0) die("fclose");
      return;
    case M_RDONLY:
      fd = open(g_path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) die("open");
      close(fd);
      return;
    case M_APPEND:
    case M_INPLACE:
      fd = open(g_path, O_WRONLY | (m == M_APPEND ? O_APPEND : 0) | O_CLOEXEC);
      if (fd < 0) die("open");
      close(fd);
      return;
    case M_INPLACE_RDWR:
      fd = open(g_path, O_RDWR | O_CLOEXEC);
      if (fd < 0) die("open");
      close(fd);
      return;
    case M_NEW:
      fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) die("open");
      close(fd);
      if (unlink(g_path) < 0) die("unlink");
      return;
    case M_MAPPED:
      fd = open(g_path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) die("open for mapping");
      map = mmap(NULL, g_len, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
      if (map == MAP_FAILED) die("mmap");
      close(fd);
      /* fall through */
    case M_TRUNC:
      fd = open(g_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
      if (fd < 0) die("open O_TRUNC");
      write_all(fd);
      close(fd);
      if (map) munmap(map, g_len);
      return;
  }
}

__attribute__((noinline)) void run_loop(enum mode m, long n) {
  for (long i = 0; i < n; ++i) one(m);
}

typedef void (*counts_fn)(unsigned long*, unsigned long*);

static void counts(counts_fn f, long* allocs, long* frees) {
  unsigned long a = 0, fr = 0;
  if (f) f(&a, &fr);
  *allocs = f ? (long)a : -1;
  *frees = f ? (long)fr : -1;
}

/* Sums "Rss:", "Pss:" and the private fields of /proc/self/smaps_rollup, and
 * the Rss of the shim's own objects (libtruncguard and what it loads:
 * libunwind, liblzma) from /proc/self/smaps. */
static void memory(long* rss, long* pss, long* uss, long* own) {
  FILE* f = fopen("/proc/self/smaps_rollup", "r");
  char line[512];
  *rss = *pss = *uss = *own = -1;
  if (!f) return;
  long pc = 0, pd = 0;
  while (fgets(line, sizeof line, f)) {
    long v;
    if (sscanf(line, "Rss: %ld kB", &v) == 1) *rss = v;
    else if (sscanf(line, "Pss: %ld kB", &v) == 1) *pss = v;
    else if (sscanf(line, "Private_Clean: %ld kB", &v) == 1) pc = v;
    else if (sscanf(line, "Private_Dirty: %ld kB", &v) == 1) pd = v;
  }
  *uss = pc + pd;
  fclose(f);
  f = fopen("/proc/self/smaps", "r");
  if (!f) return;
  int mine = 0;
  *own = 0;
  while (fgets(line, sizeof line, f)) {
    long v;
    unsigned long a, b;
    if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, ' '))
      mine = strstr(line, "libtruncguard") || strstr(line, "libunwind") || strstr(line, "liblzma");
    else if (mine && sscanf(line, "Rss: %ld kB", &v) == 1)
      *own += v;
  }
  fclose(f);
}

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5) {
    fprintf(stderr, "usage: tg_open_loop rdonly|append|inplace|inplace_rdwr|trunc|new|mapped|fopen_w N FILE [--mem]\n");
    return 2;
  }
  enum mode m;
  if (!strcmp(argv[1], "rdonly")) m = M_RDONLY;
  else if (!strcmp(argv[1], "append")) m = M_APPEND;
  else if (!strcmp(argv[1], "inplace")) m = M_INPLACE;
  else if (!strcmp(argv[1], "inplace_rdwr")) m = M_INPLACE_RDWR;
  else if (!strcmp(argv[1], "trunc")) m = M_TRUNC;
  else if (!strcmp(argv[1], "new")) m = M_NEW;
  else if (!strcmp(argv[1], "mapped")) m = M_MAPPED;
  else if (!strcmp(argv[1], "fopen_w")) m = M_FOPEN_W;
  else {
    fprintf(stderr, "tg_open_loop: unknown mode %s\n", argv[1]);
    return 2;
  }
  long n = atol(argv[2]);
  g_path = argv[3];
  int mem = argc == 5 && !strcmp(argv[4], "--mem");

  if (m == M_TRUNC || m == M_MAPPED || m == M_FOPEN_W) {
    int fd = open(g_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) die(g_path);
    if (st.st_size == 0) {
      fprintf(stderr, "tg_open_loop: %s is empty\n", g_path);
      return 2;
    }
    g_len = (size_t)st.st_size;
    g_content = malloc(g_len);
    if (!g_content || read(fd, g_content, g_len) != (ssize_t)g_len) die("read");
    close(fd);
  }

  counts_fn f = (counts_fn)(void (*)(void))dlsym(RTLD_DEFAULT, "tg_alloc_counts");
  long a0, f0, a1, f1, a2, f2;
  counts(f, &a0, &f0);
  one(m);
  counts(f, &a1, &f1);
  syscall(SYS_getppid);
  run_loop(m, n);
  syscall(SYS_getppid);
  counts(f, &a2, &f2);

  printf("mode=%s n=%ld first_allocs=%ld allocs=%ld frees=%ld", argv[1], n, f ? a1 - a0 : -1, f ? a2 - a1 : -1,
         f ? f2 - f1 : -1);
  if (mem) {
    long rss, pss, uss, own;
    memory(&rss, &pss, &uss, &own);
    printf(" rss_kb=%ld pss_kb=%ld uss_kb=%ld shim_rss_kb=%ld", rss, pss, uss, own);
  }
  printf("\n");
  free(g_content);
  return 0;
}
