#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <string>

#include "child_limits.hpp"
#include "escape.hpp"
#include "log.hpp"
#include "sys.hpp"

using namespace tg;

namespace {
std::string esc(const char* in, size_t len = 256) {
  std::string out(len, '\0');
  size_t n = escape(in, out.data(), len);
  out.resize(n);
  return out;
}
}  // namespace

TEST(Log, PrefixIsLdDebugStyle) {
  char buf[32];
  size_t n = log::format_prefix(buf, sizeof buf, 4242);
  EXPECT_EQ(std::string(buf, n), "      4242:\t");
  n = log::format_prefix(buf, sizeof buf, 1234567890);
  EXPECT_EQ(std::string(buf, n), "1234567890:\t");
}

TEST(Log, PlainPathsAreUnchanged) {
  EXPECT_EQ(esc("/opt/app/lib/libfoo.so"), "/opt/app/lib/libfoo.so");
  EXPECT_EQ(esc("caf\xc3\xa9/\xe2\x82\xac.so"), "caf\xc3\xa9/\xe2\x82\xac.so");  // valid UTF-8 kept
}

TEST(Log, ControlCharactersCannotForgeALine) {
  EXPECT_EQ(esc("a\nb"), "a\\nb");
  EXPECT_EQ(esc("a\tb\rc"), "a\\tb\\rc");
  EXPECT_EQ(esc("x\x1b[31my"), "x\\x1b[31my");
  EXPECT_EQ(esc("del\x7f"), "del\\x7f");
  // C1 controls, valid UTF-8 (U+009B CSI repaints a terminal, U+0085 NEL is
  // a newline to some): escaped too; U+00A0, the first after them, is not.
  EXPECT_EQ(esc("x\xc2\x9b" "31my"), "x\\xc2\\x9b31my");
  EXPECT_EQ(esc("a\xc2\x85" "b\xc2\x80\xc2\x9f"), "a\\xc2\\x85b\\xc2\\x80\\xc2\\x9f");
  EXPECT_EQ(esc("nb\xc2\xa0sp"), "nb\xc2\xa0sp");
  EXPECT_EQ(esc("back\\slash"), "back\\\\slash");
  EXPECT_EQ(esc("lib\n      1:\treplaced file=/etc/passwd"), "lib\\n      1:\\treplaced file=/etc/passwd");
}

TEST(Log, InvalidUtf8IsEscaped) {
  EXPECT_EQ(esc("bad\xff" "byte"), "bad\\xffbyte");
  EXPECT_EQ(esc("\xc3"), "\\xc3");          // truncated sequence
  EXPECT_EQ(esc("\xc3(x"), "\\xc3(x");      // bad continuation
  EXPECT_EQ(esc("\xc0\xaf"), "\\xc0\\xaf");  // overlong encoding of '/'
  // A sequence cut short by a control character: the character is escaped,
  // never taken into the sequence raw (a newline would start a forged line).
  EXPECT_EQ(esc("\xe2\x82\n1:\treplaced"), "\\xe2\\x82\\n1:\\treplaced");
  EXPECT_EQ(esc("\xf0\x9f\x98\n"), "\\xf0\\x9f\\x98\\n");
}

TEST(Log, OnlyRealUtf8PassesThrough) {
  EXPECT_EQ(esc("\xef\xbf\xbf"), "\xef\xbf\xbf");              // U+FFFF: valid
  EXPECT_EQ(esc("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf");      // U+10FFFF: the last one
  EXPECT_EQ(esc("\xed\xa0\x80"), "\\xed\\xa0\\x80");          // a UTF-16 surrogate
  EXPECT_EQ(esc("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");          // overlong '/'
  EXPECT_EQ(esc("\xf0\x80\x80\xaf"), "\\xf0\\x80\\x80\\xaf");  // overlong, 4 bytes
  EXPECT_EQ(esc("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
}

TEST(Log, TruncatesWithEllipsis) {
  std::string longp(1000, 'a');
  std::string out = esc(longp.c_str(), 32);
  EXPECT_LE(out.size(), 31u);
  EXPECT_EQ(out.substr(out.size() - 3), "...");
  // An escape sequence is never cut in half.
  std::string nl(100, '\n');
  out = esc(nl.c_str(), 16);
  EXPECT_EQ(out.find("\\n..."), out.size() - 5);
}

TEST(Log, CutsOnlyWhatDoesNotFit) {
  EXPECT_EQ(esc("abcdefg", 10), "abcdefg");      // 7 + NUL fit in 10: no "..."
  EXPECT_EQ(esc("abcdefghi", 10), "abcdefghi");  // exactly fits
  EXPECT_EQ(esc("abcdefghij", 10), "abcdef...");
}

TEST(Log, NullIsSafe) { EXPECT_EQ(esc(nullptr), "(null)"); }

// The fds the shim keeps (the log file, an atomic publication's directory)
// take no number a program's next opens get: at or above 512, or half a
// smaller fd limit, close-on-exec. Where nothing is free up there, the lowest
// free number: never a failure for want of a high one.
TEST(Log, KeptFdsStayOutOfTheLowNumbers) {
  auto high_under = [](rlim_t limit, int at_least) {
    return unit::in_child([=] {
      const int fd = open("/dev/null", O_RDONLY);
      struct rlimit rl = {limit, limit};
      if (fd < 0 || setrlimit(RLIMIT_NOFILE, &rl) != 0) return 2;
      const int kept = sys::dup_high(fd);
      if (kept < at_least || kept >= static_cast<int>(limit)) return 3;
      return (fcntl(kept, F_GETFD) & FD_CLOEXEC) ? 0 : 4;
    });
  };
  EXPECT_EQ(high_under(4096, 512), 0) << "a large fd limit";
  EXPECT_EQ(high_under(1024, 512), 0) << "the usual soft limit";
  EXPECT_EQ(high_under(64, 32), 0) << "a small limit: half of it";
  // Every number in the upper half in use: the lowest free one.
  EXPECT_EQ(unit::in_child([] {
    const int fd = open("/dev/null", O_RDONLY);
    if (fd < 0 || !unit::leave_free_fds(0)) return 2;
    close(7);
    return sys::dup_high(fd) == 7 ? 0 : 3;
  }), 0);
  // None free at all: the kernel's EMFILE, as any dup.
  EXPECT_EQ(unit::in_child([] {
    const int fd = open("/dev/null", O_RDONLY);
    if (fd < 0 || !unit::leave_free_fds(0)) return 2;
    return sys::dup_high(fd) == -EMFILE ? 0 : 3;
  }), 0);
}
