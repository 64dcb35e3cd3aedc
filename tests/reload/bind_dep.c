/* A dependency of bind_plugin: a lookup on the plugin's handle finds this. */
int tgb_dep_fn(void) { return 7; }
int tgb_shadow(void) { return 2; }
