#include "cli/config.h"

#include <gtest/gtest.h>

namespace ocib::cli {
namespace {

TEST(Config, ParsesEverySection) {
  Config c;
  auto st = parse_config(R"(
[store]
root = "/srv/ocib"
[build]
jobs = 3
progress = "plain"
network = "host"
[sandbox]
snapshotter = "copy"
isolation = "chroot"
[registry."docker.io"]
mirrors = ["mirror.example:5000", "m2.example"]
[registry."localhost:5000"]
insecure = true
[registry."plain.example"]
http = true
[registry."tls.example"]
insecure = false
)",
                         "/etc/ocib/ocib.toml", c);
  ASSERT_TRUE(st.ok()) << st.error().str();
  EXPECT_EQ(c.store_root, "/srv/ocib");
  EXPECT_EQ(c.jobs, 3);
  EXPECT_EQ(c.progress, "plain");
  EXPECT_EQ(c.network, "host");
  EXPECT_EQ(c.snapshotter, "copy");
  EXPECT_EQ(c.isolation, "chroot");
  EXPECT_EQ(c.mirrors["docker.io"], (std::vector<std::string>{"mirror.example:5000", "m2.example"}));
  EXPECT_EQ(c.insecure_registries, (std::vector<std::string>{"localhost:5000", "plain.example"}));
  EXPECT_EQ(c.files, std::vector<std::string>{"/etc/ocib/ocib.toml"});
}

TEST(Config, LaterFilesOverrideScalarsAndExtendLists) {
  Config c;
  ASSERT_TRUE(parse_config("[build]\njobs = 2\n[registry.\"a\"]\nmirrors = [\"m1\"]\n", "sys", c).ok());
  ASSERT_TRUE(parse_config("[build]\njobs = 6\n[registry.\"a\"]\nmirrors = [\"m2\"]\n", "user", c).ok());
  EXPECT_EQ(c.jobs, 6);
  EXPECT_EQ(c.mirrors["a"], (std::vector<std::string>{"m1", "m2"}));
}

// Each mistake names the file and the line, and says what is wrong.
void expect_error(const std::string& text, int line, const std::string& fragment) {
  Config c;
  auto st = parse_config(text, "/home/u/.config/ocib/ocib.toml", c);
  ASSERT_FALSE(st.ok()) << text;
  std::string msg = st.error().str();
  EXPECT_NE(msg.find("/home/u/.config/ocib/ocib.toml:" + std::to_string(line)), std::string::npos) << msg;
  EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
}

TEST(Config, ErrorsNameFileLineAndCause) {
  expect_error("[build]\n\njobs = \"many\"\n", 3, "build.jobs must be a number");
  expect_error("[build]\njobs = 0\n", 2, "build.jobs must be a number");
  expect_error("[sandbox]\nisolation = \"weak\"\n", 2, "sandbox.isolation must be auto, full, procfs-less or chroot");
  expect_error("[build]\nprogress = \"fancy\"\n", 2, "build.progress must be");
  expect_error("[build]\njbos = 2\n", 2, "unknown key build.jbos");
  expect_error("\n[stroe]\nroot = \"/x\"\n", 2, "unknown section [stroe]");
  expect_error("[registry.\"x\"]\nmirrors = \"m\"\n", 2, "must be an array of strings");
  expect_error("[registry.\"x\"]\ninsecure = \"yes\"\n", 2, "must be true or false");
  expect_error("[build]\njobs = = 3\n", 2, "");  // a TOML syntax error
}

}  // namespace
}  // namespace ocib::cli
