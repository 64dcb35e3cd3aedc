#include "dl_watch.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dl_bindings.hpp"
#include "elf_dynamic.hpp"
#include "escape.hpp"
#include "fork_gate.hpp"
#include "guard.hpp"
#include "log.hpp"
#include "maps_reader.hpp"
#include "owner_lock.hpp"
#include "real.hpp"
#include "scratch.hpp"
#include "sys.hpp"

extern "C" {
__attribute__((visibility("hidden"))) void* tg_real_dlopen = nullptr;
// glibc's registration of a thread_local destructor (what C++ uses).
int __cxa_thread_atexit_impl(void (*func)(void*), void* obj, void* dso_symbol);
extern void* __dso_handle;
}

namespace tg::dl {
namespace {

// What the shim has seen of each path given to dlopen: how often opened and
// closed, from where, with RTLD_NODELETE or not, and a fresh name in use.
struct OpenRecord {
  char name[1024];
  int opens;
  int closes;
  bool nodelete_mode;
  bool global;       // opened RTLD_GLOBAL at least once
  void* callers[4];  // the first callers, for the backtrace category
  char fresh[1024];  // TRUNCGUARD_RELOAD=fresh: the extra name made for it
  pid_t fresh_pid;   // the process that made it (a forked child has a copy)
  unsigned serial;   // which use of this slot (unique over the process's life)
  unsigned changes;  // bumped at every count of an open or a close (after_close)
  // Fresh: the shim's handles on the object of this name, one per fresh
  // answer counted in `opens`, all on `pinned`. Closed together when the
  // last counted handle is (after_close): never while a dlopen that was
  // answered with its name may not have reached glibc yet.
  int pins;
  void* pinned;
};
constexpr int kRecords = 64;
TG_LARGE_TABLE OpenRecord g_records[kRecords];
int g_record_count = 0;
unsigned g_record_serial = 0;  // under the lock

// The open this thread counted last, until it is known to have worked. The
// trampoline jumps to glibc's dlopen, so the shim never sees its result: an
// open is counted before glibc runs, and settled at this thread's next entry
// into the shim (settle_open), when that dlopen has returned. Index + 1 into
// g_records (0: none) and the record's serial then.
__attribute__((tls_model("initial-exec"))) thread_local int t_unsettled = 0;
__attribute__((tls_model("initial-exec"))) thread_local unsigned t_unsettled_serial = 0;
// A bare name's open is counted under the bare name until then, and moved to
// the name of the object it opened (see settle_open_now): its mode and caller.
__attribute__((tls_model("initial-exec"))) thread_local int t_unsettled_mode = 0;
__attribute__((tls_model("initial-exec"))) thread_local void* t_unsettled_caller = nullptr;
// TRUNCGUARD_RELOAD=fresh answered a dlopen with the new file's object: the
// shim holds a handle on it (a pin) so that nothing unloads it (and frees the
// name glibc is given) before that dlopen has run. A pin counted in the
// object's record is closed with the object's last counted handle
// (after_close). One that could not be counted (the records' lock not to be
// had) is this thread's, closed at its next dl call that is not nested in
// another, or when it ends (release_fresh_pin).
__attribute__((tls_model("initial-exec"))) thread_local void* t_fresh_pin = nullptr;
// How many of the shim's dl hooks this thread is in: more than one is a
// signal handler's dl call (undefined under POSIX, but the shim must not turn
// a program that survives it into one that crashes) interrupting the shim.
// Such a call leaves the interrupted call's state alone (settle_open_now).
__attribute__((tls_model("initial-exec"))) thread_local int t_dl_depth = 0;
struct InDlHook {
  InDlHook() { ++t_dl_depth; }
  ~InDlHook() { --t_dl_depth; }
  InDlHook(const InDlHook&) = delete;
  InDlHook& operator=(const InDlHook&) = delete;
};
// The records' lock (owner_lock.hpp). Held only for a few string compares,
// never across a call that can block on another lock. Another thread holding
// it is waited for (threads that dlopen and dlclose at once must all be
// counted) as long as it is making its way through them, however slowly (a
// holder preempted on a loaded machine: after 200 ms the records were
// skipped, and CI saw a dlopen line without its count); this thread holding
// it (a signal handler that interrupted it here) or a stuck holder is not:
// the records are skipped. A holder that no longer exists (fork() copied the
// lock from a thread the child does not have) is taken over.
owner_lock::Word g_records_lock{0};

struct RecordsLock {
  bool held = false;
  RecordsLock() : held(owner_lock::take(g_records_lock)) {}
  ~RecordsLock() { release(); }
  void release() {
    if (held) owner_lock::release(g_records_lock);
    held = false;
  }
  RecordsLock(const RecordsLock&) = delete;
  RecordsLock& operator=(const RecordsLock&) = delete;
};

// The shim's walks of the loaded objects: fork() waits for them (fork_gate.hpp).
int iterate_objects(int (*callback)(struct dl_phdr_info*, size_t, void*), void* data) {
  return fork_gate::walk(callback, data);
}

// A path could not be given a record (all in use, or too long): from then
// on, a path without one may have open handles nobody counted. Under the lock.
bool g_records_overflowed = false;

// One dlopen of the record's name with `mode`, by `caller` (the first four
// callers are kept for the backtrace category). Under the lock.
void count_open(OpenRecord* r, int mode, void* caller) {
  if (r->opens < 4) r->callers[r->opens] = caller;
  ++r->opens;
  ++r->changes;
  if (mode & RTLD_NODELETE) r->nodelete_mode = true;
  if (mode & RTLD_GLOBAL) r->global = true;
}

// glibc fails these before it looks at the file: nothing to count.
bool valid_mode(int mode) {
  constexpr int kKnown = RTLD_BINDING_MASK | RTLD_NOLOAD | RTLD_DEEPBIND | RTLD_GLOBAL | RTLD_NODELETE | 0x40000000;
  return (mode & ~kKnown) == 0 && (mode & RTLD_BINDING_MASK) != 0;
}

// Opens without a matching dlclose (never below 0). Under the lock.
int handles_open(const OpenRecord& r) { return r.opens > r.closes ? r.opens - r.closes : 0; }

// A record that tells nothing any more: no handle open, no fresh name to
// remove, no RTLD_NODELETE or RTLD_GLOBAL open that outlives its handles.
bool reusable(const OpenRecord& r) {
  return handles_open(r) == 0 && !r.fresh[0] && !r.nodelete_mode && !r.global && r.pins == 0;
}

// Once per process, when the first path goes uncounted.
void warn_overflow_once() {
  static std::atomic<bool> warned{false};
  if (warned.exchange(true)) return;
  char msg[200];
  std::snprintf(msg, sizeof msg,
                "more than %d libraries opened with dlopen are open at once (or a path is over %zu bytes): the "
                "open handles of the others are not counted",
                kRecords, sizeof(OpenRecord::name) - 1);
  log::Event e{log::EventKind::warning};
  e.message = msg;
  log::emit(e);
}

OpenRecord* find_record(const char* name, bool create) {
  OpenRecord* spare = nullptr;
  for (int i = 0; i < g_record_count; ++i) {
    if (std::strcmp(g_records[i].name, name) == 0) return &g_records[i];
    if (!spare && reusable(g_records[i])) spare = &g_records[i];
  }
  if (!create) return nullptr;
  OpenRecord* r = nullptr;
  if (std::strlen(name) < sizeof g_records[0].name)
    r = g_record_count < kRecords ? &g_records[g_record_count++] : spare;
  if (!r) {
    g_records_overflowed = true;
    return nullptr;
  }
  std::memset(r, 0, sizeof *r);
  std::strcpy(r->name, name);
  r->serial = ++g_record_serial;
  return r;
}

// ---- loaded objects

struct Loaded {
  const char* want_name;   // match by name...
  unsigned long want_base; // ...or by base address (0: by name only)
  bool found = false;
  unsigned long base = 0;
  unsigned long first_load = 0;  // address of the first PT_LOAD
  const ElfW(Dyn)* dynamic = nullptr;
  // With want_file: the file mapped at first_load, read in the walk, while
  // glibc keeps the object mapped (it unmaps under the lock the walk holds).
  // Not first_load to look up after the walk: another thread's dlclose may
  // unload the object meanwhile, and another file be loaded at its address
  // (CI's reload dl_edges "8 threads": "p2.so stale: dlopen returns the
  // object already loaded from it", with p1.so's inode).
  bool want_file = false;
  bool file_known = false;
  FileId file{};
};

int find_loaded_cb(struct dl_phdr_info* info, size_t, void* data) {
  auto* l = static_cast<Loaded*>(data);
  const char* name = info->dlpi_name ? info->dlpi_name : "";
  if (std::strcmp(name, l->want_name) != 0) return 0;
  if (l->want_base && info->dlpi_addr != l->want_base) return 0;
  l->found = true;
  l->base = info->dlpi_addr;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD && !l->first_load) l->first_load = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_DYNAMIC) l->dynamic = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + ph.p_vaddr);
  }
  if (l->want_file && l->first_load) l->file_known = self_file_at(l->first_load, &l->file);
  return 1;
}

// ---- other names of a loaded object
//
// glibc knows an object by its file (device and inode), not by a path: a
// dlopen of a symlink or a hard link to a file already loaded returns that
// object (LD_DEBUG=files: "opening file=<its name>"), adds the path to the
// object's names, and from then on matches the path by name, even after the
// file there is replaced. dlclose sees the object's own name (l_name), so
// the shim counts such an open under that name, and remembers the path.
struct Alias {
  char name[sizeof(OpenRecord::name)];
  char target[sizeof(OpenRecord::name)];  // the object's l_name
};
constexpr int kAliases = 32;
TG_LARGE_TABLE Alias g_aliases[kAliases];  // under the records' lock
int g_alias_count = 0;
int g_alias_next = 0;  // the slot reused when all are taken

Alias* find_alias(const char* name) {
  for (int i = 0; i < g_alias_count; ++i)
    if (std::strcmp(g_aliases[i].name, name) == 0) return &g_aliases[i];
  return nullptr;
}

void remember_alias(const char* name, const char* target) {
  if (std::strlen(name) >= sizeof(Alias::name) || std::strlen(target) >= sizeof(Alias::target)) return;
  Alias* a = find_alias(name);
  if (!a) a = g_alias_count < kAliases ? &g_aliases[g_alias_count++] : &g_aliases[g_alias_next++ % kAliases];
  std::strcpy(a->name, name);
  std::strcpy(a->target, target);
}

// The object `target` was unloaded: glibc forgot its other names.
void forget_aliases_of(const char* target) {
  for (int i = 0; i < g_alias_count;)
    if (std::strcmp(g_aliases[i].target, target) == 0) g_aliases[i] = g_aliases[--g_alias_count];
    else ++i;
}

// The names of the loaded objects mapped from the file `want` (up to 4: the
// same file in other namespaces), copied in the walk, while glibc keeps them.
// Not a link_map to read after it: another thread's dlclose may unload the
// object and free its link_map and name meanwhile (CI's reload dl_edges
// "8 threads" read such a name, garbage, and counted a dlopen under it: a
// line without its count). The namespaces are not asked in here: dlinfo in
// here would take glibc's load lock inside its write lock, the reverse of
// dlopen.
struct ByIdNames {
  char name[4][sizeof(OpenRecord::name)];
};
struct ById {
  FileId want;
  int count = 0;
  ByIdNames* names = nullptr;
};

int by_id_cb(struct dl_phdr_info* info, size_t, void* data) {
  auto* b = static_cast<ById*>(data);
  if (!info->dlpi_name || !*info->dlpi_name) return 0;
  unsigned long first_load = 0;
  for (int i = 0; i < info->dlpi_phnum && !first_load; ++i)
    if (info->dlpi_phdr[i].p_type == PT_LOAD) first_load = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
  FileId id;
  if (!first_load || !self_file_at(first_load, &id) || !(id == b->want)) return 0;
  char* name = b->names->name[b->count];
  if (std::snprintf(name, sizeof b->names->name[0], "%s", info->dlpi_name) >= static_cast<int>(sizeof b->names->name[0]))
    return 0;
  return ++b->count == 4;
}

void* open_own_handle(const char* name, int mode);
void close_own_handle(void* h);

// The file an object held by the shim is mapped from (its .dynamic's): while
// held, it can't be unloaded and another file loaded in its place.
bool file_of_pinned(void* pin, FileId* file) {
  const auto* o = static_cast<const struct link_map*>(pin);
  return o->l_ld && self_file_at(reinterpret_cast<unsigned long>(o->l_ld), file);
}

// A handle on the object of the program's namespace loaded from the file `id`
// (null: none, or it was unloaded meanwhile): by the name of an object mapped
// from it, opened RTLD_NOLOAD from the shim (glibc's object of that name in
// the program's namespace, held), and only if that one is mapped from `id`.
// Only a file mapped here is worth the walk.
void* pin_loaded_from_file(const FileId& id) {
  if (process_maps_exec(0, id) != MapsAnswer::mapped) return nullptr;
  Scratch<ByIdNames> names;  // 4 KiB: not on the stack
  if (!names) return nullptr;
  ById b;
  b.want = id;
  b.names = names.get();
  iterate_objects(&by_id_cb, &b);
  for (int i = 0; i < b.count; ++i) {
    void* pin = open_own_handle(names->name[i], RTLD_LAZY | RTLD_NOLOAD);
    if (!pin) continue;
    if (FileId pinned; file_of_pinned(pin, &pinned) && pinned == id) return pin;
    close_own_handle(pin);
  }
  return nullptr;
}

// The name of the object glibc will return for a dlopen of `path` if one is
// loaded (path itself, or the object's name when path is another name for
// its file), else path (a new load gets that name). `buf` holds the other name.
const char* loaded_name_for(const char* path, char* buf, size_t len) {
  Loaded l{path, 0};
  iterate_objects(&find_loaded_cb, &l);
  if (l.found) return path;
  bool known = false;
  {
    RecordsLock lock;
    if (lock.held)
      if (const Alias* a = find_alias(path)) known = std::snprintf(buf, len, "%s", a->target) < static_cast<int>(len);
  }
  if (known) {
    Loaded t{buf, 0};
    iterate_objects(&find_loaded_cb, &t);
    if (t.found) return buf;
  }
  // Not a name glibc knows: it opens the file and compares it with the
  // loaded objects' files. The object's name is read while it is held.
  FileId want;
  void* pin = maps_id_of_path(AT_FDCWD, path, &want) ? pin_loaded_from_file(want) : nullptr;
  if (!pin) return path;
  const bool fits =
      std::snprintf(buf, len, "%s", static_cast<const struct link_map*>(pin)->l_name) < static_cast<int>(len);
  close_own_handle(pin);
  if (!fits) return path;
  RecordsLock lock;
  if (lock.held) remember_alias(path, buf);
  return buf;
}

// The object `name` was unloaded: glibc forgot its other names, and a fresh
// name made for it is not needed any more.
// The name is removed after the lock is let go: unlinkat waits for the
// directory's lock, held by whatever else works in that directory (measured:
// up to 14 ms), and the records' lock is never held across such a wait. The
// name is unique (pid and counter), and no longer in a record meanwhile.
void forget_unloaded(const char* name) {
  char fresh[sizeof(OpenRecord::fresh)];
  {
    RecordsLock lock;
    if (!lock.held) return;
    forget_aliases_of(name);
    OpenRecord* r = find_record(name, false);
    if (!r || !r->fresh[0]) return;
    std::memcpy(fresh, r->fresh, sizeof fresh);
    r->fresh[0] = '\0';
  }
  sys::unlinkat(AT_FDCWD, fresh, 0);
}

// The shim's own handles (in any thread), and a count of those taken and
// released: while any exists, "still loaded" may be their doing.
std::atomic<int> g_pins{0};
std::atomic<unsigned> g_pin_events{0};

// The last process that made a fresh name in g_records (0: none made): a
// forked child has a copy of the records, naming its parent's files.
std::atomic<pid_t> g_fresh_maker{0};

// A handle of the shim's own (glibc's dlopen: null where it fails, its
// dlerror() text left for the caller to read); close it with close_own_handle.
void* open_own_handle(const char* name, int mode) {
  using DlopenFn = void* (*)(const char*, int);
  auto real_dlopen = reinterpret_cast<DlopenFn>(__atomic_load_n(&tg_real_dlopen, __ATOMIC_ACQUIRE));
  g_pins.fetch_add(1, std::memory_order_acq_rel);
  g_pin_events.fetch_add(1, std::memory_order_acq_rel);
  void* h = real_dlopen && TG_REAL(dlclose) ? real_dlopen(name, mode) : nullptr;
  if (!h) {
    g_pins.fetch_sub(1, std::memory_order_acq_rel);
    g_pin_events.fetch_add(1, std::memory_order_acq_rel);
  }
  return h;
}

// Closes a handle of the shim's own. Another thread may have closed the
// program's last one meanwhile: then this unloads the object, and a fresh
// name made for it is removed here, as after the program's dlclose.
void close_own_handle(void* h) {
  if (!h) return;
  const auto* lm = static_cast<const struct link_map*>(h);
  char name[sizeof(OpenRecord::name)];
  const bool named = lm->l_name && std::snprintf(name, sizeof name, "%s", lm->l_name) < static_cast<int>(sizeof name);
  const unsigned long base = lm->l_addr;
  TG_REAL(dlclose)(h);  // there is one: open_own_handle got h
  g_pins.fetch_sub(1, std::memory_order_acq_rel);
  g_pin_events.fetch_add(1, std::memory_order_acq_rel);
  if (!named) return;
  {
    RecordsLock lock;
    const OpenRecord* r = lock.held ? find_record(name, false) : nullptr;
    if (!r || !r->fresh[0]) return;  // only a fresh name is worth the look
  }
  Loaded l{name, base};
  iterate_objects(&find_loaded_cb, &l);
  if (!l.found) forget_unloaded(name);
}

// The open counted last by this thread (see t_unsettled): its dlopen has
// returned by now. What it opened is asked of glibc itself: once a dlopen has
// worked, glibc knows the object by the name it was given (its own name, or
// one of its other names: a symlink or a hard link to its file,
// "$ORIGIN/...", a bare name found on a search path), so an RTLD_NOLOAD by
// that name returns it; if it failed (no such file, not ELF, a missing
// symbol or dependency, RTLD_NOLOAD of something not loaded), it opened
// nothing. That handle is closed at once (the program's keeps the object),
// and the dlerror() text it may leave is replaced by the program's dl call
// this runs before. An open that got an object with another name is
// counted under that one, the name its dlclose counts under.
void release_fresh_pin() {
  void* pin = t_fresh_pin;
  t_fresh_pin = nullptr;
  close_own_handle(pin);
}

// A thread that ends with a pin (no dl call after its dlopen, a worker that
// loads a plugin for others) gives it up then: glibc runs the thread_local
// destructors registered so at thread exit. Not a pthread key's destructor:
// the process has 1024 keys, and they are the program's (one taken was one
// fewer for it). Registered directly: a C++ thread_local would link in
// libstdc++'s runtime, and export it.
__attribute__((tls_model("initial-exec"))) thread_local bool t_pin_release_registered = false;

void settle_open_now() {
  if (t_dl_depth > 0) return;  // nested in a dlopen hook, whose open has yet to run
  release_fresh_pin();
  const int k = t_unsettled;
  if (!k) return;
  t_unsettled = 0;
  OpenRecord* r = &g_records[k - 1];
  char name[sizeof r->name];
  {
    RecordsLock lock;
    if (!lock.held || r->serial != t_unsettled_serial) return;
    std::memcpy(name, r->name, sizeof name);
  }
  char opened[sizeof r->name] = "";
  if (void* h = open_own_handle(name, RTLD_LAZY | RTLD_NOLOAD)) {
    const auto* lm = static_cast<const struct link_map*>(h);
    std::snprintf(opened, sizeof opened, "%s", lm->l_name ? lm->l_name : "");
    close_own_handle(h);
  }
  if (opened[0] && std::strcmp(opened, name) == 0) return;
  RecordsLock lock;
  if (!lock.held || r->serial != t_unsettled_serial || r->opens <= r->closes) return;
  --r->opens;
  ++r->changes;
  if (r->opens < 4) r->callers[r->opens] = nullptr;
  if (r->opens == 0) r->nodelete_mode = r->global = false;  // no open of it ever worked
  if (!opened[0]) return;
  if (std::strchr(name, '/')) remember_alias(name, opened);  // glibc matches it by name from now on
  if (OpenRecord* t = find_record(opened, true)) count_open(t, t_unsettled_mode, t_unsettled_caller);
}

using elf::DynInfo;
using elf::read_dynamic;
using elf::unique_symbol;

// The address of a function in any loaded object (the program's libstdc++'s
// demangler), found in the symbol tables: no dlsym, which would leave a
// dlerror() message for the program when the symbol is missing; under the
// loader's lock, as another thread may be closing a plugin meanwhile.
void* find_loaded_symbol(const char* name) { return elf::find_loaded_function(name, &iterate_objects); }

struct NeededBy {
  const char* soname;
  unsigned long self_base;
  char who[256] = {};
};

int needed_by_cb(struct dl_phdr_info* info, size_t, void* data) {
  auto* nb = static_cast<NeededBy*>(data);
  if (info->dlpi_addr == nb->self_base) return 0;
  const ElfW(Dyn)* dyn = nullptr;
  for (int i = 0; i < info->dlpi_phnum; ++i)
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
      dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
  if (!dyn) return 0;
  DynInfo di = read_dynamic(dyn, info->dlpi_addr);
  if (!di.strtab) return 0;
  for (const ElfW(Dyn)* d = dyn; d->d_tag != DT_NULL; ++d) {
    if (d->d_tag == DT_NEEDED && std::strcmp(di.strtab + d->d_un.d_val, nb->soname) == 0) {
      const char* n = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "the program";
      std::snprintf(nb->who, sizeof nb->who, "%s", n);
      return 1;
    }
  }
  return 0;
}

void describe_caller(void* caller, char* out, size_t len) {
  Dl_info info{};
  if (caller && dladdr(caller, &info) && info.dli_fname) {
    char esc[256];
    escape(info.dli_fname, esc, sizeof esc);
    char sym[200];  // an ELF symbol's name is any bytes: escaped too
    if (info.dli_sname) escape(info.dli_sname, sym, sizeof sym);
    if (info.dli_sname)
      std::snprintf(out, len, "%s (%s+0x%lx)", esc, sym,
                    static_cast<unsigned long>(static_cast<char*>(caller) - static_cast<char*>(info.dli_saddr)));
    else
      std::snprintf(out, len, "%s+0x%lx", esc,
                    static_cast<unsigned long>(static_cast<char*>(caller) - static_cast<char*>(info.dli_fbase)));
  } else {
    std::snprintf(out, len, "%p", caller);
  }
}


// Never jumped to unless glibc has no dlopen at all: fail like a dlopen.
void* no_dlopen(const char*, int) { return nullptr; }

void resolve_real_dlopen() {
  if (!__atomic_load_n(&tg_real_dlopen, __ATOMIC_ACQUIRE)) {
    void* f = dlsym(RTLD_NEXT, "dlopen");
    if (!f) f = dlvsym(RTLD_NEXT, "dlopen", "GLIBC_2.34");
    if (!f) f = dlvsym(RTLD_NEXT, "dlopen", "GLIBC_2.2.5");
    if (!f) f = reinterpret_cast<void*>(&no_dlopen);
    __atomic_store_n(&tg_real_dlopen, f, __ATOMIC_RELEASE);
  }
}

// Can glibc map this file without reading past its end (a copy still being
// written, a file cut short: glibc would map it and the program die of
// SIGBUS)? An x86-64 ELF shared object whose loadable segments are all in
// the file. Its fd stays open in *fd, for the caller to check the inode it
// links. False with the reason in `why`.
bool complete_shared_object(const char* path, sys::Fd* fd, struct stat* st, char* why, size_t len) {
  fd->reset(sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd->ok()) return std::snprintf(why, len, "cannot read it: %s", strerrordesc_np(-fd->get())), false;
  if (sys::fstat(fd->get(), st) != 0 || !S_ISREG(st->st_mode))
    return std::snprintf(why, len, "%s", "it is not a regular file"), false;
  ElfW(Ehdr) eh;
  const bool header = sys::pread(fd->get(), &eh, sizeof eh, 0) == static_cast<long>(sizeof eh) &&
                      std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64 &&
                      eh.e_machine == EM_X86_64 && eh.e_type == ET_DYN && eh.e_phentsize == sizeof(ElfW(Phdr)) &&
                      eh.e_phnum > 0 && eh.e_phnum <= 64;
  ElfW(Phdr) ph[64];
  const long phsize = header ? static_cast<long>(eh.e_phnum * sizeof(ElfW(Phdr))) : 0;
  bool complete = header && sys::pread(fd->get(), ph, static_cast<size_t>(phsize), static_cast<off_t>(eh.e_phoff)) == phsize;
  for (int i = 0; complete && i < eh.e_phnum; ++i)
    if (ph[i].p_type == PT_LOAD && ph[i].p_offset + ph[i].p_filesz > static_cast<uint64_t>(st->st_size)) complete = false;
  if (!complete)
    return std::snprintf(why, len, "it is not a complete x86-64 shared object (%lld bytes)",
                         static_cast<long long>(st->st_size)),
           false;
  return true;
}

// `pin`, a handle on the new file's object, is this dlopen's; the object's
// own name (glibc's string, kept while pinned) is the name for glibc.
const char* pin_for_this_dlopen(void* pin, void** out) {
  *out = pin;
  return static_cast<const struct link_map*>(pin)->l_name;
}

// A pin that could not be counted with its dlopen: this thread's until its
// next dl call. If it has one already and this call is nested in another (which
// may not have reached glibc's dlopen yet), neither can be let go: false.
bool keep_uncounted_pin(void* pin) {
  if (t_fresh_pin && t_dl_depth > 1) return false;
  release_fresh_pin();
  t_fresh_pin = pin;
  if (!t_pin_release_registered)
    t_pin_release_registered =
        __cxa_thread_atexit_impl([](void*) { release_fresh_pin(); }, nullptr, &__dso_handle) == 0;
  return true;
}

// TRUNCGUARD_RELOAD=fresh: load the new file under a name of its own, next
// to it (so $ORIGIN resolves the same), as hot-reload tools do: a hard link,
// removed when the object is unloaded. The shim loads it first, with the
// program's mode, and keeps that handle (`*pin`, see t_fresh_pin): if glibc
// can't load it (a missing symbol or dependency), the program gets what it
// would get without the shim, never a failed dlopen.
// Returns the name for the program's dlopen (glibc's copy: it reads it after
// we return), or null with the reason in `why`. `*reused`: the new file was
// loaded already, and the name is that object's.
const char* load_fresh(const char* file, const FileId& id, int mode, void* caller, bool* reused, void** pin_out,
                       char* why, size_t len) {
  *reused = false;
  if (namespace_of(object_of(caller)) != LM_ID_BASE)
    return std::snprintf(why, len, "%s", "the caller is in another namespace (dlmopen)"), nullptr;
  sys::Fd fd;
  struct stat st;
  if (!complete_shared_object(file, &fd, &st, why, len)) return nullptr;
  // The new file may be loaded already (a fresh copy made for an earlier
  // dlopen of the path, or a dlopen by another of its names): glibc returns
  // that object for any new name of the file, and keeps each such name for
  // good (so a fresh name per dlopen would pile up, in glibc and on disk).
  if (void* pin = pin_loaded_from_file(id)) return *reused = true, pin_for_this_dlopen(pin, pin_out);
  char fresh[sizeof(OpenRecord::fresh)];
  const char* slash = std::strrchr(file, '/');  // there is one: file is a path
  // An absolute name: a relative one is removed relative to the current
  // directory of when the copy unloads (after a chdir, it stayed on disk).
  char cwd[sizeof fresh] = "";
  if (file[0] != '/' && (sys::call(SYS_getcwd, cwd, sizeof cwd) <= 0 || cwd[0] != '/'))
    return std::snprintf(why, len, "%s", "the current directory has no name to make the new name absolute"), nullptr;
  static std::atomic<unsigned> counter{0};
  char esc[400];
  // The name holds this process's pid: one a process of the same pid left
  // there (killed before it could remove it: the pid is reused) is taken by
  // the next number, not given up on ("File exists"), and left alone.
  int e = -EEXIST;
  for (int attempt = 0; attempt < 16 && e == -EEXIST; ++attempt) {
    const int n = std::snprintf(fresh, sizeof fresh, "%s%s%.*s/.%.*s.tg-reload-%d-%u", cwd, cwd[0] ? "/" : "",
                                static_cast<int>(slash - file), file, 180, slash + 1, static_cast<int>(sys::getpid()),
                                counter.fetch_add(1) + 1);
    if (n <= 0 || static_cast<size_t>(n) >= sizeof fresh)
      return std::snprintf(why, len, "%s", "the name is too long for another next to it"), nullptr;
    // The file itself where the path is a symlink (libfoo.so -> libfoo.so.1):
    // linkat would link the symlink.
    e = sys::linkat(AT_FDCWD, file, AT_FDCWD, fresh, AT_SYMLINK_FOLLOW);
  }
  escape(fresh, esc, sizeof esc);
  if (e != 0) return std::snprintf(why, len, "cannot link it as %s: %s", esc, strerrordesc_np(-e)), nullptr;
  struct stat linked_st;
  if (sys::fstatat(AT_FDCWD, fresh, &linked_st, AT_SYMLINK_NOFOLLOW) != 0 || linked_st.st_ino != st.st_ino ||
      linked_st.st_dev != st.st_dev) {  // replaced again between the check and the link
    sys::unlinkat(AT_FDCWD, fresh, 0);
    return std::snprintf(why, len, "%s", "it was replaced again meanwhile"), nullptr;
  }
  OpenRecord* r = nullptr;
  {
    RecordsLock lock;
    r = lock.held ? find_record(fresh, true) : nullptr;
    if (r) std::snprintf(r->fresh, sizeof r->fresh, "%s", fresh);  // fits: same size; keeps the record
    if (r) r->fresh_pid = sys::getpid(), g_fresh_maker.store(r->fresh_pid, std::memory_order_release);
  }
  if (!r) {
    sys::unlinkat(AT_FDCWD, fresh, 0);  // could not remember to remove it: don't make it
    return std::snprintf(why, len, "%s", "the shim's table of records is full"), nullptr;
  }
  void* h = open_own_handle(r->name, mode);
  if (!h) {
    const char* err = dlerror();
    char err_esc[512];
    escape(err ? err : "no dlopen", err_esc, sizeof err_esc);
    std::snprintf(why, len, "glibc cannot load it: %s", err_esc);
    sys::unlinkat(AT_FDCWD, fresh, 0);
    RecordsLock lock;
    if (lock.held) r->fresh[0] = '\0';  // the record may be reused
    return nullptr;
  }
  if (std::strcmp(static_cast<const struct link_map*>(h)->l_name, r->name) != 0) {
    // Another thread loaded the new file meanwhile: glibc returned its object.
    sys::unlinkat(AT_FDCWD, fresh, 0);
    RecordsLock lock;
    if (lock.held) r->fresh[0] = '\0';
    lock.release();
    return *reused = true, pin_for_this_dlopen(h, pin_out);
  }
  return pin_for_this_dlopen(h, pin_out);
}

// Stale: `file` names an object already loaded (as `loaded_as`: file, or
// the object's name when file is another name glibc knows it by), and the
// file there now is another inode. glibc will hand back the old object
// without looking. A fresh answer comes with its pin in `*pin`.
void check_stale(const char* file, const char* loaded_as, int mode, void* caller, const char** load_as, void** pin) {
  Loaded l{loaded_as, 0};
  l.want_file = true;
  iterate_objects(&find_loaded_cb, &l);
  if (!l.found || !l.file_known) return;
  const FileId loaded = l.file;
  FileId on_disk;
  if (!maps_id_of_path(AT_FDCWD, file, &on_disk)) return;
  if (loaded == on_disk) return;

  // Opens of it without a matching dlclose; -1: none was counted (a
  // DT_NEEDED or another path to the file loaded it); -2: the records could
  // not be read.
  int open_handles = -2;
  bool nodelete_mode = false;
  void* callers[4] = {};
  {
    RecordsLock lock;
    if (lock.held) {
      open_handles = g_records_overflowed ? -2 : -1;
      if (OpenRecord* r = find_record(loaded_as, false)) {
        open_handles = handles_open(*r);
        nodelete_mode = r->nodelete_mode;
        std::memcpy(callers, r->callers, sizeof callers);
      }
    }
  }
  // A NODELETE asked for says why it stays loaded (the dlclose's note about
  // it is in the files category only), as does an STB_GNU_UNIQUE symbol
  // (glibc never unloads it either): closing every handle can't unload it,
  // the advice the line gave ("0 opens without a matching dlclose keep it
  // loaded; close every handle first" where every one was closed). Pinned
  // while its dynamic section is read, as in after_close.
  // Not loaded any more (the object that held it, or another thread's last
  // handle, was closed since it was looked up; the pin's dlopen waited for
  // that dlclose): the dlopen loads the file there now, nothing is stale.
  // (It said "dlopen returns the object already loaded", and the program got
  // the new file.)
  bool nodelete_flag = false, unique = false;
  if (!nodelete_mode) {
    void* pin = open_own_handle(loaded_as, RTLD_LAZY | RTLD_NOLOAD);
    if (!pin) return;
    const auto* pinned = static_cast<const struct link_map*>(pin);
    // What is pinned is what has the name now: other threads may have
    // unloaded the object found above and loaded the name again meanwhile,
    // from the file there now. glibc returns that one: nothing is stale.
    if (FileId pinned_file; file_of_pinned(pin, &pinned_file) && !(pinned_file == loaded)) return close_own_handle(pin);
    const DynInfo di = pinned->l_ld ? read_dynamic(pinned) : DynInfo{};
    nodelete_flag = di.flags_1 & DF_1_NODELETE;
    unique = !nodelete_flag && unique_symbol(di);
    close_own_handle(pin);
  }
  const char* never = nodelete_mode   ? "it was opened with RTLD_NODELETE"
                      : nodelete_flag ? "it was built with -z nodelete (DF_1_NODELETE)"
                      : unique ? "it defines an STB_GNU_UNIQUE symbol (build with -fno-gnu-unique to allow unloading)"
                               : nullptr;
  const Settings& s = settings();
  char msg[1600];
  char not_fresh[640] = "";  // TRUNCGUARD_RELOAD=fresh, and it could not be done: why
  // RTLD_NOLOAD asks what is loaded: glibc's answer, nothing new loaded.
  if (s.reload == Reload::fresh && !(mode & RTLD_NOLOAD)) {
    bool reused = false;
    if (const char* fresh = load_fresh(file, on_disk, mode, caller, &reused, pin, not_fresh, sizeof not_fresh)) {
      *load_as = fresh;
      char esc[sizeof(OpenRecord::fresh) + 64];
      escape(fresh, esc, sizeof esc);
      std::snprintf(msg, sizeof msg,
                    reused ? "is already loaded [ino %lu] but the file is now [ino %lu], loaded already as %.600s: "
                             "returning that object (TRUNCGUARD_RELOAD=fresh)"
                           : "is already loaded [ino %lu] but the file is now [ino %lu]: loading the new file as %.600s "
                             "(TRUNCGUARD_RELOAD=fresh); two versions are now loaded",
                    static_cast<unsigned long>(loaded.ino), static_cast<unsigned long>(on_disk.ino), esc);
      if (log::enabled(kReloads)) log::note(file, "fresh", msg);
      return;
    }
  }
  char held_by[320];
  const char* also = never ? ", and it never unloads: " : "";
  if (open_handles == 0)
    std::snprintf(held_by, sizeof held_by, "every handle was closed, but %s%s",
                  never ? "it never unloads: "
                        : "it is still loaded (another object holds it, or glibc marked it NODELETE)",
                  never ? never : "");
  else if (open_handles > 0)
    std::snprintf(held_by, sizeof held_by, "%d open%s without a matching dlclose keep%s it loaded%s%s", open_handles,
                  open_handles == 1 ? "" : "s", open_handles == 1 ? "s" : "", also, never ? never : "");
  else
    std::snprintf(held_by, sizeof held_by, "%s%s%s",
                  open_handles == -1 ? "no dlopen of it was counted (a DT_NEEDED, or a dlopen by another path "
                                       "to the file, loaded it)"
                                     : "its open handles could not be counted",
                  also, never ? never : "");
  std::snprintf(msg, sizeof msg,
                "stale: dlopen returns the object already loaded from it [ino %lu], not the file there now "
                "[ino %lu]; %s%s%s",
                static_cast<unsigned long>(loaded.ino), static_cast<unsigned long>(on_disk.ino), held_by,
                (mode & RTLD_NOLOAD) ? ""
                : not_fresh[0]      ? "; TRUNCGUARD_RELOAD=fresh could not load the new file: "
                : open_handles == 0 || never ? "; set TRUNCGUARD_RELOAD=fresh to load the new file"
                // What a DT_NEEDED loaded never unloads: only fresh helps.
                : open_handles == -1 ? "; set TRUNCGUARD_RELOAD=fresh to load the new file (what a DT_NEEDED "
                                       "loaded never unloads; handles opened by another path: close them)"
                                    : "; close every handle first, or set TRUNCGUARD_RELOAD=fresh",
                not_fresh);
  if (log::enabled(kReloads)) log::note(file, "stale", msg);
  if (log::enabled(kBacktrace)) {
    for (void* c : callers) {
      if (!c) continue;
      char where[512];
      describe_caller(c, where, sizeof where);
      std::snprintf(msg, sizeof msg, "a handle still open was opened at %s", where);
      log::note(file, "stale_handle", msg);
    }
  }
  (void)caller;
}

}  // namespace

void settle_open() { settle_open_now(); }

namespace {
// This process's fresh names, one at a time, each removed after the lock is
// let go (see forget_unloaded). Not inlined: its 1 KiB buffer stays out of
// the frame of every exit and exec, which returns before it.
__attribute__((noinline)) void remove_fresh_names_of(pid_t me) {
  char fresh[sizeof(OpenRecord::fresh)];
  for (int i = 0;; ++i) {
    {
      RecordsLock lock;
      if (!lock.held) return;
      while (i < kRecords && !(g_records[i].fresh[0] && g_records[i].fresh_pid == me)) ++i;
      if (i >= kRecords) return;
      std::memcpy(fresh, g_records[i].fresh, sizeof fresh);
      g_records[i].fresh[0] = '\0';
    }
    sys::unlinkat(AT_FDCWD, fresh, 0);
  }
}
}  // namespace

void remove_fresh_names() {
  // A vfork child (its parent's records, in its parent's memory) and a forked
  // one that made none stop here, before the lock: the names are their parent's.
  // A process that made none pays one load (every _exit comes here).
  const pid_t maker = g_fresh_maker.load(std::memory_order_acquire);
  if (maker == 0) return;
  const pid_t me = sys::getpid();
  if (maker != me) return;
  remove_fresh_names_of(me);
}

int open_count(const char* name) {
  RecordsLock lock;
  const OpenRecord* r = lock.held && name ? find_record(name, false) : nullptr;
  return r ? handles_open(*r) : -1;
}

bool opened_global(const char* name) {
  RecordsLock lock;
  const OpenRecord* r = lock.held && name ? find_record(name, false) : nullptr;
  return r && r->global;
}

void before_close(void* handle, void* caller, CloseWatch* w) {
  w->valid = false;
  settle_open_now();
  struct link_map* lm = nullptr;
  if (!handle || dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm || !lm->l_name) return;
  w->base = lm->l_addr;
  w->caller = caller;
  std::snprintf(w->name, sizeof w->name, "%s", lm->l_name);
  w->ns = namespace_of(lm);
  if (log::enabled(kFiles)) {
    w->caller_ns = namespace_of(object_of(caller));
    w->ino = object_ino(lm);
  }
  w->valid = w->name[0] != '\0';
}

namespace {
// Category files: one line per dlclose, after it. No dl call here (dlinfo
// included): a failed dlclose's dlerror() text is the program's to read.
void report_close(const CloseWatch& w, int result, bool unloaded, bool nested = false) {
  if (!log::enabled(kFiles)) return;
  log::Event e{log::EventKind::dl_call};
  e.call = "dlclose";
  e.file = w.name;
  e.ns = w.ns;
  e.caller = object_name(object_of(w.caller));
  e.caller_ns = w.caller_ns;
  e.old_ino = w.ino;
  e.opens = w.ns == LM_ID_BASE ? open_count(w.name) : -1;  // dlmopen's opens are not counted
  e.detail = result != 0 ? "failed"
             : unloaded  ? "unloaded"
             : nested    ? "deferred"  // to the enclosing dlclose, which unloads it if nothing else holds it
                         : "still loaded";
  log::emit(e);
}
}  // namespace

namespace {
// Are handles counted under another path to `name`'s file? A thread whose
// dlopen by a symlink raced another thread's first load of the file by its
// path counted its open under the symlink's name, and keeps it there until
// its next dl call settles it (settle_open_now): until then the object looks
// held by nothing the shim counted. (CI saw 10 false "glibc marked it
// NODELETE" notes in one run of reload dl_edges' 8 threads opening a path and
// a symlink to it; this is the way the code allows it, reasoned, not caught
// in 70 runs since.) Asked only where nothing else explains why the object
// stayed loaded.
__attribute__((noinline)) bool handles_under_another_name(const char* name) {
  struct stat want;
  if (sys::fstatat(AT_FDCWD, name, &want, 0) != 0) return false;
  char other[sizeof(OpenRecord::name)];
  for (int i = 0;; ++i) {
    {
      RecordsLock lock;
      if (!lock.held) return false;
      while (i < g_record_count && (handles_open(g_records[i]) == 0 || !std::strchr(g_records[i].name, '/') ||
                                    std::strcmp(g_records[i].name, name) == 0))
        ++i;
      if (i >= g_record_count) return false;
      std::memcpy(other, g_records[i].name, sizeof other);
    }
    struct stat st;
    if (sys::fstatat(AT_FDCWD, other, &st, 0) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino)
      return true;
  }
}
}  // namespace

void after_close(const CloseWatch& w, int result, bool nested) {
  if (!w.valid) return;
  if (result != 0) return report_close(w, result, false);
  if (w.ns != LM_ID_BASE) {
    // dlmopen is not watched: its objects' opens are not counted, so neither
    // are their closes (the records are the program's namespace's), and no
    // note (the shim can't pin an object in another namespace by name).
    Loaded l{w.name, w.base};
    iterate_objects(&find_loaded_cb, &l);
    return report_close(w, result, !l.found, nested);
  }
  int pins = 0;  // threads' pins to close: no dlopen of it is pending any more
  void* pinned_by_threads = nullptr;
  unsigned changes = 0;  // the record's count of opens and closes, this close counted
  {
    RecordsLock lock;
    if (lock.held)
      if (OpenRecord* r = find_record(w.name, false)) {
        if (r->closes < r->opens) ++r->closes;
        changes = ++r->changes;
        // A dlopen is counted before it runs: with none open, every dlopen
        // answered with this object is past glibc, and the pins go with it.
        if (handles_open(*r) == 0 && r->pins > 0) {
          pins = r->pins;
          pinned_by_threads = r->pinned;
          r->pins = 0;
        }
      }
  }
  for (; pins > 0; --pins) close_own_handle(pinned_by_threads);
  Loaded l{w.name, w.base};
  iterate_objects(&find_loaded_cb, &l);
  report_close(w, result, !l.found, nested);
  if (!l.found) return forget_unloaded(w.name);
  // The note: in reloads where the object will not unload whatever the
  // program closes and nobody asked for that (what to act on); where only
  // its own handles keep it (ordinary reference counting: one per dlclose
  // but the last) or a NODELETE asked for, in files.
  if (!(log::enabled(kReloads) || log::enabled(kFiles)) || nested) return;
  // Still loaded: keep it so while we read its tables (another thread may
  // close it meanwhile), and say why it stayed.
  void* pin = open_own_handle(w.name, RTLD_LAZY | RTLD_NOLOAD);
  auto unpin = [&] { close_own_handle(pin); };
  if (!pin) return;
  // What is pinned is what has the name now: other threads may have unloaded
  // the object found above and loaded the file again, elsewhere, meanwhile.
  // Then the one the program closed is gone (no note), and the tables read
  // below are the pinned object's, never the address found before the pin.
  const auto* pinned = static_cast<const struct link_map*>(pin);
  if (pinned->l_addr != w.base) return unpin();
  char why[1024];
  size_t o = 0;
  auto add = [&](const char* fmt, auto... args) {
    if (o < sizeof why) {
      int n = std::snprintf(why + o, sizeof why - o, fmt, args...);
      if (n > 0) o += static_cast<size_t>(n);
    }
  };
  int open_handles = 0;
  bool counted = false;  // its dlopen calls were counted: by this path, and the records could be read
  bool nodelete_mode = false;
  void* callers[4] = {};
  char other_name[sizeof(Alias::name)] = "";  // a name it was also opened by (a symlink, a hard link)
  bool raced = false;
  {
    RecordsLock lock;
    if (lock.held)
      if (OpenRecord* r = find_record(w.name, false)) {
        // Another thread counted an open or a close of it since this close
        // did: its dlclose may have run after our pin, which alone then
        // holds the object, and the counts would blame glibc (a false
        // "marked it NODELETE"). Its reference counting, not this close's
        // to tell: no note (our pin is closed once the lock is let go).
        raced = r->changes != changes;
        counted = true;
        open_handles = handles_open(*r);
        nodelete_mode = r->nodelete_mode;
        std::memcpy(callers, r->callers, sizeof callers);
        for (int i = 0; i < g_alias_count && !other_name[0]; ++i)
          if (std::strcmp(g_aliases[i].target, w.name) == 0) std::memcpy(other_name, g_aliases[i].name, sizeof other_name);
      }
  }
  if (raced) return unpin();
  if (open_handles > 0) {
    char where[512] = "";
    if (callers[0]) describe_caller(callers[0], where, sizeof where);
    char other[300] = "";
    if (other_name[0]) escape(other_name, other, sizeof other);
    add("%d handle%s still open%s%s%s%s%s", open_handles, open_handles == 1 ? "" : "s", where[0] ? ", opened at " : "",
        where, other[0] ? " (it was also opened as " : "", other, other[0] ? ", another name for its file)" : "");
  }
  DynInfo di = pinned->l_ld ? read_dynamic(pinned) : DynInfo{};
  if (nodelete_mode) add("%sopened with RTLD_NODELETE", o ? "; " : "");
  if (di.flags_1 & DF_1_NODELETE) add("%sbuilt with -z nodelete (DF_1_NODELETE)", o ? "; " : "");
  // The reasons after it: it never unloads, though nobody asked for that.
  // A NODELETE that the program or the library asked for is no surprise:
  // binutils' ar, nm and ranlib dlopen and dlclose every bfd plugin
  // (LLVMgold is -z nodelete) for each file, three notes per run in every
  // build. Where it matters, a reload, the stale line names it.
  const size_t asked_part = o;
  if (const char* u = unique_symbol(di)) {
    // Demangled with the program's own libstdc++ where one is loaded (a C++
    // plugin usually brings it): linking a demangler into the shim would cost
    // every process ~100 KiB. Without one, the mangled name, for c++filt.
    using Demangle = char* (*)(const char*, char*, size_t*, int*);
    auto demangle = reinterpret_cast<Demangle>(find_loaded_symbol("__cxa_demangle"));
    int status = -1;
    char* demangled = demangle ? demangle(u, nullptr, nullptr, &status) : nullptr;
    const bool readable = status == 0 && demangled;
    char esc[300];
    escape(readable ? demangled : u, esc, sizeof esc);
    free(demangled);
    add("%sit defines the STB_GNU_UNIQUE symbol %s%s, so glibc never unloads it (g++ emits these for static "
        "variables in inline functions and templates; build with -fno-gnu-unique to allow unloading)",
        o ? "; " : "", esc, readable || std::strncmp(u, "_Z", 2) != 0 ? "" : " (c++filt prints it as C++)");
  }
  if (di.soname >= 0 && di.strtab) {
    NeededBy nb{di.strtab + di.soname, pinned->l_addr};
    iterate_objects(&needed_by_cb, &nb);
    if (nb.who[0]) {
      char esc[300];
      escape(nb.who, esc, sizeof esc);
      add("%s%s depends on it (DT_NEEDED)", o ? "; " : "", esc);
    }
  }
  const bool unexplained = o == 0;
  const bool never_unloads = unexplained || o > asked_part;
  if (!log::enabled(never_unloads ? kReloads : kFiles)) return unpin();
  if (unexplained)
    add("%s%s", counted ? "" : "a handle the shim could not count may still be open (a dlopen by another path "
        "to the file), or ",
        "glibc marked it NODELETE or another object holds it: typically a symbol of it was looked up with "
        "dlsym(RTLD_DEFAULT) or bound by an object that is never unloaded (the program, a preloaded library), "
        "or thread_local destructors are pending; LD_DEBUG=bindings shows glibc's own 'marking ... as NODELETE'");
  unpin();
  if (unexplained) {
    // Nothing the shim can name holds it, unless threads raced: another
    // thread closed its last handle meanwhile (a pin, ours or another
    // thread's, then kept it loaded) or opened one. Asked again with no pin
    // in place or taken meanwhile.
    const unsigned events = g_pin_events.load(std::memory_order_acquire);
    const int pins = g_pins.load(std::memory_order_acquire);
    Loaded again{w.name, w.base};
    iterate_objects(&find_loaded_cb, &again);
    if (!again.found || pins != 0 || g_pin_events.load(std::memory_order_acquire) != events ||
        (counted && open_count(w.name) != 0) || handles_under_another_name(w.name))
      return;
  }
  char msg[1200];
  std::snprintf(msg, sizeof msg, "is still loaded after dlclose: %s", why);
  log::note(w.name, "not_unloaded", msg);
}

}  // namespace tg::dl

namespace tg::dl {
namespace {
const char* mode_text(int mode, char* buf, size_t len) {
  std::snprintf(buf, len, "%s%s%s%s%s", (mode & RTLD_NOW) ? "RTLD_NOW" : "RTLD_LAZY",
                (mode & RTLD_GLOBAL) ? "|RTLD_GLOBAL" : "", (mode & RTLD_NODELETE) ? "|RTLD_NODELETE" : "",
                (mode & RTLD_NOLOAD) ? "|RTLD_NOLOAD" : "", (mode & RTLD_DEEPBIND) ? "|RTLD_DEEPBIND" : "");
  return buf;
}

// Category files: one line per dlopen, before glibc looks at it: so it
// gives the handles of that object already open, not a count that would
// include an open that may yet fail.
void report_open(const char* file, int mode, void* caller, int already_open) {
  log::Event e{log::EventKind::dl_call};
  e.call = "dlopen";
  struct link_map* from = object_of(caller);
  e.file = file && *file ? file : object_name(_r_debug.r_map);  // dlopen(NULL) or (""): the program
  e.ns = namespace_of(from);                            // it loads into its caller's namespace
  e.caller = object_name(from);
  e.caller_ns = e.ns;
  char mode_buf[96];
  e.detail = mode_text(mode, mode_buf, sizeof mode_buf);
  struct stat st;
  if (file && std::strchr(file, '/') && sys::fstatat(AT_FDCWD, file, &st, 0) == 0) e.old_ino = st.st_ino;
  e.already_open = already_open;
  log::emit(e);
}
}  // namespace
}  // namespace tg::dl

extern "C" const char* tg_dlopen_enter(const char* file, int mode, void* caller) {
  const int saved_errno = errno;
  tg::dl::resolve_real_dlopen();
  tg::dl::remember_initial_objects();
  const char* load_as = file;
  int already_open = -1;
  if (!tg::in_guard()) tg::dl::settle_open_now();  // this thread's previous dlopen
  tg::dl::InDlHook in_hook;
  void* pin = nullptr;  // a fresh answer's, counted with this open (never apart: see OpenRecord::pins)
  // An invalid mode: glibc fails at once, nothing is looked up or counted.
  if (file && *file && !tg::in_guard() && tg::dl::valid_mode(mode)) {
    // Only a path is matched by name against loaded objects without looking
    // at the file; bare names go through the search path (not checked here).
    // A path can also be another name of a loaded object (a symlink, a hard
    // link): its open is counted under the object's name, the one its
    // dlclose sees. First the check (it counts the opens made before this
    // one), then this open is recorded (a bare name under itself until it is
    // known what it opened).
    const bool path = std::strchr(file, '/') != nullptr;
    char other_name[sizeof(tg::dl::OpenRecord::name)];
    const char* loaded_as = path ? tg::dl::loaded_name_for(file, other_name, sizeof other_name) : file;
    if (path) tg::dl::check_stale(file, loaded_as, mode, caller, &load_as, &pin);
    const char* count_as = load_as == file ? loaded_as : load_as;  // a fresh name is its own object
    bool overflowed = false;
    tg::dl::RecordsLock lock;
    if (lock.held) {
      tg::dl::OpenRecord* r = tg::dl::find_record(count_as, true);
      overflowed = !r;
      if (r) {
        // A bare name or "$ORIGIN/...": which object it opens is known once it has.
        if (std::strchr(count_as, '/') && !std::strchr(count_as, '$')) already_open = tg::dl::handles_open(*r);
        tg::dl::count_open(r, mode, caller);
        if (pin) {  // on the object named load_as
          ++r->pins;
          r->pinned = pin;
          pin = nullptr;
        }
        tg::dl::t_unsettled = static_cast<int>(r - tg::dl::g_records) + 1;
        tg::dl::t_unsettled_serial = r->serial;
        tg::dl::t_unsettled_mode = mode;
        tg::dl::t_unsettled_caller = caller;
      }
    }
    lock.release();
    if (overflowed) tg::dl::warn_overflow_once();
    if (pin && !tg::dl::keep_uncounted_pin(pin)) {  // glibc's answer after all
      tg::dl::close_own_handle(pin);
      load_as = file;
    }
  }
  if (!tg::in_guard() && tg::log::enabled(tg::kFiles) && !tg::dl::is_audit_copy()) tg::dl::report_open(load_as, mode, caller, already_open);
  errno = saved_errno;
  return load_as;
}
