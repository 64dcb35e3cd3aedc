// The shim's walks of the loaded objects (dl_iterate_phdr) and fork().
//
// dl_iterate_phdr takes glibc's dl_load_write_lock, which fork() does not
// reset in the child (glibc 2.36 resets dl_load_lock and dl_load_tls_lock
// only): a fork while another thread is in one of the shim's walks leaves
// the child's next dlopen (or dl_iterate_phdr) waiting forever for a thread
// it does not have. So the walks and fork() (from its pthread_atfork prepare
// handler to its parent one) hold one lock, an owner_lock (owner_lock.hpp):
// each waits for the other as long as the other is on its way, however
// slowly (preempted on a loaded machine, or stopped and let go with the whole
// process: a wait of 1 s by the clock let the fork go ahead as soon as a
// longer stop ended, the walk unfinished), never for itself (a fork from a
// signal handler that interrupted this thread's walk, a walk from a handler
// that interrupted its fork; a fork from a handler that interrupted a fork
// holds it too: at once where the outer one holds it, else it waits as any
// fork), and not for one that is stuck (asleep, stopped on its own,
// waiting in the kernel for a second, a walk running on, given no CPU at
// all: see owner_lock::take),
// which glibc's own locks would hold up forever anyway; a fork that runs on
// (a large process's page tables copied, a prepare handler at work) is waited
// for up to 2 s of its CPU time. A walk from a thread that
// no longer exists (fork() copied it) is taken over.
#pragma once

#include <link.h>

#include <cstddef>

namespace tg::fork_gate {

// dl_iterate_phdr(callback, data), with fork() held off meanwhile. Where the
// gate is this thread's already (a signal handler), or stuck, it walks anyway.
int walk(int (*callback)(struct dl_phdr_info*, size_t, void*), void* data);

// fork() held off while the caller walks the loaded objects another way:
// libunwind's unw_step and unw_get_proc_name call dl_iterate_phdr themselves
// (the backtrace category). True where this took the gate: let_go() then.
bool hold();
void let_go();

// The pthread_atfork handlers, registered by install() (once; later calls do
// nothing).
void before_fork();
void after_fork_parent();
void after_fork_child();
void install();

}  // namespace tg::fork_gate
