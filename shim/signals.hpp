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
// mask is its own).
#pragma once

#include <signal.h>
#include <cstdint>

#include "sys.hpp"

namespace tg {

constexpr uint64_t signal_bit(int sig) { return 1ull << (sig - 1); }  // in the kernel's sigset

class SignalsHeld {
 public:
  SignalsHeld() = default;
  SignalsHeld(const SignalsHeld&) = delete;
  SignalsHeld& operator=(const SignalsHeld&) = delete;
  ~SignalsHeld() { release(); }
  // False if the mask could not be changed (a seccomp filter): nothing held.
  bool hold() {
    if (held_) return true;
    constexpr uint64_t kFaults = signal_bit(SIGSEGV) | signal_bit(SIGBUS) | signal_bit(SIGILL) |
                                 signal_bit(SIGFPE) | signal_bit(SIGTRAP) | signal_bit(SIGSYS) |
                                 signal_bit(SIGABRT) | signal_bit(32) | signal_bit(33);
    const uint64_t mask = ~kFaults;
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
