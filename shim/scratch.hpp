// Working memory off the stack, for the rare paths that need kilobytes.
//
// The shim runs on its host's threads, and some have small stacks: coroutines
// (boost.context, libco, Lua), servers' threads of 16-64 KiB. So no path
// keeps more than a few hundred bytes on the stack: the buffers a protected
// write needs (a path, a readlink, an xattr, a copy buffer) are mapped when
// that write happens and unmapped after it (except one block kept for the
// next write: Reuse::keep_one). Never malloc: the shim runs inside
// programs that replace it, and before and after their allocator exists.
// Raw system calls: no other preload (a sanitizer's mmap) sees them, and they
// work in a vfork child (unmapped before the child execs: nothing is left in
// the parent's address space).
#pragma once

#include <sys/mman.h>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <type_traits>

#include "sys.hpp"

namespace tg {

// The address of `bytes` of fresh anonymous memory (zero-filled), or -errno
// (user addresses are positive on Linux).
#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer tracks memory through libc's mmap/munmap: behind raw calls
// it would take one thread's fresh pages at an address another thread just
// unmapped for shared memory, and report a race. Its builds link the shim
// into test programs, never preload it.
inline long map_scratch(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? -errno : reinterpret_cast<long>(p);
}
inline void unmap_scratch(void* mem, size_t bytes) { ::munmap(mem, bytes); }
#else
inline long map_scratch(size_t bytes) {
  return sys::call(SYS_mmap, nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
}
inline void unmap_scratch(void* mem, size_t bytes) { sys::call(SYS_munmap, mem, bytes); }
#endif

// Whether a Scratch's block, once used, is kept for the next one.
enum class Reuse { no, keep_one };

// sizeof(T) bytes, zero-filled (fresh anonymous pages), or nothing if the
// kernel refuses (ENOMEM, RLIMIT_AS, a seccomp filter): the caller falls back.
// Reuse::keep_one, for memory that every protected write of a deploy needs:
// the block is kept for the next such write, zeroed again (a memset of it
// costs a fraction of mapping fresh pages: the mmap, a page fault per page
// touched, the munmap). It stays mapped, and resident, for the life of the
// process. Taken by an atomic exchange: a thread, a signal handler or a vfork
// child that finds it taken maps a block of its own, as before.
template <typename T, Reuse kReuse = Reuse::no>
class Scratch {
  static_assert(std::is_trivially_destructible_v<T> && std::is_trivially_default_constructible_v<T>,
                "mapped memory is used as it comes: zeroed, never destroyed");

 public:
  Scratch() {
    if constexpr (kReuse == Reuse::keep_one) {
      if (T* kept = spare_.exchange(nullptr, std::memory_order_acquire)) {
        std::memset(static_cast<void*>(kept), 0, sizeof(T));
        mem_ = kept;
        return;
      }
    }
    const long r = map_scratch(sizeof(T));
    if (r < 0) error_ = static_cast<int>(-r);
    else mem_ = reinterpret_cast<T*>(r);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    if (!mem_) return;
    if constexpr (kReuse == Reuse::keep_one) {
      T* none = nullptr;
      if (spare_.compare_exchange_strong(none, mem_, std::memory_order_release)) return;
    }
    unmap_scratch(mem_, sizeof(T));
  }
  explicit operator bool() const { return mem_ != nullptr; }
  T* get() const { return mem_; }
  T* operator->() const { return mem_; }
  int error() const { return error_; }  // why there is none (an errno)

 private:
  static inline std::atomic<T*> spare_{nullptr};  // Reuse::keep_one's kept block
  T* mem_ = nullptr;
  int error_ = 0;
};

}  // namespace tg
