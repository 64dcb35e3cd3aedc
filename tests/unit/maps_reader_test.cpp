#include <dlfcn.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <gtest/gtest.h>
#include <grp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <csignal>
#include <cstdlib>
#include <sys/wait.h>
#include <pthread.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <sys/syscall.h>

#include "child_limits.hpp"
#include "locks.hpp"
#include "maps_reader.hpp"
#include "procmap_query.hpp"
#include "sys.hpp"
#include "temp_dir.hpp"

using namespace tg;

TEST(MapsLine, ParsesAFileMapping) {
  const std::string l = "7f1c2a400000-7f1c2a5c8000 r-xp 00028000 fd:01 1835103   /usr/lib/x86_64-linux-gnu/libc.so.6";
  MapsLine m;
  ASSERT_TRUE(parse_maps_line(l.data(), l.size(), &m));
  EXPECT_EQ(m.start, 0x7f1c2a400000u);
  EXPECT_EQ(m.end, 0x7f1c2a5c8000u);
  EXPECT_EQ(m.offset, 0x28000u);
  EXPECT_TRUE(m.readable);
  EXPECT_FALSE(m.writable);
  EXPECT_TRUE(m.executable);
  EXPECT_FALSE(m.shared);
  EXPECT_EQ(m.id, (FileId{0xfd, 0x01, 1835103}));
}

// file_id_of splits a dev_t by hand (glibc's major()/minor() are calls at
// -Os): the same numbers as glibc's, small and large (> 12-bit major, > 8-bit minor).
TEST(MapsLine, FileIdSplitsDevicesAsGlibc) {
  for (const dev_t dev : {makedev(0, 0), makedev(8, 1), makedev(254, 0), makedev(0, 41), makedev(259, 65535),
                          makedev(4095, 255), makedev(4096, 256), makedev(0xfffff, 0xffffff), makedev(0xabcde, 0x12345)}) {
    const FileId id = file_id_of(dev, 7);
    EXPECT_EQ(id.dev_major, major(dev));
    EXPECT_EQ(id.dev_minor, minor(dev));
    EXPECT_EQ(id.ino, 7u);
  }
}

TEST(MapsLine, ParsesAnonymousAndSpecial) {
  const std::string anon = "7ffd1c9d4000-7ffd1c9f5000 rw-p 00000000 00:00 0                          [stack]";
  MapsLine m;
  ASSERT_TRUE(parse_maps_line(anon.data(), anon.size(), &m));
  EXPECT_EQ(m.id.ino, 0u);
  const std::string bare = "00400000-00401000 r-xs 00000000 103:0a 42";
  ASSERT_TRUE(parse_maps_line(bare.data(), bare.size(), &m));
  EXPECT_TRUE(m.shared);
  EXPECT_EQ(m.id, (FileId{0x103, 0x0a, 42}));
}

TEST(MapsLine, RejectsMalformed) {
  MapsLine m;
  for (const char* bad : {"", "garbage", "1000-2000", "1000-2000 r-xp", "1000-2000 r-xp 0 fd01 12",
                          "1000-2000 r-xp 0 fd:01 x12", "1000-2000 r-xp 0 fd:01 12abc"}) {
    EXPECT_FALSE(parse_maps_line(bad, std::strlen(bad), &m)) << bad;
  }
}

TEST(MapsText, MatchesOnlyExecutableMappingsOfTheFile) {
  const std::string text =
      "55d0-55d1 r--p 00000000 08:01 777 /lib/libx.so\n"      // readable only: data
      "55d1-55d2 r-xp 00001000 08:01 778 /lib/liby.so\n"      // other inode
      "55d2-55d3 r-xp 00001000 08:02 777 /other/dev.so\n";    // same inode, other device
  MapsTextMatcher m(FileId{8, 1, 777});
  m.feed(text.data(), text.size());
  m.finish();
  EXPECT_FALSE(m.found());
  MapsTextMatcher m2(FileId{8, 2, 777});
  m2.feed(text.data(), text.size());
  EXPECT_TRUE(m2.found());
}

TEST(MapsText, AnyChunkingGivesTheSameAnswer) {
  std::string text;
  for (int i = 0; i < 50; ++i)
    text += "1000-2000 r-xp 00000000 08:01 " + std::to_string(1000 + i) + " /usr/lib/lib" + std::string(i * 7, 'z') + ".so\n";
  text += "3000-4000 r-xp 00000000 08:01 4242 /usr/lib/target.so";  // no final newline
  for (size_t chunk : {1u, 2u, 7u, 64u, 4096u}) {
    MapsTextMatcher m(FileId{8, 1, 4242});
    for (size_t off = 0; off < text.size(); off += chunk)
      m.feed(text.data() + off, std::min(chunk, text.size() - off));
    m.finish();
    EXPECT_TRUE(m.found()) << "chunk " << chunk;
  }
}

TEST(MapsText, VeryLongPathsDoNotConfuseTheNextLine) {
  std::string text = "1000-2000 r-xp 00000000 08:01 1 /" + std::string(5000, 'p') + "\n" +
                     "3000-4000 r-xp 00000000 08:01 99 /x.so\n";
  MapsTextMatcher m(FileId{8, 1, 99});
  m.feed(text.data(), text.size());
  EXPECT_TRUE(m.found());
}

namespace {
FileId id_of(const char* path) {
  struct stat st;
  EXPECT_EQ(stat(path, &st), 0) << path;
  return file_id_of(st.st_dev, st.st_ino);
}
}  // namespace

TEST(MapsScan, FindsThisProcessExecutable) {
  const FileId exe = id_of("/proc/self/exe");
  EXPECT_EQ(process_maps_exec(0, exe), MapsAnswer::mapped);
  EXPECT_EQ(process_maps_exec(getpid(), exe), MapsAnswer::mapped);
  ScanResult r = scan_processes(exe);
  ASSERT_GE(r.mapped, 1);
  bool me = false;
  for (int i = 0; i < r.mapped && i < ScanResult::kMaxPids; ++i) me |= r.pids[i] == getpid();
  EXPECT_TRUE(me);
  EXPECT_GE(r.inspected, 1);
}

namespace {
// The child's second thread, once the main thread has exited: bit 1, its
// own maps walk did not find the executable; bit 2, self_file_at did not
// name it; bit 4, the main thread did not exit. Waits for the parent's byte
// before it exits.
// Waits (up to 5 s) until the main thread of process `pid` has exited: its
// state is Z while other threads run on.
bool main_thread_exited(pid_t pid) {
  const std::string status = "/proc/" + std::to_string(pid) + "/status";
  for (int i = 0; i < 500; ++i) {
    char buf[4096] = {};
    int fd = open(status.c_str(), O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    if (n > 0 && std::strstr(buf, "State:\tZ")) return true;
    usleep(10000);
  }
  return false;
}

int leader_exited_pipe = -1;
FileId leader_exited_exe;  // /proc/self/exe can't be read once the main thread exited
void* check_after_leader_exited(void*) {
  const FileId exe = leader_exited_exe;
  int r = main_thread_exited(getpid()) ? 0 : 4;
  if (process_maps_exec(0, exe) != MapsAnswer::mapped) r |= 1;
  FileId seen;
  if (!self_file_at(reinterpret_cast<unsigned long>(&check_after_leader_exited), &seen) || !(seen == exe)) r |= 2;
  char c;
  (void)!read(leader_exited_pipe, &c, 1);
  _exit(r);
}
}  // namespace

// A process whose main thread exited (pthread_exit) while another runs on:
// its /proc/PID/maps reads empty. The scan, and the process itself, find its
// mappings through a live thread.
TEST(MapsScan, AProcessWhoseMainThreadExited) {
  const FileId exe = id_of("/proc/self/exe");
  leader_exited_exe = exe;
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t child = fork();
  if (child == 0) {
    leader_exited_pipe = p[0];
    pthread_t t;
    if (pthread_create(&t, nullptr, check_after_leader_exited, nullptr) != 0) _exit(99);
    syscall(SYS_exit, 0);  // this thread only (pthread_exit's unwinding would meet gtest's catch)
  }
  ASSERT_GT(child, 0);
  EXPECT_TRUE(main_thread_exited(child)) << "the child's main thread did not exit";
  EXPECT_EQ(process_maps_exec(child, exe), MapsAnswer::mapped);
  ASSERT_EQ(write(p[1], "x", 1), 1);
  int st = 0;
  ASSERT_EQ(waitpid(child, &st, 0), child);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st) & 1, 0) << "the process's own maps walk did not find its executable";
  EXPECT_EQ(WEXITSTATUS(st) & 2, 0) << "self_file_at did not name its executable";
  EXPECT_EQ(WEXITSTATUS(st) & 4, 0) << "the child's main thread did not exit";
  close(p[0]);
  close(p[1]);
}

TEST(MapsScan, DataFilesAreNotMappedExecutable) {
  char tmpl[] = "/tmp/tg-maps-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "hello", 5), 5);
  EXPECT_EQ(process_maps_exec(0, id_of(tmpl)), MapsAnswer::not_mapped);
  EXPECT_EQ(scan_processes(id_of(tmpl)).mapped, 0);
  close(fd);
  unlink(tmpl);
}

TEST(MapsScan, FindsAChildThatMapsIt) {
  // A child process (not us) runs a copy of /bin/sleep: the scan must name
  // it. A copy of its own: the scan lists at most kMaxPids processes, and
  // other sleeps on the machine (other test suites') map /bin/sleep too.
  tg::unit::TempDir dir("tg-maps-scan");
  const std::string sleep_copy = dir / "sleep";
  ASSERT_EQ(std::system(("cp /bin/sleep '" + sleep_copy + "'").c_str()), 0);
  const FileId sleep_bin = id_of(sleep_copy.c_str());
  pid_t child = fork();
  if (child == 0) {
    execl(sleep_copy.c_str(), "sleep", "5", nullptr);
    _exit(127);
  }
  ASSERT_GT(child, 0);
  bool found = false;
  for (int tries = 0; tries < 200 && !found; ++tries) {
    found = process_maps_exec(child, sleep_bin) == MapsAnswer::mapped;
    if (!found) usleep(10000);
  }
  EXPECT_TRUE(found);
  ScanResult r = scan_processes(sleep_bin);
  bool listed = false;
  for (int i = 0; i < r.mapped && i < ScanResult::kMaxPids; ++i) listed |= r.pids[i] == child;
  EXPECT_TRUE(listed);
  char comm[32];
  process_name(child, comm, sizeof comm);
  EXPECT_STREQ(comm, "sleep");
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(process_maps_exec(child, sleep_bin), MapsAnswer::gone);
}

TEST(MapsScan, UnreadableProcessesAreCountedNotIgnored) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to drop to another user";
  // As an unprivileged user, root's processes (pid 1 at least) can't be inspected.
  pid_t child = fork();
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    ScanResult r = scan_processes(FileId{0, 0, 1});
    _exit(r.uninspected > 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// /proc mounted hidepid=invisible: a user is not even shown the processes it
// may not trace. They count as uninspected in the per-file scan (the
// guard's fallback when another thread holds the snapshot, or it overflows)
// as in the snapshot: as nobody, every process listed there can be read, so
// only the hidden ones make the count. Control: with /proc as it was, the
// mount is not taken for one that hides.
TEST(MapsScan, ProcessesHiddenByHidepidCountAsUninspected) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount /proc and drop to another user";
  for (bool hide : {false, true}) {
    const int st = unit::in_child([hide] {
      if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 77;
      if (hide && mount("proc", "/proc", "proc", 0, "hidepid=invisible") != 0) return 77;
      if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
        return 77;
      if (hide && access("/proc/1", F_OK) == 0) return 78;  // nothing hidden after all
      const bool hides = proc_hides_processes();
      if (hides != hide) return 3;
      if (!hide) return 0;
      const ScanResult r = scan_processes(FileId{0, 0, 1});
      Snapshot snap;
      if (!take_snapshot(&snap)) return 4;
      if (r.uninspected == 0) return 1;
      return lookup(snap, FileId{0, 0, 1}).uninspected > 0 ? 0 : 2;
    });
    if (st == 77) GTEST_SKIP() << "cannot mount /proc in a mount namespace of its own, or drop to nobody";
    if (st == 78) GTEST_SKIP() << "hidepid=invisible hides nothing from nobody here";
    EXPECT_EQ(st, 0) << (hide ? "hidepid=invisible" : "control: /proc as it was");
  }
}

TEST(MapsScan, WriteLeaseProvesNobodyElseHasItOpen) {
  char tmpl[] = "/tmp/tg-lease-XXXXXX";
  int w = mkstemp(tmpl);
  ASSERT_GE(w, 0);
  ASSERT_EQ(write(w, "data", 4), 4);
  close(w);
  int fd = open(tmpl, O_RDONLY);
  EXPECT_TRUE(proves_unshared(fd));
  EXPECT_TRUE(proves_unshared(fd));  // released: can be asked again

  // Another process holding it open (here: a child with an fd) defeats the proof.
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t child = fork();
  if (child == 0) {
    int keep = open(tmpl, O_RDONLY);
    char c = keep >= 0 ? 'y' : 'n';
    (void)!write(pipefd[1], &c, 1);
    pause();
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(pipefd[0], &c, 1), 1);
  EXPECT_FALSE(proves_unshared(fd));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(proves_unshared(fd));
  close(fd);
  close(pipefd[0]);
  close(pipefd[1]);

  // Our own running executable is open (mapped): no proof.
  int exe = open("/proc/self/exe", O_RDONLY);
  EXPECT_FALSE(proves_unshared(exe));
  close(exe);
  unlink(tmpl);
}

// This process's own other fd counts too: here the one it holds a POSIX
// lock through. The refused lease releases nothing; a granted one is ended
// before the proof returns (a child forked meanwhile would keep it alive).
TEST(MapsScan, LeaseProofCountsThisProcessOwnFds) {
  unit::TempDir d("tg-lease-lock");
  const std::string f = d / "data";
  int a = unit::open_locked(f);  // the program's lock, through fd a
  ASSERT_GE(a, 0);
  int b = open(f.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(b, 0);
  const long type = sys::fs_type(b);
  EXPECT_FALSE(proves_unshared(b, type)) << "a lock's fd is open: no lease";
  EXPECT_TRUE(unit::locked_for_others(f)) << "the refused lease released nothing";
  close(a);
  EXPECT_FALSE(unit::locked_for_others(f)) << "control: the lock is gone with its fd";
  EXPECT_TRUE(proves_unshared(b, type));
  EXPECT_EQ(fcntl(b, F_GETLEASE), F_UNLCK) << "the lease is ended before the proof returns";
  close(b);
}

// On a stacking filesystem (overlayfs, FUSE, ecryptfs) a mapping holds the
// file underneath, and on one other machines share their processes are not
// this kernel's: a lease the kernel would grant proves nothing there, and is
// not asked for (the /proc scan decides). Control: the same unshared file on
// its own filesystem is proven unshared.
TEST(MapsScan, AStackingOrSharedFilesystemsLeaseIsNoProof) {
  unit::TempDir d("tg-lease-fs");
  const std::string f = d / "data";
  int fd = open(f.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "data", 4), 4);
  ASSERT_TRUE(proves_unshared(fd, sys::fs_type(fd))) << "control: nobody else has it open";
  for (long type : {OVERLAYFS_SUPER_MAGIC, FUSE_SUPER_MAGIC, ECRYPTFS_SUPER_MAGIC, NFS_SUPER_MAGIC, CEPH_SUPER_MAGIC})
    EXPECT_FALSE(proves_unshared(fd, type)) << std::hex << "filesystem type 0x" << type;
  EXPECT_EQ(fcntl(fd, F_GETLEASE), F_UNLCK);
  close(fd);
}

TEST(MapsScan, LeaseProofSeesMappingsAfterTheFdIsClosed) {
  // dlopen maps the library and closes its fd: the mapping alone must count.
  // A name of its own: at a fixed one, a concurrent run's copy made the proof
  // fail, and another user's left-over one the cp.
  char lib[] = "/tmp/tg-lease-map-XXXXXX";
  int fd = mkstemp(lib);
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_EQ(std::system(("cp /proc/self/exe " + std::string(lib)).c_str()), 0);  // any ELF file will do
  fd = open(lib, O_RDONLY);
  ASSERT_TRUE(proves_unshared(fd));
  void* map = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  close(fd);
  fd = open(lib, O_RDONLY);
  EXPECT_FALSE(proves_unshared(fd));  // our own mapping holds the file open
  munmap(map, 4096);
  EXPECT_TRUE(proves_unshared(fd));
  close(fd);
  unlink(lib);
}

TEST(MapsScan, SnapshotAnswersLikeAScan) {
  Snapshot snap;
  ASSERT_TRUE(take_snapshot(&snap));
  EXPECT_GT(snap.count, 0u);
  EXPECT_GE(snap.inspected, 1);
  // A file only this process maps: meson runs other copies of this binary in
  // parallel, so /proc/self/exe's count can change between snapshot and scan.
  char tmpl[] = "/tmp/tg-snap-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  void* map = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  close(fd);
  const FileId mine = id_of(tmpl);
  ASSERT_TRUE(take_snapshot(&snap));
  ScanResult from_snapshot = lookup(snap, mine);
  ScanResult fresh = scan_processes(mine);
  munmap(map, 4096);
  unlink(tmpl);
  EXPECT_EQ(from_snapshot.mapped, 1);
  EXPECT_EQ(from_snapshot.mapped, fresh.mapped);
  bool me = false;
  for (int i = 0; i < from_snapshot.mapped && i < ScanResult::kMaxPids; ++i) me |= from_snapshot.pids[i] == getpid();
  EXPECT_TRUE(me);
  EXPECT_EQ(from_snapshot.uninspected, snap.uninspected);
  // A file nobody maps is not in it; each process is counted once per file.
  EXPECT_EQ(lookup(snap, FileId{0, 0, 12345678}).mapped, 0);
  const FileId libc = id_of("/lib/x86_64-linux-gnu/libc.so.6");
  ScanResult l = lookup(snap, libc);
  for (int i = 0; i < l.mapped && i < ScanResult::kMaxPids; ++i)
    for (int j = i + 1; j < l.mapped && j < ScanResult::kMaxPids; ++j) EXPECT_NE(l.pids[i], l.pids[j]);
  // Taking it again reuses its memory.
  ExecMapping* mem = snap.entries;
  ASSERT_TRUE(take_snapshot(&snap));
  EXPECT_EQ(snap.entries, mem);
}

// A writer at its fd limit: /proc opens, but no maps file can. Nothing was
// looked at, which must never read as "no process maps it" (measured before:
// EMFILE counted as "process gone", the scan said nobody, the write truncated
// a library a victim ran).
TEST(MapsScan, NoFdToLookWithIsNotNobody) {
  const FileId exe = id_of("/proc/self/exe");  // this process maps it
  EXPECT_EQ(unit::in_child([&] {
              if (!unit::leave_free_fds(1)) return 10;
              ScanResult r = scan_processes(exe);
              return r.mapped == 0 && r.uninspected > 0 ? 0 : 1;
            }),
            0)
      << "scan_processes with one free fd: the processes not looked at must count as uninspected";
  EXPECT_EQ(unit::in_child([&] {
              if (!unit::leave_free_fds(1)) return 10;
              Snapshot s;
              if (!take_snapshot(&s)) return 2;
              ScanResult r = lookup(s, exe);
              return r.mapped == 0 && r.uninspected > 0 ? 0 : 1;
            }),
            0)
      << "take_snapshot with one free fd: the processes not looked at must count as uninspected";
  EXPECT_EQ(unit::in_child([&] {
              if (!unit::leave_free_fds(0)) return 10;
              return process_maps_exec(0, exe) == MapsAnswer::no_access ? 0 : 1;
            }),
            0)
      << "process_maps_exec(self) with no free fd: not inspected (not gone, not unmapped)";
}

// A maps file that opened but whose text can't be read (PROCMAP_QUERY not
// there, as before 6.11 or denied by a seccomp filter; the read failing for
// want of memory, or an I/O error): not inspected, never "gone" (the scan
// then said nobody). Control: ESRCH, a process that exited as it was read,
// is gone (the filter reaches that read).
TEST(MapsScan, AMapsTextThatCantBeReadIsNotNobody) {
  const FileId exe = id_of("/proc/self/exe");  // this process maps it
  for (int err : {ENOMEM, EIO, ESRCH}) {
    const MapsAnswer want = err == ESRCH ? MapsAnswer::gone : MapsAnswer::no_access;
    EXPECT_EQ(unit::in_child([&] {
                if (!unit::deny_syscall(SYS_ioctl, static_cast<long long>(procmap::kQuery & 0xffffffffu), ENOTTY) ||
                    !unit::deny_syscall(SYS_pread64, -1, err))
                  return 10;
                return process_maps_exec(0, exe) == want ? 0 : 1;
              }),
              0)
        << "errno " << err;
  }
}

// Whether /proc lists the processes of other PID namespaces is asked of
// /proc/self/ns/pid; where that can't be looked at (a seccomp filter's EPERM),
// the answer can't be trusted: processes may be outside what the scan saw.
TEST(MapsScan, AnUnknownPidNamespaceMayLeaveProcessesOut) {
  EXPECT_EQ(unit::in_child([] {
              if (!unit::deny_syscall(SYS_newfstatat, -1, EPERM)) return 10;
              return proc_leaves_out_other_pid_namespaces() ? 0 : 1;
            }),
            0);
}

// /proc that can't be listed (getdents64 denied by a seccomp filter, or failing
// midway): the scan saw nobody because it saw nothing.
TEST(MapsScan, AnUnlistableProcIsNotNobody) {
  const FileId exe = id_of("/proc/self/exe");
  EXPECT_EQ(unit::in_child([&] {
              if (!unit::deny_syscall(SYS_getdents64, -1, EPERM)) return 10;
              ScanResult r = scan_processes(exe);
              Snapshot s;
              take_snapshot(&s);
              return r.proc_missing && s.proc_missing ? 0 : 1;
            }),
            0)
      << "getdents64 failing: the scan and the snapshot must say /proc could not be read";
}

// PROCMAP_QUERY denied (a seccomp filter's EPERM; the kernel itself checks
// permission at open): the text of the maps answers instead, as on kernels
// without the ioctl. Measured before: every process counted as uninspected,
// and scope self decided "this process does not map it" and truncated the
// library it ran (SIGSEGV).
TEST(MapsScan, ADeniedProcmapQueryFallsBackToTheText) {
  const FileId exe = id_of("/proc/self/exe");
  for (int err : {EPERM, EACCES, ENOSYS}) {
    EXPECT_EQ(unit::in_child([&] {
                if (!unit::deny_syscall(SYS_ioctl, static_cast<long long>(procmap::kQuery), err)) return 10;
                if (process_maps_exec(0, exe) != MapsAnswer::mapped) return 1;
                ScanResult r = scan_processes(exe);
                bool me = false;
                for (int i = 0; i < r.mapped && i < ScanResult::kMaxPids; ++i) me |= r.pids[i] == getpid();
                if (!me) return 2;
                FileId at;  // the file mapped at an address of ours (btrfs' maps id)
                if (!self_file_at(reinterpret_cast<unsigned long>(&id_of), &at) || !(at == exe)) return 3;
                return 0;
              }),
              0)
        << "PROCMAP_QUERY failing with " << strerrorname_np(err)
        << " (1: self check, 2: scan, 3: self_file_at did not fall back to the text)";
  }
}

// Atomic mode waits for a writer's shared writable mappings of a file
// (pending::unmapped): the text walk visits those, and no other mapping.
TEST(MapsText, SharedWritableWalkVisitsOnlySharedWritableMappings) {
  const std::string text =
      "1000-2000 r-xp 00000000 08:01 777 /lib/libx.so\n"  // executable
      "2000-3000 rw-p 00000000 08:01 777 /lib/libx.so\n"  // private
      "3000-4000 r--s 00000000 08:01 777 /lib/libx.so\n"  // shared, read-only
      "4000-5000 rw-s 00000000 08:01 778 /lib/other\n";   // shared writable, another file
  int visits = 0;
  auto count = [](const FileId&, void* n) { ++*static_cast<int*>(n); return false; };
  MapsTextReader r(count, &visits, Mappings::shared_writable);
  r.feed(text.data(), text.size());
  r.finish();
  EXPECT_EQ(visits, 1);
}

// The same question of this process's own maps (PROCMAP_QUERY where the
// kernel has it): a shared writable mapping of the file, and only while it lasts.
TEST(MapsScan, SelfMapsSharedWritableOnlyWhileSuchAMappingLasts) {
  unit::TempDir d("tg-maps-shared");
  const std::string path = d / "f";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  struct stat st{};
  ASSERT_EQ(fstat(fd, &st), 0);
  const FileId id = maps_id_of(fd, st);
  EXPECT_FALSE(self_maps_shared_writable(id));
  void* priv = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  void* ro = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(priv, MAP_FAILED);
  ASSERT_NE(ro, MAP_FAILED);
  EXPECT_FALSE(self_maps_shared_writable(id)) << "a private or read-only mapping counted";
  void* rw = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(rw, MAP_FAILED);
  close(fd);
  EXPECT_TRUE(self_maps_shared_writable(id));
  munmap(rw, 4096);
  EXPECT_FALSE(self_maps_shared_writable(id));
  munmap(priv, 4096);
  munmap(ro, 4096);
}
