#include "build/copy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fs.h"

namespace ocib::build {
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

}  // namespace
}  // namespace ocib::build
