// Coexisting with AddressSanitizer in the host program.
//
// ASan's runtime, loaded dynamically (a program built with -fsanitize=address,
// or libasan in LD_PRELOAD), exits at start-up ("ASan runtime does not come
// first in initial library list") unless it is the first object loaded after
// the program; the shim is preloaded before it, so every such program died
// under truncguard. The check guards against a library that replaces malloc
// ahead of ASan; the shim defines no allocator and reaches ASan's own
// interceptors through RTLD_NEXT, so it is safe to turn off. ASan reads this
// hook for its built-in defaults: ASAN_OPTIONS in the environment still
// overrides it, and a program's own __asan_default_options (the program comes
// first in the symbol lookup) replaces it.

extern "C" __attribute__((visibility("default"))) const char* __asan_default_options() {
  return "verify_asan_link_order=0";
}
