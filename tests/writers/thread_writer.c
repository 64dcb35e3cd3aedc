/* thread_writer THREADS ROUNDS SRC FILE...: THREADS threads, each ROUNDS times
 * overwriting every FILE with SRC's bytes through open(O_WRONLY|O_TRUNC),
 * all at once. Exit 0 if every write succeeded; 1 with a message otherwise. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char* g_data;
static size_t g_len;
static int g_rounds;
static char** g_files;
static int g_nfiles;
static pthread_barrier_t g_start;

static void* worker(void* arg) {
  long id = (long)arg;
  pthread_barrier_wait(&g_start);
  for (int r = 0; r < g_rounds; ++r) {
    for (int i = 0; i < g_nfiles; ++i) {
      const char* f = g_files[(i + id) % g_nfiles];
      int fd = open(f, O_WRONLY | O_TRUNC | O_CLOEXEC);
      if (fd < 0) {
        fprintf(stderr, "thread_writer: thread %ld: open %s: %s\n", id, f, strerror(errno));
        return (void*)1;
      }
      if (write(fd, g_data, g_len) != (ssize_t)g_len) {
        fprintf(stderr, "thread_writer: thread %ld: write %s: %s\n", id, f, strerror(errno));
        close(fd);
        return (void*)1;
      }
      close(fd);
    }
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: thread_writer THREADS ROUNDS SRC FILE...\n");
    return 2;
  }
  int threads = atoi(argv[1]);
  g_rounds = atoi(argv[2]);
  FILE* in = fopen(argv[3], "rb");
  if (!in) return perror("thread_writer: src"), 1;
  fseek(in, 0, SEEK_END);
  g_len = (size_t)ftell(in);
  rewind(in);
  g_data = malloc(g_len);
  if (fread(g_data, 1, g_len, in) != g_len) return 1;
  fclose(in);
  g_files = argv + 4;
  g_nfiles = argc - 4;
  pthread_t t[64];
  if (threads < 1 || threads > 64) return 2;
  pthread_barrier_init(&g_start, NULL, (unsigned)threads);
  for (long i = 0; i < threads; ++i) pthread_create(&t[i], NULL, worker, (void*)i);
  int failed = 0;
  for (int i = 0; i < threads; ++i) {
    void* r;
    pthread_join(t[i], &r);
    failed |= r != NULL;
  }
  return failed;
}
