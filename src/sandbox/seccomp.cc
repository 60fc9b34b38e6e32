// The seccomp filter: Docker's default profile (moby profiles/seccomp/default.json), an
// allow-list. Everything not listed fails with EPERM (moby's defaultErrnoRet); clone3 fails
// with ENOSYS so that libc falls back to clone(2), whose flags a filter can inspect; clone
// creating namespaces, mount, unshare, setns, bpf, … are allowed by moby only with
// CAP_SYS_ADMIN (and friends), which a step never has, so they fail like under `docker run`.
//
// Like moby, the filter covers the native arch plus its compat ABIs (x86_64: x86 and x32;
// aarch64: arm), and arch-specific syscalls (arch_prctl, set_tls, …) are chosen by the native
// arch. Names are translated per arch by libseccomp; a name an arch (or this libseccomp) does
// not know is skipped for that arch. Each arch is built as its own context and merged, so no
// arch carries pseudo rules for syscalls it does not have.

#include "sandbox/seccomp.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <span>

#include "base/fd.h"
#include "sandbox/internal.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

namespace ocib::sandbox {
namespace internal {

namespace {

// moby's unconditional allow-list, plus the syscalls it has added since for newer kernels
// (moby #47341: kernel 5.17–6.7; #50077: kernel 6.8–6.13). `socket` is allowed below with an
// argument check.
constexpr const char* kAllowed[] = {
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // moby: minKernel 4.8, where ptrace can no longer bypass seccomp. ocib needs far newer.
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
};

// personality(2) only for these personas (moby): PER_LINUX, PER_LINUX32, UNAME26,
// UNAME26|PER_LINUX32, and 0xffffffff to query.
constexpr uint64_t kPersonalities[] = {0x0, 0x0008, 0x20000, 0x20008, 0xffffffff};

// Flushing syscalls succeed without doing anything: a step's snapshot is never synced by ocib
// (it is content that a crash throws away with the step), so the per-file fsync of a package
// manager only makes the step wait for the disk (dpkg: ~20,000 fsync/sync_file_range calls
// and 3-5 s of an `apt-get install g++ cmake` on this class of machine). Their data still
// reaches the disk through the page cache, and every other process sees it at once.
constexpr const char* kNoopSyncs[] = {"fsync",           "fdatasync",        "sync",
                                      "syncfs",          "sync_file_range",  "sync_file_range2",
                                      "arm_sync_file_range"};

bool is_noop_sync(const char* name) {
  for (const char* n : kNoopSyncs)
    if (std::strcmp(n, name) == 0) return true;
  return false;
}

// Syscalls moby allows only when the daemon runs on one of these arches.
struct ArchGroup {
  std::initializer_list<uint32_t> natives;
  std::initializer_list<const char*> names;
};
const ArchGroup kArchGroups[] = {
    {{SCMP_ARCH_PPC64LE}, {"sync_file_range2", "swapcontext"}},
    {{SCMP_ARCH_ARM, SCMP_ARCH_AARCH64},
     {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
      "set_tls"}},
    {{SCMP_ARCH_X86_64, SCMP_ARCH_X32}, {"arch_prctl"}},
    {{SCMP_ARCH_X86_64, SCMP_ARCH_X32, SCMP_ARCH_X86}, {"modify_ldt"}},
    {{SCMP_ARCH_S390, SCMP_ARCH_S390X},
     {"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"}},
    {{SCMP_ARCH_RISCV64}, {"riscv_flush_icache", "riscv_hwprobe"}},
};

// Syscalls moby allows only to a container holding the capability. A step holds Docker's
// default set (caps.cc), so today only chroot is in; the rest are here so that the profile
// follows the capability set if it ever changes.
struct CapGroup {
  int cap;
  std::initializer_list<const char*> names;
};
const CapGroup kCapGroups[] = {
    {CAP_DAC_READ_SEARCH, {"open_by_handle_at"}},
    {CAP_SYS_ADMIN,
     {"bpf",
      "clone",
      "clone3",
      "fanotify_init",
      "fsconfig",
      "fsmount",
      "fsopen",
      "fspick",
      "lookup_dcookie",
      "lsm_get_self_attr",
      "lsm_list_modules",
      "lsm_set_self_attr",
      "mount",
      "mount_setattr",
      "move_mount",
      "open_tree",
      "perf_event_open",
      "quotactl",
      "quotactl_fd",
      "setdomainname",
      "sethostname",
      "setns",
      "syslog",
      "umount",
      "umount2",
      "unshare"}},
    {CAP_SYS_BOOT, {"reboot"}},
    {CAP_SYS_CHROOT, {"chroot"}},
    {CAP_SYS_MODULE, {"delete_module", "init_module", "finit_module"}},
    {CAP_SYS_PACCT, {"acct"}},
    {CAP_SYS_PTRACE,
     {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"}},
    {CAP_SYS_RAWIO, {"iopl", "ioperm"}},
    {CAP_SYS_TIME, {"settimeofday", "stime", "clock_settime", "clock_settime64"}},
    {CAP_SYS_TTY_CONFIG, {"vhangup"}},
    {CAP_SYS_NICE, {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
    {CAP_SYSLOG, {"syslog"}},
    {CAP_BPF, {"bpf"}},
    {CAP_PERFMON, {"perf_event_open"}},
};

// clone(2) is allowed only without these flags (unless CAP_SYS_ADMIN).
constexpr uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                     CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;

struct ArchName {
  uint32_t arch;
  const char* name;
};
constexpr ArchName kArchNames[] = {
    {SCMP_ARCH_X86, "x86"},
    {SCMP_ARCH_X86_64, "x86_64"},
    {SCMP_ARCH_X32, "x32"},
    {SCMP_ARCH_ARM, "arm"},
    {SCMP_ARCH_AARCH64, "aarch64"},
    {SCMP_ARCH_MIPS, "mips"},
    {SCMP_ARCH_MIPS64, "mips64"},
    {SCMP_ARCH_MIPS64N32, "mips64n32"},
    {SCMP_ARCH_MIPSEL, "mipsel"},
    {SCMP_ARCH_MIPSEL64, "mipsel64"},
    {SCMP_ARCH_MIPSEL64N32, "mipsel64n32"},
    {SCMP_ARCH_PPC64LE, "ppc64le"},
    {SCMP_ARCH_S390, "s390"},
    {SCMP_ARCH_S390X, "s390x"},
    {SCMP_ARCH_RISCV64, "riscv64"},
};

const char* arch_name(uint32_t arch) {
  for (const ArchName& a : kArchNames)
    if (a.arch == arch) return a.name;
  return "unknown";
}

bool contains(std::initializer_list<uint32_t> set, uint32_t v) {
  for (uint32_t x : set)
    if (x == v) return true;
  return false;
}

// Adds the profile's rules to `ctx`, which holds exactly the one arch `arch`.
class ArchRules {
 public:
  ArchRules(void* ctx, uint32_t arch) : ctx_(ctx), arch_(arch) {}

  // Adds `action` for `name` if the arch has it, with `args` ANDed. Returns whether it did.
  Result<bool> add(const char* name, uint32_t action, std::span<const scmp_arg_cmp> args = {}) {
    // libseccomp numbers a syscall an arch lacks with a negative pseudo number; one the arch
    // multiplexes (socket and ipc calls on x86) is rewritten to socketcall/ipc, and libseccomp
    // then filters both the direct syscall and the multiplexer.
    if (seccomp_syscall_resolve_name_rewrite(arch_, name) < 0) return false;
    const bool unconditional = action == SCMP_ACT_ALLOW && args.empty();
    if (unconditional) {
      if (!unconditional_.insert(name).second) return true;  // listed twice (e.g. by two capabilities)
      if (is_noop_sync(name)) action = SCMP_ACT_ERRNO(0);     // allowed, but not run
    }
    // Rules take the number on the arch libseccomp was built for (a pseudo number when that
    // arch lacks the syscall) and translate it by name for the filter's arch.
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return false;
    int r =
        seccomp_rule_add_array(ctx_, action, nr, static_cast<unsigned>(args.size()), args.data());
    if (r < 0)
      return Error::from_errno(
          std::string("sandbox: seccomp rule for ") + name + " on " + arch_name(arch_), -r);
    if (unconditional || action == SCMP_ACT_ALLOW) allowed_.insert(name);
    return true;
  }
  Status allow_all(std::initializer_list<const char*> names) {
    for (const char* n : names) OCIB_TRY(add(n, SCMP_ACT_ALLOW));
    return {};
  }
  size_t allowed() const { return allowed_.size(); }

 private:
  void* ctx_;
  uint32_t arch_;
  std::set<std::string> unconditional_;
  std::set<std::string> allowed_;
};

Status add_profile(void* ctx, uint32_t arch, uint32_t native, unsigned long long caps,
                   size_t* allowed) {
  ArchRules rules(ctx, arch);
  for (const char* n : kAllowed) OCIB_TRY(rules.add(n, SCMP_ACT_ALLOW));
  for (uint64_t persona : kPersonalities) {
    scmp_arg_cmp eq = SCMP_A0(SCMP_CMP_EQ, persona);
    OCIB_TRY(rules.add("personality", SCMP_ACT_ALLOW, {&eq, 1}));
  }
  {
    scmp_arg_cmp not_vsock = SCMP_A0(SCMP_CMP_NE, AF_VSOCK);
    OCIB_TRY(rules.add("socket", SCMP_ACT_ALLOW, {&not_vsock, 1}));
  }
  for (const ArchGroup& g : kArchGroups)
    if (contains(g.natives, native)) OCIB_TRY(rules.allow_all(g.names));
  for (const CapGroup& g : kCapGroups)
    if (caps & (1ULL << g.cap)) OCIB_TRY(rules.allow_all(g.names));
  if (!(caps & (1ULL << CAP_SYS_ADMIN))) {
    // s390 passes the clone flags second.
    bool s390 = native == SCMP_ARCH_S390 || native == SCMP_ARCH_S390X;
    scmp_arg_cmp no_ns = s390 ? SCMP_A1(SCMP_CMP_MASKED_EQ, kNamespaceFlags, 0)
                              : SCMP_A0(SCMP_CMP_MASKED_EQ, kNamespaceFlags, 0);
    OCIB_TRY(rules.add("clone", SCMP_ACT_ALLOW, {&no_ns, 1}));
    OCIB_TRY(rules.add("clone3", SCMP_ACT_ERRNO(ENOSYS)));
  }
  if (allowed) *allowed = rules.allowed();
  return {};
}

Result<UniqueFd> export_to_memfd(void* ctx, bool pfc) {
  // libseccomp 2.5 can only export into an fd.
  UniqueFd mem(memfd_create("ocib-seccomp", MFD_CLOEXEC));
  if (!mem.valid()) return Error::from_errno("sandbox: memfd_create", errno);
  int r = pfc ? seccomp_export_pfc(ctx, mem.get()) : seccomp_export_bpf(ctx, mem.get());
  if (r < 0)
    return Error::from_errno(pfc ? "sandbox: seccomp_export_pfc" : "sandbox: seccomp_export_bpf",
                             -r);
  return mem;
}

struct Compiled {
  std::vector<sock_filter> prog;
  std::vector<uint32_t> arches;
  size_t allowed = 0;
};

Result<Compiled> compile() {
  Compiled c;
  c.arches = seccomp_native_arches();
  OCIB_ASSIGN_OR_RETURN(SeccompFilter f, build_seccomp_filter(c.arches));
  OCIB_ASSIGN_OR_RETURN(c.prog, seccomp_export_program(f.ctx.get()));
  c.allowed = f.allowed;
  return c;
}

const Result<Compiled>& compiled() {
  static std::once_flag once;
  static std::optional<Result<Compiled>> cached;
  std::call_once(once, [] { cached.emplace(compile()); });
  return *cached;
}

}  // namespace

void SeccompCtxDeleter::operator()(void* ctx) const { seccomp_release(ctx); }

std::vector<uint32_t> seccomp_native_arches() {
  uint32_t native = seccomp_arch_native();
  switch (native) {
    case SCMP_ARCH_X86_64:
      return {native, SCMP_ARCH_X86, SCMP_ARCH_X32};
    case SCMP_ARCH_AARCH64:
      return {native, SCMP_ARCH_ARM};
    case SCMP_ARCH_MIPS64:
      return {native, SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64N32};
    case SCMP_ARCH_MIPS64N32:
      return {native, SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64};
    case SCMP_ARCH_MIPSEL64:
      return {native, SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPSEL64N32};
    case SCMP_ARCH_MIPSEL64N32:
      return {native, SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPSEL64};
    case SCMP_ARCH_S390X:
      return {native, SCMP_ARCH_S390};
    default:
      return {native};
  }
}

Result<SeccompFilter> build_seccomp_filter(const std::vector<uint32_t>& arches) {
  if (arches.empty()) return Error::invalid("sandbox: seccomp filter for no architecture");
  const unsigned long long caps = default_cap_mask();
  SeccompFilter out;
  for (uint32_t arch : arches) {
    SeccompCtx ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
    if (!ctx) return Error(Errc::kGeneric, "sandbox: seccomp_init failed");
    if (arch != seccomp_arch_native()) {
      int r = seccomp_arch_add(ctx.get(), arch);
      if (r < 0)
        return Error::from_errno(std::string("sandbox: seccomp_arch_add ") + arch_name(arch), -r);
      r = seccomp_arch_remove(ctx.get(), SCMP_ARCH_NATIVE);
      if (r < 0) return Error::from_errno("sandbox: seccomp_arch_remove native", -r);
    }
    // We set no_new_privs ourselves, right before loading. A binary tree of syscall numbers
    // instead of a ~300-entry linear scan for every syscall the kernel cannot cache.
    seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
    seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);
    size_t allowed = 0;
    OCIB_TRY(add_profile(ctx.get(), arch, arches.front(), caps, &allowed));
    if (!out.ctx) {
      out.ctx = std::move(ctx);
      out.allowed = allowed;
      continue;
    }
    // seccomp_merge releases its source on success.
    int r = seccomp_merge(out.ctx.get(), ctx.get());
    if (r < 0)
      return Error::from_errno(std::string("sandbox: seccomp_merge ") + arch_name(arch), -r);
    ctx.release();
  }
  return out;
}

Result<std::string> seccomp_export_pfc_text(void* ctx) {
  OCIB_ASSIGN_OR_RETURN(UniqueFd mem, export_to_memfd(ctx, true));
  off_t size = lseek(mem.get(), 0, SEEK_END);
  if (size < 0) return Error::from_errno("sandbox: seccomp pfc size", errno);
  std::string text(static_cast<size_t>(size), '\0');
  if (pread(mem.get(), text.data(), text.size(), 0) != size)
    return Error::from_errno("sandbox: read seccomp pfc", errno);
  return text;
}

Result<std::vector<sock_filter>> seccomp_export_program(void* ctx) {
  OCIB_ASSIGN_OR_RETURN(UniqueFd mem, export_to_memfd(ctx, false));
  off_t size = lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0)
    return Error(Errc::kGeneric, "sandbox: seccomp_export_bpf produced no program");
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(mem.get(), prog.data(), static_cast<size_t>(size), 0) != size)
    return Error::from_errno("sandbox: read seccomp program", errno);
  return prog;
}

Result<const std::vector<sock_filter>*> seccomp_program() {
  const Result<Compiled>& c = compiled();
  if (!c.ok()) return c.error();
  return &c.value().prog;
}

int load_seccomp(const std::vector<sock_filter>& prog) {
  sock_fprog fprog{static_cast<unsigned short>(prog.size()), const_cast<sock_filter*>(prog.data())};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0) return errno;
  return 0;
}

}  // namespace internal

std::string seccomp_description() {
  const auto& c = internal::compiled();
  if (!c.ok()) return "unavailable: " + c.error().str();
  std::string arches;
  for (uint32_t a : c.value().arches) {
    if (!arches.empty()) arches += ',';
    arches += internal::arch_name(a);
  }
  return "allow-list (moby default), " + std::to_string(c.value().allowed) + " syscalls, arches " +
         arches + "; fsync and friends succeed without flushing; others EPERM, clone3 ENOSYS";
}

}  // namespace ocib::sandbox
