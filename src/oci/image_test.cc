#include "oci/image.h"

#include <gtest/gtest.h>

namespace ocib::oci {
namespace {

using nlohmann::json;

ImageConfig sample_config() {
  ImageConfig c;
  c.created = "2024-01-02T03:04:05Z";
  c.platform.architecture = "arm64";
  c.platform.variant = "v8";
  c.config.user = "app";
  c.config.env = {"PATH=/usr/bin:/bin", "A=b"};
  c.config.entrypoint = std::vector<std::string>{"/bin/sh", "-c"};
  c.config.cmd = std::vector<std::string>{};
  c.config.working_dir = "/srv";
  c.config.labels = {{"org.example", "x"}};
  c.config.exposed_ports = {"80/tcp", "53/udp"};
  c.config.volumes = {"/data"};
  c.config.stop_signal = "SIGTERM";
  c.config.shell = {"/bin/bash", "-c"};
  c.diff_ids = {"sha256:" + std::string(64, 'a')};
  c.history = {{"2024-01-02T03:04:05Z", "RUN true", "", false},
               {"2024-01-02T03:04:05Z", "ENV A=b", "", true}};
  return c;
}

TEST(ImageConfig, ToJsonFields) {
  json j = sample_config().to_json();
  EXPECT_EQ(j["created"], "2024-01-02T03:04:05Z");
  EXPECT_EQ(j["architecture"], "arm64");
  EXPECT_EQ(j["variant"], "v8");
  EXPECT_EQ(j["os"], "linux");
  const json& c = j["config"];
  EXPECT_EQ(c["User"], "app");
  EXPECT_EQ(c["Env"], json({"PATH=/usr/bin:/bin", "A=b"}));
  EXPECT_EQ(c["Entrypoint"], json({"/bin/sh", "-c"}));
  EXPECT_FALSE(c.contains("Cmd"));  // an empty Cmd is left out, as BuildKit (omitempty)
  EXPECT_EQ(c["WorkingDir"], "/srv");
  EXPECT_EQ(c["Labels"]["org.example"], "x");
  EXPECT_TRUE(c["ExposedPorts"]["80/tcp"].is_object());
  EXPECT_TRUE(c["ExposedPorts"]["53/udp"].is_object());
  EXPECT_TRUE(c["Volumes"]["/data"].is_object());
  EXPECT_EQ(c["StopSignal"], "SIGTERM");
  EXPECT_EQ(c["Shell"], json({"/bin/bash", "-c"}));
  EXPECT_EQ(j["rootfs"]["type"], "layers");
  EXPECT_EQ(j["rootfs"]["diff_ids"].size(), 1u);
  ASSERT_EQ(j["history"].size(), 2u);
  EXPECT_FALSE(j["history"][0].contains("empty_layer"));
  EXPECT_FALSE(j["history"][0].contains("comment"));
  EXPECT_EQ(j["history"][1]["empty_layer"], true);
}

TEST(ImageConfig, OmitsEmptyFields) {
  ImageConfig c;
  c.platform.architecture = "amd64";
  json j = c.to_json();
  EXPECT_FALSE(j.contains("created"));
  EXPECT_FALSE(j.contains("variant"));
  EXPECT_FALSE(j.contains("history"));
  EXPECT_TRUE(j["config"].is_object());
  EXPECT_TRUE(j["config"].empty());
  EXPECT_TRUE(j["rootfs"]["diff_ids"].is_array());
  EXPECT_EQ(canonical(j),
            R"({"architecture":"amd64","config":{},"os":"linux","rootfs":{"diff_ids":[],)"
            R"("type":"layers"}})");
}

TEST(ImageConfig, RoundTrip) {
  ImageConfig c = sample_config();
  auto back = ImageConfig::from_json(c.to_json());
  ASSERT_TRUE(back.ok()) << back.error().str();
  EXPECT_EQ(canonical(back->to_json()), canonical(c.to_json()));
  EXPECT_FALSE(back->config.cmd.has_value());
  EXPECT_EQ(back->platform.variant, "v8");
  EXPECT_EQ(back->history[1].empty_layer, true);
}

TEST(ImageConfig, FromJsonRejectsBadTypes) {
  EXPECT_FALSE(ImageConfig::from_json(json::array()).ok());
  json j = json::parse(R"({"architecture":"amd64","os":"linux","config":{"Env":"x"}})");
  auto r = ImageConfig::from_json(j);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Errc::kCorrupt);
  j = json::parse(R"({"architecture":5})");
  EXPECT_FALSE(ImageConfig::from_json(j).ok());
}

TEST(ImageConfig, FromDockerStyleJson) {
  // Docker writes null for unset fields.
  json j = json::parse(R"({"architecture":"amd64","os":"linux","config":{"Cmd":null,
    "Entrypoint":["/e"],"Env":null,"ExposedPorts":{"443/tcp":{}}},"rootfs":{"type":"layers",
    "diff_ids":["sha256:00"]}})");
  auto r = ImageConfig::from_json(j);
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_FALSE(r->config.cmd.has_value());
  EXPECT_EQ(r->config.entrypoint->at(0), "/e");
  EXPECT_EQ(r->config.exposed_ports, std::vector<std::string>{"443/tcp"});
}

TEST(Canonical, SortedNoSpaces) {
  json j = json::parse(R"({"b": 1, "a": {"z": [1, 2], "y": "s"}})");
  EXPECT_EQ(canonical(j), R"({"a":{"y":"s","z":[1,2]},"b":1})");
  // Invalid UTF-8 does not throw.
  json bad = std::string("\xff");
  EXPECT_FALSE(canonical(bad).empty());
}

TEST(Manifest, Fields) {
  Descriptor cfg{kMediaTypeConfig, "sha256:" + std::string(64, 'c'), 123, {}, std::nullopt};
  Descriptor l1{kMediaTypeLayerGzip, "sha256:" + std::string(64, '1'), 10, {}, std::nullopt};
  json m = make_manifest(cfg, {l1}, {{"k", "v"}});
  EXPECT_EQ(m["schemaVersion"], 2);
  EXPECT_EQ(m["mediaType"], kMediaTypeManifest);
  EXPECT_EQ(m["config"]["digest"], cfg.digest);
  EXPECT_EQ(m["config"]["size"], 123);
  EXPECT_FALSE(m["config"].contains("annotations"));
  EXPECT_EQ(m["layers"][0]["mediaType"], kMediaTypeLayerGzip);
  EXPECT_EQ(m["annotations"]["k"], "v");
  EXPECT_FALSE(make_manifest(cfg, {}).contains("annotations"));
}

TEST(Descriptor, RoundTrip) {
  Descriptor d{kMediaTypeManifest,
               "sha256:" + std::string(64, 'd'),
               7,
               {{kAnnotationRefName, "latest"}},
               Platform{"linux", "arm", "v7"}};
  json j = descriptor_json(d);
  EXPECT_EQ(j["platform"]["variant"], "v7");
  auto back = descriptor_from_json(j);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->digest, d.digest);
  EXPECT_EQ(back->size, 7);
  EXPECT_EQ(back->annotations.at(kAnnotationRefName), "latest");
  EXPECT_EQ(back->platform->architecture, "arm");
  EXPECT_FALSE(descriptor_from_json(json::parse(R"({"digest":"sha256:x"})")).ok());
}

TEST(Index, ListsEachManifestWithItsPlatform) {
  Descriptor amd{kMediaTypeManifest, "sha256:" + std::string(64, 'a'), 10, {}, Platform{"linux", "amd64", ""}};
  Descriptor arm{kMediaTypeManifest, "sha256:" + std::string(64, 'b'), 11, {}, Platform{"linux", "arm64", ""}};
  json j = make_image_index({amd, arm});
  EXPECT_EQ(j["schemaVersion"], 2);
  EXPECT_EQ(j["mediaType"], kMediaTypeIndex);
  ASSERT_EQ(j["manifests"].size(), 2u);
  EXPECT_EQ(j["manifests"][0]["platform"]["architecture"], "amd64");
  EXPECT_EQ(j["manifests"][1]["platform"]["architecture"], "arm64");
  EXPECT_EQ(j["manifests"][1]["digest"], arm.digest);
  EXPECT_FALSE(j["manifests"][1]["platform"].contains("variant"));
  EXPECT_FALSE(j.contains("annotations"));
}

TEST(Misc, DigestAndTime) {
  EXPECT_EQ(digest_of(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(rfc3339(1704164645), "2024-01-02T03:04:05Z");
}

TEST(Platform, Host) {
  Platform p = Platform::host();
  EXPECT_EQ(p.os, "linux");
  EXPECT_FALSE(p.architecture.empty());
#if defined(__x86_64__)
  EXPECT_EQ(p.architecture, "amd64");
#elif defined(__aarch64__)
  EXPECT_EQ(p.architecture, "arm64");
  EXPECT_EQ(p.variant, "v8");
#endif
}

}  // namespace
}  // namespace ocib::oci

namespace ocib::oci {
namespace {

// Untrusted documents: a wrong type is an error naming the place, never a nlohmann exception.
TEST(ParseJson, BoundsNestingAndReportsMalformedText) {
  auto ok = parse_json(R"({"a":[[1]]})", "doc");
  ASSERT_TRUE(ok.ok()) << ok.error().str();
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto d = parse_json(deep, "deep.json");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code(), Errc::kCorrupt);
  EXPECT_NE(d.error().message().find("deep.json: JSON nested deeper than 100"), std::string::npos)
      << d.error().message();
  std::string at_limit = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(parse_json(at_limit, "x").ok());
  auto bad = parse_json(R"({"manifests":[)", "index.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("index.json: not valid JSON"), std::string::npos);
}

TEST(IndexFromJson, WrongTypesAreErrors) {
  auto msg = [](const char* text) {
    auto j = parse_json(text, "t");
    EXPECT_TRUE(j.ok());
    auto r = index_from_json(*j, "index.json");
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.error().message();
  };
  EXPECT_NE(msg(R"({"manifests":[1]})").find(R"(index.json: "manifests"[0]: descriptor: not a JSON object)"),
            std::string::npos);
  EXPECT_NE(msg(R"({"manifests":{}})").find("is not an array"), std::string::npos);
  EXPECT_NE(msg(R"({})").find(R"(no "manifests" array)"), std::string::npos);
  EXPECT_NE(msg(R"([])").find("not a JSON object"), std::string::npos);
  EXPECT_NE(msg(R"({"mediaType":1,"manifests":[]})").find(R"("mediaType": not a string)"),
            std::string::npos);
  const std::string d = "sha256:" + std::string(64, 'a');
  EXPECT_NE(msg((R"({"manifests":[{"digest":")" + d + R"(","size":"1"}]})").c_str()).find("bad size"),
            std::string::npos);
  EXPECT_NE(msg((R"({"manifests":[{"digest":")" + d +
                 R"(","size":1,"annotations":{"org.opencontainers.image.ref.name":7}}]})")
                    .c_str())
                .find("non-string value"),
            std::string::npos);
  auto good = parse_json(R"({"manifests":[{"digest":")" + d + R"(","size":3}]})", "t");
  auto idx = index_from_json(*good, "t");
  ASSERT_TRUE(idx.ok()) << idx.error().str();
  ASSERT_EQ(idx->manifests.size(), 1u);
  EXPECT_EQ(idx->manifests[0].size, 3);
}

TEST(ManifestFromJson, WrongTypesAreErrors) {
  const std::string d = "sha256:" + std::string(64, 'b');
  const std::string cfg = R"({"mediaType":"c","digest":")" + d + R"(","size":2})";
  auto msg = [](const std::string& text) {
    auto j = parse_json(text, "t");
    EXPECT_TRUE(j.ok());
    auto r = manifest_from_json(*j, "manifest m");
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.error().message();
  };
  EXPECT_NE(msg(R"({"config":"x"})").find(R"(manifest m: "config": descriptor: not a JSON object)"),
            std::string::npos);
  EXPECT_NE(msg(R"({"layers":[]})").find("without config"), std::string::npos);
  EXPECT_NE(msg(R"({"config":)" + cfg + R"(,"layers":{}})").find("is not an array"),
            std::string::npos);
  EXPECT_NE(msg(R"({"config":)" + cfg + R"(,"layers":[1]})").find(R"("layers"[0])"),
            std::string::npos);
  EXPECT_NE(msg(R"({"config":)" + cfg + R"(,"layers":[{"digest":[1],"size":1}]})")
                .find(R"("digest": not a string)"),
            std::string::npos);
  auto good = parse_json(R"({"config":)" + cfg + R"(,"layers":[)" + cfg + "]}", "t");
  auto m = manifest_from_json(*good, "t");
  ASSERT_TRUE(m.ok()) << m.error().str();
  EXPECT_EQ(m->config.digest, d);
  EXPECT_EQ(m->layers.size(), 1u);
}

}  // namespace
}  // namespace ocib::oci
