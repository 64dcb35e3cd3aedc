/* The library a running process has loaded and someone overwrites.
 *
 * Built twice, with -DVICTIM_VERSION=1 and =2.  tg_work() calls libc through
 * the PLT and keeps a counter in writable data: truncating the mapped file
 * throws away even the private, relocated GOT page (field notes 1), so the
 * next call jumps through an unrelocated GOT entry and the process dies.
 * Version 2 also carries a large initialised array, so the two files differ
 * in size and a partly written file leaves pages past its end (SIGBUS). */
#include <stdio.h>
#include <string.h>

#ifndef VICTIM_VERSION
#error "build with -DVICTIM_VERSION=N"
#endif

#define TG_EXPORT __attribute__((visibility("default")))

static int counter;

#if VICTIM_VERSION == 2
/* Initialised, so it occupies file pages: v2 is about 64 KiB larger. */
static volatile char padding[64 * 1024] = {2};
#endif

TG_EXPORT int tg_version(void) { return VICTIM_VERSION; }

TG_EXPORT int tg_work(int x) {
  char buf[64];
  counter++;
  int n = snprintf(buf, sizeof buf, "v%d:%d:%d", VICTIM_VERSION, x, counter);
#if VICTIM_VERSION == 2
  n += padding[(unsigned)counter % sizeof padding];
#endif
  return n + (int)strlen(buf);
}
