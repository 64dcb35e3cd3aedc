// The guard's own fds on a file the program may hold POSIX locks on
// (shim/posix_locks.cpp): closed when no lock is held, parked while one is,
// and closed once the program closes an fd on that file itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "locks.hpp"
#include "posix_locks.hpp"
#include "temp_dir.hpp"

using namespace tg;
using unit::locked_for_others;
using unit::open_locked;

namespace {

struct TempDir : unit::TempDir {
  TempDir() : unit::TempDir("tg-locks") {}
};

bool is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

}  // namespace

TEST(PosixLocks, AnFdOnAnUnlockedFileIsClosed) {
  TempDir d;
  const std::string f = d / "data";
  int fd = open(f.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  int own = open(f.c_str(), O_RDONLY);
  ASSERT_GE(own, 0);
  posix_locks::close_own(own);
  EXPECT_FALSE(is_open(own));
  EXPECT_FALSE(posix_locks::any_parked());
  close(fd);
}

TEST(PosixLocks, AnFdOnALockedFileIsParkedUntilTheProgramClosesOne) {
  TempDir d;
  const std::string f = d / "data";
  int fd = open_locked(f);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(locked_for_others(f));
  int own = open(f.c_str(), O_RDONLY);
  ASSERT_GE(own, 0);
  posix_locks::close_own(own);
  EXPECT_TRUE(locked_for_others(f)) << "closing the guard's fd released the program's lock";
  EXPECT_TRUE(is_open(own));
  EXPECT_TRUE(posix_locks::any_parked());
  // Another file's close leaves it parked.
  struct stat other;
  ASSERT_EQ(stat(d.path().c_str(), &other), 0);
  posix_locks::program_closed(other.st_dev, other.st_ino);
  EXPECT_TRUE(is_open(own));
  // The program closes its fd on the file (its lock goes): the parked fd goes too.
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  close(fd);
  posix_locks::program_closed(st.st_dev, st.st_ino);
  EXPECT_FALSE(is_open(own));
  EXPECT_FALSE(posix_locks::any_parked());
  EXPECT_FALSE(locked_for_others(f));
}

// A file the program keeps locked and writes again and again: the parked fd
// is lent for each look and comes back, instead of a new one parked per write.
TEST(PosixLocks, AParkedFdIsLentAndComesBackWhileTheLockIsHeld) {
  TempDir d;
  const std::string f = d / "data";
  int fd = open_locked(f);
  ASSERT_GE(fd, 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(posix_locks::borrow(st.st_dev, st.st_ino), -1) << "nothing parked yet";
  int own = open(f.c_str(), O_RDONLY);
  ASSERT_GE(own, 0);
  posix_locks::close_own(own);
  for (int i = 0; i < 100; ++i) {
    int lent = posix_locks::borrow(st.st_dev, st.st_ino);
    ASSERT_EQ(lent, own) << "round " << i;
    EXPECT_EQ(posix_locks::borrow(st.st_dev, st.st_ino), -1) << "lent twice at once";
    posix_locks::close_own(lent);
    EXPECT_TRUE(is_open(own));
    EXPECT_TRUE(locked_for_others(f));
  }
  // The program closes its fd while the parked one is lent: the lock is gone,
  // so the fd is closed when it comes back, not parked again.
  int lent = posix_locks::borrow(st.st_dev, st.st_ino);
  close(fd);
  posix_locks::program_closed(st.st_dev, st.st_ino);
  EXPECT_TRUE(is_open(lent));
  posix_locks::close_own(lent);
  EXPECT_FALSE(is_open(own));
  EXPECT_FALSE(posix_locks::any_parked());
  EXPECT_FALSE(locked_for_others(f));
}

// A daemon's closefrom() closes the parked fd, and its next open gets that
// number for another file: the slot is stale. Neither a look at the locked
// file nor the program's close of it may read or close the program's fd.
TEST(PosixLocks, AParkedFdClosedBehindOurBackIsForgottenNotReusedOrClosed) {
  TempDir d;
  const std::string f = d / "data", other = d / "other";
  int fd = open(f.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  for (int round = 0; round < 2; ++round) {
    ASSERT_EQ(fcntl(fd, F_SETLK, &fl), 0);  // (the close below releases it)
    int own = open(f.c_str(), O_RDONLY);
    ASSERT_GE(own, 0);
    posix_locks::close_own(own);
    ASSERT_TRUE(posix_locks::any_parked());
    close(own);  // the program's closefrom, behind our back
    int programs = open(other.c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_EQ(programs, own) << "the number is the program's now";
    if (round == 0) {
      EXPECT_EQ(posix_locks::borrow(st.st_dev, st.st_ino), -1) << "lent the program's fd on another file";
    } else {
      posix_locks::program_closed(st.st_dev, st.st_ino);
    }
    EXPECT_TRUE(is_open(programs)) << "round " << round << ": the program's fd was closed";
    EXPECT_FALSE(posix_locks::any_parked());
    close(programs);
  }
  close(fd);
}

// docs/guarantees.md, "POSIX record locks": beyond kMaxParked locked files,
// the fd of a look at another one stays open until the process ends (the
// lock is safe, the fd costs one number), and each later look at it keeps
// one more: it is in no slot, so it can't be lent or closed with the file.
TEST(PosixLocks, BeyondTheTableAnFdOnALockedFileStaysOpen) {
  TempDir d;
  ASSERT_FALSE(posix_locks::any_parked());
  constexpr int kFiles = posix_locks::kMaxParked + 2;
  int programs[kFiles], own[kFiles];
  struct stat st[kFiles];
  for (int i = 0; i < kFiles; ++i) {
    const std::string f = d / ("data" + std::to_string(i));
    programs[i] = open_locked(f);
    ASSERT_GE(programs[i], 0) << i;
    ASSERT_EQ(fstat(programs[i], &st[i]), 0);
    own[i] = open(f.c_str(), O_RDONLY);
    ASSERT_GE(own[i], 0) << i;
    posix_locks::close_own(own[i]);
    EXPECT_TRUE(is_open(own[i])) << i << ": closing it would release the program's lock";
  }
  const int last = kFiles - 1;
  EXPECT_EQ(posix_locks::borrow(st[last].st_dev, st[last].st_ino), -1) << "a file beyond the table is not lent";
  int again = open((d / ("data" + std::to_string(last))).c_str(), O_RDONLY);
  ASSERT_GE(again, 0);
  posix_locks::close_own(again);
  EXPECT_TRUE(is_open(again)) << "a later look at a file beyond the table keeps one more fd";
  EXPECT_TRUE(locked_for_others(d / ("data" + std::to_string(last))));
  for (int i = 0; i < kFiles; ++i) {
    close(programs[i]);
    posix_locks::program_closed(st[i].st_dev, st[i].st_ino);
    if (i < posix_locks::kMaxParked)
      EXPECT_FALSE(is_open(own[i])) << i << ": a parked fd is closed with the program's close of the file";
    else
      EXPECT_TRUE(is_open(own[i])) << i << ": beyond the table, the fd stays open until the process ends";
  }
  EXPECT_FALSE(posix_locks::any_parked());
  close(own[posix_locks::kMaxParked]);
  close(own[posix_locks::kMaxParked + 1]);
  close(again);
}

// docs/guarantees.md, "POSIX record locks": a kept fd the program closed
// (a raw close: libc's close of that number is refused) and reused for *the
// same* file can't be told from truncguard's own: it is closed with the
// program's next close of that file, or at the next look at the file if no
// lock is held on it then (the raw close released the program's locks).
TEST(PosixLocks, AParkedNumberReusedForTheSameFileIsTakenForTheKeptOne) {
  for (bool relock : {true, false}) {
    TempDir d;
    const std::string f = d / "data";
    int fd = open_locked(f);
    ASSERT_GE(fd, 0);
    struct stat st;
    ASSERT_EQ(fstat(fd, &st), 0);
    int own = open(f.c_str(), O_RDONLY);
    ASSERT_GE(own, 0);
    posix_locks::close_own(own);
    ASSERT_TRUE(posix_locks::any_parked());
    close(own);  // a raw close, behind our back: the program's locks on the file go
    int programs = open(f.c_str(), O_RDONLY);
    ASSERT_EQ(programs, own) << "the number is the program's now, on the same file";
    if (relock) {
      struct flock fl = {};
      fl.l_type = F_WRLCK;
      fl.l_whence = SEEK_SET;
      ASSERT_EQ(fcntl(fd, F_SETLK, &fl), 0);
    }
    // A look at the file: the program's fd is lent as the kept one, and given back.
    EXPECT_EQ(posix_locks::borrow(st.st_dev, st.st_ino), programs) << relock;
    posix_locks::close_own(programs);
    EXPECT_EQ(is_open(programs), relock) << (relock ? "locked: kept until the program's close of the file"
                                                    : "not locked: closed at the look");
    close(fd);
    posix_locks::program_closed(st.st_dev, st.st_ino);
    EXPECT_FALSE(is_open(programs)) << relock << ": the program's fd taken for the kept one";
    EXPECT_FALSE(posix_locks::any_parked());
    if (is_open(programs)) close(programs);
  }
}
