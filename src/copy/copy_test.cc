#include "copy/copy.h"
#include "copy/hash_cache.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <cstdio>
#include <cstring>
#include <tuple>
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

TEST_F(CopyTest, HashCacheRoundTripsAndSurvivesDamage) {
  struct stat a{}, b{};
  ASSERT_EQ(::stat((ctx_ + "/a.txt").c_str(), &a), 0);
  ASSERT_EQ(::stat((ctx_ + "/b.txt").c_str(), &b), 0);
  std::string path = fs::join(tmp_.path(), "hc/cache.v2");
  auto c = HashCache::load(path);
  c->put("a.txt", a, "sha256:aaaa");
  c->put("dir/b \xff name", b, "sha256:bbbb");
  ASSERT_TRUE(c->save().ok());
  auto d = HashCache::load(path);
  EXPECT_EQ(d->get("a.txt", a).value_or(""), "sha256:aaaa");
  EXPECT_EQ(d->get("dir/b \xff name", b).value_or(""), "sha256:bbbb");
  EXPECT_FALSE(d->get("a.txt", b).has_value());  // other metadata: not known
  EXPECT_FALSE(d->get("c.txt", a).has_value());
  // Entries not looked up are dropped on save.
  ASSERT_TRUE(d->save().ok());
  auto e = HashCache::load(path);
  EXPECT_TRUE(e->get("a.txt", a).has_value());
  EXPECT_TRUE(e->get("dir/b \xff name", b).has_value());
  // A truncated or foreign file is an empty (or shorter) cache, never a crash.
  auto data = fs::read_file(path);
  ASSERT_TRUE(data.ok());
  for (size_t n = 0; n < data->size(); ++n) {
    write(path, data->substr(0, n));
    auto t = HashCache::load(path);
    (void)t->get("a.txt", a);
  }
  write(path, "{\"version\":1,\"files\":{}}");
  EXPECT_FALSE(HashCache::load(path)->get("a.txt", a).has_value());
}

TEST_F(CopyTest, FileToFileAndIntoDir) {
  ASSERT_TRUE(copy_into(fd_, op({"a.txt"}, dst_ + "/renamed")).ok());
  EXPECT_EQ(*fs::read_file(dst_ + "/renamed"), "A");
  struct stat st;
  ASSERT_EQ(stat((dst_ + "/renamed").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0751u);
  ASSERT_TRUE(copy_into(fd_, op({"a.txt", "b.txt"}, dst_ + "/multi/")).ok());
  EXPECT_EQ(*fs::read_file(dst_ + "/multi/b.txt"), "B");
}

// BuildKit does not refuse several sources into a dest that is not a directory: each source
// is placed in turn, seeing what the ones before it left. Files replace one another; the
// contents of directories merge.
TEST_F(CopyTest, SeveralSourcesIntoANonDirectoryDest) {
  ASSERT_TRUE(copy_into(fd_, op({"a.txt", "b.txt"}, dst_ + "/nodir")).ok());
  EXPECT_EQ(*fs::read_file(dst_ + "/nodir"), "B");
  ASSERT_TRUE(copy_into(fd_, op({"*.txt"}, dst_ + "/glob")).ok());
  EXPECT_EQ(*fs::read_file(dst_ + "/glob"), "B");
  ASSERT_TRUE(fs::mkdirs(ctx_ + "/dir2").ok());
  write(ctx_ + "/dir2/z", "Z");
  ASSERT_TRUE(copy_into(fd_, op({"dir*"}, dst_ + "/merged")).ok());
  EXPECT_EQ(*fs::read_file(dst_ + "/merged/x"), "X");
  EXPECT_EQ(*fs::read_file(dst_ + "/merged/sub/y"), "Y");
  EXPECT_EQ(*fs::read_file(dst_ + "/merged/z"), "Z");
  // A file first, then a directory: the directory cannot land on the file.
  EXPECT_FALSE(copy_into(fd_, op({"a.txt", "dir"}, dst_ + "/clash")).ok());
}

// A wildcard that matches nothing is allowed (BuildKit's AllowEmptyWildcard), next to other
// sources or alone; a plain path that does not exist is not.
TEST_F(CopyTest, WildcardMayMatchNothing) {
  ASSERT_TRUE(copy_into(fd_, op({"a.txt", "nomatch*"}, dst_ + "/")).ok());
  EXPECT_EQ(*fs::read_file(dst_ + "/a.txt"), "A");
  EXPECT_TRUE(copy_into(fd_, op({"nomatch*"}, dst_ + "/none/")).ok());
  EXPECT_FALSE(fs::exists(dst_ + "/none"));
  auto missing = copy_into(fd_, op({"a.txt", "missing"}, dst_ + "/"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Errc::kNotFound);
  EXPECT_TRUE(hash_sources(fd_, {"a.txt", "nomatch*"}).ok());
  EXPECT_TRUE(hash_sources(fd_, {"nomatch*"}).ok());
  EXPECT_NE(*hash_sources(fd_, {"a.txt", "nomatch*"}), *hash_sources(fd_, {"a.txt"}));
  EXPECT_EQ(hash_sources(fd_, {"missing"}).error().code(), Errc::kNotFound);
}

TEST_F(CopyTest, DirectoryCopiesContents) {
  ASSERT_TRUE(copy_into(fd_, op({"dir"}, dst_ + "/app")).ok());
  EXPECT_EQ(*fs::read_file(dst_ + "/app/x"), "X");
  EXPECT_EQ(*fs::read_file(dst_ + "/app/sub/y"), "Y");
  EXPECT_FALSE(fs::exists(dst_ + "/app/dir"));
}

static std::string link_of(const std::string& p) {
  char buf[256];
  ssize_t n = readlink(p.c_str(), buf, sizeof buf);
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

// Symlinks inside a copied directory stay symlinks, their targets as they were.
TEST_F(CopyTest, SymlinksInADirectoryAreCopiedNotFollowed) {
  ASSERT_TRUE(fs::mkdirs(ctx_ + "/links").ok());
  ASSERT_EQ(symlink("../../../../etc/passwd", (ctx_ + "/links/escape").c_str()), 0);
  ASSERT_EQ(symlink("../a.txt", (ctx_ + "/links/a").c_str()), 0);
  ASSERT_TRUE(copy_into(fd_, op({"links"}, dst_ + "/l")).ok());
  EXPECT_EQ(link_of(dst_ + "/l/escape"), "../../../../etc/passwd");
  EXPECT_EQ(link_of(dst_ + "/l/a"), "../a.txt");
}

// A named source that is a symlink is followed (BuildKit's FollowSymlinks), by name or by a
// wildcard: what it points to is copied under the symlink's name, a directory's contents into
// dest. It resolves inside the source root: one that leads out of it names nothing there.
TEST_F(CopyTest, NamedSymlinkSourceIsFollowed) {
  ASSERT_EQ(symlink("a.txt", (ctx_ + "/lnk").c_str()), 0);
  ASSERT_EQ(symlink("/dir", (ctx_ + "/dlink").c_str()), 0);  // absolute: from the source root
  ASSERT_TRUE(copy_into(fd_, op({"lnk"}, dst_ + "/l")).ok());
  EXPECT_EQ(link_of(dst_ + "/l"), "");
  EXPECT_EQ(*fs::read_file(dst_ + "/l"), "A");
  struct stat st;
  ASSERT_EQ(lstat((dst_ + "/l").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0751u);  // the target's mode
  ASSERT_TRUE(copy_into(fd_, op({"ln*"}, dst_ + "/g/")).ok());
  EXPECT_EQ(*fs::read_file(dst_ + "/g/lnk"), "A");
  ASSERT_TRUE(copy_into(fd_, op({"dlink"}, dst_ + "/d")).ok());
  EXPECT_EQ(*fs::read_file(dst_ + "/d/x"), "X");
  EXPECT_EQ(*fs::read_file(dst_ + "/d/sub/y"), "Y");
  auto esc = copy_into(fd_, op({"escape"}, dst_ + "/e"));
  ASSERT_FALSE(esc.ok());
  EXPECT_EQ(esc.error().code(), Errc::kNotFound);
  EXPECT_FALSE(hash_sources(fd_, {"escape"}).ok());
  // The key follows the target's content, and the check of the copy against it passes.
  auto m = std::make_shared<SourceManifest>();
  auto h1 = hash_sources(fd_, {"lnk", "dlink"}, {}, m.get());
  ASSERT_TRUE(h1.ok());
  CopyOp o = op({"lnk", "dlink"}, dst_ + "/checked/");
  o.expected = m;
  auto st2 = copy_into(fd_, o);
  ASSERT_TRUE(st2.ok()) << st2.error().str();
  EXPECT_EQ(*fs::read_file(dst_ + "/checked/lnk"), "A");
  EXPECT_EQ(*fs::read_file(dst_ + "/checked/x"), "X");
  write(ctx_ + "/a.txt", "changed");
  EXPECT_NE(*hash_sources(fd_, {"lnk", "dlink"}), *h1);
}

// The destination resolves through symlinks (BuildKit's fs.RootPath): a directory named by a
// symlink is copied into, and a symlink to a file is written through, the symlinks kept.
TEST_F(CopyTest, DestinationThroughSymlinks) {
  ASSERT_TRUE(fs::mkdirs(dst_ + "/realdir").ok());
  ASSERT_EQ(symlink((dst_ + "/realdir").c_str(), (dst_ + "/symlink").c_str()), 0);
  ASSERT_TRUE(copy_into(fd_, op({"a.txt"}, dst_ + "/symlink/")).ok());
  ASSERT_TRUE(copy_into(fd_, op({"b.txt"}, dst_ + "/symlink")).ok());
  ASSERT_TRUE(copy_into(fd_, op({"dir"}, dst_ + "/symlink/sub2/")).ok());
  EXPECT_EQ(link_of(dst_ + "/symlink"), dst_ + "/realdir");
  EXPECT_EQ(*fs::read_file(dst_ + "/realdir/a.txt"), "A");
  EXPECT_EQ(*fs::read_file(dst_ + "/realdir/b.txt"), "B");
  EXPECT_EQ(*fs::read_file(dst_ + "/realdir/sub2/x"), "X");
  write(dst_ + "/realfile", "old");
  ASSERT_EQ(symlink("realfile", (dst_ + "/flink").c_str()), 0);
  ASSERT_TRUE(copy_into(fd_, op({"b.txt"}, dst_ + "/flink")).ok());
  EXPECT_EQ(link_of(dst_ + "/flink"), "realfile");
  EXPECT_EQ(*fs::read_file(dst_ + "/realfile"), "B");
}

// A minimal ustar archive: (name, type, content or link target) entries.
static std::string make_tar(const std::vector<std::tuple<std::string, char, std::string>>& entries) {
  std::string out;
  for (const auto& [name, type, data] : entries) {
    char h[512] = {};
    std::snprintf(h, 100, "%s", name.c_str());
    std::snprintf(h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
    std::snprintf(h + 108, 8, "%07o", 0);
    std::snprintf(h + 116, 8, "%07o", 0);
    std::snprintf(h + 124, 12, "%011o", type == '0' ? static_cast<unsigned>(data.size()) : 0u);
    std::snprintf(h + 136, 12, "%011o", 1600000000u);
    h[156] = type;
    if (type == '2') std::snprintf(h + 157, 100, "%s", data.c_str());
    std::memcpy(h + 257, "ustar\0" "00", 8);
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h + 148, 8, "%06o", sum);
    out.append(h, sizeof h);
    if (type == '0') {
      out += data;
      out.append((512 - data.size() % 512) % 512, '\0');
    }
  }
  out.append(1024, '\0');
  return out;
}

// ADD of an archive resolves each entry's path in dest as it stands (BuildKit's unpack): a
// directory entry over a symlink to a directory goes into it (an image's var/run -> /run
// stays a symlink, absolute targets taken from dest); a symlink leading above dest fails.
TEST_F(CopyTest, ArchiveEntriesResolveThroughSymlinks) {
  write(ctx_ + "/vr.tar", make_tar({{"var/", '5', ""}, {"var/run/", '5', ""}, {"var/run/x", '0', "vr"}}));
  std::string root = dst_ + "/root";
  ASSERT_TRUE(fs::mkdirs(root + "/run").ok());
  ASSERT_TRUE(fs::mkdirs(root + "/var").ok());
  ASSERT_EQ(symlink("/run", (root + "/var/run").c_str()), 0);
  CopyOp o = op({"vr.tar"}, root + "/");
  o.extract_archives = true;
  auto st = copy_into(fd_, o);
  ASSERT_TRUE(st.ok()) << st.error().str();
  EXPECT_EQ(link_of(root + "/var/run"), "/run");
  EXPECT_EQ(*fs::read_file(root + "/run/x"), "vr");
  write(ctx_ + "/esc.tar", make_tar({{"l", '2', "../../outside"}, {"l/x", '0', "x"}}));
  CopyOp e = op({"esc.tar"}, dst_ + "/esc/");
  e.extract_archives = true;
  auto est = copy_into(fd_, e);
  ASSERT_FALSE(est.ok());
  EXPECT_EQ(est.error().code(), Errc::kSecurity) << est.error().str();
  EXPECT_FALSE(fs::exists(dst_ + "/outside"));
}

// --chown: the directories the copy creates (dest and its missing parents) get the owner too,
// for a directory's contents, a file into dest/ and an unpacked archive alike; existing ones
// keep theirs. Without --chown, files from a stage keep their owners (preserve_owner).
TEST_F(CopyTest, OwnersOfCreatedDirectoriesAndKeptOwners) {
  if (geteuid() != 0) GTEST_SKIP() << "chown to other ids needs root";
  auto owner = [](const std::string& p) {
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) return std::string("missing");
    return std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
  };
  auto chowned = [&](std::vector<std::string> src, std::string dest) {
    CopyOp o = op(std::move(src), std::move(dest));
    o.uid = 300;
    o.gid = 400;
    o.extract_archives = true;
    return o;
  };
  ASSERT_TRUE(copy_into(fd_, chowned({"dir"}, dst_ + "/c/a/b/")).ok());
  for (const char* p : {"/c", "/c/a", "/c/a/b", "/c/a/b/sub", "/c/a/b/x"}) EXPECT_EQ(owner(dst_ + p), "300:400") << p;
  EXPECT_EQ(owner(dst_), "0:0");
  ASSERT_TRUE(copy_into(fd_, chowned({"a.txt"}, dst_ + "/f/x/")).ok());
  for (const char* p : {"/f", "/f/x", "/f/x/a.txt"}) EXPECT_EQ(owner(dst_ + p), "300:400") << p;
  write(ctx_ + "/t.tar", make_tar({{"sub/", '5', ""}, {"sub/t", '0', "t"}}));
  ASSERT_TRUE(copy_into(fd_, chowned({"t.tar"}, dst_ + "/out/")).ok());
  for (const char* p : {"/out", "/out/sub", "/out/sub/t"}) EXPECT_EQ(owner(dst_ + p), "300:400") << p;
  // Existing directories keep their owners.
  ASSERT_TRUE(copy_into(fd_, chowned({"b.txt"}, dst_ + "/c/")).ok());
  EXPECT_EQ(owner(dst_ + "/c/b.txt"), "300:400");
  ASSERT_EQ(lchown((ctx_ + "/b.txt").c_str(), 123, 456), 0);
  CopyOp keep;
  keep.sources = {"b.txt"};
  keep.dest = dst_ + "/kept/";
  keep.preserve_owner = true;
  ASSERT_TRUE(copy_into(fd_, keep).ok());
  EXPECT_EQ(owner(dst_ + "/kept/b.txt"), "123:456");
  EXPECT_EQ(owner(dst_ + "/kept"), "0:0");  // created without --chown: root's
  keep.preserve_owner = false;
  keep.dest = dst_ + "/reset/";
  ASSERT_TRUE(copy_into(fd_, keep).ok());
  EXPECT_EQ(owner(dst_ + "/reset/b.txt"), "0:0");
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
  ASSERT_EQ(symlink("a.txt", (ctx_ + "/dir/alink").c_str()), 0);
  auto h = hash_sources(fd_, {"dir", "a.txt"}, {}, m.get());
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, *hash_sources(fd_, {"dir", "a.txt"}));  // the manifest leaves the key alone
  EXPECT_TRUE(m->entries.count("dir/sub/y"));
  CopyOp o = op({"dir", "a.txt"}, dst_ + "/");
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
