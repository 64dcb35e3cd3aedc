// landlock_run: run a command under a Landlock ruleset it builds from its
// arguments (the writer a test gives a sandbox to).
//   landlock_run [-H HANDLED] [-S SCOPED] [-r PATH=RIGHTS]... -- CMD ARGS...
// HANDLED and RIGHTS are lists of access names (write,truncate,read,exec,
// make_reg,remove_file,refer,readdir,ioctl_dev,...) joined by ','; a right
// handled but granted by no rule is denied everywhere. SCOPED: signal,unix.
// Exits 77 where the kernel has no Landlock (or too old an ABI for a right).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

// Debian 12's headers are Linux 6.1's (ABI 2): the later ones by value.
#define TRUNCATE_RIGHT (1ULL << 14)   // TRUNCATE_RIGHT, ABI 3
#define IOCTL_DEV_RIGHT (1ULL << 15)  // IOCTL_DEV_RIGHT, ABI 5
#define SCOPE_UNIX (1ULL << 0)        // LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET, ABI 6
#define SCOPE_SIGNAL (1ULL << 1)      // LANDLOCK_SCOPE_SIGNAL, ABI 6
struct ruleset_attr {
  unsigned long long handled_access_fs, handled_access_net, scoped;
};

static const struct {
  const char* name;
  unsigned long long bit;
  int abi;
} kRights[] = {
    {"exec", LANDLOCK_ACCESS_FS_EXECUTE, 1},         {"write", LANDLOCK_ACCESS_FS_WRITE_FILE, 1},
    {"read", LANDLOCK_ACCESS_FS_READ_FILE, 1},       {"readdir", LANDLOCK_ACCESS_FS_READ_DIR, 1},
    {"remove_dir", LANDLOCK_ACCESS_FS_REMOVE_DIR, 1}, {"remove_file", LANDLOCK_ACCESS_FS_REMOVE_FILE, 1},
    {"make_char", LANDLOCK_ACCESS_FS_MAKE_CHAR, 1},   {"make_dir", LANDLOCK_ACCESS_FS_MAKE_DIR, 1},
    {"make_reg", LANDLOCK_ACCESS_FS_MAKE_REG, 1},     {"make_sock", LANDLOCK_ACCESS_FS_MAKE_SOCK, 1},
    {"make_fifo", LANDLOCK_ACCESS_FS_MAKE_FIFO, 1},   {"make_block", LANDLOCK_ACCESS_FS_MAKE_BLOCK, 1},
    {"make_sym", LANDLOCK_ACCESS_FS_MAKE_SYM, 1},     {"refer", LANDLOCK_ACCESS_FS_REFER, 2},
    {"truncate", TRUNCATE_RIGHT, 3},     {"ioctl_dev", IOCTL_DEV_RIGHT, 5},
};

static int g_abi;

static unsigned long long parse(const char* list) {
  unsigned long long out = 0;
  char* copy = strdup(list);
  for (char* tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
    if (!strcmp(tok, "all")) {
      for (size_t i = 0; i < sizeof kRights / sizeof kRights[0]; i++)
        if (kRights[i].abi <= g_abi) out |= kRights[i].bit;
      continue;
    }
    size_t i = 0;
    for (; i < sizeof kRights / sizeof kRights[0]; i++)
      if (!strcmp(tok, kRights[i].name)) break;
    if (i == sizeof kRights / sizeof kRights[0]) {
      fprintf(stderr, "landlock_run: unknown right %s\n", tok);
      exit(2);
    }
    if (kRights[i].abi > g_abi) {
      fprintf(stderr, "landlock_run: right %s needs Landlock ABI %d, the kernel has %d\n", tok, kRights[i].abi, g_abi);
      exit(77);
    }
    out |= kRights[i].bit;
  }
  free(copy);
  return out;
}

int main(int argc, char** argv) {
  g_abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (g_abi < 1) {
    fprintf(stderr, "landlock_run: this kernel has no Landlock: %s\n", strerror(errno));
    return 77;
  }
  struct ruleset_attr attr;
  memset(&attr, 0, sizeof attr);
  int i = 1;
  // Handled rights first (a rule may only grant handled rights).
  for (int j = 1; j < argc && strcmp(argv[j], "--"); j++) {
    if (!strcmp(argv[j], "-H") && j + 1 < argc) attr.handled_access_fs = parse(argv[++j]);
    else if (!strcmp(argv[j], "-S") && j + 1 < argc) {
      if (g_abi < 6) {
        fprintf(stderr, "landlock_run: scopes need Landlock ABI 6, the kernel has %d\n", g_abi);
        return 77;
      }
      if (strstr(argv[j + 1], "signal")) attr.scoped |= SCOPE_SIGNAL;
      if (strstr(argv[j + 1], "unix")) attr.scoped |= SCOPE_UNIX;
      j++;
    }
  }
  size_t attr_size = g_abi >= 6 ? sizeof attr : offsetof(struct ruleset_attr, handled_access_net);
  int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
  if (rs < 0) {
    perror("landlock_run: landlock_create_ruleset");
    return 2;
  }
  for (; i < argc && strcmp(argv[i], "--"); i++) {
    if (!strcmp(argv[i], "-H") || !strcmp(argv[i], "-S")) {
      i++;
      continue;
    }
    if (strcmp(argv[i], "-r") || i + 1 >= argc) {
      fprintf(stderr, "usage: landlock_run [-H RIGHTS] [-S SCOPES] [-r PATH=RIGHTS]... -- CMD...\n");
      return 2;
    }
    char* spec = strdup(argv[++i]);
    char* eq = strrchr(spec, '=');
    if (!eq) return 2;
    *eq = 0;
    struct landlock_path_beneath_attr pb = {.allowed_access = parse(eq + 1), .parent_fd = open(spec, O_PATH | O_CLOEXEC)};
    if (pb.parent_fd < 0) {
      fprintf(stderr, "landlock_run: %s: %s\n", spec, strerror(errno));
      return 2;
    }
    if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0) {
      fprintf(stderr, "landlock_run: add_rule %s: %s\n", spec, strerror(errno));
      return 2;
    }
    close(pb.parent_fd);
    free(spec);
  }
  if (i >= argc - 1) return 2;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_landlock_restrict_self, rs, 0) < 0) {
    perror("landlock_run: restrict");
    return 2;
  }
  close(rs);
  execvp(argv[i + 1], argv + i + 1);
  fprintf(stderr, "landlock_run: %s: %s\n", argv[i + 1], strerror(errno));
  return 127;
}
