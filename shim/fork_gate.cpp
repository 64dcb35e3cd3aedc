#include "fork_gate.hpp"

#include <pthread.h>

#include <atomic>

#include "owner_lock.hpp"

namespace tg::fork_gate {
namespace {

owner_lock::Word g_gate{0};
// This thread's prepare handler took the gate: its parent handler lets go.
// (Not where the gate was its walk's: a fork from a handler in the walk.)
__attribute__((tls_model("initial-exec"))) thread_local bool t_fork_took = false;

}  // namespace

int walk(int (*callback)(struct dl_phdr_info*, size_t, void*), void* data) {
  const bool took = owner_lock::take(g_gate);
  const int r = dl_iterate_phdr(callback, data);
  if (took) owner_lock::release(g_gate);
  return r;
}

void before_fork() { t_fork_took = owner_lock::take(g_gate); }
void after_fork_parent() {
  if (t_fork_took) owner_lock::release(g_gate);
  t_fork_took = false;
}
void after_fork_child() {
  owner_lock::release(g_gate);  // its holder is a thread of the parent
  t_fork_took = false;
}

void install() {
  static std::atomic<bool> installed{false};
  if (!installed.exchange(true)) pthread_atfork(&before_fork, &after_fork_parent, &after_fork_child);
}

}  // namespace tg::fork_gate
