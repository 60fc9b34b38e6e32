// The default seccomp profile: built (not loaded) for x86_64 and for aarch64 and judged by
// running the exported BPF program on synthetic seccomp_data; then loaded for real in a child.

#include "sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <thread>

#include "sandbox/internal.h"

namespace ocib::sandbox::internal {
namespace {

// Runs a classic BPF program (the subset seccomp accepts) on one syscall.
uint32_t run_bpf(const std::vector<sock_filter>& prog, const seccomp_data& d) {
  uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {};
  for (size_t pc = 0; pc < prog.size(); ++pc) {
    const sock_filter& f = prog[pc];
    switch (BPF_CLASS(f.code)) {
      case BPF_LD:
        if (BPF_MODE(f.code) == BPF_ABS && BPF_SIZE(f.code) == BPF_W && f.k + 4 <= sizeof d) {
          std::memcpy(&a, reinterpret_cast<const char*>(&d) + f.k, 4);
        } else if (BPF_MODE(f.code) == BPF_IMM) {
          a = f.k;
        } else if (BPF_MODE(f.code) == BPF_MEM && f.k < BPF_MEMWORDS) {
          a = mem[f.k];
        } else {
          ADD_FAILURE() << "unsupported load " << f.code;
          return 0;
        }
        break;
      case BPF_LDX:
        if (BPF_MODE(f.code) == BPF_IMM)
          x = f.k;
        else if (BPF_MODE(f.code) == BPF_MEM && f.k < BPF_MEMWORDS)
          x = mem[f.k];
        else
          return ADD_FAILURE() << "unsupported ldx " << f.code, 0;
        break;
      case BPF_ST:
        mem[f.k % BPF_MEMWORDS] = a;
        break;
      case BPF_STX:
        mem[f.k % BPF_MEMWORDS] = x;
        break;
      case BPF_ALU: {
        uint32_t v = BPF_SRC(f.code) == BPF_X ? x : f.k;
        switch (BPF_OP(f.code)) {
          case BPF_ADD:
            a += v;
            break;
          case BPF_SUB:
            a -= v;
            break;
          case BPF_MUL:
            a *= v;
            break;
          case BPF_DIV:
            a = v ? a / v : 0;
            break;
          case BPF_OR:
            a |= v;
            break;
          case BPF_AND:
            a &= v;
            break;
          case BPF_LSH:
            a <<= (v & 31);
            break;
          case BPF_RSH:
            a >>= (v & 31);
            break;
          case BPF_NEG:
            a = -a;
            break;
          default:
            return ADD_FAILURE() << "unsupported alu " << f.code, 0;
        }
        break;
      }
      case BPF_JMP: {
        if (BPF_OP(f.code) == BPF_JA) {
          pc += f.k;
          break;
        }
        uint32_t v = BPF_SRC(f.code) == BPF_X ? x : f.k;
        bool c = false;
        switch (BPF_OP(f.code)) {
          case BPF_JEQ:
            c = a == v;
            break;
          case BPF_JGT:
            c = a > v;
            break;
          case BPF_JGE:
            c = a >= v;
            break;
          case BPF_JSET:
            c = (a & v) != 0;
            break;
          default:
            return ADD_FAILURE() << "unsupported jump " << f.code, 0;
        }
        pc += c ? f.jt : f.jf;
        break;
      }
      case BPF_RET:
        return BPF_RVAL(f.code) == BPF_K ? f.k : a;
      case BPF_MISC:
        if (BPF_MISCOP(f.code) == BPF_TAX)
          x = a;
        else
          a = x;
        break;
    }
  }
  ADD_FAILURE() << "program fell off its end";
  return 0;
}

constexpr uint32_t kEperm = SECCOMP_RET_ERRNO | EPERM;
constexpr uint32_t kEnosys = SECCOMP_RET_ERRNO | ENOSYS;

struct Profile {
  std::vector<sock_filter> prog;
  std::string pfc;
  size_t allowed = 0;

  // The filter's verdict on `name` as called on `arch` with the given arguments.
  uint32_t verdict(uint32_t arch, const char* name, std::initializer_list<uint64_t> args = {}) {
    int nr = seccomp_syscall_resolve_name_arch(arch, name);
    EXPECT_GE(nr, 0) << name << " is not a syscall on arch " << arch;
    seccomp_data d{};
    d.nr = nr;
    // SCMP_ARCH_* are the AUDIT_ARCH_* values the kernel puts here, but for x32, which the
    // kernel reports as x86_64 with __X32_SYSCALL_BIT in the number.
    d.arch = arch == SCMP_ARCH_X32 ? SCMP_ARCH_X86_64 : arch;
    size_t i = 0;
    for (uint64_t v : args) d.args[i++] = v;
    return run_bpf(prog, d);
  }
};

Profile build(std::vector<uint32_t> arches) {
  Profile p;
  auto f = build_seccomp_filter(arches);
  EXPECT_TRUE(f.ok()) << f.error().str();
  if (!f.ok()) return p;
  p.allowed = f->allowed;
  auto prog = seccomp_export_program(f->ctx.get());
  EXPECT_TRUE(prog.ok()) << prog.error().str();
  if (prog.ok()) p.prog = std::move(*prog);
  auto pfc = seccomp_export_pfc_text(f->ctx.get());
  EXPECT_TRUE(pfc.ok()) << pfc.error().str();
  if (pfc.ok()) p.pfc = std::move(*pfc);
  return p;
}

// The pfc section of one arch: from its "# filter for arch NAME" to the next one.
std::string pfc_section(const std::string& pfc, const std::string& arch) {
  size_t b = pfc.find("# filter for arch " + arch + " (");
  if (b == std::string::npos) return "";
  size_t e = pfc.find("# filter for arch ", b + 1);
  return pfc.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

bool pfc_lists(const std::string& section, const std::string& name) {
  return section.find("# filter for syscall \"" + name + "\"") != std::string::npos;
}

TEST(SeccompProfile, X86_64WithX86AndX32) {
  Profile p = build({SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32});
  ASSERT_FALSE(p.prog.empty());
  EXPECT_GT(p.allowed, 300u);
  for (uint32_t arch :
       std::initializer_list<uint32_t>{SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32}) {
    SCOPED_TRACE(arch);
    for (const char* ok : {"read", "write", "openat", "execve", "fork", "mknodat", "fchownat"})
      EXPECT_EQ(p.verdict(arch, ok), SECCOMP_RET_ALLOW) << ok;
    for (const char* no : {"mount", "umount2", "unshare", "setns", "kexec_load", "bpf", "keyctl",
                           "add_key", "perf_event_open", "init_module", "reboot", "swapon",
                           "pivot_root", "open_by_handle_at", "fsopen", "syslog"})
      EXPECT_EQ(p.verdict(arch, no), kEperm) << no;
    EXPECT_EQ(p.verdict(arch, "chroot"), SECCOMP_RET_ALLOW) << "CAP_SYS_CHROOT is granted";
    // clone: plain fork and threads yes, new namespaces no.
    EXPECT_EQ(p.verdict(arch, "clone", {SIGCHLD}), SECCOMP_RET_ALLOW);
    EXPECT_EQ(p.verdict(arch, "clone",
                        {CLONE_VM | CLONE_THREAD | CLONE_SIGHAND | CLONE_FS | CLONE_FILES |
                         CLONE_SETTLS}),
              SECCOMP_RET_ALLOW);
    for (uint64_t ns : {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS,
                        CLONE_NEWIPC, CLONE_NEWCGROUP})
      EXPECT_EQ(p.verdict(arch, "clone", {ns | SIGCHLD}), kEperm) << std::hex << ns;
    EXPECT_EQ(p.verdict(arch, "clone3"), kEnosys);
    // personality: only moby's personas.
    EXPECT_EQ(p.verdict(arch, "personality", {0}), SECCOMP_RET_ALLOW);
    EXPECT_EQ(p.verdict(arch, "personality", {0xffffffff}), SECCOMP_RET_ALLOW);
    EXPECT_EQ(p.verdict(arch, "personality", {PER_LINUX32}), SECCOMP_RET_ALLOW);
    EXPECT_EQ(p.verdict(arch, "personality", {ADDR_NO_RANDOMIZE}), kEperm);
    EXPECT_EQ(p.verdict(arch, "personality", {READ_IMPLIES_EXEC}), kEperm);
    // socket: everything but vsock (x86 also has it behind socketcall, checked below).
    if (arch != SCMP_ARCH_X86) {
      EXPECT_EQ(p.verdict(arch, "socket", {AF_INET}), SECCOMP_RET_ALLOW);
      EXPECT_EQ(p.verdict(arch, "socket", {AF_VSOCK}), kEperm);
    }
    EXPECT_EQ(p.verdict(arch, "modify_ldt"), SECCOMP_RET_ALLOW);
    // Flushes succeed without running (errno 0 is a return value of 0).
    for (const char* flush : {"fsync", "fdatasync", "sync", "syncfs", "sync_file_range"})
      EXPECT_EQ(p.verdict(arch, flush), SECCOMP_RET_ERRNO | 0u) << flush;
  }
  EXPECT_EQ(p.verdict(SCMP_ARCH_X86_64, "arch_prctl"), SECCOMP_RET_ALLOW);
  EXPECT_EQ(p.verdict(SCMP_ARCH_X86, "socketcall"), SECCOMP_RET_ALLOW);
  EXPECT_EQ(p.verdict(SCMP_ARCH_X86, "ipc"), SECCOMP_RET_ALLOW);
  {
    // x86's direct socket(2) (359), next to socketcall: same vsock check.
    seccomp_data d{};
    d.arch = SCMP_ARCH_X86;
    d.nr = 359;
    d.args[0] = AF_INET;
    EXPECT_EQ(run_bpf(p.prog, d), SECCOMP_RET_ALLOW);
    d.args[0] = AF_VSOCK;
    EXPECT_EQ(run_bpf(p.prog, d), kEperm);
  }
  // An arch the filter does not cover is killed, not let through.
  seccomp_data alien{};
  alien.arch = SCMP_ARCH_AARCH64;
  alien.nr = 63;  // read
  EXPECT_EQ(run_bpf(p.prog, alien) & SECCOMP_RET_ACTION_FULL, SECCOMP_RET_KILL_THREAD);
  // A syscall number nothing knows is refused.
  seccomp_data unknown{};
  unknown.arch = SCMP_ARCH_X86_64;
  unknown.nr = 999;
  EXPECT_EQ(run_bpf(p.prog, unknown), kEperm);

  for (const char* arch : {"x86_64", "x86", "x32"}) {
    std::string s = pfc_section(p.pfc, arch);
    ASSERT_FALSE(s.empty()) << "no " << arch << " section in\n" << p.pfc;
    EXPECT_TRUE(pfc_lists(s, "read")) << arch;
    EXPECT_TRUE(pfc_lists(s, "clone")) << arch;
    EXPECT_FALSE(pfc_lists(s, "mount")) << arch;
    EXPECT_FALSE(pfc_lists(s, "unshare")) << arch;
    EXPECT_FALSE(pfc_lists(s, "kexec_load")) << arch;
    EXPECT_FALSE(pfc_lists(s, "bpf")) << arch;
  }
  // Arch-specific names stay on their arch.
  EXPECT_FALSE(pfc_lists(pfc_section(p.pfc, "x86_64"), "set_tls"));
  EXPECT_FALSE(pfc_lists(pfc_section(p.pfc, "x86_64"), "socketcall"));
  EXPECT_TRUE(pfc_lists(pfc_section(p.pfc, "x86"), "socketcall"));
}

TEST(SeccompProfile, Aarch64WithArm) {
  Profile p = build({SCMP_ARCH_AARCH64, SCMP_ARCH_ARM});
  ASSERT_FALSE(p.prog.empty());
  ASSERT_FALSE(p.pfc.empty());
  std::string a64 = pfc_section(p.pfc, "aarch64");
  std::string arm = pfc_section(p.pfc, "arm");
  ASSERT_FALSE(a64.empty()) << p.pfc;
  ASSERT_FALSE(arm.empty()) << p.pfc;
  EXPECT_EQ(p.pfc.find("x86"), std::string::npos) << "an x86 arch in an arm filter";
  // aarch64 numbers: read 63, openat 56, clone 220.
  EXPECT_NE(a64.find("# filter for syscall \"read\" (63)"), std::string::npos) << a64;
  EXPECT_NE(a64.find("# filter for syscall \"openat\" (56)"), std::string::npos) << a64;
  // Names aarch64 lacks are skipped there (not pseudo rules), but kept for arm.
  for (const char* legacy : {"open", "fork", "stat", "set_tls"}) {
    EXPECT_FALSE(pfc_lists(a64, legacy)) << legacy;
    EXPECT_TRUE(pfc_lists(arm, legacy)) << legacy;
  }
  EXPECT_FALSE(pfc_lists(a64, "arch_prctl"));
  EXPECT_FALSE(pfc_lists(arm, "arch_prctl"));
  EXPECT_FALSE(pfc_lists(arm, "modify_ldt"));
  for (const std::string& s : {a64, arm}) {
    EXPECT_FALSE(pfc_lists(s, "mount"));
    EXPECT_FALSE(pfc_lists(s, "unshare"));
    EXPECT_FALSE(pfc_lists(s, "kexec_load"));
    EXPECT_FALSE(pfc_lists(s, "bpf"));
  }
  for (uint32_t arch : std::initializer_list<uint32_t>{SCMP_ARCH_AARCH64, SCMP_ARCH_ARM}) {
    SCOPED_TRACE(arch);
    for (const char* ok : {"read", "write", "openat", "execve", "mknodat"})
      EXPECT_EQ(p.verdict(arch, ok), SECCOMP_RET_ALLOW) << ok;
    for (const char* no : {"mount", "umount2", "unshare", "setns", "kexec_load", "bpf", "keyctl"})
      EXPECT_EQ(p.verdict(arch, no), kEperm) << no;
    EXPECT_EQ(p.verdict(arch, "clone", {SIGCHLD}), SECCOMP_RET_ALLOW);
    EXPECT_EQ(p.verdict(arch, "clone", {CLONE_NEWUSER | SIGCHLD}), kEperm);
    EXPECT_EQ(p.verdict(arch, "clone3"), kEnosys);
  }
  EXPECT_EQ(p.verdict(SCMP_ARCH_ARM, "set_tls"), SECCOMP_RET_ALLOW);
  EXPECT_EQ(p.verdict(SCMP_ARCH_ARM, "cacheflush"), SECCOMP_RET_ALLOW);
}

TEST(SeccompProfile, NativeArchesAndDescription) {
  std::vector<uint32_t> arches = seccomp_native_arches();
  ASSERT_FALSE(arches.empty());
  EXPECT_EQ(arches.front(), seccomp_arch_native());
  std::string d = seccomp_description();
  EXPECT_EQ(d.rfind("allow-list (moby default), ", 0), 0u) << d;
#if defined(__x86_64__)
  EXPECT_EQ(arches, (std::vector<uint32_t>{SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32}));
  EXPECT_NE(d.find("arches x86_64,x86,x32"), std::string::npos) << d;
#elif defined(__aarch64__)
  EXPECT_EQ(arches, (std::vector<uint32_t>{SCMP_ARCH_AARCH64, SCMP_ARCH_ARM}));
  EXPECT_NE(d.find("arches aarch64,arm"), std::string::npos) << d;
#endif
}

// The real thing: a child loads the program and tries its luck. Without the filter a root
// child could unshare a user namespace and would see ENOSYS from no syscall here.
TEST(SeccompProfile, LoadedFilterRefusesAndAllows) {
  auto prog = seccomp_program();
  ASSERT_TRUE(prog.ok()) << prog.error().str();
  int pipefd[2];
  ASSERT_EQ(pipe2(pipefd, O_CLOEXEC), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipefd[0]);
    std::string errs;
    auto check = [&](bool ok, const char* what) {
      if (!ok) errs += std::string(what) + " (errno " + strerrorname_np(errno) + ")\n";
    };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(90);
    if (load_seccomp(**prog) != 0) _exit(91);
    check(getpid() > 0, "getpid works");
    errno = 0;
    check(unshare(CLONE_NEWUSER) == -1 && errno == EPERM, "unshare(CLONE_NEWUSER) is EPERM");
    errno = 0;
    // (A target that does not exist: ENOENT if the filter let mount through.)
    check(mount("none", "/proc/self/ocib-none", "tmpfs", 0, nullptr) == -1 && errno == EPERM,
          "mount is EPERM");
#ifdef SYS_clone3
    clone_args ca{};
    ca.exit_signal = SIGCHLD;
    errno = 0;
    long r = syscall(SYS_clone3, &ca, sizeof ca);
    if (r == 0) _exit(0);  // (the filter failed: a child)
    check(r == -1 && errno == ENOSYS, "clone3 is ENOSYS");
#endif
    errno = 0;
    long c = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (c == 0) _exit(0);
    check(c == -1 && errno == EPERM, "clone(CLONE_NEWUSER) is EPERM");
    errno = 0;
    check(syscall(SYS_kexec_load, 0, 0, nullptr, 0) == -1 && errno == EPERM, "kexec_load is EPERM");
    errno = 0;
    check(syscall(SYS_keyctl, 0, 0, 0, 0, 0) == -1 && errno == EPERM, "keyctl is EPERM");
    errno = 0;
    check(socket(AF_VSOCK, SOCK_STREAM, 0) == -1 && errno == EPERM, "socket(AF_VSOCK) is EPERM");
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    check(s >= 0, "socket(AF_UNIX) works");
    check(personality(0xffffffff) != -1, "personality query works");
    errno = 0;
    check(personality(ADDR_NO_RANDOMIZE) == -1 && errno == EPERM,
          "personality(ADDR_NO_RANDOMIZE) is EPERM");
    // fsync of a pipe is EINVAL when it runs: under the filter it does not run.
    int pp[2];
    check(pipe2(pp, O_CLOEXEC) == 0, "pipe2 works");
    errno = 0;
    check(fsync(pp[1]) == 0 && fdatasync(pp[1]) == 0, "fsync and fdatasync of a pipe succeed (not run)");
    close(pp[0]);
    close(pp[1]);
    // fork is clone without namespace flags; a thread goes through clone3 → ENOSYS → clone.
    pid_t k = fork();
    if (k == 0) _exit(7);
    int st = 0;
    check(k > 0 && waitpid(k, &st, 0) == k && WIFEXITED(st) && WEXITSTATUS(st) == 7, "fork works");
    bool ran = false;
    std::thread([&] { ran = true; }).join();
    check(ran, "a thread runs");
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    buf[n > 0 ? n : 0] = 0;
    check(std::strstr(buf, "\nSeccomp:\t2\n") != nullptr, "/proc/self/status has Seccomp:\t2");
    if (write(pipefd[1], errs.data(), errs.size()) < 0) _exit(92);
    _exit(0);
  }
  close(pipefd[1]);
  std::string out;
  char buf[1024];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st)) << "child died with signal " << WTERMSIG(st);
  EXPECT_EQ(WEXITSTATUS(st), 0) << "90: no_new_privs, 91: load, 92: report";
  EXPECT_EQ(out, "") << "under the filter:\n" << out;
}

}  // namespace
}  // namespace ocib::sandbox::internal
