/* fd_truncator DEST SRC READY GO [syscall]: opens DEST O_RDWR and seeks to
 * offset 100 while nobody maps it, creates READY, waits for GO to exist (the
 * test starts a victim on DEST meanwhile), then ftruncate(fd, 0) (with
 * "syscall": libc's syscall(SYS_ftruncate, fd, 0)) and writes SRC's bytes
 * with pwrite at 0: the "open early, truncate late" writer.
 * Prints "offset=N flags=0x.. cloexec=N" after the ftruncate, so the test can
 * check the fd kept its offset and flags. Exit 0 on success. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 5 && !(argc == 6 && !strcmp(argv[5], "syscall"))) {
    fprintf(stderr, "usage: fd_truncator DEST SRC READY GO [syscall]\n");
    return 2;
  }
  int fd = open(argv[1], O_RDWR | O_CLOEXEC);
  if (fd < 0 || lseek(fd, 100, SEEK_SET) != 100) return perror("fd_truncator: open"), 1;
  int before = fcntl(fd, F_GETFL);
  close(open(argv[3], O_WRONLY | O_CREAT, 0644));
  struct timespec tick = {0, 5000000};
  for (int i = 0; i < 2000 && access(argv[4], F_OK) != 0; ++i) nanosleep(&tick, NULL);
  if ((argc == 6 ? syscall(SYS_ftruncate, fd, 0) : ftruncate(fd, 0)) != 0) return perror("fd_truncator: ftruncate"), 1;
  printf("offset=%ld flags=0x%x cloexec=%d\n", (long)lseek(fd, 0, SEEK_CUR),
         fcntl(fd, F_GETFL) == before ? before : -1, (fcntl(fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
  int in = open(argv[2], O_RDONLY);
  if (in < 0) return perror("fd_truncator: src"), 1;
  char buf[65536];
  ssize_t n;
  off_t at = 0;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    if (pwrite(fd, buf, (size_t)n, at) != n) return perror("fd_truncator: pwrite"), 1;
    at += n;
  }
  return close(fd) == 0 ? 0 : 1;
}
