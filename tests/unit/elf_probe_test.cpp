#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "elf_probe.hpp"

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
