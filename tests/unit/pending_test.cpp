// The atomic-mode pending table (shim/pending.cpp) shared with vfork children.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "child_limits.hpp"
#include "hand_over.hpp"
#include "pending.hpp"
#include "temp_dir.hpp"

using namespace tg;

namespace {

struct TempDir : unit::TempDir {
  TempDir() : unit::TempDir("tg-pending") {}
};

using unit::ino;

// An unnamed inode in `dir` (what atomic mode writes into), by a raw system call.
int unnamed_in(int dirfd) {
  return static_cast<int>(syscall(SYS_openat, dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644));
}

// What a vfork child did, in the memory it shares with us (not under
// ThreadSanitizer, whose vfork is a fork: the child's table is then its own).
struct ChildReport {
  volatile bool shared = false;
  volatile bool added = false;
  volatile int fd = -1;
};

struct ChildWork {
  void (*run)(ChildReport*, int dirfd, int spare_fd, const char* name);
  int dirfd;
  int spare_fd;
  const char* name;
};

// Runs `work` in a vfork child (which then _exits) and waits for it. Its own
// frame, so that nothing of the caller's is clobbered by vfork.
__attribute__((noinline)) bool in_vfork_child(ChildReport* report, const ChildWork& work) {
  *report = ChildReport{};
  const pid_t pid = vfork();
  if (pid == 0) {
    report->shared = true;
    work.run(report, work.dirfd, work.spare_fd, work.name);
    _exit(0);
  }
  int status = 0;
  return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

// A vfork child that execs with a pending file whose fds all close at exec
// publishes it there, and must take its slots with it: they are in our
// memory. Left behind, such a slot (the child's fd number, a group index)
// matched this process's own close of the same fd number once a writer here
// reused the group: the writer's file was published through an unrelated fd
// (refused: EBADF from that close) and never at all through its own.
TEST(Pending, VforkChildThatExecsLeavesNoSlotBehind) {
  TempDir d;
  int probe = unnamed_in(d.fd());
  if (probe < 0) GTEST_SKIP() << "no O_TMPFILE on /tmp here";
  close(probe);
  ASSERT_FALSE(pending::any());

  static ChildReport child;
  const std::string child_name = d / "child.so";
  ASSERT_TRUE(in_vfork_child(&child, {[](ChildReport* r, int dir, int, const char* name) {
                                        const int fd = unnamed_in(dir);
                                        const int dirfd = static_cast<int>(syscall(SYS_fcntl, dir, F_DUPFD_CLOEXEC, 0));
                                        r->fd = fd;
                                        if (fd >= 0 && dirfd >= 0 && pending::add(fd, dirfd, "child.so", name, 0)) {
                                          r->added = true;
                                          // What execve does first. Its fd is close-on-exec: published now.
                                          pending::prepare_exec();
                                        }
                                      },
                                      d.fd(), -1, child_name.c_str()}));
  if (!child.shared) GTEST_SKIP() << "vfork does not share memory here (ThreadSanitizer makes it a fork)";
  ASSERT_TRUE(child.added);
  EXPECT_NE(ino(child_name), 0u) << "the child's file was not published at its exec";
  EXPECT_FALSE(pending::any()) << "the child's exec left its slot in our memory";

  // Here, the same fd number names something else, not pending.
  const int x = child.fd;
  const int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(null, 0);
  if (null != x) {
    ASSERT_EQ(dup2(null, x), x);
    close(null);
  }
  // A writer here, whose group is the one the child used.
  const int fd = unnamed_in(d.fd());
  ASSERT_GE(fd, 0);
  ASSERT_NE(fd, x);
  struct stat st{};
  ASSERT_EQ(fstat(fd, &st), 0);
  const std::string name = d / "parent.so";
  ASSERT_TRUE(pending::add(fd, fcntl(d.fd(), F_DUPFD_CLOEXEC, 0), "parent.so", name.c_str(), 0));

  EXPECT_EQ(pending::closing(x), 0) << "closing an fd that is not pending here reported a publication";
  close(x);
  EXPECT_EQ(ino(name), 0u) << "published before its writer closed it";
  EXPECT_EQ(pending::closing(fd), 0);
  close(fd);
  EXPECT_EQ(ino(name), st.st_ino) << "the writer's file was not published at its close";
  EXPECT_FALSE(pending::any());
}

// vfork children that died with files pending (killed, or _exit without
// close) fill the table; a writer here then reclaims their entries, without
// closing their directory fds (numbers in the children's fd tables).
TEST(Pending, DeadVforkChildrenAreReclaimed) {
  TempDir d;
  int probe = unnamed_in(d.fd());
  if (probe < 0) GTEST_SKIP() << "no O_TMPFILE on /tmp here";
  close(probe);
  ASSERT_FALSE(pending::any());
  const int canary = open("/dev/null", O_RDONLY | O_CLOEXEC);  // must stay open
  ASSERT_GE(canary, 0);

  static ChildReport child;
  int added = 0;
  for (int i = 0; i < pending::kMaxFiles; ++i) {  // exactly full: no child reclaims
    // The fd dies with the child (_exit without close): nothing is published.
    ASSERT_TRUE(in_vfork_child(&child, {[](ChildReport* r, int dir, int spare, const char* name) {
                                          const int fd = unnamed_in(dir);
                                          // Its directory fd takes the canary's number in its fd table.
                                          const int dirfd = static_cast<int>(syscall(SYS_dup2, dir, spare));
                                          if (fd >= 0 && dirfd >= 0 && pending::add(fd, dirfd, name, name, 0))
                                            r->added = true;
                                        },
                                        d.fd(), canary, "dead.so"}));
    if (!child.shared) GTEST_SKIP() << "vfork does not share memory here (ThreadSanitizer makes it a fork)";
    added += child.added;
  }
  ASSERT_EQ(added, pending::kMaxFiles);  // the table is full of dead children's files

  const int fd = unnamed_in(d.fd());
  ASSERT_GE(fd, 0);
  struct stat st{};
  ASSERT_EQ(fstat(fd, &st), 0);
  const std::string name = d / "lib.so";
  ASSERT_TRUE(pending::add(fd, fcntl(d.fd(), F_DUPFD_CLOEXEC, 0), "lib.so", name.c_str(), 0))
      << "the dead children's entries were not reclaimed";
  EXPECT_EQ(pending::closing(fd), 0);
  close(fd);
  EXPECT_EQ(ino(name), st.st_ino);
  EXPECT_EQ(ino(d / "dead.so"), 0u);
  EXPECT_EQ(fcntl(canary, F_GETFD), FD_CLOEXEC) << "a dead child's directory fd number was closed here";
  close(canary);
  EXPECT_FALSE(pending::any());
}

// At exit, each pending file is published once, and none of its fds (dups
// included) is left in the table.
TEST(Pending, ExitPublishesAndEmptiesTheTable) {
  TempDir d;
  const int fd = unnamed_in(d.fd());
  if (fd < 0) GTEST_SKIP() << "no O_TMPFILE on /tmp here";
  ASSERT_FALSE(pending::any());
  struct stat st{};
  ASSERT_EQ(fstat(fd, &st), 0);
  const std::string name = d / "lib.so";
  ASSERT_TRUE(pending::add(fd, fcntl(d.fd(), F_DUPFD_CLOEXEC, 0), "lib.so", name.c_str(), 0));
  const int copy = dup(fd);
  pending::duplicated(fd, copy);
  pending::publish_all();
  EXPECT_EQ(ino(name), st.st_ino);
  EXPECT_FALSE(pending::any());
  EXPECT_EQ(pending::closing(fd), 0);
  EXPECT_EQ(pending::closing(copy), 0);
  close(fd);
  close(copy);
}

// close_range/closefrom: the pending fds inside the range publish (their file
// once its last fd in the range goes); the ones outside stay pending.
TEST(Pending, ClosingARangePublishesOnlyTheFdsInIt) {
  TempDir d;
  const int a = unnamed_in(d.fd());
  if (a < 0) GTEST_SKIP() << "no O_TMPFILE on /tmp here";
  const int b = unnamed_in(d.fd());
  ASSERT_GE(b, 0);
  const std::string name_a = d / "a.so", name_b = d / "b.so";
  ASSERT_TRUE(pending::add(a, fcntl(d.fd(), F_DUPFD_CLOEXEC, 0), "a.so", name_a.c_str(), 0));
  ASSERT_TRUE(pending::add(b, fcntl(d.fd(), F_DUPFD_CLOEXEC, 0), "b.so", name_b.c_str(), 0));
  const int lo = a < b ? a : b, hi = a < b ? b : a;
  const std::string& name_lo = lo == a ? name_a : name_b;
  const std::string& name_hi = lo == a ? name_b : name_a;
  struct stat st_lo{}, st_hi{};
  ASSERT_EQ(fstat(lo, &st_lo), 0);
  ASSERT_EQ(fstat(hi, &st_hi), 0);

  EXPECT_EQ(pending::closing_range(static_cast<unsigned>(lo), static_cast<unsigned>(lo)), 0);
  EXPECT_EQ(ino(name_lo), st_lo.st_ino) << "the pending fd inside the range was not published";
  EXPECT_EQ(ino(name_hi), 0u) << "a pending fd outside the range was published";
  EXPECT_TRUE(pending::any());

  EXPECT_EQ(pending::closing_range(static_cast<unsigned>(hi), ~0U), 0);
  EXPECT_EQ(ino(name_hi), st_hi.st_ino) << "closefrom's open-ended range missed a pending fd";
  EXPECT_FALSE(pending::any());
  close(a);
  close(b);
}

// The program closed the directory fd behind our back and its number now
// names another directory: the file is not published, and never there.
TEST(Pending, AReusedDirectoryFdNumberPublishesNothing) {
  TempDir d, elsewhere;
  const int fd = unnamed_in(d.fd());
  if (fd < 0) GTEST_SKIP() << "no O_TMPFILE on /tmp here";
  const std::string name = d / "lib.so";
  const int dirfd = fcntl(d.fd(), F_DUPFD_CLOEXEC, 0);
  ASSERT_TRUE(pending::add(fd, dirfd, "lib.so", name.c_str(), 0));
  ASSERT_EQ(dup2(elsewhere.fd(), dirfd), dirfd);  // closed and reused, as a close loop + open would
  EXPECT_EQ(pending::closing(fd), EBADF);
  EXPECT_EQ(ino(name), 0u);
  EXPECT_EQ(ino(elsewhere / "lib.so"), 0u) << "linked into the directory that took the fd number";
  EXPECT_GE(fcntl(dirfd, F_GETFD), 0) << "the program's fd that took the number was closed";
  EXPECT_FALSE(pending::any());
  close(fd);
  close(dirfd);
}

// Atomic mode registers the caller's fd only once it has its final number
// (the lowest free one, after the shim's own fds are closed), in room taken
// before: between reserve and commit nothing is pending (no close, range,
// exit or exec publishes it); commit registers the number given, which is
// then the fd that publishes at its close.
TEST(Pending, AReservedEntryIsPendingOnlyOnceCommittedUnderItsFinalNumber) {
  TempDir d;
  const int made = unnamed_in(d.fd());
  if (made < 0) GTEST_SKIP() << "no O_TMPFILE on /tmp here";
  ASSERT_FALSE(pending::any());
  struct stat st{};
  ASSERT_EQ(fstat(made, &st), 0);
  const std::string name = d / "lib.so";
  pending::Reservation room;
  ASSERT_TRUE(pending::reserve(made, fcntl(d.fd(), F_DUPFD_CLOEXEC, 0), "lib.so", name.c_str(), 0, &room));
  EXPECT_FALSE(pending::any()) << "reserved, and already pending";
  EXPECT_EQ(pending::closing(made), 0);
  EXPECT_EQ(pending::closing_range(0, ~0U), 0);
  pending::publish_all();
  EXPECT_EQ(pending::prepare_exec(), nullptr);
  EXPECT_EQ(ino(name), 0u) << "published before it was committed";

  // The fd moves to another number (as to the lowest free one), then commits.
  const int moved = fcntl(made, F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(moved, 0);
  close(made);
  pending::commit(room, moved);
  EXPECT_TRUE(pending::any());
  EXPECT_EQ(pending::closing(made), 0) << "the number it was made under is not pending";
  EXPECT_EQ(ino(name), 0u);
  EXPECT_EQ(pending::closing(moved), 0);
  close(moved);
  EXPECT_EQ(ino(name), st.st_ino) << "not published at the close of the number it was committed under";
  EXPECT_FALSE(pending::any());
}

// A full table: reserve says so and takes nothing (the caller keeps its
// directory fd and falls back); once room is free again, it succeeds.
TEST(Pending, AFullTableReservesNothing) {
  TempDir d;
  int fds[pending::kMaxFiles];
  for (int& fd : fds) {
    fd = unnamed_in(d.fd());
    if (fd < 0) GTEST_SKIP() << "no O_TMPFILE on /tmp here";
    ASSERT_TRUE(pending::add(fd, fcntl(d.fd(), F_DUPFD_CLOEXEC, 0), "x.so", (d / "x.so").c_str(), 0));
  }
  const int extra = unnamed_in(d.fd());
  ASSERT_GE(extra, 0);
  const int dirfd = fcntl(d.fd(), F_DUPFD_CLOEXEC, 0);
  pending::Reservation room;
  EXPECT_FALSE(pending::reserve(extra, dirfd, "y.so", (d / "y.so").c_str(), 0, &room));
  EXPECT_EQ(fcntl(dirfd, F_GETFD), FD_CLOEXEC) << "a refused reservation closed the caller's directory fd";
  for (int fd : fds) {
    EXPECT_EQ(pending::closing(fd), 0);
    close(fd);
  }
  EXPECT_FALSE(pending::any());
  ASSERT_TRUE(pending::reserve(extra, dirfd, "y.so", (d / "y.so").c_str(), 0, &room));
  pending::commit(room, extra);
  EXPECT_EQ(pending::closing(extra), 0);
  close(extra);
  EXPECT_NE(ino(d / "y.so"), 0u);
  EXPECT_FALSE(pending::any());
}

// close_range/closefrom leave open the directory fds kept for the files still
// pending in this process (in the range, ascending), unless the program
// already closed one and reused its number: that fd is the program's.
TEST(Pending, TheKeptDirectoryFdsInARangeAreTheOnesStillOurs) {
  TempDir d, elsewhere;
  const int a = unnamed_in(d.fd());
  if (a < 0) GTEST_SKIP() << "no O_TMPFILE on /tmp here";
  const int b = unnamed_in(d.fd());
  ASSERT_GE(b, 0);
  ASSERT_FALSE(pending::any());
  const int dir_hi = fcntl(d.fd(), F_DUPFD_CLOEXEC, 600), dir_lo = fcntl(d.fd(), F_DUPFD_CLOEXEC, 500);
  ASSERT_GE(dir_lo, 500);
  ASSERT_TRUE(pending::add(a, dir_hi, "a.so", (d / "a.so").c_str(), 0));
  ASSERT_TRUE(pending::add(b, dir_lo, "b.so", (d / "b.so").c_str(), 0));
  int kept[pending::kMaxFiles];
  ASSERT_EQ(pending::kept_fds_in(0, ~0U, kept, pending::kMaxFiles), 2);
  EXPECT_EQ(kept[0], dir_lo);
  EXPECT_EQ(kept[1], dir_hi);
  ASSERT_EQ(pending::kept_fds_in(static_cast<unsigned>(dir_lo + 1), ~0U, kept, pending::kMaxFiles), 1);
  EXPECT_EQ(kept[0], dir_hi);
  EXPECT_EQ(pending::kept_fds_in(0, static_cast<unsigned>(dir_lo - 1), kept, pending::kMaxFiles), 0);
  // A forked child owns none of them.
  EXPECT_EQ(unit::in_child([] {
              int k[pending::kMaxFiles];
              return pending::kept_fds_in(0, ~0U, k, pending::kMaxFiles);
            }),
            0);
  // Closed and reused by the program: its own fd now.
  ASSERT_EQ(dup2(elsewhere.fd(), dir_hi), dir_hi);
  ASSERT_EQ(pending::kept_fds_in(0, ~0U, kept, pending::kMaxFiles), 1);
  EXPECT_EQ(kept[0], dir_lo);
  EXPECT_EQ(pending::closing(b), 0);
  EXPECT_EQ(pending::closing(a), EBADF);  // its directory is gone: not published
  close(a);
  close(b);
  close(dir_hi);
  EXPECT_FALSE(pending::any());
}

// exec: a pending file whose directory fd the program closed and reused is
// not handed over (the new image would take that fd for the directory): it
// is ended now (not published: its directory is gone), and the program's fd
// at that number keeps its close-on-exec bit.
TEST(Pending, AReusedDirectoryFdNumberIsNotHandedOverAtExec) {
  TempDir d, elsewhere;
  const int fd = unnamed_in(d.fd());
  if (fd < 0) GTEST_SKIP() << "no O_TMPFILE on /tmp here";
  ASSERT_FALSE(pending::any());
  ASSERT_EQ(fcntl(fd, F_SETFD, 0), 0);  // survives exec: would be handed over
  const std::string name = d / "lib.so";
  const int dirfd = fcntl(d.fd(), F_DUPFD_CLOEXEC, 0);
  ASSERT_TRUE(pending::add(fd, dirfd, "lib.so", name.c_str(), 0));
  ASSERT_EQ(dup3(elsewhere.fd(), dirfd, O_CLOEXEC), dirfd);  // the program's own now
  EXPECT_EQ(pending::prepare_exec(), nullptr) << "handed over with a directory fd that is not ours";
  EXPECT_EQ(fcntl(dirfd, F_GETFD), FD_CLOEXEC) << "the program's fd lost its close-on-exec bit";
  EXPECT_FALSE(pending::any());
  EXPECT_EQ(ino(name), 0u);
  EXPECT_EQ(ino(elsewhere / "lib.so"), 0u) << "linked into the directory that took the fd number";
  close(fd);
  close(dirfd);
}

// The exec hand-over's entries (TRUNCGUARD_PENDING) come from the
// environment, which anyone may write: hand_over::parse takes only the form
// the shim writes, FDS:DIRFD:OLD_INO[s]:BASE_HEX:PATH_HEX;.
namespace {

std::string hex(const std::string& s) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

bool parse(const std::string& entry, hand_over::Entry* e) {
  const size_t semi = entry.find(';');
  if (semi == std::string::npos) return false;
  return hand_over::parse(entry.data(), entry.data() + semi, e);
}

const std::string kNames = ":" + hex("lib.so") + ":" + hex("/opt/app/lib.so") + ";";

}  // namespace

TEST(HandOver, ReadsTheEntriesTheShimWrites) {
  hand_over::Entry e;
  const std::string one = "7:8:1234" + kNames;  // e.fds points into it
  ASSERT_TRUE(parse(one, &e));
  EXPECT_EQ(std::string(e.fds, e.fds_len), "7");
  EXPECT_EQ(e.first_fd, 7);
  EXPECT_EQ(e.dirfd, 8);
  EXPECT_EQ(e.old_ino, 1234u);
  EXPECT_FALSE(e.synced);
  EXPECT_STREQ(e.base, "lib.so");
  EXPECT_STREQ(e.path, "/opt/app/lib.so");

  const std::string three = "12,3,2147483647:0:18446744073709551615s" + kNames;
  ASSERT_TRUE(parse(three, &e));
  EXPECT_EQ(std::string(e.fds, e.fds_len), "12,3,2147483647");
  EXPECT_EQ(e.first_fd, 12);
  EXPECT_EQ(e.dirfd, 0);
  EXPECT_EQ(e.old_ino, 18446744073709551615ul);
  EXPECT_TRUE(e.synced);
}

TEST(HandOver, NumbersThatDoNotFitAreNoEntry) {
  hand_over::Entry e;
  EXPECT_FALSE(parse("4294967303:8:1" + kNames, &e)) << "atoi read it as fd 7";
  EXPECT_FALSE(parse("7,2147483648:8:1" + kNames, &e));
  EXPECT_FALSE(parse("7:4294967304:1" + kNames, &e)) << "atoi read it as fd 8";
  EXPECT_FALSE(parse("7:8:18446744073709551616" + kNames, &e)) << "strtoul read it as ULONG_MAX";
  EXPECT_FALSE(parse("7:8:99999999999999999999999s" + kNames, &e));
  EXPECT_FALSE(parse("-1:8:1" + kNames, &e));
  EXPECT_FALSE(parse("7:-8:1" + kNames, &e));
  EXPECT_FALSE(parse("+7:8:1" + kNames, &e));
  EXPECT_FALSE(parse(" 7:8:1" + kNames, &e));
  EXPECT_FALSE(parse("07:8:1" + kNames, &e)) << "the shim writes no leading zero";
  EXPECT_FALSE(parse("7:8:01" + kNames, &e));
  EXPECT_TRUE(parse("0:0:0" + kNames, &e));
}

TEST(HandOver, WhatAppendWritesReadsBack) {
  char buf[2048];
  size_t end = 0;
  ASSERT_TRUE(hand_over::append(buf, sizeof buf, &end, "7,9", 8, 1234, true, "odd\nname\xff.so", "/a b/\t.so"));
  const std::string first(buf, end);
  ASSERT_TRUE(hand_over::append(buf, sizeof buf, &end, "3", 4, 5, false, "x", "/x"));
  EXPECT_EQ(std::string(buf + first.size()), "3:4:5:78:2f78;");
  hand_over::Entry e;
  ASSERT_TRUE(parse(first, &e));
  EXPECT_EQ(std::string(e.fds, e.fds_len), "7,9");
  EXPECT_EQ(e.dirfd, 8);
  EXPECT_EQ(e.old_ino, 1234u);
  EXPECT_TRUE(e.synced);
  EXPECT_STREQ(e.base, "odd\nname\xff.so");
  EXPECT_STREQ(e.path, "/a b/\t.so");
  // One that does not fit leaves the buffer as it was.
  const size_t before = end;
  EXPECT_FALSE(hand_over::append(buf, before + 12, &end, "3", 4, 5, false, "x", "/x"));
  EXPECT_EQ(end, before);
  EXPECT_EQ(buf[end], '\0');
}

TEST(HandOver, AnythingElseIsNoEntry) {
  hand_over::Entry e;
  for (const char* fds : {"", ",", "7,", ",7", "7,,9", "7 ,9", "x"})
    EXPECT_FALSE(parse(std::string(fds) + ":8:1" + kNames, &e)) << "FDS " << fds;
  EXPECT_FALSE(parse("7::1" + kNames, &e));
  for (const char* ino : {"", "s", "1ss", "1x", "1S", "s1", "1s1"})
    EXPECT_FALSE(parse(std::string("7:8:") + ino + kNames, &e)) << "OLD_INO " << ino;
  EXPECT_FALSE(parse("7:8:1:" + hex("lib.so") + ";", &e)) << "four fields";
  EXPECT_FALSE(parse("7:8:1" + kNames.substr(0, kNames.size() - 1) + ":s;", &e)) << "six fields";
  for (const char* base : {"", "..", ".", "a/b", "/lib.so"})
    EXPECT_FALSE(parse("7:8:1:" + hex(base) + ":" + hex("/x") + ";", &e)) << "BASE " << base;
  EXPECT_FALSE(parse("7:8:1:6c6:" + hex("/x") + ";", &e)) << "odd hex";
  EXPECT_FALSE(parse("7:8:1:6c0069:" + hex("/x") + ";", &e)) << "a NUL in BASE";
  EXPECT_FALSE(parse("7:8:1:4C4942:" + hex("/x") + ";", &e)) << "upper-case hex is not the shim's";
  EXPECT_FALSE(parse("7:8:1:" + hex(std::string(256, 'a')) + ":" + hex("/x") + ";", &e)) << "BASE over NAME_MAX";
  EXPECT_FALSE(parse("7:8:1:" + hex("lib.so") + ":" + hex(std::string(1024, 'a')) + ";", &e)) << "PATH too long";
  EXPECT_TRUE(parse("7:8:1:" + hex(std::string(255, 'a')) + ":" + hex(std::string(1023, 'a')) + ";", &e))
      << "the longest BASE and PATH the entry can carry";
}
