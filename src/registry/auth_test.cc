#include "registry/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

#include "base/fs.h"

namespace ocib::registry {
namespace {

TEST(ChallengeTest, Bearer) {
  Challenge c = parse_challenge(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",)"
      R"(scope="repository:library/busybox:pull,push")");
  EXPECT_EQ(c.scheme, "bearer");
  EXPECT_EQ(c.params["realm"], "https://auth.docker.io/token");
  EXPECT_EQ(c.params["service"], "registry.docker.io");
  EXPECT_EQ(c.params["scope"], "repository:library/busybox:pull,push");
}

TEST(ChallengeTest, BasicAndOddSpacing) {
  Challenge c = parse_challenge(R"(Basic realm="Registry Realm")");
  EXPECT_EQ(c.scheme, "basic");
  EXPECT_EQ(c.params["realm"], "Registry Realm");
  Challenge d = parse_challenge(
      R"(bearer  Realm = "https://a/t" , error="insufficient_scope", service=plain)");
  EXPECT_EQ(d.scheme, "bearer");
  EXPECT_EQ(d.params["realm"], "https://a/t");
  EXPECT_EQ(d.params["error"], "insufficient_scope");
  EXPECT_EQ(d.params["service"], "plain");
  EXPECT_EQ(parse_challenge("").scheme, "");
}

TEST(Base64Test, RoundTrip) {
  for (std::string s : {"", "a", "ab", "abc", "user:p@ss:word", "\xff\x00\x10"}) {
    auto d = base64_decode(base64_encode(s));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64_encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_FALSE(base64_decode("!!").ok());
}

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = fs::make_temp_dir("/tmp", "ocib-cred-");
    ASSERT_TRUE(d.ok());
    dir_ = fs::TempDir(*d);
    for (const char* v : {"DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "PATH"}) {
      const char* old = std::getenv(v);
      saved_.emplace_back(v, old ? std::optional<std::string>(old) : std::nullopt);
      if (std::string(v) != "PATH") ::unsetenv(v);
    }
    ::setenv("DOCKER_CONFIG", dir_.path().c_str(), 1);
  }
  void TearDown() override {
    for (const auto& [k, v] : saved_) {
      if (v) {
        ::setenv(k.c_str(), v->c_str(), 1);
      } else {
        ::unsetenv(k.c_str());
      }
    }
  }
  void write(const std::string& name, const std::string& text, mode_t mode = 0644) {
    ASSERT_TRUE(fs::write_file_atomic(fs::join(dir_.path(), name), text, mode).ok());
  }
  // Installs docker-credential-test on PATH; it answers for one server only.
  void install_helper() {
    std::string bin = fs::join(dir_.path(), "bin");
    ASSERT_TRUE(fs::mkdirs(bin).ok());
    ASSERT_TRUE(fs::write_file_atomic(fs::join(bin, "docker-credential-test"),
                                      "#!/bin/sh\n"
                                      "[ \"$1\" = get ] || exit 2\n"
                                      "read server\n"
                                      "case \"$server\" in\n"
                                      "  helped.example:5000|https://index.docker.io/v1/)\n"
                                      "    printf '{\"ServerURL\":\"%s\",\"Username\":\"hu\","
                                      "\"Secret\":\"hs\"}' \"$server\";;\n"
                                      "  *) echo 'credentials not found in native keychain'; "
                                      "exit 1;;\n"
                                      "esac\n",
                                      0755)
                    .ok());
    std::string path = bin + ":" + (std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin");
    ::setenv("PATH", path.c_str(), 1);
  }
  fs::TempDir dir_;
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST_F(CredentialsTest, Base64Auths) {
  write("config.json", R"({"auths":{
    "https://index.docker.io/v1/":{"auth":")" +
                           base64_encode("hub:secret") + R"("},
    "127.0.0.1:5000":{"auth":")" +
                           base64_encode("me:pa:ss") + R"("},
    "http://other.example/v2/":{"username":"u2","password":"p2"}}})");
  auto c = lookup_credentials("docker.io", {});
  ASSERT_TRUE(c.ok()) << c.error().str();
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->username, "hub");
  EXPECT_EQ((*c)->password, "secret");
  c = lookup_credentials("127.0.0.1:5000", {});
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->username, "me");
  EXPECT_EQ((*c)->password, "pa:ss");
  c = lookup_credentials("other.example", {});
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->username, "u2");
  c = lookup_credentials("127.0.0.1:5001", {});
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
}

TEST_F(CredentialsTest, HelpersAndStore) {
  install_helper();
  write("config.json",
        R"({"auths":{"plain.example":{"auth":")" + base64_encode("pu:pp") +
            R"("}},"credHelpers":{"helped.example:5000":"test"},"credsStore":"test"})");
  auto c = lookup_credentials("helped.example:5000", {});
  ASSERT_TRUE(c.ok()) << c.error().str();
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->username, "hu");
  EXPECT_EQ((*c)->password, "hs");
  // auths entries win over credsStore; credsStore serves the rest.
  c = lookup_credentials("plain.example", {});
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->username, "pu");
  c = lookup_credentials("docker.io", {});
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->username, "hu");
  // The helper's "not found" is anonymous, not an error.
  c = lookup_credentials("nobody.example", {});
  ASSERT_TRUE(c.ok()) << c.error().str();
  EXPECT_FALSE(c->has_value());
}

TEST_F(CredentialsTest, MissingHelperIsAnError) {
  write("config.json", R"({"credHelpers":{"x.example":"does-not-exist-ocib"}})");
  auto c = lookup_credentials("x.example", {});
  EXPECT_FALSE(c.ok());
}

TEST_F(CredentialsTest, RegistryAuthFileFirstAndOverride) {
  write("config.json",
        R"({"auths":{"r.example":{"auth":")" + base64_encode("docker:d") + R"("}}})");
  write("auth.json", R"({"auths":{"r.example":{"auth":")" + base64_encode("podman:p") + R"("}}})");
  auto c = lookup_credentials("r.example", {});
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->username, "docker");
  ::setenv("REGISTRY_AUTH_FILE", fs::join(dir_.path(), "auth.json").c_str(), 1);
  c = lookup_credentials("r.example", {});
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->username, "podman");
  CredentialSources src;
  src.auth_file = fs::join(dir_.path(), "none.json");
  c = lookup_credentials("r.example", src);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
}

TEST_F(CredentialsTest, MalformedFile) {
  write("config.json", "{not json");
  auto c = lookup_credentials("r.example", {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), Errc::kCorrupt);
}

}  // namespace
}  // namespace ocib::registry
