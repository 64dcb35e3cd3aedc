#include "fork_gate.hpp"

#include <pthread.h>

#include <atomic>
#include <cstdint>

#include "owner_lock.hpp"

namespace tg::fork_gate {
namespace {

owner_lock::Word g_gate{0};
// This thread's forks in progress: more than one where a signal handler that
// interrupted an atfork handler forked (glibc 2.36 runs them without a lock
// of its own, in a process of threads too), and which of them took the gate:
// bit N for the fork N deep (the outermost 0). Each fork takes the gate, an
// inner one too: where the outer one holds it take() says at once "this
// thread's", and where it does not yet, or no more, the inner one waits for
// the walks of other threads as any fork. Only this thread touches these
// (and its signal handlers): signal fences keep the order of the stores.
constexpr unsigned kDepths = 64;
__attribute__((tls_model("initial-exec"))) thread_local unsigned t_forks = 0;
__attribute__((tls_model("initial-exec"))) thread_local uint64_t t_took = 0;
// The gate is a fork's (prepare handler to parent handler): a walk waits for
// it while it runs on for up to 2 s of CPU time (a large process's fork()
// copies its page tables for as long, a prepare handler may work): past
// 200 ms it went ahead, as of a walk jumped out of, and the child hung. The
// bound is for a prepare handler that spins until a thread waiting here goes on.
std::atomic<bool> g_fork_holds{false};

}  // namespace

bool hold() { return owner_lock::take(g_gate, &g_fork_holds); }
void let_go() { owner_lock::release(g_gate); }

int walk(int (*callback)(struct dl_phdr_info*, size_t, void*), void* data) {
  const bool took = hold();
  const int r = dl_iterate_phdr(callback, data);
  if (took) let_go();
  return r;
}

void before_fork() {
  const unsigned depth = t_forks;
  t_forks = depth + 1;  // a fork from a handler from here on is one deeper
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (depth < kDepths && owner_lock::take(g_gate)) {
    t_took |= uint64_t{1} << depth;
    g_fork_holds.store(true, std::memory_order_release);
  }
}
void after_fork_parent() {
  // Whether this fork took the gate is read before it counts as done: a fork
  // from a handler in between took the gate (this thread's, "not taken") as
  // the outermost, and this one never let it go.
  const unsigned forks = t_forks;
  if (forks == 0) return;  // its prepare handler did not run (registered meanwhile)
  const unsigned depth = forks - 1;
  if (depth < kDepths && (t_took >> depth & 1)) {
    g_fork_holds.store(false, std::memory_order_release);
    owner_lock::release(g_gate);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    t_took &= ~(uint64_t{1} << depth);
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_forks = depth;
}
void after_fork_child() {
  // No thread of this process holds the gate: its holder is a thread of the
  // parent (this one's fork, or a walk); the forks this one was inside go on
  // here without it.
  t_took = 0;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (t_forks > 0) t_forks = t_forks - 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  g_fork_holds.store(false, std::memory_order_release);
  owner_lock::release(g_gate);
}

void install() {
  static std::atomic<bool> installed{false};
  if (!installed.exchange(true)) pthread_atfork(&before_fork, &after_fork_parent, &after_fork_child);
}

}  // namespace tg::fork_gate
