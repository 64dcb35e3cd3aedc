// Unit tests of `truncguard who` / `truncguard stale`: maps lines with their
// paths, systemd units from cgroup files, matching a file, deciding what is
// stale, grouping by unit, and the escaping of everything printed.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "inspect.hpp"
#include "procmap_query.hpp"
#include "../unit/child_limits.hpp"

using namespace tg;
using namespace tg::inspect;

namespace {

Mapping parsed(const std::string& line) {
  Mapping m;
  EXPECT_TRUE(parse_mapping(line, &m)) << line;
  return m;
}

}  // namespace

// --------------------------------------------------------------- MapsPath

TEST(MapsPath, LibraryLine) {
  Mapping m = parsed("7f1c2a000000-7f1c2a1d5000 r-xp 00028000 fe:00 332835                     "
                     "/usr/lib/x86_64-linux-gnu/libc.so.6\n");
  EXPECT_EQ(m.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_FALSE(m.deleted);
  EXPECT_TRUE(m.line.executable);
  EXPECT_FALSE(m.line.writable);
  EXPECT_EQ(m.line.id, (FileId{0xfe, 0, 332835}));
  EXPECT_EQ(m.line.offset, 0x28000u);
}

TEST(MapsPath, DeletedSuffixIsRemovedAndRemembered) {
  Mapping m = parsed("7f00-7f01 r-xp 00000000 fe:00 10961009                   /tmp/mt/a (deleted)");
  EXPECT_EQ(m.path, "/tmp/mt/a");
  EXPECT_TRUE(m.deleted);
}

TEST(MapsPath, NewlineInNameIsUnescaped) {
  // The kernel writes '\n' in a name as "\012" (seq_path).
  Mapping m = parsed("7f00-7f01 r-xp 00000000 fe:00 5 /tmp/lib\\012evil.so (deleted)");
  EXPECT_EQ(m.path, "/tmp/lib\nevil.so");
  EXPECT_TRUE(m.deleted);
  EXPECT_EQ(unescape_maps_path("a\\012b\\012"), "a\nb\n");
  EXPECT_EQ(unescape_maps_path("a\\01b\\x"), "a\\01b\\x");  // nothing else is an escape
}

TEST(MapsPath, SpacesInsideTheNameAreKept) {
  Mapping m = parsed("7f00-7f01 r--p 00000000 fe:00 5                          /opt/my app/lib x.so");
  EXPECT_EQ(m.path, "/opt/my app/lib x.so");
}

TEST(MapsPath, NonUtf8BytesArePassedRaw) {
  Mapping m = parsed("7f00-7f01 r-xp 00000000 fe:00 5 /tmp/\xff\xfe.so");
  EXPECT_EQ(m.path, "/tmp/\xff\xfe.so");
}

TEST(MapsPath, AnonymousLines) {
  Mapping heap = parsed("55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0                          [heap]");
  EXPECT_EQ(heap.line.id.ino, 0u);
  EXPECT_EQ(heap.path, "[heap]");
  Mapping anon = parsed("7f00-7f01 rw-p 00000000 00:00 0 ");
  EXPECT_EQ(anon.path, "");
}

TEST(MapsPath, MalformedLinesAreRejected) {
  Mapping m;
  EXPECT_FALSE(parse_mapping("", &m));
  EXPECT_FALSE(parse_mapping("garbage", &m));
  EXPECT_FALSE(parse_mapping("7f00-7f01 r-xp 00000000 fe:00 xyz /a", &m));
}

TEST(MapsPath, StripDeletedOnlyAtTheEnd) {
  std::string p = "/a (deleted)/b";
  EXPECT_FALSE(strip_deleted(&p));
  EXPECT_EQ(p, "/a (deleted)/b");
  p = "/a/b (deleted)";
  EXPECT_TRUE(strip_deleted(&p));
  EXPECT_EQ(p, "/a/b");
}

TEST(MapsPath, PseudoPaths) {
  for (const char* p : {"/memfd:jit (deleted)", "/memfd:", "/SYSV00000000", "/dev/zero", "/dev/shm/x",
                        "anon_inode:[perf_event]", "[vdso]", "", "/[aio]"})
    EXPECT_TRUE(is_pseudo_path(p)) << p;
  for (const char* p : {"/usr/lib/libc.so.6", "/opt/app/bin/daemon", "/dev/shmem-not-shm"})
    EXPECT_FALSE(is_pseudo_path(p)) << p;
}

// ------------------------------------------------------------------ Cgroup

TEST(Cgroup, SystemServiceV2) {
  EXPECT_EQ(unit_from_cgroup("0::/system.slice/nginx.service\n"), (Unit{"nginx.service", ""}));
}

TEST(Cgroup, SubgroupInsideAServiceBelongsToTheService) {
  EXPECT_EQ(unit_from_cgroup("0::/system.slice/app.service/workers/w1\n").name, "app.service");
}

TEST(Cgroup, TemplatedAndEscapedNames) {
  EXPECT_EQ(unit_from_cgroup("0::/system.slice/system-getty.slice/getty@tty1.service\n").name, "getty@tty1.service");
  EXPECT_EQ(unit_from_cgroup("0::/system.slice/foo\\x2dbar.service\n").name, "foo\\x2dbar.service");
}

TEST(Cgroup, SessionScope) {
  EXPECT_EQ(unit_from_cgroup("0::/user.slice/user-1000.slice/session-3.scope\n"), (Unit{"session-3.scope", ""}));
}

TEST(Cgroup, UserUnitKeepsItsManager) {
  Unit u = unit_from_cgroup("0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-foo.service\n");
  EXPECT_EQ(u.name, "app-foo.service");
  EXPECT_EQ(u.manager, "user@1000.service");
}

TEST(Cgroup, TheUserManagerItselfIsASystemUnit) {
  EXPECT_EQ(unit_from_cgroup("0::/user.slice/user-1000.slice/user@1000.service\n"),
            (Unit{"user@1000.service", ""}));
}

// truncguard(1): "the innermost .service, .scope, .socket, .mount or .swap".
TEST(Cgroup, EveryUnitTypeWithProcesses) {
  EXPECT_EQ(unit_from_cgroup("0::/system.slice/app.socket\n").name, "app.socket");  // ExecStartPre= of a socket
  EXPECT_EQ(unit_from_cgroup("0::/system.slice/data.mount\n").name, "data.mount");  // mount(8) and its helper
  EXPECT_EQ(unit_from_cgroup("0::/system.slice/dev-sda2.swap\n").name, "dev-sda2.swap");
  EXPECT_EQ(unit_from_cgroup("0::/system.slice/app.service/sub.scope\n").name, "sub.scope");  // the innermost
  EXPECT_EQ(unit_from_cgroup("0::/system.slice/app.target\n").name, "");  // no processes of its own
  EXPECT_EQ(unit_from_cgroup("0::/system.slice/.socket\n").name, "");     // a suffix alone is no name
}

TEST(Cgroup, Pid1) { EXPECT_EQ(unit_from_cgroup("0::/init.scope\n").name, "init.scope"); }

TEST(Cgroup, NoUnitInAContainerOrWithoutSystemd) {
  EXPECT_EQ(unit_from_cgroup("0::/\n").name, "");
  EXPECT_EQ(unit_from_cgroup("").name, "");
  EXPECT_EQ(unit_from_cgroup("0::/docker/4f3a\n").name, "");
  EXPECT_EQ(unit_from_cgroup("0::/system.slice\n").name, "");  // a slice is not a unit to restart
}

TEST(Cgroup, V1UsesTheSystemdController) {
  const char* v1 =
      "12:pids:/system.slice/cron.service\n"
      "4:memory:/system.slice/cron.service\n"
      "1:name=systemd:/system.slice/cron.service\n"
      "0::/system.slice/cron.service\n";
  EXPECT_EQ(unit_from_cgroup(v1).name, "cron.service");
  // Hybrid, where only the systemd controller knows (what this machine shows, with no unit).
  EXPECT_EQ(unit_from_cgroup("9:name=systemd:/\n4:memory:/process_api/5e0e\n0::/\n").name, "");
  EXPECT_EQ(unit_from_cgroup("1:name=systemd:/system.slice/ssh.service\n0::/\n").name, "ssh.service");
  // A systemd controller at its root tells nothing: the unified hierarchy's unit.
  EXPECT_EQ(unit_from_cgroup("1:name=systemd:/\n0::/system.slice/ssh.service\n").name, "ssh.service");
}

TEST(Cgroup, MalformedLinesAreIgnored) {
  EXPECT_EQ(unit_from_cgroup("nonsense\n::\n0::/system.slice/a.service").name, "a.service");
}

TEST(Status, EffectiveUid) {
  EXPECT_EQ(effective_uid_from_status("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n"), 0u);
  EXPECT_EQ(effective_uid_from_status("Uid:\t0\t65534\t65534\t65534\n"), 65534u);
  EXPECT_FALSE(effective_uid_from_status("Name:\tx\n").has_value());
  EXPECT_FALSE(effective_uid_from_status("Uid:\t\n").has_value());
}

// -------------------------------------------------------------------- Who

TEST(WhoMatch, CurrentReplacedAndOther) {
  Target t;
  t.path = "/opt/app/lib/libfoo.so";
  t.exists = true;
  t.id = FileId{254, 0, 200};
  Mapping cur = parsed("7f00-7f01 r-xp 00000000 fe:00 200 /opt/app/lib/libfoo.so");
  Mapping old = parsed("7f00-7f01 r-xp 00000000 fe:00 100 /opt/app/lib/libfoo.so (deleted)");
  Mapping other = parsed("7f00-7f01 r-xp 00000000 fe:00 300 /opt/app/lib/libbar.so (deleted)");
  Mapping same_name_not_deleted = parsed("7f00-7f01 r-xp 00000000 fe:00 400 /opt/app/lib/libfoo.so");
  EXPECT_EQ(match_target(cur, t), Match::current);
  EXPECT_EQ(match_target(old, t), Match::replaced);
  EXPECT_EQ(match_target(other, t), Match::none);
  // Another mount namespace's file at that name: not ours to claim.
  EXPECT_EQ(match_target(same_name_not_deleted, t), Match::none);
  // Nor a deleted one on another device (a tmpfs of its own over the directory).
  EXPECT_EQ(match_target(parsed("7f00-7f01 r-xp 00000000 00:27 2 /opt/app/lib/libfoo.so (deleted)"), t), Match::none);
}

TEST(WhoMatch, ByInodeWhateverTheName) {
  // A hard link or a bind mount: the same inode under another name is the file.
  Target t;
  t.path = "/a/x.so";
  t.exists = true;
  t.id = FileId{8, 1, 77};
  EXPECT_EQ(match_target(parsed("7f00-7f01 r--p 00000000 08:01 77 /b/y.so"), t), Match::current);
  EXPECT_EQ(match_target(parsed("7f00-7f01 r--p 00000000 08:02 77 /a/x.so"), t), Match::none);
}

TEST(WhoMatch, GoneFileMatchesOnlyDeletedNames) {
  Target t;
  t.path = "/opt/lib.so";
  t.exists = false;
  EXPECT_EQ(match_target(parsed("7f00-7f01 r-xp 00000000 fe:00 5 /opt/lib.so (deleted)"), t), Match::replaced);
  EXPECT_EQ(match_target(parsed("7f00-7f01 r-xp 00000000 00:00 0 /opt/lib.so"), t), Match::none);
}

// ------------------------------------------------------------------ Stale

TEST(Staleness, Deleted) {
  EXPECT_EQ(staleness(parsed("7f00-7f01 r-xp 00000000 fe:00 5 /usr/lib/libz.so.1 (deleted)"), PathNow{}),
            Staleness::deleted);
}

TEST(Staleness, SameInodeIsFresh) {
  Mapping m = parsed("7f00-7f01 r-xp 00000000 fe:00 5 /usr/lib/libz.so.1");
  EXPECT_EQ(staleness(m, PathNow{PathNow::file, FileId{254, 0, 5}}), Staleness::fresh);
  // overlayfs, btrfs: another st_dev for the same file: the inode decides.
  EXPECT_EQ(staleness(m, PathNow{PathNow::file, FileId{0, 45, 5}}), Staleness::fresh);
}

TEST(Staleness, AnotherInodeAtThePath) {
  Mapping m = parsed("7f00-7f01 r-xp 00000000 fe:00 5 /usr/lib/libz.so.1");
  EXPECT_EQ(staleness(m, PathNow{PathNow::file, FileId{254, 0, 6}}), Staleness::replaced);
}

TEST(Staleness, NothingAtThePath) {
  Mapping m = parsed("7f00-7f01 r-xp 00000000 fe:00 5 /usr/lib/libz.so.1");
  EXPECT_EQ(staleness(m, PathNow{PathNow::nothing, {}}), Staleness::missing);
}

TEST(Staleness, UncheckableIsNotCalledStale) {
  Mapping m = parsed("7f00-7f01 r-xp 00000000 fe:00 5 /usr/lib/libz.so.1");
  EXPECT_EQ(staleness(m, PathNow{}), Staleness::fresh);
}

// An NFS client renames a file unlinked or renamed over while in use to
// ".nfs" + file id + counter (fs/nfs/unlink.c): no " (deleted)", and the
// name leads to the mapped inode, yet the file is gone from the program's view.
TEST(Staleness, AnNfsSillyRenamedFileIsDeleted) {
  const PathNow there{PathNow::file, FileId{0, 52, 5}};
  EXPECT_EQ(staleness(parsed("7f00-7f01 r-xp 00000000 00:34 5 /opt/app/.nfs000000000000000500000001"), there),
            Staleness::deleted);
  EXPECT_TRUE(is_nfs_silly_name("/.nfs00000000002b1d0a0000002f"));
  // Other names that begin with .nfs are files like any other.
  for (const char* name : {"/opt/app/.nfs00000000000000050000001", "/opt/app/.nfs0000000000000005000000010",
                           "/opt/app/.nfs00000000000000050000000G", "/opt/app/.nfs0000000000000005000000 1",
                           "/opt/app/.NFS000000000000000500000001", "/opt/app/.nfsd.so", "/opt/app/x.nfs000000000000000500000001",
                           "/opt/.nfs000000000000000500000001/lib.so"}) {
    EXPECT_FALSE(is_nfs_silly_name(name)) << name;
    EXPECT_EQ(staleness(parsed(std::string("7f00-7f01 r-xp 00000000 00:34 5 ") + name), there), Staleness::fresh)
        << name;
  }
}

TEST(Staleness, EachFileOnce) {
  StaleProcess p;
  add_stale_file(&p, {"/a.so", FileId{1, 2, 3}, Staleness::deleted});
  add_stale_file(&p, {"/a.so", FileId{1, 2, 3}, Staleness::deleted});  // another VMA of it
  add_stale_file(&p, {"/a.so", FileId{1, 2, 4}, Staleness::deleted});  // an older one still
  EXPECT_EQ(p.files.size(), 2u);
}

namespace {
StaleProcess proc(pid_t pid, const std::string& unit, const std::string& manager = "") {
  StaleProcess p;
  p.proc.pid = pid;
  p.proc.unit = Unit{unit, manager};
  return p;
}
}  // namespace

TEST(Grouping, ByUnitSystemFirstThenUserThenNone) {
  std::vector<StaleProcess> procs = {
      proc(40, ""),
      proc(30, "b.service"),
      proc(20, "a.service"),
      proc(35, "b.service"),
      proc(31, "b.service"),
      proc(50, "app.service", "user@1000.service"),
      proc(10, ""),
  };
  auto g = group_by_unit(procs);
  ASSERT_EQ(g.size(), 4u);
  EXPECT_EQ(g[0].unit.name, "a.service");
  EXPECT_EQ(g[1].unit.name, "b.service");
  ASSERT_EQ(g[1].procs.size(), 3u);
  EXPECT_EQ(g[1].procs[0]->proc.pid, 30);
  EXPECT_EQ(g[1].procs[1]->proc.pid, 31);
  EXPECT_EQ(g[1].procs[2]->proc.pid, 35);
  EXPECT_EQ(g[2].unit.manager, "user@1000.service");
  EXPECT_EQ(g[3].unit.name, "");
  ASSERT_EQ(g[3].procs.size(), 2u);
  EXPECT_EQ(g[3].procs[0]->proc.pid, 10);
}

TEST(Grouping, SameNameUnderDifferentManagersStaysApart) {
  std::vector<StaleProcess> procs = {proc(1, "app.service", "user@1000.service"),
                                     proc(2, "app.service", "user@1001.service"), proc(3, "app.service")};
  auto g = group_by_unit(procs);
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0].unit.manager, "");
  EXPECT_EQ(g[1].unit.manager, "user@1000.service");
  EXPECT_EQ(g[2].unit.manager, "user@1001.service");
}

TEST(Grouping, Empty) { EXPECT_TRUE(group_by_unit({}).empty()); }

// ----------------------------------------------------------------- Output

TEST(Output, EscapedNamesCannotForgeRows) {
  EXPECT_EQ(escaped("/tmp/a\nb"), "/tmp/a\\nb");
  EXPECT_EQ(escaped("/tmp/\xff"), "/tmp/\\xff");
  EXPECT_EQ(escaped("tab\there\\"), "tab\\there\\\\");
  EXPECT_EQ(escaped("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(escaped("caf\xc3\xa9"), "caf\xc3\xa9");  // valid UTF-8 stays
  EXPECT_EQ(escaped(""), "");
  std::string long_name(5000, 'x');
  EXPECT_EQ(escaped(long_name), long_name);  // no truncation for the command
}

TEST(Output, JsonStringIsEscapedThenQuoted) {
  EXPECT_EQ(json_string("a\nb"), "\"a\\\\nb\"");  // the log's \n, JSON-encoded
  EXPECT_EQ(json_string("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(json_string("\xff"), "\"\\\\xff\"");
}

TEST(Output, TableAlignsByDisplayWidth) {
  std::string t = format_table({{"PID", "COMMAND", "FILE"}, {"7", "caf\xc3\xa9", "/a"}, {"12345", "x", "/b"}}, "  ");
  EXPECT_EQ(t,
            "  PID    COMMAND  FILE\n"
            "  7      caf\xc3\xa9     /a\n"
            "  12345  x        /b\n");
}

TEST(Output, TableLastColumnNotPadded) {
  EXPECT_EQ(format_table({{"A", "B"}, {"long", ""}}), "A     B\nlong\n");
}

TEST(Output, DevString) { EXPECT_EQ(dev_string(FileId{254, 0, 1}), "254:0"); }

TEST(Output, Names) {
  EXPECT_STREQ(to_string(Match::current), "current");
  EXPECT_STREQ(to_string(Match::replaced), "replaced");
  EXPECT_STREQ(to_string(Staleness::deleted), "deleted");
  EXPECT_STREQ(to_string(Staleness::missing), "missing");
}

// -------------------------------------------------------------- ReadMaps

namespace {
// A file of our own, mapped executable and then replaced by rename.
struct MappedFile {
  std::string dir, path;
  void* addr = MAP_FAILED;
  FileId id;
  MappedFile() {
    char tmpl[] = "/tmp/tg-inspect-test.XXXXXX";
    dir = mkdtemp(tmpl);
    path = dir + "/lib\nodd.so";
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0700);
    std::string page(4096, 'x');
    EXPECT_EQ(write(fd, page.data(), page.size()), 4096);
    struct stat st;
    fstat(fd, &st);
    id = file_id_of(st.st_dev, st.st_ino);
    addr = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    close(fd);
  }
  ~MappedFile() {
    if (addr != MAP_FAILED) munmap(addr, 4096);
    unlink(path.c_str());
    unlink((dir + "/new").c_str());
    rmdir(dir.c_str());
  }
  void replace() {
    std::string tmp = dir + "/new";
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0700);
    close(fd);
    ASSERT_EQ(rename(tmp.c_str(), path.c_str()), 0);
  }
  const Mapping* find(const std::vector<Mapping>& maps) const {
    for (const Mapping& m : maps)
      if (m.line.id == id) return &m;
    return nullptr;
  }
};
}  // namespace

TEST(ReadMaps, SelfWithQueryAndTextAgree) {
  MappedFile f;
  ASSERT_NE(f.addr, MAP_FAILED);
  for (bool text : {false, true}) {
    std::vector<Mapping> maps;
    ASSERT_EQ(read_mappings(getpid(), text, &maps), ReadStatus::ok);
    const Mapping* m = f.find(maps);
    ASSERT_NE(m, nullptr) << (text ? "text" : "PROCMAP_QUERY");
    EXPECT_EQ(m->path, f.path);  // raw newline either way
    EXPECT_TRUE(m->line.executable);
    EXPECT_FALSE(m->deleted);
    EXPECT_EQ(m->line.start, reinterpret_cast<uintptr_t>(f.addr));
    for (const Mapping& any : maps) EXPECT_NE(any.line.id.ino, 0u) << "anonymous mappings are left out";
  }
}

// `truncguard who` run with no fd left (a parent that leaks its fds): the
// maps that could not be opened are "not inspected" (exit 3), never "gone"
// (which let `who` say that nobody maps the file, exit 1). A PROCMAP_QUERY
// denied by a seccomp filter falls back to the text instead of "no access".
TEST(ReadMaps, NoFdToLookWithIsNotGone) {
  for (bool text : {false, true}) {
    EXPECT_EQ(unit::in_child([text] {
                if (!unit::leave_free_fds(0)) return 10;
                std::vector<Mapping> maps;
                return read_mappings(getpid(), text, &maps) == ReadStatus::no_access ? 0 : 1;
              }),
              0)
        << (text ? "text" : "PROCMAP_QUERY");
  }
}

// The maps opened, but their text could not be read (the kernel had no
// memory for its buffer: ENOMEM; EIO): not inspected, never "gone" (which let
// `who` say that nobody maps the file). Control: ESRCH, a process that
// exited while it was read, is gone (the filter reaches that read).
TEST(ReadMaps, AFailedReadIsNotGone) {
  for (int err : {ENOMEM, EIO, ESRCH}) {
    const int want = err == ESRCH ? static_cast<int>(ReadStatus::gone) : static_cast<int>(ReadStatus::no_access);
    EXPECT_EQ(unit::in_child([err] {
                if (!unit::deny_syscall(SYS_read, -1, err)) return 10;
                std::vector<Mapping> maps;
                return static_cast<int>(read_mappings(getpid(), true, &maps));
              }),
              want)
        << "errno " << err;
  }
}

TEST(ReadMaps, ADeniedProcmapQueryFallsBackToTheText) {
  MappedFile f;
  ASSERT_NE(f.addr, MAP_FAILED);
  for (int err : {EPERM, EACCES, ENOSYS}) {
    EXPECT_EQ(unit::in_child([&] {
                if (!unit::deny_syscall(SYS_ioctl, static_cast<long long>(tg::procmap::kQuery & 0xffffffffu), err)) return 10;
                std::vector<Mapping> maps;
                if (read_mappings(getpid(), false, &maps) != ReadStatus::ok) return 1;
                return f.find(maps) ? 0 : 2;
              }),
              0)
        << "errno " << err;
  }
}

TEST(ReadMaps, ReplacedFileShowsDeletedAndStale) {
  MappedFile f;
  ASSERT_NE(f.addr, MAP_FAILED);
  f.replace();
  for (bool text : {false, true}) {
    std::vector<Mapping> maps;
    ASSERT_EQ(read_mappings(0, text, &maps), ReadStatus::ok);
    const Mapping* m = f.find(maps);
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(m->deleted);
    EXPECT_EQ(m->path, f.path);
    EXPECT_EQ(staleness(*m, PathNow{}), Staleness::deleted);
  }
  // The name now leads to another inode.
  PathNow now = path_now_for_process(getpid(), f.path, f.id);
  ASSERT_EQ(now.kind, PathNow::file);
  EXPECT_NE(now.id, f.id);
  EXPECT_EQ(path_now_for_process(getpid(), f.dir + "/nothing-here", f.id).kind, PathNow::nothing);
}

TEST(ReadMaps, GoneProcess) {
  std::vector<Mapping> maps;
  // Above pid_max (4194304 at most): never a process.
  EXPECT_EQ(read_mappings(99999999, false, &maps), ReadStatus::gone);
}

TEST(ReadMaps, ListPidsAndDescribeSelf) {
  std::vector<pid_t> pids;
  ASSERT_TRUE(list_pids(&pids));
  EXPECT_TRUE(std::is_sorted(pids.begin(), pids.end()));
  EXPECT_NE(std::find(pids.begin(), pids.end(), getpid()), pids.end());
  Process p = describe_process(getpid());
  EXPECT_EQ(p.pid, getpid());
  EXPECT_TRUE(p.uid_known);
  EXPECT_EQ(p.uid, geteuid());
  EXPECT_FALSE(p.user.empty());
  EXPECT_FALSE(p.exe.empty());
  EXPECT_EQ(p.comm.substr(0, 5), std::string("ecosy").substr(0, 5));  // "ecosystem_tests", cut to 15
}
