// Atomic publish (TRUNCGUARD_MODE=atomic): a new inode that becomes visible at
// the name only when the writer is done with it.
//
// The inode is made with O_TMPFILE, so it has no name while it is written: a
// writer that crashes leaves nothing behind, and the old file stays intact.
// It is linked under a temp name and renamed over the name when its last fd
// in the writing process is closed (close, fclose, dup2 over it; or, where
// the process maps it shared and writable then, when it is unmapped), when
// the process exits, or handed over to the new program at exec.
//
// The table is lock-free (fixed slots, atomics): close() can come from signal
// handlers and vfork children, where a lock could deadlock.
#pragma once

#include <sys/types.h>

#include <atomic>

namespace tg::pending {

// The version of the exec hand-over's format (TRUNCGUARD_PENDING), which the
// library carries in its ELF note (elf_probe.hpp): a program exec'ed with
// another build of truncguard at the library's path (an upgrade since this
// one was loaded) is handed its files only by a build of this same version.
// Bump it with any change of the format or of what an entry means that a
// reader of this version would get wrong. Not for one it reads safely, as
// the synced mark (an `s` after OLD_INO, which a reader before it skips,
// adopting the file unsynced): a bump makes every program started before an
// upgrade publish its files at its execs instead of handing them over, and a
// build of another version taken for this one unchecked (a bare name in
// LD_PRELOAD) drop the entries it can't read, and their files.
constexpr unsigned kHandOverVersion = 1;

// Files pending at once in one process (entries vfork children left behind
// included, until their owners die and the table is full).
constexpr int kMaxFiles = 32;

struct Publication {
  const char* base;         // the name, in its directory
  unsigned long old_ino;
  unsigned long new_ino;
  int error;                // 0, or the errno of what failed
  const char* failed_step;  // what failed, if anything
};

// Registers `fd` (an O_TMPFILE inode) for publication as `base` in the
// directory `dirfd` (taken over: closed after publication). `path` is the name
// the program used, for the log. False if the table is full.
bool add(int fd, int dirfd, const char* base, const char* path, unsigned long old_ino);

// add() in two steps, for a caller that must know there is room before it
// closes what it would need to fall back, and may only then learn the fd
// number to register (the lowest free one, once its own fds are closed).
// reserve() takes a file entry and an fd entry (invisible to every lookup
// until commit), or returns false (table full: nothing taken, the caller
// keeps its dirfd). `fd` is any fd on the new inode (its identity is
// recorded). commit() cannot fail: it registers `fd` under its number, which
// must be an fd on the same inode. Between the two, nothing is pending yet.
struct Reservation {
  int group = -1;
  int slot = -1;
};
bool reserve(int fd, int dirfd, const char* base, const char* path, unsigned long old_ino, Reservation* r);
void commit(const Reservation& r, int fd);

namespace detail {
extern std::atomic<int> g_live_slots;  // fds pending (pending.cpp)
}
// True if any fd is pending in this process: the pass-through test of close()
// (inline: every close() asks it).
inline bool any() { return detail::g_live_slots.load(std::memory_order_acquire) > 0; }
// True if `fd` is one of this process's fds on a pending file.
bool is_pending(int fd);

// The program closes `fd` (or dup2/dup3 closes it implicitly): publishes the
// file if it was the last fd on it, unless this process still maps the file
// shared and writable (then at unmapped(), exit or exec). Call before the
// real close. Returns 0, or
// the errno of a publication that failed (the close should report it).
int closing(int fd);
// The program unmapped memory: a file whose last fd it closed while it still
// mapped the file shared and writable (closing() kept it pending then) is
// published once no such mapping is left.
void unmapped();

// close_range/closefrom: closing() for each of this process's pending fds in
// [first, last]. Returns the errno of the last failed publication, or 0.
int closing_range(unsigned first, unsigned last);

// close_range/closefrom: the directory fds this process keeps for its pending
// files that lie in [first, last] (and still are those directories), in
// ascending order, at most `max`. They are not the program's: the caller
// leaves them open, or the files could not be published. Returns how many.
int kept_fds_in(unsigned first, unsigned last, int* out, int max);

// The writer synced `fd` (fsync, fdatasync): if it is a pending file, its
// publication (here, or by the program it is handed over to at an exec) syncs
// the directory after the rename, so that the name holds it
// durably, as the writer's sync promised.
void synced(int fd);

// The writer synced all of its files (sync, syncfs, msync with MS_SYNC):
// every pending file this process owns is published as if it
// had synced it. (syncfs and msync name one filesystem or one mapping; taking
// them for all costs at most one directory fsync per publication, and only in
// a program that syncs.)
void synced_all();

// A write to `fd` failed with `error`: if that lost data (ENOSPC, EDQUOT, EIO,
// EFBIG), the file is never published and the old one stays.
void write_failed(int fd, int error);

// The call that opened `fd` fails after all (fopen: no stream could be made
// on it): if it is a pending file, it is never published, the old file stays,
// and its close logs `step` (a constant string) and `error`.
void never_publish(int fd, const char* step, int error);

// `newfd` is a duplicate of `oldfd` (dup, dup2, dup3, F_DUPFD).
void duplicated(int oldfd, int newfd);

// A pending file's name in the log (the program's name for it, cut if longer).
constexpr size_t kLogName = 1024;

// The program renames `path` (relative to `dirfd`; renameat's source): if
// that is the name of one of this process's pending files, still holding the
// old inode, the file is published first, so that the rename moves the new
// content, as it moves the written inode without truncguard. (Write, fsync,
// rename, close, with a leftover temp name: the rename moved the old file,
// and the close put the new one back at the temp name.) Later writes land in
// the published file, as in mode replace. Returns 0, or the errno the
// rename must fail with, not made: the file could not be published (the
// close would have returned that error), or a write to it had failed.
// `published_as` (kLogName bytes): where a file was published for the
// rename (its "renamed" note says so, before the rename is made), its name
// in the log, the writer's at its open (the rename may name it by another
// path: relative to a directory fd, through a symlink); left alone where no
// file is published for it, empty where one could not be.
int renaming(int dirfd, const char* path, char* published_as);

// The rename a file was published for (renaming) failed with `error`
// (EXDEV, ENOENT, EEXIST for RENAME_NOREPLACE...): says so, and that the new
// file stays published at its name (`published_as`, the name renaming gave
// it in the log), as in mode replace. Leaves errno as it was.
void rename_failed(const char* published_as, int error);

// Publishes every pending file this process owns (exit).
void publish_all();

// exec: marks the pending fds that survive exec (no FD_CLOEXEC) in an
// environment entry for the new image, and publishes the others. Returns the
// "TRUNCGUARD_PENDING=..." entry to add to the environment, or nullptr.
// `no_hand_over`: why the new image can't take the files over (its
// environment does not preload the shim, or can't carry the entry), or
// nullptr. Then every pending file is published now, with a note saying
// why for those it keeps writing (their content arrives in place, as in
// mode replace).
const char* prepare_exec(const char* no_hand_over = nullptr);

// The exec prepare_exec prepared failed, and the program goes on: the
// directory fds it let survive exec for a hand-over close at exec again
// (they would have reached every program it starts next).
void exec_failed();

// The new image: takes over the pending fds handed over by prepare_exec.
void adopt_from_environment();

// NAME's value in `environ` itself (not through getenv, which a program
// such as bash defines for its own table), or nullptr.
const char* environ_value(const char* name, size_t len);
// Removes every NAME=... entry from `environ` itself (not through unsetenv,
// which a program such as bash defines for its own table).
void environ_remove(const char* name, size_t len);

}  // namespace tg::pending
