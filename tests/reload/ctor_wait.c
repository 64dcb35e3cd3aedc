/* A plugin whose constructor holds up its dlopen (and so glibc's loader
 * lock): it writes a byte to fd $TG_CTOR_FDS's second number, then waits for
 * a byte on the first. Built with -DIN_DTOR (libdtor_wait.so): its
 * destructor holds up its dlclose so, with $TG_DTOR_FDS, and it needs
 * librace_dep.so (DT_NEEDED). */
#include <stdlib.h>
#include <unistd.h>
static void wait_for_go(const char* var) {
  const char* fds = getenv(var);
  if (!fds) return;
  char* rest;
  const int go = (int)strtol(fds, &rest, 10), ready = (int)strtol(rest, NULL, 10);
  char c = 'r';
  if (write(ready, &c, 1) == 1 && read(go, &c, 1) == 1) return;
}
#ifdef IN_DTOR
int tg_work(int);  /* librace_dep.so's: used, so that the link keeps it needed */
__attribute__((visibility("default"))) int dtor_wait_work(int x) { return tg_work(x); }
__attribute__((destructor)) static void dtor(void) { wait_for_go("TG_DTOR_FDS"); }
#else
__attribute__((constructor)) static void ctor(void) { wait_for_go("TG_CTOR_FDS"); }
__attribute__((visibility("default"))) int tg_version(void) { return 8; }
#endif
