/* A plugin: version() says which build it is; work() calls libc through the
 * PLT, so running it from a truncated file crashes. */
#include <stdio.h>
#include <string.h>
static int calls;
__attribute__((visibility("default"))) int tg_version(void) { return PLUGIN_VERSION; }
__attribute__((visibility("default"))) int tg_work(int x) {
  char buf[32];
  snprintf(buf, sizeof buf, "%d:%d", x, calls++);
  return (int)strlen(buf);
}
