// The shim's walks of the loaded objects (dl_iterate_phdr) and fork().
//
// dl_iterate_phdr takes glibc's dl_load_write_lock, which fork() does not
// reset in the child (glibc 2.36 resets dl_load_lock and dl_load_tls_lock
// only): a fork while another thread is in one of the shim's walks leaves
// the child's next dlopen (or dl_iterate_phdr) waiting forever for a thread
// it does not have. So fork() waits (pthread_atfork prepare) until no thread
// is in one, and none starts one until fork() is done.
#pragma once

#include <link.h>

#include <cstddef>

namespace tg::fork_gate {

// dl_iterate_phdr(callback, data), with fork() held off meanwhile.
int walk(int (*callback)(struct dl_phdr_info*, size_t, void*), void* data);

// The pthread_atfork handlers, registered by install() (once; later calls do
// nothing).
void before_fork();
void after_fork_parent();
void after_fork_child();
void install();

}  // namespace tg::fork_gate
