/* A plugin: version() says which build it is; work() calls libc through the
 * PLT, so running it from a truncated file crashes. */
#include <stdio.h>
#include <string.h>
static int calls;
#ifdef PLUGIN_BROKEN
/* Defined nowhere: with RTLD_NOW, dlopen fails ("undefined symbol"). */
extern int tg_no_such_function(int);
#endif
__attribute__((visibility("default"))) int tg_version(void) { return PLUGIN_VERSION; }
__attribute__((visibility("default"))) int tg_work(int x) {
#ifdef PLUGIN_BROKEN
  if (x < 0) return tg_no_such_function(x);
#endif
  char buf[32];
  snprintf(buf, sizeof buf, "%d:%d", x, calls++);
  return (int)strlen(buf);
}
