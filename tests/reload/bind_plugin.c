/* The plugin bind_cases looks symbols up in: a function, data, a
 * thread-local variable, two versions of one symbol (bind_plugin.map), and
 * a dependency (bind_dep: referenced, never called, and the plugin is
 * opened RTLD_LAZY, so no binding of it happens at load time). It also looks
 * up with RTLD_DEFAULT itself, to be a dlopened caller. */
#define _GNU_SOURCE
#include <dlfcn.h>

int tgb_fn(void) { return 1; }
int tgb_data = 2;
__thread int tgb_tls = 3;

int tgb_ver_v1(void) { return 1; }
int tgb_ver_v2(void) { return 2; }
__asm__(".symver tgb_ver_v1,tgb_ver@V1");
__asm__(".symver tgb_ver_v2,tgb_ver@@V2");

int tgb_dep_fn(void);
int tgb_use_dep(void) { return tgb_dep_fn(); }

/* Defined here and in bind_dep: RTLD_NEXT from here finds bind_dep's. */
int tgb_shadow(void) { return 1; }

/* Not tail calls: glibc must see the plugin as dlsym's caller. */
void* tgb_lookup_default(const char* name) {
  void* volatile found = dlsym(RTLD_DEFAULT, name);
  return found;
}
void* tgb_lookup_next(const char* name) {
  void* volatile found = dlsym(RTLD_NEXT, name);
  return found;
}
