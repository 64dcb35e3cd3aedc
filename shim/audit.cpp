// The rtld-audit interface (man 7 rtld-audit): `truncguard --audit` also
// names this library in LD_AUDIT. ld.so then loads a second copy of it, in a
// namespace of its own, and calls it for every real load and unload of an
// object and for every PLT binding, which the preload copy cannot see.
//
// That copy shares no globals with the program's copy (its own settings,
// log and libc); it only reports. dlsym/dlvsym lookups are the program's
// copy's to print (dl_bindings.cpp): it knows the handle glibc names.
#include <link.h>

#include "dl_bindings.hpp"
#include "elf_dynamic.hpp"
#include "guard.hpp"
#include "log.hpp"

namespace {

// The version the referencing object asked for `name` (its verneed entry),
// and whether its reference is STV_PROTECTED: what glibc's line prints.
void reference_facts(const struct link_map* ref, const char* name, const char** version, bool* protected_ref) {
  *version = nullptr;
  *protected_ref = false;
  if (!ref || !ref->l_ld) return;
  const tg::elf::DynInfo di = tg::elf::read_dynamic(ref);
  tg::elf::Reference r = tg::elf::find_reference(di, name);
  *version = r.version;
  *protected_ref = r.protected_ref;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) unsigned int la_version(unsigned int version) {
  (void)tg::settings();
  return version < LAV_CURRENT ? version : LAV_CURRENT;
}

__attribute__((visibility("default"))) unsigned int la_objopen(struct link_map* map, Lmid_t lmid, uintptr_t*) {
  if (tg::log::enabled(tg::kFiles)) {
    tg::log::Event e{tg::log::EventKind::dl_call};
    e.call = "loaded";
    e.file = tg::dl::object_name(map);
    e.ns = static_cast<long>(lmid);
    e.old_ino = tg::dl::object_ino(map);
    tg::log::emit(e);
  }
  // Bindings from and to every object reach la_symbind64.
  return tg::log::enabled(tg::kBindings) ? LA_FLG_BINDTO | LA_FLG_BINDFROM : 0;
}

__attribute__((visibility("default"))) unsigned int la_objclose(uintptr_t* cookie) {
  const auto* map = reinterpret_cast<const struct link_map*>(*cookie);  // ld.so's initial cookie
  if (tg::log::enabled(tg::kFiles)) {
    tg::log::Event e{tg::log::EventKind::dl_call};
    e.call = "unloaded";
    e.file = tg::dl::object_name(map);
    e.ns = tg::dl::namespace_of(map);
    tg::log::emit(e);
  }
  return 0;
}

__attribute__((visibility("default"))) uintptr_t la_symbind64(Elf64_Sym* sym, unsigned int, uintptr_t* refcook,
                                                             uintptr_t* defcook, unsigned int* flags,
                                                             const char* symname) {
  // dlsym and dlvsym (both flagged LA_SYMB_DLSYM): printed by the program's copy, with the handle's name.
  if (tg::log::enabled(tg::kBindings) && !(*flags & LA_SYMB_DLSYM)) {
    const auto* ref = reinterpret_cast<const struct link_map*>(*refcook);
    const auto* def = reinterpret_cast<const struct link_map*>(*defcook);
    tg::log::Event e{tg::log::EventKind::binding};
    e.file = tg::dl::object_name(ref);
    e.ns = tg::dl::namespace_of(ref);
    e.to = tg::dl::object_name(def);
    e.to_ns = tg::dl::namespace_of(def);
    e.symbol = symname;
    reference_facts(ref, symname, &e.version, &e.protected_ref);
    tg::log::emit(e);
  }
  return sym->st_value;
}

}  // extern "C"
