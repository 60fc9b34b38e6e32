#include "store/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sha256.h"
#include "store/maintenance.h"

namespace ocib::store {
namespace {

class StoreTest : public testing::Test {
 protected:
  void SetUp() override {
    auto d = fs::make_temp_dir(testing::TempDir(), "ocib-store-");
    ASSERT_TRUE(d.ok());
    dir_ = fs::TempDir(*d);
    auto s = Store::open(fs::join(*d, "root"));
    ASSERT_TRUE(s.ok()) << s.error().str();
    store_.emplace(std::move(*s));
  }
  fs::TempDir dir_;
  std::optional<Store> store_;
};

TEST_F(StoreTest, BlobsAreContentAddressed) {
  auto d = store_->put_blob("hello");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "sha256:" + Sha256::hex("hello"));
  EXPECT_TRUE(store_->has_blob(*d));
  EXPECT_EQ(*fs::read_file(store_->blob_path(*d)), "hello");
  EXPECT_FALSE(store_->has_blob("sha256:../../etc/passwd"));
}

TEST_F(StoreTest, SnapshotsCommitByRenameOnce) {
  auto a = store_->make_tmp_dir("up-");
  ASSERT_TRUE(a.ok());
  struct stat st;
  ASSERT_EQ(stat(a->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_TRUE(fs::write_file_atomic(fs::join(*a, "f"), "1").ok());
  ASSERT_TRUE(store_->commit_snapshot(*a, "abcdef0123456789").ok());
  EXPECT_TRUE(store_->has_snapshot("abcdef0123456789"));
  // A second commit of the same id (a concurrent build lost the race) discards the staging dir.
  auto b = store_->make_tmp_dir("up-");
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(fs::write_file_atomic(fs::join(*b, "f"), "2").ok());
  ASSERT_TRUE(store_->commit_snapshot(*b, "abcdef0123456789").ok());
  EXPECT_FALSE(fs::exists(*b));
  EXPECT_EQ(*fs::read_file(fs::join(store_->snapshot_path("abcdef0123456789"), "f")), "1");
}

TEST_F(StoreTest, CacheRoundTripAndCorruptIsMiss) {
  std::string key = Sha256::hex("k");
  EXPECT_FALSE(store_->cache_get(key).has_value());
  CacheEntry e;
  e.snapshot = "ab";
  e.created = 7;
  e.blobs["zstd"] = {"sha256:aa", "sha256:bb", "application/vnd.oci.image.layer.v1.tar+zstd", 12};
  ASSERT_TRUE(store_->cache_put(key, e).ok());
  auto v = store_->cache_get(key);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->snapshot, "ab");
  EXPECT_EQ(v->created, 7);
  ASSERT_EQ(v->blobs.count("zstd"), 1u);
  EXPECT_EQ(v->blobs["zstd"].diff_id, "sha256:bb");
  EXPECT_EQ(v->blobs["zstd"].size, 12);
  ASSERT_TRUE(fs::write_file_atomic(fs::join(store_->root(), "cache/" + key + ".json"), "{trunc").ok());
  EXPECT_FALSE(store_->cache_get(key).has_value());
}

TEST_F(StoreTest, TagsResolve) {
  ASSERT_TRUE(store_->tag("app:1", "sha256:aa").ok());
  ASSERT_TRUE(store_->tag("app:2", "sha256:bb").ok());
  EXPECT_EQ(store_->resolve_tag("app:1"), "sha256:aa");
  EXPECT_EQ(store_->resolve_tag("app:2"), "sha256:bb");
  EXPECT_FALSE(store_->resolve_tag("nope").has_value());
}

TEST_F(StoreTest, CleanTmpRemovesOnlyDeadBuildsStaging) {
  auto mine = store_->make_tmp_dir("up-");
  ASSERT_TRUE(mine.ok());
  std::string dead = fs::join(store_->root(), "tmp/999999999-up-x");
  ASSERT_TRUE(fs::mkdirs(dead).ok());
  store_->clean_tmp();
  EXPECT_TRUE(fs::exists(*mine));
  EXPECT_FALSE(fs::exists(dead));
}

TEST_F(StoreTest, KeyLockIsExclusiveAcrossOpens) {
  std::string key = Sha256::hex("lock");
  auto l1 = store_->lock_key(key);
  ASSERT_TRUE(l1.ok());
  auto l2 = fs::FileLock::try_acquire(fs::join(store_->root(), "locks/" + key + ".lock"));
  ASSERT_TRUE(l2.ok());
  EXPECT_FALSE(l2->held());
}

// Temp files beside blobs and cache entries are in-flight writes: check skips them, prune
// removes only those whose writer (the pid in the name) is dead.
TEST_F(StoreTest, PruneRemovesOnlyAbandonedTempFiles) {
  std::string blobs = fs::join(store_->root(), "blobs/sha256");
  std::string cache = fs::join(store_->root(), "cache");
  std::string hex = Sha256::hex("in flight");
  std::string live = fs::join(blobs, hex + ".tmp-" + std::to_string(::getpid()) + "-a");
  std::string dead = fs::join(blobs, hex + ".tmp-999999999-b");
  std::string legacy = fs::join(blobs, hex + ".tmp-abcdefgh");  // no pid, fresh: kept
  std::string live_entry = fs::join(cache, hex + ".json.tmp-" + std::to_string(::getpid()) + "-c");
  std::string dead_entry = fs::join(cache, hex + ".json.tmp-999999999-d");
  for (const auto& p : {live, dead, legacy, live_entry, dead_entry})
    ASSERT_TRUE(fs::write_file_atomic(p, "partial").ok());
  auto c = check(*store_);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->problems.empty()) << c->problems.front();
  EXPECT_EQ(c->blobs, 0u);
  auto r = prune(*store_, {}, [](const std::string& p) { return fs::remove_all(p); });
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_TRUE(fs::exists(live));
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(legacy));
  EXPECT_TRUE(fs::exists(live_entry));
  EXPECT_FALSE(fs::exists(dead_entry));
  EXPECT_EQ(r->blobs, 0u);
  EXPECT_EQ(r->cache_entries, 0u);
}

// A flattened lower is kept by prune while every snapshot of its chain is, and goes with it.
TEST_F(StoreTest, FlatsAreCollectedWithTheirChain) {
  std::string key1 = Sha256::hex("k1"), key2 = Sha256::hex("k2");
  for (const char* id : {"aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb"}) {
    auto up = store_->make_tmp_dir("up-");
    ASSERT_TRUE(up.ok());
    ASSERT_TRUE(store_->commit_snapshot(*up, id).ok());
  }
  CacheEntry e1, e2;
  e1.snapshot = "aaaaaaaaaaaaaaaaaaaa";
  e2.snapshot = "bbbbbbbbbbbbbbbbbbbb";
  ASSERT_TRUE(store_->cache_put(key1, e1).ok());
  ASSERT_TRUE(store_->cache_put(key2, e2).ok());
  auto flat = [&](const char* id, std::vector<std::string> chain) {
    auto d = store_->make_tmp_dir("flat-");
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(fs::write_file_atomic(fs::join(*d, "f"), "x").ok());
    ASSERT_TRUE(store_->commit_flat(*d, id, chain).ok());
    EXPECT_TRUE(store_->has_flat(id));
  };
  flat("cccccccccccccccccccc", {"aaaaaaaaaaaaaaaaaaaa"});
  flat("dddddddddddddddddddd", {"aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb"});
  EXPECT_FALSE(store_->has_flat("../s"));
  // An interrupted flatten's chain file without its directory.
  ASSERT_TRUE(fs::write_file_atomic(store_->flat_path("eeeeeeeeeeeeeeeeeeee") + ".chain", "aa\n").ok());
  ASSERT_EQ(::unlink(fs::join(store_->root(), "cache/" + key2 + ".json").c_str()), 0);
  PruneOptions keep_recent;
  keep_recent.older_than_seconds = 3600;
  auto r = prune(*store_, keep_recent, [](const std::string& p) { return fs::remove_all(p); });
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_TRUE(store_->has_flat("cccccccccccccccccccc"));
  EXPECT_TRUE(fs::exists(store_->flat_path("cccccccccccccccccccc") + ".chain"));
  EXPECT_FALSE(store_->has_flat("dddddddddddddddddddd"));  // bbbb… went
  EXPECT_FALSE(fs::exists(store_->flat_path("dddddddddddddddddddd") + ".chain"));
  EXPECT_FALSE(fs::exists(store_->flat_path("eeeeeeeeeeeeeeeeeeee") + ".chain"));
  r = prune(*store_, {}, [](const std::string& p) { return fs::remove_all(p); });
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(store_->has_flat("cccccccccccccccccccc"));
}

}  // namespace
}  // namespace ocib::store
