#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "child_limits.hpp"
#include "pending.hpp"
#include "replace.hpp"
#include "temp_dir.hpp"

using namespace tg;

namespace {

struct TempDir : unit::TempDir {
  TempDir() : unit::TempDir("tg-replace") {}
};

void write_file(const std::string& p, const std::string& content) {
  std::ofstream(p, std::ios::binary) << content;
}
std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
using unit::ino;
int count_entries(const std::string& dir) {
  std::string cmd = "test $(ls -A '" + dir + "' | wc -l) -eq ";
  for (int n = 0; n < 100; ++n)
    if (std::system((cmd + std::to_string(n)).c_str()) == 0) return n;
  return -1;
}

}  // namespace

TEST(Resolve, PlainRelativeAndAbsolute) {
  TempDir d;
  write_file(d / "lib.so", "old");
  Target t;
  ASSERT_EQ(resolve_target(AT_FDCWD, (d / "lib.so").c_str(), true, &t), 0);
  EXPECT_STREQ(t.base, "lib.so");
  EXPECT_EQ(t.st.st_ino, ino(d / "lib.so"));
  EXPECT_FALSE(t.via_symlink);
  int dfd = open(d.path().c_str(), O_RDONLY | O_DIRECTORY);
  Target t2;
  ASSERT_EQ(resolve_target(dfd, "lib.so", true, &t2), 0);
  EXPECT_EQ(t2.st.st_ino, t.st.st_ino);
  close(dfd);
}

TEST(Resolve, FollowsSymlinkChainsToTheRealFile) {
  TempDir d;
  mkdir((d / "real").c_str(), 0755);
  write_file(d / "real/lib.so.1.2", "old");
  symlink("lib.so.1.2", (d / "real/lib.so.1").c_str());    // relative, same dir
  symlink("real/lib.so.1", (d / "link.so").c_str());       // relative, into a subdir
  symlink((d / "link.so").c_str(), (d / "abs.so").c_str());  // absolute
  Target t;
  ASSERT_EQ(resolve_target(AT_FDCWD, (d / "abs.so").c_str(), true, &t), 0);
  EXPECT_STREQ(t.base, "lib.so.1.2");
  EXPECT_TRUE(t.via_symlink);
  EXPECT_EQ(t.st.st_ino, ino(d / "real/lib.so.1.2"));
  // Without following, the link itself.
  Target t2;
  ASSERT_EQ(resolve_target(AT_FDCWD, (d / "abs.so").c_str(), false, &t2), 0);
  EXPECT_TRUE(S_ISLNK(t2.st.st_mode));
}

TEST(Resolve, ErrorsAreValues) {
  TempDir d;
  Target t;
  EXPECT_EQ(resolve_target(AT_FDCWD, (d / "missing").c_str(), true, &t), -ENOENT);
  EXPECT_EQ(resolve_target(AT_FDCWD, (d / "nodir/x").c_str(), true, &t), -ENOENT);
  EXPECT_EQ(resolve_target(AT_FDCWD, "", true, &t), -ENOENT);
  EXPECT_EQ(resolve_target(AT_FDCWD, nullptr, true, &t), -ENOENT);
  EXPECT_EQ(resolve_target(AT_FDCWD, (d.path() + "/").c_str(), true, &t), -EISDIR);
  symlink("loop", (d / "loop").c_str());
  EXPECT_EQ(resolve_target(AT_FDCWD, (d / "loop").c_str(), true, &t), -ELOOP);
  std::string longp = d.path() + "/" + std::string(5000, 'n');
  EXPECT_EQ(resolve_target(AT_FDCWD, longp.c_str(), true, &t), -ENAMETOOLONG);
  std::string longname = d.path() + "/" + std::string(300, 'n');
  EXPECT_EQ(resolve_target(AT_FDCWD, longname.c_str(), true, &t), -ENAMETOOLONG);
}

TEST(Replace, TempNamesAreUniqueAndFitNameMax) {
  char a[NAME_MAX + 1], b[NAME_MAX + 1];
  temp_name("lib.so", a, sizeof a);
  temp_name("lib.so", b, sizeof b);
  EXPECT_STRNE(a, b);
  EXPECT_EQ(std::string(a).rfind(".lib.so.tg-", 0), 0u);
  std::string longbase(NAME_MAX, 'x');
  temp_name(longbase.c_str(), a, sizeof a);
  EXPECT_LE(std::strlen(a), static_cast<size_t>(NAME_MAX));
}

TEST(Replace, NewInodeWithMetadataOldInodeUntouched) {
  TempDir d;
  const std::string p = d / "lib.so";
  write_file(p, "old content");
  chmod(p.c_str(), 0751);
  bool xattrs = setxattr(p.c_str(), "user.tg", "hello", 5, 0) == 0;
  if (geteuid() == 0) {
    ASSERT_EQ(chown(p.c_str(), 1234, 5678), 0);
  }
  int old_fd = open(p.c_str(), O_RDONLY);  // a "user" of the old inode
  const ino_t old_ino = ino(p);

  Target t;
  ASSERT_EQ(resolve_target(AT_FDCWD, p.c_str(), true, &t), 0);
  ReplaceReport rep;
  int fd = replace_file(t, Mode::replace, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0, old_fd, &rep);
  ASSERT_GE(fd, 0) << (rep.failed_step ? rep.failed_step : "");
  ASSERT_EQ(write(fd, "new", 3), 3);
  close(fd);

  EXPECT_NE(ino(p), old_ino);
  EXPECT_EQ(rep.new_ino, ino(p));
  EXPECT_EQ(read_file(p), "new");
  char buf[32] = {};
  EXPECT_EQ(pread(old_fd, buf, sizeof buf, 0), 11);  // the old inode still has the old bytes
  EXPECT_STREQ(buf, "old content");
  struct stat st{};
  stat(p.c_str(), &st);
  EXPECT_EQ(st.st_mode & 07777, 0751u);
  if (geteuid() == 0) {
    EXPECT_EQ(st.st_uid, 1234u);
    EXPECT_EQ(st.st_gid, 5678u);
    EXPECT_TRUE(rep.owner_kept);
  }
  if (xattrs) {
    char v[16] = {};
    EXPECT_EQ(getxattr(p.c_str(), "user.tg", v, sizeof v), 5);
    EXPECT_STREQ(v, "hello");
    EXPECT_EQ(rep.xattrs_copied, 1);
  }
  EXPECT_EQ(count_entries(d.path()), 1);  // no temp file left behind
  close(old_fd);
}

TEST(Replace, KeepsThePrefixForTruncate) {
  TempDir d;
  const std::string p = d / "lib.so";
  std::string content(100000, 'a');
  content[50000] = 'b';
  write_file(p, content);
  int src = open(p.c_str(), O_RDONLY);
  Target t;
  ASSERT_EQ(resolve_target(AT_FDCWD, p.c_str(), true, &t), 0);
  ReplaceReport rep;
  int fd = replace_file(t, Mode::replace, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 50001, src, &rep);
  ASSERT_GE(fd, 0);
  close(fd);
  EXPECT_EQ(read_file(p), content.substr(0, 50001));
  close(src);
}

TEST(Replace, TheNewFdStartsAtOffsetZero) {
  // With O_APPEND (the flags of an append-only fd being moved, or "a+"),
  // copy_file_range refuses the copy and plain writes make it: the caller
  // must still get its fd at offset 0, as from a fresh open. In every mode:
  // atomic mode's unnamed file too (make_unnamed).
  TempDir d;
  const std::string p = d / "lib.so";
  write_file(p, std::string(20000, 'x'));
  int src = open(p.c_str(), O_RDONLY);
  for (int flags : {O_WRONLY, O_WRONLY | O_APPEND, O_RDWR | O_APPEND}) {
    Target t;
    ASSERT_EQ(resolve_target(AT_FDCWD, p.c_str(), true, &t), 0);
    ReplaceReport rep;
    int fd = replace_file(t, Mode::replace, flags | O_CREAT | O_EXCL, kWholeFile, src, &rep);
    ASSERT_GE(fd, 0) << (rep.failed_step ? rep.failed_step : "");
    EXPECT_EQ(rep.copied, 20000);
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 0) << "flags " << std::hex << flags;
    close(fd);
    // Atomic mode's unnamed new file (O_TMPFILE), with the old content too.
    ReplaceReport unnamed;
    fd = make_unnamed(t, flags | O_CREAT | O_EXCL, kWholeFile, src, &unnamed);
    ASSERT_GE(fd, 0) << (unnamed.failed_step ? unnamed.failed_step : "");
    EXPECT_EQ(unnamed.copied, 20000);
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 0) << "unnamed, flags " << std::hex << flags;
    close(fd);
  }
  close(src);
}

// A writer under RLIMIT_FSIZE (`ulimit -f`) smaller than the library: the
// copy of the old content must not write past the limit, which raises
// SIGXFSZ and kills the host by default (measured before: ftruncate to a
// smaller size, which the kernel allows, killed the writer). It fails
// cleanly instead: the name keeps the old file, no temp file is left.
TEST(Replace, ACopyPastTheFileSizeLimitFailsInsteadOfKillingTheHost) {
  TempDir d;
  const std::string p = d / "lib.so";
  const std::string content(3 * 4096, 'x');
  write_file(p, content);
  const ino_t old_ino = ino(p);
  // In a child limited to 4 KiB files: replace_file keeping `keep` bytes,
  // then check(fd, rep, t, src) gives the exit status.
  auto under_limit = [&](off_t keep, auto check) {
    return unit::in_child([&] {
      struct rlimit rl = {4096, RLIM_INFINITY};
      if (setrlimit(RLIMIT_FSIZE, &rl) != 0) return 10;
      int src = open(p.c_str(), O_RDONLY);
      Target t;
      if (src < 0 || resolve_target(AT_FDCWD, p.c_str(), true, &t) != 0) return 11;
      ReplaceReport rep;
      int fd = replace_file(t, Mode::replace, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, keep, src, &rep);
      return check(fd, rep, t, src);
    });
  };
  for (off_t keep : {kWholeFile, off_t{2 * 4096}}) {
    EXPECT_EQ(under_limit(keep,
                          [keep](int fd, ReplaceReport& rep, const Target& t, int src) {
                            if (fd != -EFBIG || rep.error != EFBIG || !rep.failed_step ||
                                std::strcmp(rep.failed_step, "cannot copy the old content") != 0)
                              return 1;
                            fd = make_unnamed(t, O_WRONLY | O_CREAT | O_EXCL, keep, src, &rep);
                            return fd == -EFBIG ? 0 : 2;
                          }),
              0)
        << "keep " << keep << " (153: killed by SIGXFSZ)";
    EXPECT_EQ(ino(p), old_ino);
    EXPECT_EQ(read_file(p), content);
    EXPECT_EQ(count_entries(d.path()), 1);  // no temp file left behind
  }
  // What fits under the limit is still copied.
  EXPECT_EQ(under_limit(4096, [](int fd, ReplaceReport& rep, const Target&, int) {
              return fd >= 0 && rep.copied == 4096 ? 0 : 1;
            }),
            0);
  EXPECT_EQ(read_file(p), content.substr(0, 4096));
}

TEST(Replace, UnlinkModeIsInstallsSequence) {
  TempDir d;
  const std::string p = d / "lib.so";
  write_file(p, "old");
  chmod(p.c_str(), 0700);
  const ino_t old_ino = ino(p);
  int keep = open(p.c_str(), O_RDONLY);
  Target t;
  ASSERT_EQ(resolve_target(AT_FDCWD, p.c_str(), true, &t), 0);
  ReplaceReport rep;
  int fd = replace_file(t, Mode::unlink, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0, keep, &rep);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
  close(fd);
  EXPECT_NE(ino(p), old_ino);
  struct stat st{};
  stat(p.c_str(), &st);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  close(keep);
}

TEST(Replace, FailsCleanlyInAnUnwritableDirectory) {
  if (geteuid() == 0) {
    // Root ignores directory permissions: use a read-only bind... simplest: a
    // directory we can't create in for another reason (it is gone).
    TempDir d;
    const std::string p = d / "lib.so";
    write_file(p, "old");
    Target t;
    ASSERT_EQ(resolve_target(AT_FDCWD, p.c_str(), true, &t), 0);
    std::system(("rm -rf '" + d.path() + "'").c_str());  // the directory disappears
    ReplaceReport rep;
    int fd = replace_file(t, Mode::replace, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0, -1, &rep);
    EXPECT_LT(fd, 0);
    ASSERT_NE(rep.failed_step, nullptr);
    EXPECT_STREQ(rep.failed_step, "cannot create a temporary file in the directory");
    EXPECT_EQ(rep.error, ENOENT);
    return;
  }
  TempDir d;
  const std::string p = d / "lib.so";
  write_file(p, "old");
  chmod(d.path().c_str(), 0555);
  Target t;
  ASSERT_EQ(resolve_target(AT_FDCWD, p.c_str(), true, &t), 0);
  ReplaceReport rep;
  int fd = replace_file(t, Mode::replace, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0, -1, &rep);
  EXPECT_EQ(fd, -EACCES);
  EXPECT_EQ(read_file(p), "old");
  chmod(d.path().c_str(), 0755);
}

TEST(Replace, AtomicPublishesAtTheLastCloseOnly) {
  TempDir d;
  const std::string p = d / "lib.so";
  write_file(p, "old content");
  int src = open(p.c_str(), O_RDONLY);
  Target t;
  ASSERT_EQ(resolve_target(AT_FDCWD, p.c_str(), true, &t), 0);
  ReplaceReport rep;
  int fd = make_unnamed(t, O_WRONLY | O_CLOEXEC, 0, src, &rep);
  if (fd == -EOPNOTSUPP || fd == -EISDIR) GTEST_SKIP() << "no O_TMPFILE on /tmp here";
  ASSERT_GE(fd, 0) << (rep.failed_step ? rep.failed_step : "");
  int dirfd = fcntl(t.dir.get(), F_DUPFD_CLOEXEC, 0);
  ASSERT_TRUE(pending::add(fd, dirfd, t.base, p.c_str(), t.st.st_ino));
  EXPECT_TRUE(pending::any());
  ASSERT_EQ(write(fd, "new", 3), 3);
  EXPECT_EQ(read_file(p), "old content");   // nothing visible while written
  EXPECT_EQ(count_entries(d.path()), 1);    // and no name for it yet

  int copy = dup(fd);
  pending::duplicated(fd, copy);
  pending::closing(fd);
  close(fd);
  EXPECT_EQ(read_file(p), "old content");   // a dup is still open
  pending::closing(copy);                   // the last one: published
  close(copy);
  EXPECT_EQ(read_file(p), "new");
  EXPECT_EQ(ino(p), rep.new_ino);
  EXPECT_FALSE(pending::any());
  EXPECT_EQ(count_entries(d.path()), 1);    // no temp name left
  char buf[32] = {};
  EXPECT_EQ(pread(src, buf, sizeof buf, 0), 11);  // the old inode is intact
  close(src);
}

TEST(Replace, AtomicExecHandoffNamesTheSurvivingFds) {
  TempDir d;
  const std::string p = d / "lib.so";
  write_file(p, "old");
  Target t;
  ASSERT_EQ(resolve_target(AT_FDCWD, p.c_str(), true, &t), 0);
  ReplaceReport rep;
  int fd = make_unnamed(t, O_WRONLY, 0, -1, &rep);  // no O_CLOEXEC: survives exec
  if (fd == -EOPNOTSUPP || fd == -EISDIR) GTEST_SKIP() << "no O_TMPFILE on /tmp here";
  ASSERT_GE(fd, 0);
  int dirfd = fcntl(t.dir.get(), F_DUPFD_CLOEXEC, 0);
  ASSERT_TRUE(pending::add(fd, dirfd, t.base, p.c_str(), t.st.st_ino));
  const char* entry = pending::prepare_exec();
  ASSERT_NE(entry, nullptr);
  std::string e(entry);
  EXPECT_EQ(e.rfind("TRUNCGUARD_PENDING=" + std::to_string(fd) + ":" + std::to_string(dirfd) + ":", 0), 0u) << e;
  EXPECT_NE(e.find(":6c69622e736f:"), std::string::npos) << e;  // "lib.so" in hex
  const std::string ino_field = ":" + std::to_string(t.st.st_ino);
  EXPECT_NE(e.find(ino_field + ":"), std::string::npos) << e;   // not synced: the inode alone
  EXPECT_EQ(fcntl(dirfd, F_GETFD) & FD_CLOEXEC, 0);              // the directory survives exec too
  // Synced, it is handed over synced: the new image's publication syncs the
  // directory (it was handed over without the mark, and published unsynced).
  pending::synced(fd);
  e = pending::prepare_exec();
  EXPECT_NE(e.find(ino_field + "s:"), std::string::npos) << e;
  // And a build from before the mark reads the entry as its own (it dropped
  // one with a field more, and the file with it): its parser, as released
  // (92fe7d4): five fields split at ':' (the last at ';'), OLD_INO by strtoul.
  const char* q = e.c_str() + e.find('=') + 1;
  const char* end = std::strchr(q, ';');
  ASSERT_NE(end, nullptr) << e;
  std::vector<std::string> f;
  for (int k = 0; k < 5; ++k) {
    const char* c = static_cast<const char*>(std::memchr(q, k < 4 ? ':' : ';', static_cast<size_t>(end - q + 1)));
    ASSERT_NE(c, nullptr) << "field " << k << " of " << e;
    f.emplace_back(q, c);
    q = c + 1;
  }
  EXPECT_EQ(strtoul(f[2].c_str(), nullptr, 10), t.st.st_ino) << e;
  EXPECT_EQ(f[3], "6c69622e736f") << e;                               // the base name, hex only
  EXPECT_EQ(f[4].find_first_not_of("0123456789abcdef"), std::string::npos) << e;  // the path, hex only
  pending::closing(fd);
  close(fd);
  EXPECT_EQ(read_file(p), "");  // published (empty: nothing was written)
}

TEST(Replace, AtomicNeverPublishesAReusedFdNumber) {
  TempDir d;
  const std::string p = d / "lib.so";
  write_file(p, "old");
  write_file(d / "unrelated", "unrelated content");
  Target t;
  ASSERT_EQ(resolve_target(AT_FDCWD, p.c_str(), true, &t), 0);
  ReplaceReport rep;
  int fd = make_unnamed(t, O_WRONLY | O_CLOEXEC, 0, -1, &rep);
  if (fd == -EOPNOTSUPP || fd == -EISDIR) GTEST_SKIP() << "no O_TMPFILE on /tmp here";
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(pending::add(fd, fcntl(t.dir.get(), F_DUPFD_CLOEXEC, 0), t.base, p.c_str(), t.st.st_ino));
  // The program closes it behind our back (close_range), and the number is reused.
  ASSERT_EQ(syscall(SYS_close, fd), 0);
  int other = open((d / "unrelated").c_str(), O_RDONLY);
  ASSERT_EQ(other, fd);
  pending::closing(other);  // must not link "unrelated" over lib.so
  close(other);
  EXPECT_EQ(read_file(p), "old");
  EXPECT_FALSE(pending::any());
}

TEST(Replace, CopiesWhatIsThereNow) {
  // The old file shrank after it was looked at (another writer): a write in
  // place copies it to its end now; a truncate gets exactly its length.
  TempDir d;
  const std::string p = d / "lib.so";
  write_file(p, "0123456789");
  Target t;
  ASSERT_EQ(resolve_target(AT_FDCWD, p.c_str(), true, &t), 0);
  int src = open(p.c_str(), O_RDWR);
  ASSERT_EQ(ftruncate(src, 4), 0);  // shrinks under us
  ReplaceReport rep;
  int fd = replace_file(t, Mode::replace, O_WRONLY | O_CREAT | O_EXCL, kWholeFile, src, &rep);
  ASSERT_GE(fd, 0) << (rep.failed_step ? rep.failed_step : "");
  close(fd);
  EXPECT_EQ(read_file(p), "0123");
  EXPECT_EQ(rep.copied, 4);

  Target t2;
  ASSERT_EQ(resolve_target(AT_FDCWD, p.c_str(), true, &t2), 0);
  int src2 = open(p.c_str(), O_RDONLY);
  ReplaceReport rep2;
  fd = replace_file(t2, Mode::replace, O_WRONLY | O_CREAT | O_EXCL, 8, src2, &rep2);  // longer than it is
  ASSERT_GE(fd, 0);
  close(fd);
  EXPECT_EQ(read_file(p), std::string("0123\0\0\0\0", 8));  // as truncate(2) extends
  EXPECT_EQ(rep2.copied, 4);
  close(src);
  close(src2);
}
