#include "cache/cache_io.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "base/fs.h"

namespace ocib::cache {
namespace {

TypedSpec spec(const std::string& s) {
  auto o = parse_typed_spec(s);
  EXPECT_TRUE(o.ok()) << s;
  return o.ok() ? *o : TypedSpec{};
}

Status check_to(const std::string& s) {
  return check_cache_specs({spec(s)}, {});
}

Status check_from(const std::string& s) {
  return check_cache_specs({}, {spec(s)});
}

TEST(CacheSpecTest, AcceptsTheSupportedTypes) {
  EXPECT_TRUE(check_to("type=local,dest=/tmp/x,mode=max").ok());
  EXPECT_TRUE(check_to("type=registry,ref=127.0.0.1:5000/a/b:cache").ok());
  EXPECT_TRUE(check_to("type=registry,ref=127.0.0.1:5000/a/b:cache,mode=min").ok());
  EXPECT_TRUE(check_to("type=inline").ok());
  EXPECT_TRUE(check_from("type=local,src=/tmp/x").ok());
  EXPECT_TRUE(check_from("type=registry,ref=example.com/app:1").ok());
}

TEST(CacheSpecTest, RefusesWhatCannotWork) {
  auto msg = [](const Status& st) { return st.ok() ? std::string("ok") : st.error().message(); };
  EXPECT_NE(msg(check_to("type=registry")).find("needs ref="), std::string::npos);
  EXPECT_NE(msg(check_to("type=local")).find("needs dest="), std::string::npos);
  EXPECT_NE(msg(check_to("type=registry,ref=a/b:c,mode=all")).find("mode must be min or max"),
            std::string::npos);
  EXPECT_NE(msg(check_to("type=inline,mode=max")).find("mode=min"), std::string::npos);
  EXPECT_NE(msg(check_to("type=gha")).find("not supported"), std::string::npos);
  EXPECT_NE(
      msg(check_to("type=registry,ref=a/b@sha256:" + std::string(64, 'a'))).find("not a digest"),
      std::string::npos);
  EXPECT_NE(msg(check_from("type=registry")).find("needs ref="), std::string::npos);
  EXPECT_NE(msg(check_from("type=local")).find("needs src="), std::string::npos);
  EXPECT_NE(msg(check_from("type=inline")).find("not supported"), std::string::npos);
}

class CacheDirTest : public testing::Test {
 protected:
  void SetUp() override {
    auto d = fs::make_temp_dir(testing::TempDir(), "ocib-cacheio-");
    ASSERT_TRUE(d.ok());
    tmp_ = fs::TempDir(*d);
    auto st = store::Store::open(fs::join(*d, "store"));
    ASSERT_TRUE(st.ok()) << st.error().str();
    store_.emplace(std::move(*st));
    cache_ = fs::join(*d, "cache");
  }
  Status import(std::map<std::string, ImportedRecord>& into,
                std::vector<std::string>* notes = nullptr) {
    registry::Client client{registry::Options{}};
    return import_cache(
        spec("type=local,src=" + cache_), *store_, client, oci::Platform::host(),
        [notes](const std::string& m) {
          if (notes) notes->push_back(m);
        },
        into);
  }
  fs::TempDir tmp_;
  std::optional<store::Store> store_;
  std::string cache_;
};

// Export to a directory and import it back; the blob goes into another store only verified.
TEST_F(CacheDirTest, RoundTripAndVerification) {
  std::string layer = "not really a tar, but bytes with a digest";
  auto digest = store_->put_blob(layer);
  ASSERT_TRUE(digest.ok());
  std::string key(64, 'c');
  CacheRecords recs = {{key,
                        {*digest, "sha256:" + std::string(64, 'd'), oci::kMediaTypeLayerGzip,
                         static_cast<int64_t>(layer.size()), 1700000000, "[x 1/1] RUN true"}}};
  registry::Client client{registry::Options{}};
  auto done = export_cache_records(spec("type=local,dest=" + cache_), recs, *store_, client);
  ASSERT_TRUE(done.ok()) << done.error().str();

  std::map<std::string, ImportedRecord> into;
  ASSERT_TRUE(import(into).ok());
  ASSERT_EQ(into.size(), 1u);
  const ImportedRecord& r = into.at(key);
  EXPECT_EQ(r.record.digest, *digest);
  EXPECT_EQ(r.record.created, 1700000000);
  EXPECT_EQ(r.dir, cache_);

  auto other = store::Store::open(fs::join(tmp_.path(), "other"));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(fetch_cache_blob(r, *other, client).ok());
  EXPECT_EQ(*fs::read_file(other->blob_path(*digest)), layer);

  // A tampered blob in the cache directory is refused and not stored.
  auto third = store::Store::open(fs::join(tmp_.path(), "third"));
  ASSERT_TRUE(third.ok());
  ASSERT_TRUE(
      fs::write_file_atomic(fs::join(cache_, "blobs/sha256/" + digest->substr(7)), "evil").ok());
  auto bad = fetch_cache_blob(r, *third, client);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Errc::kCorrupt);
  EXPECT_FALSE(third->has_blob(*digest));
}

TEST_F(CacheDirTest, MissingIsAWarningCorruptIsAnError) {
  std::map<std::string, ImportedRecord> into;
  std::vector<std::string> notes;
  ASSERT_TRUE(import(into, &notes).ok());
  EXPECT_TRUE(into.empty());
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("no cache to import"), std::string::npos);

  ASSERT_TRUE(fs::mkdirs(cache_).ok());
  ASSERT_TRUE(fs::write_file_atomic(fs::join(cache_, "ocib-cache.json"),
                                    R"({"entries":{")" + std::string(64, 'a') +
                                        R"(":{"digest":"sha256:../../etc/passwd","size":1}}})")
                  .ok());
  auto st = import(into);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Errc::kCorrupt);
  EXPECT_TRUE(into.empty());
}

// A cache index with a wrong-typed field is an error naming the entry and field (it threw a
// nlohmann type_error, exit 134, before).
TEST_F(CacheDirTest, WrongTypedFieldsAreErrors) {
  ASSERT_TRUE(fs::mkdirs(cache_).ok());
  const std::string key(64, 'a');
  const std::string good = "\"digest\":\"sha256:" + std::string(64, 'b') + "\",\"diff_id\":\"sha256:" +
                           std::string(64, 'c') + "\",\"media_type\":\"" + oci::kMediaTypeLayerTar + "\"";
  for (auto [doc, want] : std::vector<std::pair<std::string, std::string>>{
           {"{\"entries\":{\"" + key + "\":{\"digest\":1}}}", "\"digest\" is not a string"},
           {"{\"entries\":{\"" + key + "\":{" + good + ",\"size\":\"1\"}}}", "\"size\" is not an integer"},
           {"{\"entries\":{\"" + key + "\":{" + good + ",\"size\":1,\"name\":[]}}}", "\"name\" is not a string"},
           {"{\"entries\":{\"" + key + "\":{" + good + ",\"size\":1,\"created\":\"x\"}}}", "\"created\" is not an integer"},
           {std::string(5000, '[') + std::string(5000, ']'), "nested deeper than"}}) {
    ASSERT_TRUE(fs::write_file_atomic(fs::join(cache_, "ocib-cache.json"), doc).ok());
    std::map<std::string, ImportedRecord> into;
    auto st = import(into);
    ASSERT_FALSE(st.ok()) << doc;
    EXPECT_EQ(st.error().code(), Errc::kCorrupt);
    EXPECT_NE(st.error().message().find(want), std::string::npos) << st.error().message();
    EXPECT_NE(st.error().message().find("ocib-cache.json"), std::string::npos) << st.error().message();
  }
}

TEST(InlineCacheTest, SameIndexFormat) {
  CacheRecords recs = {{std::string(64, 'e'),
                        {"sha256:" + std::string(64, '1'), "sha256:" + std::string(64, '2'),
                         oci::kMediaTypeLayerZstd, 42, 7, "step"}}};
  nlohmann::json j = inline_cache_json(recs);
  ASSERT_TRUE(j.contains("entries"));
  const auto& e = j["entries"][std::string(64, 'e')];
  EXPECT_EQ(e["digest"], "sha256:" + std::string(64, '1'));
  EXPECT_EQ(e["size"], 42);
  EXPECT_EQ(e["created"], 7);
  EXPECT_EQ(e["media_type"], oci::kMediaTypeLayerZstd);
}

}  // namespace
}  // namespace ocib::cache
