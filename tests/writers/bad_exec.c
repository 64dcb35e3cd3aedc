/* bad_exec DEST SRC: writes SRC over DEST (open O_WRONLY|O_TRUNC|O_CLOEXEC)
 * and, with that fd still open (in atomic mode, a file pending), calls exec
 * with memory the kernel refuses to read: envp, argv and the path pointing
 * to nothing, an entry pointing to nothing, an array on a PROT_NONE page, a
 * string that runs into one; through execve, execveat, fexecve and
 * syscall(SYS_execve). Each must fail and come back; it prints
 *   CASE: -1 ERRNO-TEXT
 * then "same inode: yes" if DEST still has the inode it had after the open
 * (a failed exec publishes nothing), closes the fd and exits 0.
 * bad_exec DEST SRC secret: writes the same, then execs /bin/true with an
 * environment whose string lies in memfd_secret memory, which the kernel
 * reads (the exec succeeds) but process_vm_readv can't; status 77 and a
 * message where there is no memfd_secret.
 * bad_exec DEST SRC search PATH NAME: writes the same, then execvp(NAME)
 * with PATH set to PATH, DEST's fd kept open across it (no FD_CLOEXEC),
 * which must fail (a PATH entry that is a symlink loop: ELOOP ends the
 * search); prints the same lines as above. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char** environ;

/* An address, out of the compiler's sight (it warns about reads of constants). */
static void* address(unsigned long v) {
  volatile unsigned long x = v;
  return (void*)x;
}

static void report(const char* what, int r) {
  printf("%s: %d %s\n", what, r, r < 0 ? strerror(errno) : "(returned)");
  fflush(stdout);
}

int main(int argc, char** argv) {
  const int secret = argc == 4 && !strcmp(argv[3], "secret");
  const int search = argc == 6 && !strcmp(argv[3], "search");
  if (argc != 3 && !secret && !search) {
    fprintf(stderr, "usage: bad_exec DEST SRC [secret | search PATH NAME]\n");
    return 2;
  }
  const int out = open(argv[1], O_WRONLY | O_TRUNC | O_CLOEXEC);
  const int in = open(argv[2], O_RDONLY);
  if (out < 0 || in < 0) {
    perror("bad_exec: open");
    return 1;
  }
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) return 1;
  close(in);
  struct stat before, after;
  if (stat(argv[1], &before) != 0) return 1;

  if (secret) {
    const int fd = (int)syscall(447 /* SYS_memfd_secret */, 0);
    const long size = sysconf(_SC_PAGESIZE);
    char* mem = fd < 0 || ftruncate(fd, size) != 0
                    ? MAP_FAILED
                    : mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) {
      printf("no memfd_secret here: %s\n", strerror(errno));
      return 77;
    }
    memcpy(mem, "A=1", 4);
    char* args[] = {"true", NULL};
    char* env[] = {mem, NULL};
    execve("/bin/true", args, env);
    perror("bad_exec: execve");
    return 1;
  }

  if (search) {
    /* An fd the exec keeps: handed over to a program that loads the shim,
     * published at the exec of one that can't (O_CLOEXEC: at any exec). */
    if (fcntl(out, F_SETFD, 0) != 0) return 1;
    char* args[] = {argv[5], NULL};
    if (setenv("PATH", argv[4], 1) != 0) return 1;
    report("execvp", execvp(argv[5], args));
  } else {
    /* Two pages: the first readable, the second not. */
    const long page = sysconf(_SC_PAGESIZE);
    char* mem = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED || mprotect(mem + page, (size_t)page, PROT_NONE) != 0) return 1;
    char* const none = address((unsigned long)(mem + page));
    memcpy(none - 3, "A=1", 3); /* no NUL before the unreadable page */

    char* const nowhere = address(8);
    char* good_argv[] = {"true", NULL};
    char* bad_entry[] = {"A=1", nowhere, NULL};
    char* runs_on[] = {none - 3, NULL};
    const char* const path = "/bin/true";

    report("execve envp=8", execve(path, good_argv, (char**)nowhere));
    report("execve envp entry=8", execve(path, good_argv, bad_entry));
    report("execve envp on PROT_NONE", execve(path, good_argv, (char**)none));
    report("execve envp string into PROT_NONE", execve(path, good_argv, runs_on));
    report("execve argv=8", execve(path, (char**)nowhere, environ));
    report("execve argv entry=8", execve(path, bad_entry, environ));
    report("execve path=8", execve(nowhere, good_argv, environ));
    report("execveat envp=8", execveat(AT_FDCWD, path, good_argv, (char**)nowhere, 0));
    report("execveat path=8", execveat(AT_FDCWD, nowhere, good_argv, environ, 0));
    const int exe = open(path, O_RDONLY | O_CLOEXEC);
    report("fexecve envp=8", fexecve(exe, good_argv, (char**)nowhere));
    report("syscall(SYS_execve) envp=8", (int)syscall(SYS_execve, path, good_argv, nowhere));
    report("syscall(SYS_execve) envp on PROT_NONE", (int)syscall(SYS_execve, path, good_argv, none));
  }

  if (stat(argv[1], &after) != 0) return 1;
  printf("same inode: %s\n", after.st_ino == before.st_ino ? "yes" : "no");
  fflush(stdout);
  if (close(out) != 0) {
    perror("bad_exec: close");
    return 1;
  }
  return 0;
}
