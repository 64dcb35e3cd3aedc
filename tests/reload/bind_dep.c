/* A dependency of bind_plugin: a lookup on the plugin's handle finds this. */
int tgb_dep_fn(void) { return 7; }
int tgb_shadow(void) { return 2; }
/* A thread-local variable: found through the plugin's handle at an address
 * in no object's mapping (bindings.sh, "not known to the shim"). */
__thread int tgb_dep_tls = 5;
