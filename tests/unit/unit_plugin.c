// A plugin for the unit tests' dlopen cases (tests/unit/meson.build): loaded,
// unloaded and loaded again, from copies and hard links in a temporary directory.
int unit_plugin_version(void) { return 1; }
