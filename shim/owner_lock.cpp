#include "owner_lock.hpp"

#include <sched.h>

#include <cstdio>
#include <cstring>

#include "sys.hpp"

namespace tg::owner_lock {
namespace {

constexpr uint64_t kThreadBits = 0xffffffffull;

pid_t holder_of(uint64_t w) { return static_cast<pid_t>(w & kThreadBits); }
// `w` taken by `me`: the count of takings one more.
uint64_t taken(uint64_t w, pid_t me) { return (((w >> 32) + 1) << 32) | static_cast<uint32_t>(me); }

// The state letter of this process's thread `tid` (/proc/self/task/TID/stat:
// 'R' running or waiting for a CPU, 'S' and 'D' asleep, 't' and 'T'
// stopped...), or 0 where it can't be read. Raw calls, nothing allocated.
char thread_state(pid_t tid) {
  char path[48];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
  const int fd = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return 0;
  char buf[128];  // "TID (NAME) S ...": the name is at most 15 bytes (TASK_COMM_LEN)
  const long n = sys::read(fd, buf, sizeof buf - 1);
  sys::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char* end = std::strrchr(buf, ')');  // the name may hold ") " itself
  return end && end[1] == ' ' && end[2] != '\0' ? end[2] : 0;
}

// The CPU time this process's thread `tid` has had, in ns (-1: not known).
// Its CPU-time clock, as pthread_getcpuclockid makes it (glibc's
// MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)).
long long thread_cpu_ns(pid_t tid) {
  const auto clock = static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 6);
  struct timespec ts;
  if (sys::call(SYS_clock_gettime, clock, &ts) != 0) return -1;
  return static_cast<long long>(ts.tv_sec) * 1000000000ll + ts.tv_nsec;
}

// What a waiter has seen of one holding.
struct Watch {
  uint64_t word = 0;       // the holding (0: none yet)
  long look_at = 0;        // when the holder is looked at next (ms)
  long long cpu = -1;      // its CPU time at the first look
  long long last_cpu = -1; // at the last look
  int asleep = 0;          // consecutive looks that found it asleep or stopped
  int in_kernel = 0;       // consecutive looks that found it waiting in the kernel (D)
  int starved = 0;         // consecutive looks that found it runnable, given no CPU since the last
};

constexpr long kFirstLookMs = 200;
constexpr long kLookEveryMs = 50;
constexpr long long kRunningOnNs = 200ll * 1000 * 1000;
constexpr long long kRunningOnLongNs = 2000ll * 1000 * 1000;  // a holding that may last
constexpr int kAsleepLooks = 2;
constexpr int kStarvedLooks = 20;

// Is the holding `w` (held, by another thread that exists) stuck? Called
// between yields.
bool stuck(const Word& word, uint64_t w, Watch* s, const std::atomic<bool>* may_run_on) {
  const long now = sys::monotonic_ms();
  if (w != s->word) {  // another holding: it moved on
    *s = Watch{};
    s->word = w;
    s->look_at = now + kFirstLookMs;
    return false;
  }
  if (now < s->look_at) return false;
  s->look_at = now + kLookEveryMs;
  const pid_t holder = holder_of(w);
  const char state = thread_state(holder);
  const long long cpu = thread_cpu_ns(holder);
  // Let go (or taken again) while it was looked at: the look may be of
  // what the thread did after. The next holding is watched from the start.
  if (word.load(std::memory_order_acquire) != w) return false;
  if (state == 0) return true;  // /proc can't say: it was held 200 ms
  // 'D': the kernel works for it and comes back, as from a page fault that
  // waits for the mm's lock while other threads map and unmap libraries (a
  // holding of the dl records, memory only, does fault, and at times sleeps
  // there: measured under ASan in reload dl_edges). Waited for as a holder
  // given no CPU is; what a signal handler waits for (a futex, a pipe, a
  // sleep) is 'S'.
  if (state == 'D') {
    s->asleep = 0;
    return ++s->in_kernel >= kStarvedLooks;
  }
  s->in_kernel = 0;
  if (state != 'R') return ++s->asleep >= kAsleepLooks;
  s->asleep = 0;
  if (cpu < 0) return true;
  if (s->cpu < 0) {
    s->cpu = s->last_cpu = cpu;
    return false;
  }
  const bool long_holding = may_run_on && may_run_on->load(std::memory_order_acquire);
  if (cpu - s->cpu > (long_holding ? kRunningOnLongNs : kRunningOnNs)) return true;
  s->starved = cpu == s->last_cpu ? s->starved + 1 : 0;
  s->last_cpu = cpu;
  return s->starved >= kStarvedLooks;
}

}  // namespace

bool take(Word& word, const std::atomic<bool>* may_run_on) {
  const auto me = static_cast<pid_t>(sys::call(SYS_gettid));
  Watch watch;
  uint64_t w = word.load(std::memory_order_relaxed);
  for (unsigned i = 0;; ++i) {
    const pid_t holder = holder_of(w);
    if (holder == 0) {
      if (word.compare_exchange_weak(w, taken(w, me), std::memory_order_acquire, std::memory_order_relaxed))
        return true;
      continue;  // (w reloaded)
    }
    if (holder == me) return false;  // interrupted while holding it: never wait for ourselves
    if (i >= 64) {
      if (sys::call(SYS_tgkill, sys::getpid(), holder, 0) == -ESRCH) {  // a thread of the parent, before fork()
        if (word.compare_exchange_strong(w, taken(w, me), std::memory_order_acquire, std::memory_order_relaxed))
          return true;
        continue;
      }
      if (stuck(word, w, &watch, may_run_on)) return false;
      sched_yield();
    }
    w = word.load(std::memory_order_relaxed);
  }
}

void release(Word& word) { word.fetch_and(~kThreadBits, std::memory_order_release); }

}  // namespace tg::owner_lock
