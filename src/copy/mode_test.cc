#include "copy/mode.h"

#include <gtest/gtest.h>

#include <string>

namespace ocib::copy {
namespace {

uint32_t apply(const std::string& spec, uint32_t mode, bool dir = false) {
  auto m = ModeSpec::parse(spec);
  EXPECT_TRUE(m.ok()) << spec << ": " << (m.ok() ? "" : m.error().str());
  return m.ok() ? m->apply(mode, dir) : 0xffffffff;
}

// BuildKit reads --chmod with dchapes-mode (BSD setmode with a zero umask); these agree with
// chmod(1) under `umask 0` except where BSD and GNU differ (noted).
TEST(ModeSpec, SymbolicModesAsBuildKit) {
  EXPECT_EQ(apply("go-w", 0666), 0644u);
  EXPECT_EQ(apply("go-w", 0777), 0755u);
  EXPECT_EQ(apply("u=rwX,go=rX", 0600), 0644u);
  EXPECT_EQ(apply("u=rwX,go=rX", 0700), 0755u);
  EXPECT_EQ(apply("u=rwX,go=rX", 0700, true), 0755u);
  EXPECT_EQ(apply("u=rwX,go=rX", 0600, true), 0755u);  // X: directories get x
  EXPECT_EQ(apply("a+X", 0600), 0600u);
  EXPECT_EQ(apply("u+x,g+X", 0644), 0744u);  // BSD: X looks at the mode before the whole spec (GNU: 0754)
  EXPECT_EQ(apply("+x", 0644), 0755u);       // no umask
  EXPECT_EQ(apply("a=", 0755), 0u);
  EXPECT_EQ(apply("u+s", 0755), 04755u);
  EXPECT_EQ(apply("g+s", 0755), 02755u);
  EXPECT_EQ(apply("+t", 0755), 01755u);
  EXPECT_EQ(apply("o+t", 0755), 0755u);   // BSD: t for `o` alone is ignored (GNU sets it)
  EXPECT_EQ(apply("=rw", 01777), 01666u);  // BSD: `=` without who keeps the sticky bit
  EXPECT_EQ(apply("g=u", 0740), 0770u);
  EXPECT_EQ(apply("u=rw,g=r,o=", 0777), 0640u);
  EXPECT_EQ(apply("a-x", 04755), 04644u);
  EXPECT_EQ(apply("u+r-w", 0200), 0400u);
  EXPECT_EQ(apply("o=g,g-r", 0640), 0604u);
  EXPECT_EQ(apply("go=u-w", 0751), 0755u);
  EXPECT_EQ(apply("0640", 0777), 0640u);
  EXPECT_EQ(apply("755", 0600, true), 0755u);
  EXPECT_EQ(ModeSpec::parse("0755")->octal(), 0755u);
  EXPECT_FALSE(ModeSpec::parse("go-w")->octal());
  EXPECT_EQ(ModeSpec::parse("go-w")->symbolic(), "go-w");
}

TEST(ModeSpec, BadModesAreRefusedWithBuildKitsWords) {
  for (const char* bad : {"0999", "17777", "8", "0755x"}) {
    auto m = ModeSpec::parse(bad);
    ASSERT_FALSE(m.ok()) << bad;
    EXPECT_EQ(m.error().message(), "invalid chmod parameter: '" + std::string(bad) +
                                       "'. it should be octal string and between 0 and 07777");
  }
  for (const char* bad : {"", "u", "go-q", "u+r,", "z+x", "u+r,,g+r"}) {
    auto m = ModeSpec::parse(bad);
    ASSERT_FALSE(m.ok()) << bad;
    EXPECT_NE(m.error().message().find("invalid syntax"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace ocib::copy
