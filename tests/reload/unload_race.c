/* unload_race DEP HOLDER NEWDEP: DEP is loaded only as HOLDER's DT_NEEDED
 * (a dlopen of DEP of the program's own, closed); NEWDEP is put at DEP's
 * name; then a thread's dlclose of HOLDER unloads both while main dlopens
 * DEP's path. HOLDER's destructor holds that dlclose (and glibc's loader
 * lock) until main is seen waiting on a futex (the loader lock: inside its
 * dlopen, which then finds DEP unloaded and loads NEWDEP). Prints the
 * version main's dlopen gave, and "raced yes" where main did wait there. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void* holder;
static int go[2], ready[2];
static atomic_int main_opening;
static atomic_int raced;
static pid_t main_tid;

static void* close_holder(void* arg) {
  (void)arg;
  dlclose(holder);
  return NULL;
}

/* Main's current syscall: SYS_futex (202 on x86-64) once it waits for the lock. */
static int main_waits_on_futex(void) {
  char path[64], buf[64] = "";
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)main_tid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  return atoi(buf) == SYS_futex;
}

static void* release_when_main_waits(void* arg) {
  (void)arg;
  while (!atomic_load(&main_opening)) usleep(100);
  for (;;) {
    if (main_waits_on_futex()) { atomic_store(&raced, 1); break; }
    if (atomic_load(&main_opening) == 2) break;  /* main's dlopen returned: it never waited */
    usleep(100);
  }
  char c = 'g';
  if (write(go[1], &c, 1) != 1) return NULL;
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  const char *dep = argv[1], *holder_path = argv[2], *newdep = argv[3];
  setvbuf(stdout, NULL, _IONBF, 0);
  main_tid = (pid_t)syscall(SYS_gettid);
  if (pipe(go) || pipe(ready)) return 2;
  char fds[32];
  snprintf(fds, sizeof fds, "%d %d", go[0], ready[1]);
  setenv("TG_DTOR_FDS", fds, 1);
  holder = dlopen(holder_path, RTLD_NOW);
  if (!holder) { printf("dlopen holder: %s\n", dlerror()); return 2; }
  void* h = dlopen(dep, RTLD_NOW);
  if (!h || !dlsym(h, "tg_version") || dlclose(h)) { printf("dep: %s\n", dlerror()); return 2; }
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s.new' && mv '%s.new' '%s'", newdep, dep, dep, dep);
  if (system(cmd) != 0) return 2;
  pthread_t closer, releaser;
  pthread_create(&releaser, NULL, release_when_main_waits, NULL);
  pthread_create(&closer, NULL, close_holder, NULL);
  char c;
  if (read(ready[0], &c, 1) != 1) return 2;  /* the destructor runs: the lock is held */
  atomic_store(&main_opening, 1);
  h = dlopen(dep, RTLD_NOW);
  atomic_store(&main_opening, 2);
  pthread_join(releaser, NULL);
  pthread_join(closer, NULL);
  int (*v)(void) = h ? (int (*)(void))dlsym(h, "tg_version") : NULL;
  printf("version %d\n", v ? v() : -1);
  printf("raced %s\n", atomic_load(&raced) ? "yes" : "no");
  return 0;
}
