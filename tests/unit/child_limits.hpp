// Running a piece of the core in a child process under a limit a production
// host can impose on a writer: few free fds, a file size limit, a seccomp
// filter that fails one system call. The child's answer is its exit status.
#pragma once

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

namespace tg::unit {

// Runs fn() in a forked child: its return value is the exit status; a child
// killed by a signal gives 128 + the signal.
template <typename F>
int in_child(F fn) {
  const pid_t child = fork();
  if (child == 0) _exit(fn());
  if (child < 0) return -1;
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// In a child: leaves exactly `n` file descriptors free (RLIMIT_NOFILE), as a
// program that has used all but n of its descriptors.
inline bool leave_free_fds(int n) {
  struct rlimit rl = {64, 64};
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  int fds[64], count = 0;
  for (int fd; count < 64 && (fd = open("/dev/null", O_RDONLY)) >= 0;) fds[count++] = fd;
  if (count < n) return false;
  for (int i = 0; i < n; ++i) close(fds[--count]);
  return true;
}

// In a child: system call `nr` fails with `err` (with `arg1` >= 0: only when
// its second argument's low 32 bits equal arg1, e.g. an ioctl request or a
// fcntl command). As a seccomp filter of a hardened service would. `err` 0:
// it raises SIGSYS instead (SECCOMP_RET_TRAP), whose handler stands in for it.
inline bool deny_syscall(long nr, long long arg1, int err) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(arg1), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, err == 0 ? SECCOMP_RET_TRAP : SECCOMP_RET_ERRNO | (static_cast<uint32_t>(err) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  if (arg1 < 0) f[5] = BPF_STMT(BPF_JMP | BPF_JA, 1);  // any second argument: straight to the ERRNO
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof f / sizeof f[0]), f};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

}  // namespace tg::unit
