#include "fork_gate.hpp"

#include <pthread.h>
#include <sched.h>

#include <atomic>

#include "sys.hpp"

namespace tg::fork_gate {
namespace {

// Both waits are bounded (a fork from a signal handler that interrupted one
// of them).
std::atomic<int> g_iterating{0};
std::atomic<bool> g_forking{false};

void wait_until(const std::atomic<bool>& flag, bool value) {
  const long give_up_at = sys::monotonic_ms() + 1000;
  while (flag.load(std::memory_order_seq_cst) != value && sys::monotonic_ms() < give_up_at) sched_yield();
}

}  // namespace

int walk(int (*callback)(struct dl_phdr_info*, size_t, void*), void* data) {
  g_iterating.fetch_add(1, std::memory_order_seq_cst);
  if (g_forking.load(std::memory_order_seq_cst)) {
    g_iterating.fetch_sub(1, std::memory_order_seq_cst);
    wait_until(g_forking, false);
    g_iterating.fetch_add(1, std::memory_order_seq_cst);
  }
  const int r = dl_iterate_phdr(callback, data);
  g_iterating.fetch_sub(1, std::memory_order_seq_cst);
  return r;
}

void before_fork() {
  g_forking.store(true, std::memory_order_seq_cst);
  const long give_up_at = sys::monotonic_ms() + 1000;
  while (g_iterating.load(std::memory_order_seq_cst) > 0 && sys::monotonic_ms() < give_up_at) sched_yield();
}
void after_fork_parent() { g_forking.store(false, std::memory_order_seq_cst); }
void after_fork_child() {
  g_iterating.store(0, std::memory_order_seq_cst);  // the threads counted are the parent's
  g_forking.store(false, std::memory_order_seq_cst);
}

void install() {
  static std::atomic<bool> installed{false};
  if (!installed.exchange(true)) pthread_atfork(&before_fork, &after_fork_parent, &after_fork_child);
}

}  // namespace tg::fork_gate
