#include "elf_dynamic.hpp"

#include <dlfcn.h>

#include <cstring>

namespace tg::elf {
namespace {

// glibc relocates the d_ptr entries of .dynamic in place on x86-64; be safe
// where it does not (read-only .dynamic).
template <typename T>
TG_EARLY const T* dyn_ptr(const ElfW(Dyn)* d, unsigned long base) {
  unsigned long v = d->d_un.d_ptr;
  return reinterpret_cast<const T*>(v < base ? v + base : v);
}

TG_EARLY uint32_t gnu_hash_of(const char* s) {
  uint32_t h = 5381;
  for (const unsigned char* p = reinterpret_cast<const unsigned char*>(s); *p; ++p) h = h * 33 + *p;
  return h;
}

// The name of version index `ndx` in the object's Verdef chain, or null.
const char* version_name(const DynInfo& di, unsigned ndx) {
  if (!di.verdef) return nullptr;
  const ElfW(Verdef)* vd = di.verdef;
  for (;;) {
    if (vd->vd_ndx == ndx && vd->vd_cnt > 0) {
      auto* aux = reinterpret_cast<const ElfW(Verdaux)*>(reinterpret_cast<const char*>(vd) + vd->vd_aux);
      return di.strtab + aux->vda_name;
    }
    if (vd->vd_next == 0) return nullptr;
    vd = reinterpret_cast<const ElfW(Verdef)*>(reinterpret_cast<const char*>(vd) + vd->vd_next);
  }
}

bool acceptable(const DynInfo& di, size_t i, const char* name, const char* version) {
  const ElfW(Sym)& s = di.symtab[i];
  if (s.st_shndx == SHN_UNDEF && ELF64_ST_TYPE(s.st_info) != STT_TLS) return false;
  if (s.st_value == 0 && ELF64_ST_TYPE(s.st_info) != STT_TLS) return false;
  const unsigned bind = ELF64_ST_BIND(s.st_info);
  if (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE) return false;
  const unsigned vis = ELF64_ST_VISIBILITY(s.st_other);
  if (vis == STV_HIDDEN || vis == STV_INTERNAL) return false;
  if (std::strcmp(di.strtab + s.st_name, name) != 0) return false;
  if (!di.versym) return true;  // no version information: matches anything
  const unsigned ndx = di.versym[i] & 0x7fff;
  if (!version) return (di.versym[i] & 0x8000) == 0 || ndx < 2;
  if (ndx < 2) return false;  // versioned object, unversioned symbol, version asked
  const char* v = version_name(di, ndx);
  return v && std::strcmp(v, version) == 0;
}

}  // namespace

TG_EARLY DynInfo read_dynamic(const ElfW(Dyn)* dyn, unsigned long base) {
  DynInfo di;
  di.base = base;
  for (const ElfW(Dyn)* d = dyn; d && d->d_tag != DT_NULL; ++d) {
    switch (d->d_tag) {
      case DT_STRTAB: di.strtab = dyn_ptr<char>(d, base); break;
      case DT_SYMTAB: di.symtab = dyn_ptr<ElfW(Sym)>(d, base); break;
      case DT_HASH: di.hash = dyn_ptr<uint32_t>(d, base); break;
      case DT_GNU_HASH: di.gnu_hash = dyn_ptr<uint32_t>(d, base); break;
      case DT_VERSYM: di.versym = dyn_ptr<ElfW(Half)>(d, base); break;
      case DT_VERDEF: di.verdef = dyn_ptr<ElfW(Verdef)>(d, base); break;
      case DT_VERNEED: di.verneed = dyn_ptr<ElfW(Verneed)>(d, base); break;
      case DT_FLAGS_1: di.flags_1 = d->d_un.d_val; break;
      case DT_SONAME: di.soname = static_cast<long>(d->d_un.d_val); break;
      default: break;
    }
  }
  return di;
}

TG_EARLY size_t symbol_count(const DynInfo& di) {
  if (di.hash) return di.hash[1];  // nchain
  if (!di.gnu_hash) return 0;
  const uint32_t nbuckets = di.gnu_hash[0], symoffset = di.gnu_hash[1], bloom_size = di.gnu_hash[2];
  const auto* bloom = reinterpret_cast<const ElfW(Addr)*>(di.gnu_hash + 4);
  const auto* buckets = reinterpret_cast<const uint32_t*>(bloom + bloom_size);
  const uint32_t* chain = buckets + nbuckets;
  uint32_t last = 0;
  for (uint32_t i = 0; i < nbuckets; ++i) last = buckets[i] > last ? buckets[i] : last;
  if (last < symoffset) return symoffset;
  while (!(chain[last - symoffset] & 1)) ++last;
  return last + 1;
}

const char* unique_symbol(const DynInfo& di) {
  if (!di.symtab || !di.strtab) return nullptr;
  const size_t n = symbol_count(di);
  for (size_t i = 0; i < n; ++i) {
    const ElfW(Sym)& s = di.symtab[i];
    if (ELF64_ST_BIND(s.st_info) == STB_GNU_UNIQUE && s.st_shndx != SHN_UNDEF) return di.strtab + s.st_name;
  }
  return nullptr;
}

bool defines(const DynInfo& di, const char* name, const char* version) {
  if (!di.symtab || !di.strtab) return false;
  if (di.gnu_hash) {
    // The GNU hash chain of `name` holds every symbol that can match it.
    const uint32_t nbuckets = di.gnu_hash[0], symoffset = di.gnu_hash[1], bloom_size = di.gnu_hash[2];
    const auto* bloom = reinterpret_cast<const ElfW(Addr)*>(di.gnu_hash + 4);
    const auto* buckets = reinterpret_cast<const uint32_t*>(bloom + bloom_size);
    const uint32_t* chain = buckets + nbuckets;
    const uint32_t h = gnu_hash_of(name);
    if (nbuckets == 0) return false;
    uint32_t i = buckets[h % nbuckets];
    if (i < symoffset) return false;
    for (;; ++i) {
      const uint32_t ch = chain[i - symoffset];
      if ((ch | 1) == (h | 1) && acceptable(di, i, name, version)) return true;
      if (ch & 1) return false;
    }
  }
  const size_t n = symbol_count(di);
  for (size_t i = 0; i < n; ++i)
    if (acceptable(di, i, name, version)) return true;
  return false;
}

Reference find_reference(const DynInfo& di, const char* name) {
  Reference r;
  if (!di.symtab || !di.strtab) return r;
  // Undefined symbols are not in the hash table: a scan of .dynsym.
  const size_t n = symbol_count(di);
  for (size_t i = 0; i < n; ++i) {
    const ElfW(Sym)& s = di.symtab[i];
    if (s.st_shndx != SHN_UNDEF || std::strcmp(di.strtab + s.st_name, name) != 0) continue;
    r.found = true;
    r.protected_ref = ELF64_ST_VISIBILITY(s.st_other) == STV_PROTECTED;
    const unsigned ndx = di.versym ? di.versym[i] & 0x7fff : 0;
    for (const ElfW(Verneed)* vn = di.verneed; ndx >= 2 && vn;) {
      auto* aux = reinterpret_cast<const ElfW(Vernaux)*>(reinterpret_cast<const char*>(vn) + vn->vn_aux);
      for (unsigned k = 0; k < vn->vn_cnt; ++k) {
        if ((aux->vna_other & 0x7fff) == ndx) {
          r.version = di.strtab + aux->vna_name;
          return r;
        }
        aux = reinterpret_cast<const ElfW(Vernaux)*>(reinterpret_cast<const char*>(aux) + aux->vna_next);
      }
      vn = vn->vn_next ? reinterpret_cast<const ElfW(Verneed)*>(reinterpret_cast<const char*>(vn) + vn->vn_next)
                       : nullptr;
    }
    return r;
  }
  return r;
}

namespace {
TG_EARLY bool same_name(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

// Symbol k of the object if it defines `name` in its default version (a
// hidden, older one, as realpath@GLIBC_2.2.5, is not what dlsym returns):
// `defined`, with its address if it is a plain function (an IFUNC's address
// is its resolver's). (A function, not a lambda: TG_EARLY does not reach a
// lambda's body, which a sanitizer build would instrument.)
struct Definition {
  bool defined = false;
  void* function = nullptr;
};
TG_EARLY Definition definition_at(const DynInfo& di, size_t k, const char* name) {
  const ElfW(Sym)& sym = di.symtab[k];
  if (sym.st_shndx == SHN_UNDEF || (di.versym && (di.versym[k] & 0x8000)) || !same_name(di.strtab + sym.st_name, name))
    return {};
  if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC) return {true, nullptr};
  return {true, reinterpret_cast<void*>(di.base + sym.st_value)};
}

// The object's definition of `name` (h: its GNU hash), through the object's
// GNU hash table where it has one (every object glibc builds does): the chain
// of `name`'s hash only. A scan of all of libc's symbols cost about 40,000
// instructions a name, paid at the first dlsym of every process (measured
// with callgrind on /bin/true: 30% of its run).
TG_EARLY Definition definition_in(const DynInfo& di, const char* name, uint32_t h) {
  if (!di.symtab || !di.strtab) return {};
  if (di.gnu_hash) {
    const uint32_t nbuckets = di.gnu_hash[0], symoffset = di.gnu_hash[1], bloom_size = di.gnu_hash[2];
    if (nbuckets == 0) return {};
    const auto* bloom = reinterpret_cast<const ElfW(Addr)*>(di.gnu_hash + 4);
    const auto* buckets = reinterpret_cast<const uint32_t*>(bloom + bloom_size);
    const uint32_t* chain = buckets + nbuckets;
    uint32_t i = buckets[h % nbuckets];
    if (i < symoffset) return {};
    for (;; ++i) {
      const uint32_t ch = chain[i - symoffset];
      if ((ch | 1) == (h | 1))
        if (const Definition d = definition_at(di, i, name); d.defined) return d;
      if (ch & 1) return {};
    }
  }
  const size_t n = symbol_count(di);
  for (size_t k = 0; k < n; ++k)
    if (const Definition d = definition_at(di, k, name); d.defined) return d;
  return {};
}

// glibc's libc, which defines every function the shim wraps.
TG_EARLY bool is_libc(const DynInfo& di) { return di.strtab && di.soname >= 0 && same_name(di.strtab + di.soname, "libc.so.6"); }

// The shim's object when the next definitions are the objects after it up to
// libc, loaded with it and never unloaded (no lock needed to read them): a
// preload or a start-up dependency, or the head of another namespace (the
// audit copy, its libc after it). Null otherwise (a dlopened shim: after it
// come only objects dlopened later, which RTLD_NEXT does not search and
// another thread may unload while we read them).
TG_EARLY const struct link_map* walkable_self() {
  for (const struct link_map* m = _r_debug.r_map; m; m = m->l_next) {
    if (m->l_ld == _DYNAMIC) return m;
    if (m->l_ld && is_libc(read_dynamic(m))) break;
  }
  struct dl_find_object r;
  if (_dl_find_object(_DYNAMIC, &r) != 0 || !r.dlfo_link_map || r.dlfo_link_map->l_prev) return nullptr;
  return r.dlfo_link_map;
}
}  // namespace

TG_EARLY const struct link_map* own_map() {
  for (const struct link_map* m = _r_debug.r_map; m; m = m->l_next)
    if (m->l_ld == _DYNAMIC) return m;
  // Another namespace (the audit copy): ld.so knows it by now.
  struct dl_find_object r;
  return _dl_find_object(_DYNAMIC, &r) == 0 ? r.dlfo_link_map : nullptr;
}

// The first object after the shim that defines `name` is where RTLD_NEXT
// stops: if that definition is not a plain function (an IFUNC), dlsym gives
// it. The walk ends at libc.
TG_EARLY void* find_next(const char* name) {
  const uint32_t h = gnu_hash_of(name);
  if (const struct link_map* self = walkable_self())
    for (const struct link_map* m = self->l_next; m; m = m->l_next) {
      if (!m->l_ld) continue;
      const DynInfo di = read_dynamic(m);
      if (const Definition d = definition_in(di, name, h); d.defined)
        return d.function ? d.function : dlsym(RTLD_NEXT, name);
      if (is_libc(di)) break;
    }
  return dlsym(RTLD_NEXT, name);
}

TG_EARLY void* find_function(const char* name, const struct link_map* after) {
  const uint32_t h = gnu_hash_of(name);
  for (const struct link_map* m = after ? after->l_next : _r_debug.r_map; m; m = m->l_next)
    if (m->l_ld)
      if (const Definition d = definition_in(read_dynamic(m), name, h); d.function) return d.function;
  return nullptr;
}

namespace {
struct LoadedLookup {
  const char* name;
  uint32_t h;
  void* found;
};
int loaded_lookup(struct dl_phdr_info* info, size_t, void* data) {
  auto* l = static_cast<LoadedLookup*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i)
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC) {
      const auto* dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
      l->found = definition_in(read_dynamic(dyn, info->dlpi_addr), l->name, l->h).function;
      return l->found != nullptr;
    }
  return 0;
}
}  // namespace

void* find_loaded_function(const char* name, IterateObjects iterate) {
  LoadedLookup l{name, gnu_hash_of(name), nullptr};
  iterate(&loaded_lookup, &l);
  return l.found;
}

}  // namespace tg::elf
