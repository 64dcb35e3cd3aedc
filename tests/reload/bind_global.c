/* Opened RTLD_GLOBAL by bind_cases: then in every RTLD_DEFAULT lookup. */
int tgb_global_fn(void) { return 9; }
