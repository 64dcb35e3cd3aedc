/* A plugin whose constructor holds up its dlopen (and so glibc's loader
 * lock): it writes a byte to fd $TG_CTOR_FDS's second number, then waits for
 * a byte on the first. */
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void ctor(void) {
  const char* fds = getenv("TG_CTOR_FDS");
  if (!fds) return;
  char* rest;
  const int go = (int)strtol(fds, &rest, 10), ready = (int)strtol(rest, NULL, 10);
  char c = 'r';
  if (write(ready, &c, 1) == 1 && read(go, &c, 1) == 1) return;
}
__attribute__((visibility("default"))) int tg_version(void) { return 8; }
