// Watching dlopen/dlclose: stale reloads, fresh reloads, and why a library
// stays loaded after its last dlclose.
//
// dlopen is reached through dl_trampoline.S (a real tail call, so glibc still
// sees the program as the caller); dlclose has no caller-dependent behaviour
// and is wrapped normally (interpose.cpp).
#pragma once

namespace tg::dl {

// Before glibc's dlclose: what is needed to tell afterwards if, and why, the
// object stayed. Filled by before_close, used by after_close.
struct CloseWatch {
  bool valid = false;
  unsigned long base = 0;  // l_addr
  char name[1024] = {};    // l_name
  void* caller = nullptr;  // dlclose's caller, for the files category
  long caller_ns = 0;      // its namespace, asked before glibc's dlclose: a dl call
                           // after it would wipe its dlerror() text
  long ns = 0;
  unsigned long ino = 0;
};
void before_close(void* handle, void* caller, CloseWatch* w);
// `nested`: called from a destructor that another dlclose runs; glibc then
// only marks the object, and the outer dlclose unloads it (or not): whether
// it stays is not known yet.
void after_close(const CloseWatch& w, int result, bool nested);

// The counts below include this thread's last dlopen from before glibc ran;
// settle_open takes it back out if it failed. Called on each entry into the
// shim's dl hooks (done by dlopen's and dlclose's).
void settle_open();

// The process ends (exit, _exit, exit_group): removes the fresh names of the
// objects still loaded, which nothing would remove (a program that never
// closes its handles, as node never closes an addon: each fresh reload would
// leave its name on disk, holding that version's blocks). The objects stay
// mapped: glibc needs no name for them. Only in the process that made them.
void remove_fresh_names();

// What the shim saw of dlopen/dlclose for a name: opens without a matching
// close (-1: never seen), and whether it was opened RTLD_GLOBAL.
int open_count(const char* name);
bool opened_global(const char* name);

}  // namespace tg::dl

extern "C" {
// Called by the dlopen trampoline with the caller's return address; returns
// the file name glibc should load (the same one, or a fresh name).
const char* tg_dlopen_enter(const char* file, int mode, void* caller);
// glibc's dlopen, set by tg_dlopen_enter before it returns.
extern void* tg_real_dlopen;
}
