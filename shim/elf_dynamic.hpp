// Reading the dynamic tables of objects already loaded in this process:
// their symbols, versions and flags, straight from memory (no dlsym, which
// would leave a dlerror() message for the program or change what it binds).
#pragma once

#include <cstddef>
#include <cstdint>
#include <link.h>

// Code that may run before a sanitizer runtime has initialised (it calls
// dlsym then, and the shim's dlsym hook finds glibc's with these): plain
// reads of memory, no libc call, no instrumentation.
#define TG_EARLY __attribute__((no_sanitize("address", "undefined", "thread")))

namespace tg::elf {

struct DynInfo {
  unsigned long base = 0;  // l_addr
  const char* strtab = nullptr;
  const ElfW(Sym)* symtab = nullptr;
  const uint32_t* hash = nullptr;
  const uint32_t* gnu_hash = nullptr;
  const ElfW(Half)* versym = nullptr;
  const ElfW(Verdef)* verdef = nullptr;
  const ElfW(Verneed)* verneed = nullptr;
  unsigned long flags_1 = 0;
  long soname = -1;  // offset in strtab, -1: none
};

TG_EARLY DynInfo read_dynamic(const ElfW(Dyn)* dyn, unsigned long base);
TG_EARLY inline DynInfo read_dynamic(const struct link_map* map) { return read_dynamic(map->l_ld, map->l_addr); }

// The number of .dynsym entries, from the hash tables (the ELF way to know it).
TG_EARLY size_t symbol_count(const DynInfo& di);

// A defined STB_GNU_UNIQUE symbol (glibc then never unloads the object).
const char* unique_symbol(const DynInfo& di);

// Whether the object itself defines `name` as a dynamic symbol other objects
// can bind to, as glibc's lookup accepts it: with `version` null, an
// unversioned or default-version (not hidden) definition; with a version, the
// definition of that version (an object without version information matches
// any version, as in glibc).
bool defines(const DynInfo& di, const char* name, const char* version);

// What an object's undefined reference to `name` asks for: the version
// (from its verneed) and whether the reference is STV_PROTECTED.
struct Reference {
  bool found = false;
  const char* version = nullptr;
  bool protected_ref = false;
};
Reference find_reference(const DynInfo& di, const char* name);

// The address of a defined function `name` (default version) in the first object
// after `after` in its namespace's list of objects (null: from the program
// on), found in the symbol tables: what RTLD_NEXT would give, without dlsym.
TG_EARLY void* find_function(const char* name, const struct link_map* after);

// The address of the function `name` (default version) in the first of the
// objects `iterate` walks that defines it, or null: dl_iterate_phdr, or a
// wrapper of it, which holds the loader's lock while it walks (another
// thread's dlclose can't unmap an object meanwhile). No dlerror() is left.
using IterateObjects = int (*)(int (*)(struct dl_phdr_info*, size_t, void*), void*);
void* find_loaded_function(const char* name, IterateObjects iterate);

// The shim's own object in the loader's list (null: not found).
TG_EARLY const struct link_map* own_map();

// What dlsym(RTLD_NEXT, name) gives the shim, found in the symbol tables of
// the objects after it up to libc; dlsym where they don't give it (an IFUNC
// or other non-function definition there, a shim loaded by dlopen).
TG_EARLY void* find_next(const char* name);

}  // namespace tg::elf
