/* The floor for "put a new file at a name that a running process maps":
 * the bare system calls of install(1), without anything else.
 *
 *   tg_bare_replace SRC DST
 *
 * read SRC, unlink(DST), open(DST, O_WRONLY|O_CREAT|O_EXCL), write, close. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int die(const char* what, const char* path) {
  fprintf(stderr, "tg_bare_replace: %s %s: %s\n", what, path, strerror(errno));
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: tg_bare_replace SRC DST\n");
    return 2;
  }
  int in = open(argv[1], O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (in < 0 || fstat(in, &st) < 0) return die("cannot read", argv[1]);
  size_t len = (size_t)st.st_size;
  char* buf = malloc(len ? len : 1);
  if (!buf) return die("out of memory for", argv[1]);
  for (size_t done = 0; done < len;) {
    ssize_t r = read(in, buf + done, len - done);
    if (r <= 0) return die("cannot read", argv[1]);
    done += (size_t)r;
  }
  close(in);
  if (unlink(argv[2]) < 0 && errno != ENOENT) return die("cannot unlink", argv[2]);
  int out = open(argv[2], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777);
  if (out < 0) return die("cannot create", argv[2]);
  for (size_t done = 0; done < len;) {
    ssize_t w = write(out, buf + done, len - done);
    if (w < 0) return die("cannot write", argv[2]);
    done += (size_t)w;
  }
  if (close(out) < 0) return die("cannot close", argv[2]);
  free(buf);
  return 0;
}
