/* A library whose constructor sleeps 3 s: dlopen holds the loader's lock
 * meanwhile (vfork_syscall). */
#include <unistd.h>

__attribute__((constructor)) static void slow_ctor(void) { sleep(3); }
