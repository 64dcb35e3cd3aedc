#include "fork_gate.hpp"

#include <pthread.h>

#include <atomic>

#include "owner_lock.hpp"

namespace tg::fork_gate {
namespace {

owner_lock::Word g_gate{0};
// This thread's forks in progress: more than one is a fork from a signal
// handler that interrupted one (in an atfork handler). The outermost takes
// the gate and lets go of it; t_fork_took: it took it (not where the gate
// was this thread's walk's: a fork from a handler in the walk).
__attribute__((tls_model("initial-exec"))) thread_local int t_forks = 0;
// The gate is a fork's (prepare handler to parent handler): a walk waits for
// it while it runs on for up to 2 s of CPU time (a large process's fork()
// copies its page tables for as long, a prepare handler may work): past
// 200 ms it went ahead, as of a walk jumped out of, and the child hung. The
// bound is for a prepare handler that spins until a thread waiting here goes on.
std::atomic<bool> g_fork_holds{false};
__attribute__((tls_model("initial-exec"))) thread_local bool t_fork_took = false;

}  // namespace

int walk(int (*callback)(struct dl_phdr_info*, size_t, void*), void* data) {
  const bool took = owner_lock::take(g_gate, &g_fork_holds);
  const int r = dl_iterate_phdr(callback, data);
  if (took) owner_lock::release(g_gate);
  return r;
}

void before_fork() {
  if (t_forks++ == 0) {
    t_fork_took = owner_lock::take(g_gate);
    if (t_fork_took) g_fork_holds.store(true, std::memory_order_release);
  }
}
void after_fork_parent() {
  if (--t_forks > 0) return;
  t_forks = 0;
  if (t_fork_took) {
    g_fork_holds.store(false, std::memory_order_release);
    owner_lock::release(g_gate);
  }
  t_fork_took = false;
}
void after_fork_child() {
  // Its holder is a thread of the parent, or this one's outer fork, which
  // then goes on (in this process too) without it.
  if (t_forks > 0) --t_forks;
  t_fork_took = false;
  g_fork_holds.store(false, std::memory_order_release);
  owner_lock::release(g_gate);
}

void install() {
  static std::atomic<bool> installed{false};
  if (!installed.exchange(true)) pthread_atfork(&before_fork, &after_fork_parent, &after_fork_child);
}

}  // namespace tg::fork_gate
