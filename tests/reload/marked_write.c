/* write() that marks what it writes with "[MARK] ", defined as an IFUNC
 * (-DAS_IFUNC, as libraries that pick an implementation at load time define
 * their functions) or as a plain function: another interposer preloaded after
 * truncguard, or a library a program dlopens after it. */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>
#define STR2(x) #x
#define STR(x) STR2(x)
static ssize_t marked_write(int fd, const void* buf, size_t n) {
  static const char mark[] = "[" STR(MARK) "] ";
  syscall(SYS_write, fd, mark, sizeof mark - 1);
  return syscall(SYS_write, fd, buf, n);
}
#ifdef AS_IFUNC
typedef ssize_t write_fn(int, const void*, size_t);
static write_fn* resolve_write(void) { return marked_write; }
__attribute__((visibility("default"))) ssize_t write(int, const void*, size_t) __attribute__((ifunc("resolve_write")));
#else
__attribute__((visibility("default"))) ssize_t write(int fd, const void* buf, size_t n) { return marked_write(fd, buf, n); }
#endif
