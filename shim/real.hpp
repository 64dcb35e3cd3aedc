// The next definition of an interposed symbol (glibc's, or another preload's).
//
// Resolved lazily and thread-safely on first use: calls arrive before our
// constructor runs (other preloads, ld.so-time code) and from many threads.
// Each slot is a constant-initialised atomic: no guard variable, no lock.
// Found in the symbol tables, as RTLD_NEXT would find it (elf::find_next):
// a dlsym clears the thread's dlerror() text, so a program's first close()
// after a failed dlopen lost its message. dlsym only where the tables don't
// give it (an IFUNC, no definition).
#pragma once

#include <atomic>

#include "elf_dynamic.hpp"

namespace tg::real {

// The first call's lookup, out of line: the wrappers' pass-through then
// needs no frame of its own.
template <typename Fn>
[[gnu::noinline]] Fn resolve(std::atomic<Fn>& slot, const char* name) {
  // Racing threads resolve the same pointer: storing it twice is harmless.
  Fn f = reinterpret_cast<Fn>(elf::find_next(name));
  slot.store(f, std::memory_order_release);
  return f;
}

template <typename Fn>
inline Fn next(std::atomic<Fn>& slot, const char* name) {
  Fn f = slot.load(std::memory_order_acquire);
  if (__builtin_expect(f == nullptr, 0)) return resolve(slot, name);
  return f;
}

}  // namespace tg::real

// TG_REAL(open) is the next `open`, typed from its own prototype, so a wrong
// signature does not compile.
// The prototypes carry attributes (nonnull...) that a pointer type drops:
// that is expected here.
#pragma GCC diagnostic ignored "-Wignored-attributes"

#define TG_REAL(name)                                                        \
  ([]() {                                                                    \
    static constinit std::atomic<decltype(&::name)> slot{nullptr};           \
    return ::tg::real::next(slot, #name);                                    \
  }())
