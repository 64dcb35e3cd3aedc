/* libodd_caller.so: one function, tg_call ESC [7m odd (FN, A, B), which
 * returns FN(A, B); its ELF symbol's name holds a terminal escape sequence.
 * A log line that names where a call was made (a stale line's "opened at",
 * a backtrace's frames) names this function: escaped, never the raw ESC.
 * Look it up with dlsym(h, "tg_call\x1b[7modd") (ctypes: getattr). */
#define ODD "\"tg_call\x1b[7modd\""
__asm__(".text\n"
        ".globl " ODD "\n"
        ".type " ODD ", @function\n"
        ODD ":\n"
        "  sub $8, %rsp\n"  /* aligned for the call */
        "  mov %rdi, %rax\n"
        "  mov %rsi, %rdi\n"
        "  mov %rdx, %rsi\n"
        "  call *%rax\n"
        "  add $8, %rsp\n"
        "  ret\n"
        ".size " ODD ", .-" ODD "\n"
        ".section .note.GNU-stack,\"\",@progbits\n");
