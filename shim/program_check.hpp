// Why a program the command is about to run can't load libtruncguard.so:
// the command says so once, rather than let it run unprotected in silence.
#pragma once

#include <string>

namespace tg {

// The first PATH entry where `name` exists (with `runnable`: is an
// executable regular file, the one execvp runs), glibc's default path where
// PATH is unset; or "".
std::string found_in_path(const char* name, bool runnable);

// `cmd` as execvp finds it. "" when the library can be preloaded into it (or
// when its file can't be read, or found: the exec will tell); otherwise what
// keeps ld.so from preloading it, and what that means for the programs it
// starts, as one sentence that names `cmd`.
std::string why_unprotected(const char* cmd);

}  // namespace tg
