// The pieces of the bindings category that can be called directly: reading
// a loaded object's symbol table as glibc's lookup reads it, and the text of
// glibc's LD_DEBUG=bindings lines.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <link.h>

#include <string>

#include "dl_bindings.hpp"
#include "elf_dynamic.hpp"
#include "log.hpp"

using namespace tg;

namespace {

struct link_map* libc_map() {
  void* h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  struct link_map* map = nullptr;
  if (h) dlinfo(h, RTLD_DI_LINKMAP, &map);
  if (h) dlclose(h);
  return map;
}

std::string binding(const log::Event& e) {
  char buf[512];
  size_t n = e.kind == log::EventKind::binding ? log::format_binding(buf, sizeof buf, e)
                                               : log::format_lookup_error(buf, sizeof buf, e);
  return std::string(buf, n);
}

}  // namespace

TEST(Bindings, SymbolTableAnswersAsGlibcLookup) {
  struct link_map* libc = libc_map();
  ASSERT_NE(libc, nullptr);
  const elf::DynInfo di = elf::read_dynamic(libc);
  EXPECT_TRUE(elf::defines(di, "printf", nullptr));
  EXPECT_TRUE(elf::defines(di, "printf", "GLIBC_2.2.5"));
  EXPECT_FALSE(elf::defines(di, "printf", "GLIBC_9.99"));
  EXPECT_FALSE(elf::defines(di, "no_such_symbol_here", nullptr));
  // realpath: GLIBC_2.3 is the default, GLIBC_2.2.5 a hidden older one that
  // dlsym does not return but dlvsym does.
  EXPECT_TRUE(elf::defines(di, "realpath", "GLIBC_2.2.5"));
  EXPECT_TRUE(elf::defines(di, "realpath", "GLIBC_2.3"));
  EXPECT_TRUE(elf::defines(di, "realpath", nullptr));
  // libc refers to ld.so's _dl_find_dso_for_object, versioned GLIBC_PRIVATE.
  elf::Reference r = elf::find_reference(di, "_dl_find_dso_for_object");
  EXPECT_TRUE(r.found);
  ASSERT_NE(r.version, nullptr);
  EXPECT_STREQ(r.version, "GLIBC_PRIVATE");
  EXPECT_FALSE(elf::find_reference(di, "printf").found);  // defined, not referenced
}

TEST(Bindings, FunctionsAreFoundAsDlsymFindsThem) {
  // elf::find_function resolves the real dlsym (and the demangler) without
  // dlsym: the same address, the default version of a versioned name.
  EXPECT_EQ(elf::find_function("printf", nullptr), dlsym(RTLD_DEFAULT, "printf"));
  EXPECT_EQ(elf::find_function("dlvsym", nullptr), dlsym(RTLD_DEFAULT, "dlvsym"));
  // realpath@@GLIBC_2.3 is the default; realpath@GLIBC_2.2.5 a hidden older one.
  void* realpath_default = dlsym(RTLD_DEFAULT, "realpath");
  ASSERT_NE(realpath_default, dlvsym(RTLD_DEFAULT, "realpath", "GLIBC_2.2.5"));
  EXPECT_EQ(elf::find_function("realpath", nullptr), realpath_default);
  EXPECT_EQ(elf::find_function("no_such_function_here", nullptr), nullptr);
  EXPECT_EQ(elf::find_function("environ", nullptr), nullptr);  // an object, not a function
}

// elf::find_loaded_function: the demangler's lookup, each object as
// dl_iterate_phdr describes it (under the loader's lock): what dlsym finds.
void* first_definition(const char* name) { return elf::find_loaded_function(name, &dl_iterate_phdr); }

TEST(Bindings, FunctionsAreFoundInEachObjectAsDlsymFindsThem) {
  EXPECT_EQ(first_definition("__cxa_demangle"), dlsym(RTLD_DEFAULT, "__cxa_demangle"));
  EXPECT_EQ(first_definition("printf"), dlsym(RTLD_DEFAULT, "printf"));
  EXPECT_EQ(first_definition("realpath"), dlsym(RTLD_DEFAULT, "realpath"));  // the default version
  EXPECT_EQ(first_definition("no_such_function_here"), nullptr);
  EXPECT_EQ(first_definition("environ"), nullptr);  // an object, not a function
  EXPECT_EQ(dlerror(), nullptr);                    // and no message left for the program
}

TEST(Bindings, ObjectsAreNamedAsGlibcNamesThem) {
  EXPECT_STREQ(dl::object_name(libc_map()), "/lib/x86_64-linux-gnu/libc.so.6");
  // The program's own object has an empty name: glibc prints argv[0].
  EXPECT_STREQ(dl::object_name(dl::object_of(reinterpret_cast<void*>(&libc_map))), program_invocation_name);
  EXPECT_EQ(dl::namespace_of(libc_map()), 0);
  EXPECT_NE(dl::object_ino(libc_map()), 0u);
  EXPECT_FALSE(dl::is_audit_copy());
}

TEST(Bindings, LinesAreGlibcs) {
  log::Event e{log::EventKind::binding};
  e.file = "./host";
  e.ns = 0;
  e.to = "/lib/x86_64-linux-gnu/libc.so.6";
  e.to_ns = 0;
  e.symbol = "puts";
  EXPECT_EQ(binding(e), "binding file ./host [0] to /lib/x86_64-linux-gnu/libc.so.6 [0]: normal symbol `puts'");
  e.version = "GLIBC_2.2.5";
  e.protected_ref = true;
  e.ns = 1;
  EXPECT_EQ(binding(e),
            "binding file ./host [1] to /lib/x86_64-linux-gnu/libc.so.6 [0]: protected symbol `puts' [GLIBC_2.2.5]");
  log::Event m{log::EventKind::lookup_error};
  m.file = "./plugin.so";
  m.symbol = "run";
  EXPECT_EQ(binding(m), "./plugin.so: error: symbol lookup error: undefined symbol: run (fatal)");
  m.version = "V2";
  EXPECT_EQ(binding(m), "./plugin.so: error: symbol lookup error: undefined symbol: run, version V2 (fatal)");
  // A name that could forge a line is escaped, as everywhere in the log.
  e.file = "./a\nb";
  EXPECT_EQ(binding(e).find('\n'), std::string::npos);
}

TEST(Bindings, NextDefinitionIsWhatRtldNextGives) {
  // elf::find_next (TG_REAL's lookup), from this program: what
  // dlsym(RTLD_NEXT) gives, for the functions the shim wraps, for versioned
  // names (posix_spawn@@GLIBC_2.15 over a hidden @GLIBC_2.2.5, realpath),
  // and for IFUNCs (memcpy, strlen), which it leaves to dlsym.
  for (const char* name : {"write", "close", "openat64", "__open_2", "fsync", "fdatasync", "dup3", "fcntl64",
                           "close_range", "execveat", "posix_spawn_file_actions_addopen", "sigaction", "syscall",
                           "posix_spawn", "realpath", "memcpy", "strlen", "dlsym", "dlvsym"}) {
    void* want = dlsym(RTLD_NEXT, name);
    ASSERT_NE(want, nullptr) << name;
    EXPECT_EQ(elf::find_next(name), want) << name;
  }
  EXPECT_EQ(elf::find_next("no_such_function_here"), nullptr);
}
