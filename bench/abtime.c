/* Interleaved timing of whole commands: A B C, B C A, C A B, ... so that a
 * noisy machine's drift falls on every variant alike (hyperfine runs all of
 * A, then all of B). Each run is one posix_spawn + waitpid, timed with
 * CLOCK_MONOTONIC; no shell in between (so no shell start-up to subtract).
 *
 *   tg_abtime [-r RUNS] [-w WARMUP] [-o SAMPLES.tsv] [-t TAG] VARIANT...
 *   VARIANT:  -n NAME [-p PREPARE] [-e VAR=VALUE]... -- PROGRAM ARG... ';'
 *
 * PREPARE is a shell command run (untimed, with system()) before every run of
 * that variant. -e sets or replaces one environment variable of the command.
 * The commands' standard input, output and error are /dev/null. A command
 * that exits non-zero stops everything (exit 1): a benchmark that failed is
 * not a number.
 *
 * Prints "NAME median_ms min_ms max_ms runs" per variant; with -o, appends
 * every timed run as "TAG<TAB>NAME<TAB>ROUND<TAB>SECONDS". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

#define MAX_VARIANTS 16
#define MAX_ENV 16

struct variant {
  const char* name;
  const char* prepare;
  const char* env[MAX_ENV];
  int n_env;
  char** argv;
  char** envp;
  double* samples;
  int n;
};

static int usage(void) {
  fprintf(stderr,
          "usage: tg_abtime [-r RUNS] [-w WARMUP] [-o SAMPLES.tsv] [-t TAG] VARIANT...\n"
          "  VARIANT: -n NAME [-p PREPARE] [-e VAR=VALUE]... -- PROGRAM ARG... ';'\n");
  return 2;
}

static char** make_env(struct variant* v) {
  int n = 0;
  while (environ[n]) ++n;
  char** e = calloc((size_t)(n + v->n_env + 1), sizeof *e);
  if (!e) return NULL;
  int k = 0;
  for (int i = 0; i < n; ++i) {
    int replaced = 0;
    for (int j = 0; j < v->n_env; ++j) {
      size_t len = (size_t)(strchr(v->env[j], '=') - v->env[j]) + 1;
      if (!strncmp(environ[i], v->env[j], len)) replaced = 1;
    }
    if (!replaced) e[k++] = environ[i];
  }
  for (int j = 0; j < v->n_env; ++j) e[k++] = (char*)v->env[j];
  e[k] = NULL;
  return e;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int run_once(struct variant* v, double* seconds) {
  if (v->prepare) {
    int s = system(v->prepare);
    if (s != 0) {
      fprintf(stderr, "tg_abtime: %s: prepare command failed (status %d): %s\n", v->name, s, v->prepare);
      return -1;
    }
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  double t0 = now();
  int e = posix_spawnp(&pid, v->argv[0], &fa, NULL, v->argv, v->envp);
  posix_spawn_file_actions_destroy(&fa);
  if (e != 0) {
    fprintf(stderr, "tg_abtime: %s: cannot run %s: %s\n", v->name, v->argv[0], strerror(e));
    return -1;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      perror("tg_abtime: waitpid");
      return -1;
    }
  }
  *seconds = now() - t0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "tg_abtime: %s: the command failed (status 0x%x):", v->name, status);
    for (char** a = v->argv; *a; ++a) fprintf(stderr, " %s", *a);
    fprintf(stderr, "\n");
    return -1;
  }
  return 0;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  int runs = 10, warmup = 1;
  const char* out = NULL;
  const char* tag = "-";
  struct variant vs[MAX_VARIANTS];
  int nv = 0;
  memset(vs, 0, sizeof vs);

  int i = 1;
  for (; i < argc && strcmp(argv[i], "-n") != 0; ++i) {
    if (i + 1 >= argc) return usage();
    if (!strcmp(argv[i], "-r")) runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "-w")) warmup = atoi(argv[++i]);
    else if (!strcmp(argv[i], "-o")) out = argv[++i];
    else if (!strcmp(argv[i], "-t")) tag = argv[++i];
    else return usage();
  }
  while (i < argc) {
    if (nv == MAX_VARIANTS || strcmp(argv[i], "-n") != 0 || i + 1 >= argc) return usage();
    struct variant* v = &vs[nv++];
    v->name = argv[++i];
    ++i;
    while (i < argc && strcmp(argv[i], "--") != 0) {
      if (i + 1 >= argc) return usage();
      if (!strcmp(argv[i], "-p")) v->prepare = argv[++i];
      else if (!strcmp(argv[i], "-e") && v->n_env < MAX_ENV && strchr(argv[i + 1], '=')) v->env[v->n_env++] = argv[++i];
      else return usage();
      ++i;
    }
    if (i >= argc) return usage();
    v->argv = &argv[++i];
    while (i < argc && strcmp(argv[i], ";") != 0) ++i;
    if (&argv[i] == v->argv) return usage();
    if (i < argc) argv[i++] = NULL;  /* ends this variant's argv */
    v->envp = make_env(v);
    v->samples = calloc((size_t)(runs > 0 ? runs : 1), sizeof(double));
    if (!v->envp || !v->samples) return 1;
  }
  if (nv == 0 || runs < 1 || warmup < 0) return usage();

  for (int round = 0; round < warmup + runs; ++round) {
    for (int k = 0; k < nv; ++k) {
      struct variant* v = &vs[(round + k) % nv];
      double s;
      if (run_once(v, &s) < 0) return 1;
      if (round >= warmup) v->samples[v->n++] = s;
    }
  }

  FILE* f = out ? fopen(out, "a") : NULL;
  if (out && !f) {
    perror(out);
    return 1;
  }
  for (int k = 0; k < nv; ++k) {
    struct variant* v = &vs[k];
    if (f)
      for (int j = 0; j < v->n; ++j) fprintf(f, "%s\t%s\t%d\t%.9f\n", tag, v->name, j, v->samples[j]);
    qsort(v->samples, (size_t)v->n, sizeof(double), cmp_double);
    double med = v->n % 2 ? v->samples[v->n / 2] : (v->samples[v->n / 2 - 1] + v->samples[v->n / 2]) / 2;
    printf("%-28s median %9.3f ms  min %9.3f ms  max %9.3f ms  runs %d\n", v->name, med * 1e3, v->samples[0] * 1e3,
           v->samples[v->n - 1] * 1e3, v->n);
  }
  if (f) fclose(f);
  return 0;
}
