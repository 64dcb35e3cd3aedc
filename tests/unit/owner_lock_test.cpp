// The dl records' lock (shim/owner_lock.hpp): a waiter waits for a holder
// that is on its way, however slowly, and gives up on one that is stuck.
#include "owner_lock.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <vector>

namespace {

using tg::owner_lock::Word;

pid_t gettid_() { return static_cast<pid_t>(syscall(SYS_gettid)); }
pid_t holder(const Word& w) { return static_cast<pid_t>(w.load() & 0xffffffffull); }

double now_s() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Two CPUs this process may run on, or false.
bool two_cpus(int* a, int* b) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return false;
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  if (cpus.size() < 2) return false;
  *a = cpus[0];
  *b = cpus[1];
  return true;
}

bool pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

TEST(OwnerLock, TakenAndReleased) {
  Word w{0};
  ASSERT_TRUE(tg::owner_lock::take(w));
  EXPECT_EQ(holder(w), gettid_());
  tg::owner_lock::release(w);
  EXPECT_EQ(holder(w), 0);
  ASSERT_TRUE(tg::owner_lock::take(w));  // and again
  tg::owner_lock::release(w);
}

// A signal handler that interrupted its thread in the middle: never waits for itself.
TEST(OwnerLock, NotWaitedForByItsOwnThread) {
  Word w{0};
  ASSERT_TRUE(tg::owner_lock::take(w));
  EXPECT_FALSE(tg::owner_lock::take(w));
  EXPECT_EQ(holder(w), gettid_());
  tg::owner_lock::release(w);
}

// fork() copied the lock held by a thread the child does not have: taken over.
TEST(OwnerLock, TakenOverFromAThreadThatIsGone) {
  pid_t other = fork();  // a process: not a thread of this one
  if (other == 0) _exit(0);
  ASSERT_GT(other, 0);
  waitpid(other, nullptr, 0);
  Word w{(uint64_t{7} << 32) | static_cast<uint32_t>(other)};
  ASSERT_TRUE(tg::owner_lock::take(w));
  EXPECT_EQ(holder(w), gettid_());
  tg::owner_lock::release(w);
}

// The holder, preempted in the middle, gets no CPU for a while (here a
// real-time thread takes its CPU for 0.5 s): waited for, and taken once it
// lets go. (The records were skipped after 200 ms: under load CI saw a
// dlopen line without its count, reload dl_edges "8 threads".)
TEST(OwnerLock, WaitsForAHolderThatIsPreempted) {
  int cpu_a = -1, cpu_b = -1;
  if (!two_cpus(&cpu_a, &cpu_b)) GTEST_SKIP() << "needs two CPUs";
  cpu_set_t was;
  ASSERT_EQ(sched_getaffinity(0, sizeof was, &was), 0);
  ASSERT_TRUE(pin(cpu_b));  // this thread, the waiter: never on the spinner's CPU
  Word w{0};
  int wake[2];
  ASSERT_EQ(pipe(wake), 0);
  std::atomic<bool> ready{false}, spinning{false}, released{false}, fifo_refused{false};
  // The real-time thread, on the holder's CPU: asleep until the holder has the lock.
  std::thread spinner([&] {
    struct sched_param p = {};
    p.sched_priority = 1;
    if (!pin(cpu_a) || pthread_setschedparam(pthread_self(), SCHED_FIFO, &p) != 0) {
      fifo_refused = true;
      spinning = true;
      return;
    }
    ready = true;  // (seen on its CPU only once this thread sleeps in read())
    char c;
    if (read(wake[0], &c, 1) != 1) return;
    spinning = true;
    const double end = now_s() + 0.5;
    while (now_s() < end) {
    }
  });
  std::thread holder_thread([&] {
    if (!pin(cpu_a)) return;
    while (!ready && !fifo_refused) sched_yield();
    ASSERT_TRUE(tg::owner_lock::take(w));
    // The spinner wakes on this CPU and preempts this thread on its way
    // back from write(): it lets go only once the spinner is done.
    if (write(wake[1], "x", 1) != 1) return;
    released = true;
    tg::owner_lock::release(w);
  });
  while (!spinning) sched_yield();
  bool taken = false, released_first = false;
  if (!fifo_refused) {
    taken = tg::owner_lock::take(w);
    released_first = released.load();
    if (taken) tg::owner_lock::release(w);
  }
  spinner.join();
  holder_thread.join();
  close(wake[0]);
  close(wake[1]);
  pthread_setaffinity_np(pthread_self(), sizeof was, &was);
  if (fifo_refused) GTEST_SKIP() << "SCHED_FIFO (or pinning a thread to a CPU) is refused here";
  EXPECT_TRUE(taken) << "gave up on a holder that was only waiting for its CPU";
  EXPECT_TRUE(released_first);
}

// The holder waits in the kernel ('D' in /proc: a page fault waiting for the
// mm's lock while other threads map and unmap libraries; here the parent of a
// CLONE_VFORK child, until the child exits), for longer than the waiter's
// first looks: it is on its way, waited for, and the lock taken once it lets
// go. (It was given up on at two looks 50 ms apart, as a holder asleep.) And
// one that waits there for good is given up on: in a few seconds, not never.
long vfork_child_sleeps_us;  // how long the CLONE_VFORK child sleeps (µs)
int vfork_child(void*) {
  const struct timespec ts = {vfork_child_sleeps_us / 1000000, (vfork_child_sleeps_us % 1000000) * 1000};
  syscall(SYS_nanosleep, &ts, nullptr);
  syscall(SYS_exit_group, 0);
  return 0;
}

// Holds `w`, and waits in the kernel ('D') for `us` µs meanwhile; `tid` once it holds it.
void hold_waiting_in_kernel(Word* w, long us, std::atomic<pid_t>* tid, std::atomic<bool>* released) {
  ASSERT_TRUE(tg::owner_lock::take(*w));
  vfork_child_sleeps_us = us;
  constexpr size_t kStack = 64 * 1024;
  char* stack = static_cast<char*>(std::malloc(kStack));
  ASSERT_NE(stack, nullptr);
  *tid = gettid_();
  // The parent waits in the kernel (uninterruptible, killable) until the child ends.
  const pid_t child = clone(&vfork_child, stack + kStack, CLONE_VFORK | SIGCHLD, nullptr);
  if (child > 0) waitpid(child, nullptr, 0);
  std::free(stack);
  *released = true;
  tg::owner_lock::release(*w);
  ASSERT_GT(child, 0);
}

TEST(OwnerLock, WaitsForAHolderWaitingInTheKernel) {
  Word w{0};
  std::atomic<pid_t> tid{0};
  std::atomic<bool> released{false};
  std::thread holder_thread([&] { hold_waiting_in_kernel(&w, 500 * 1000, &tid, &released); });
  while (!tid) sched_yield();
  const bool taken = tg::owner_lock::take(w);
  const bool released_first = released.load();
  if (taken) tg::owner_lock::release(w);
  holder_thread.join();
  EXPECT_TRUE(taken) << "gave up on a holder that was waiting in the kernel (D)";
  EXPECT_TRUE(released_first);
}

TEST(OwnerLock, GivesUpOnAHolderWaitingInTheKernelForGood) {
  Word w{0};
  std::atomic<pid_t> tid{0};
  std::atomic<bool> released{false};
  std::thread holder_thread([&] { hold_waiting_in_kernel(&w, 4 * 1000 * 1000, &tid, &released); });
  while (!tid) sched_yield();
  EXPECT_FALSE(tg::owner_lock::take(w));
  EXPECT_FALSE(released.load());
  EXPECT_EQ(holder(w), tid.load());
  holder_thread.join();
}

// A holder asleep in the middle (a signal handler waiting for something
// this thread would do next): given up on, the lock still its.
TEST(OwnerLock, GivesUpOnAHolderAsleep) {
  Word w{0};
  int wake[2];
  ASSERT_EQ(pipe(wake), 0);
  std::atomic<pid_t> tid{0};
  std::thread holder_thread([&] {
    ASSERT_TRUE(tg::owner_lock::take(w));
    tid = gettid_();
    char c;
    (void)!read(wake[0], &c, 1);
    tg::owner_lock::release(w);
  });
  while (!tid) sched_yield();
  EXPECT_FALSE(tg::owner_lock::take(w));
  EXPECT_EQ(holder(w), tid.load());
  (void)!write(wake[1], "x", 1);
  holder_thread.join();
  close(wake[0]);
  close(wake[1]);
}

// A holder that runs on and never lets go (a signal handler jumped out of
// the middle): given up on.
TEST(OwnerLock, GivesUpOnAHolderRunningOn) {
  Word w{0};
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  std::thread holder_thread([&] {
    ASSERT_TRUE(tg::owner_lock::take(w));
    tid = gettid_();
    while (!done) {
    }
    tg::owner_lock::release(w);
  });
  while (!tid) sched_yield();
  EXPECT_FALSE(tg::owner_lock::take(w));
  EXPECT_EQ(holder(w), tid.load());
  done = true;
  holder_thread.join();
}

}  // namespace
