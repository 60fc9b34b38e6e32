#pragma once
// The seccomp profile of a step: Docker's (moby's) default profile, an allow-list. Built with
// libseccomp for the native arch and its compat arches; the sandbox child only loads the
// exported BPF (sandbox/internal.h).

#include <linux/filter.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"

namespace ocib::sandbox {

/// One line for `ocib info`: "allow-list (moby default), N syscalls, arches x86_64,x86,x32; …".
std::string seccomp_description();

namespace internal {

struct SeccompCtxDeleter {
  void operator()(void* ctx) const;
};
/// A libseccomp filter context (scmp_filter_ctx).
using SeccompCtx = std::unique_ptr<void, SeccompCtxDeleter>;

struct SeccompFilter {
  SeccompCtx ctx;
  /// Distinct syscall names the first (native) arch allows, with or without argument checks.
  size_t allowed = 0;
};

/// The arches a step's filter covers, as SCMP_ARCH_* tokens: the native one first, then its
/// compat ABIs as in moby's archMap (x86_64: x86, x32; aarch64: arm; …).
std::vector<uint32_t> seccomp_native_arches();

/// Builds, without loading, the default profile for `arches` (first = the arch whose
/// arch-specific syscalls are allowed, as moby decides by the daemon's arch). Names a given
/// arch (or this libseccomp) does not know are skipped for that arch.
Result<SeccompFilter> build_seccomp_filter(const std::vector<uint32_t>& arches);

/// libseccomp's pseudo filter code, for humans and tests.
Result<std::string> seccomp_export_pfc_text(void* ctx);
/// The classic BPF program, as seccomp(2) takes it.
Result<std::vector<sock_filter>> seccomp_export_program(void* ctx);

}  // namespace internal
}  // namespace ocib::sandbox
