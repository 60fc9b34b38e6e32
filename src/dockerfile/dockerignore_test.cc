#include "dockerfile/dockerignore.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace ocib::dockerfile {
namespace {

Matcher m(const std::string& text) {
  auto r = parse_dockerignore(text);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().str());
  return r.ok() ? *r : Matcher{};
}

TEST(Dockerignore, ParseCleansAndSkips) {
  Matcher x = m("\xEF\xBB\xBF# comment\n  \n ./a/b/ \n/abs\n! ./keep \n  # not a comment\n"
                "a/../c\n");
  ASSERT_EQ(x.patterns().size(), 5u);
  EXPECT_EQ(x.patterns()[0].text, "a/b");
  EXPECT_EQ(x.patterns()[1].text, "abs");
  EXPECT_EQ(x.patterns()[2].text, "keep");
  EXPECT_TRUE(x.patterns()[2].exclusion);
  EXPECT_EQ(x.patterns()[3].text, "# not a comment");
  EXPECT_EQ(x.patterns()[4].text, "c");
  EXPECT_FALSE(parse_dockerignore("!\n").ok());
  EXPECT_FALSE(parse_dockerignore("a[\n").ok());
  EXPECT_FALSE(parse_dockerignore("a\\\n").ok());
  EXPECT_TRUE(parse_dockerignore("[a-z]x\r\n").ok());
}

TEST(Dockerignore, Basic) {
  Matcher x = m("node_modules\n*.log\ntmp/*\n");
  EXPECT_TRUE(x.excluded("node_modules", true));
  EXPECT_TRUE(x.excluded("node_modules/a/b.js"));
  EXPECT_FALSE(x.excluded("src/node_modules"));  // patterns are anchored at the root
  EXPECT_TRUE(x.excluded("a.log"));
  EXPECT_FALSE(x.excluded("dir/a.log"));  // '*' does not cross '/'
  EXPECT_TRUE(x.excluded("tmp/x"));
  EXPECT_TRUE(x.excluded("tmp/x/y"));  // parent matches
  EXPECT_FALSE(x.excluded("tmp"));
  EXPECT_FALSE(x.excluded("."));
  EXPECT_FALSE(x.excluded(""));
  EXPECT_TRUE(x.excluded("./node_modules/"));
}

TEST(Dockerignore, DoubleStar) {
  Matcher x = m("**/*.go\n");
  EXPECT_TRUE(x.excluded("a.go"));
  EXPECT_TRUE(x.excluded("x/y/a.go"));
  EXPECT_FALSE(x.excluded("x/y/a.gox"));
  Matcher s = m("**/foo\n");
  EXPECT_TRUE(s.excluded("foo"));
  EXPECT_TRUE(s.excluded("a/b/foo"));
  EXPECT_TRUE(s.excluded("a/foo/bar"));
  EXPECT_FALSE(s.excluded("afoo"));
  Matcher mid = m("a/**/b\n");
  EXPECT_TRUE(mid.excluded("a/b"));
  EXPECT_TRUE(mid.excluded("a/x/y/b"));
  EXPECT_FALSE(mid.excluded("a/xb"));
  Matcher pre = m("a/**\n");
  EXPECT_TRUE(pre.excluded("a/x"));
  EXPECT_FALSE(pre.excluded("a"));
  EXPECT_TRUE(m("**\n").excluded("anything/at/all"));
}

TEST(Dockerignore, ExceptionsLastMatchWins) {
  Matcher x = m("*.md\n!README.md\nREADME-secret.md\n");
  EXPECT_TRUE(x.excluded("CHANGES.md"));
  EXPECT_FALSE(x.excluded("README.md"));
  EXPECT_TRUE(x.excluded("README-secret.md"));
  Matcher y = m("!README.md\n*.md\n");
  EXPECT_TRUE(y.excluded("README.md"));
  Matcher d = m("docs\n!docs/keep.txt\n");
  EXPECT_TRUE(d.excluded("docs", true));
  EXPECT_FALSE(d.excluded("docs/keep.txt"));
  EXPECT_TRUE(d.excluded("docs/other.txt"));
}

TEST(Dockerignore, CharClassesAndEscapes) {
  Matcher x = m("file[0-9].txt\n[^a]b\nq?\nlit\\*\n");
  EXPECT_TRUE(x.excluded("file3.txt"));
  EXPECT_FALSE(x.excluded("filex.txt"));
  EXPECT_TRUE(x.excluded("xb"));
  EXPECT_FALSE(x.excluded("ab"));
  EXPECT_TRUE(x.excluded("q1"));
  EXPECT_FALSE(x.excluded("q12"));
  EXPECT_TRUE(x.excluded("lit*"));
  EXPECT_FALSE(x.excluded("litx"));
}

TEST(Dockerignore, MayContainIncluded) {
  Matcher x = m("docs\n!docs/keep/*.txt\nbuild\n");
  EXPECT_TRUE(x.may_contain_included("docs"));
  EXPECT_TRUE(x.may_contain_included("docs/keep"));
  EXPECT_FALSE(x.may_contain_included("docs/other"));
  EXPECT_FALSE(x.may_contain_included("build"));
  Matcher w = m("*\n!**/*.go\n");
  EXPECT_TRUE(w.may_contain_included("any/dir"));
  Matcher none = m("a\n");
  EXPECT_FALSE(none.may_contain_included("a"));
  Matcher glob = m("vendor\n!vendor/*/LICENSE\n");
  EXPECT_TRUE(glob.may_contain_included("vendor/pkg"));
  EXPECT_FALSE(glob.may_contain_included("vendor/pkg/sub"));
  EXPECT_TRUE(glob.may_contain_included("vendor/pkg/LICENSE"));
}

TEST(Dockerignore, Path) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("ocib-di-" + std::to_string(::getpid()));
  fs::create_directories(dir / "ctx" / "build");
  std::string ctx = (dir / "ctx").string();
  EXPECT_EQ(dockerignore_path(ctx, ""), "");
  std::ofstream(dir / "ctx" / ".dockerignore") << "x\n";
  EXPECT_EQ(dockerignore_path(ctx, ""), ctx + "/.dockerignore");
  EXPECT_EQ(dockerignore_path(ctx, ctx + "/build/Dockerfile.dev"), ctx + "/.dockerignore");
  std::ofstream(dir / "ctx" / "build" / "Dockerfile.dev.dockerignore") << "y\n";
  EXPECT_EQ(dockerignore_path(ctx, ctx + "/build/Dockerfile.dev"),
            ctx + "/build/Dockerfile.dev.dockerignore");
  std::ofstream(dir / "ctx" / "Dockerfile.dockerignore") << "z\n";
  EXPECT_EQ(dockerignore_path(ctx, ""), ctx + "/Dockerfile.dockerignore");
  EXPECT_EQ(dockerignore_path(ctx, "-"), ctx + "/.dockerignore");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ocib::dockerfile
