/* writer ENTRY DEST SRC: copies SRC over DEST through one specific libc entry
 * point, so each interposed symbol is exercised by itself:
 *   open open64 openat openat64 creat creat64 __open_2 __open64_2
 *   __openat_2 __openat64_2 fopen fopen64 freopen freopen64
 *   open_notrunc (open O_WRONLY without O_TRUNC, write SRC, ftruncate to
 *   SRC's size: scp's shape)
 *   truncate truncate64 (truncate DEST to 0 bytes, then append SRC's bytes
 *   with O_APPEND: the shape of "truncate, then rewrite")
 *   append (open O_WRONLY|O_APPEND, append SRC's bytes: changes no byte of DEST)
 *   append_rdwr (the same with O_RDWR|O_APPEND, fopen's "a+")
 *   append_setfl (open O_WRONLY|O_APPEND, fcntl(F_SETFL) drops O_APPEND,
 *   SRC's bytes written at offset 0, ftruncate to SRC's size)
 *   append_noappend (open O_WRONLY|O_APPEND, SRC's bytes written at offset 0
 *   by pwritev2(RWF_NOAPPEND), ftruncate to SRC's size)
 *   append_punch (open O_WRONLY|O_APPEND, fallocate punches a hole over the
 *   whole of DEST; SRC unused)
 *   append_sys_noappend append_sys_punch (the same two through libc's
 *   syscall(SYS_pwritev2, ...) and syscall(SYS_fallocate, ...))
 *   raw_close (open O_WRONLY|O_TRUNC, SRC's bytes, the fd closed by a
 *   syscall instruction of the program's own, as libc never sees it; x86_64
 *   and aarch64 only)
 *   freopen_away (fopen "w", SRC's bytes, then freopen points the stream at
 *   /dev/null: glibc closes DEST's fd inside, where close() never sees it)
 *   sys_open sys_openat sys_creat sys_truncate (the same through libc's
 *   syscall(SYS_open, ...) and so on: a program's system call by number)
 *   sys_openat_hi (syscall(SYS_openat | 1L << 32, ...): bits the kernel ignores)
 *   pwritev64 sendfile64 (open O_WRONLY|O_TRUNC, SRC's bytes through that
 *   call: what a program built with _FILE_OFFSET_BITS=64 calls for pwritev
 *   and sendfile)
 *   __write __pwrite64 (the same through glibc's public aliases of write and
 *   pwrite64)
 *   aio_write (the same through aio_write, one 4 KiB block at a time, each
 *   waited for: glibc's helper thread writes, the program reads aio_error)
 *   sys_write sys_pwrite64 sys_writev sys_pwritev sys_sendfile sys_splice
 *   (the same through libc's syscall() with that number; splice from a
 *   pipe: a program's system call by number)
 *   __open __open64 (glibc's public aliases of open and open64; __open's fd is
 *   closed with __close, the alias of close; __open64's by __dup2, dup2's,
 *   putting /dev/null at its number)
 *   _IO_fopen (glibc's public alias of fopen, as fopen; closed with
 *   _IO_fclose, fclose's)
 *   fwrite_exit fcloseall_exit (fopen "w", SRC through fwrite, exit 0
 *   without fclose, after fcloseall() for the second: no error checked)
 *   then_sync then_syncfs then_aio_fsync then_sys_sync then_sys_syncfs
 *   (open O_WRONLY|O_TRUNC, SRC's bytes, then that call, or libc's
 *   syscall(SYS_sync) / syscall(SYS_syncfs, fd), before close: the writer
 *   syncs without fsync on the fd)
 *   then_msync then_sys_msync (open O_RDWR|O_TRUNC, ftruncate to SRC's size,
 *   SRC's bytes through a shared mapping, msync(MS_SYNC) or
 *   syscall(SYS_msync), munmap, close)
 * It then prints the fd's status flags and close-on-exec bit as
 *   flags=0x... cloexec=N
 * so tests can compare them with an unprotected open of the same kind.
 * Exit 0 on success; 1 with "writer: ENTRY: strerror" on failure. */
#define _GNU_SOURCE
#define _LARGEFILE64_SOURCE
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "glibc_aliases.h"

int __open_2(const char*, int);
int __open64_2(const char*, int);
int __openat_2(int, const char*, int);
int __openat64_2(int, const char*, int);

static const char* g_entry;

static void die(void) {
  fprintf(stderr, "writer: %s: %s\n", g_entry, strerror(errno));
  exit(1);
}

static void copy_to_fd(const char* src, int out) {
  int in = open(src, O_RDONLY);
  if (in < 0) die();
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) die();
  if (n < 0) die();
  close(in);
}

#ifndef RWF_NOAPPEND
#define RWF_NOAPPEND 0x20
#endif

/* SRC's bytes at offset 0 of `out`, one pwritev2 per 4 KiB (flags as given):
 * several calls, as a writer of a library makes; by syscall(SYS_pwritev2)
 * where `by_number` (fd, iov, cnt, pos_l, pos_h, flags). */
static void overwrite_from(const char* src, int out, int rwf, int by_number) {
  int in = open(src, O_RDONLY);
  if (in < 0) die();
  char buf[4096];
  ssize_t n;
  off_t off = 0;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    struct iovec v = {buf, (size_t)n};
    const ssize_t w = by_number ? syscall(SYS_pwritev2, out, &v, 1, (long)off, 0L, rwf) : pwritev2(out, &v, 1, off, rwf);
    if (w != n) die();
    off += n;
  }
  if (n < 0) die();
  close(in);
  if (ftruncate(out, off) != 0) die();
}

/* The writes copy_through makes through libc's syscall() by number. */
static int by_number(const char* how) {
  static const char* const names[] = {"sys_write",   "sys_pwrite64", "sys_writev",
                                      "sys_pwritev", "sys_sendfile", "sys_splice"};
  for (size_t i = 0; i < sizeof names / sizeof *names; ++i)
    if (!strcmp(how, names[i])) return 1;
  return 0;
}

/* SRC's bytes into `out` through pwritev64 or sendfile64. */
static void copy_through(const char* how, const char* src, int out) {
  int in = open(src, O_RDONLY);
  if (in < 0) die();
  off64_t off = 0;
  if (!strcmp(how, "aio_write")) {
    static char buf[4096];
    ssize_t n;
    while ((n = pread(in, buf, sizeof buf, off)) > 0) {
      struct aiocb cb = {.aio_fildes = out, .aio_buf = buf, .aio_nbytes = (size_t)n, .aio_offset = off};
      const struct aiocb* list[1] = {&cb};
      if (aio_write(&cb) != 0) die();
      while (aio_error(&cb) == EINPROGRESS) aio_suspend(list, 1, NULL);
      if ((errno = aio_error(&cb)) != 0 || aio_return(&cb) != n) die();
      off += n;
    }
    if (n < 0) die();
  } else if (!strcmp(how, "__write") || !strcmp(how, "__pwrite64")) {
    char buf[4096];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
      if ((!strcmp(how, "__write") ? __write(out, buf, (size_t)n) : __pwrite64(out, buf, (size_t)n, off)) != n) die();
      off += n;
    }
    if (n < 0) die();
  } else if (by_number(how)) {
    char buf[4096];
    int pipe_fds[2];
    ssize_t n;
    if (pipe(pipe_fds) != 0) die();
    while ((n = pread(in, buf, sizeof buf, off)) > 0) {
      struct iovec v = {buf, (size_t)n};
      loff_t from = off;
      long w;
      if (!strcmp(how, "sys_write")) w = syscall(SYS_write, out, buf, (size_t)n);
      else if (!strcmp(how, "sys_pwrite64")) w = syscall(SYS_pwrite64, out, buf, (size_t)n, (long)off);
      else if (!strcmp(how, "sys_writev")) w = syscall(SYS_writev, out, &v, 1);
      else if (!strcmp(how, "sys_pwritev")) w = syscall(SYS_pwritev, out, &v, 1, (long)off, 0L);
      else if (!strcmp(how, "sys_sendfile")) w = syscall(SYS_sendfile, out, in, &from, (size_t)n);
      else if (write(pipe_fds[1], buf, (size_t)n) != n) die();
      else w = syscall(SYS_splice, pipe_fds[0], NULL, out, NULL, (size_t)n, 0U);  /* sys_splice */
      if (w != n) die();  /* a short write counts as a failure here: the tests give room or none */
      off += n;
    }
    if (n < 0) die();
    close(pipe_fds[0]);
    close(pipe_fds[1]);
  } else if (!strcmp(how, "sendfile64")) {
    struct stat st;
    if (fstat(in, &st) != 0) die();
    while (off < st.st_size)
      if (sendfile64(out, in, &off, (size_t)(st.st_size - off)) <= 0) die();
  } else {
    char buf[4096];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
      struct iovec v = {buf, (size_t)n};
      if (pwritev64(out, &v, 1, off) != n) die();
      off += n;
    }
    if (n < 0) die();
  }
  close(in);
}

static void report(int fd) {
  int fl = fcntl(fd, F_GETFL);
  int fdfl = fcntl(fd, F_GETFD);
  printf("flags=0x%x cloexec=%d\n", fl, (fdfl & FD_CLOEXEC) ? 1 : 0);
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: writer ENTRY DEST SRC\n");
    return 2;
  }
  g_entry = argv[1];
  const char* e = argv[1];
  const char* dest = argv[2];
  const char* src = argv[3];
  /* O_APPEND and O_CLOEXEC ride along, to check the new fd keeps them. */
  const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC;
  int fd = -1;
  if (!strcmp(e, "open")) fd = open(dest, flags, 0644);
  else if (!strcmp(e, "open64")) fd = open64(dest, flags, 0644);
  else if (!strcmp(e, "__open")) fd = __open(dest, flags, 0644);
  else if (!strcmp(e, "__open64")) fd = __open64(dest, flags, 0644);
  else if (!strcmp(e, "openat")) fd = openat(AT_FDCWD, dest, flags, 0644);
  else if (!strcmp(e, "openat64")) fd = openat64(AT_FDCWD, dest, flags, 0644);
#ifdef SYS_open
  else if (!strcmp(e, "sys_open")) fd = (int)syscall(SYS_open, dest, flags, 0644);
  else if (!strcmp(e, "sys_creat")) fd = (int)syscall(SYS_creat, dest, 0644);
#endif
  else if (!strcmp(e, "sys_openat")) fd = (int)syscall(SYS_openat, AT_FDCWD, dest, flags, 0644);
#if __SIZEOF_LONG__ == 8
  /* The kernel reads the number's low 32 bits only: this is an openat too. */
  else if (!strcmp(e, "sys_openat_hi")) fd = (int)syscall(SYS_openat | 1L << 32, AT_FDCWD, dest, flags, 0644);
#endif
  else if (!strcmp(e, "open_notrunc")) {
    fd = open(dest, O_WRONLY | O_CLOEXEC);
    if (fd < 0) die();
    copy_to_fd(src, fd);
    struct stat st;
    if (stat(src, &st) != 0 || ftruncate(fd, st.st_size) != 0) die();
    report(fd);
    return close(fd) == 0 ? 0 : 1;
  }
  else if (!strncmp(e, "append", 6)) {
    fd = open(dest, (!strcmp(e, "append_rdwr") ? O_RDWR : O_WRONLY) | O_APPEND | O_CLOEXEC);
    if (fd < 0) die();
    if (!strcmp(e, "append") || !strcmp(e, "append_rdwr")) copy_to_fd(src, fd);
    else if (!strcmp(e, "append_setfl")) {
      if (fcntl(fd, F_SETFL, 0) != 0) die();
      overwrite_from(src, fd, 0, 0);
    } else if (!strcmp(e, "append_noappend")) overwrite_from(src, fd, RWF_NOAPPEND, 0);
    else if (!strcmp(e, "append_sys_noappend")) overwrite_from(src, fd, RWF_NOAPPEND, 1);
    else if (!strcmp(e, "append_punch") || !strcmp(e, "append_sys_punch")) {
      struct stat st;
      const int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
      if (fstat(fd, &st) != 0) die();
      const long r = !strcmp(e, "append_punch") ? fallocate(fd, mode, 0, st.st_size)
                                                : syscall(SYS_fallocate, fd, mode, 0L, (long)st.st_size);
      if (r != 0) die();
    } else {
      fprintf(stderr, "writer: unknown entry point '%s'\n", e);
      return 2;
    }
    report(fd);
    return close(fd) == 0 ? 0 : 1;
  }
  else if (!strcmp(e, "creat")) fd = creat(dest, 0644);
  else if (!strcmp(e, "creat64")) fd = creat64(dest, 0644);
  else if (!strcmp(e, "__open_2")) fd = __open_2(dest, O_WRONLY | O_TRUNC | O_APPEND | O_CLOEXEC);
  else if (!strcmp(e, "__open64_2")) fd = __open64_2(dest, O_WRONLY | O_TRUNC | O_APPEND | O_CLOEXEC);
  else if (!strcmp(e, "__openat_2")) fd = __openat_2(AT_FDCWD, dest, O_WRONLY | O_TRUNC | O_APPEND | O_CLOEXEC);
  else if (!strcmp(e, "__openat64_2")) fd = __openat64_2(AT_FDCWD, dest, O_WRONLY | O_TRUNC | O_APPEND | O_CLOEXEC);
  else if (!strcmp(e, "fopen") || !strcmp(e, "fopen64") || !strcmp(e, "freopen") || !strcmp(e, "freopen64") ||
           !strcmp(e, "_IO_fopen")) {
    FILE* f;
    if (!strcmp(e, "fopen")) f = fopen(dest, "we");
    else if (!strcmp(e, "_IO_fopen")) f = _IO_fopen(dest, "we");
    else if (!strcmp(e, "fopen64")) f = fopen64(dest, "we");
    else {
      f = fopen("/dev/null", "r");
      if (!f) die();
      f = !strcmp(e, "freopen") ? freopen(dest, "we", f) : freopen64(dest, "we", f);
    }
    if (!f) die();
    fflush(f);
    copy_to_fd(src, fileno(f));
    report(fileno(f));
    if ((!strcmp(e, "_IO_fopen") ? _IO_fclose(f) : fclose(f)) != 0) die();
    return 0;
  } else if (!strcmp(e, "fwrite_exit") || !strcmp(e, "fcloseall_exit")) {
    /* A program that checks nothing: SRC through fwrite, then exit without
       fclose (after fcloseall, which only flushes), status 0. */
    FILE* f = fopen(dest, "w");
    FILE* in = fopen(src, "r");
    if (!f || !in) die();
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, f);
    if (!strcmp(e, "fcloseall_exit")) fcloseall();
    return 0;
  } else if (!strcmp(e, "raw_close")) {
    fd = open(dest, O_WRONLY | O_TRUNC | O_CREAT, 0644);
    if (fd < 0) die();
    copy_to_fd(src, fd);
    report(fd);
    long r;
#if defined(__x86_64__)
    __asm__ volatile("syscall" : "=a"(r) : "a"((long)SYS_close), "D"((long)fd) : "rcx", "r11", "memory");
#elif defined(__aarch64__)
    register long x0 __asm__("x0") = fd;
    register long x8 __asm__("x8") = SYS_close;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8) : "memory");
    r = x0;
#else
    r = -ENOSYS;
#endif
    if (r != 0) {
      errno = (int)-r;
      die();
    }
    return 0;
  } else if (!strcmp(e, "freopen_away")) {
    FILE* f = fopen(dest, "w");
    if (!f) die();
    copy_to_fd(src, fileno(f));
    report(fileno(f));
    if (!freopen("/dev/null", "w", f)) die();
    if (fclose(f) != 0) die();
    return 0;
  } else if (!strcmp(e, "pwritev64") || !strcmp(e, "sendfile64") || !strcmp(e, "__write") ||
             !strcmp(e, "__pwrite64") || !strcmp(e, "aio_write") ||
             by_number(e)) {
    fd = open(dest, O_WRONLY | O_TRUNC | O_CREAT, 0644);
    if (fd < 0) die();
    copy_through(e, src, fd);
    report(fd);
    if (close(fd) != 0) die();
    return 0;
  } else if (!strncmp(e, "then_", 5)) {
    const char* how = e + 5;
    const int mapped = !strcmp(how, "msync") || !strcmp(how, "sys_msync");
    fd = open(dest, (mapped ? O_RDWR : O_WRONLY) | O_TRUNC | O_CREAT, 0644);
    if (fd < 0) die();
    if (mapped) {
      struct stat st;
      if (stat(src, &st) != 0 || ftruncate(fd, st.st_size) != 0) die();
      char* m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      int in = open(src, O_RDONLY);
      if (m == MAP_FAILED || in < 0 || read(in, m, (size_t)st.st_size) != st.st_size) die();
      close(in);
      int r = !strcmp(how, "msync") ? msync(m, (size_t)st.st_size, MS_SYNC)
                                    : (int)syscall(SYS_msync, m, (size_t)st.st_size, MS_SYNC);
      if (r != 0 || munmap(m, (size_t)st.st_size) != 0) die();
    } else {
      copy_to_fd(src, fd);
      int r = 0;
      if (!strcmp(how, "sync")) sync();
      else if (!strcmp(how, "sys_sync")) r = (int)syscall(SYS_sync);
      else if (!strcmp(how, "syncfs")) r = syncfs(fd);
      else if (!strcmp(how, "sys_syncfs")) r = (int)syscall(SYS_syncfs, fd);
      else if (!strcmp(how, "aio_fsync")) {
        struct aiocb cb = {.aio_fildes = fd};
        const struct aiocb* list[1] = {&cb};
        if (aio_fsync(O_SYNC, &cb) != 0) die();
        while (aio_error(&cb) == EINPROGRESS) aio_suspend(list, 1, NULL);
        if ((errno = aio_error(&cb)) != 0) die();
      } else {
        errno = EINVAL;
        die();
      }
      if (r != 0) die();
    }
    report(fd);
    if (close(fd) != 0) die();
    return 0;
  } else if (!strcmp(e, "truncate") || !strcmp(e, "truncate64") || !strcmp(e, "sys_truncate")) {
    int r = !strcmp(e, "truncate")   ? truncate(dest, 0)
            : !strcmp(e, "truncate64") ? truncate64(dest, 0)
                                       : (int)syscall(SYS_truncate, dest, 0);
    if (r != 0) die();
    fd = open(dest, O_WRONLY | O_APPEND);
  } else {
    fprintf(stderr, "writer: unknown entry point '%s'\n", e);
    return 2;
  }
  if (fd < 0) die();
  copy_to_fd(src, fd);
  report(fd);
  if (!strcmp(e, "__open64")) {
    /* __dup2 (dup2's alias) puts /dev/null at fd: that closes DEST's fd. */
    int nul = open("/dev/null", O_RDONLY);
    if (nul < 0 || __dup2(nul, fd) != fd) die();
    close(nul);
  }
  if ((!strcmp(e, "__open") ? __close(fd) : close(fd)) != 0) die();
  return 0;
}
