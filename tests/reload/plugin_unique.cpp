// A C++ plugin with a static variable in an inline function: g++ gives it an
// STB_GNU_UNIQUE symbol (unless -fno-gnu-unique), and glibc never unloads it.
inline int& counter() {
  static int n = 0;
  return n;
}
extern "C" __attribute__((visibility("default"))) int tg_version() { return ++counter(); }
