#include "copy/copy.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <cstring>
#include <functional>
#include <memory>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fs.h"

namespace ocib::copy {
namespace {

class CopyTest : public testing::Test {
 protected:
  void SetUp() override {
    auto d = fs::make_temp_dir(testing::TempDir(), "ocib-copy-");
    ASSERT_TRUE(d.ok());
    tmp_ = fs::TempDir(*d);
    ctx_ = fs::join(*d, "ctx");
    dst_ = fs::join(*d, "dst");
    ASSERT_TRUE(fs::mkdirs(ctx_ + "/dir/sub").ok());
    ASSERT_TRUE(fs::mkdirs(dst_).ok());
    write(ctx_ + "/a.txt", "A");
    write(ctx_ + "/b.txt", "B");
    write(ctx_ + "/dir/x", "X");
    write(ctx_ + "/dir/sub/y", "Y");
    ASSERT_EQ(symlink("../../../../etc/passwd", (ctx_ + "/escape").c_str()), 0);
    ASSERT_EQ(chmod((ctx_ + "/a.txt").c_str(), 0751), 0);
    fd_ = open(ctx_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override { close(fd_); }
  static void write(const std::string& p, const std::string& s) { ASSERT_TRUE(fs::write_file_atomic(p, s).ok()); }
  CopyOp op(std::vector<std::string> src, std::string dest) {
    CopyOp o;
    o.sources = std::move(src);
    o.dest = std::move(dest);
    o.uid = getuid();
    o.gid = getgid();
    return o;
  }
  fs::TempDir tmp_;
  std::string ctx_, dst_;
  int fd_ = -1;
};

TEST_F(CopyTest, GlobsMatchSorted) {
  auto m = match_sources(fd_, "*.txt");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, (std::vector<std::string>{"a.txt", "b.txt"}));
  EXPECT_EQ(*match_sources(fd_, "dir/*/y"), (std::vector<std::string>{"dir/sub/y"}));
  EXPECT_EQ(*match_sources(fd_, "."), (std::vector<std::string>{"."}));
  EXPECT_TRUE(match_sources(fd_, "missing")->empty());
  // ".." cannot climb out of the context.
  EXPECT_EQ(*match_sources(fd_, "../../a.txt"), (std::vector<std::string>{"a.txt"}));
}

TEST_F(CopyTest, DoubleStarMatchesAnyDepth) {
  write(ctx_ + "/dir/sub/z.txt", "Z");
  auto m = match_sources(fd_, "**/*.txt");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, (std::vector<std::string>{"a.txt", "b.txt", "dir/sub/z.txt"}));
  EXPECT_EQ(*match_sources(fd_, "dir/**/y"), (std::vector<std::string>{"dir/sub/y"}));
}

TEST_F(CopyTest, HashChangesWithContentOnly) {
  auto h1 = hash_sources(fd_, {"dir"});
  ASSERT_TRUE(h1.ok());
  EXPECT_EQ(*hash_sources(fd_, {"dir"}), *h1);
  write(ctx_ + "/a.txt", "changed");  // not under dir
  EXPECT_EQ(*hash_sources(fd_, {"dir"}), *h1);
  write(ctx_ + "/dir/sub/y", "Y2");
  EXPECT_NE(*hash_sources(fd_, {"dir"}), *h1);
  EXPECT_EQ(hash_sources(fd_, {"nope"}).error().code(), Errc::kNotFound);
}

TEST_F(CopyTest, FileToFileAndIntoDir) {
  ASSERT_TRUE(copy_into(fd_, op({"a.txt"}, dst_ + "/renamed")).ok());
  EXPECT_EQ(*fs::read_file(dst_ + "/renamed"), "A");
  struct stat st;
  ASSERT_EQ(stat((dst_ + "/renamed").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0751u);
  ASSERT_TRUE(copy_into(fd_, op({"a.txt", "b.txt"}, dst_ + "/multi/")).ok());
  EXPECT_EQ(*fs::read_file(dst_ + "/multi/b.txt"), "B");
  // Several sources need a directory destination.
  EXPECT_FALSE(copy_into(fd_, op({"a.txt", "b.txt"}, dst_ + "/nodir")).ok());
}

TEST_F(CopyTest, DirectoryCopiesContents) {
  ASSERT_TRUE(copy_into(fd_, op({"dir"}, dst_ + "/app")).ok());
  EXPECT_EQ(*fs::read_file(dst_ + "/app/x"), "X");
  EXPECT_EQ(*fs::read_file(dst_ + "/app/sub/y"), "Y");
  EXPECT_FALSE(fs::exists(dst_ + "/app/dir"));
}

TEST_F(CopyTest, SymlinksAreCopiedNotFollowed) {
  ASSERT_TRUE(copy_into(fd_, op({"escape"}, dst_ + "/link")).ok());
  char buf[256];
  ssize_t n = readlink((dst_ + "/link").c_str(), buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "../../../../etc/passwd");
}

TEST_F(CopyTest, ChmodApplies) {
  CopyOp o = op({"b.txt"}, dst_ + "/b");
  o.chmod = 0600;
  ASSERT_TRUE(copy_into(fd_, o).ok());
  struct stat st;
  ASSERT_EQ(stat((dst_ + "/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

// A directory source's files are copied on several threads: every file arrives with its
// content, mode and mtime, and directories keep their mtimes although files land in them
// after the walk passed.
TEST_F(CopyTest, ManyFilesKeepContentModesAndMtimes) {
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 4093);
  for (int d = 0; d < 8; ++d) {
    std::string dir = ctx_ + "/tree/d" + std::to_string(d);
    ASSERT_TRUE(fs::mkdirs(dir + "/inner").ok());
    for (int f = 0; f < 40; ++f) {
      std::string p = dir + (f % 2 ? "/inner/f" : "/f") + std::to_string(f);
      write(p, f == 0 ? big : "file " + std::to_string(d) + "/" + std::to_string(f));
      ASSERT_EQ(chmod(p.c_str(), f % 3 ? 0644 : 0755), 0);
    }
  }
  // Old mtimes everywhere, directories last (writing into them moved theirs).
  struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
  for (int d = 0; d < 8; ++d) {
    std::string dir = ctx_ + "/tree/d" + std::to_string(d);
    for (int f = 0; f < 40; ++f)
      ASSERT_EQ(utimensat(AT_FDCWD, (dir + (f % 2 ? "/inner/f" : "/f") + std::to_string(f)).c_str(),
                          old, 0),
                0);
    ASSERT_EQ(utimensat(AT_FDCWD, (dir + "/inner").c_str(), old, 0), 0);
    ASSERT_EQ(utimensat(AT_FDCWD, dir.c_str(), old, 0), 0);
  }
  ASSERT_TRUE(copy_into(fd_, op({"tree"}, dst_ + "/t/")).ok());
  for (int d = 0; d < 8; ++d) {
    std::string dir = "/t/d" + std::to_string(d);
    for (int f = 0; f < 40; ++f) {
      std::string rel = dir + (f % 2 ? "/inner/f" : "/f") + std::to_string(f);
      EXPECT_EQ(*fs::read_file(dst_ + rel),
                f == 0 ? big : "file " + std::to_string(d) + "/" + std::to_string(f))
          << rel;
      struct stat st;
      ASSERT_EQ(stat((dst_ + rel).c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 07777, f % 3 ? 0644u : 0755u) << rel;
      EXPECT_EQ(st.st_mtim.tv_sec, 1000000000) << rel;
    }
    for (const std::string& p : {dir, dir + "/inner"}) {
      struct stat st;
      ASSERT_EQ(stat((dst_ + p).c_str(), &st), 0);
      EXPECT_EQ(st.st_mtim.tv_sec, 1000000000) << p;
    }
  }
}

// A file that cannot be created fails the copy with its name, whichever thread copied it.
// A read-only directory stops an ordinary user; root, who may write there, is stopped by the
// immutable attribute (chattr +i).
TEST_F(CopyTest, FailedFileFailsTheCopy) {
  std::string sub = dst_ + "/ro/sub";
  ASSERT_TRUE(fs::mkdirs(sub).ok());
  auto set_immutable = [&](bool on) {
    UniqueFd d(::open(sub.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    int flags = 0;
    if (!d.valid() || ::ioctl(d.get(), FS_IOC_GETFLAGS, &flags) != 0) return false;
    flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
    return ::ioctl(d.get(), FS_IOC_SETFLAGS, &flags) == 0;
  };
  if (geteuid() == 0) {
    if (!set_immutable(true)) GTEST_SKIP() << "root, and no immutable attribute here: " << std::strerror(errno);
  } else {
    ASSERT_EQ(chmod(sub.c_str(), 0555), 0);
  }
  auto st = copy_into(fd_, op({"dir"}, dst_ + "/ro/"));
  if (geteuid() == 0) set_immutable(false);
  chmod(sub.c_str(), 0755);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().str().find("sub/y"), std::string::npos) << st.error().str();
}

// CopyOp::expected: the copy checks what it copies against what the key was computed from.
TEST_F(CopyTest, ExpectedManifestAcceptsUnchangedSources) {
  auto m = std::make_shared<SourceManifest>();
  auto h = hash_sources(fd_, {"dir", "a.txt", "escape"}, {}, m.get());
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, *hash_sources(fd_, {"dir", "a.txt", "escape"}));  // the manifest leaves the key alone
  EXPECT_TRUE(m->entries.count("dir/sub/y"));
  CopyOp o = op({"dir", "a.txt", "escape"}, dst_ + "/");
  o.expected = m;
  auto st = copy_into(fd_, o);
  ASSERT_TRUE(st.ok()) << st.error().str();
  EXPECT_EQ(*fs::read_file(dst_ + "/sub/y"), "Y");
}

TEST_F(CopyTest, ExpectedManifestRefusesChangedSources) {
  struct Case {
    const char* what;
    std::function<void()> change;
    const char* path;
  };
  std::vector<Case> cases = {
      {"same size, new bytes", [this] { write(ctx_ + "/dir/sub/y", "Z"); }, "dir/sub/y"},
      {"new size", [this] { write(ctx_ + "/dir/x", "longer"); }, "dir/x"},
      {"new mode", [this] { ASSERT_EQ(chmod((ctx_ + "/dir/x").c_str(), 0700), 0); }, "dir/x"},
      {"new file", [this] { write(ctx_ + "/dir/new", "N"); }, "dir/new"},
      {"gone", [this] { ASSERT_EQ(unlink((ctx_ + "/dir/sub/y").c_str()), 0); }, "dir/sub/y"},
      {"new link target", [this] {
         ASSERT_EQ(unlink((ctx_ + "/dir/x").c_str()), 0);
         ASSERT_EQ(symlink("elsewhere", (ctx_ + "/dir/x").c_str()), 0);
       }, "dir/x"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    ASSERT_TRUE(fs::remove_all(ctx_ + "/dir").ok());
    ASSERT_TRUE(fs::mkdirs(ctx_ + "/dir/sub").ok());
    write(ctx_ + "/dir/x", "X");
    write(ctx_ + "/dir/sub/y", "Y");
    auto m = std::make_shared<SourceManifest>();
    ASSERT_TRUE(hash_sources(fd_, {"dir"}, {}, m.get()).ok());
    c.change();
    CopyOp o = op({"dir"}, dst_ + "/" + std::to_string(&c - cases.data()) + "/");
    o.expected = m;
    auto st = copy_into(fd_, o);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message(), std::string("build context changed during the build: ") + c.path);
  }
}

}  // namespace
}  // namespace ocib::copy
