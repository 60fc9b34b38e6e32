#include "oci/platform.h"

#include <gtest/gtest.h>

namespace ocib::oci {
namespace {

TEST(Platforms, ParseNormalises) {
  auto p = parse_list("linux/amd64,linux/arm64/v8,linux/arm");
  ASSERT_TRUE(p.ok()) << p.error().str();
  ASSERT_EQ(p->size(), 3u);
  EXPECT_EQ((*p)[0].architecture, "amd64");
  EXPECT_EQ((*p)[1].architecture, "arm64");
  EXPECT_EQ((*p)[1].variant, "");  // arm64/v8 is plain arm64, as containerd has it
  EXPECT_EQ((*p)[2].variant, "v7");
  auto q = parse_list("aarch64,LINUX/X86_64");
  ASSERT_TRUE(q.ok()) << q.error().str();
  ASSERT_EQ(q->size(), 2u);
  EXPECT_EQ((*q)[0].os, "linux");
  EXPECT_EQ((*q)[0].architecture, "arm64");
  EXPECT_EQ((*q)[1].architecture, "amd64");
  ASSERT_TRUE(parse_list("windows/amd64").ok());  // any OS parses; RUN needs linux (the planner)
  EXPECT_EQ(parse_list("windows/amd64")->front().os, "windows");
  EXPECT_FALSE(parse_list("linux//amd64").ok());
  EXPECT_FALSE(parse_list("linux/arm/v7/x").ok());
  EXPECT_FALSE(parse_list("").ok());
  EXPECT_FALSE(parse_list("linux/amd64,amd64").ok());  // the same platform twice
}

TEST(Platforms, Matches) {
  EXPECT_TRUE(matches({"linux", "arm64", "v8"}, {"linux", "arm64", ""}));
  EXPECT_TRUE(matches({"linux", "aarch64", ""}, {"linux", "arm64", "v8"}));
  EXPECT_TRUE(matches({"linux", "arm", ""}, {"linux", "arm", "v7"}));
  EXPECT_FALSE(matches({"linux", "amd64", ""}, {"linux", "arm64", ""}));
  EXPECT_FALSE(matches({"linux", "arm", "v6"}, {"linux", "arm", "v7"}));
}

// A multi-platform tag names an image index; loading it for a platform gives that platform's
// manifest, and a plain image for another platform is refused.
TEST(Platforms, BestMatchPrefersTheExactVariant) {
  std::vector<Platform> c = {{"linux", "arm64", ""}, {"linux", "arm64", "v8"}, {"linux", "amd64", ""}};
  EXPECT_EQ(best_match(c, {"linux", "arm64", "v8"}), 1);
  EXPECT_EQ(best_match(c, {"linux", "arm64", ""}), 0);
  EXPECT_EQ(best_match(c, {"linux", "amd64", "v2"}), 2);
  EXPECT_EQ(best_match(c, {"linux", "s390x", ""}), -1);
  EXPECT_EQ(best_match({{"linux", "arm", "v6"}}, {"linux", "arm", "v7"}), -1);
}

TEST(Platforms, FormatAndNative) {
  EXPECT_EQ(str({"linux", "arm", "v7"}), "linux/arm/v7");
  EXPECT_EQ(str({"linux", "amd64", ""}), "linux/amd64");
  EXPECT_TRUE(runs_natively(host()));
  EXPECT_TRUE(same({"linux", "aarch64", ""}, {"linux", "arm64", "v8"}));
  EXPECT_FALSE(same({"linux", "arm", "v6"}, {"linux", "arm", "v7"}));
}

}  // namespace
}  // namespace ocib::oci
