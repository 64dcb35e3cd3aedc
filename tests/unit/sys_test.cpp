// sys.hpp: the shim's own system calls, and libc's convention for results.
#include <gtest/gtest.h>

#include <cerrno>
#include <sys/mman.h>

#include <csignal>

#include "signals.hpp"
#include "sys.hpp"
#include "temp_dir.hpp"

namespace {

// glibc's syscall(): -4095..-1 are errors, every other value a result (an
// address at the top of memory, a negative F_GETOWN's process group below -4095).
// docs/guarantees.md, "Signals": the thread's asynchronous signals wait while
// the shim works, once the program has a handler of its own (a handler of a
// fault's signal alone does not count); not held: the signals of a fault
// (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGABRT) and glibc's
// SIGCANCEL (32) and SIGSETXID (33). Release gives the program's mask back.
void handler(int) {}
TEST(Sys, SignalsHeldAreTheAsynchronousOnes) {
  ASSERT_FALSE(tg::g_program_handles_signals.load()) << "another test noted a handler";
  tg::note_handler(SIGSEGV, handler);
  tg::note_handler(SIGINT, SIG_IGN);
  {
    tg::SignalsHeld none;
    EXPECT_FALSE(none.hold()) << "held with no handler of an asynchronous signal";
  }
  tg::note_handler(SIGINT, handler);
  // The kernel's mask, as the shim sets it (glibc's sigprocmask hides 32 and 33).
  auto mask = [] {
    uint64_t m = 0;
    EXPECT_EQ(tg::sys::call(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &m, sizeof m), 0);
    return m;
  };
  const uint64_t before = mask();
  {
    tg::SignalsHeld held;
    ASSERT_TRUE(held.hold());
    const uint64_t during = mask();
    for (int sig : {SIGINT, SIGTERM, SIGALRM, SIGUSR1, SIGHUP, SIGCHLD, SIGPIPE, SIGURG, 34, 64})
      EXPECT_TRUE(during & tg::signal_bit(sig)) << "not held: " << sig;
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGABRT, 32, 33})
      EXPECT_FALSE(during & tg::signal_bit(sig)) << "held: " << sig;
  }
  EXPECT_EQ(mask(), before) << "the program's mask not given back";
  tg::g_program_handles_signals.store(false);
}

TEST(Sys, WithErrnoFollowsGlibcSyscall) {
  for (long e : {-1L, static_cast<long>(-EBADF), -4095L}) {
    errno = 0;
    EXPECT_EQ(tg::sys::with_errno(e), -1) << e;
    EXPECT_EQ(errno, -e);
  }
  for (long r : {0L, 1L, -4096L, -5000L, static_cast<long>(0xffff800000001000UL), 0x7fffffffffffL}) {
    errno = 1234;
    EXPECT_EQ(tg::sys::with_errno(r), r);
    EXPECT_EQ(errno, 1234) << "a result set errno: " << r;
  }
}

TEST(Sys, RawLeavesErrnoAloneAndPassesSixArguments) {
  errno = 1234;
  EXPECT_EQ(tg::sys::call(SYS_close, -1), -EBADF);
  EXPECT_EQ(errno, 1234);
  EXPECT_EQ(tg::sys::call_errno(SYS_close, -1), -1);
  EXPECT_EQ(errno, EBADF);

  // The sixth argument reaches the kernel: copy_file_range's flags (nonzero: EINVAL).
  tg::unit::TempDir dir("sys");
  const std::string a = dir.path() + "/a", b = dir.path() + "/b";
  tg::sys::Fd in(tg::sys::openat(AT_FDCWD, a.c_str(), O_RDWR | O_CREAT, 0600));
  tg::sys::Fd out(tg::sys::openat(AT_FDCWD, b.c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_TRUE(in.ok() && out.ok());
  ASSERT_EQ(tg::sys::write(in.get(), "0123456789", 10), 10);
  loff_t from = 0, to = 0;
  EXPECT_EQ(tg::sys::call(SYS_copy_file_range, in.get(), &from, out.get(), &to, 10, 1U), -EINVAL);
  EXPECT_EQ(tg::sys::call(SYS_copy_file_range, in.get(), &from, out.get(), &to, 10, 0U), 10);

  // An address is a result, whatever its top bits.
  errno = 1234;
  const long m = tg::sys::call_errno(SYS_mmap, 0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, -1);
  EXPECT_EQ(errno, 1234);
  munmap(reinterpret_cast<void*>(m), 4096);
}

// readable(): what the kernel would copy from (exec's arguments), asked of it.
TEST(Sys, ReadableAsTheKernelSeesIt) {
  const long page = sysconf(_SC_PAGESIZE);
  char* mem = static_cast<char*>(mmap(nullptr, static_cast<size_t>(page) * 2, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(mem, MAP_FAILED);
  ASSERT_EQ(mprotect(mem + page, static_cast<size_t>(page), PROT_NONE), 0);
  const int saved = errno = 1234;
  EXPECT_EQ(tg::sys::readable(mem + page - 1), 1);
  EXPECT_EQ(tg::sys::readable(mem + page), 0);  // mapped, not readable
  EXPECT_EQ(tg::sys::readable(reinterpret_cast<void*>(8)), 0);  // nothing mapped there
  EXPECT_EQ(tg::sys::readable(nullptr), 0);
  EXPECT_EQ(errno, saved);
  munmap(mem, static_cast<size_t>(page) * 2);
}

// Memory the program reads, and an exec too, that process_vm_readv can't
// (get_user_pages refuses it): memfd_secret's. It was taken for unreadable,
// and an exec with an environment there published nothing.
TEST(Sys, SecretMemoryIsReadable) {
  const int fd = static_cast<int>(syscall(447 /* SYS_memfd_secret */, 0));
  if (fd < 0) GTEST_SKIP() << "no memfd_secret here (secretmem.enable=0, or a kernel without it)";
  const long page = sysconf(_SC_PAGESIZE);
  ASSERT_EQ(ftruncate(fd, page), 0);
  char* mem = static_cast<char*>(mmap(nullptr, static_cast<size_t>(page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  close(fd);
  ASSERT_NE(mem, MAP_FAILED);
  mem[0] = 'A';
  EXPECT_EQ(tg::sys::readable(mem), 1);
  EXPECT_EQ(tg::sys::readable(mem + page - 1), 1);
  munmap(mem, static_cast<size_t>(page));
}

// sys::fstat is glibc's fstat (newfstatat with an empty path): the fd's file,
// and a negative number EBADF, never the working directory that AT_FDCWD
// (-100) with an empty path names.
TEST(Sys, FstatIsTheFdsFileAndEbadfForANegativeOne) {
  tg::unit::TempDir dir("sys");
  const std::string a = dir.path() + "/a";
  tg::sys::Fd fd(tg::sys::openat(AT_FDCWD, a.c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_TRUE(fd.ok());
  struct stat mine {}, libc {};
  ASSERT_EQ(tg::sys::fstat(fd.get(), &mine), 0);
  ASSERT_EQ(::stat(a.c_str(), &libc), 0);
  EXPECT_EQ(mine.st_dev, libc.st_dev);
  EXPECT_EQ(mine.st_ino, libc.st_ino);
  EXPECT_TRUE(tg::sys::refers_to(fd.get(), libc.st_dev, libc.st_ino));
  errno = 1234;
  for (int bad : {-1, static_cast<int>(AT_FDCWD)}) {
    EXPECT_EQ(tg::sys::fstat(bad, &mine), -EBADF) << bad;
    EXPECT_FALSE(tg::sys::refers_to(bad, libc.st_dev, libc.st_ino)) << bad;
  }
  const int closed = fd.get();
  fd.reset();
  EXPECT_EQ(tg::sys::fstat(closed, &mine), -EBADF);
  EXPECT_EQ(errno, 1234);
}

}  // namespace
