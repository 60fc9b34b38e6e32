// The seccomp filter. Docker's default profile is an allow-list; we use the equivalent
// deny-list instead (default allow, EPERM for what Docker refuses to a container without
// CAP_SYS_ADMIN and friends), which keeps new harmless syscalls working on new kernels.
// Like Docker we cover the native arch plus, on x86_64, the i386 and x32 ABIs, and clone3
// fails with ENOSYS so that libc falls back to clone(2), whose flags a filter can inspect.

#include <errno.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <optional>

#include "base/fd.h"
#include "sandbox/internal.h"

namespace ocib::sandbox::internal {

namespace {

// Denied with EPERM: kernel modules, kexec, reboot, swap, clocks, keyrings, bpf, perf,
// userfaultfd, handle-based open, mounts and namespaces, process_vm_*, obsolete and
// dangerous legacy calls.
constexpr const char* kDenied[] = {
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "clock_settime64",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "_sysctl",
    "sysfs",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
    "vhangup",
};

constexpr unsigned long kNamespaceFlags[] = {
    CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,    CLONE_NEWUSER,
    CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP,
};

struct CtxDeleter {
  void operator()(void* p) const { seccomp_release(p); }
};

Result<std::vector<sock_filter>> build() {
  std::unique_ptr<void, CtxDeleter> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return Error(Errc::kGeneric, "sandbox: seccomp_init failed");
#if defined(__x86_64__)
  for (uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
    int r = seccomp_arch_add(ctx.get(), arch);
    if (r < 0 && r != -EEXIST) return Error::from_errno("sandbox: seccomp_arch_add", -r);
  }
#endif
  for (const char* name : kDenied) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp
    int r = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (r < 0 && r != -EDOM)
      return Error::from_errno(std::string("sandbox: seccomp rule ") + name, -r);
  }
  // clone(2) creating namespaces: flags are argument 0 on every arch we add.
  for (unsigned long flag : kNamespaceFlags) {
    int r = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
    if (r < 0) return Error::from_errno("sandbox: seccomp rule clone", -r);
  }
  int nr = seccomp_syscall_resolve_name("clone3");
  if (nr != __NR_SCMP_ERROR) {
    int r = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), nr, 0);
    if (r < 0 && r != -EDOM) return Error::from_errno("sandbox: seccomp rule clone3", -r);
  }
  // We set no_new_privs ourselves, right before loading.
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);

  // libseccomp 2.5 can only export into an fd.
  UniqueFd mem(memfd_create("ocib-seccomp", MFD_CLOEXEC));
  if (!mem.valid()) return Error::from_errno("sandbox: memfd_create", errno);
  int r = seccomp_export_bpf(ctx.get(), mem.get());
  if (r < 0) return Error::from_errno("sandbox: seccomp_export_bpf", -r);
  off_t size = lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0)
    return Error(Errc::kGeneric, "sandbox: seccomp_export_bpf produced no program");
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(mem.get(), prog.data(), static_cast<size_t>(size), 0) != size)
    return Error::from_errno("sandbox: read seccomp program", errno);
  return prog;
}

}  // namespace

Result<const std::vector<sock_filter>*> seccomp_program() {
  static std::once_flag once;
  static std::optional<Result<std::vector<sock_filter>>> cached;
  std::call_once(once, [] { cached.emplace(build()); });
  if (!cached->ok()) return cached->error();
  return &cached->value();
}

int load_seccomp(const std::vector<sock_filter>& prog) {
  sock_fprog fprog{static_cast<unsigned short>(prog.size()), const_cast<sock_filter*>(prog.data())};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0) return errno;
  return 0;
}

}  // namespace ocib::sandbox::internal
