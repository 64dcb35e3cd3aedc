/* A harmless library for an LD_PRELOAD the user already had: tests check
 * that truncguard keeps it next to its own shim.  It exports one symbol no
 * program uses and changes no behaviour. */
__attribute__((visibility("default"))) int tg_preload_marker(void) { return 42; }
