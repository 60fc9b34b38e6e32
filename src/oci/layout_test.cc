#include "oci/layout.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <map>

#include "base/fs.h"
#include "base/sha256.h"

namespace ocib::oci {
namespace {

using nlohmann::json;

bool have_tool(const char* path) { return ::access(path, X_OK) == 0; }

int run(const std::string& cmd) { return std::system(cmd.c_str()); }

/// A tiny image: a real gzip layer built with tar+gzip, its config and manifest, stored as
/// files named by hex in `store`.
struct TinyImage {
  fs::TempDir tmp;
  std::string store;
  LayoutImage image;
  Descriptor config;
  Descriptor layer;

  BlobLocator locator() const {
    return [s = store](const std::string& digest) { return fs::join(s, digest.substr(7)); };
  }

  Descriptor put(const std::string& media_type, const std::string& bytes) {
    std::string hex = Sha256::hex(bytes);
    EXPECT_TRUE(fs::write_file_atomic(fs::join(store, hex), bytes).ok());
    return Descriptor{media_type, "sha256:" + hex, static_cast<int64_t>(bytes.size()), {}, {}};
  }

  void build(const std::string& ref, const std::string& content) {
    auto t = fs::make_temp_dir("/tmp", "ocib-layout-test-");
    ASSERT_TRUE(t.ok());
    tmp = fs::TempDir(*t);
    store = fs::join(tmp.path(), "store");
    ASSERT_TRUE(fs::mkdirs(store).ok());
    std::string root = fs::join(tmp.path(), "rootfs");
    ASSERT_TRUE(fs::mkdirs(fs::join(root, "etc")).ok());
    ASSERT_TRUE(fs::write_file_atomic(fs::join(root, "etc/hello"), content).ok());
    std::string tar = fs::join(tmp.path(), "layer.tar");
    ASSERT_EQ(run("tar --sort=name --owner=0 --group=0 --mtime=@0 -C " + root + " -cf " + tar +
                  " etc && gzip -n -k " + tar),
              0);
    auto diff = Sha256::hex_file(tar);
    ASSERT_TRUE(diff.ok());
    auto gz = fs::read_file(tar + ".gz");
    ASSERT_TRUE(gz.ok());
    layer = put(kMediaTypeLayerGzip, *gz);

    ImageConfig cfg;
    cfg.platform = Platform::host();
    cfg.created = rfc3339(0);
    cfg.config.cmd = std::vector<std::string>{"/bin/sh"};
    cfg.diff_ids = {"sha256:" + *diff};
    cfg.history = {{rfc3339(0), "COPY etc /etc", "", false}};
    config = put(kMediaTypeConfig, canonical(cfg.to_json()));

    Descriptor m = put(kMediaTypeManifest, canonical(make_manifest(config, {layer})));
    m.annotations[kAnnotationRefName] = ref;
    image.manifest = m;
    image.blob_digests = {config.digest, layer.digest};
  }
};

Result<json> read_index(const std::string& dir) {
  OCIB_ASSIGN_OR_RETURN(std::string text, fs::read_file(fs::join(dir, "index.json")));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Error(Errc::kCorrupt, "bad index.json");
  return j;
}

TEST(LayoutDir, WritesLayout) {
  TinyImage img;
  img.build("latest", "hello\n");
  std::string dir = fs::join(img.tmp.path(), "layout");
  ASSERT_TRUE(write_layout_dir(dir, {img.image}, img.locator()).ok());

  auto layout = fs::read_file(fs::join(dir, "oci-layout"));
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(*layout, R"({"imageLayoutVersion":"1.0.0"})");
  auto idx = read_index(dir);
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ((*idx)["schemaVersion"], 2);
  EXPECT_EQ((*idx)["mediaType"], kMediaTypeIndex);
  ASSERT_EQ((*idx)["manifests"].size(), 1u);
  EXPECT_EQ((*idx)["manifests"][0]["digest"], img.image.manifest.digest);
  EXPECT_EQ((*idx)["manifests"][0]["annotations"][kAnnotationRefName], "latest");
  for (const auto& d : {img.image.manifest.digest, img.config.digest, img.layer.digest}) {
    std::string p = fs::join(dir, "blobs/sha256/" + d.substr(7));
    auto h = Sha256::hex_file(p);
    ASSERT_TRUE(h.ok()) << p;
    EXPECT_EQ("sha256:" + *h, d);
  }
  // Same filesystem: blobs are hardlinked.
  struct stat st {};
  ASSERT_EQ(::stat(fs::join(dir, "blobs/sha256/" + img.layer.digest.substr(7)).c_str(), &st), 0);
  EXPECT_GE(st.st_nlink, 2u);

  if (!have_tool("/usr/bin/oci-image-tool")) GTEST_SKIP() << "oci-image-tool not installed";
  // (This oci-image-tool has no "imageLayout" type; "image" validates the layout too.)
  EXPECT_EQ(run("oci-image-tool validate --type image --ref name=latest " + dir + " >/dev/null"),
            0);
}

TEST(LayoutDir, MergesIndexByRefName) {
  TinyImage a, b, c;
  a.build("v1", "a\n");
  b.build("v2", "b\n");
  c.build("v1", "c\n");  // replaces v1
  std::string dir = fs::join(a.tmp.path(), "layout");
  ASSERT_TRUE(write_layout_dir(dir, {a.image}, a.locator()).ok());
  ASSERT_TRUE(write_layout_dir(dir, {b.image}, b.locator()).ok());
  ASSERT_TRUE(write_layout_dir(dir, {c.image}, c.locator()).ok());
  auto idx = read_index(dir);
  ASSERT_TRUE(idx.ok());
  std::map<std::string, std::string> refs;
  for (const auto& m : (*idx)["manifests"]) {
    refs[m["annotations"][kAnnotationRefName]] = m["digest"];
  }
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs["v1"], c.image.manifest.digest);
  EXPECT_EQ(refs["v2"], b.image.manifest.digest);
  if (have_tool("/usr/bin/oci-image-tool")) {
    EXPECT_EQ(run("oci-image-tool validate --type image --ref name=v2 " + dir + " >/dev/null"), 0);
  }
}

TEST(LayoutDir, Errors) {
  TinyImage a;
  a.build("x", "x\n");
  std::string dir = fs::join(a.tmp.path(), "layout");
  LayoutImage bad = a.image;
  bad.blob_digests.push_back("sha256:../../etc/passwd");
  EXPECT_FALSE(write_layout_dir(dir, {bad}, a.locator()).ok());
  LayoutImage missing = a.image;
  missing.blob_digests.push_back("sha256:" + std::string(64, '0'));
  auto st = write_layout_dir(dir, {missing}, [](const std::string&) { return std::string(); });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Errc::kNotFound);
}

std::vector<std::pair<std::string, mode_t>> list_tar(const std::string& path,
                                                     std::map<std::string, std::string>* data) {
  std::vector<std::pair<std::string, mode_t>> out;
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 1 << 16), ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    out.emplace_back(archive_entry_pathname(e), archive_entry_mode(e));
    EXPECT_EQ(archive_entry_uid(e), 0);
    EXPECT_EQ(archive_entry_mtime(e), 0);
    std::string body;
    char buf[4096];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) body.append(buf, n);
    (*data)[archive_entry_pathname(e)] = body;
  }
  archive_read_free(a);
  return out;
}

TEST(LayoutTar, EntriesAndDeterminism) {
  TinyImage img;
  img.build("latest", "hello\n");
  std::string tar = fs::join(img.tmp.path(), "image.tar");
  ASSERT_TRUE(write_layout_tar(tar, {img.image}, img.locator()).ok());
  std::map<std::string, std::string> data;
  auto entries = list_tar(tar, &data);
  std::vector<std::string> hexes = {img.image.manifest.digest.substr(7),
                                    img.config.digest.substr(7), img.layer.digest.substr(7)};
  std::sort(hexes.begin(), hexes.end());
  std::vector<std::pair<std::string, mode_t>> want = {{"blobs/", AE_IFDIR | 0755},
                                                      {"blobs/sha256/", AE_IFDIR | 0755}};
  for (const auto& h : hexes) want.emplace_back("blobs/sha256/" + h, AE_IFREG | 0644);
  want.emplace_back("index.json", AE_IFREG | 0644);
  want.emplace_back("oci-layout", AE_IFREG | 0644);
  EXPECT_EQ(entries, want);
  EXPECT_EQ(data["oci-layout"], R"({"imageLayoutVersion":"1.0.0"})");
  for (const auto& h : hexes) EXPECT_EQ(Sha256::hex(data["blobs/sha256/" + h]), h);
  json idx = json::parse(data["index.json"]);
  EXPECT_EQ(idx["manifests"][0]["annotations"][kAnnotationRefName], "latest");

  std::string tar2 = fs::join(img.tmp.path(), "image2.tar");
  ASSERT_TRUE(write_layout_tar(tar2, {img.image}, img.locator()).ok());
  EXPECT_EQ(*fs::read_file(tar), *fs::read_file(tar2));

  if (have_tool("/usr/bin/skopeo")) {
    EXPECT_EQ(run("skopeo inspect --raw oci-archive:" + tar + " >/dev/null"), 0);
    EXPECT_EQ(run("skopeo inspect oci-archive:" + tar + " >/dev/null"), 0);
  }
  if (have_tool("/usr/bin/oci-image-tool")) {
    // oci-image-tool fails on any tarred layout with a layer ("unable to walk: end of walk",
    // also for GNU tar output), so validate the extracted archive instead.
    std::string x = fs::join(img.tmp.path(), "x");
    ASSERT_TRUE(fs::mkdirs(x).ok());
    ASSERT_EQ(run("tar -C " + x + " -xf " + tar), 0);
    EXPECT_EQ(run("oci-image-tool validate --type image --ref name=latest " + x + " >/dev/null"),
              0);
  }
}

TEST(LayoutTar, MissingBlobLeavesNoFile) {
  TinyImage img;
  img.build("latest", "hello\n");
  std::string tar = fs::join(img.tmp.path(), "image.tar");
  auto st = write_layout_tar(tar, {img.image}, [](const std::string&) { return std::string(); });
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(fs::exists(tar));
}

}  // namespace
}  // namespace ocib::oci
