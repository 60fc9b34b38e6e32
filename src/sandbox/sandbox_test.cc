// Real namespaces, real overlayfs, a static busybox as the rootfs. Passes as root and as an
// unprivileged user with (or without) a subordinate id range; skips with the reason when the
// kernel lacks a feature.

#include "sandbox/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "base/fs.h"
#include "base/process.h"
#include "sandbox/snapshotter.h"

namespace ocib::sandbox {
namespace {

constexpr const char* kApplets[] = {
    "sh",   "echo",  "cat",   "id",   "grep",  "readlink", "rm",   "mkdir", "ls",   "hostname",
    "test", "touch", "sleep", "true", "false", "pwd",      "stat", "env",   "chmod", "unshare",
    "mount", "nc",   "chown", "head", "wc",    "ln"};

std::string g_tmp;   // per-process temp root
std::string g_base;  // lower layer with busybox
IdMapping g_ids;

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

class SandboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* t = getenv("TMPDIR");
    auto dir = fs::make_temp_dir(t && *t ? t : "/tmp", "ocib-sandbox-test-");
    ASSERT_TRUE(dir.ok()) << dir.error().str();
    g_tmp = *dir;
    g_base = g_tmp + "/base";
    ASSERT_TRUE(fs::mkdirs(g_base + "/bin").ok());
    ASSERT_TRUE(fs::mkdirs(g_base + "/tmp").ok());
    {
      std::ifstream in("/bin/busybox", std::ios::binary);
      std::ofstream out(g_base + "/bin/busybox", std::ios::binary);
      out << in.rdbuf();
    }
    chmod((g_base + "/bin/busybox").c_str(), 0755);
    for (const char* a : kApplets) symlink("busybox", (g_base + "/bin/" + a).c_str());
    g_ids = IdMapping::detect();
  }
  static void TearDownTestSuite() {
    // Some steps wrote files as container uid 1000 (a subordinate id on the host).
    if (!g_tmp.empty()) {
      Status st = remove_tree(g_tmp, g_ids);
      EXPECT_TRUE(st.ok()) << st.error().str();
    }
  }

  void SetUp() override {
    Status st = check_support(g_ids);
    if (!st.ok()) GTEST_SKIP() << "sandbox unsupported here: " << st.error().str();
    auto d = fs::make_temp_dir(g_tmp, "step-");
    ASSERT_TRUE(d.ok());
    step_ = *d;
    spec_.upperdir = step_ + "/upper";
    spec_.scratch = step_ + "/scratch";
    ASSERT_TRUE(fs::mkdirs(spec_.upperdir).ok());
    ASSERT_TRUE(fs::mkdirs(spec_.scratch).ok());
    spec_.lowerdirs = {g_base};
    spec_.env = {"PATH=/bin", "HOME=/"};
  }

  // Makes an extra layer beneath step_.
  std::string layer(const std::string& name) {
    std::string d = step_ + "/" + name;
    EXPECT_TRUE(fs::mkdirs(d).ok());
    return d;
  }

  struct Ran {
    Outcome outcome;
    std::string output;
  };
  Ran sh(const std::string& script) {
    spec_.argv = {"sh", "-c", script};
    return go();
  }
  Ran go() {
    int fd = memfd_create("out", MFD_CLOEXEC);
    spec_.output_fd = fd;
    auto r = run(spec_, g_ids);
    Ran ran;
    ran.output = read_all(fd);
    close(fd);
    EXPECT_TRUE(r.ok()) << r.error().str();
    if (r.ok()) ran.outcome = *r;
    return ran;
  }

  std::string step_;
  Spec spec_;
};

TEST_F(SandboxTest, RunsCommandAndCapturesOutput) {
  auto r = sh("echo hello; echo err >&2");
  EXPECT_EQ(r.outcome.exit_code, 0);
  EXPECT_EQ(r.output, "hello\nerr\n");
}

TEST_F(SandboxTest, ExitCodePropagates) {
  auto r = sh("exit 3");
  EXPECT_EQ(r.outcome.exit_code, 3);
  EXPECT_EQ(r.outcome.signal, 0);
}

TEST_F(SandboxTest, DeathBySignalIsReported) {
  spec_.in_sandbox = [](const std::vector<int>&) -> int {
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    __builtin_trap();  // a forced SIGILL kills even pid 1
  };
  auto r = go();
  EXPECT_EQ(r.outcome.signal, SIGILL);
  EXPECT_EQ(r.outcome.exit_code, 128 + SIGILL);
}

// A step is a session of its own, so a scheduler autogroup of its own, which the kernel weighs
// as an equal of every other: started from a lowered-priority thread (early packing at
// SCHED_IDLE, `nice ocib build`), the step's autogroup must keep that lower priority.
TEST_F(SandboxTest, StepAutogroupKeepsTheCallersLowerPriority) {
  if (auto on = fs::read_file("/proc/sys/kernel/sched_autogroup_enabled"); !on.ok() || on->rfind("1", 0) != 0)
    GTEST_SKIP() << "scheduler autogroups are off on this kernel";
  auto in_thread = [&](auto setup) {
    Ran ran;
    std::thread t([&] {
      setup();
      ran = sh("cat /proc/self/autogroup");
    });
    t.join();
    return ran.output;
  };
  EXPECT_NE(in_thread([] {}).find(" nice 0"), std::string::npos);
  EXPECT_NE(in_thread([] { ASSERT_EQ(setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 7), 0); }).find(" nice 7"),
            std::string::npos);
  EXPECT_NE(in_thread([] { run_at_idle_priority(); }).find(" nice 19"), std::string::npos);
}

TEST_F(SandboxTest, CommandIsPidOne) { EXPECT_EQ(sh("echo $$").output, "1\n"); }

TEST_F(SandboxTest, UserNamespaceMapping) {
  auto r = sh("cat /proc/self/uid_map");
  std::istringstream ss(r.output);
  uint32_t c = 9, h = 9, n = 9;
  ss >> c >> h >> n;
  EXPECT_EQ(c, 0u);
  if (getuid() == 0) {
    EXPECT_EQ(h, 0u);
    EXPECT_EQ(n, 65536u);
  } else {
    EXPECT_EQ(h, getuid());
    EXPECT_EQ(n, 1u);
  }
}

TEST_F(SandboxTest, SingleIdMapping) {
  // What an unprivileged caller without /etc/subuid gets: setgroups denied, only root mapped.
  spec_.argv = {"sh", "-c", "cat /proc/self/uid_map /proc/self/setgroups; id -u; echo x > /f"};
  spec_.groups = {0};  // ignored under a single-id map
  int fd = memfd_create("out", MFD_CLOEXEC);
  spec_.output_fd = fd;
  auto r = run(spec_, IdMapping::single(getuid(), getgid()));
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->exit_code, 0);
  std::istringstream ss(read_all(fd));
  close(fd);
  uint32_t c = 9, h = 9, n = 9;
  std::string setgroups, id;
  ss >> c >> h >> n >> setgroups >> id;
  EXPECT_EQ(c, 0u);
  EXPECT_EQ(h, getuid());
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(setgroups, getuid() == 0 ? "allow" : "deny");
  EXPECT_EQ(id, "0");
  EXPECT_TRUE(fs::exists(spec_.upperdir + "/f"));
}

TEST_F(SandboxTest, ProcIsFresh) {
  EXPECT_EQ(sh("readlink /proc/1/exe").output, "/bin/busybox\n");
  EXPECT_EQ(sh("echo /proc/[0-9]*").output, "/proc/1\n");  // only pid 1 is visible
}

TEST_F(SandboxTest, WritesLandInUpperdir) {
  auto r = sh("echo data > /newfile");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(spec_.upperdir + "/newfile"));
  EXPECT_FALSE(fs::exists(g_base + "/newfile"));
}

TEST_F(SandboxTest, DeletingLowerFileMakesWhiteout) {
  std::string l = layer("l1");
  write_text(l + "/victim", "x");
  spec_.lowerdirs = {l, g_base};
  auto r = sh("rm /victim && test ! -e /victim");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  struct stat st;
  ASSERT_EQ(lstat((spec_.upperdir + "/victim").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_TRUE(fs::exists(l + "/victim"));
}

TEST_F(SandboxTest, RecreatedDirIsOpaque) {
  std::string l = layer("l1");
  ASSERT_TRUE(fs::mkdirs(l + "/d/sub").ok());
  write_text(l + "/d/old", "x");
  spec_.lowerdirs = {l, g_base};
  auto r = sh("rm -rf /d && mkdir /d && touch /d/new && ls /d");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "new\n");
  char v[8] = {};
  ASSERT_GT(getxattr((spec_.upperdir + "/d").c_str(), "user.overlay.opaque", v, sizeof v), 0);
  EXPECT_EQ(v[0], 'y');
}

TEST_F(SandboxTest, Hostname) {
  spec_.hostname = "box1";
  EXPECT_EQ(sh("hostname").output, "box1\n");
}

TEST_F(SandboxTest, NoNetworkButLoopbackUp) {
  auto r = sh("grep -c : /proc/net/dev; grep -c 'lo:' /proc/net/dev");
  EXPECT_EQ(r.output, "1\n1\n");
  spec_.in_sandbox = [](const std::vector<int>&) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) return 2;
    return (ifr.ifr_flags & IFF_UP) ? 0 : 1;
  };
  EXPECT_EQ(go().outcome.exit_code, 0);
}

TEST_F(SandboxTest, HostNetworkSeesHostInterfaces) {
  spec_.network = Network::kHost;
  std::ifstream in("/proc/net/dev");
  std::string line;
  int host_ifs = 0;
  while (std::getline(in, line)) host_ifs += line.find(':') != std::string::npos;
  EXPECT_EQ(sh("grep -c : /proc/net/dev").output, std::to_string(host_ifs) + "\n");
}

TEST_F(SandboxTest, SecurityStatus) {
  auto r = sh("grep -E '^(Seccomp|CapEff|CapBnd|NoNewPrivs):' /proc/self/status");
  EXPECT_NE(r.output.find("Seccomp:\t2\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("CapEff:\t00000000a80425fb\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("CapBnd:\t00000000a80425fb\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("NoNewPrivs:\t1\n"), std::string::npos) << r.output;
}

TEST_F(SandboxTest, SeccompDeniesNamespacesAndMounts) {
  spec_.in_sandbox = [](const std::vector<int>&) {
    if (unshare(CLONE_NEWUSER) == 0 || errno != EPERM) return 1;
    if (mount("none", "/tmp", "tmpfs", 0, nullptr) == 0) return 2;
    return 0;
  };
  EXPECT_EQ(go().outcome.exit_code, 0);
}

TEST_F(SandboxTest, MountpointStubsAreRemoved) {
  auto r = sh("ls -d /proc /dev /sys && echo x > /kept");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(spec_.upperdir + "/proc"));
  EXPECT_FALSE(fs::exists(spec_.upperdir + "/dev"));
  EXPECT_FALSE(fs::exists(spec_.upperdir + "/sys"));
  EXPECT_TRUE(fs::exists(spec_.upperdir + "/kept"));
}

TEST_F(SandboxTest, StubsThatExistInLowerAreKept) {
  std::string l = layer("l1");
  ASSERT_TRUE(fs::mkdirs(l + "/proc").ok());
  spec_.lowerdirs = {l, g_base};
  auto r = sh("touch /proc/../x");  // copy-up of "/" only
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(spec_.upperdir + "/dev"));
}

TEST_F(SandboxTest, FromScratchInSandboxCopiesHostFile) {
  std::string ctx = layer("context");
  write_text(ctx + "/ctx.txt", "from host");
  spec_.lowerdirs = {};
  spec_.host_dirs = {ctx};
  spec_.in_sandbox = [](const std::vector<int>& fds) {
    if (fds.size() != 1) return 10;
    int in = openat(fds[0], "ctx.txt", O_RDONLY | O_CLOEXEC);
    if (in < 0) return 11;
    char buf[64];
    ssize_t n = read(in, buf, sizeof buf);
    int out = open("/copied", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (n <= 0 || out < 0 || write(out, buf, static_cast<size_t>(n)) != n) return 12;
    return 0;
  };
  EXPECT_EQ(go().outcome.exit_code, 0);
  auto data = fs::read_file(spec_.upperdir + "/copied");
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(*data, "from host");
  // Nothing else: no /proc, /dev, /sys stubs in a FROM scratch layer.
  int entries = 0;
  for (const char* n : {"proc", "dev", "sys"}) entries += fs::exists(spec_.upperdir + "/" + n);
  EXPECT_EQ(entries, 0);
}

TEST_F(SandboxTest, ReadOnlyViewsShowMergedLayers) {
  std::string top = layer("top"), bottom = layer("bottom"), single = layer("single");
  write_text(top + "/a", "top");
  write_text(bottom + "/a", "bottom");
  write_text(bottom + "/b", "b");
  write_text(single + "/s", "s");
  spec_.views = {ReadOnlyView{{top, bottom}}, ReadOnlyView{{single}}, ReadOnlyView{}};
  spec_.in_sandbox = [](const std::vector<int>& fds) {
    if (fds.size() != 3) return 10;
    auto slurp = [](int dir, const char* name) {
      std::string s;
      int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
      if (fd < 0) return std::string("<missing>");
      char buf[64];
      ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) s.assign(buf, static_cast<size_t>(n));
      close(fd);
      return s;
    };
    if (slurp(fds[0], "a") != "top") return 1;
    if (slurp(fds[0], "b") != "b") return 2;
    if (slurp(fds[1], "s") != "s") return 3;
    if (openat(fds[0], "new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644) >= 0) return 4;
    if (errno != EROFS) return 5;
    if (openat(fds[1], "new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644) >= 0) return 6;
    if (openat(fds[2], "new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644) >= 0) return 7;
    return 0;
  };
  EXPECT_EQ(go().outcome.exit_code, 0);
}

TEST_F(SandboxTest, HundredLowerdirsWithLongPaths) {
  std::vector<std::string> lowers;
  std::string longname(120, 'x');
  for (int i = 0; i < 100; ++i) {
    std::string d = layer("layers/" + longname + "/" + longname + "-" + std::to_string(i));
    write_text(d + "/f" + std::to_string(i), std::to_string(i));
    write_text(d + "/top", std::to_string(i));
    lowers.push_back(d);
  }
  lowers.push_back(g_base);
  spec_.lowerdirs = lowers;
  auto r = sh("cat /f0 /f99 /top");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "0990");
}

TEST_F(SandboxTest, UserGroupAndWorkdir) {
  uint32_t n = 0;
  for (const auto& r : g_ids.uids) n += r.count;
  if (n <= 1) GTEST_SKIP() << "single-id mapping";
  spec_.uid = 1000;
  spec_.gid = 1000;
  spec_.groups = {1000, 10};
  spec_.cwd = "/home/u/work";
  auto r = sh("id -u; id -g; id -G; pwd; stat -c %u:%g /home/u/work; touch f && stat -c %u f");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "1000\n1000\n1000 10\n/home/u/work\n1000:1000\n1000\n");
  auto caps = sh("grep -E '^Cap(Eff|Prm):' /proc/self/status");
  EXPECT_EQ(caps.output, "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n");
}

TEST_F(SandboxTest, UnmappedUidIsAClearError) {
  spec_.uid = 5000;
  spec_.argv = {"true"};
  auto r = run(spec_, IdMapping::single(getuid(), getgid()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().str().find("uid 5000 is not mapped"), std::string::npos) << r.error().str();
}

TEST_F(SandboxTest, CommandNotFound) {
  spec_.argv = {"nosuchcmd", "arg"};
  auto r = go();
  EXPECT_EQ(r.outcome.exit_code, 127);
  EXPECT_EQ(r.output, "exec: \"nosuchcmd\": executable file not found in $PATH\n");
  spec_.argv = {"/bin/busybox", "echo", "abs"};
  EXPECT_EQ(go().output, "abs\n");
}

TEST_F(SandboxTest, SetupFailureNamesTheStep) {
  spec_.lowerdirs = {step_ + "/does-not-exist", g_base};
  spec_.argv = {"true"};
  auto r = run(spec_, g_ids);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().str(),
            "sandbox: lowerdir " + step_ + "/does-not-exist: No such file or directory");
  // A failure inside the namespaces is reported by the child as {step, errno}.
  spec_.lowerdirs = {g_base};
  spec_.hostname = std::string(100, 'h');
  r = run(spec_, g_ids);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().str(), "sandbox: sethostname: Invalid argument");
}

TEST_F(SandboxTest, ConcurrentSteps) {
  std::vector<std::thread> threads;
  std::vector<std::string> outs(4);
  std::vector<std::string> uppers(4);
  for (int i = 0; i < 4; ++i) {
    uppers[i] = layer("c" + std::to_string(i));
    ASSERT_TRUE(fs::mkdirs(uppers[i] + "/upper").ok());
  }
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      Spec s = spec_;
      s.upperdir = uppers[i] + "/upper";
      s.scratch = uppers[i] + "/scratch";
      s.argv = {"sh", "-c", "echo " + std::to_string(i) + "; ls /proc/self/fd"};
      int fd = memfd_create("out", MFD_CLOEXEC);
      s.output_fd = fd;
      auto r = run(s, g_ids);
      outs[i] = r.ok() ? read_all(fd) : r.error().str();
      close(fd);
    });
  for (auto& t : threads) t.join();
  // No fds of the test process leak in: only 0, 1, 2 and the one ls opens.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(outs[i], std::to_string(i) + "\n0\n1\n2\n3\n");
}

TEST_F(SandboxTest, CancelAllKillsRunningSteps) {
  // cancel_all() is sticky for the process, so exercise it in a death-test child.
  EXPECT_EXIT(
      {
        Result<Outcome> r = Outcome{};
        auto t0 = std::chrono::steady_clock::now();
        std::thread th([&] {
          Spec s = spec_;
          s.argv = {"sleep", "100"};
          r = run(s, g_ids);
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        cancel_all();
        th.join();
        bool fast = std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10);
        bool cancelled = !r.ok() && r.error().code() == Errc::kCancelled;
        auto again = run(spec_, g_ids);
        bool refused = !again.ok() && again.error().code() == Errc::kCancelled;
        _exit(fast && cancelled && refused ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(SandboxTest, RemoveTreeDeletesSubordinateOwnedFiles) {
  uint32_t n = 0;
  for (const auto& r : g_ids.uids) n += r.count;
  if (n <= 1) GTEST_SKIP() << "single-id mapping";
  spec_.uid = 1000;
  spec_.gid = 1000;
  spec_.cwd = "/owned/deep";
  auto r = sh("mkdir -p a/b && touch a/b/f && chmod 500 a/b");
  ASSERT_EQ(r.outcome.exit_code, 0) << r.output;
  struct stat st;
  ASSERT_EQ(lstat((spec_.upperdir + "/owned/deep/a").c_str(), &st), 0);  // b is 0500
  EXPECT_EQ(st.st_uid, *g_ids.container_to_host_uid(1000));
  Status removed = remove_tree(spec_.upperdir, g_ids);
  ASSERT_TRUE(removed.ok()) << removed.error().str();
  EXPECT_FALSE(fs::exists(spec_.upperdir));
  EXPECT_TRUE(remove_tree(spec_.upperdir, g_ids).ok());  // missing is fine
}

// ---- mounts (RUN --mount) -------------------------------------------------------------------

TEST_F(SandboxTest, BindMountsDirRwAndSecretFileReadOnly) {
  std::string cache = layer("cache"), secrets = layer("secrets");
  write_text(cache + "/old", "old");
  write_text(secrets + "/token", "s3cret");
  Mount c;
  c.source = cache;
  c.target = "/root/.cache/pkg";
  Mount sec;
  sec.source = secrets + "/token";
  sec.target = "/run/secrets/token";
  sec.readonly = true;
  spec_.mounts = {c, sec};
  auto r = sh(
      "cat /root/.cache/pkg/old; echo new > /root/.cache/pkg/new; cat /run/secrets/token; echo;"
      "echo x > /run/secrets/token && echo WROTE; grep -c ' /run/secrets/token .*ro,' /proc/mounts;"
      "touch /kept");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("olds3cret\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("WROTE"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Read-only file system\n1\n"), std::string::npos) << r.output;
  // The cache write went to the host directory; the secret is unchanged; the upperdir holds only
  // what the step wrote (no /root, /run stubs and no secret).
  EXPECT_EQ(*fs::read_file(cache + "/new"), "new\n");
  EXPECT_EQ(*fs::read_file(secrets + "/token"), "s3cret");
  EXPECT_TRUE(fs::exists(spec_.upperdir + "/kept"));
  EXPECT_FALSE(fs::exists(spec_.upperdir + "/root"));
  EXPECT_FALSE(fs::exists(spec_.upperdir + "/run"));
}

TEST_F(SandboxTest, SecretStubAndCopiedUpParentsLeaveNoTrace) {
  // The image has /run and /etc/hosts: the stub /run/secrets/id copies /run up; both go.
  std::string l = layer("l1");
  ASSERT_TRUE(fs::mkdirs(l + "/run").ok());
  ASSERT_TRUE(fs::mkdirs(l + "/etc").ok());
  write_text(l + "/etc/hosts", "image hosts\n");
  std::string secret = layer("s") + "/id";
  write_text(secret, "value");
  spec_.lowerdirs = {l, g_base};
  Mount sec;
  sec.source = secret;
  sec.target = "/run/secrets/id";
  sec.readonly = true;
  spec_.mounts = {sec};
  auto r = sh("cat /run/secrets/id && ls /run/secrets");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "valueid\n");
  std::vector<std::string> entries;
  for (const auto& name : {"run", "etc", "proc", "dev", "sys"})
    if (fs::exists(spec_.upperdir + "/" + name)) entries.push_back(name);
  EXPECT_TRUE(entries.empty()) << entries[0];
  // But a parent directory the step changed stays.
  r = sh("cat /run/secrets/id >/dev/null && touch /run/mine");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(spec_.upperdir + "/run/mine"));
  EXPECT_FALSE(fs::exists(spec_.upperdir + "/run/secrets"));
}

TEST_F(SandboxTest, TmpfsMount) {
  Mount t;
  t.type = Mount::Type::kTmpfs;
  t.target = "/scratchpad/t";
  t.tmpfs_size = 1 << 20;
  t.mode = 01777;
  spec_.mounts = {t};
  auto r = sh("stat -c %a /scratchpad/t; grep ' /scratchpad/t tmpfs ' /proc/mounts | grep -c size=1024k;"
              "echo x > /scratchpad/t/f && cat /scratchpad/t/f");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "1777\n1\nx\n");
  EXPECT_FALSE(fs::exists(spec_.upperdir + "/scratchpad"));
}

TEST_F(SandboxTest, OverlayRwMountDiscardsChanges) {
  std::string src = layer("src");
  write_text(src + "/a", "orig");
  Mount o;
  o.type = Mount::Type::kOverlayRw;
  o.lowerdirs = {src};
  o.target = "/src";
  spec_.mounts = {o};
  auto r = sh("echo changed > /src/a && echo b > /src/b && rm /src/a && ls /src");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "b\n");
  EXPECT_EQ(*fs::read_file(src + "/a"), "orig");
  EXPECT_FALSE(fs::exists(src + "/b"));
  EXPECT_FALSE(fs::exists(spec_.upperdir + "/src"));
}

TEST_F(SandboxTest, MountTargetsResolveInsideTheRoot) {
  // Absolute symlinks in the image must not make the sandbox create or mount on the host.
  std::string l = layer("l1");
  std::string name = "ocib-sandbox-test-" + std::to_string(getpid());
  ASSERT_EQ(symlink("/tmp", (l + "/link").c_str()), 0);
  std::string dangling = step_ + "/victim";
  ASSERT_EQ(symlink(dangling.c_str(), (l + "/dangling").c_str()), 0);
  spec_.lowerdirs = {l, g_base};
  Mount t;
  t.type = Mount::Type::kTmpfs;
  t.target = "/link/" + name;
  spec_.mounts = {t};
  auto r = sh("grep -c ' /tmp/" + name + " tmpfs' /proc/mounts");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "1\n");  // mounted at the in-root path the link names
  EXPECT_FALSE(fs::exists("/tmp/" + name));
  // A dangling link on the way is an error, and nothing is created where it points.
  t.target = "/dangling/sub";
  spec_.mounts = {t};
  auto e = run(spec_, g_ids);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().str(), "sandbox: create mountpoint /dangling/sub: No such file or directory");
  EXPECT_FALSE(fs::exists(dangling));
}

Mount bind_mount(const std::string& source, const std::string& target) {
  Mount m;
  m.source = source;
  m.target = target;
  return m;
}

TEST_F(SandboxTest, MountErrorsNameTheTarget) {
  Mount m;
  m.source = step_ + "/missing";
  m.target = "/x";
  spec_.mounts = {m};
  spec_.argv = {"true"};
  auto r = run(spec_, g_ids);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().str(), "sandbox: mount source " + step_ + "/missing: No such file or directory");
  // A directory bound onto a file of the image.
  std::string l = layer("l1");
  write_text(l + "/file", "f");
  spec_.lowerdirs = {l, g_base};
  spec_.mounts = {bind_mount(layer("d"), "/file")};
  r = run(spec_, g_ids);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().str(), "sandbox: mount /file: Not a directory");
  spec_.mounts = {bind_mount(layer("d"), "relative")};
  EXPECT_FALSE(run(spec_, g_ids).ok());
}

// ---- /etc/hosts, /etc/hostname, /etc/resolv.conf -------------------------------------------

TEST_F(SandboxTest, EtcFilesAreProvidedAndNotLeftInTheLayer) {
  spec_.hostname = "builder";
  auto r = sh("cat /etc/hosts /etc/hostname; wc -c < /etc/resolv.conf");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "127.0.0.1\tlocalhost builder\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "builder\n0\n");
  EXPECT_FALSE(fs::exists(spec_.upperdir + "/etc"));  // the base image has no /etc

  spec_.network = Network::kHost;
  auto host = fs::read_file("/etc/resolv.conf");
  r = sh("cat /etc/resolv.conf");
  EXPECT_EQ(r.output, host.ok() ? *host : "");

  // in_sandbox steps (COPY) see the image's own files.
  spec_.in_sandbox = [](const std::vector<int>&) { return access("/etc/hosts", F_OK) == 0; };
  EXPECT_EQ(go().outcome.exit_code, 0);
}

TEST_F(SandboxTest, WritesToEtcHostsAreDiscarded) {
  std::string l = layer("l1");
  ASSERT_TRUE(fs::mkdirs(l + "/etc").ok());
  write_text(l + "/etc/hosts", "10.0.0.1 image\n");
  spec_.lowerdirs = {l, g_base};
  auto r = sh("echo '10.9.9.9 added' >> /etc/hosts && grep -c added /etc/hosts && "
              "echo other > /etc/hostname && echo 'nameserver 1.1.1.1' > /etc/resolv.conf");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "1\n");
  EXPECT_FALSE(fs::exists(spec_.upperdir + "/etc"));
  EXPECT_EQ(*fs::read_file(l + "/etc/hosts"), "10.0.0.1 image\n");
  // The next step sees fresh files again.
  EXPECT_EQ(sh("grep -c added /etc/hosts").output, "0\n");
}

// ---- isolation (Docker defaults) -------------------------------------------------------------

TEST_F(SandboxTest, KernelMemoryIsUnreadable) {
  // Docker masks /proc/kcore with /dev/null: cat reads nothing (or fails where the kernel has
  // no /proc/kcore, as on this test machine; opening the real one needs CAP_SYS_RAWIO in the
  // initial user namespace, which a step never has).
  // Either way no byte of kernel memory comes out.
  auto r = sh("cat /proc/kcore 2>/dev/null | wc -c; head -c 1 /proc/kcore 2>/dev/null | wc -c");
  EXPECT_EQ(r.output, "0\n0\n");
}

TEST_F(SandboxTest, NestedNamespacesAndMountsAreRefused) {
  auto r = sh("unshare -U true && echo UNSHARED; mkdir -p /mnt; mount -t tmpfs x /mnt && echo MOUNTED;"
              "grep -c ' /mnt ' /proc/mounts");
  EXPECT_EQ(r.output.find("UNSHARED"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("MOUNTED"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\n0\n"), std::string::npos) << r.output;
}

TEST_F(SandboxTest, ChownMapsToSubordinateHostId) {
  uint32_t n = 0;
  for (const auto& rg : g_ids.uids) n += rg.count;
  if (n <= 1) GTEST_SKIP() << "single-id mapping: container uid 1000 has no host id";
  auto r = sh("touch /f && chown 1000:1000 /f && stat -c %u:%g /f");
  EXPECT_EQ(r.outcome.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "1000:1000\n");
  struct stat st;
  ASSERT_EQ(lstat((spec_.upperdir + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, *g_ids.container_to_host_uid(1000));
  EXPECT_EQ(st.st_gid, *g_ids.container_to_host_gid(1000));
}

// A TCP server on the host's 127.0.0.1 that records what the first client sends.
class LoopbackServer {
 public:
  LoopbackServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 4);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~LoopbackServer() { close(fd_); }
  int port() const { return port_; }
  // What a client sent within `ms`, or "<none>".
  std::string received(int ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, ms) != 1) return "<none>";
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return "<none>";
    std::string got;
    char buf[64];
    ssize_t k;
    pollfd q{c, POLLIN, 0};
    while (poll(&q, 1, 2000) == 1 && (k = read(c, buf, sizeof buf)) > 0)
      got.append(buf, static_cast<size_t>(k));
    close(c);
    return got;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_F(SandboxTest, NetworkNoneCannotReachHostLoopbackButHostCan) {
  LoopbackServer server;
  std::string cmd = "echo ping | nc -w 3 127.0.0.1 " + std::to_string(server.port()) +
                    " && echo CONNECTED";
  auto none = sh(cmd);
  EXPECT_EQ(none.output.find("CONNECTED"), std::string::npos) << none.output;
  EXPECT_NE(none.outcome.exit_code, 0);
  EXPECT_EQ(server.received(200), "<none>");
  spec_.shared_netns = true;  // the shared network namespace is just as closed
  none = sh(cmd + "; grep -c : /proc/net/dev");
  EXPECT_EQ(none.output.find("CONNECTED"), std::string::npos) << none.output;
  EXPECT_NE(none.output.find("\n1\n"), std::string::npos) << none.output;  // lo only
  EXPECT_EQ(server.received(200), "<none>");
  spec_.shared_netns = false;

  spec_.network = Network::kHost;
  std::string got;
  std::thread t([&] { got = server.received(10000); });
  auto host = sh(cmd);
  t.join();
  EXPECT_EQ(got, "ping\n");
  EXPECT_NE(host.output.find("CONNECTED"), std::string::npos) << host.output;
}

// ---- lifetime ------------------------------------------------------------------------------

// Pids whose cmdline is exactly `argv`.
std::vector<pid_t> find_processes(const std::string& cmdline) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    pid_t pid = atoi(e->d_name);
    if (pid <= 0) continue;
    auto c = fs::read_file("/proc/" + std::string(e->d_name) + "/cmdline");
    if (c.ok() && *c == cmdline) out.push_back(pid);
  }
  closedir(d);
  return out;
}

TEST_F(SandboxTest, KillingTheCallerLeavesNoProcessOrMount) {
  std::string marker = std::to_string(100000 + getpid());  // sleep <marker>
  std::string cmdline = std::string("sleep\0", 6) + marker + std::string("\0", 1);
  spec_.argv = {"sleep", marker};
  uint32_t n = 0;
  for (const auto& rg : g_ids.uids) n += rg.count;
  if (n > 1) spec_.uid = spec_.gid = 1000;  // the uid switch clears PDEATHSIG: must be re-armed
  pid_t helper = fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    auto r = run(spec_, g_ids);
    _exit(r.ok() ? 0 : 1);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (find_processes(cmdline).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_FALSE(find_processes(cmdline).empty()) << "the step did not start";
  kill(helper, SIGKILL);
  int status;
  waitpid(helper, &status, 0);
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!find_processes(cmdline).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(find_processes(cmdline).empty()) << "a step process outlived its caller";
  auto info = fs::read_file("/proc/self/mountinfo");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->find(g_tmp), std::string::npos);
}

// The upperdir as text: type, mode, owner (container ids), content, link target, device, opaque
// marker and other xattrs, hardlink groups; no times (each run writes at its own time).
std::string describe_upper(const std::string& root) {
  std::ostringstream out;
  std::map<std::pair<dev_t, ino_t>, std::string> inodes;
  std::function<void(const std::string&)> walk = [&](const std::string& rel) {
    std::string abs = rel.empty() ? root : root + "/" + rel;
    DIR* d = opendir(abs.c_str());
    std::vector<std::string> names;
    while (dirent* de = d ? readdir(d) : nullptr)
      if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
        names.push_back(de->d_name);
    if (d) closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      std::string r = rel.empty() ? n : rel + "/" + n, a = root + "/" + r;
      struct stat st;
      lstat(a.c_str(), &st);
      out << r << " " << std::oct << st.st_mode << std::dec << " "
          << g_ids.host_to_container_uid(st.st_uid).value_or(99999) << ":"
          << g_ids.host_to_container_gid(st.st_gid).value_or(99999);
      char names_buf[1024];
      ssize_t len = llistxattr(a.c_str(), names_buf, sizeof names_buf);
      std::vector<std::string> xs;
      for (ssize_t i = 0; i < len; i += static_cast<ssize_t>(strlen(names_buf + i)) + 1)
        xs.push_back(names_buf + i);
      std::sort(xs.begin(), xs.end());
      for (const auto& x : xs) {
        if (x.rfind("user.overlay.", 0) == 0 && x != "user.overlay.opaque") continue;
        char v[256];
        ssize_t vl = lgetxattr(a.c_str(), x.c_str(), v, sizeof v);
        out << " " << x << "=" << std::string(v, vl > 0 ? static_cast<size_t>(vl) : 0);
      }
      if (S_ISREG(st.st_mode)) {
        auto [it, fresh] = inodes.try_emplace({st.st_dev, st.st_ino}, r);
        if (!fresh)
          out << " link to " << it->second;
        else
          out << " \"" << *fs::read_file(a) << "\"";
      } else if (S_ISLNK(st.st_mode)) {
        char t[256];
        ssize_t tl = readlink(a.c_str(), t, sizeof t);
        out << " -> " << std::string(t, tl > 0 ? static_cast<size_t>(tl) : 0);
      } else if (S_ISCHR(st.st_mode)) {
        out << " dev " << major(st.st_rdev) << "," << minor(st.st_rdev);
      }
      out << "\n";
      if (S_ISDIR(st.st_mode)) walk(r);
    }
  };
  walk("");
  return out.str();
}

// A tree as a step sees it, from inside the sandbox (container ids): type, mode, owner, times,
// xattrs other than overlay's, contents, link targets, device numbers, and which names share an
// inode.
std::string describe_tree(const std::string& root) {
  std::ostringstream out;
  std::map<std::pair<dev_t, ino_t>, std::string> inodes;
  std::function<void(const std::string&)> walk = [&](const std::string& rel) {
    std::string abs = rel.empty() ? root + "/." : root + "/" + rel;  // root may be a /proc/self/fd link
    struct stat st;
    if (lstat(abs.c_str(), &st) != 0) {
      out << rel << " missing\n";
      return;
    }
    out << (rel.empty() ? "." : rel) << " " << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":"
        << st.st_gid;
    if (!S_ISLNK(st.st_mode)) out << " t=" << st.st_mtim.tv_sec;
    char names_buf[1024];
    ssize_t len = llistxattr(abs.c_str(), names_buf, sizeof names_buf);
    std::vector<std::string> xs;
    for (ssize_t i = 0; i < len; i += static_cast<ssize_t>(strlen(names_buf + i)) + 1) xs.push_back(names_buf + i);
    std::sort(xs.begin(), xs.end());
    for (const auto& x : xs) {
      if (x.rfind("user.overlay.", 0) == 0 || x.rfind("trusted.overlay.", 0) == 0) continue;
      char v[256];
      ssize_t vl = lgetxattr(abs.c_str(), x.c_str(), v, sizeof v);
      out << " " << x << "=" << std::string(v, vl > 0 ? static_cast<size_t>(vl) : 0);
    }
    if (S_ISREG(st.st_mode)) {
      auto [it, fresh] = inodes.try_emplace({st.st_dev, st.st_ino}, rel);
      if (!fresh) out << " link to " << it->second;
      else {
        auto data = fs::read_file(abs);
        out << " \"" << (data.ok() ? *data : std::string("?")) << "\"";
      }
    } else if (S_ISLNK(st.st_mode)) {
      char t[256];
      ssize_t tl = readlink(abs.c_str(), t, sizeof t);
      out << " -> " << std::string(t, tl > 0 ? static_cast<size_t>(tl) : 0);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      out << " dev " << major(st.st_rdev) << "," << minor(st.st_rdev);
    }
    out << "\n";
    if (!S_ISDIR(st.st_mode)) return;
    DIR* d = opendir(abs.c_str());
    std::vector<std::string> names;
    while (dirent* de = d ? readdir(d) : nullptr)
      if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) names.push_back(de->d_name);
    if (d) closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) walk(rel.empty() ? n : rel + "/" + n);
  };
  walk("");
  return out.str();
}

void set_mtime(const std::string& path, time_t t) {
  timespec ts[2] = {{t, 0}, {t, 0}};
  utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

// snapshot::flatten makes the one directory an overlay of the layers shows (what a deep chain's
// bottom is replaced by): whiteouts of files and directories, an opaque directory, a directory
// replacing a file and the reverse, overwritten and untouched hardlinks, symlinks, a device node,
// a fifo, modes, owners, xattrs and times; and flattening onto an earlier flat gives the same.
TEST_F(SandboxTest, FlattenIsTheOverlayView) {
  std::string l1 = layer("l1"), l2 = layer("l2"), l3 = layer("l3");
  for (const char* dir : {"/d/sub", "/e", "/o/keep", "/repdir"}) ASSERT_TRUE(fs::mkdirs(l1 + dir).ok());
  for (const char* f : {"/d/sub/s", "/d/f", "/e/y", "/gone", "/o/old", "/o/keep/k", "/hl1", "/hl3", "/rep",
                        "/repdir/child", "/m"})
    write_text(l1 + f, f);
  ASSERT_EQ(link((l1 + "/hl1").c_str(), (l1 + "/hl2").c_str()), 0);
  ASSERT_EQ(link((l1 + "/hl3").c_str(), (l1 + "/hl4").c_str()), 0);
  ASSERT_EQ(symlink("d/f", (l1 + "/sym").c_str()), 0);
  // A device node needs CAP_MKNOD on the host (an unprivileged run goes without one).
  const bool dev = mknod((l1 + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0;
  if (dev) chmod((l1 + "/null").c_str(), 0666);
  ASSERT_EQ(mkfifo((l1 + "/fifo").c_str(), 0600), 0);
  chmod((l1 + "/e").c_str(), 0750);
  if (setxattr((l1 + "/e").c_str(), "user.e", "1", 1, 0) != 0 || setxattr((l1 + "/m").c_str(), "user.m", "2", 1, 0) != 0)
    GTEST_SKIP() << "no user xattrs in " << l1 << ": " << strerror(errno);
  uint32_t ids = 0;
  for (const auto& r : g_ids.uids) ids += r.count;
  if (ids > 1 && geteuid() == 0) {
    // Owned by container uid/gid 1 (a subordinate id when the sandbox maps a range).
    auto h = g_ids.container_to_host_uid(1), g = g_ids.container_to_host_gid(1);
    ASSERT_TRUE(h && g);
    ASSERT_EQ(lchown((l1 + "/m").c_str(), *h, *g), 0);
    ASSERT_EQ(lchown((l1 + "/e").c_str(), *h, *g), 0);
  }
  chmod((l1 + "/m").c_str(), 04750);  // after chown, which clears set-user-ID
  // l2: a whiteout, an opaque directory, a file become a directory and the reverse, a changed
  // directory mode, an overwrite, a new file in a merged directory.
  ASSERT_EQ(mknod((l2 + "/gone").c_str(), S_IFCHR, makedev(0, 0)), 0) << strerror(errno);
  for (const char* dir : {"/o", "/rep", "/d", "/e"}) ASSERT_TRUE(fs::mkdirs(l2 + dir).ok());
  ASSERT_EQ(setxattr((l2 + "/o").c_str(), "user.overlay.opaque", "y", 1, 0), 0);
  for (const char* f : {"/o/new", "/rep/x", "/repdir", "/d/f", "/e/newfile"}) write_text(l2 + f, std::string("2") + f);
  chmod((l2 + "/d").c_str(), 0711);
  // l3: a directory whited out, a directory where a whiteout was, an overwritten hardlink.
  ASSERT_TRUE(fs::mkdirs(l3 + "/d").ok());
  ASSERT_TRUE(fs::mkdirs(l3 + "/gone").ok());
  ASSERT_TRUE(fs::mkdirs(l3 + "/o").ok());
  ASSERT_EQ(mknod((l3 + "/d/sub").c_str(), S_IFCHR, makedev(0, 0)), 0);
  for (const char* f : {"/gone/z", "/hl1", "/o/new2"}) write_text(l3 + f, std::string("3") + f);
  chmod((l2 + "/d").c_str(), 0711);
  chmod((l3 + "/d").c_str(), 0711);
  set_mtime(l1 + "/e", 1200000000);
  set_mtime(l1 + "/m", 1300000000);
  set_mtime(l2 + "/d", 1000000000);
  set_mtime(l3 + "/d", 1000000001);
  set_mtime(l3, 1100000000);
  for (const char* f : {"/flat", "/flat12", "/flat3", "/out"}) ASSERT_TRUE(fs::mkdirs(step_ + f).ok());

  spec_.views = {ReadOnlyView{{l3, l2, l1}}};
  spec_.host_dirs = {step_};
  spec_.in_sandbox = [](const std::vector<int>& fds) {
    const std::string view = "/proc/self/fd/" + std::to_string(fds.at(0));
    const std::string dir = "/proc/self/fd/" + std::to_string(fds.at(1));
    if (!snapshot::flatten({dir + "/l3", dir + "/l2", dir + "/l1"}, dir + "/flat").ok()) return 1;
    if (!snapshot::flatten({dir + "/l2", dir + "/l1"}, dir + "/flat12").ok()) return 2;
    if (!snapshot::flatten({dir + "/l3", dir + "/flat12"}, dir + "/flat3").ok()) return 3;
    if (!fs::write_file_atomic(dir + "/out/view", describe_tree(view)).ok()) return 4;
    if (!fs::write_file_atomic(dir + "/out/flat", describe_tree(dir + "/flat")).ok()) return 5;
    if (!fs::write_file_atomic(dir + "/out/flat3", describe_tree(dir + "/flat3")).ok()) return 6;
    return 0;
  };
  auto r = go();
  ASSERT_EQ(r.outcome.exit_code, 0) << r.output;
  const std::string view = *fs::read_file(step_ + "/out/view");
  EXPECT_EQ(*fs::read_file(step_ + "/out/flat"), view);
  EXPECT_EQ(*fs::read_file(step_ + "/out/flat3"), view);
  // What the overlay shows, spelled out for the parts that matter most.
  if (dev) {
    EXPECT_NE(view.find("\nnull 20666 0:0 t="), std::string::npos) << view;
  }
  for (const char* want : {"\nd 40711 ", "\nd/f 100644 0:0 t=", "\ngone/z ", "\nhl2 100644 0:0 t=",
                           "\nhl4 100644 0:0 t=", "\no/new2 ", "\nrepdir 100644 ",
                           "\nrep/x ", "\nsym 120777 0:0 -> d/f\n", " user.m=2 \"/m\"\n", "\nfifo 10600 "})
    EXPECT_NE(view.find(want), std::string::npos) << want << " not in\n" << view;
  for (const char* gone : {"\nd/sub", "\no/old", "\no/keep", "\nrepdir/child"})
    EXPECT_EQ(view.find(gone), std::string::npos) << gone << "\n" << view;
  EXPECT_NE(view.find("\ne/y "), std::string::npos) << view;
  EXPECT_NE(view.find("\ne/newfile "), std::string::npos) << view;
  EXPECT_NE(view.find(" link to hl3\n"), std::string::npos) << view;
  EXPECT_NE(view.find(". 40755 0:0 t=1100000000"), std::string::npos) << view;
  EXPECT_NE(view.find("\nd 40711 0:0 t=1000000001"), std::string::npos) << view;
  EXPECT_NE(view.find("\ne 40755 0:0 t="), std::string::npos) << view;  // l2's version, not l1's
  EXPECT_NE(view.find(" 104750 " + std::string(ids > 1 && geteuid() == 0 ? "1:1" : "0:0") + " t=1300000000 user.m=2"),
            std::string::npos)
      << view;
  // Non-directories are the snapshots' own inodes; no overlay marker is left.
  struct stat a, b;
  ASSERT_EQ(lstat((l1 + "/hl3").c_str(), &a), 0);
  ASSERT_EQ(lstat((step_ + "/flat/hl4").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  char v[8];
  EXPECT_LT(lgetxattr((step_ + "/flat/o").c_str(), "user.overlay.opaque", v, sizeof v), 0);
  EXPECT_FALSE(fs::exists(step_ + "/flat/gone/.wh..wh..opq"));
}

// The same step under every driver leaves the same upperdir (so the same layer): deletions,
// a replaced directory, new files, chown, hardlinks, symlinks, xattrs, over lowers that hold
// whiteouts and an opaque directory themselves.
TEST_F(SandboxTest, SnapshotDriversAgree) {
  std::string l1 = layer("l1"), l2 = layer("l2");
  for (const char* dir : {"/d/sub", "/e", "/o"}) ASSERT_TRUE(fs::mkdirs(l1 + dir).ok());
  // (No write to one of several hardlinked lower files: fuse-overlayfs tracks lower inodes, and
  // may copy the write up under another of the names.)
  for (const char* f : {"/d/f", "/d/sub/s", "/e/y", "/x", "/gone", "/o/old", "/attr"})
    write_text(l1 + f, f);
  if (setxattr((l1 + "/attr").c_str(), "user.test", "v", 1, 0) != 0)
    GTEST_SKIP() << "no user xattrs in " << l1 << ": " << strerror(errno);
  ASSERT_EQ(mknod((l2 + "/gone").c_str(), S_IFCHR, makedev(0, 0)), 0) << strerror(errno);
  ASSERT_TRUE(fs::mkdirs(l2 + "/o").ok());
  write_text(l2 + "/o/new", "new");
  ASSERT_EQ(setxattr((l2 + "/o").c_str(), "user.overlay.opaque", "y", 1, 0), 0);
  spec_.lowerdirs = {l2, l1, g_base};
  uint32_t ids = 0;
  for (const auto& r : g_ids.uids) ids += r.count;
  const uid_t owner = ids > 1 ? 1 : 0;
  spec_.in_sandbox = [owner](const std::vector<int>&) {
    auto put = [](const char* path, const char* text) {
      int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      bool ok = fd >= 0 && write(fd, text, strlen(text)) == static_cast<ssize_t>(strlen(text));
      if (fd >= 0) close(fd);
      return ok;
    };
    if (unlink("/x") || unlink("/d/f") || unlink("/d/sub/s") || rmdir("/d/sub") || rmdir("/d"))
      return 1;
    if (mkdir("/d", 0750) || !put("/d/g", "g")) return 2;
    if (!put("/new", "n") || chown("/new", owner, owner) || link("/new", "/hl") ||
        symlink("new", "/sl"))
      return 3;
    if (unlink("/e/y") || chmod("/e", 0700)) return 4;
    if (setxattr("/attr", "user.more", "m", 1, 0)) return 5;
    if (mkdir("/fresh", 0755) || mkdir("/fresh/sub", 0755) || !put("/fresh/sub/z", "z")) return 7;
    if (unlink("/o/new") || !put("/o/newer", "newer")) return 8;
    if (unlink("/gone") == 0 || errno != ENOENT) return 9;  // hidden by the whiteout below
    return 0;
  };
  std::map<std::string, std::string> uppers;
  for (Snapshotter d : {Snapshotter::kOverlay, Snapshotter::kFuseOverlayfs, Snapshotter::kCopy}) {
    const char* name = d == Snapshotter::kOverlay ? "overlay"
                       : d == Snapshotter::kCopy  ? "copy"
                                                  : "fuse-overlayfs";
    if (d == Snapshotter::kFuseOverlayfs && !fuse_overlayfs_unavailable().empty()) {
      std::cerr << "skipping fuse-overlayfs: " << fuse_overlayfs_unavailable() << "\n";
      continue;
    }
    spec_.snapshotter = d;
    spec_.upperdir = step_ + "/upper-" + name;
    spec_.scratch = step_ + "/scratch-" + name;
    ASSERT_TRUE(fs::mkdirs(spec_.upperdir).ok());
    auto r = go();
    EXPECT_EQ(r.outcome.exit_code, 0) << name << ": " << r.output;
    uppers[name] = describe_upper(spec_.upperdir);
  }
  const std::string& want = uppers["overlay"];
  // The kernel's own result, as the layer needs it.
  EXPECT_NE(want.find("d 40750 0:0 user.overlay.opaque=y\n"), std::string::npos) << want;
  EXPECT_NE(want.find("x 20000 0:0 dev 0,0\n"), std::string::npos) << want;
  EXPECT_NE(
      want.find("hl 100644 " + std::to_string(owner) + ":" + std::to_string(owner) + " \"n\"\n"),
      std::string::npos)
      << want;
  EXPECT_NE(want.find("new 100644 " + std::to_string(owner) + ":" + std::to_string(owner) +
                      " link to hl\n"),
            std::string::npos)
      << want;
  EXPECT_NE(want.find("attr 100644 0:0 user.more=m user.test=v \"/attr\"\n"), std::string::npos)
      << want;
  for (const auto& [name, got] : uppers) EXPECT_EQ(got, want) << name << " differs from overlay";
}

// A fuse-overlayfs that cannot mount is a setup error naming the step and what it said.
TEST_F(SandboxTest, FuseOverlayfsFailureIsReported) {
  std::string why = fuse_overlayfs_unavailable();
  if (why.find("/dev/fuse") == std::string::npos)
    GTEST_SKIP() << "needs fuse-overlayfs installed and /dev/fuse unusable (" << why << ")";
  spec_.snapshotter = Snapshotter::kFuseOverlayfs;
  spec_.argv = {"true"};
  auto r = run(spec_, g_ids);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().str().find("sandbox: mount fuse-overlayfs (fuse"), std::string::npos)
      << r.error().str();
}

TEST_F(SandboxTest, SnapshotDriverIsChosenOnce) {
  auto d = snapshot_driver(g_ids);
  ASSERT_TRUE(d.ok()) << d.error().str();  // SetUp skipped us otherwise
  EXPECT_EQ(snapshot_driver_name(g_ids), d->name);
  EXPECT_FALSE(d->reason.empty());
  const char* forced = getenv("OCIB_SNAPSHOTTER");
  if (forced && *forced && strcmp(forced, "auto") != 0) {
    EXPECT_EQ(d->reason, "set by OCIB_SNAPSHOTTER");
  } else {
    // Kernel overlay unless it failed here; then the reason says why.
    EXPECT_EQ(d->fallback, d->name != "overlay") << d->reason;
    if (d->fallback) {
      EXPECT_NE(d->reason.find("kernel overlayfs does not work"), std::string::npos);
    }
  }
  // The choice is per process: a later change of the variable does not switch drivers mid-build.
  setenv("OCIB_SNAPSHOTTER", d->name == "copy" ? "overlay" : "copy", 1);
  EXPECT_EQ(snapshot_driver_name(g_ids), d->name);
  if (forced)
    setenv("OCIB_SNAPSHOTTER", forced, 1);
  else
    unsetenv("OCIB_SNAPSHOTTER");
}

TEST_F(SandboxTest, PerfHundredRuns) {
  if (!getenv("OCIB_SANDBOX_PERF")) GTEST_SKIP() << "set OCIB_SANDBOX_PERF=1 to measure";
  spec_.argv = {"true"};
  if (getenv("OCIB_SANDBOX_PERF_ETC")) {  // an image that has its own /etc files
    std::string l = layer("etc");
    ASSERT_TRUE(fs::mkdirs(l + "/etc").ok());
    for (const char* f : {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}) write_text(l + f, "");
    spec_.lowerdirs = {l, g_base};
  }
  struct Mode {
    const char* name;
    Network net;
    bool fresh;
    bool etc = true;
  };
  for (Mode m : {Mode{"kNone shared netns", Network::kNone, false},
                 Mode{"kNone fresh netns ", Network::kNone, true},
                 Mode{"kHost            ", Network::kHost, false},
                 Mode{"kNone shared, no etc_files", Network::kNone, false, false},
                 Mode{"kNone fresh, no etc_files ", Network::kNone, true, false}}) {
    spec_.network = m.net;
    spec_.etc_files = m.etc;
    spec_.shared_netns = !m.fresh;
    std::vector<double> ms;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 100; ++i) {
      auto s0 = std::chrono::steady_clock::now();
      auto r = run(spec_, g_ids);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0)
                       .count());
      ASSERT_TRUE(r.ok()) << r.error().str();
      ASSERT_EQ(r->exit_code, 0);
    }
    double total =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::sort(ms.begin(), ms.end());
    printf("100 x run(true) %s: total %.0f ms, median %.1f ms, p10 %.1f ms, p90 %.1f ms\n",
           m.name, total, ms[50], ms[10], ms[90]);
  }
}

TEST_F(SandboxTest, ZZNoMountsLeakToHost) {
  sh("true");
  auto info = fs::read_file("/proc/self/mountinfo");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->find(g_tmp), std::string::npos);
}

}  // namespace
}  // namespace ocib::sandbox
