// The program's asynchronous signals, held back while the shim holds
// something of its own for one of the program's calls (an fd, a temp name,
// working memory, a half-done publication). A handler that leaves by
// siglongjmp (a timeout around a write), or an asynchronous cancel, would
// otherwise abandon the shim mid-way, and what it held with it. Process-
// directed signals go to another thread meanwhile; this thread's own (a
// timer) are delivered at release(). Never held: the signals of a fault
// (their handlers must run where they happen, and a blocked one kills), and
// glibc's own: SIGSETXID (33), for which a setuid() in another thread waits,
// and SIGCANCEL (32), for which a cancellation point that pthread_cancel
// caught waits (the shim's nanosleep: held, the thread hung there forever).
// Raw system calls: nothing allocated, no lock, fine in a vfork child (its
// mask is its own). Only once the program has a handler of its own (below):
// until then none can run in the middle of the shim's work.
#pragma once

#include <signal.h>
#include <atomic>
#include <cstdint>

#include "sys.hpp"

namespace tg {

constexpr uint64_t signal_bit(int sig) { return 1ull << (sig - 1); }  // in the kernel's sigset

// Never held: the fault signals and glibc's own (see above).
constexpr uint64_t kNeverHeld = signal_bit(SIGSEGV) | signal_bit(SIGBUS) | signal_bit(SIGILL) |
                                signal_bit(SIGFPE) | signal_bit(SIGTRAP) | signal_bit(SIGSYS) |
                                signal_bit(SIGABRT) | signal_bit(32) | signal_bit(33);

// Set for good when the program installs a handler for a signal that would
// be held (interpose.cpp: sigaction, signal and their aliases call
// note_handler first). Until then each of its signals is ignored, stops the
// process or ends it: no code of the program's can run in the middle of the
// shim's work, and an examined write of a program with no handler (cp, tee,
// tar...) makes no rt_sigprocmask pair (syscall(SYS_rt_sigaction) notes it
// too). Not seen: a handler installed with a syscall instruction of the
// program's own, or through another preload that calls libc's sigaction
// directly; such a program's handler can interrupt the shim (as before the
// hold existed). A handler installed while another thread is already in the
// middle of a write does not hold that write's signals.
inline std::atomic<bool> g_program_handles_signals{false};

inline void note_handler(int sig, __sighandler_t handler) {
  if (handler == SIG_DFL || handler == SIG_IGN || handler == SIG_ERR || handler == SIG_HOLD) return;
  if (sig < 1 || sig > 64 || (kNeverHeld & signal_bit(sig))) return;
  g_program_handles_signals.store(true, std::memory_order_seq_cst);
}

class SignalsHeld {
 public:
  SignalsHeld() = default;
  SignalsHeld(const SignalsHeld&) = delete;
  SignalsHeld& operator=(const SignalsHeld&) = delete;
  ~SignalsHeld() { release(); }
  // False if nothing is held: the program has no handler to hold back, or
  // the mask could not be changed (a seccomp filter).
  bool hold() {
    if (held_) return true;
    if (!g_program_handles_signals.load(std::memory_order_acquire)) return false;
    const uint64_t mask = ~kNeverHeld;
    held_ = sys::call(SYS_rt_sigprocmask, SIG_BLOCK, &mask, &program_mask_, sizeof mask) == 0;
    return held_;
  }
  // The program's own mask again (a pending signal is delivered now).
  void release() {
    if (!held_) return;
    held_ = false;
    sys::call(SYS_rt_sigprocmask, SIG_SETMASK, &program_mask_, nullptr, sizeof program_mask_);
  }

 private:
  bool held_ = false;
  uint64_t program_mask_ = 0;
};

}  // namespace tg
