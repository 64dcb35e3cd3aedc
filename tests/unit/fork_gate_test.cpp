// The shim's walks of the loaded objects and fork() (shim/fork_gate.hpp):
// glibc 2.36's fork() leaves dl_load_write_lock taken in the child when
// another thread is in dl_iterate_phdr, and the child's next dlopen or
// dl_iterate_phdr then sleeps forever. Each case runs in a process of its own
// (it forks and is stopped); a child of it that sleeps in a futex wait in
// dl_iterate_phdr has no other thread to wake it: hung.
#include "dl_watch.hpp"
#include "fork_gate.hpp"
#include "guard.hpp"
#include "log.hpp"

#include "child_limits.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <gtest/gtest.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <set>
#include <string>
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

// A fork from a signal handler that interrupted a fork waiting (in its
// prepare handler) for another thread's walk: glibc 2.36 runs atfork handlers
// without a lock of its own, so a process of threads gets there too. The
// inner fork counted as the outer one's and went ahead without the gate, the
// walk unfinished: its child hung in dl_iterate_phdr. It waits for the walk.
std::atomic<pid_t> g_inner_child{0};
std::atomic<pthread_t> g_main_thread{};

void mark_forking() { g_forking = true; }

void fork_a_walker_in_handler(int) {
  const int saved = errno;
  g_inner_child = fork_a_walker();
  g_forked = true;
  errno = saved;
}

int walk_until_the_inner_fork_cb(struct dl_phdr_info*, size_t, void*) {
  g_in_walk = true;
  while (!g_forking) sched_yield();
  usleep(20 * 1000);  // the forking thread gets to its wait for this walk
  pthread_kill(g_main_thread, SIGUSR1);
  run_on(g_forked);  // running, not stuck, 100 ms of CPU time at most
  return 1;
}

TEST(ForkGate, AForkFromAHandlerInAForkWaitingForAWalkWaitsToo) {
  const int r = tg::unit::in_child([] {
    tg::fork_gate::install();
    pthread_atfork(&mark_forking, nullptr, nullptr);  // run before the gate's prepare handler
    signal(SIGUSR1, &fork_a_walker_in_handler);
    g_main_thread = pthread_self();
    std::thread walker([] { walk(&walk_until_the_inner_fork_cb, nullptr); });
    while (!g_in_walk) sched_yield();
    const pid_t outer = fork_a_walker();
    walker.join();
    if (!g_forked) return 4;
    const int inner = outcome(g_inner_child);
    return inner != 0 ? 10 + inner : outcome(outer);
  });
  EXPECT_NE(r, 11) << "the inner fork went ahead of the walk: its child hung in dl_iterate_phdr";
  EXPECT_EQ(r, 0);
}

// A fork from a signal handler that lands between any two instructions of
// the gate's atfork handlers (glibc runs them without a lock of its own since
// 2.36, in a process of threads too). A tracer (ptrace) stops a process of
// its own at the handler's first instruction, single-steps it k instructions
// (into what it calls too) and sends it a signal there whose handler forks;
// a fresh process for each k, until the handler has returned. At every fork
// (outer and inner: PTRACE_EVENT_FORK, the process copied) the gate must be
// the forking thread's, and at every exit it must be free. (The inner fork
// that came in after the outer one's parent handler had counted it done, and
// before it read whether it had taken the gate, left the gate taken for good:
// every walk of another thread then waited for this one to look stuck.)

// The address of symbol `name` of this program, from its ELF symbol table
// (found where the program is loaded through `known`, the address of
// `known_name`): 0 where it is not there, -1 where there is no symbol table.
intptr_t symbol_address(const char* name, const char* known_name, uintptr_t known) {
  const int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return -1;
  void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return -1;
  const auto* base = static_cast<const unsigned char*>(map);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
  intptr_t found = -1;
  uintptr_t value = 0, known_value = 0;
  for (int i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_type != SHT_SYMTAB) continue;
    found = 0;
    const auto* syms = reinterpret_cast<const Elf64_Sym*>(base + sh[i].sh_offset);
    const char* strs = reinterpret_cast<const char*>(base + sh[sh[i].sh_link].sh_offset);
    for (size_t s = 0; s < sh[i].sh_size / sizeof(Elf64_Sym); ++s) {
      if (std::strcmp(strs + syms[s].st_name, name) == 0) value = syms[s].st_value;
      if (std::strcmp(strs + syms[s].st_name, known_name) == 0) known_value = syms[s].st_value;
    }
  }
  munmap(map, static_cast<size_t>(st.st_size));
  if (found < 0) return -1;
  return value && known_value ? static_cast<intptr_t>(value + (known - known_value)) : 0;
}

constexpr int kCannotTrace = 90;
std::atomic<int> g_inner_forks{0};

// The signal handler: forks, the child ends at once (exit_group itself:
// ThreadSanitizer's and LeakSanitizer's exit work is none of this).
void fork_and_end_the_child(int) {
  const int saved = errno;
  const pid_t c = fork();
  if (c == 0) syscall(SYS_exit_group, 0);
  if (c > 0) {
    while (waitpid(c, nullptr, 0) < 0 && errno == EINTR) {
    }
    ++g_inner_forks;
  }
  errno = saved;
}

// The traced process: stops for its tracer, forks once; the child ends with
// 40 + the forks of its handler, the parent with 10 * those + its own.
[[noreturn]] void traced_forker() {
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);  // no signal-delivery stops for the children's ends
  struct sigaction sa = {};
  sa.sa_handler = &fork_and_end_the_child;
  if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0 || sigprocmask(SIG_BLOCK, &chld, nullptr) != 0 ||
      sigaction(SIGUSR1, &sa, nullptr) != 0)
    syscall(SYS_exit_group, kCannotTrace);
  tg::fork_gate::install();
  raise(SIGSTOP);
  const pid_t c = fork();
  if (c == 0) syscall(SYS_exit_group, 40 + g_inner_forks.load());
  int st = 0;
  if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) < 40) syscall(SYS_exit_group, 99);
  syscall(SYS_exit_group, (WEXITSTATUS(st) - 40) * 10 + g_inner_forks.load());
  __builtin_unreachable();
}

// What one traced run saw.
struct Run {
  bool past_end = false;  // the handler returned in fewer than k instructions: no signal sent
  int status = -1;        // the traced process's exit status
  int forks = 0;          // forks seen (the process copied)
  int forks_without_gate = 0;
  int ends_with_gate = 0;  // processes that ended with the gate taken
  uintptr_t pc = 0;        // where the signal came
  const char* error = nullptr;
};

long peek(pid_t p, uintptr_t a) { return ptrace(PTRACE_PEEKDATA, p, reinterpret_cast<void*>(a), nullptr); }
bool poke(pid_t p, uintptr_t a, long v) {
  return ptrace(PTRACE_POKEDATA, p, reinterpret_cast<void*>(a), reinterpret_cast<void*>(v)) == 0;
}
bool cont(pid_t p, int sig) {
  return ptrace(PTRACE_CONT, p, nullptr, reinterpret_cast<void*>(static_cast<long>(sig))) == 0;
}
bool holds(pid_t p, uintptr_t gate) { return (static_cast<uint64_t>(peek(p, gate)) & 0xffffffffu) == static_cast<uint64_t>(p); }
bool held(pid_t p, uintptr_t gate) { return (static_cast<uint64_t>(peek(p, gate)) & 0xffffffffu) != 0; }

// Stops `p` (at a breakpoint at `fn`) k instructions further on and sends it
// SIGUSR1 there; false where that went wrong.
bool step_and_signal(pid_t p, uintptr_t fn, long original, int k, Run* run) {
  struct user_regs_struct regs;
  if (ptrace(PTRACE_GETREGS, p, nullptr, &regs) != 0 || regs.rip != fn + 1) return false;
  regs.rip = fn;
  if (!poke(p, fn, original) || ptrace(PTRACE_SETREGS, p, nullptr, &regs) != 0) return false;
  const uintptr_t sp = regs.rsp;
  const auto back = static_cast<uintptr_t>(peek(p, sp));
  for (int i = 0; i < k; ++i) {
    int st = 0;
    if (ptrace(PTRACE_SINGLESTEP, p, nullptr, nullptr) != 0 || waitpid(p, &st, __WALL) != p || !WIFSTOPPED(st) ||
        WSTOPSIG(st) != SIGTRAP || ptrace(PTRACE_GETREGS, p, nullptr, &regs) != 0)
      return false;
    if (regs.rip == back && regs.rsp == sp + 8) {
      run->past_end = true;
      return cont(p, 0);
    }
  }
  run->pc = regs.rip;
  return cont(p, SIGUSR1);
}

enum class Handler { kPrepare, kParent, kChild };

// One traced run: a breakpoint at `fn` (in the parent for kPrepare and
// kParent, in the fork's child for kChild), a signal k instructions on.
Run traced_run(Handler h, uintptr_t fn, uintptr_t gate, int k) {
  Run run;
  const pid_t t = fork();
  if (t == 0) traced_forker();
  if (t < 0) {
    run.error = "fork";
    return run;
  }
  pid_t stepper = h == Handler::kChild ? 0 : t, child = 0;
  long original = 0;
  std::set<pid_t> stopped_new, to_let_go, to_run;
  bool started = false;
  // A process the tracer was given by a fork, at its first stop.
  auto first_stop = [&](pid_t n) {
    if (to_run.erase(n)) return cont(n, 0);
    to_let_go.erase(n);
    return ptrace(PTRACE_DETACH, n, nullptr, nullptr) == 0;
  };
  for (;;) {
    int st = 0;
    const pid_t p = waitpid(-1, &st, __WALL);
    if (p < 0) {
      if (errno == EINTR) continue;
      run.error = "waitpid";
      break;
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      if (p == t) {
        run.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        break;
      }
      continue;
    }
    if (!WIFSTOPPED(st)) continue;
    const int sig = WSTOPSIG(st);
    const int event = st >> 16;
    bool ok = true;
    if (event == 0 && (to_run.count(p) || to_let_go.count(p))) {
      ok = first_stop(p);
    } else if (p != t && p != child && event == 0) {  // a new process's first stop, before its parent's fork event
      stopped_new.insert(p);
      continue;
    } else if (event == PTRACE_EVENT_FORK) {
      unsigned long n = 0;
      ptrace(PTRACE_GETEVENTMSG, p, nullptr, &n);
      ++run.forks;
      if (!holds(p, gate)) ++run.forks_without_gate;
      const auto np = static_cast<pid_t>(n);
      if (h == Handler::kChild && p == t && child == 0) {
        child = stepper = np;
        to_run.insert(np);
        ok = poke(t, fn, original);  // the child has the breakpoint, the parent no more
      } else {
        to_let_go.insert(np);
      }
      if (ok && stopped_new.erase(np)) ok = first_stop(np);
      ok = ok && cont(p, 0);
    } else if (event == PTRACE_EVENT_EXIT) {
      if (held(p, gate)) ++run.ends_with_gate;
      ok = cont(p, 0);
    } else if (p == t && !started && sig == SIGSTOP) {
      started = true;
      errno = 0;
      original = peek(t, fn);
      ok = errno == 0 &&
           ptrace(PTRACE_SETOPTIONS, t, nullptr,
                  reinterpret_cast<void*>(static_cast<long>(PTRACE_O_TRACEFORK | PTRACE_O_TRACEEXIT |
                                                            PTRACE_O_EXITKILL))) == 0 &&
           poke(t, fn, (original & ~0xffl) | 0xcc) && cont(t, 0);
    } else if (p == stepper && sig == SIGTRAP && event == 0) {
      ok = step_and_signal(p, fn, original, k, &run);
      stepper = 0;
    } else {
      ok = cont(p, sig);  // a signal for the process: passed on
    }
    if (!ok) {
      run.error = "ptrace";
      kill(t, SIGKILL);
      if (child) kill(child, SIGKILL);
    }
  }
  return run;
}

// Every instruction boundary of `fn` (one of the gate's atfork handlers, and
// what it calls): the gate is the forking thread's at every fork, and free
// at every exit.
void every_boundary_of(Handler h, void (*fn)(), const char* name) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "under ThreadSanitizer a signal handler runs at its next interceptor, not at the instruction "
                  "where the signal came, and single-stepping its instrumentation takes minutes";
#endif
  const intptr_t gate = symbol_address("_ZN2tg9fork_gate12_GLOBAL__N_16g_gateE", "_ZN2tg9fork_gate11before_forkEv",
                                       reinterpret_cast<uintptr_t>(&tg::fork_gate::before_fork));
  if (gate < 0) GTEST_SKIP() << "no symbol table in /proc/self/exe (stripped): the gate can't be found";
  ASSERT_NE(gate, 0) << "no symbol for the gate (tg::fork_gate::{anon}::g_gate) or before_fork: renamed?";
  const auto at = reinterpret_cast<uintptr_t>(fn);
  // The exit status: 10 * the child's inner forks + the parent's (the
  // child of a fork copied after the inner one has it counted).
  const int expected = h == Handler::kPrepare ? 11 : h == Handler::kParent ? 1 : 10;
  int k = 0, failed = 0;
  for (;; ++k) {
    ASSERT_LT(k, 20000) << name << " never returned";
    const Run r = traced_run(h, at, static_cast<uintptr_t>(gate), k);
    if (r.status == kCannotTrace && k == 0) GTEST_SKIP() << "ptrace(PTRACE_TRACEME) is not permitted here";
    ASSERT_EQ(r.error, nullptr) << r.error << " failed at k=" << k;
    if (r.past_end) break;
    if (r.status == expected && r.forks == 2 && r.forks_without_gate == 0 && r.ends_with_gate == 0) continue;
    if (++failed > 4) continue;  // the first few said in full
    char where[160];
    std::snprintf(where, sizeof where, "%s: signal after %d instructions, at %#lx (%s%+ld)", name, k,
                  static_cast<unsigned long>(r.pc), name, static_cast<long>(r.pc - at));
    EXPECT_EQ(r.status, expected) << where << ": the processes' ends";
    EXPECT_EQ(r.forks, 2) << where;
    EXPECT_EQ(r.forks_without_gate, 0) << where << ": a fork copied the process with the gate not its own";
    EXPECT_EQ(r.ends_with_gate, 0) << where << ": a process ended with the gate taken (left taken for good)";
  }
  EXPECT_EQ(failed, 0) << "of " << k << " instruction boundaries of " << name << " (and what it calls)";
  EXPECT_GT(k, 0);
}

TEST(ForkGate, AForkFromAHandlerAtEveryInstructionOfThePrepareHandler) {
  every_boundary_of(Handler::kPrepare, &tg::fork_gate::before_fork, "before_fork");
}

TEST(ForkGate, AForkFromAHandlerAtEveryInstructionOfTheParentHandler) {
  every_boundary_of(Handler::kParent, &tg::fork_gate::after_fork_parent, "after_fork_parent");
}

TEST(ForkGate, AForkFromAHandlerAtEveryInstructionOfTheChildHandler) {
  every_boundary_of(Handler::kChild, &tg::fork_gate::after_fork_child, "after_fork_child");
}

// The backtrace category's walks: libunwind (dlopened by the shim) calls
// dl_iterate_phdr itself, from unw_step and unw_get_proc_name, not through
// walk(): a fork in another thread went ahead in the middle, and the child's
// next dl_iterate_phdr (or dlopen) hung. Here the program's dl_iterate_phdr
// (this executable exports it: libunwind's reference binds to it) holds the
// backtrace's first walk open until the main thread forks.
std::atomic<pid_t> g_unwind_walker{0};
std::atomic<bool> g_unwind_in_walk{false}, g_unwind_forking{false}, g_unwind_forked{false};

struct HeldWalk {
  int (*callback)(struct dl_phdr_info*, size_t, void*);
  void* data;
  bool first;
};

int held_walk_cb(struct dl_phdr_info* info, size_t size, void* data) {
  auto* h = static_cast<HeldWalk*>(data);
  if (h->first) {
    h->first = false;
    g_unwind_in_walk = true;
    while (!g_unwind_forking) sched_yield();
    usleep(20 * 1000);  // the forking thread gets to its wait for this walk
    run_on(g_unwind_forked);  // running, not stuck: 100 ms of CPU time at most
  }
  return h->callback(info, size, h->data);
}

// DlWatch: the armed thread's walks are counted, and after its walk number
// g_after_walk_n (0: none) returns, g_after_walk_action runs, as another
// thread's dlclose would between two statements of the shim.
std::atomic<pid_t> g_after_walk_thread{0};
int g_walks_seen = 0, g_after_walk_n = 0;
void (*g_after_walk_action)() = nullptr;

}  // namespace

// A test that needs the hook below skips where it is not built.
#if defined(TG_UNIT_EXPORTS_DL_ITERATE_PHDR)
#define SKIP_WITHOUT_THE_WALK_HOOK() static_cast<void>(0)
#else
#define SKIP_WITHOUT_THE_WALK_HOOK()                                                                       \
  GTEST_SKIP() << "under a sanitizer this program can't interpose dl_iterate_phdr (the runtime calls it " \
                  "before dlsym works)"
#endif

#if defined(TG_UNIT_EXPORTS_DL_ITERATE_PHDR)
extern "C" __attribute__((visibility("default"))) int dl_iterate_phdr(int (*callback)(struct dl_phdr_info*, size_t,
                                                                                       void*),
                                                                      void* data) {
  using Fn = int (*)(int (*)(struct dl_phdr_info*, size_t, void*), void*);
  static Fn next = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "dl_iterate_phdr"));
  pid_t armed = g_unwind_walker.load();
  if (armed != 0 && armed == static_cast<pid_t>(syscall(SYS_gettid)) &&
      g_unwind_walker.compare_exchange_strong(armed, 0)) {
    HeldWalk h{callback, data, true};
    return next(&held_walk_cb, &h);
  }
  const int r = next(callback, data);
  if (g_after_walk_thread.load() == static_cast<pid_t>(syscall(SYS_gettid)) && ++g_walks_seen == g_after_walk_n)
    g_after_walk_action();  // this thread's walk number n has returned
  return r;
}
#endif

namespace {

TEST(ForkGate, ForkWaitsForTheBacktracesWalk) {
  SKIP_WITHOUT_THE_WALK_HOOK();
  const int r = tg::unit::in_child([] {
    tg::fork_gate::install();
    if (!tg::log::load_unwinder()) return 7;
    std::thread walker([] {
      g_unwind_walker = static_cast<pid_t>(syscall(SYS_gettid));
      tg::log::backtrace();
    });
    for (int i = 0; i < 2000 && !g_unwind_in_walk; ++i) usleep(1000);
    if (!g_unwind_in_walk) {
      g_unwind_forking = true;
      walker.join();
      return 8;  // libunwind did not walk through dl_iterate_phdr: nothing tested
    }
    g_unwind_forking = true;
    const pid_t c = fork_a_walker();
    g_unwind_forked = true;
    walker.join();
    return outcome(c);
  });
  EXPECT_NE(r, 7) << "libunwind could not be loaded";
  EXPECT_NE(r, 8) << "the backtrace never called dl_iterate_phdr";
  EXPECT_NE(r, 1) << "fork() went ahead during the backtrace's walk: the child hung in dl_iterate_phdr";
  EXPECT_EQ(r, 0);
}

}  // namespace

// ---- dl_watch.cpp: another name of a loaded plugin, and another thread's dlclose

namespace {

// The plugin's copy a.so (held by the program's only handle), b.so a hard
// link to it, and c.so another copy (another file).
struct PluginFiles {
  std::string dir, a, b, c;
};

bool copy_file(const std::string& from, const std::string& to) {
  const int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  const int out = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
  bool ok = in >= 0 && out >= 0;
  char buf[8192];
  for (ssize_t n; ok && (n = read(in, buf, sizeof buf)) != 0;) ok = n > 0 && write(out, buf, static_cast<size_t>(n)) == n;
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  return ok;
}

// Set before each case's fork: what the action does in the child.
PluginFiles g_files;

// A temporary directory for a case's files, named in g_files ("": none).
std::string new_plugin_dir() {
  char dir[] = "/tmp/tg-unit-dl-XXXXXX";
  if (!mkdtemp(dir)) return "";
  const std::string d = dir;
  g_files = {d, d + "/a.so", d + "/b.so", d + "/c.so"};
  return d;
}
void* g_plugin_a = nullptr;
unsigned long g_plugin_a_base = 0;
int g_action_result = 0;  // 0: not run; 1: a.so unloaded and c.so loaded at its address; 2, 3: not so

void unload_a_load_c_in_its_place() {
  dlclose(g_plugin_a);
  if (dlopen(g_files.a.c_str(), RTLD_LAZY | RTLD_NOLOAD)) {
    g_action_result = 2;  // still loaded: nothing tested
    return;
  }
  void* c = dlopen(g_files.c.c_str(), RTLD_LAZY);  // kept: the object now at a.so's address
  g_action_result = c && static_cast<struct link_map*>(c)->l_addr == g_plugin_a_base ? 1 : 3;
}

// In a child: the program holds a.so (g_plugin_a), and dlopens `file`
// through the shim, with `action` after the shim's walk number n (0: none).
// False if a.so could not be loaded.
bool dlopen_with_action_after_walk(const std::string& file, int n, void (*action)()) {
  g_plugin_a = dlopen(g_files.a.c_str(), RTLD_LAZY);
  if (!g_plugin_a) return false;
  g_plugin_a_base = static_cast<struct link_map*>(g_plugin_a)->l_addr;
  g_after_walk_action = action;
  g_after_walk_n = n;
  g_walks_seen = 0;
  g_after_walk_thread = static_cast<pid_t>(syscall(SYS_gettid));
  tg_dlopen_enter(file.c_str(), RTLD_LAZY, reinterpret_cast<void*>(&dlopen_with_action_after_walk));
  g_after_walk_thread = 0;
  return true;
}

// One case: the program holds a.so, and dlopens b.so; after the shim's walk
// number n (0: none; with `count`, the walks are only counted), a.so is
// unloaded and c.so loaded at its address. The exit status: the name the
// dlopen was counted under (1 a.so, 2 b.so, 3 c.so, 4 none), plus 8 * what
// the action found (g_action_result); with `count`, the number of walks.
int dlopen_of_the_link(int n, bool count) {
  return tg::unit::in_child([n, count] {
    if (!dlopen_with_action_after_walk(g_files.b, n, &unload_a_load_c_in_its_place)) return 100;
    if (count) return g_walks_seen;
    const int counted = tg::dl::open_count(g_files.a.c_str()) == 1   ? 1
                        : tg::dl::open_count(g_files.b.c_str()) == 1 ? 2
                        : tg::dl::open_count(g_files.c.c_str()) == 1 ? 3
                                                                      : 4;
    return counted + 8 * g_action_result;
  });
}

// A dlopen of another name of a loaded plugin's file (a hard link) is counted
// under the object's name, found by the shim's walk of the loaded objects.
// Another thread's dlclose may unload the object right after that walk: the
// shim then read the object's link_map by its address (freed, or another
// object's), and counted the dlopen under garbage, or here under c.so, the
// object loaded at that address meanwhile, another file. At the end of each
// of the shim's walks in turn, a.so is unloaded and c.so loaded in its place:
// the dlopen of b.so must be counted under a name of its file, never c.so.
TEST(DlWatch, ALinkToAPluginUnloadedAfterAnyWalkIsNeverCountedUnderAnotherFile) {
  SKIP_WITHOUT_THE_WALK_HOOK();
  const std::string dir = new_plugin_dir();
  ASSERT_FALSE(dir.empty());
  ASSERT_TRUE(copy_file(TG_UNIT_PLUGIN, g_files.a));
  ASSERT_EQ(link(g_files.a.c_str(), g_files.b.c_str()), 0);
  ASSERT_TRUE(copy_file(TG_UNIT_PLUGIN, g_files.c));

  // Control: untouched, the dlopen of b.so is counted under a.so.
  EXPECT_EQ(dlopen_of_the_link(0, false), 1);
  const int walks = dlopen_of_the_link(0, true);
  EXPECT_GE(walks, 2) << "the shim did not walk the loaded objects: nothing tested";
  int tested = 0;
  for (int n = 1; n <= walks; ++n) {
    const int r = dlopen_of_the_link(n, false);
    SCOPED_TRACE("a.so unloaded after walk " + std::to_string(n) + " of " + std::to_string(walks));
    ASSERT_LT(r, 100) << "the child failed: status " << r;
    EXPECT_EQ(r / 8, 1) << "a.so was not unloaded and c.so loaded at its address (" << r / 8 << ")";
    tested += r / 8 == 1;
    EXPECT_NE(r % 8, 3) << "the dlopen of b.so was counted under c.so, another file";
    EXPECT_TRUE(r % 8 == 1 || r % 8 == 2) << "the dlopen of b.so was counted under " << r % 8;
  }
  EXPECT_GT(tested, 0);
  unlink(g_files.a.c_str());
  unlink(g_files.b.c_str());
  unlink(g_files.c.c_str());
  rmdir(dir.c_str());
}

}  // namespace

// ---- dl_watch.cpp: a stale dlopen, and another thread's dlclose

namespace {

// The program holds a.so. The action (after the shim's walk n) unloads it,
// loads c.so at its address and a.so again, elsewhere: glibc's answer for
// a.so is an object of the file there now.
void unload_a_load_c_in_its_place_and_a_again() {
  unload_a_load_c_in_its_place();
  if (g_action_result == 1 && !dlopen(g_files.a.c_str(), RTLD_LAZY)) g_action_result = 4;
}

// Or unloads it, loads c.so at its address, puts another file at its name
// (d.so, renamed) and loads a.so again: from that file, the one there now
// (elsewhere: loaded at a.so's old address, the file there would be its own).
std::string g_new_file;
void unload_a_replace_it_and_load_the_new_file() {
  unload_a_load_c_in_its_place();
  if (g_action_result == 1 &&
      (rename(g_new_file.c_str(), g_files.a.c_str()) != 0 || !dlopen(g_files.a.c_str(), RTLD_LAZY)))
    g_action_result = 4;
}

// In a child: the log, category reloads only, goes to the file `log`.
bool log_reloads_to(const std::string& log) {
  (void)tg::settings();  // read first: reading them configures the log
  static tg::Settings s;
  s.debug = tg::kReloads;
  tg::log::configure(s);
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  return fd >= 0 && dup2(fd, STDERR_FILENO) >= 0;
}

// One case: the program holds a.so and dlopens it again; after the shim's
// walk number n (0: none; with `count`, the walks are only counted), the
// action runs. The log (category reloads) goes to `log`. The exit status:
// 1 if a stale line was logged, plus 2 * what the action found
// (g_action_result); with `count`, the number of walks.
int dlopen_of_a_loaded_plugin(int n, bool count, void (*action)(), const std::string& log) {
  return tg::unit::in_child([n, count, action, &log] {
    if (!log_reloads_to(log)) return 101;
    if (!dlopen_with_action_after_walk(g_files.a, n, action)) return 100;
    if (count) return g_walks_seen;
    char buf[8192] = "";
    const int in = open(log.c_str(), O_RDONLY | O_CLOEXEC);
    const ssize_t got = in >= 0 ? read(in, buf, sizeof buf - 1) : -1;
    if (got < 0) return 102;
    return (std::strstr(buf, " stale: ") ? 1 : 0) + 2 * g_action_result;
  });
}

std::string read_all(const std::string& path) {
  std::string out;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  char buf[4096];
  for (ssize_t n; fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  if (fd >= 0) close(fd);
  return out;
}

// The dlopen of a.so, with `action` after each of the shim's walks in turn:
// never a stale line. With g_new_file set, that file is made anew for each
// (the action renames it onto a.so).
void never_stale_after_any_walk(void (*action)(), const std::string& log, const char* what_action_does) {
  const int walks = dlopen_of_a_loaded_plugin(0, true, nullptr, log);
  EXPECT_GE(walks, 2) << "the shim did not walk the loaded objects: nothing tested";
  int tested = 0;
  for (int n = 1; n <= walks; ++n) {
    if (!g_new_file.empty()) {
      unlink(g_new_file.c_str());
      ASSERT_TRUE(copy_file(TG_UNIT_PLUGIN, g_new_file));  // another file each time (a.so is the last one)
    }
    const int r = dlopen_of_a_loaded_plugin(n, false, action, log);
    SCOPED_TRACE("a.so unloaded after walk " + std::to_string(n) + " of " + std::to_string(walks));
    ASSERT_LT(r, 100) << "the child failed: status " << r;
    EXPECT_EQ(r / 2, 1) << what_action_does << " (" << r / 2 << ")";
    tested += r / 2 == 1;
    EXPECT_EQ(r % 2, 0) << "a false stale line:\n" << read_all(log);
  }
  EXPECT_GT(tested, 0);
}

// A dlopen of a path whose object is loaded is stale if the file there now
// is another: the shim finds the object in its walk, and compared the file
// mapped at the object's address, read after the walk, with the file at the
// path. Another thread's dlclose may unload the object right after that
// walk, and another file be loaded at its address (CI's reload dl_edges
// "8 threads": "p2.so stale: dlopen returns the object already loaded from
// it", with p1.so's inode): a false stale line. At the end of each of the
// shim's walks in turn, a.so is unloaded, c.so loaded in its place and a.so
// loaded again (elsewhere): a dlopen of a.so returns an object of its file,
// never stale.
TEST(DlWatch, APluginUnloadedAfterAnyWalkWithAnotherFileInItsPlaceIsNeverStale) {
  SKIP_WITHOUT_THE_WALK_HOOK();
  const std::string dir = new_plugin_dir();
  ASSERT_FALSE(dir.empty());
  const std::string log = dir + "/log", stale = dir + "/stale.so";
  ASSERT_TRUE(copy_file(TG_UNIT_PLUGIN, g_files.a));
  ASSERT_TRUE(copy_file(TG_UNIT_PLUGIN, g_files.c));
  ASSERT_TRUE(copy_file(TG_UNIT_PLUGIN, stale));

  // Control: a plugin whose file is replaced while it is loaded is stale,
  // and the line is seen.
  {
    const std::string new_file = dir + "/new.so";
    ASSERT_TRUE(copy_file(TG_UNIT_PLUGIN, new_file));
    const int r = tg::unit::in_child([&] {
      if (!log_reloads_to(log)) return 101;
      if (!dlopen(stale.c_str(), RTLD_LAZY)) return 100;
      if (rename(new_file.c_str(), stale.c_str()) != 0) return 102;
      tg_dlopen_enter(stale.c_str(), RTLD_LAZY, reinterpret_cast<void*>(&read_all));
      return 0;
    });
    ASSERT_EQ(r, 0);
    EXPECT_NE(read_all(log).find("stale: dlopen returns the object already loaded"), std::string::npos)
        << "a stale dlopen logged no stale line: nothing below is tested\n" << read_all(log);
  }
  g_new_file.clear();  // the action makes no new file

  EXPECT_EQ(dlopen_of_a_loaded_plugin(0, false, nullptr, log), 0) << read_all(log);  // untouched: not stale
  never_stale_after_any_walk(&unload_a_load_c_in_its_place_and_a_again, log,
                             "a.so was not unloaded, c.so loaded at its address and a.so again");
  for (const std::string& f : {g_files.a, g_files.c, stale, log}) unlink(f.c_str());
  rmdir(dir.c_str());
}

// Or the object is unloaded right after the walk and the path loaded again,
// from the file there now (another thread's dlclose, and a reload of the
// new file): the object the shim found is gone, and glibc returns the new
// one. The stale line named the old file's inode and the new file's "[ino]"
// as if the dlopen returned the old one. At the end of each of the shim's
// walks in turn, a.so is unloaded, c.so loaded in its place, another file
// renamed onto a.so's name and a.so loaded again: a dlopen of a.so then
// returns the new file's object, never stale.
TEST(DlWatch, APluginReloadedFromANewFileAfterAnyWalkIsNeverStale) {
  SKIP_WITHOUT_THE_WALK_HOOK();
  const std::string dir = new_plugin_dir();
  ASSERT_FALSE(dir.empty());
  const std::string log = dir + "/log";
  g_new_file = dir + "/d.so";
  ASSERT_TRUE(copy_file(TG_UNIT_PLUGIN, g_files.a));
  ASSERT_TRUE(copy_file(TG_UNIT_PLUGIN, g_files.c));

  never_stale_after_any_walk(&unload_a_replace_it_and_load_the_new_file, log,
                             "a.so was not unloaded, c.so loaded at its address and a.so again from another file");
  for (const std::string& f : {g_files.a, g_files.c, g_new_file, log}) unlink(f.c_str());
  rmdir(dir.c_str());
}

}  // namespace

// ---- dl_watch.cpp: a fresh name is removed after the records' lock is let go

namespace {

// What the records said at the shim's unlinkat of a fresh name: the name's
// open count (-1: the records' lock was held, by this very thread; -3: no
// unlinkat). The unlinkat is trapped (seccomp) and done here instead.
int g_unlink_saw = -3;

void on_unlinkat(int, siginfo_t*, void* context) {
  auto* uc = static_cast<ucontext_t*>(context);
  const auto* path = reinterpret_cast<const char*>(uc->uc_mcontext.gregs[REG_RSI]);
  g_unlink_saw = tg::dl::open_count(path);
  uc->uc_mcontext.gregs[REG_RAX] = syscall(SYS_unlink, path) == 0 ? 0 : -errno;
}

bool trap_unlinkat() {
  struct sigaction sa = {};
  sa.sa_sigaction = &on_unlinkat;
  sa.sa_flags = SA_SIGINFO;
  return sigaction(SIGSYS, &sa, nullptr) == 0 && tg::unit::deny_syscall(SYS_unlinkat, -1, 0);
}

// One case, TRUNCGUARD_RELOAD=fresh: the program holds a.so, the file there
// is replaced, and its dlopen of a.so is answered with a fresh name (a hard
// link to the new file). That name is removed when its object is unloaded
// (the program's dlopen of it closed: forget_unloaded), or at the exit
// (remove_fresh_names). The exit status: 0 the records' lock was free at
// the unlinkat, 1 it was held; 90 and up, nothing tested.
int fresh_name_removed(bool at_exit) {
  return tg::unit::in_child([at_exit] {
    setenv("TRUNCGUARD_RELOAD", "fresh", 1);
    if (tg::settings().reload != tg::Reload::fresh) return 90;  // read before this child: nothing tested
    static tg::Settings quiet;
    quiet.debug = 0;
    tg::log::configure(quiet);
    if (!dlopen(g_files.a.c_str(), RTLD_LAZY)) return 100;
    if (rename(g_new_file.c_str(), g_files.a.c_str()) != 0) return 101;
    const char* load_as = tg_dlopen_enter(g_files.a.c_str(), RTLD_LAZY, reinterpret_cast<void*>(&fresh_name_removed));
    if (!load_as || g_files.a == load_as) return 91;  // no fresh name made
    const std::string fresh = load_as;
    if (!trap_unlinkat()) return 92;
    if (at_exit) {
      tg::dl::remove_fresh_names();
    } else {
      void* h = dlopen(fresh.c_str(), RTLD_LAZY);  // the program's dlopen, with the name it was given
      if (!h) return 93;
      tg::dl::CloseWatch w;
      tg::dl::before_close(h, reinterpret_cast<void*>(&fresh_name_removed), &w);
      const int rc = dlclose(h);
      tg::dl::after_close(w, rc, false);
    }
    if (g_unlink_saw == -3 || access(fresh.c_str(), F_OK) == 0) return 94;  // not removed
    return g_unlink_saw >= 0 ? 0 : 1;
  });
}

// The records' lock is held for a few string compares, never across a call
// that can wait for another lock: unlinkat waits for the directory's (held
// by whatever else works in that directory: measured up to 14 ms), and
// every dl call of the program's other threads waited for the records that
// long. The fresh names were removed with the lock held.
TEST(DlWatch, AFreshNameIsRemovedWithTheRecordsLockFree) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "under ThreadSanitizer a signal handler runs at its next interceptor, not at the system call "
                  "trapped";
#endif
  const std::string dir = new_plugin_dir();
  ASSERT_FALSE(dir.empty());
  g_new_file = dir + "/d.so";
  for (bool at_exit : {false, true}) {
    SCOPED_TRACE(at_exit ? "at the exit (remove_fresh_names)" : "at the unload (forget_unloaded)");
    unlink(g_files.a.c_str());
    ASSERT_TRUE(copy_file(TG_UNIT_PLUGIN, g_files.a));
    ASSERT_TRUE(copy_file(TG_UNIT_PLUGIN, g_new_file));
    const int r = fresh_name_removed(at_exit);
    if (r == 90) GTEST_SKIP() << "this process read the settings before the case: TRUNCGUARD_RELOAD=fresh can't be set";
    EXPECT_NE(r, 91) << "the stale dlopen got no fresh name";
    EXPECT_NE(r, 94) << "the fresh name was not removed";
    EXPECT_EQ(r, 0) << "the fresh name was removed with the records' lock held";
  }
  unlink(g_files.a.c_str());
  unlink(g_new_file.c_str());
  rmdir(dir.c_str());
}

}  // namespace
