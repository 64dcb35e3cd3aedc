#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "elf_probe.hpp"
#include "pending.hpp"
#include "temp_dir.hpp"

using namespace tg;

namespace {
std::vector<unsigned char> header(unsigned char cls, unsigned char data, uint16_t type) {
  std::vector<unsigned char> h(64, 0);
  std::memcpy(h.data(), ELFMAG, SELFMAG);
  h[EI_CLASS] = cls;
  h[EI_DATA] = data;
  if (data == ELFDATA2LSB) { h[16] = type & 0xff; h[17] = type >> 8; }
  else { h[16] = type >> 8; h[17] = type & 0xff; }
  return h;
}
}  // namespace

TEST(Elf, Types) {
  auto so = header(ELFCLASS64, ELFDATA2LSB, ET_DYN);
  EXPECT_EQ(classify_elf(so.data(), so.size()), ElfKind::shared);
  auto exe = header(ELFCLASS32, ELFDATA2MSB, ET_EXEC);
  EXPECT_EQ(classify_elf(exe.data(), exe.size()), ElfKind::executable);
  auto obj = header(ELFCLASS64, ELFDATA2LSB, ET_REL);
  EXPECT_EQ(classify_elf(obj.data(), obj.size()), ElfKind::other);
  auto core = header(ELFCLASS64, ELFDATA2LSB, ET_CORE);
  EXPECT_EQ(classify_elf(core.data(), core.size()), ElfKind::other);
  auto bad_class = header(9, ELFDATA2LSB, ET_DYN);
  EXPECT_EQ(classify_elf(bad_class.data(), bad_class.size()), ElfKind::other);
}

TEST(Elf, NotElf) {
  const unsigned char text[] = "#!/bin/sh\necho hello world, this is long enough\n";
  EXPECT_EQ(classify_elf(text, sizeof text), ElfKind::not_elf);
  auto so = header(ELFCLASS64, ELFDATA2LSB, ET_DYN);
  EXPECT_EQ(classify_elf(so.data(), 10), ElfKind::not_elf);  // too short to be one
  EXPECT_EQ(classify_elf(so.data(), 0), ElfKind::not_elf);
}

TEST(Elf, ProbesRealFiles) {
  int fd = open("/proc/self/exe", O_RDONLY);
  ASSERT_GE(fd, 0);
  ElfKind k = probe_elf_fd(fd);
  EXPECT_TRUE(k == ElfKind::shared || k == ElfKind::executable);  // PIE or not
  close(fd);
  fd = open("/proc/self/maps", O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(probe_elf_fd(fd), ElfKind::not_elf);
  close(fd);
  int wfd = open("/dev/null", O_WRONLY);
  EXPECT_EQ(probe_elf_fd(wfd), ElfKind::unreadable);  // write-only fd: EBADF
  close(wfd);
}

namespace {
// `bytes` as a file of mode `mode` in `dir`; an fd open on it for reading.
int file_with(const tg::unit::TempDir& dir, const char* name, const std::vector<unsigned char>& bytes,
              mode_t mode = 0755) {
  const std::string p = dir / name;
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0 || write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) return -1;
  fchmod(fd, mode);
  close(fd);
  return open(p.c_str(), O_RDONLY);
}

// An ELF64 header of this machine, with `phnum` program headers of type
// `ptype` after it, and an entry point.
std::vector<unsigned char> program(uint16_t type, int phnum, uint32_t ptype, uint16_t machine = EM_X86_64) {
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_type = type;
  eh.e_machine = machine;
  eh.e_entry = 0x401000;
  eh.e_phoff = sizeof eh;
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = static_cast<uint16_t>(phnum);
  std::vector<unsigned char> out(sizeof eh + phnum * sizeof(Elf64_Phdr), 0);
  std::memcpy(out.data(), &eh, sizeof eh);
  for (int i = 0; i < phnum; ++i) {
    Elf64_Phdr ph{};
    ph.p_type = i == phnum - 1 ? ptype : PT_LOAD;
    std::memcpy(out.data() + sizeof eh + i * sizeof ph, &ph, sizeof ph);
  }
  return out;
}

NoPreload why(int fd, std::string* interp = nullptr) {
  char buf[128];
  const NoPreload r = why_no_preload(fd, buf, sizeof buf);
  if (interp) *interp = buf;
  close(fd);
  return r;
}
}  // namespace

#if defined(__x86_64__)
TEST(Elf, WhyNoPreload) {
  tg::unit::TempDir dir("tg-elf");
  EXPECT_EQ(why(open("/proc/self/exe", O_RDONLY)), NoPreload::none);  // this test: dynamic
  EXPECT_EQ(why(file_with(dir, "dyn", program(ET_DYN, 3, PT_INTERP))), NoPreload::none);
  EXPECT_EQ(why(file_with(dir, "static", program(ET_EXEC, 2, PT_LOAD))), NoPreload::static_elf);
  EXPECT_EQ(why(file_with(dir, "static-pie", program(ET_DYN, 2, PT_DYNAMIC))), NoPreload::static_elf);
  auto lib = program(ET_DYN, 2, PT_DYNAMIC);
  std::memset(lib.data() + offsetof(Elf64_Ehdr, e_entry), 0, 8);  // a library, no entry point: no program
  EXPECT_EQ(why(file_with(dir, "lib", lib)), NoPreload::none);
  EXPECT_EQ(why(file_with(dir, "arm", program(ET_EXEC, 1, PT_INTERP, EM_AARCH64))), NoPreload::other_machine);
  auto h32 = header(ELFCLASS32, ELFDATA2LSB, ET_EXEC);
  EXPECT_EQ(why(file_with(dir, "i386", h32)), NoPreload::class32);
  EXPECT_EQ(why(file_with(dir, "text", {'h', 'e', 'l', 'l', 'o', '\n'})), NoPreload::none);
  EXPECT_EQ(why(file_with(dir, "short", {0x7f, 'E', 'L'})), NoPreload::none);  // in doubt
  EXPECT_EQ(why(open("/dev/null", O_WRONLY)), NoPreload::none);               // unreadable: in doubt
  // A script: its interpreter decides, and is named.
  const std::string st = "#!" + (dir / "static") + " -x\n";
  std::string interp;
  EXPECT_EQ(why(file_with(dir, "script", std::vector<unsigned char>(st.begin(), st.end())), &interp),
            NoPreload::static_elf);
  EXPECT_EQ(interp, dir / "static");
  const std::string dy = "#!  " + (dir / "dyn") + "\n";
  EXPECT_EQ(why(file_with(dir, "script2", std::vector<unsigned char>(dy.begin(), dy.end())), &interp),
            NoPreload::none);
  EXPECT_EQ(interp, "");
  const std::string cut = "#!" + (dir / "static");  // no end of line: cut short, in doubt
  EXPECT_EQ(why(file_with(dir, "script3", std::vector<unsigned char>(cut.begin(), cut.end()))), NoPreload::none);
}
#endif

// sysfs and procfs files are kernel interfaces (never read for a header);
// a file of an ordinary filesystem, and the program itself, are not.
TEST(Elf, KernelInterfaceFilesystems) {
  for (const char* path : {"/sys/kernel", "/proc/self/status"}) {
    int fd = open(path, O_PATH | O_CLOEXEC);
    ASSERT_GE(fd, 0) << path;
    EXPECT_TRUE(on_kernel_interface_fs(fd)) << path;
    close(fd);
  }
  tg::unit::TempDir dir("tg-kif");
  const std::string p = dir / "text";
  int fd = open(p.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(on_kernel_interface_fs(fd));
  close(fd);
  fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);  // the program's file, through /proc
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(on_kernel_interface_fs(fd));
  close(fd);
  EXPECT_FALSE(on_kernel_interface_fs(-1));
}

TEST(Elf, HandOverVersion) {
  // This test program links pending.cpp, and with it the library's note.
  int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(self, 0);
  EXPECT_EQ(hand_over_version(self), pending::kHandOverVersion);
  close(self);
  // Other ELF files have none (a program, a library), nor has what is not ELF.
  for (const char* path : {"/bin/true", "/etc/hostname"}) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    EXPECT_EQ(hand_over_version(fd), 0u) << path;
    close(fd);
  }
}

// A note segment the size of a huge sparse file (a crafted LD_PRELOAD entry,
// or the library the command found): the walk stopped only at the end of the
// data, 12 zero bytes (an empty note) at a time, so the exec that looked at
// it hung (2^40 bytes of holes: hours). It now looks at a few notes only, as
// a real segment holds, and says "none". The child's alarm only ends a hang.
TEST(Elf, HandOverVersionStopsInAHugeNoteSegment) {
  unit::TempDir dir("tg-elfnote");
  const std::string path = dir / "huge.so";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_DYN;
  eh.e_version = EV_CURRENT;
  eh.e_phoff = sizeof eh;
  eh.e_ehsize = sizeof eh;
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = 1;
  Elf64_Phdr ph{};
  ph.p_type = PT_NOTE;
  ph.p_offset = 4096;
  ph.p_filesz = ph.p_memsz = uint64_t{1} << 40;
  ph.p_align = 4;
  ASSERT_EQ(pwrite(fd, &eh, sizeof eh, 0), static_cast<ssize_t>(sizeof eh));
  ASSERT_EQ(pwrite(fd, &ph, sizeof ph, sizeof eh), static_cast<ssize_t>(sizeof ph));
  if (ftruncate(fd, static_cast<off_t>(ph.p_offset + ph.p_filesz)) != 0) GTEST_SKIP() << "no 1 TiB sparse file here";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(20);
    _exit(hand_over_version(fd) == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  close(fd);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "hand_over_version did not return (killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << ")";
}
