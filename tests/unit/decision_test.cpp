#include <fcntl.h>
#include <gtest/gtest.h>

#include "decision.hpp"
#include "maps_reader.hpp"

using namespace tg;

namespace {
struct stat file_of(off_t size, mode_t type = S_IFREG) {
  struct stat st {};
  st.st_mode = type | 0644;
  st.st_size = size;
  return st;
}
}  // namespace

TEST(Decision, OnlyWritesThatCanChangeContentAreLookedAt) {
  EXPECT_FALSE(may_change_content(O_RDONLY));
  EXPECT_TRUE(may_change_content(O_RDONLY | O_TRUNC | O_CREAT));
  EXPECT_FALSE(may_change_content(O_PATH | O_WRONLY));
  EXPECT_TRUE(may_change_content(O_WRONLY));               // dd conv=notrunc, rsync --inplace
  EXPECT_TRUE(may_change_content(O_RDWR));
  EXPECT_TRUE(may_change_content(O_RDWR | O_APPEND));      // can mmap it shared and write there
  EXPECT_FALSE(may_change_content(O_WRONLY | O_APPEND));   // >>, fopen "a": adds bytes, changes none
  EXPECT_FALSE(may_change_content(O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC));
  EXPECT_TRUE(may_change_content(O_WRONLY | O_APPEND | O_TRUNC));
  EXPECT_FALSE(check_flags(O_RDONLY).act);
  EXPECT_EQ(check_flags(O_RDONLY).reason, Reason::not_writing);
  EXPECT_FALSE(check_flags(O_WRONLY | O_APPEND).act);
  EXPECT_EQ(check_flags(O_WRONLY | O_APPEND).reason, Reason::append_only);
  EXPECT_TRUE(check_flags(O_WRONLY).act);
  EXPECT_TRUE(check_flags(O_RDWR | O_APPEND).act);
}

TEST(Decision, OnlyWritesWithTruncCanTruncate) {
  EXPECT_FALSE(may_truncate(O_RDONLY));
  EXPECT_TRUE(may_truncate(O_RDONLY | O_TRUNC));  // Linux truncates (it checks write permission)
  EXPECT_FALSE(may_truncate(O_WRONLY));
  EXPECT_FALSE(may_truncate(O_WRONLY | O_APPEND | O_CREAT));
  EXPECT_FALSE(may_truncate(O_PATH | O_WRONLY | O_TRUNC));
  EXPECT_TRUE(may_truncate(O_WRONLY | O_TRUNC));
  EXPECT_TRUE(may_truncate(O_RDWR | O_TRUNC | O_CREAT));
}

TEST(Decision, FlagsStage) {
  EXPECT_TRUE(check_flags(O_WRONLY | O_TRUNC | O_CREAT).act);
  EXPECT_EQ(check_flags(O_WRONLY | O_TRUNC | O_CREAT | O_EXCL).reason, Reason::exclusive_create);
  EXPECT_FALSE(check_flags(O_WRONLY | O_TRUNC | O_CREAT | O_EXCL).act);
  EXPECT_FALSE(check_flags(O_WRONLY | O_TRUNC | O_DIRECTORY).act);
  EXPECT_TRUE(check_flags(O_WRONLY).act);  // an in-place write
}

TEST(Decision, FileStage) {
  EXPECT_TRUE(check_file(file_of(100), -1).act);
  EXPECT_EQ(check_file(file_of(0), -1).reason, Reason::empty_file);
  EXPECT_EQ(check_file(file_of(100, S_IFIFO), -1).reason, Reason::not_regular);
  EXPECT_EQ(check_file(file_of(100, S_IFCHR), -1).reason, Reason::not_regular);
  EXPECT_EQ(check_file(file_of(100, S_IFDIR), -1).reason, Reason::not_regular);
  // In place (-1): any non-empty file.
  EXPECT_TRUE(check_file(file_of(100), -1).act);
  // truncate(2): only shrinking loses pages.
  EXPECT_TRUE(check_file(file_of(100), 0).act);
  EXPECT_TRUE(check_file(file_of(100), 99).act);
  EXPECT_EQ(check_file(file_of(100), 100).reason, Reason::not_shrinking);
  EXPECT_EQ(check_file(file_of(100), 4096).reason, Reason::not_shrinking);
}

TEST(Decision, ElfStage) {
  EXPECT_TRUE(check_elf(ElfKind::shared).act);
  EXPECT_TRUE(check_elf(ElfKind::executable).act);
  EXPECT_TRUE(check_elf(ElfKind::unreadable).act);  // can't prove it is not code
  EXPECT_EQ(check_elf(ElfKind::other).reason, Reason::not_code);  // ET_REL, core
  EXPECT_EQ(check_elf(ElfKind::not_elf).reason, Reason::not_code);
}

TEST(Decision, SystemScopeActsOnAnyMapper) {
  MappingFacts m;
  EXPECT_EQ(check_mapping(Scope::system, ElfKind::shared, m).reason, Reason::not_mapped);
  m.mapped_by_others = 1;
  EXPECT_EQ(check_mapping(Scope::system, ElfKind::shared, m).reason, Reason::mapped);
  m = {};
  m.mapped_by_self = true;
  EXPECT_TRUE(check_mapping(Scope::system, ElfKind::shared, m).act);
}

TEST(Decision, SystemScopeReplacesUnlessProvenUnmapped) {
  MappingFacts m;
  m.uninspected = 3;
  Verdict v = check_mapping(Scope::system, ElfKind::shared, m);
  EXPECT_TRUE(v.act);
  EXPECT_EQ(v.reason, Reason::uninspected_elf);
  EXPECT_TRUE(check_mapping(Scope::system, ElfKind::executable, m).act);
  EXPECT_FALSE(check_mapping(Scope::system, ElfKind::not_elf, m).act);
  m = {};
  m.proc_missing = true;
  EXPECT_TRUE(check_mapping(Scope::system, ElfKind::shared, m).act);
}

TEST(Decision, KernelProofBeatsUninspectedProcesses) {
  // A granted write lease proves nobody has it open, even processes we can't read.
  MappingFacts m;
  m.uninspected = 7;
  m.proven_unshared = true;
  Verdict v = check_mapping(Scope::system, ElfKind::shared, m);
  EXPECT_FALSE(v.act);
  EXPECT_EQ(v.reason, Reason::unshared);
  // The proof only matters to scope system; scope elf does not scan.
  EXPECT_TRUE(check_mapping(Scope::elf, ElfKind::shared, m).act);
}

TEST(Decision, SelfScopeLooksOnlyAtThisProcess) {
  MappingFacts m;
  m.mapped_by_others = 5;
  m.uninspected = 5;
  EXPECT_EQ(check_mapping(Scope::self, ElfKind::shared, m).reason, Reason::not_mapped_by_self);
  m.mapped_by_self = true;
  EXPECT_TRUE(check_mapping(Scope::self, ElfKind::shared, m).act);
  EXPECT_FALSE(scope_needs_scan(Scope::self));
  EXPECT_TRUE(scope_needs_self(Scope::self));
}

// The facts M make SCOPE act, for REASON, on an ELF shared object and on a
// file whose header can't be read, and not on a file that is not ELF.
void expect_acts_on_code_only(Scope scope, const MappingFacts& m, Reason reason) {
  Verdict v = check_mapping(scope, ElfKind::shared, m);
  EXPECT_TRUE(v.act);
  EXPECT_EQ(v.reason, reason);
  EXPECT_TRUE(check_mapping(scope, ElfKind::unreadable, m).act);
  EXPECT_FALSE(check_mapping(scope, ElfKind::not_elf, m).act);
}

TEST(Decision, SelfScopeActsWhenItCouldNotLookAtItself) {
  // Its own maps could not be read (a writer at its fd limit): that proves
  // nothing, so an ELF file counts as mapped, as uninspected processes do
  // for scope system. Measured before: "this process does not map it", and
  // the selfwriter truncated its own library (SIGSEGV).
  MappingFacts m;
  m.self_uninspected = true;
  expect_acts_on_code_only(Scope::self, m, Reason::self_uninspected);
  EXPECT_FALSE(check_mapping(Scope::self, ElfKind::other, m).act);
  EXPECT_TRUE(scope_needs_self(Scope::self));
}

TEST(Decision, OtherMachinesOfASharedFilesystemAreNotNobody) {
  // NFS, SMB...: every process of this machine was inspected and none maps
  // the file, but other machines that mount the filesystem may run it (it
  // was truncated in place: "no process maps it executable").
  MappingFacts m;
  m.other_machines = true;
  expect_acts_on_code_only(Scope::system, m, Reason::other_machines_elf);
  EXPECT_TRUE(check_mapping(Scope::system, ElfKind::executable, m).act);
  // Scope namespace counts this PID namespace's processes only, as it says.
  EXPECT_EQ(check_mapping(Scope::pid_namespace, ElfKind::shared, m).reason, Reason::not_mapped);
  // A mapping seen here is named as such.
  m.mapped_by_others = 1;
  EXPECT_EQ(check_mapping(Scope::system, ElfKind::shared, m).reason, Reason::mapped);
}

TEST(Decision, NetworkAndClusterFilesystemsAreSharedWithOtherMachines) {
  for (long t : {0x6969L, 0xFF534D42L, 0xFE534D42L, 0x517BL, 0x00c36400L, 0x5346414FL, 0x6B414653L, 0x01021997L,
                 0x7461636fL, 0x01161970L, 0x0bd00bd0L, 0x47504653L, 0x20030528L})
    EXPECT_TRUE(shared_with_other_machines(t)) << std::hex << t;
  // The other network and cluster filesystems coreutils' stat calls remote
  // (BeeGFS, IBRIX, PanFS, ACFS, StorNext, VxFS), and a VM's shared folders
  // (VirtualBox, VMware, Parallels), whose host runs the same files.
  for (long t : {0x19830326L, 0x013111a8L, 0xaad7aaeaL, 0x61636673L, 0xbeefdeadL, 0xa501fcf5L, 0x786f4256L,
                 0xbacbacbcL, 0x7c7c6673L})
    EXPECT_TRUE(shared_with_other_machines(t)) << std::hex << t;
  // statfs f_type is a signed long: SMB's magic sign-extended, as 32-bit
  // f_type values with the top bit set may read.
  EXPECT_TRUE(shared_with_other_machines(static_cast<long>(static_cast<int>(0xFF534D42u))));
  // Local, stacking and pseudo filesystems: ext4, XFS, btrfs, tmpfs, overlayfs, FUSE, proc, unknown.
  for (long t : {0xEF53L, 0x58465342L, 0x9123683EL, 0x01021994L, 0x794c7630L, 0x65735546L, 0x9fa0L, 0L})
    EXPECT_FALSE(shared_with_other_machines(t)) << std::hex << t;
}

TEST(Decision, ProcessesOutsideThisPidNamespaceAreNotNobody) {
  // /proc shows one PID namespace (a container's): nobody in it maps the
  // file, but a process outside may. Measured before: a deploy in its own
  // PID namespace truncated a library a process outside ran (SIGBUS).
  MappingFacts m;
  m.outside_pid_ns = true;
  Verdict v = check_mapping(Scope::system, ElfKind::shared, m);
  EXPECT_TRUE(v.act);
  EXPECT_EQ(v.reason, Reason::uninspected_elf);
  EXPECT_FALSE(check_mapping(Scope::system, ElfKind::not_elf, m).act);
  // Scope namespace leaves them out, as it says; what it can see still counts.
  EXPECT_EQ(check_mapping(Scope::pid_namespace, ElfKind::shared, m).reason, Reason::not_mapped);
  m.uninspected = 1;
  EXPECT_TRUE(check_mapping(Scope::pid_namespace, ElfKind::shared, m).act);
  m.uninspected = 0;
  m.mapped_by_others = 1;
  EXPECT_TRUE(check_mapping(Scope::pid_namespace, ElfKind::shared, m).act);
  m.proven_unshared = true;
  EXPECT_FALSE(check_mapping(Scope::pid_namespace, ElfKind::shared, m).act);
  EXPECT_TRUE(scope_needs_scan(Scope::pid_namespace));
}

TEST(Decision, ElfScopeNeedsNoScan) {
  MappingFacts m;
  EXPECT_EQ(check_mapping(Scope::elf, ElfKind::shared, m).reason, Reason::scope_elf);
  EXPECT_FALSE(check_mapping(Scope::elf, ElfKind::other, m).act);
  EXPECT_FALSE(scope_needs_scan(Scope::elf));
  EXPECT_FALSE(scope_needs_self(Scope::elf));
}

TEST(Decision, ReplacementKeepsCallerFlags) {
  int f = replacement_flags(O_WRONLY | O_TRUNC | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  EXPECT_EQ(f & O_ACCMODE, O_WRONLY);
  EXPECT_TRUE(f & O_APPEND);
  EXPECT_TRUE(f & O_CLOEXEC);
  EXPECT_TRUE(f & O_EXCL);
  EXPECT_TRUE(f & O_CREAT);
  EXPECT_TRUE(f & O_NOFOLLOW);  // the caller's own
  EXPECT_FALSE(f & O_TRUNC);
  // Nothing the caller did not ask for that F_GETFL would show.
  EXPECT_FALSE(replacement_flags(O_WRONLY | O_TRUNC) & O_NOFOLLOW);
  EXPECT_EQ(replacement_flags(O_WRONLY | O_TRUNC), O_WRONLY | O_CREAT | O_EXCL);
  EXPECT_EQ(replacement_flags(O_RDWR | O_TRUNC) & O_ACCMODE, O_RDWR);
  EXPECT_FALSE(replacement_flags(O_RDWR | O_TRUNC | O_DIRECTORY) & O_DIRECTORY);
}

TEST(Decision, EveryReasonHasText) {
  for (int r = 0; r <= static_cast<int>(Reason::scope_elf); ++r)
    EXPECT_STRNE(to_string(static_cast<Reason>(r)), "?");
}

TEST(FopenMode, Modes) {
  EXPECT_EQ(fopen_mode_flags("r"), O_RDONLY);
  EXPECT_EQ(fopen_mode_flags("w"), O_WRONLY | O_CREAT | O_TRUNC);
  EXPECT_EQ(fopen_mode_flags("wb"), O_WRONLY | O_CREAT | O_TRUNC);
  EXPECT_EQ(fopen_mode_flags("w+"), O_RDWR | O_CREAT | O_TRUNC);
  EXPECT_EQ(fopen_mode_flags("wb+e"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC);
  EXPECT_EQ(fopen_mode_flags("wx"), O_WRONLY | O_CREAT | O_TRUNC | O_EXCL);
  EXPECT_EQ(fopen_mode_flags("a"), O_WRONLY | O_CREAT | O_APPEND);
  EXPECT_EQ(fopen_mode_flags("w,ccs=UTF-8"), O_WRONLY | O_CREAT | O_TRUNC);
  EXPECT_EQ(fopen_mode_flags("w,ccs=e+"), O_WRONLY | O_CREAT | O_TRUNC);  // stops at ','
  EXPECT_EQ(fopen_mode_flags("z"), -1);
  EXPECT_EQ(fopen_mode_flags(""), -1);
  EXPECT_EQ(fopen_mode_flags(nullptr), -1);
  EXPECT_TRUE(may_truncate(fopen_mode_flags("w")));
  EXPECT_FALSE(may_truncate(fopen_mode_flags("r+")));
  EXPECT_FALSE(may_truncate(fopen_mode_flags("a+")));
}
