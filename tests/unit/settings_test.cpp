#include <gtest/gtest.h>

#include <map>
#include <string>

#include "settings.hpp"

using namespace tg;

namespace {
std::map<std::string, std::string> g_env;
const char* lookup(const char* name) {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
}
Settings parse(std::map<std::string, std::string> env, bool secure = false) {
  g_env = std::move(env);
  return parse_settings(&lookup, secure);
}
}  // namespace

TEST(Settings, Defaults) {
  Settings s = parse({});
  EXPECT_EQ(s.scope, Scope::system);
  EXPECT_EQ(s.mode, Mode::replace);
  EXPECT_EQ(s.on_fail, OnFail::etxtbsy);
  EXPECT_EQ(s.debug, static_cast<unsigned>(kRewrites | kReloads));
  EXPECT_EQ(s.reload, Reload::warn);
  EXPECT_STREQ(s.log_path, "");
  EXPECT_EQ(s.warning_count, 0);
}

TEST(Settings, EveryValueParses) {
  Settings s = parse({{"TRUNCGUARD_SCOPE", "elf"}, {"TRUNCGUARD_MODE", "dry-run"},
                      {"TRUNCGUARD_ON_FAIL", "truncate"}, {"TRUNCGUARD_DEBUG", "decisions,backtrace"},
                      {"TRUNCGUARD_LOG", "/tmp/tg"}});
  EXPECT_EQ(s.scope, Scope::elf);
  EXPECT_EQ(s.mode, Mode::dry_run);
  EXPECT_EQ(s.on_fail, OnFail::truncate);
  EXPECT_EQ(s.debug, static_cast<unsigned>(kDecisions | kBacktrace));
  EXPECT_STREQ(s.log_path, "/tmp/tg");
  EXPECT_EQ(s.warning_count, 0);
  EXPECT_EQ(parse({{"TRUNCGUARD_SCOPE", "self"}, {"TRUNCGUARD_MODE", "unlink"}}).mode, Mode::unlink);
  EXPECT_EQ(parse({{"TRUNCGUARD_SCOPE", "namespace"}}).scope, Scope::pid_namespace);
}

TEST(Settings, UnknownValuesWarnAndKeepDefaults) {
  Settings s = parse({{"TRUNCGUARD_SCOPE", "galaxy"}, {"TRUNCGUARD_MODE", "REPLACE"},
                      {"TRUNCGUARD_ON_FAIL", "panic"}});
  EXPECT_EQ(s.scope, Scope::system);
  EXPECT_EQ(s.mode, Mode::replace);
  EXPECT_EQ(s.on_fail, OnFail::etxtbsy);
  ASSERT_EQ(s.warning_count, 3);
  EXPECT_NE(std::string(s.warnings[0]).find("TRUNCGUARD_SCOPE=galaxy"), std::string::npos);
  EXPECT_NE(std::string(s.warnings[0]).find("expected system, namespace, self or elf"), std::string::npos);
  EXPECT_NE(std::string(s.warnings[1]).find("REPLACE"), std::string::npos);
}

TEST(Settings, DebugListLikeLdDebug) {
  unsigned bits = 0;
  bool help = false;
  char bad[32] = {};
  EXPECT_TRUE(parse_debug("all", &bits, &help, bad, sizeof bad));
  EXPECT_EQ(bits, static_cast<unsigned>(kAllCategories));
  EXPECT_TRUE(parse_debug("rewrites, decisions:backtrace,reloads bindings,files", &bits, &help, bad, sizeof bad));
  EXPECT_EQ(bits, static_cast<unsigned>(kAllCategories));
  EXPECT_TRUE(parse_debug("bindings", &bits, &help, bad, sizeof bad));
  EXPECT_EQ(bits, static_cast<unsigned>(kBindings));
  EXPECT_TRUE(parse_debug("none", &bits, &help, bad, sizeof bad));
  EXPECT_EQ(bits, 0u);
  EXPECT_FALSE(help);
  EXPECT_TRUE(parse_debug("help", &bits, &help, bad, sizeof bad));
  EXPECT_TRUE(help);
  EXPECT_FALSE(parse_debug("decisions,bogus,rewrites", &bits, &help, bad, sizeof bad));
  EXPECT_STREQ(bad, "bogus");
  EXPECT_EQ(bits, static_cast<unsigned>(kDecisions | kRewrites));  // the known words still apply
  Settings s = parse({{"TRUNCGUARD_DEBUG", "verbose"}});
  ASSERT_EQ(s.warning_count, 1);
  EXPECT_NE(std::string(s.warnings[0]).find("`verbose' unknown; try TRUNCGUARD_DEBUG=help"), std::string::npos);
  // Naming no known word keeps the default, as any other unknown setting
  // does (it was 0: a typo silenced every protected write); a known word
  // next to an unknown one applies, and "none" is a known word.
  const unsigned dflt = Settings{}.debug;
  EXPECT_EQ(s.debug, dflt);
  EXPECT_EQ(parse({{"TRUNCGUARD_DEBUG", ",: "}}).debug, dflt);
  EXPECT_EQ(parse({{"TRUNCGUARD_DEBUG", "verbose,decisions"}}).debug, static_cast<unsigned>(kDecisions));
  EXPECT_EQ(parse({{"TRUNCGUARD_DEBUG", "none,verbose"}}).debug, 0u);
  EXPECT_EQ(parse({{"TRUNCGUARD_DEBUG", "none"}}).debug, 0u);
  // Each unknown word gets its warning, as in LD_DEBUG (only the first did).
  Settings two = parse({{"TRUNCGUARD_DEBUG", "foo,decisions,bar"}});
  ASSERT_EQ(two.warning_count, 2);
  EXPECT_NE(std::string(two.warnings[0]).find("`foo' unknown"), std::string::npos);
  EXPECT_NE(std::string(two.warnings[1]).find("`bar' unknown"), std::string::npos);
  EXPECT_EQ(two.debug, static_cast<unsigned>(kDecisions));
}

TEST(Settings, Reload) {
  EXPECT_EQ(parse({{"TRUNCGUARD_RELOAD", "fresh"}}).reload, Reload::fresh);
  Settings s = parse({{"TRUNCGUARD_RELOAD", "always"}});
  EXPECT_EQ(s.reload, Reload::warn);
  ASSERT_EQ(s.warning_count, 1);
  EXPECT_NE(std::string(s.warnings[0]).find("TRUNCGUARD_RELOAD=always (expected warn or fresh)"), std::string::npos);
}

TEST(Settings, LogFormat) {
  EXPECT_EQ(parse({}).log_format, LogFormat::text);
  EXPECT_EQ(parse({{"TRUNCGUARD_LOG_FORMAT", "json"}}).log_format, LogFormat::json);
  Settings s = parse({{"TRUNCGUARD_LOG_FORMAT", "xml"}});
  EXPECT_EQ(s.log_format, LogFormat::text);
  ASSERT_EQ(s.warning_count, 1);
  EXPECT_NE(std::string(s.warnings[0]).find("TRUNCGUARD_LOG_FORMAT=xml (expected text or json)"), std::string::npos);
}

TEST(Settings, EmptyValuesMeanDefaults) {
  Settings s = parse({{"TRUNCGUARD_SCOPE", ""}, {"TRUNCGUARD_DEBUG", ""}, {"TRUNCGUARD_LOG", ""}});
  EXPECT_EQ(s.scope, Scope::system);
  EXPECT_EQ(s.debug, static_cast<unsigned>(kRewrites | kReloads));
  EXPECT_EQ(s.warning_count, 0);
}

TEST(Settings, SecureExecutionIgnoresLogFile) {
  Settings s = parse({{"TRUNCGUARD_LOG", "/etc/shadow"}}, /*secure=*/true);
  EXPECT_STREQ(s.log_path, "");
  EXPECT_TRUE(s.log_ignored);
}

// As glibc ignores LD_DEBUG's categories for a setuid program: the caller's
// choice of what it tells (backtrace addresses, the files it writes).
TEST(Settings, SecureExecutionIgnoresDebugCategoriesButNotHelp) {
  Settings s = parse({{"TRUNCGUARD_DEBUG", "decisions,backtrace"}}, /*secure=*/true);
  EXPECT_EQ(s.debug, static_cast<unsigned>(kRewrites | kReloads));
  EXPECT_TRUE(s.debug_ignored);
  Settings help = parse({{"TRUNCGUARD_DEBUG", "help"}}, /*secure=*/true);
  EXPECT_TRUE(help.debug_help);
  Settings plain = parse({{"TRUNCGUARD_DEBUG", "decisions"}});  // control: not secure
  EXPECT_EQ(plain.debug, static_cast<unsigned>(kDecisions));
  EXPECT_FALSE(plain.debug_ignored);
}

TEST(Settings, OverlongLogPathWarns) {
  Settings s = parse({{"TRUNCGUARD_LOG", std::string(PATH_MAX, 'x')}});
  EXPECT_STREQ(s.log_path, "");
  EXPECT_EQ(s.warning_count, 1);
}

TEST(Settings, LogPathLeavesRoomForThePid) {
  // The log is FILE.PID, made in a PATH_MAX buffer: "." and an int's
  // digits (with its sign, 11 bytes) and the NUL must fit after the name,
  // or the file would be named with the pid cut short.
  std::string longest(PATH_MAX - 13, 'x');
  longest[0] = '/';
  Settings fits = parse({{"TRUNCGUARD_LOG", longest}});
  EXPECT_TRUE(fits.log_path == longest) << "the longest name that leaves room was not taken";
  EXPECT_EQ(fits.warning_count, 0);
  Settings over = parse({{"TRUNCGUARD_LOG", longest + "x"}});
  EXPECT_EQ(over.log_path[0], '\0') << "a name one byte longer was taken";
  ASSERT_EQ(over.warning_count, 1);
  EXPECT_NE(std::string(over.warnings[0]).find("TRUNCGUARD_LOG is too long"), std::string::npos);
}

TEST(Settings, WarningsStopAtTheirTable) {
  // Every unknown word of TRUNCGUARD_DEBUG warns, and bad values of the
  // other settings too: more than the table holds are dropped, never
  // written past it (the Settings live on the stack of whatever calls first).
  Settings s = parse({{"TRUNCGUARD_SCOPE", "galaxy"}, {"TRUNCGUARD_MODE", "x"}, {"TRUNCGUARD_DEBUG", "a,b,c,d,e,f,g,h,i,j"}});
  EXPECT_EQ(s.warning_count, Settings::kMaxWarnings);
  EXPECT_NE(std::string(s.warnings[0]).find("TRUNCGUARD_SCOPE=galaxy"), std::string::npos);
  EXPECT_NE(std::string(s.warnings[Settings::kMaxWarnings - 1]).find("`d' unknown"), std::string::npos);
}

TEST(Settings, MalformedValueIsQuotedSafely) {
  // A huge or odd value is cut in the warning, never overflows it.
  Settings s = parse({{"TRUNCGUARD_MODE", std::string(5000, 'm')}});
  EXPECT_EQ(s.mode, Mode::replace);
  ASSERT_EQ(s.warning_count, 1);
  EXPECT_LT(std::string(s.warnings[0]).size(), Settings::kWarningLen);
}
