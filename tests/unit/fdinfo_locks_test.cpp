// The fdinfo lock parser (shim/fdinfo_locks.cpp), which an fd move uses to
// take the locks held through the fd again on the new file: the kernel's own
// listings (locks taken here, read back from /proc/self/fdinfo) and texts in
// the formats of other kernels, cut short, or malformed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <string>

#include "fdinfo_locks.hpp"
#include "temp_dir.hpp"

using namespace tg;

namespace {

struct Parsed {
  int count = 0;
  int lost = 0;
  FdLock locks[40]{};
};

Parsed parse(const std::string& text, bool cut = false, int max = 32) {
  Parsed p;
  // A buffer of the text's own size: no NUL after it to lean on.
  auto* copy = new char[text.size() ? text.size() : 1];
  std::memcpy(copy, text.data(), text.size());
  p.count = parse_fdinfo_locks(copy, text.size(), cut, p.locks, max, &p.lost);
  delete[] copy;
  return p;
}

std::string fdinfo(int fd) {
  const std::string path = "/proc/self/fdinfo/" + std::to_string(fd);
  const int f = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(f, 0) << path;
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(f, buf, sizeof buf)) > 0;) out.append(buf, n);
  close(f);
  return out;
}

void expect_lock(const FdLock& l, FdLock::Kind kind, short type, off_t start, off_t len) {
  EXPECT_EQ(l.kind, kind);
  EXPECT_EQ(l.type, type);
  EXPECT_EQ(l.start, start);
  EXPECT_EQ(l.len, len);
}

struct LockedFile : unit::TempDir {
  LockedFile() : unit::TempDir("tg-fdinfo") {
    const std::string f = *this / "data";
    fd = open(f.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(ftruncate(fd, 4096), 0);
  }
  ~LockedFile() { close(fd); }
  void posix(short type, off_t start, off_t len, int cmd = F_SETLK) const {
    struct flock fl {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    ASSERT_EQ(fcntl(fd, cmd, &fl), 0) << strerror(errno);
  }
  int fd = -1;
};

}  // namespace

// This kernel's own listing: a flock, then POSIX locks (one to the end of
// the file) and OFD locks (pid -1) through other fds on the file.
TEST(FdinfoLocks, TheKernelsOwnListings) {
  LockedFile f;
  ASSERT_EQ(flock(f.fd, LOCK_SH), 0);
  Parsed p = parse(fdinfo(f.fd));
  ASSERT_EQ(p.count, 1) << fdinfo(f.fd);
  expect_lock(p.locks[0], FdLock::flock, F_RDLCK, 0, 0);

  f.posix(F_WRLCK, 10, 5);
  f.posix(F_RDLCK, 100, 0);  // to the end of file: "100 EOF"
  p = parse(fdinfo(f.fd));
  ASSERT_EQ(p.count, 3) << fdinfo(f.fd);
  EXPECT_EQ(p.lost, 0);
  expect_lock(p.locks[0], FdLock::flock, F_RDLCK, 0, 0);
  // (The kernel lists the POSIX locks in its own order.)
  const int w = p.locks[1].type == F_WRLCK ? 1 : 2;
  expect_lock(p.locks[w], FdLock::posix, F_WRLCK, 10, 5);
  expect_lock(p.locks[3 - w], FdLock::posix, F_RDLCK, 100, 0);

  LockedFile g;
  g.posix(F_WRLCK, 20, 1, F_OFD_SETLK);
  g.posix(F_RDLCK, 100, 0, F_OFD_SETLK);  // "100 EOF"
  const std::string text = fdinfo(g.fd);
  ASSERT_NE(text.find("OFDLCK ADVISORY  "), std::string::npos) << text;
  ASSERT_NE(text.find(" -1 "), std::string::npos) << text;
  p = parse(text);
  ASSERT_EQ(p.count, 2) << text;
  const int o = p.locks[0].type == F_WRLCK ? 0 : 1;
  expect_lock(p.locks[o], FdLock::ofd, F_WRLCK, 20, 1);
  expect_lock(p.locks[1 - o], FdLock::ofd, F_RDLCK, 100, 0);
}

// More than the caller holds: the first `max`, and the others counted lost.
TEST(FdinfoLocks, MoreThanThirtyTwoLocks) {
  LockedFile f;
  for (int i = 0; i < 40; ++i) f.posix(i % 2 ? F_RDLCK : F_WRLCK, 10 * i, 5);
  const std::string text = fdinfo(f.fd);
  Parsed p = parse(text, false, 32);
  EXPECT_EQ(p.count, 32) << text;
  EXPECT_EQ(p.lost, 8);
  for (int i = 0; i < p.count; ++i) {
    EXPECT_EQ(p.locks[i].kind, FdLock::posix);
    EXPECT_EQ(p.locks[i].len, 5);
    EXPECT_EQ(p.locks[i].start % 10, 0);
    EXPECT_EQ(p.locks[i].type, (p.locks[i].start / 10) % 2 ? F_RDLCK : F_WRLCK);
  }
}

// A lease is listed (LEASE ACTIVE) but is no lock to take again.
TEST(FdinfoLocks, ALeaseIsSkipped) {
  LockedFile f;
  const std::string name = f / "data";
  const int r = open(name.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(r, 0);
  close(f.fd);
  f.fd = r;
  if (fcntl(r, F_SETLEASE, F_RDLCK) != 0) GTEST_SKIP() << "no lease here: " << strerror(errno);
  ASSERT_EQ(flock(r, LOCK_SH), 0);
  const std::string text = fdinfo(r);
  ASSERT_NE(text.find("LEASE"), std::string::npos) << text;
  Parsed p = parse(text);
  ASSERT_EQ(p.count, 1) << text;
  expect_lock(p.locks[0], FdLock::flock, F_RDLCK, 0, 0);
  EXPECT_EQ(p.lost, 0);
  fcntl(r, F_SETLEASE, F_UNLCK);
}

// The formats of lock_get_status in other kernels and states.
TEST(FdinfoLocks, OtherKernelsFormats) {
  const std::string text =
      "pos:\t0\nflags:\t0100002\nmnt_id:\t29\nino:\t1311849\n"
      "lock:\t1: FLOCK  ADVISORY  WRITE 4242 fe:01:1311849 0 EOF\n"
      "lock:\t2: POSIX  MANDATORY WRITE 4242 08:01:1311849 0 99\n"  // (before 5.15)
      "lock:\t3: OFDLCK ADVISORY  READ -1 fe:01:1311849 1024 EOF\n"
      "lock:\t4: LEASE  ACTIVE    READ 4242 fe:01:1311849 0 EOF\n"
      "lock:\t5: DELEG  ACTIVE    READ 4242 fe:01:1311849 0 EOF\n"
      "lock:\t6: LEASE  BREAKING  UNLCK 4242 fe:01:1311849 0 EOF\n"
      "lock:\t7: ACCESS ADVISORY  READ 4242 fe:01:1311849 0 EOF\n"
      "lock:\t8: UNKNOWN UNKNOWN  WRITE 4242 fe:01:1311849 0 EOF\n"
      "lock:\t9: POSIX  ADVISORY  UNLCK 4242 fe:01:1311849 0 9\n"
      "lock:\t10: POSIX  ADVISORY  READ 4242 fe:01:1311849 9223372036854775806 9223372036854775806\n";
  const Parsed p = parse(text);
  ASSERT_EQ(p.count, 4);
  EXPECT_EQ(p.lost, 0);
  expect_lock(p.locks[0], FdLock::flock, F_WRLCK, 0, 0);
  expect_lock(p.locks[1], FdLock::posix, F_WRLCK, 0, 100);
  expect_lock(p.locks[2], FdLock::ofd, F_RDLCK, 1024, 0);
  expect_lock(p.locks[3], FdLock::posix, F_RDLCK, LLONG_MAX - 1, 1);
}

// The last line cut by the reader's buffer: "... 100 1" of "... 100 1999"
// must not be read as the range 100..1, nor as anything.
TEST(FdinfoLocks, ALastLineCutIsNotRead) {
  const std::string whole =
      "pos:\t0\n"
      "lock:\t1: POSIX  ADVISORY  WRITE 7 fe:01:12 0 9\n"
      "lock:\t2: POSIX  ADVISORY  WRITE 7 fe:01:12 100 1999\n";
  for (size_t cut_at = whole.find("lock:\t2"); cut_at < whole.size(); ++cut_at) {
    const Parsed p = parse(whole.substr(0, cut_at), true);
    ASSERT_EQ(p.count, 1) << "cut at " << cut_at;
    expect_lock(p.locks[0], FdLock::posix, F_WRLCK, 0, 10);
    EXPECT_EQ(p.lost, 1) << "the rest of the listing is lost";
  }
  const Parsed p = parse(whole);
  ASSERT_EQ(p.count, 2);
  expect_lock(p.locks[1], FdLock::posix, F_WRLCK, 100, 1900);
  EXPECT_EQ(p.lost, 0);
}

// Nothing that is not a lock the kernel could list: no negative offset, no
// end before the start, no number an off_t can't hold, nothing after the end.
TEST(FdinfoLocks, MalformedLinesAreSkipped) {
  const char* bad[] = {
      "lock:\t1: POSIX  ADVISORY  WRITE 7 fe:01:12 -5 9\n",
      "lock:\t1: POSIX  ADVISORY  WRITE 7 fe:01:12 10 9\n",
      "lock:\t1: POSIX  ADVISORY  WRITE 7 fe:01:12 99999999999999999999 EOF\n",
      "lock:\t1: POSIX  ADVISORY  WRITE 7 fe:01:12 0 99999999999999999999\n",
      "lock:\t1: POSIX  ADVISORY  WRITE 7 fe:01:12 0 9 10\n",
      "lock:\t1: POSIX  ADVISORY  WRITE 7 fe:01:12\n",
      "lock:\t1: POSIX\n",
      "lock:\t1: POSIXLY ADVISORY  WRITE 7 fe:01:12 0 9\n",
      "lock:\t1: POSIX  ADVISORY  WRITER 7 fe:01:12 0 9\n",
      "lock:\n",
      "lock:",
      "lock:\t1: POSIX  ADVISORY  WRITE 7 fe:01:12 0 9",  // no newline
      " lock:\t1: POSIX  ADVISORY  WRITE 7 fe:01:12 0 9\n",
  };
  for (const char* text : bad) {
    const Parsed p = parse(text);
    EXPECT_EQ(p.count, 0) << text;
    EXPECT_EQ(p.lost, 0) << text;
  }
  EXPECT_EQ(parse("").count, 0);
  // The largest end the kernel writes as a number, and OFFSET_MAX (which it
  // writes as EOF) read as the same lock.
  Parsed p = parse("lock:\t1: POSIX  ADVISORY  READ 7 fe:01:12 0 9223372036854775806\n");
  ASSERT_EQ(p.count, 1);
  EXPECT_EQ(p.locks[0].len, LLONG_MAX);
  p = parse("lock:\t1: POSIX  ADVISORY  READ 7 fe:01:12 5 9223372036854775807\n");
  ASSERT_EQ(p.count, 1);
  EXPECT_EQ(p.locks[0].start, 5);
  EXPECT_EQ(p.locks[0].len, 0);
}
