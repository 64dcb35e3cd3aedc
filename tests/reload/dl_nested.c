/* A plugin that calls dlopen, dlsym and dlclose on $TG_INNER from its
 * constructor (-DIN_CTOR) or its destructor (-DIN_DTOR), and says so. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
static void use_inner(const char* when) {
  const char* inner = getenv("TG_INNER");
  if (!inner) return;
  void* h = dlopen(inner, RTLD_NOW);
  int (*v)(void) = h ? (int (*)(void))dlsym(h, "tg_version") : NULL;
  int version = v ? v() : -1;
  int closed = h ? dlclose(h) : -9;
  printf("%s: inner version %d, dlclose %d\n", when, version, closed);
}
#ifdef IN_CTOR
__attribute__((constructor)) static void ctor(void) { use_inner("constructor"); }
#endif
#ifdef IN_DTOR
__attribute__((destructor)) static void dtor(void) { use_inner("destructor"); }
#endif
__attribute__((visibility("default"))) int tg_version(void) { return 7; }
