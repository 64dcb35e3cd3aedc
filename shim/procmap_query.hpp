// The PROCMAP_QUERY ioctl on /proc/PID/maps (Linux 6.11+): binary, filterable
// VMA queries. Debian 12's headers predate it, so it is declared here, once,
// as include/uapi/linux/fs.h defines it (field notes, section 2).
#pragma once

#include <cstdint>
#include <sys/ioctl.h>

namespace tg::procmap {

struct procmap_query {
  uint64_t size;
  uint64_t query_flags;
  uint64_t query_addr;
  uint64_t vma_start;      // out
  uint64_t vma_end;        // out
  uint64_t vma_flags;      // out
  uint64_t vma_page_size;  // out
  uint64_t vma_offset;     // out
  uint64_t inode;          // out
  uint32_t dev_major;      // out
  uint32_t dev_minor;      // out
  uint32_t vma_name_size;  // in/out
  uint32_t build_id_size;  // in/out
  uint64_t vma_name_addr;  // in
  uint64_t build_id_addr;  // in
};

// query_flags (and, the first four, vma_flags)
constexpr uint64_t kVmaReadable = 0x01;
constexpr uint64_t kVmaWritable = 0x02;
constexpr uint64_t kVmaExecutable = 0x04;
constexpr uint64_t kVmaShared = 0x08;
constexpr uint64_t kCoveringOrNext = 0x10;
constexpr uint64_t kFileBacked = 0x20;

constexpr unsigned long kQuery = _IOWR('f', 17, struct procmap_query);

}  // namespace tg::procmap
