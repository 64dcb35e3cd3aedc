/* reloader LIB STEP...: a plugin host that reloads the way real programs do.
 *   open       dlopen(LIB, RTLD_NOW), keep the handle
 *   call       call the newest handle's tg_work and print "version N"
 *   close      dlclose the newest handle
 *   run:CMD    system(CMD) (a deploy step: cp, install...)
 *   loaded     print "loaded yes" or "loaded no" (RTLD_NOLOAD)
 *   origin:NAME / default:SYM / next   caller-identity checks (see outer.c)
 *   write      write(1, "hello\n", 6)
 *   with:PATH  dlopen(PATH, RTLD_NOW), not kept as a handle
 *   writevia   the write() dlsym finds in the newest handle, given "hello\n"
 * Exit 0 when every step worked; 2 on a failed step. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const char* lib = argv[1];
  void* handles[16];
  int n = 0;
  setvbuf(stdout, NULL, _IONBF, 0);
  for (int i = 2; i < argc; ++i) {
    const char* step = argv[i];
    if (!strcmp(step, "open")) {
      void* h = dlopen(lib, RTLD_NOW);
      if (!h) { printf("dlopen failed: %s\n", dlerror()); return 2; }
      if (n < 16) handles[n++] = h;
    } else if (!strcmp(step, "call")) {
      if (!n) return 2;
      int (*work)(int) = (int (*)(int))dlsym(handles[n - 1], "tg_work");
      int (*ver)(void) = (int (*)(void))dlsym(handles[n - 1], "tg_version");
      if (!ver) return 2;
      if (work) work(i);
      printf("version %d\n", ver());
    } else if (!strcmp(step, "close")) {
      if (!n || dlclose(handles[--n]) != 0) return 2;
    } else if (!strncmp(step, "run:", 4)) {
      if (system(step + 4) != 0) { printf("step failed: %s\n", step + 4); return 2; }
    } else if (!strcmp(step, "loaded")) {
      void* h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
      printf("loaded %s\n", h ? "yes" : "no");
      if (h) dlclose(h);
    } else if (!strncmp(step, "origin:", 7)) {
      /* dlopen the outer library, which dlopens step+7 itself */
      void* h = dlopen(lib, RTLD_NOW);
      int (*outer)(const char*) = h ? (int (*)(const char*))dlsym(h, "outer_load") : NULL;
      if (!outer) { printf("no outer_load\n"); return 2; }
      int v = outer(step + 7);
      printf("inner version %d\n", v);
      if (v < 0) return 2;
    } else if (!strncmp(step, "default:", 8)) {
      void* h = dlopen(lib, RTLD_NOW | RTLD_GLOBAL);
      void* sym = dlsym(RTLD_DEFAULT, step + 8);
      printf("default %s %s\n", step + 8, sym ? "found" : "missing");
      if (h) dlclose(h);
      if (!sym) return 2;
    } else if (!strcmp(step, "next")) {
      puts("hello");
    } else if (!strcmp(step, "write")) {
      if (write(1, "hello\n", 6) != 6) return 2;
    } else if (!strncmp(step, "with:", 5)) {
      if (!dlopen(step + 5, RTLD_NOW)) { printf("dlopen failed: %s\n", dlerror()); return 2; }
    } else if (!strcmp(step, "writevia")) {
      ssize_t (*w)(int, const void*, size_t) = n ? (ssize_t (*)(int, const void*, size_t))dlsym(handles[n - 1], "write") : NULL;
      if (!w || w(1, "hello\n", 6) != 6) return 2;
    } else {
      return 2;
    }
  }
  return 0;
}
