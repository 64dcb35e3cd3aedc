/* Caller identity: this library dlopens its neighbour the way real plugins
 * do. glibc resolves "$ORIGIN" and a bare name (through this library's own
 * RUNPATH) relative to the CALLER of dlopen: if an interposer made itself the
 * caller, both would fail. */
#include <dlfcn.h>
#include <stdio.h>
__attribute__((visibility("default"))) int outer_load(const char* name) {
  void* h = dlopen(name, RTLD_NOW);
  if (!h) {
    fprintf(stderr, "outer: dlopen(%s): %s\n", name, dlerror());
    return -1;
  }
  int (*v)(void) = (int (*)(void))dlsym(h, "tg_version");
  return v ? v() : -2;
}
