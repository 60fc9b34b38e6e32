#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <locale.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <map>

#include "base/cancel.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "layers/layers.h"
#include "layers/pgzip.h"
#include "oci/image.h"
#include "oci/layout.h"

namespace ocib::layers {
namespace {

struct Entry {
  std::string name;
  mode_t type = 0;
  mode_t perm = 0;
  int64_t size = 0;
  int64_t uid = 0, gid = 0, mtime = 0;
  std::string hardlink, symlink, data;
  std::map<std::string, std::string> xattrs;
  unsigned rmajor = 0, rminor = 0;
};

std::vector<Entry> read_layer(const std::string& path) {
  std::vector<Entry> out;
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 1 << 16), ARCHIVE_OK)
      << archive_error_string(a);
  archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    Entry x;
    x.name = archive_entry_pathname(e);
    x.type = archive_entry_filetype(e);
    x.perm = archive_entry_perm(e);
    x.size = archive_entry_size(e);
    x.uid = archive_entry_uid(e);
    x.gid = archive_entry_gid(e);
    x.mtime = archive_entry_mtime(e);
    if (archive_entry_hardlink(e)) x.hardlink = archive_entry_hardlink(e);
    if (archive_entry_symlink(e)) x.symlink = archive_entry_symlink(e);
    x.rmajor = archive_entry_rdevmajor(e);
    x.rminor = archive_entry_rdevminor(e);
    const char* uname = archive_entry_uname(e);
    const char* gname = archive_entry_gname(e);
    EXPECT_TRUE(uname == nullptr || *uname == '\0') << x.name;
    EXPECT_TRUE(gname == nullptr || *gname == '\0') << x.name;
    archive_entry_xattr_reset(e);
    const char* name;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      x.xattrs[name] = std::string(static_cast<const char*>(value), size);
    }
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) x.data.append(buf, n);
    out.push_back(std::move(x));
  }
  EXPECT_EQ(rc, ARCHIVE_EOF) << archive_error_string(a);
  archive_read_free(a);
  return out;
}

const Entry* find(const std::vector<Entry>& es, const std::string& name) {
  for (const auto& e : es) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::vector<std::string> names(const std::vector<Entry>& es) {
  std::vector<std::string> v;
  for (const auto& e : es) v.push_back(e.name);
  return v;
}

int run(const std::string& cmd) { return std::system(cmd.c_str()); }

void write(const std::string& path, const std::string& data, mode_t mode = 0644) {
  ASSERT_TRUE(fs::write_file_atomic(path, data, mode).ok()) << path;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

void set_mtime(const std::string& path, int64_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
}

class PackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = fs::make_temp_dir("/tmp", "ocib-pack-test-");
    ASSERT_TRUE(t.ok());
    tmp_ = fs::TempDir(*t);
    root_ = fs::join(tmp_.path(), "upper");
    ASSERT_TRUE(fs::mkdirs(root_).ok());
  }

  std::string p(const std::string& rel) { return fs::join(root_, rel); }

  /// The common tree: files, dirs, symlink, hardlink, fifo, xattrs, an opaque dir.
  void make_tree() {
    write(p("a.txt"), "hello\n", 0640);
    ASSERT_EQ(::setxattr(p("a.txt").c_str(), "user.foo", "bar", 3, 0), 0);
    ASSERT_EQ(::setxattr(p("a.txt").c_str(), "user.overlay.origin", "x", 1, 0), 0);
    ASSERT_EQ(::setxattr(p("a.txt").c_str(), "trusted.overlay.origin", "x", 1, 0), 0);
    ASSERT_TRUE(fs::mkdirs(p("bin")).ok());
    write(p("bin/tool"), "#!/bin/sh\n", 0755);
    ASSERT_EQ(::chmod(p("bin/tool").c_str(), 04755), 0);
    ASSERT_EQ(::symlink("../a.txt", p("bin/link").c_str()), 0);
    write(p("hard1"), "linked\n");
    ASSERT_EQ(::link(p("hard1").c_str(), p("hard2").c_str()), 0);
    ASSERT_EQ(::mkfifo(p("fifo").c_str(), 0600), 0);
    ASSERT_TRUE(fs::mkdirs(p("opq")).ok());
    ASSERT_EQ(::setxattr(p("opq").c_str(), "user.overlay.opaque", "y", 1, 0), 0);
    write(p("opq/keep"), "k");
    ASSERT_TRUE(fs::mkdirs(p("sticky")).ok());
    ASSERT_EQ(::chmod(p("sticky").c_str(), 01777), 0);
    // Bigger than several gzip blocks, not trivially compressible.
    std::string big;
    uint32_t x = 12345;
    for (int i = 0; i < (3 << 20) / 4; ++i) {
      x = x * 1103515245 + 12345;
      big += std::to_string(x % 1000);
    }
    big_ = big;
    write(p("bin/big"), big);
  }

  Result<LayerBlob> pack(const std::string& name, PackOptions opts = {}) {
    return pack_dir(root_, fs::join(tmp_.path(), name), opts);
  }
  std::string out(const std::string& name) { return fs::join(tmp_.path(), name); }

  fs::TempDir tmp_;
  std::string root_;
  std::string big_;
};

TEST_F(PackTest, EntriesAndRules) {
  make_tree();
  auto blob = pack("l.tar.gz");
  ASSERT_TRUE(blob.ok()) << blob.error().str();
  EXPECT_EQ(blob->media_type, oci::kMediaTypeLayerGzip);
  auto es = read_layer(out("l.tar.gz"));
  std::vector<std::string> want = {"a.txt",    "bin/",   "bin/big", "bin/link", "bin/tool",
                                   "fifo",     "hard1",  "hard2",   "opq/",     "opq/.wh..wh..opq",
                                   "opq/keep", "sticky/"};
  EXPECT_EQ(names(es), want);

  const Entry* a = find(es, "a.txt");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, AE_IFREG);
  EXPECT_EQ(a->perm, 0640u);
  EXPECT_EQ(a->data, "hello\n");
  EXPECT_EQ(a->xattrs.size(), 1u);
  EXPECT_EQ(a->xattrs.at("user.foo"), "bar");

  EXPECT_EQ(find(es, "bin/")->type, AE_IFDIR);
  EXPECT_EQ(find(es, "bin/tool")->perm, 04755u);
  EXPECT_EQ(find(es, "bin/big")->data, big_);
  EXPECT_EQ(find(es, "bin/link")->type, AE_IFLNK);
  EXPECT_EQ(find(es, "bin/link")->symlink, "../a.txt");
  EXPECT_EQ(find(es, "fifo")->type, AE_IFIFO);
  EXPECT_EQ(find(es, "fifo")->perm, 0600u);
  EXPECT_EQ(find(es, "hard1")->data, "linked\n");
  EXPECT_EQ(find(es, "hard1")->hardlink, "");
  EXPECT_EQ(find(es, "hard2")->hardlink, "hard1");
  EXPECT_EQ(find(es, "hard2")->size, 0);
  const Entry* opq = find(es, "opq/.wh..wh..opq");
  EXPECT_EQ(opq->type, AE_IFREG);
  EXPECT_EQ(opq->size, 0);
  EXPECT_TRUE(find(es, "opq/")->xattrs.empty());
  EXPECT_EQ(find(es, "sticky/")->perm, 01777u);
  for (const auto& e : es) {
    for (const auto& [k, v] : e.xattrs) {
      EXPECT_NE(k.rfind("trusted.overlay.", 0), 0u) << e.name;
      EXPECT_NE(k.rfind("user.overlay.", 0), 0u) << e.name;
    }
  }
}

TEST_F(PackTest, TrustedOpaqueAndWhiteout) {
  if (::geteuid() != 0) GTEST_SKIP() << "whiteout char devices and trusted.* xattrs need root";
  ASSERT_TRUE(fs::mkdirs(p("d/sub")).ok());
  write(p("d/sub/f"), "x");
  if (::mknod(p("d/gone").c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
    GTEST_SKIP() << "mknod not permitted: " << std::strerror(errno);
  }
  ASSERT_EQ(::mknod(p("d/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::setxattr(p("d/sub").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  ASSERT_EQ(::setxattr(p("d").c_str(), "trusted.overlay.opaque", "n", 1, 0), 0);
  auto blob = pack("l.tar");
  ASSERT_TRUE(blob.ok()) << blob.error().str();
  auto es = read_layer(out("l.tar"));
  std::vector<std::string> want = {"d/",     "d/.wh.gone",         "d/null",
                                   "d/sub/", "d/sub/.wh..wh..opq", "d/sub/f"};
  EXPECT_EQ(names(es), want);
  const Entry* wh = find(es, "d/.wh.gone");
  EXPECT_EQ(wh->type, AE_IFREG);
  EXPECT_EQ(wh->size, 0);
  const Entry* null = find(es, "d/null");
  EXPECT_EQ(null->type, AE_IFCHR);
  EXPECT_EQ(null->rmajor, 1u);
  EXPECT_EQ(null->rminor, 3u);
  EXPECT_TRUE(find(es, "d/")->xattrs.empty());
}

TEST_F(PackTest, FuseOverlayfsXattrs) {
  ASSERT_TRUE(fs::mkdirs(p("o")).ok());
  write(p("o/f"), "x");
  if (::setxattr(p("o").c_str(), "user.fuseoverlayfs.opaque", "y", 1, 0) != 0)
    GTEST_SKIP() << "no user xattrs here: " << std::strerror(errno);
  ASSERT_EQ(::setxattr(p("o/f").c_str(), "user.fuseoverlayfs.origin", "z", 1, 0), 0);
  ASSERT_EQ(::setxattr(p("o/f").c_str(), "user.kept", "k", 1, 0), 0);
  auto blob = pack("l.tar");
  ASSERT_TRUE(blob.ok()) << blob.error().str();
  auto es = read_layer(out("l.tar"));
  std::vector<std::string> want = {"o/", "o/.wh..wh..opq", "o/f"};
  EXPECT_EQ(names(es), want);
  EXPECT_TRUE(find(es, "o/")->xattrs.empty());
  std::map<std::string, std::string> kept = {{"user.kept", "k"}};
  EXPECT_EQ(find(es, "o/f")->xattrs, kept);
}

TEST_F(PackTest, DigestsGzip) {
  make_tree();
  auto blob = pack("l.tar.gz");
  ASSERT_TRUE(blob.ok()) << blob.error().str();
  std::string gz = out("l.tar.gz");
  ASSERT_EQ(run("gzip -t " + gz), 0);
  ASSERT_EQ(run("gzip -dc " + gz + " > " + out("l.tar")), 0);
  EXPECT_EQ(blob->diff_id, "sha256:" + *Sha256::hex_file(out("l.tar")));
  EXPECT_EQ(blob->digest, "sha256:" + *Sha256::hex_file(gz));
  struct stat st {};
  ASSERT_EQ(::stat(gz.c_str(), &st), 0);
  EXPECT_EQ(blob->size, st.st_size);
  EXPECT_LT(blob->size, 3 << 20);  // it did compress
  // GNU tar reads it too.
  EXPECT_EQ(run("tar -tzf " + gz + " > /dev/null"), 0);
}

TEST_F(PackTest, DigestsZstdAndNone) {
  make_tree();
  PackOptions z;
  z.compression = Compression::kZstd;
  auto zb = pack("l.tar.zst", z);
  ASSERT_TRUE(zb.ok()) << zb.error().str();
  EXPECT_EQ(zb->media_type, oci::kMediaTypeLayerZstd);
  EXPECT_EQ(zb->digest, "sha256:" + *Sha256::hex_file(out("l.tar.zst")));
  PackOptions n;
  n.compression = Compression::kNone;
  auto nb = pack("l.tar", n);
  ASSERT_TRUE(nb.ok()) << nb.error().str();
  EXPECT_EQ(nb->media_type, oci::kMediaTypeLayerTar);
  EXPECT_EQ(nb->digest, nb->diff_id);
  EXPECT_EQ(nb->diff_id, "sha256:" + *Sha256::hex_file(out("l.tar")));
  // Same tar inside every compression.
  EXPECT_EQ(zb->diff_id, nb->diff_id);
  EXPECT_EQ(names(read_layer(out("l.tar.zst"))), names(read_layer(out("l.tar"))));
  auto gb = pack("l.tar.gz");
  ASSERT_TRUE(gb.ok());
  EXPECT_EQ(gb->diff_id, nb->diff_id);
}

TEST_F(PackTest, Deterministic) {
  make_tree();
  PackOptions one;
  one.threads = 1;
  PackOptions many;
  many.threads = 5;
  auto a = pack("a.tar.gz", one);
  auto b = pack("b.tar.gz", many);
  auto c = pack("c.tar.gz");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->digest, b->digest);
  EXPECT_EQ(a->digest, c->digest);
  EXPECT_EQ(*fs::read_file(out("a.tar.gz")), *fs::read_file(out("b.tar.gz")));
  PackOptions z1, z2;
  z1.compression = z2.compression = Compression::kZstd;
  z1.threads = 1;
  z2.threads = 3;
  auto y1 = pack("1.zst", z1), y2 = pack("2.zst", z2);
  ASSERT_TRUE(y1.ok() && y2.ok());
  EXPECT_EQ(y1->digest, y2->digest);
}

TEST_F(PackTest, ClampMtime) {
  make_tree();
  set_mtime(p("a.txt"), 2000000000);
  set_mtime(p("bin/link"), 2000000000);
  set_mtime(p("hard1"), 500);
  PackOptions none;
  none.compression = Compression::kNone;
  auto plain = pack("p.tar", none);
  ASSERT_TRUE(plain.ok());
  auto es = read_layer(out("p.tar"));
  EXPECT_EQ(find(es, "a.txt")->mtime, 2000000000);
  EXPECT_EQ(find(es, "bin/link")->mtime, 2000000000);
  PackOptions o;
  o.compression = Compression::kNone;
  o.clamp_mtime = 1000;
  auto clamped = pack("c.tar", o);
  ASSERT_TRUE(clamped.ok());
  es = read_layer(out("c.tar"));
  for (const auto& e : es) EXPECT_LE(e.mtime, 1000) << e.name;
  EXPECT_EQ(find(es, "a.txt")->mtime, 1000);
  EXPECT_EQ(find(es, "hard1")->mtime, 500);
}

TEST_F(PackTest, IdMapping) {
  make_tree();
  uid_t me = ::geteuid();
  gid_t my_gid = ::getegid();
  bool root = me == 0;
  if (root) {
    ASSERT_EQ(::lchown(p("a.txt").c_str(), 1000, 1000), 0);
    ASSERT_EQ(::lchown(p("bin").c_str(), 100005, 100007), 0);
    ASSERT_EQ(::lchown(p("bin/link").c_str(), 1000, 1000), 0);
    ASSERT_EQ(::lchown(p("hard1").c_str(), 4242, 4242), 0);  // unmapped
  }
  uid_t owner = root ? 1000 : me;
  gid_t group = root ? 1000 : my_gid;
  IdMapping m;
  m.uids = {{0, owner, 1}, {1, 100000, 65536}};
  m.gids = {{0, group, 1}, {1, 100000, 65536}};
  PackOptions o;
  o.compression = Compression::kNone;
  o.ids = &m;
  auto blob = pack("l.tar", o);
  ASSERT_TRUE(blob.ok()) << blob.error().str();
  auto es = read_layer(out("l.tar"));
  EXPECT_EQ(find(es, "a.txt")->uid, 0);
  EXPECT_EQ(find(es, "a.txt")->gid, 0);
  if (root) {
    EXPECT_EQ(find(es, "bin/")->uid, 6);
    EXPECT_EQ(find(es, "bin/")->gid, 8);
    EXPECT_EQ(find(es, "bin/link")->uid, 0);
    EXPECT_EQ(find(es, "hard1")->uid, 0);  // unmapped -> 0
    EXPECT_EQ(find(es, "hard2")->uid, 0);
    EXPECT_EQ(find(es, "opq/")->uid, 0);  // root-owned, 0 is unmapped here -> 0
  }
  // Without a mapping, ids are written as found.
  o.ids = nullptr;
  auto raw = pack("r.tar", o);
  ASSERT_TRUE(raw.ok());
  es = read_layer(out("r.tar"));
  EXPECT_EQ(find(es, "a.txt")->uid, static_cast<int64_t>(owner));
  if (root) {
    EXPECT_EQ(find(es, "bin/")->uid, 100005);
  }
}

TEST_F(PackTest, EmptyTreeAndErrors) {
  auto blob = pack("e.tar.gz");
  ASSERT_TRUE(blob.ok()) << blob.error().str();
  EXPECT_EQ(run("gzip -t " + out("e.tar.gz")), 0);
  EXPECT_TRUE(read_layer(out("e.tar.gz")).empty());
  auto missing = pack_dir(p("nope"), out("x.tar"), {});
  EXPECT_FALSE(missing.ok());
  PackOptions bad;
  bad.level = 42;
  EXPECT_FALSE(pack("y.tar.gz", bad).ok());
  EXPECT_FALSE(fs::exists(out("y.tar.gz")));
  if (::geteuid() != 0) {
    write(p("secret"), "s", 0000);
    EXPECT_FALSE(pack("z.tar.gz").ok());
    EXPECT_FALSE(fs::exists(out("z.tar.gz")));
  }
}

// An interrupted build (cancel_requested()) stops packing with kCancelled and leaves no
// output file. The request is process-wide and permanent: it is made in a child process.
TEST_F(PackTest, CancelledPackStopsAndRemovesItsOutput) {
  make_tree();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        request_cancel();
        auto blob = pack("c.tar.gz");
        bool ok = !blob.ok() && blob.error().code() == Errc::kCancelled && !fs::exists(out("c.tar.gz"));
        std::_Exit(ok ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
  // This process was not cancelled.
  EXPECT_TRUE(pack("d.tar.gz").ok());
}

TEST_F(PackTest, OddNamesAndLongPaths) {
  std::string long_dir(120, 'd');
  std::string long_file(200, 'f');
  ASSERT_TRUE(fs::mkdirs(p(long_dir + "/" + long_dir)).ok());
  write(p(long_dir + "/" + long_dir + "/" + long_file), "deep");
  write(p("caf\xc3\xa9 with space"), "utf8");
  write(p("latin\xe9"), "latin1");  // not valid UTF-8
  std::string long_target(300, 't');
  ASSERT_EQ(::symlink(long_target.c_str(), p("ln").c_str()), 0);
  auto blob = pack("l.tar.gz");
  ASSERT_TRUE(blob.ok()) << blob.error().str();
  auto es = read_layer(out("l.tar.gz"));
  ASSERT_NE(find(es, long_dir + "/" + long_dir + "/" + long_file), nullptr);
  EXPECT_EQ(find(es, long_dir + "/" + long_dir + "/" + long_file)->data, "deep");
  ASSERT_NE(find(es, "caf\xc3\xa9 with space"), nullptr);
  ASSERT_NE(find(es, "latin\xe9"), nullptr);
  EXPECT_EQ(find(es, "latin\xe9")->data, "latin1");
  EXPECT_EQ(find(es, "ln")->symlink, long_target);
  // GNU tar extracts the same names.
  std::string x = out("x");
  ASSERT_TRUE(fs::mkdirs(x).ok());
  ASSERT_EQ(run("tar -C " + x + " -xzf " + out("l.tar.gz")), 0);
  EXPECT_EQ(*fs::read_file(fs::join(x, "latin\xe9")), "latin1");
  EXPECT_EQ(*fs::read_file(fs::join(x, long_dir + "/" + long_dir + "/" + long_file)), "deep");

  // The bytes do not depend on the caller's locale.
  locale_t utf8 = ::newlocale(LC_ALL_MASK, "C.UTF-8", locale_t{});
  if (utf8 == locale_t{}) GTEST_SKIP() << "no C.UTF-8 locale";
  locale_t old = ::uselocale(utf8);
  auto again = pack("l2.tar.gz");
  ::uselocale(old);
  ::freelocale(utf8);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->digest, blob->digest);
}

std::string gunzip(const std::string& gz) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  char buf[65536];
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  } while (rc == Z_OK);
  EXPECT_EQ(rc, Z_STREAM_END);
  EXPECT_EQ(zs.avail_in, 0u);  // a single member, nothing after it
  inflateEnd(&zs);
  return out;
}

TEST(ParallelGzip, RoundTripsAtBlockEdges) {
  constexpr size_t kB = ParallelGzip::kBlockSize;
  for (size_t n : {size_t{0}, size_t{1}, kB - 1, kB, kB + 1, 5 * kB + 17}) {
    std::string in(n, '\0');
    for (size_t i = 0; i < n; ++i) in[i] = static_cast<char>("abcab\n"[i % 6] ^ (i / 7919 % 3));
    for (int threads : {1, 3}) {
      std::string gz;
      ParallelGzip pg(-1, threads, [&](const void* d, size_t len) {
        gz.append(static_cast<const char*>(d), len);
        return Status();
      });
      // Odd write sizes so writes straddle block boundaries.
      for (size_t off = 0; off < n; off += 1000) {
        ASSERT_TRUE(pg.write(in.data() + off, std::min<size_t>(1000, n - off)).ok());
      }
      ASSERT_TRUE(pg.finish().ok());
      EXPECT_EQ(gunzip(gz), in) << n << " bytes, " << threads << " threads";
      EXPECT_EQ(gz.substr(0, 4), std::string("\x1f\x8b\x08\x00", 4));
    }
  }
}

// Incompressible blocks are stored, not deflated; blocks with repeats or skewed bytes are
// still deflated; a mixed stream round-trips and does not depend on the thread count.
TEST(ParallelGzip, StoresIncompressibleBlocks) {
  constexpr size_t kB = ParallelGzip::kBlockSize;
  auto gzip = [](const std::string& in, int threads) {
    std::string gz;
    ParallelGzip pg(6, threads, [&](const void* d, size_t len) {
      gz.append(static_cast<const char*>(d), len);
      return Status();
    });
    EXPECT_TRUE(pg.write(in.data(), in.size()).ok());
    EXPECT_TRUE(pg.finish().ok());
    return gz;
  };
  uint64_t x = 88172645463325252ull;  // xorshift: reproducible pseudo-random bytes
  auto random_bytes = [&](size_t n) {
    std::string r(n, '\0');
    for (auto& c : r) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      c = static_cast<char>(x >> 24);
    }
    return r;
  };
  std::string random = random_bytes(4 * kB + 123);
  std::string gz = gzip(random, 2);
  EXPECT_EQ(gunzip(gz), random);
  // Stored: 5 bytes per stored block (three per 128 KiB block), the gzip header and trailer,
  // and the deflated 123-byte tail.
  EXPECT_LE(gz.size(), random.size() + 18 + 15 * 4 + 64);
  // deflate's own stored fallback would cut ~16 KiB blocks; the fast path stores 65535 bytes.
  EXPECT_EQ(gz.substr(10, 5), std::string("\x00\xff\xff\x00\x00", 5)) << "not stored whole";

  // 16 KiB of random bytes repeated: evenly spread bytes, but deflate finds the repeats.
  std::string chunk = random_bytes(16 << 10), repeated;
  while (repeated.size() < 2 * kB) repeated += chunk;
  std::string rgz = gzip(repeated, 2);
  EXPECT_EQ(gunzip(rgz), repeated);
  EXPECT_LT(rgz.size(), repeated.size() / 4);

  // Random, text, random: each block chooses for itself; same bytes for 1 and 3 threads.
  std::string text;
  while (text.size() < 3 * kB) text += "line " + std::to_string(text.size()) + " of some log\n";
  std::string mixed = random_bytes(2 * kB) + text + random_bytes(kB + 7);
  std::string m1 = gzip(mixed, 1), m3 = gzip(mixed, 3);
  EXPECT_EQ(m1, m3);
  EXPECT_EQ(gunzip(m1), mixed);
  EXPECT_LT(m1.size(), 3 * kB + 3 * kB / 5);
}

}  // namespace
}  // namespace ocib::layers

namespace ocib::layers {
namespace {

// End to end with the real tools: a packed layer in an OCI layout validates with
// oci-image-tool and unpacks with umoci (whiteouts and opaque markers are applied, not copied).
TEST_F(PackTest, ValidatesAndUnpacksWithRealTools) {
  if (::access("/usr/bin/oci-image-tool", X_OK) != 0 || ::access("/usr/bin/umoci", X_OK) != 0) {
    GTEST_SKIP() << "oci-image-tool or umoci not installed";
  }
  make_tree();
  auto blob = pack("layer.tar.gz");
  ASSERT_TRUE(blob.ok()) << blob.error().str();
  std::string store = out("store");
  ASSERT_TRUE(fs::mkdirs(store).ok());
  ASSERT_EQ(::rename(out("layer.tar.gz").c_str(), fs::join(store, blob->digest.substr(7)).c_str()),
            0);
  auto put = [&](const std::string& mt, const std::string& bytes) {
    std::string hex = Sha256::hex(bytes);
    EXPECT_TRUE(fs::write_file_atomic(fs::join(store, hex), bytes).ok());
    return oci::Descriptor{mt, "sha256:" + hex, static_cast<int64_t>(bytes.size()), {}, {}};
  };
  oci::ImageConfig cfg;
  cfg.platform = oci::Platform::host();
  cfg.diff_ids = {blob->diff_id};
  oci::Descriptor cd = put(oci::kMediaTypeConfig, oci::canonical(cfg.to_json()));
  oci::Descriptor ld{blob->media_type, blob->digest, blob->size, {}, {}};
  oci::Descriptor md = put(oci::kMediaTypeManifest, oci::canonical(oci::make_manifest(cd, {ld})));
  md.annotations[oci::kAnnotationRefName] = "test";
  std::string layout = out("layout");
  ASSERT_TRUE(
      oci::write_layout_dir(layout, {{md, {cd.digest, ld.digest}}}, [&](const std::string& d) {
        return fs::join(store, d.substr(7));
      }).ok());
  EXPECT_EQ(run("oci-image-tool validate --type image --ref name=test " + layout + " >/dev/null"),
            0);
  std::string bundle = out("bundle");
  ASSERT_EQ(run("umoci unpack --rootless --image " + layout + ":test " + bundle + " >/dev/null"),
            0);
  std::string rootfs = fs::join(bundle, "rootfs");
  EXPECT_EQ(*fs::read_file(fs::join(rootfs, "a.txt")), "hello\n");
  EXPECT_EQ(*fs::read_file(fs::join(rootfs, "bin/big")), big_);
  EXPECT_EQ(*fs::read_file(fs::join(rootfs, "hard2")), "linked\n");
  EXPECT_EQ(*fs::read_file(fs::join(rootfs, "opq/keep")), "k");
  EXPECT_FALSE(fs::exists(fs::join(rootfs, "opq/.wh..wh..opq")));
  struct stat st {};
  ASSERT_EQ(::stat(fs::join(rootfs, "hard1").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
  char target[64] = {};
  ASSERT_GT(::readlink(fs::join(rootfs, "bin/link").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "../a.txt");
}

}  // namespace
}  // namespace ocib::layers
