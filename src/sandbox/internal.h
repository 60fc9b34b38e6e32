#pragma once
// Pieces of the sandbox child that live in their own files (one kernel feature per file, as in
// crun). Everything called after fork returns 0 or an errno and allocates nothing.

#include <linux/filter.h>

#include <vector>

#include "base/error.h"

namespace ocib::sandbox::internal {

/// Drops every capability outside Docker's default set from the bounding set.
int drop_bounding_set();
/// Sets permitted/effective to Docker's default set for uid 0 (empty otherwise); inheritable
/// and ambient are cleared (as in Docker >= 20.10).
int set_capabilities(bool root, bool all = false);
/// Docker's default capability set as a bit mask (0x00000000a80425fb).
unsigned long long default_cap_mask();

/// The compiled seccomp filter (built once per process with libseccomp, exported as BPF so the
/// child only has to call seccomp(2)).
Result<const std::vector<sock_filter>*> seccomp_program();
/// Installs the program; no_new_privs must already be set.
int load_seccomp(const std::vector<sock_filter>& prog);

}  // namespace ocib::sandbox::internal
