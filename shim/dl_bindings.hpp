// dlsym and dlvsym, watched (categories bindings and files), and the facts
// about loaded objects that the dlopen watcher and the audit module share.
//
// dlsym is reached through dl_trampoline.S, like dlopen: glibc answers
// RTLD_NEXT and RTLD_DEFAULT from the caller's return address, so the hook
// only looks and glibc is then jumped to with the program's arguments.
#pragma once

#include <link.h>

namespace tg::dl {

// Notes which objects were loaded at start-up (before any dlopen), once:
// they are the only ones a lookup may be repeated from the shim for.
void remember_initial_objects();

// Called at the end of the shim's constructor: from then on, dlsym calls
// are watched (before, they only go through).
void hooks_ready();

// The object containing `addr` (a caller's return address), or the program's.
struct link_map* object_of(const void* addr);
// Its name as glibc prints it: the program's own (empty l_name) is argv[0].
const char* object_name(const struct link_map* map);
long namespace_of(const struct link_map* map);
// The inode of a loaded object's file (0: unknown).
unsigned long object_ino(const struct link_map* map);

// True in the copy of the library that ld.so loaded as an LD_AUDIT module:
// it has its own namespace, globals and libc, and only reports.
bool is_audit_copy();

}  // namespace tg::dl

extern "C" {
// Called by the dlsym/dlvsym trampolines (version is null for dlsym).
void tg_dlsym_enter(void* handle, const char* name, const char* version, void* caller);
extern void* tg_real_dlsym;
extern void* tg_real_dlvsym;
}
