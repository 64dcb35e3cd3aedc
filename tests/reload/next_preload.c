/* A second interposer, preloaded after truncguard: its puts() finds the real
 * one with dlsym(RTLD_NEXT), which depends on who the caller is. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
__attribute__((visibility("default"))) int puts(const char* s) {
  int (*real)(const char*) = (int (*)(const char*))dlsym(RTLD_NEXT, "puts");
  if (!real || real == puts) return -1;
  fputs("[next] ", stdout);
  return real(s);
}
