// glibc's public aliases (exported since GLIBC_2.2.5, in no installed header)
// that the shim intercepts: the writers call them by these names.
#pragma once
#include <stdio.h>
#include <sys/types.h>

int __open(const char* path, int flags, ...);
int __open64(const char* path, int flags, ...);
int __close(int fd);
int __dup2(int oldfd, int newfd);
FILE* _IO_fopen(const char* path, const char* mode);
int _IO_fclose(FILE* stream);
ssize_t __write(int fd, const void* buf, size_t n);
ssize_t __pwrite64(int fd, const void* buf, size_t n, off64_t off);
