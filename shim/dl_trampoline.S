/* dlopen as a guaranteed tail call (x86-64).
 *
 * glibc's dlopen looks at its caller's return address: it picks the caller's
 * namespace, $ORIGIN, RUNPATH/RPATH for bare names. A C++ wrapper that calls
 * the real dlopen makes the shim the caller (and whether the compiler emits a
 * call or a jmp depends on the optimisation level). Here the shim's hook runs
 * first, may substitute the file name, and then we JUMP to glibc's dlopen
 * with the caller's return address still on top of the stack.
 */
        .section .text.tg_dl_trampolines,"ax",@progbits  /* quiet_text.ld */
        .globl  dlopen
        .type   dlopen, @function
dlopen:
        .cfi_startproc
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        pushq   %rsi
        .cfi_adjust_cfa_offset 8
        subq    $8, %rsp                /* 16-byte alignment for the call */
        .cfi_adjust_cfa_offset 8
        movq    24(%rsp), %rdx          /* the caller's return address */
        call    tg_dlopen_enter         /* (file, mode, caller) -> file to load */
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        popq    %rsi
        .cfi_adjust_cfa_offset -8
        popq    %rdi
        .cfi_adjust_cfa_offset -8
        movq    %rax, %rdi
        jmp     *tg_real_dlopen(%rip)   /* set before tg_dlopen_enter returns */
        .cfi_endproc
        .size   dlopen, .-dlopen

/* dlsym and dlvsym, the same way: glibc resolves RTLD_NEXT and RTLD_DEFAULT
 * from the caller's return address. The hook only looks (it cannot change
 * the answer); the arguments go to glibc untouched.
 *   tg_dlsym_enter(handle, name, version or NULL, caller)
 * dlsym has no third argument: it enters with %rdx zeroed (saved and restored
 * like dlvsym's version; glibc's dlsym does not read it).
 */
        .macro LOOKUP_TRAMPOLINE name, real
        .globl  \name
        .type   \name, @function
\name:
        .cfi_startproc
        .ifc \name, dlsym
        xorl    %edx, %edx              /* no version */
        .endif
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        pushq   %rsi
        .cfi_adjust_cfa_offset 8
        pushq   %rdx                    /* three pushes: 16-byte alignment for the call */
        .cfi_adjust_cfa_offset 8
        movq    24(%rsp), %rcx          /* the caller's return address */
        call    tg_dlsym_enter
        popq    %rdx
        .cfi_adjust_cfa_offset -8
        popq    %rsi
        .cfi_adjust_cfa_offset -8
        popq    %rdi
        .cfi_adjust_cfa_offset -8
        jmp     *\real(%rip)            /* set before tg_dlsym_enter returns */
        .cfi_endproc
        .size   \name, .-\name
        .endm

        LOOKUP_TRAMPOLINE dlsym, tg_real_dlsym
        LOOKUP_TRAMPOLINE dlvsym, tg_real_dlvsym

        .section .note.GNU-stack,"",@progbits
