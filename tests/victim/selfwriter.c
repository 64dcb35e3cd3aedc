/* A process that overwrites a library it has loaded itself (a plugin host
 * updating its own plugin, a build tool relinking what it runs).
 *
 *   selfwriter LIB.so NEWFILE
 *     dlopen(LIB) and call it, then open(LIB, O_WRONLY|O_TRUNC) and write
 *     the bytes of NEWFILE into it, then call the library again.
 *     Exit 0 if the old code still works (the shim gave LIB a new inode),
 *     3 if the version changed under us, 2 on errors; without the shim the
 *     process dies by a signal at the second call. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char* what, const char* arg) {
  fprintf(stderr, "selfwriter: %s %s: %s\n", what, arg, strerror(errno));
  exit(2);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: selfwriter LIB.so NEWFILE\n");
    return 2;
  }
  void* h = dlopen(argv[1], RTLD_NOW);
  if (!h) {
    fprintf(stderr, "selfwriter: dlopen: %s\n", dlerror());
    return 2;
  }
  int (*version)(void) = (int (*)(void))(void (*)(void))dlsym(h, "tg_version");
  int (*work)(int) = (int (*)(int))(void (*)(void))dlsym(h, "tg_work");
  if (!version || !work) {
    fprintf(stderr, "selfwriter: %s lacks tg_version/tg_work\n", argv[1]);
    return 2;
  }
  work(1);
  const int first = version();
  printf("selfwriter: loaded version %d\n", first);
  fflush(stdout);

  int in = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (in < 0) die("cannot open", argv[2]);
  int out = open(argv[1], O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (out < 0) die("cannot open for writing", argv[1]);
  char buf[65536];
  for (;;) {
    ssize_t r = read(in, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("cannot read", argv[2]);
    if (r == 0) break;
    for (ssize_t off = 0; off < r;) {
      ssize_t w = write(out, buf + off, (size_t)(r - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) die("cannot write", argv[1]);
      off += w;
    }
  }
  if (close(out) != 0) die("cannot close", argv[1]);
  close(in);

  work(2);  /* without protection: unrelocated GOT, SIGSEGV */
  int now = version();
  if (now != first) {
    printf("selfwriter: version changed from %d to %d\n", first, now);
    return 3;
  }
  printf("selfwriter: still running version %d\n", first);
  return 0;
}
