#include "images/images.h"
#include "oci/platform.h"

#include <gtest/gtest.h>

#include "base/fs.h"
#include "registry/test_server.h"

namespace ocib::images {
namespace {

TEST(LoadImage, IndexSelectsThePlatform) {
  auto d = fs::make_temp_dir(testing::TempDir(), "ocib-images-");
  ASSERT_TRUE(d.ok());
  fs::TempDir tmp(*d);
  auto st = store::Store::open(fs::join(*d, "store"));
  ASSERT_TRUE(st.ok()) << st.error().str();
  std::map<std::string, std::string> manifests;
  std::vector<oci::Descriptor> entries;
  for (const char* arch : {"amd64", "arm64"}) {
    oci::ImageConfig cfg;
    cfg.platform = {"linux", arch, ""};
    std::string cb = oci::canonical(cfg.to_json());
    auto cd = st->put_blob(cb);
    ASSERT_TRUE(cd.ok());
    std::string mb = oci::canonical(oci::make_manifest(
        {oci::kMediaTypeConfig, *cd, static_cast<int64_t>(cb.size()), {}, {}}, {}));
    auto md = st->put_blob(mb);
    ASSERT_TRUE(md.ok());
    manifests[arch] = *md;
    entries.push_back(
        {oci::kMediaTypeManifest, *md, static_cast<int64_t>(mb.size()), {}, cfg.platform});
  }
  auto index = st->put_blob(oci::canonical(oci::make_image_index(entries)));
  ASSERT_TRUE(index.ok());
  ASSERT_TRUE(st->tag("multi:1", *index).ok());

  oci::Platform arm{"linux", "arm64", "v8"}, amd{"linux", "amd64", ""}, s390{"linux", "s390x", ""};
  auto a = load_image(*st, "multi:1", &arm);
  ASSERT_TRUE(a.ok()) << a.error().str();
  EXPECT_EQ(a->manifest_digest, manifests["arm64"]);
  EXPECT_EQ(a->config.platform.architecture, "arm64");
  auto b = load_image(*st, *index, &amd);
  ASSERT_TRUE(b.ok()) << b.error().str();
  EXPECT_EQ(b->manifest_digest, manifests["amd64"]);
  auto none = load_image(*st, "multi:1", &s390);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().str().find("linux/s390x"), std::string::npos) << none.error().str();
  auto wrong = load_image(*st, manifests["arm64"], &amd);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message().find("is for linux/arm64, not linux/amd64"), std::string::npos)
      << wrong.error().message();
  EXPECT_TRUE(load_image(*st, manifests["arm64"]).ok());  // no platform asked: any image
}

// A chain of nested indexes in the store (index -> index -> ... -> manifest) is followed to
// oci::kMaxIndexDepth levels and refused beyond, with an error (unbounded before: 20,000 levels
// overflowed the stack, exit 139; that chain is in the hostile corpus, it_hostile_docs).
TEST(LoadImage, NestedIndexChainIsBounded) {
  auto d = fs::make_temp_dir(testing::TempDir(), "ocib-images-");
  ASSERT_TRUE(d.ok());
  fs::TempDir tmp(*d);
  auto st = store::Store::open(fs::join(*d, "store"));
  ASSERT_TRUE(st.ok()) << st.error().str();
  oci::ImageConfig cfg;
  cfg.platform = oci::Platform::host();
  std::string cb = oci::canonical(cfg.to_json());
  auto cd = st->put_blob(cb);
  ASSERT_TRUE(cd.ok());
  std::string mb = oci::canonical(oci::make_manifest(
      {oci::kMediaTypeConfig, *cd, static_cast<int64_t>(cb.size()), {}, {}}, {}));
  auto md = st->put_blob(mb);
  ASSERT_TRUE(md.ok());
  oci::Descriptor top{oci::kMediaTypeManifest, *md, static_cast<int64_t>(mb.size()), {}, cfg.platform};
  std::vector<std::string> levels;  // levels[i]: the digest of an index i+1 indexes deep
  for (int i = 0; i < oci::kMaxIndexDepth + 4; ++i) {
    std::string ib = oci::canonical(oci::make_image_index({top}));
    auto id = st->put_blob(ib);
    ASSERT_TRUE(id.ok());
    levels.push_back(*id);
    top = {oci::kMediaTypeIndex, *id, static_cast<int64_t>(ib.size()), {}, cfg.platform};
  }
  auto ok = load_image(*st, levels[oci::kMaxIndexDepth - 1]);
  ASSERT_TRUE(ok.ok()) << ok.error().str();
  EXPECT_EQ(ok->manifest_digest, *md);
  auto deep = load_image(*st, levels[oci::kMaxIndexDepth]);
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.error().message().find("nested deeper than 8 levels"), std::string::npos)
      << deep.error().message();
  auto deepest = load_image(*st, levels.back());
  ASSERT_FALSE(deepest.ok());
  EXPECT_EQ(deepest.error().code(), Errc::kCorrupt);
}

// A registry whose HEAD answers a Docker-Content-Digest that is not the digest of the manifest
// its GET serves: the first resolve pulls, the second trusts the verified local copy instead of
// pulling again (every build pulled before).
TEST(ResolveBase, LyingHeadDigestDoesNotRePull) {
  auto d = fs::make_temp_dir(testing::TempDir(), "ocib-images-");
  ASSERT_TRUE(d.ok());
  fs::TempDir tmp(*d);
  auto st = store::Store::open(fs::join(*d, "store"));
  ASSERT_TRUE(st.ok()) << st.error().str();
  oci::ImageConfig cfg;
  cfg.platform = oci::Platform::host();
  const std::string cb = oci::canonical(cfg.to_json());
  const std::string mb = oci::canonical(oci::make_manifest(
      {oci::kMediaTypeConfig, oci::digest_of(cb), static_cast<int64_t>(cb.size()), {}, {}}, {}));
  int manifest_gets = 0, blob_gets = 0, heads = 0;
  registry::testing::TestServer server([&](const registry::testing::TestRequest& r) {
    registry::testing::TestResponse out{404, {}, "{}", -1};
    if (r.target == "/v2/lib/base/manifests/1") {
      if (r.method == "HEAD") {
        heads++;
        out = {200, {{"Content-Type", oci::kMediaTypeManifest},
                     {"Docker-Content-Digest", oci::digest_of("something else")}}, mb, -1};
      } else {
        manifest_gets++;
        out = {200, {{"Content-Type", oci::kMediaTypeManifest}}, mb, -1};
      }
    } else if (r.target == "/v2/lib/base/blobs/" + oci::digest_of(cb)) {
      blob_gets++;
      out = {200, {}, cb, -1};
    }
    return out;
  });
  registry::Options o;
  o.insecure_hosts = {server.host()};
  registry::Client client(o);
  std::vector<std::string> notes;
  auto note = [&](const std::string& n) { notes.push_back(n); };
  const std::string ref = server.host() + "/lib/base:1";
  auto first = resolve_base(*st, client, ref, PullPolicy::kDefault, cfg.platform, note);
  ASSERT_TRUE(first.ok()) << first.error().str();
  EXPECT_EQ(*first, oci::digest_of(mb));
  EXPECT_EQ(blob_gets, 1);
  const int gets_after_pull = manifest_gets;
  auto second = resolve_base(*st, client, ref, PullPolicy::kDefault, cfg.platform, note);
  ASSERT_TRUE(second.ok()) << second.error().str();
  EXPECT_EQ(*second, *first);
  EXPECT_EQ(blob_gets, 1) << "the second resolve pulled again";
  EXPECT_EQ(manifest_gets, gets_after_pull + 1);  // one GET to verify, no pull
  EXPECT_GE(heads, 1);
  bool warned = false;
  for (const auto& n : notes) warned |= n.find("is not the digest of the manifest") != std::string::npos;
  EXPECT_TRUE(warned);
}

}  // namespace
}  // namespace ocib::images
