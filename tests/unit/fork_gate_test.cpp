// The shim's walks of the loaded objects and fork() (shim/fork_gate.hpp):
// glibc 2.36's fork() leaves dl_load_write_lock taken in the child when
// another thread is in dl_iterate_phdr, and the child's next dlopen or
// dl_iterate_phdr then sleeps forever. Each case runs in a process of its own
// (it forks and is stopped); a child of it that sleeps in a futex wait in
// dl_iterate_phdr has no other thread to wake it: hung.
#include "fork_gate.hpp"

#include "child_limits.hpp"

#include <gtest/gtest.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <ctime>
#include <thread>

namespace {

using tg::fork_gate::walk;

long long thread_cpu_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000ll + ts.tv_nsec;
}

double now_s() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Is `pid` (a single-threaded child) asleep in a futex wait? (Its kernel
// function, /proc/PID/wchan: futex_do_wait here, futex_wait_queue on older
// kernels; "0" while it runs.)
bool asleep_in_futex(pid_t pid) {
  char path[64], buf[128] = "";
  std::snprintf(path, sizeof path, "/proc/%d/wchan", static_cast<int>(pid));
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n > 0) buf[n] = '\0';
  return std::strstr(buf, "futex") != nullptr;
}

int count_cb(struct dl_phdr_info*, size_t, void* data) {
  ++*static_cast<int*>(data);
  return 0;
}

// A forked child that walks the loaded objects (glibc's lock) and exits.
pid_t fork_a_walker() {
  const pid_t c = fork();
  if (c == 0) {
    int n = 0;
    dl_iterate_phdr(&count_cb, &n);
    // exit_group itself: ThreadSanitizer's _exit reports the threads of the
    // parent that were running at the fork as leaked here, and fails the
    // child's exit status (66) for them.
    syscall(SYS_exit_group, n > 0 ? 0 : 3);
  }
  return c;
}

// 0: the child exited 0; 1: it hung (asleep in a futex wait; or, as a last
// resort, never a measure of slowness, still there after 60 s); 2: it failed.
int outcome(pid_t c) {
  if (c < 0) return 2;
  int st = 0;
  const double give_up = now_s() + 60;
  while (waitpid(c, &st, WNOHANG) == 0) {
    if (asleep_in_futex(c) || now_s() > give_up) {
      kill(c, SIGKILL);
      waitpid(c, &st, 0);
      return 1;
    }
    usleep(200);
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 2;
}

// Runs fn() in a process of its own that stops itself (SIGSTOP) once; keeps
// it stopped 1.5 s (longer than the gate waited by the clock), lets it go on,
// and returns its exit status (-1: it never stopped).
template <typename F>
int stopped_in_the_middle(F fn) {
  const pid_t p = fork();
  if (p == 0) _exit(fn());
  int st = 0;
  if (waitpid(p, &st, WUNTRACED) != p) return -2;
  if (!WIFSTOPPED(st)) return -1;
  struct timespec stopped = {1, 500 * 1000 * 1000};
  nanosleep(&stopped, nullptr);
  kill(p, SIGCONT);
  while (waitpid(p, &st, 0) != p) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// The answer of stopped_in_the_middle(outcome(...)).
void expect_the_child_walked(int r, const char* hung) {
  ASSERT_GE(r, 0) << "the process did not stop";
  EXPECT_NE(r, 1) << hung;
  EXPECT_EQ(r, 0);
}

// The state the cases share (each in a process of its own).
std::atomic<bool> g_in_walk{false}, g_forking{false}, g_to_walk{false}, g_walked{false}, g_forked{false};
std::atomic<bool> g_hold_fork{false};

// Goes on a little after the process is let go, as a walk or a fork does:
// 100 ms of this thread's CPU time, or until `until` is set.
void run_on(const std::atomic<bool>& until) {
  const long long end = thread_cpu_ns() + 100ll * 1000 * 1000;
  while (!until && thread_cpu_ns() < end) {
  }
}

int walk_stopped_cb(struct dl_phdr_info*, size_t, void*) {
  g_in_walk = true;
  while (!g_forking) sched_yield();
  usleep(20 * 1000);  // the forking thread gets to its wait
  kill(getpid(), SIGSTOP);
  run_on(g_forked);
  return 1;
}

// The whole process is stopped (SIGSTOP, a debugger, a frozen cgroup) while
// one thread walks and another waits to fork: a stop that outlasts a wait by
// the clock (1 s) let fork() go ahead as soon as the process went on, the walk
// not finished: the child hung.
TEST(ForkGate, ForkWaitsForAWalkAcrossAProcessStop) {
  const int r = stopped_in_the_middle([] {
    tg::fork_gate::install();
    std::thread walker([] { walk(&walk_stopped_cb, nullptr); });
    while (!g_in_walk) sched_yield();
    g_forking = true;
    const pid_t c = fork_a_walker();
    g_forked = true;
    walker.join();
    return outcome(c);
  });
  expect_the_child_walked(r, "fork() went ahead during the walk: the child hung in dl_iterate_phdr");
}

// An atfork prepare handler registered before the gate's runs after it: the
// fork is past the gate when it stops the process.
void hold_fork_prepare() {
  if (!g_hold_fork) return;
  g_forking = true;
  while (!g_to_walk) sched_yield();
  usleep(20 * 1000);  // the walking thread gets to its wait
  kill(getpid(), SIGSTOP);
  run_on(g_walked);
}

int walk_during_fork_cb(struct dl_phdr_info*, size_t, void*) {
  g_walked = true;
  run_on(g_forked);
  return 1;
}

// The other way round: a walk that waited for a fork by the clock started,
// after the stop, in the middle of the fork.
// A thread walks once `prepare` (an atfork prepare handler run after the
// gate's) is in the middle of a fork, through walk_during_fork_cb; the
// fork's child walks: outcome().
int walk_during_a_fork(void (*prepare)()) {
  pthread_atfork(prepare, nullptr, nullptr);
  tg::fork_gate::install();
  std::thread walker([] {
    while (!g_forking) sched_yield();
    g_to_walk = true;
    walk(&walk_during_fork_cb, nullptr);
  });
  g_hold_fork = true;
  const pid_t c = fork_a_walker();
  g_hold_fork = false;
  g_forked = true;
  walker.join();
  return outcome(c);
}

TEST(ForkGate, WalkWaitsForAForkAcrossAProcessStop) {
  const int r = stopped_in_the_middle([] { return walk_during_a_fork(&hold_fork_prepare); });
  expect_the_child_walked(r, "a walk started during fork(): the child hung in dl_iterate_phdr");
}

// A fork that runs on in the middle, 1 s of CPU time in an atfork prepare
// handler run after the gate's: as a large process's fork() copies its page
// tables, or a prepare handler does its work. The walk waits for it: past
// 200 ms of the forking thread's CPU time it took the fork for stuck (as a
// walk jumped out of by a signal handler) and went ahead: the child hung.
void run_on_in_prepare() {
  if (!g_hold_fork) return;
  g_forking = true;
  const long long end = thread_cpu_ns() + 1000ll * 1000 * 1000;
  while (!g_walked && thread_cpu_ns() < end) {
  }
}

TEST(ForkGate, WalkWaitsForAForkThatRunsOn) {
  const int r = tg::unit::in_child([] { return walk_during_a_fork(&run_on_in_prepare); });
  EXPECT_NE(r, 1) << "a walk went ahead of a fork that ran on: the child hung in dl_iterate_phdr";
  EXPECT_EQ(r, 0);
}

// A prepare handler run after the gate's that spins until a walk of another
// thread is done (which waits for the fork): the walk goes on once the fork
// has run on for long (it is bounded), and so does the fork. The spin gives
// up after 30 s of CPU time, a last resort, never a measure of slowness.
std::atomic<bool> g_walk_done{false}, g_gave_up{false};
void spin_for_the_walk() {
  if (!g_hold_fork) return;
  g_forking = true;
  const long long end = thread_cpu_ns() + 30ll * 1000 * 1000 * 1000;
  while (!g_walk_done && thread_cpu_ns() < end) {
  }
  g_gave_up = !g_walk_done;
}

TEST(ForkGate, AForkThatSpinsForAWaitingWalkGoesOn) {
  const int r = tg::unit::in_child([] {
    pthread_atfork(&spin_for_the_walk, nullptr, nullptr);
    tg::fork_gate::install();
    std::thread walker([] {
      while (!g_forking) sched_yield();
      int n = 0;
      walk(&count_cb, &n);
      g_walk_done = true;
    });
    g_hold_fork = true;
    const pid_t c = fork_a_walker();
    g_hold_fork = false;
    walker.join();
    if (g_gave_up) return 6;
    return outcome(c);
  });
  EXPECT_NE(r, 6) << "the walk waited for the fork as long as the fork spun for it";
  EXPECT_EQ(r, 0);
}

// A walker that is stuck (asleep in the middle: a signal handler waiting for
// something) does not hold fork() up forever. (Its lock stays taken in the
// child, which here makes no dl call.)
int walk_asleep_cb(struct dl_phdr_info*, size_t, void* data) {
  g_in_walk = true;
  char c;
  (void)!read(*static_cast<int*>(data), &c, 1);
  return 1;
}

TEST(ForkGate, ForkGoesAheadOfAWalkerAsleep) {
  const int r = tg::unit::in_child([] {
    tg::fork_gate::install();
    int wake[2];
    if (pipe(wake) != 0) return 4;
    std::thread walker([&] { walk(&walk_asleep_cb, &wake[0]); });
    while (!g_in_walk) sched_yield();
    const pid_t c = fork();
    if (c == 0) _exit(0);
    (void)!write(wake[1], "x", 1);
    walker.join();
    int st = 0;
    waitpid(c, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 5;
  });
  EXPECT_EQ(r, 0);
}

// fork() from a signal handler that interrupted a walk of the same thread:
// never waits for itself. The walk goes on; afterwards fork() works as before.
void fork_in_handler(int) {
  const pid_t c = fork();
  if (c == 0) _exit(0);
  waitpid(c, nullptr, 0);
  g_forked = true;
}

int walk_interrupted_cb(struct dl_phdr_info*, size_t, void*) {
  raise(SIGUSR1);
  return 1;
}

TEST(ForkGate, ForkFromAHandlerInTheWalkDoesNotWaitForItself) {
  const int r = tg::unit::in_child([] {
    tg::fork_gate::install();
    signal(SIGUSR1, &fork_in_handler);
    walk(&walk_interrupted_cb, nullptr);
    if (!g_forked) return 4;
    return outcome(fork_a_walker());
  });
  EXPECT_EQ(r, 0);
}

// fork() from a signal handler that interrupted another fork() of the same
// thread, in an atfork prepare handler run after the gate's: once both are
// done, the gate is free (the inner fork left it taken for good: every walk
// of another thread then waited for this one to look stuck).
std::atomic<bool> g_raise{false};
void raise_in_prepare() {
  if (g_raise.exchange(false)) raise(SIGUSR1);
}

TEST(ForkGate, AForkInsideAnotherLetsTheGateGo) {
  const int r = tg::unit::in_child([] {
    pthread_atfork(&raise_in_prepare, nullptr, nullptr);
    tg::fork_gate::install();
    signal(SIGUSR1, &fork_in_handler);
    g_raise = true;
    const pid_t c = fork_a_walker();
    if (!g_forked) return 4;
    if (outcome(c) != 0) return 5;
    std::thread walker([] {
      int n = 0;
      walk(&count_cb, &n);
      g_walked = true;
    });
    run_on(g_walked);  // this thread, running: a walk waits for it while it holds the gate
    const bool walked_first = g_walked;
    walker.join();
    return walked_first ? 0 : 6;
  });
  EXPECT_NE(r, 6) << "the gate stayed taken after the forks";
  EXPECT_EQ(r, 0);
}

}  // namespace
