#include "dl_bindings.hpp"

#include <dlfcn.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "dl_watch.hpp"
#include "elf_dynamic.hpp"
#include "guard.hpp"
#include "log.hpp"
#include "maps_reader.hpp"

extern "C" {
__attribute__((visibility("hidden"))) void* tg_real_dlsym = nullptr;
__attribute__((visibility("hidden"))) void* tg_real_dlvsym = nullptr;
}

namespace tg::dl {
namespace {

using DlsymFn = void* (*)(void*, const char*);
using DlvsymFn = void* (*)(void*, const char*, const char*);

// Jumped to only if no dlsym follows the shim (no glibc): fail like dlsym.
void* no_dlsym(void*, const char*) { return nullptr; }
void* no_dlvsym(void*, const char*, const char*) { return nullptr; }

// The shim's own text: its lookups (TG_REAL) are not the program's.
struct SelfRange {
  uintptr_t start = 0, end = 0;
};
SelfRange self_range() {
  static std::atomic<uintptr_t> start{0}, end{0};
  if (!start.load(std::memory_order_acquire)) {
    struct dl_find_object r;
    if (_dl_find_object(reinterpret_cast<void*>(&no_dlsym), &r) == 0) {
      end.store(reinterpret_cast<uintptr_t>(r.dlfo_map_end), std::memory_order_relaxed);
      start.store(reinterpret_cast<uintptr_t>(r.dlfo_map_start), std::memory_order_release);
    }
  }
  return {start.load(std::memory_order_acquire), end.load(std::memory_order_relaxed)};
}

// Until the shim's constructor has run, the hook only finds glibc's dlsym:
// a sanitizer runtime calls dlsym while it initialises, before any
// instrumented code may run; other libraries' constructors may too.
bool g_hooks_ready = false;  // __atomic builtins: no instrumented code early

// glibc's dlsym is the next definition after the shim in its namespace's list
// (what RTLD_NEXT would give), found in the symbol tables: calling dlsym here
// would enter the shim again.
TG_EARLY void resolve_real() {
  const struct link_map* self = elf::own_map();
  void* s = self ? elf::find_function("dlsym", self) : nullptr;
  void* v = self ? elf::find_function("dlvsym", self) : nullptr;
  __atomic_store_n(&tg_real_dlsym, s ? s : reinterpret_cast<void*>(&no_dlsym), __ATOMIC_RELEASE);
  __atomic_store_n(&tg_real_dlvsym, v ? v : reinterpret_cast<void*>(&no_dlvsym), __ATOMIC_RELEASE);
}

// ---- objects loaded at start-up

constexpr int kMaxInitial = 512;
struct link_map* g_initial[kMaxInitial];
std::atomic<int> g_initial_count{-1};  // -1: not taken yet
std::atomic_flag g_initial_taking = ATOMIC_FLAG_INIT;

bool is_initial(const struct link_map* map) {
  const int n = g_initial_count.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i)
    if (g_initial[i] == map) return true;
  return false;
}

// The vDSO is in the list of objects but not in the global scope.
bool is_vdso(const struct link_map* map) {
  return map->l_name && (std::strncmp(map->l_name, "linux-vdso.so", 13) == 0 ||
                         std::strncmp(map->l_name, "linux-gate.so", 13) == 0);
}

struct link_map* object_at(void* addr) {
  struct dl_find_object r;
  if (!addr || _dl_find_object(addr, &r) != 0) return nullptr;
  return r.dlfo_link_map;
}

void* real_lookup(void* handle, const char* name, const char* version) {
  if (version) return reinterpret_cast<DlvsymFn>(__atomic_load_n(&tg_real_dlvsym, __ATOMIC_ACQUIRE))(handle, name, version);
  return reinterpret_cast<DlsymFn>(__atomic_load_n(&tg_real_dlsym, __ATOMIC_ACQUIRE))(handle, name);
}

bool object_defines(const struct link_map* map, const char* name, const char* version) {
  return map && map->l_ld && elf::defines(elf::read_dynamic(map), name, version);
}

// The loaded object a DT_NEEDED entry names (as glibc matches it: the name
// it was loaded by, or its soname).
struct link_map* loaded_by_name(const char* needed) {
  for (struct link_map* m = _r_debug.r_map; m; m = m->l_next) {
    if (!m->l_name) continue;
    const char* base = std::strrchr(m->l_name, '/');
    if (std::strcmp(m->l_name, needed) == 0 || (base && std::strcmp(base + 1, needed) == 0)) return m;
    const elf::DynInfo di = elf::read_dynamic(m);
    if (di.strtab && di.soname >= 0 && std::strcmp(di.strtab + di.soname, needed) == 0) return m;
  }
  return nullptr;
}

// RTLD_NEXT from a dlopened object: glibc searches that object's own scope
// (itself, then its dependencies breadth-first) after the object itself.
struct link_map* next_in_own_scope(struct link_map* self, const char* name, const char* version, bool* known) {
  constexpr int kMax = 256;
  struct link_map* scope[kMax];
  int n = 0;
  scope[n++] = self;
  for (int i = 0; i < n; ++i) {
    const elf::DynInfo di = elf::read_dynamic(scope[i]);
    if (!di.strtab) continue;
    for (const ElfW(Dyn)* d = scope[i]->l_ld; d->d_tag != DT_NULL; ++d) {
      if (d->d_tag != DT_NEEDED) continue;
      struct link_map* m = loaded_by_name(di.strtab + d->d_un.d_val);
      if (!m) {  // a dependency the shim can't place: don't guess
        *known = false;
        return nullptr;
      }
      bool seen = false;
      for (int k = 0; k < n && !seen; ++k) seen = scope[k] == m;
      if (!seen && n < kMax) scope[n++] = m;
    }
  }
  for (int i = 1; i < n; ++i)
    if (object_defines(scope[i], name, version)) return scope[i];
  return nullptr;
}

// Which object glibc's lookup will take `name` from, found without changing
// anything the program will see. *known is false when the shim can't tell.
struct link_map* definer(void* handle, const char* name, const char* version, struct link_map* undef, bool* known) {
  *known = true;
  if (handle == RTLD_DEFAULT) {
    if (is_initial(undef)) {
      // From an object loaded at start-up, the lookup searches the global
      // scope, as from the shim (also loaded at start-up); and it marks a
      // dlopened definer NODELETE, as the program's own call is about to.
      void* addr = real_lookup(RTLD_DEFAULT, name, version);
      if (!addr) return nullptr;
      struct link_map* m = object_at(addr);
      *known = m != nullptr;
      return m;
    }
    // From a dlopened object: the start-up objects and those opened
    // RTLD_GLOBAL, in load order; then the object's own dependencies, which
    // a lookup on its handle searches (with no side effect).
    for (struct link_map* m = _r_debug.r_map; m; m = m->l_next)
      if ((is_initial(m) || opened_global(m->l_name)) && !is_vdso(m) && object_defines(m, name, version)) return m;
    void* addr = real_lookup(undef, name, version);
    if (!addr) return nullptr;
    struct link_map* m = object_at(addr);
    *known = m != nullptr;
    return m;
  }
  if (handle == RTLD_NEXT) {
    if (!is_initial(undef)) return next_in_own_scope(undef, name, version, known);
    // The objects loaded at start-up after the caller, in load order.
    bool past = false;
    for (struct link_map* m = _r_debug.r_map; m; m = m->l_next) {
      if (m == undef) past = true;
      else if (past && is_initial(m) && !is_vdso(m) && object_defines(m, name, version)) return m;
    }
    return nullptr;
  }
  // A handle: searching its scope changes nothing (glibc adds no dependency).
  void* addr = real_lookup(handle, name, version);
  if (!addr) return nullptr;
  if (struct link_map* m = object_at(addr)) return m;
  // Not inside an object (a thread-local variable): the handle's own, if it defines it.
  auto* h = static_cast<struct link_map*>(handle);
  if (object_defines(h, name, version)) return h;
  *known = false;
  return nullptr;
}

void report(void* handle, const char* name, const char* version, void* caller) {
  struct link_map* from = object_of(caller);  // never null: the program's by default
  const bool special = handle == RTLD_DEFAULT || handle == RTLD_NEXT;
  struct link_map* undef = special ? from : static_cast<struct link_map*>(handle);
  bool known = false;
  struct link_map* def = definer(handle, name, version, undef, &known);
  const char* undef_name = object_name(undef);
  const long undef_ns = namespace_of(undef);
  const char* def_name = def ? object_name(def) : nullptr;
  const long def_ns = def ? namespace_of(def) : -1;
  if (log::enabled(kBindings) && known) {
    log::Event e{def ? log::EventKind::binding : log::EventKind::lookup_error};
    e.file = undef_name;
    e.ns = undef_ns;
    e.symbol = name;
    e.version = version;
    e.to = def_name;
    e.to_ns = def_ns;
    log::emit(e);
  }
  if (log::enabled(kFiles)) {
    log::Event e{log::EventKind::dl_call};
    e.call = version ? "dlvsym" : "dlsym";
    e.file = handle == RTLD_DEFAULT ? "RTLD_DEFAULT" : handle == RTLD_NEXT ? "RTLD_NEXT" : undef_name;
    if (!special) {
      e.ns = undef_ns;
      e.old_ino = object_ino(undef);
      e.opens = undef_ns == LM_ID_BASE ? open_count(undef->l_name) : -1;  // dlmopen's opens are not counted
    }
    e.symbol = name;
    e.version = version;
    e.caller = object_name(from);
    e.caller_ns = special ? undef_ns : namespace_of(from);
    e.to = def_name;
    e.to_ns = def_ns;
    if (!known) e.detail = "where it is defined is not known to the shim";
    log::emit(e);
  }
}

thread_local int t_in_hook = 0;

}  // namespace

void remember_initial_objects() {
  if (g_initial_count.load(std::memory_order_acquire) >= 0) return;
  if (g_initial_taking.test_and_set(std::memory_order_acq_rel)) return;  // another thread is taking it
  int n = 0;
  for (struct link_map* m = _r_debug.r_map; m && n < kMaxInitial; m = m->l_next) g_initial[n++] = m;
  g_initial_count.store(n, std::memory_order_release);
}

struct link_map* object_of(const void* addr) {
  if (struct link_map* m = object_at(const_cast<void*>(addr))) return m;
  return _r_debug.r_map;  // as glibc: an address in no object counts as the program's
}

const char* object_name(const struct link_map* map) {
  if (!map) return "?";
  if (map->l_name && map->l_name[0]) return map->l_name;
  return program_invocation_name ? program_invocation_name : "<main program>";
}

long namespace_of(const struct link_map* map) {
  Lmid_t id = 0;
  if (!map || dlinfo(const_cast<struct link_map*>(map), RTLD_DI_LMID, &id) != 0) return 0;
  return static_cast<long>(id);
}

unsigned long object_ino(const struct link_map* map) {
  // Its .dynamic is mapped from its file (as early as the audit module's
  // la_objopen, when _dl_find_object does not know the object yet).
  FileId id;
  if (!map || !map->l_ld) return 0;
  return self_file_at(reinterpret_cast<unsigned long>(map->l_ld), &id) ? static_cast<unsigned long>(id.ino) : 0;
}

bool is_audit_copy() {
  // Our own .dynamic is in the program's namespace unless ld.so loaded this
  // copy as an audit module (a namespace of its own). Asked early, from the
  // constructor: the list of the program's namespace is there from the start.
  // (Cached in an atomic, not a function-local static: its guard would pull
  // libstdc++'s exception machinery into the library.)
  static std::atomic<int> cached{0};  // 0 unknown, 1 no, 2 yes
  int v = cached.load(std::memory_order_acquire);
  if (v == 0) {
    v = 2;
    for (const struct link_map* m = _r_debug.r_map; m && v == 2; m = m->l_next)
      if (m->l_ld == _DYNAMIC) v = 1;
    cached.store(v, std::memory_order_release);
  }
  return v == 2;
}

}  // namespace tg::dl

namespace tg::dl {
void hooks_ready() { __atomic_store_n(&g_hooks_ready, true, __ATOMIC_RELEASE); }

namespace {
void watch_lookup(void* handle, const char* name, const char* version, void* caller) {
  const int saved_errno = errno;
  const tg::dl::SelfRange self = tg::dl::self_range();
  const auto from = reinterpret_cast<uintptr_t>(caller);
  if (tg::dl::t_in_hook || !name || (from >= self.start && from < self.end) || tg::in_guard()) {
    errno = saved_errno;
    return;
  }
  ++tg::dl::t_in_hook;
  (void)tg::settings();
  if ((tg::log::enabled(tg::kBindings) || tg::log::enabled(tg::kFiles)) && !tg::dl::is_audit_copy()) {
    tg::dl::remember_initial_objects();
    tg::dl::settle_open();  // this thread's last dlopen: the counts it reports
    tg::dl::report(handle, name, version, caller);
  }
  --tg::dl::t_in_hook;
  errno = saved_errno;
}
}  // namespace
}  // namespace tg::dl

extern "C" TG_EARLY void tg_dlsym_enter(void* handle, const char* name, const char* version, void* caller) {
  if (!__atomic_load_n(&tg_real_dlvsym, __ATOMIC_ACQUIRE)) tg::dl::resolve_real();
  if (__atomic_load_n(&tg::dl::g_hooks_ready, __ATOMIC_ACQUIRE)) tg::dl::watch_lookup(handle, name, version, caller);
}
