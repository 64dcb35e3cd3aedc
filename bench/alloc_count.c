/* A counting allocator to preload: every malloc-family call is counted, then
 * handed to glibc's own allocator (__libc_malloc & co., exported by glibc for
 * this purpose, so no dlsym and no recursion).
 *
 *   LD_PRELOAD="libtg_alloc_count.so libtruncguard.so" tg_open_loop rdonly 10000 FILE
 *
 * Listed first, it is the malloc that every other object (the shim, built
 * with a static libstdc++, included) binds to. A program reads the counts
 * with tg_alloc_counts(), found by dlsym(RTLD_DEFAULT, ...). */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void __libc_free(void*);
extern void* __libc_memalign(size_t, size_t);
extern void* __libc_valloc(size_t);
extern void* __libc_pvalloc(size_t);

static unsigned long g_allocs, g_frees;

#define EXPORT __attribute__((visibility("default")))

static void count_alloc(void) { __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED); }

EXPORT void tg_alloc_counts(unsigned long* allocs, unsigned long* frees) {
  *allocs = __atomic_load_n(&g_allocs, __ATOMIC_RELAXED);
  *frees = __atomic_load_n(&g_frees, __ATOMIC_RELAXED);
}

EXPORT void* malloc(size_t n) {
  count_alloc();
  return __libc_malloc(n);
}

EXPORT void* calloc(size_t n, size_t size) {
  count_alloc();
  return __libc_calloc(n, size);
}

EXPORT void* realloc(void* p, size_t n) {
  count_alloc();
  return __libc_realloc(p, n);
}

EXPORT void* reallocarray(void* p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  count_alloc();
  return __libc_realloc(p, total);
}

EXPORT void free(void* p) {
  if (p) __atomic_add_fetch(&g_frees, 1, __ATOMIC_RELAXED);
  __libc_free(p);
}

EXPORT void* memalign(size_t align, size_t n) {
  count_alloc();
  return __libc_memalign(align, n);
}

EXPORT void* aligned_alloc(size_t align, size_t n) {
  count_alloc();
  return __libc_memalign(align, n);
}

EXPORT int posix_memalign(void** out, size_t align, size_t n) {
  if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
  count_alloc();
  void* p = __libc_memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

EXPORT void* valloc(size_t n) {
  count_alloc();
  return __libc_valloc(n);
}

EXPORT void* pvalloc(size_t n) {
  count_alloc();
  return __libc_pvalloc(n);
}
