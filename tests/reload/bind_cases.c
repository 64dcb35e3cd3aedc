/* dlsym and dlvsym in every form the bindings category covers, in a fixed
 * order. bindings.sh runs it under glibc's LD_DEBUG=bindings and under
 * truncguard's bindings category and compares the lines.
 *   bind_cases PLUGIN GLOBAL_PLUGIN */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: bind_cases PLUGIN GLOBAL_PLUGIN\n");
    return 2;
  }
  void* h = dlopen(argv[1], RTLD_LAZY | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "bind_cases: %s\n", dlerror());
    return 1;
  }
  int found = 0;
  /* On a handle: the plugin itself, its dependency, versions, misses. */
  found += dlsym(h, "tgb_fn") != NULL;
  found += dlsym(h, "tgb_data") != NULL;
  found += dlsym(h, "tgb_tls") != NULL;
  found += dlsym(h, "tgb_dep_fn") != NULL;
  found += dlsym(h, "tgb_ver") != NULL;
  found += dlvsym(h, "tgb_ver", "V1") != NULL;
  found += dlvsym(h, "tgb_fn", "NOPE") != NULL;
  found += dlsym(h, "tgb_missing") != NULL;
  /* The program's own handle. */
  void* self = dlopen(NULL, RTLD_NOW);
  found += dlsym(self, "ffsl") != NULL;
  /* From the program: the global scope, the next object, a version. */
  found += dlsym(RTLD_DEFAULT, "strverscmp") != NULL;
  found += dlsym(RTLD_DEFAULT, "tgb_nowhere") != NULL;
  found += dlsym(RTLD_DEFAULT, "tgb_fn") != NULL; /* RTLD_LOCAL: not global */
  found += dlsym(RTLD_NEXT, "getloadavg") != NULL;
  found += dlvsym(RTLD_DEFAULT, "realpath", "GLIBC_2.2.5") != NULL;
  /* From inside the dlopened plugin: the global scope, then its own. */
  void* (*lookup)(const char*) = (void* (*)(const char*))dlsym(h, "tgb_lookup_default");
  if (!lookup) return 1;
  found += lookup("mblen") != NULL;
  found += lookup("tgb_dep_fn") != NULL;
  /* Defined in the vDSO too (an object loaded at start-up, but not in the
   * global scope): glibc binds it to libc. */
  found += lookup("clock_gettime") != NULL;
  /* RTLD_NEXT from the plugin: its own dependencies, after itself. */
  void* (*next)(const char*) = (void* (*)(const char*))dlsym(h, "tgb_lookup_next");
  if (!next) return 1;
  found += next("tgb_shadow") != NULL;
  found += next("mblen") != NULL;
  found += next("tgb_nowhere") != NULL;
  /* An object opened RTLD_GLOBAL joins the global scope. */
  void* g = dlopen(argv[2], RTLD_LAZY | RTLD_GLOBAL);
  if (!g) return 1;
  found += dlsym(RTLD_DEFAULT, "tgb_global_fn") != NULL;
  found += lookup("tgb_global_fn") != NULL;
  dlclose(g);
  dlclose(h);
  printf("found %d\n", found);
  return 0;
}
