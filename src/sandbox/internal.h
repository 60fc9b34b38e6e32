#pragma once
// Pieces of the sandbox child that live in their own files (one kernel feature per file, as in
// crun). Everything called after fork returns 0 or an errno and allocates nothing.

#include <linux/filter.h>

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/idmap.h"
#include "sandbox/sandbox.h"

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

/// The generated /etc/hosts, /etc/hostname and /etc/resolv.conf of an argv step, written under
/// `scratch`, as bind mounts of them.
Result<std::vector<Mount>> etc_mounts(const Spec& s, const std::string& scratch, bool net_stack);

/// Empties `dir` (keeps the directory itself).
Status clear_dir(const std::string& dir);

/// Forks a child in a process group of its own that cancel_all() kills; it runs `child` and
/// _exits with its value. Fails with kCancelled after cancel_all().
Result<pid_t> spawn_tracked(const std::function<int()>& child);
/// Waits for a spawn_tracked() child and returns its wait status; *cancelled when cancel_all()
/// killed it.
int reap_tracked(pid_t pid, bool* cancelled);

/// proot on PATH, "" when missing.
std::string proot_path();
/// run() under the chroot isolation (chroot.cc).
Result<Outcome> run_chroot(const Spec& s, const IdMapping& ids);

}  // namespace ocib::sandbox::internal
