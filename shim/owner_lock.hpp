// A lock held for a few instructions (the dl records' string compares, a
// walk of the loaded objects, fork() itself: fork_gate.hpp), by a thread
// known by its id: a thread that finds it held waits, and gives up
// only where the holder is not going to let go soon (it is stopped, asleep,
// running elsewhere, or gone), never merely because it waited long: on a
// loaded machine a holder preempted in the middle may not run again for a
// quarter of a second, and a process stopped (SIGSTOP, a debugger, a frozen
// cgroup) stops the clock for none of its threads.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>

namespace tg::owner_lock {

// The lock word: the holder's thread id in the low 32 bits (0: free), and in
// the high 32 how many times the lock was taken, so that a waiter tells one
// holding from the next. Zero-initialised: free.
using Word = std::atomic<uint64_t>;

// Takes the lock: true once taken. False, without it, where this thread
// holds it already (a signal handler that interrupted it there: waiting
// would never end), or where the holder is stuck: stopped or asleep (a
// signal handler waiting for something) at two looks 50 ms apart, waiting
// in the kernel ('D': a page fault waiting for the mm's lock) through 20
// looks, runnable but running on for 200 ms of its CPU time (a signal handler
// jumped out of the middle), or runnable but given no CPU at all through 20
// looks (a waiter of a higher real-time priority on its CPU), or where
// /proc/self/task can't say. The holder is first looked at after 200 ms. A
// holder that no longer exists (a thread of the parent, copied by fork())
// is taken over. Where `may_run_on` is set (a holding that may last, fork()
// copying a large process), the holder is stuck running on only past 2 s of
// its CPU time (a spin that waits for this thread: bounded).
bool take(Word& word, const std::atomic<bool>* may_run_on = nullptr);

// Lets go of a lock that take() gave.
void release(Word& word);

}  // namespace tg::owner_lock
