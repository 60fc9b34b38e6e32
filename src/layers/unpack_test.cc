#include "layers/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>

#include "base/fs.h"
#include "base/log.h"
#include "base/sha256.h"
#include "layers/layers.h"

namespace ocib::layers {
namespace {

namespace stdfs = std::filesystem;

// ---- building tars

struct E {
  char type = 'f';  // f file, d dir, l symlink, h hardlink, p fifo, c/b device
  std::string name;
  std::string data;
  std::string link;
  mode_t mode = 0644;
  int64_t uid = 0, gid = 0;
  int64_t mtime = 1700000000;
  std::map<std::string, std::string> xattrs;
  unsigned maj = 0, min = 0;
};

E file(std::string name, std::string data = "x", mode_t mode = 0644) {
  E e;
  e.name = std::move(name);
  e.data = std::move(data);
  e.mode = mode;
  return e;
}
E dir(std::string name, mode_t mode = 0755) {
  E e;
  e.type = 'd';
  e.name = std::move(name);
  e.mode = mode;
  return e;
}
E symlink(std::string name, std::string target) {
  E e;
  e.type = 'l';
  e.name = std::move(name);
  e.link = std::move(target);
  e.mode = 0777;
  return e;
}
E hardlink(std::string name, std::string target) {
  E e;
  e.type = 'h';
  e.name = std::move(name);
  e.link = std::move(target);
  return e;
}

la_ssize_t append_cb(struct archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

std::string make_tar(const std::vector<E>& entries) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, append_cb, nullptr), ARCHIVE_OK);
  for (const E& x : entries) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, x.name.c_str());
    archive_entry_set_perm(e, x.mode);
    archive_entry_set_uid(e, x.uid);
    archive_entry_set_gid(e, x.gid);
    archive_entry_set_mtime(e, x.mtime, 0);
    archive_entry_set_size(e, 0);
    switch (x.type) {
      case 'f':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(x.data.size()));
        break;
      case 'd':
        archive_entry_set_filetype(e, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, x.link.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, x.link.c_str());
        break;
      case 'p':
        archive_entry_set_filetype(e, AE_IFIFO);
        break;
      case 'c':
      case 'b':
        archive_entry_set_filetype(e, x.type == 'c' ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_rdevmajor(e, x.maj);
        archive_entry_set_rdevminor(e, x.min);
        break;
    }
    for (const auto& [k, v] : x.xattrs)
      archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << x.name << ": " << archive_error_string(a);
    if (x.type == 'f' && !x.data.empty()) {
      EXPECT_EQ(archive_write_data(a, x.data.data(), x.data.size()),
                static_cast<la_ssize_t>(x.data.size()));
    }
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// Raw ustar headers, for what libarchive's writer refuses to produce (NULs, lying sizes).
std::string raw_header(const std::string& name, char type, uint64_t size,
                       const std::string& link = "") {
  std::string h(512, '\0');
  std::memcpy(&h[0], name.data(), std::min<size_t>(name.size(), 100));
  std::snprintf(&h[100], 8, "%07o", 0644);
  std::snprintf(&h[108], 8, "%07o", 0);
  std::snprintf(&h[116], 8, "%07o", 0);
  if (size < (uint64_t{1} << 33)) {
    std::snprintf(&h[124], 12, "%011llo", static_cast<unsigned long long>(size));
  } else {  // GNU base-256
    h[124] = static_cast<char>(0x80);
    for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<char>((size >> (8 * i)) & 0xff);
  }
  std::snprintf(&h[136], 12, "%011o", 1700000000);
  std::memset(&h[148], ' ', 8);
  h[156] = type;
  std::memcpy(&h[157], link.data(), std::min<size_t>(link.size(), 100));
  std::memcpy(&h[257],
              "ustar\0"
              "00",
              8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(&h[148], 8, "%06o", sum);
  h[155] = ' ';
  return h;
}

std::string pad(std::string s) {
  s.resize((s.size() + 511) / 512 * 512, '\0');
  return s;
}

std::string pax_header(const std::vector<std::pair<std::string, std::string>>& recs) {
  std::string body;
  for (const auto& [k, v] : recs) {
    std::string rec = " " + k + "=" + v + "\n";
    size_t len = rec.size() + 1;
    while (std::to_string(len).size() + rec.size() != len) ++len;
    body += std::to_string(len) + rec;
  }
  return raw_header("PaxHeader", 'x', body.size()) + pad(body);
}

std::string end_blocks() { return std::string(1024, '\0'); }

std::string gzip(const std::string& in) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string zstd(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// ---- fixtures

std::string tmp_root() {
  const char* t = std::getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

std::string xattr(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

std::string slurp(const std::string& path) {
  auto r = fs::read_file(path);
  return r.ok() ? *r : std::string("<unreadable>");
}

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = fs::make_temp_dir(tmp_root(), "ocib-unpack-");
    ASSERT_TRUE(d.ok()) << d.error().str();
    parent_ = fs::TempDir(*d);
    dest_ = fs::join(parent_.path(), "dest");
    ASSERT_EQ(::mkdir(dest_.c_str(), 0755), 0);
  }

  std::string write_blob(const std::string& bytes) {
    std::string p = fs::join(parent_.path(), "blob-" + std::to_string(blobs_++));
    EXPECT_TRUE(fs::write_file_atomic(p, bytes).ok());
    return p;
  }

  Result<UnpackStats> unpack(const std::string& bytes, UnpackOptions opts = {}) {
    return unpack_layer(write_blob(bytes), dest_, opts);
  }

  std::string d(const std::string& rel) const { return fs::join(dest_, rel); }

  fs::TempDir parent_;
  std::string dest_;
  int blobs_ = 0;
};

// Root on the host (not root in a user namespace lacking uid 1000): unpack_layer chowns.
bool can_chown() {
  if (::geteuid() != 0) return false;
  std::string p = tmp_root() + "/ocib-chown-probe-" + std::to_string(::getpid());
  if (!fs::write_file_atomic(p, "").ok()) return false;
  bool ok = ::chown(p.c_str(), 1000, 1000) == 0;
  ::unlink(p.c_str());
  return ok;
}

struct stat lstat_of(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}

std::vector<E> normal_layer() {
  std::vector<E> es;
  E etc = dir("etc");
  etc.mtime = 1000;
  es.push_back(etc);
  E passwd = file("etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  passwd.mtime = 1234;
  es.push_back(passwd);
  es.push_back(symlink("etc/link", "passwd"));
  es.push_back(hardlink("etc/hard", "etc/passwd"));
  es.push_back(file("usr/bin/su", "ELF", 04755));
  E fifo;
  fifo.type = 'p';
  fifo.name = "run/fifo";
  fifo.mode = 0600;
  es.push_back(fifo);
  E x = file("x", "hello");
  x.xattrs["user.x"] = "value";
  es.push_back(x);
  es.push_back(dir("opq"));
  es.push_back(file("opq/.wh..wh..opq", ""));
  es.push_back(file("opq/keep", "k"));
  es.push_back(file(".wh.gone", ""));
  es.push_back(file("etc/.wh.old", ""));
  es.push_back(dir("ro", 0555));
  es.push_back(file("ro/file", "r", 0444));
  E owned = file("owned", "o");
  owned.uid = 1000;
  owned.gid = 1001;
  es.push_back(owned);
  return es;
}

void check_whiteout(const std::string& p) {
  struct stat st = lstat_of(p);
  if (S_ISCHR(st.st_mode)) {
    EXPECT_EQ(major(st.st_rdev), 0u);
    EXPECT_EQ(minor(st.st_rdev), 0u);
  } else {
    // Fallback when mknod(0:0) is refused.
    EXPECT_TRUE(S_ISREG(st.st_mode)) << p;
    EXPECT_EQ(xattr(p, kWhiteoutXattr), "y");
  }
  if (::geteuid() == 0) {
    EXPECT_TRUE(S_ISCHR(st.st_mode)) << "root must get a real whiteout";
  }
}

void check_normal_tree(const std::string& dest, const UnpackStats& stats) {
  auto j = [&](const char* r) { return fs::join(dest, r); };
  for (const auto& r : stats.refused) {
    // The only note a normal layer may get: root in a user namespace cannot chown.
    EXPECT_NE(r.find("chown not permitted"), std::string::npos) << r;
  }
  EXPECT_EQ(stats.entries, normal_layer().size());
  EXPECT_EQ(slurp(j("etc/passwd")), "root:x:0:0::/root:/bin/sh\n");
  EXPECT_EQ(lstat_of(j("etc")).st_mtim.tv_sec, 1000);
  EXPECT_EQ(lstat_of(j("etc/passwd")).st_mtim.tv_sec, 1234);
  EXPECT_EQ(stdfs::read_symlink(j("etc/link")).string(), "passwd");
  EXPECT_EQ(lstat_of(j("etc/hard")).st_ino, lstat_of(j("etc/passwd")).st_ino);
  struct stat su = lstat_of(j("usr/bin/su"));
  EXPECT_EQ(su.st_mode & 07777, 04755u);
  EXPECT_TRUE(S_ISDIR(lstat_of(j("usr/bin")).st_mode));
  struct stat fifo = lstat_of(j("run/fifo"));
  EXPECT_TRUE(S_ISFIFO(fifo.st_mode));
  EXPECT_EQ(fifo.st_mode & 0777, 0600u);
  EXPECT_EQ(xattr(j("x"), "user.x"), "value");
  EXPECT_EQ(xattr(j("opq"), "user.overlay.opaque"), "y");
  EXPECT_EQ(slurp(j("opq/keep")), "k");
  EXPECT_FALSE(fs::exists(j("opq/.wh..wh..opq")));
  check_whiteout(j("gone"));
  check_whiteout(j("etc/old"));
  EXPECT_FALSE(fs::exists(j(".wh.gone")));
  EXPECT_EQ(lstat_of(j("ro")).st_mode & 07777, 0555u);
  EXPECT_EQ(slurp(j("ro/file")), "r");
  struct stat owned = lstat_of(j("owned"));
  if (can_chown()) {
    EXPECT_EQ(owned.st_uid, 1000u);
    EXPECT_EQ(owned.st_gid, 1001u);
    EXPECT_EQ(xattr(j("owned"), kOwnerXattr), "");
  } else {
    EXPECT_NE(owned.st_uid, 1000u);
    EXPECT_EQ(xattr(j("owned"), kOwnerXattr), "1000:1001");
    EXPECT_EQ(xattr(j("etc/passwd"), kOwnerXattr), "");  // 0:0 is not recorded
  }
}

TEST_F(UnpackTest, NormalLayerRoundTrip) {
  std::string tar = make_tar(normal_layer());
  UnpackOptions opts;
  opts.expected_diff_id = "sha256:" + Sha256::hex(tar);
  auto r = unpack(tar, opts);
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->diff_id, opts.expected_diff_id);
  check_normal_tree(dest_, *r);
  EXPECT_EQ(r->bytes, 26u + 3 + 5 + 1 + 1 + 1);
}

TEST_F(UnpackTest, GzipCompressed) {
  std::string tar = make_tar(normal_layer());
  UnpackOptions opts;
  opts.expected_diff_id = "sha256:" + Sha256::hex(tar);
  auto r = unpack(gzip(tar), opts);
  ASSERT_TRUE(r.ok()) << r.error().str();
  check_normal_tree(dest_, *r);
}

TEST_F(UnpackTest, GzipConcatenatedMembers) {
  std::string tar = make_tar(normal_layer());
  size_t half = tar.size() / 2;
  UnpackOptions opts;
  opts.expected_diff_id = "sha256:" + Sha256::hex(tar);
  auto r = unpack(gzip(tar.substr(0, half)) + gzip(tar.substr(half)), opts);
  ASSERT_TRUE(r.ok()) << r.error().str();
  check_normal_tree(dest_, *r);
}

TEST_F(UnpackTest, ZstdCompressed) {
  std::string tar = make_tar(normal_layer());
  UnpackOptions opts;
  opts.expected_diff_id = "sha256:" + Sha256::hex(tar);
  auto r = unpack(zstd(tar), opts);
  ASSERT_TRUE(r.ok()) << r.error().str();
  check_normal_tree(dest_, *r);
}

TEST_F(UnpackTest, DiffIdIncludesTrailingPadding) {
  std::string tar = make_tar({file("a", "1")}) + std::string(10240, '\0');
  UnpackOptions opts;
  opts.expected_diff_id = "sha256:" + Sha256::hex(tar);
  auto r = unpack(gzip(tar), opts);
  ASSERT_TRUE(r.ok()) << r.error().str();
}

TEST_F(UnpackTest, DiffIdMismatchNamesBoth) {
  std::string tar = make_tar({file("a", "1")});
  UnpackOptions opts;
  opts.expected_diff_id = "sha256:" + std::string(64, '0');
  auto r = unpack(zstd(tar), opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Errc::kCorrupt);
  std::string msg = r.error().str();
  EXPECT_NE(msg.find(opts.expected_diff_id), std::string::npos) << msg;
  EXPECT_NE(msg.find("sha256:" + Sha256::hex(tar)), std::string::npos) << msg;
  // The partial tree stays for the caller to delete.
  EXPECT_TRUE(fs::exists(d("a")));
  opts.verify_diff_id = false;
  EXPECT_TRUE(fs::remove_all(dest_).ok());
  ASSERT_EQ(::mkdir(dest_.c_str(), 0755), 0);
  EXPECT_TRUE(unpack(zstd(tar), opts).ok());
}

TEST_F(UnpackTest, LiteralWhiteoutDeviceIsKept) {
  E c;
  c.type = 'c';
  c.name = "wh";
  c.mode = 0;
  auto r = unpack(make_tar({c}));
  ASSERT_TRUE(r.ok()) << r.error().str();
  ASSERT_TRUE(r->refused.empty()) << r->refused.front();
  struct stat st = lstat_of(d("wh"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
}

// The snapshot format is what pack_dir reads: whiteouts and opaque markers come back out.
TEST_F(UnpackTest, PackSideReadsSnapshot) {
  auto r = unpack(make_tar(normal_layer()));
  ASSERT_TRUE(r.ok()) << r.error().str();
  if (!S_ISCHR(lstat_of(d("gone")).st_mode)) GTEST_SKIP() << "whiteouts fell back to xattrs";
  std::string out = fs::join(parent_.path(), "repacked.tar");
  PackOptions po;
  po.compression = Compression::kNone;
  auto blob = pack_dir(dest_, out, po);
  ASSERT_TRUE(blob.ok()) << blob.error().str();
  std::vector<std::string> names;
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  ASSERT_EQ(archive_read_open_filename(a, out.c_str(), 1 << 16), ARCHIVE_OK);
  struct archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK)
    names.emplace_back(archive_entry_pathname(e));
  archive_read_free(a);
  auto has = [&](const std::string& n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  EXPECT_TRUE(has(".wh.gone"));
  EXPECT_TRUE(has("etc/.wh.old"));
  EXPECT_TRUE(has("opq/.wh..wh..opq"));
  EXPECT_TRUE(has("etc/passwd"));
  EXPECT_TRUE(has("usr/bin/su"));
}

TEST_F(UnpackTest, TruncatedGzipFails) {
  std::string gz = gzip(make_tar({file("a", std::string(100000, 'a'))}));
  auto r = unpack(gz.substr(0, gz.size() / 2));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Errc::kCorrupt) << r.error().str();
}

TEST_F(UnpackTest, ChownsThroughIdMappingAsRoot) {
  if (!can_chown()) GTEST_SKIP() << "chown needs root on the host";
  IdMapping ids;
  ids.uids = {{0, 100000, 65536}};
  ids.gids = {{0, 200000, 65536}};
  E f = file("f");
  f.uid = 5;
  f.gid = 6;
  E s = symlink("s", "f");
  s.uid = 7;
  UnpackOptions opts;
  opts.ids = &ids;
  auto r = unpack(make_tar({dir("d"), f, s}), opts);
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(lstat_of(d("f")).st_uid, 100005u);
  EXPECT_EQ(lstat_of(d("f")).st_gid, 200006u);
  EXPECT_EQ(lstat_of(d("s")).st_uid, 100007u);
  EXPECT_EQ(lstat_of(d("d")).st_uid, 100000u);
}

TEST_F(UnpackTest, DeviceNodesAsRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod of real devices needs root";
  E c;
  c.type = 'c';
  c.name = "dev/null";
  c.maj = 1;
  c.min = 3;
  auto r = unpack(make_tar({c}));
  ASSERT_TRUE(r.ok()) << r.error().str();
  if (!r->refused.empty()) GTEST_SKIP() << "no CAP_MKNOD: " << r->refused.front();
  struct stat st = lstat_of(d("dev/null"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
}

// ---- hostile corpus. Each tar is generated here (libarchive, or raw headers for what the
// writer will not produce); dest sits in a parent holding canaries, and everything outside dest
// must be byte-for-byte unchanged afterwards.

enum class Expect { kOk, kRefused, kError, kEither };

struct Hostile {
  std::string name;
  std::function<std::string(const std::string& parent)> make;
  Expect expect;
  std::function<void(const std::string& dest, const UnpackStats&)> check;
};

std::map<std::string, std::string> snapshot_outside(const std::string& parent,
                                                    const std::string& dest) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (auto it = stdfs::recursive_directory_iterator(parent, ec);
       it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    std::string p = it->path().string();
    if (p == dest) {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st {};
    ::lstat(p.c_str(), &st);
    std::string desc = std::to_string(st.st_mode) + ":" + std::to_string(st.st_uid) + ":" +
                       std::to_string(st.st_nlink) + ":" + std::to_string(st.st_mtim.tv_sec) + ":" +
                       xattr(p, "user.overlay.opaque");
    if (S_ISREG(st.st_mode)) desc += ":" + slurp(p);
    if (S_ISLNK(st.st_mode)) desc += ":" + stdfs::read_symlink(p).string();
    out[p] = desc;
  }
  return out;
}

bool refused_has(const UnpackStats& s, const std::string& needle) {
  for (const auto& r : s.refused) {
    if (r.find(needle) != std::string::npos) return true;
  }
  return false;
}

std::vector<Hostile> hostile_corpus() {
  std::vector<Hostile> c;
  auto tar = [](std::vector<E> es) { return [es](const std::string&) { return make_tar(es); }; };
  auto no_check = [](const std::string&, const UnpackStats&) {};

  c.push_back({"dotdot_file", tar({file("../escape.txt", "pwned")}), Expect::kRefused, no_check});
  c.push_back({"dotdot_nested", tar({file("a/b/../../../escape.txt", "pwned")}), Expect::kRefused,
               no_check});
  c.push_back({"dotdot_dir", tar({dir("../evil_dir")}), Expect::kRefused, no_check});
  c.push_back(
      {"dotdot_symlink_name", tar({symlink("../evil_link", "/etc")}), Expect::kRefused, no_check});
  c.push_back({"absolute_file", tar({file("/abs.txt", "in")}), Expect::kOk,
               [](const std::string& dest, const UnpackStats&) {
                 EXPECT_EQ(slurp(fs::join(dest, "abs.txt")), "in");
               }});
  c.push_back({"absolute_into_parent",
               [](const std::string& p) { return make_tar({file(p + "/canary.txt", "pwned")}); },
               Expect::kOk,
               [](const std::string& dest, const UnpackStats&) {
                 EXPECT_TRUE(fs::exists(dest + fs::dirname(dest) + "/canary.txt"));
               }});
  c.push_back({"symlink_abs_then_write_through",
               [](const std::string& p) {
                 return make_tar({symlink("a", p + "/sibling"), file("a/pwned.txt", "pwned")});
               },
               Expect::kRefused, no_check});
  c.push_back({"symlink_rel_then_write_through",
               tar({symlink("b", "../sibling"), file("b/pwned.txt", "pwned")}), Expect::kRefused,
               no_check});
  c.push_back({"symlink_etc_passwd", tar({symlink("a", "/etc"), file("a/passwd", "pwned")}),
               Expect::kRefused, no_check});
  c.push_back(
      {"symlink_chain",
       [](const std::string& p) {
         return make_tar({symlink("c", "d"), symlink("d", p), file("c/sibling/p.txt", "x")});
       },
       Expect::kRefused, no_check});
  c.push_back({"symlink_then_overwrite_leaf",
               [](const std::string& p) {
                 return make_tar({symlink("s", p + "/canary.txt"), file("s", "replaced")});
               },
               Expect::kOk,
               [](const std::string& dest, const UnpackStats&) {
                 EXPECT_EQ(slurp(fs::join(dest, "s")), "replaced");
               }});
  c.push_back({"symlink_then_dir_over",
               [](const std::string& p) {
                 return make_tar({symlink("s", p + "/sibling"), dir("s"), file("s/x", "inside")});
               },
               Expect::kOk,
               [](const std::string& dest, const UnpackStats&) {
                 EXPECT_TRUE(S_ISDIR(lstat_of(fs::join(dest, "s")).st_mode));
                 EXPECT_EQ(slurp(fs::join(dest, "s/x")), "inside");
               }});
  c.push_back({"hardlink_abs_outside",
               [](const std::string& p) { return make_tar({hardlink("h", p + "/canary.txt")}); },
               Expect::kRefused, no_check});
  c.push_back(
      {"hardlink_dotdot", tar({hardlink("h", "../canary.txt")}), Expect::kRefused, no_check});
  c.push_back({"hardlink_to_symlink_outside",
               [](const std::string& p) {
                 return make_tar({symlink("s", p + "/canary.txt"), hardlink("h", "s")});
               },
               Expect::kEither,
               [](const std::string& dest, const UnpackStats&) {
                 struct stat st {};
                 // Either refused, or a link to the symlink itself (never its target).
                 if (::lstat(fs::join(dest, "h").c_str(), &st) == 0) {
                   EXPECT_TRUE(S_ISLNK(st.st_mode));
                 }
               }});
  c.push_back({"hardlink_through_symlink_parent",
               [](const std::string& p) {
                 return make_tar({symlink("s", p), hardlink("h", "s/canary.txt")});
               },
               Expect::kRefused, no_check});
  c.push_back({"hardlink_then_overwrite",
               tar({file("t", "orig"), hardlink("h", "t"), file("h", "new")}), Expect::kOk,
               [](const std::string& dest, const UnpackStats&) {
                 EXPECT_EQ(slurp(fs::join(dest, "t")), "orig");
                 EXPECT_EQ(slurp(fs::join(dest, "h")), "new");
               }});
  c.push_back(
      {"hardlink_to_directory", tar({dir("dd"), hardlink("h", "dd")}), Expect::kRefused, no_check});
  c.push_back({"duplicate_entries", tar({file("dup", "one"), file("dup", "two")}), Expect::kOk,
               [](const std::string& dest, const UnpackStats&) {
                 EXPECT_EQ(slurp(fs::join(dest, "dup")), "two");
               }});
  c.push_back({"dir_replaced_by_file", tar({dir("x"), file("x/y", "1"), file("x", "file")}),
               Expect::kOk, [](const std::string& dest, const UnpackStats&) {
                 EXPECT_EQ(slurp(fs::join(dest, "x")), "file");
               }});
  c.push_back({"file_replaced_by_dir", tar({file("x", "f"), dir("x"), file("x/y", "1")}),
               Expect::kOk, [](const std::string& dest, const UnpackStats&) {
                 EXPECT_EQ(slurp(fs::join(dest, "x/y")), "1");
               }});
  c.push_back({"huge_declared_size",
               [](const std::string&) {
                 return raw_header("huge", '0', uint64_t{100} << 30) + std::string(4096, 'A');
               },
               Expect::kError, no_check});
  c.push_back(
      {"truncated_data",
       [](const std::string&) { return raw_header("short", '0', 100000) + std::string(512, 'A'); },
       Expect::kError, no_check});
  c.push_back({"nul_in_pax_path",
               [](const std::string&) {
                 std::string name("ok\0/../../escape.txt", 20);
                 return pax_header({{"path", name}}) + raw_header("placeholder", '0', 5) +
                        pad("pwned") + end_blocks();
               },
               Expect::kEither, no_check});
  c.push_back({"nul_in_ustar_name",
               [](const std::string&) {
                 return raw_header(std::string("n\0/../../escape", 15), '0', 1) + pad("x") +
                        end_blocks();
               },
               Expect::kEither, no_check});
  c.push_back(
      {"long_component", tar({file(std::string(300, 'a'), "x")}), Expect::kRefused, no_check});
  c.push_back({"long_path",
               [](const std::string&) {
                 std::string n;
                 while (n.size() < 5000) n += "dd/";
                 return make_tar({file(n + "f", "x")});
               },
               Expect::kRefused, no_check});
  c.push_back({"setuid_file", tar({file("bin/su", "x", 06755)}), Expect::kOk,
               [](const std::string& dest, const UnpackStats&) {
                 EXPECT_EQ(lstat_of(fs::join(dest, "bin/su")).st_mode & 07777, 06755u);
               }});
  c.push_back({"device_nodes",
               [](const std::string&) {
                 E cdev;
                 cdev.type = 'c';
                 cdev.name = "dev/mem";
                 cdev.maj = 1;
                 cdev.min = 1;
                 E bdev = cdev;
                 bdev.type = 'b';
                 bdev.name = "dev/sda";
                 bdev.maj = 8;
                 bdev.min = 0;
                 return make_tar({cdev, bdev});
               },
               Expect::kEither,
               [](const std::string& dest, const UnpackStats& s) {
                 if (::geteuid() != 0) {
                   EXPECT_TRUE(refused_has(s, "device node"));
                   EXPECT_FALSE(fs::exists(fs::join(dest, "dev/mem")));
                 }
               }});
  c.push_back({"whiteout_dot_and_dotdot",
               tar({file(".wh..", ""), file(".wh...", ""), file("sub/.wh...", "")}),
               Expect::kRefused,
               [](const std::string&, const UnpackStats& s) { EXPECT_EQ(s.refused.size(), 3u); }});
  c.push_back(
      {"whiteout_outside", tar({file("../.wh.canary.txt", "")}), Expect::kRefused, no_check});
  c.push_back({"whiteout_through_symlink",
               [](const std::string& p) {
                 return make_tar({symlink("a", p), file("a/.wh.canary.txt", "")});
               },
               Expect::kRefused, no_check});
  c.push_back(
      {"opaque_in_root",
       tar({file(".wh..wh..opq", ""), file("./.wh..wh..opq", ""), file("/.wh..wh..opq", "")}),
       Expect::kRefused, [](const std::string& dest, const UnpackStats& s) {
         EXPECT_EQ(s.refused.size(), 3u);
         EXPECT_EQ(xattr(dest, "user.overlay.opaque"), "");
       }});
  c.push_back(
      {"opaque_outside", tar({file("../sibling/.wh..wh..opq", "")}), Expect::kRefused, no_check});
  c.push_back({"opaque_through_symlink",
               [](const std::string& p) {
                 return make_tar({symlink("a", p + "/sibling"), file("a/.wh..wh..opq", "")});
               },
               Expect::kRefused, no_check});
  c.push_back({"overlay_xattr_smuggling",
               [](const std::string&) {
                 E x = file("x", "1");
                 x.xattrs["user.overlay.redirect"] = "/etc";
                 x.xattrs["user.overlay.metacopy"] = "";
                 x.xattrs["user.ocib.owner"] = "0:0";
                 return make_tar({x});
               },
               Expect::kRefused,
               [](const std::string& dest, const UnpackStats&) {
                 EXPECT_EQ(xattr(fs::join(dest, "x"), "user.overlay.redirect"), "");
               }});
  c.push_back({"entry_replaces_root",
               [](const std::string&) {
                 return raw_header(".", '0', 1) + pad("x") + raw_header("/", '2', 0, "/etc") +
                        end_blocks();
               },
               Expect::kRefused,
               [](const std::string& dest, const UnpackStats& s) {
                 EXPECT_EQ(s.refused.size(), 2u);
                 EXPECT_TRUE(fs::is_dir(dest));
               }});
  c.push_back({"many_entries_bomb",
               [](const std::string&) {
                 std::vector<E> es;
                 // File creation dominates (~0.3 ms each on ext4); 5000 shows streaming well.
                 for (int i = 0; i < 5000; ++i) es.push_back(file("bomb/" + std::to_string(i), ""));
                 return make_tar(es);
               },
               Expect::kOk,
               [](const std::string&, const UnpackStats& s) { EXPECT_EQ(s.entries, 5000u); }});
  c.push_back({"not_a_tar", [](const std::string&) { return std::string(4096, 'Z'); },
               Expect::kError, no_check});
  c.push_back(
      {"gzip_garbage",
       [](const std::string&) { return std::string("\x1f\x8b\x08\x00garbage-garbage", 19); },
       Expect::kError, no_check});
  return c;
}

// Makes parent/{canary.txt, sibling/canary.txt, sibling/dir/} and an empty parent/dest.
void make_sandbox(const std::string& parent) {
  ASSERT_EQ(::mkdir((parent + "/dest").c_str(), 0755), 0);
  ASSERT_TRUE(fs::write_file_atomic(parent + "/canary.txt", "canary").ok());
  ASSERT_TRUE(fs::mkdirs(parent + "/sibling/dir").ok());
  ASSERT_TRUE(fs::write_file_atomic(parent + "/sibling/canary.txt", "canary2").ok());
}

// Unpacks `blob` into parent/dest and checks that nothing outside dest changed and that the
// outcome matches `expect`.
Result<UnpackStats> run_hostile(const std::string& label, const std::string& parent,
                                const std::string& blob, Expect expect) {
  std::string dest = parent + "/dest";
  auto before = snapshot_outside(parent, dest);
  auto r = unpack_layer(blob, dest, {});
  EXPECT_EQ(snapshot_outside(parent, dest), before);
  for (const char* n : {"/escape.txt", "/evil_dir", "/evil_link", "/pwned.txt"}) {
    EXPECT_FALSE(fs::exists(fs::dirname(parent) + n)) << n;
  }
  switch (expect) {
    case Expect::kOk:
      EXPECT_TRUE(r.ok()) << r.error().str();
      break;
    case Expect::kRefused:
      EXPECT_TRUE(r.ok()) << r.error().str();
      if (r.ok()) {
        EXPECT_FALSE(r->refused.empty());
      }
      break;
    case Expect::kError:
      EXPECT_FALSE(r.ok());
      if (!r.ok()) {
        EXPECT_FALSE(r.error().str().empty());
      }
      break;
    case Expect::kEither:
      break;
  }
  if (r.ok()) {
    for (const auto& why : r->refused) {
      std::string w =
          why.size() <= 140 ? why : why.substr(0, 50) + "..." + why.substr(why.size() - 80);
      std::cerr << "  [" << label << "] refused " << w << "\n";
    }
  } else {
    std::cerr << "  [" << label << "] error: " << r.error().str() << "\n";
  }
  return r;
}

TEST(UnpackHostile, CorpusNeverEscapesDest) {
  auto corpus = hostile_corpus();
  ASSERT_GE(corpus.size(), 20u);
  for (const Hostile& h : corpus) {
    SCOPED_TRACE(h.name);
    auto tmp = fs::make_temp_dir(tmp_root(), "ocib-hostile-");
    ASSERT_TRUE(tmp.ok());
    fs::TempDir guard(*tmp);
    std::string parent = *fs::real_path(*tmp);
    make_sandbox(parent);
    std::string blob = parent + "/layer.tar";
    ASSERT_TRUE(fs::write_file_atomic(blob, h.make(parent)).ok());
    auto r = run_hostile(h.name, parent, blob, h.expect);
    if (r.ok()) h.check(parent + "/dest", *r);
  }
}

// The second corpus comes from Python's tarfile (tests/hostile/gen_hostile.py): GNU @LongLink
// names, ustar prefixes, gzip.
TEST(UnpackHostile, PythonTarfileCorpus) {
  std::string script = fs::dirname(__FILE__) + "/../../tests/hostile/gen_hostile.py";
  if (!fs::exists(script)) GTEST_SKIP() << "no " << script;
  if (std::system("python3 -c 'import tarfile' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3 not available";
  }
  auto tars = fs::make_temp_dir(tmp_root(), "ocib-hostile-tars-");
  auto sb = fs::make_temp_dir(tmp_root(), "ocib-hostile-py-");
  ASSERT_TRUE(tars.ok() && sb.ok());
  fs::TempDir g1(*tars), g2(*sb);
  std::string parent = *fs::real_path(*sb);
  make_sandbox(parent);
  std::string cmd = "python3 '" + script + "' '" + *tars + "' '" + parent + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  int n = 0;
  for (const auto& de : stdfs::directory_iterator(*tars)) {
    std::string name = de.path().filename().string();
    SCOPED_TRACE(name);
    Expect e = name.starts_with("ok__")        ? Expect::kOk
               : name.starts_with("refused__") ? Expect::kRefused
               : name.starts_with("error__")   ? Expect::kError
                                               : Expect::kEither;
    ASSERT_TRUE(fs::remove_all(parent + "/dest").ok());
    ASSERT_EQ(::mkdir((parent + "/dest").c_str(), 0755), 0);
    (void)run_hostile(name, parent, de.path().string(), e);
    ++n;
  }
  EXPECT_GE(n, 10);
}

// Refused entries are reported, not dropped silently: the stats list them ("name: reason") and
// refused_summary() is the warning the build prints, naming the layer and the first few.
TEST(UnpackHostile, RefusedEntriesAreReported) {
  std::string script = fs::dirname(__FILE__) + "/../../tests/hostile/gen_hostile.py";
  if (!fs::exists(script)) GTEST_SKIP() << "no " << script;
  if (std::system("python3 -c 'import tarfile' >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not available";
  auto tars = fs::make_temp_dir(tmp_root(), "ocib-hostile-tars-");
  auto sb = fs::make_temp_dir(tmp_root(), "ocib-hostile-py-");
  ASSERT_TRUE(tars.ok() && sb.ok());
  fs::TempDir g1(*tars), g2(*sb);
  std::string parent = *fs::real_path(*sb);
  make_sandbox(parent);
  std::string cmd = "python3 '" + script + "' '" + *tars + "' '" + parent + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto fresh = [&] {
    ASSERT_TRUE(fs::remove_all(parent + "/dest").ok());
    ASSERT_EQ(::mkdir((parent + "/dest").c_str(), 0755), 0);
  };

  fresh();
  auto r = unpack_layer(*tars + "/refused__gz_dotdot.tar.gz", parent + "/dest", {});
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->refused, std::vector<std::string>{"../escape.txt: '..' component"});
  EXPECT_EQ(r->refused_total, 1u);
  EXPECT_EQ(refused_summary(*r, "sha256:abc"),
            "layer sha256:abc: 1 entry refused or changed: ../escape.txt: '..' component");

  fresh();
  r = unpack_layer(*tars + "/refused__pax_symlink_then_write.tar", parent + "/dest", {});
  ASSERT_TRUE(r.ok()) << r.error().str();
  ASSERT_EQ(r->refused.size(), 1u);
  EXPECT_TRUE(r->refused[0].starts_with("lnk/pwned.txt: ")) << r->refused[0];
  std::string sum = refused_summary(*r, "sha256:def");
  EXPECT_TRUE(sum.starts_with("layer sha256:def: 1 entry refused or changed: lnk/pwned.txt: ")) << sum;

  fresh();
  r = unpack_layer(*tars + "/ok__absolute_names.tar", parent + "/dest", {});
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(refused_summary(*r, "sha256:0"), "");  // nothing refused: no warning
}

TEST_F(UnpackTest, ManyRefusedEntriesAreCountedAndTheFirstNamed) {
  std::vector<E> entries;
  entries.push_back(file("../\x1b]0;owned\x07"));  // a name that is also a terminal escape
  for (int i = 0; i < 150; ++i) entries.push_back(file("../x" + std::to_string(i)));
  entries.push_back(file("fine"));
  auto r = unpack(make_tar(entries));
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->refused_total, 151u);
  EXPECT_EQ(r->refused.size(), kMaxRefusedListed);
  EXPECT_EQ(r->refused[1], "../x0: '..' component");
  EXPECT_TRUE(fs::exists(d("fine")));
  std::string sum = refused_summary(*r, "sha256:feed");
  EXPECT_EQ(sum,
            "layer sha256:feed: 151 entries refused or changed: ../\\x1b]0;owned\\x07: '..' component; "
            "../x0: '..' component; ../x1: '..' component; ../x2: '..' component; ../x3: '..' component; "
            "and 146 more");
}

}  // namespace
}  // namespace ocib::layers
