// Real namespaces, real overlayfs, a static busybox as the rootfs. Passes as root and as an
// unprivileged user with (or without) a subordinate id range; skips with the reason when the
// kernel lacks a feature.

#include "sandbox/sandbox.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/fs.h"

namespace ocib::sandbox {
namespace {

constexpr const char* kApplets[] = {
    "sh",   "echo",  "cat",   "id",   "grep",  "readlink", "rm",   "mkdir", "ls",   "hostname",
    "test", "touch", "sleep", "true", "false", "pwd",      "stat", "env",   "chmod"};

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

TEST_F(SandboxTest, ZZNoMountsLeakToHost) {
  sh("true");
  auto info = fs::read_file("/proc/self/mountinfo");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->find(g_tmp), std::string::npos);
}

}  // namespace
}  // namespace ocib::sandbox
