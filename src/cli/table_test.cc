#include "cli/table.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

namespace ocib::cli {
namespace {

std::string read(const std::string& rel) {
  std::ifstream in(std::string(OCIB_SOURCE_DIR) + "/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Command& cmd(const char* name) {
  const Command* c = find_command(name);
  EXPECT_NE(c, nullptr) << name;
  return *c;
}

std::optional<Parsed> parse_build(std::vector<std::string> args, std::string* err) {
  return parse(cmd("build"), args, err);
}

TEST(Table, NamesAreUnique) {
  std::set<std::string> cmds;
  for (const auto& c : commands()) {
    EXPECT_TRUE(cmds.insert(c.name).second) << c.name;
    std::set<std::string> longs;
    std::set<char> shorts;
    for (const auto& f : c.flags) {
      EXPECT_TRUE(longs.insert(f.name).second) << c.name << " --" << f.name;
      if (f.short_name) {
        EXPECT_TRUE(shorts.insert(f.short_name).second) << c.name << " -" << f.short_name;
      }
      EXPECT_NE(f.name, "help");
      EXPECT_NE(f.short_name, 'h');
      EXPECT_EQ(f.arg == Arg::kNone, f.value.empty()) << c.name << " --" << f.name;
      EXPECT_FALSE(f.help.empty()) << c.name << " --" << f.name;
    }
    for (const auto& s : c.subcommands) EXPECT_NE(find_command(c.name + " " + s), nullptr) << c.name << " " << s;
  }
}

TEST(Parse, ValueForms) {
  std::string err;
  auto p = parse_build({"-f", "-", "--tag=a:1", "-tb:2", "-j4", "--jobs", "3", "--call=check", "."}, &err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->last("file"), "-");
  EXPECT_EQ(p->all("tag"), (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(p->last("jobs"), "3");
  EXPECT_EQ(p->last("call"), "check");
  EXPECT_EQ(p->args, std::vector<std::string>{"."});
}

TEST(Parse, PullTakesAValueOnlyWhenItIsOne) {
  std::string err;
  auto p = parse_build({"--pull", "."}, &err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->last("pull"), "always");
  EXPECT_EQ(p->args, std::vector<std::string>{"."});
  p = parse_build({"--pull", "never", "."}, &err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->last("pull"), "never");
  EXPECT_EQ(p->args, std::vector<std::string>{"."});
  p = parse_build({"--pull=missing", "-"}, &err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->last("pull"), "missing");
  EXPECT_EQ(p->args, std::vector<std::string>{"-"});
  EXPECT_FALSE(parse_build({"--pull=sometimes", "."}, &err));
  EXPECT_NE(err.find("unknown --pull value \"sometimes\""), std::string::npos) << err;
}

TEST(Parse, Switches) {
  std::string err;
  auto p = parse_build({"--push", "--load=false", "-q", "."}, &err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->last("push"), "true");
  EXPECT_EQ(p->last("load"), "false");
  EXPECT_EQ(p->last("quiet"), "true");
  EXPECT_FALSE(parse_build({"--push=yes", "."}, &err));
  EXPECT_NE(err.find("takes no value"), std::string::npos) << err;
}

TEST(Parse, UsageErrorsSuggest) {
  std::string err;
  EXPECT_FALSE(parse_build({"--pussh", "."}, &err));
  EXPECT_NE(err.find("unknown flag --pussh; did you mean \"--push\"?"), std::string::npos) << err;
  EXPECT_FALSE(parse_build({"--progress=plian", "."}, &err));
  EXPECT_NE(err.find("did you mean \"plain\"?"), std::string::npos) << err;
  EXPECT_FALSE(parse_build({"--network", "hostt", "."}, &err));
  EXPECT_NE(err.find("did you mean \"host\"?"), std::string::npos) << err;
  EXPECT_FALSE(parse_build({"--allow", "network.host,security.insecur", "."}, &err));
  EXPECT_NE(err.find("did you mean \"security.insecure\"?"), std::string::npos) << err;
  EXPECT_FALSE(parse_build({".", "-f"}, &err));
  EXPECT_NE(err.find("flag -f needs a value"), std::string::npos) << err;
  EXPECT_FALSE(parse_build({"-j", "0", "."}, &err));
  EXPECT_NE(err.find("--jobs needs a positive number"), std::string::npos) << err;
  EXPECT_FALSE(parse_build({"-x", "."}, &err));
  EXPECT_FALSE(parse_build({}, &err));
  EXPECT_FALSE(parse_build({"a", "b"}, &err));
  EXPECT_TRUE(parse_build({"--help"}, &err)->help);
}

TEST(Parse, DoubleDash) {
  std::string err;
  auto p = parse(cmd("rmi"), {"--", "-weird"}, &err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->args, std::vector<std::string>{"-weird"});
}

TEST(Help, BuildListsEveryFlag) {
  std::string h = help(cmd("build"));
  EXPECT_EQ(h.rfind("Usage: ocib build [OPTIONS] CONTEXT\n", 0), 0u);
  for (const auto& f : cmd("build").flags) EXPECT_NE(h.find("--" + f.name), std::string::npos) << f.name;
  EXPECT_NE(h.find("  -f, --file FILE          Dockerfile"), std::string::npos) << h;
  EXPECT_NE(h.find("      --pull[=POLICY]      base images"), std::string::npos) << h;
  std::string m = main_help();
  EXPECT_NE(m.find("\n  build      Build an image from a Dockerfile\n"), std::string::npos) << m;
  EXPECT_EQ(m.find("__generate"), std::string::npos);
}

// The committed files are what the table generates (run scripts/generate-cli.sh after a change).
TEST(Drift, Completions) {
  EXPECT_EQ(read("completions/ocib.bash"), bash_completion()) << "completions/ocib.bash: run scripts/generate-cli.sh";
  EXPECT_EQ(read("completions/_ocib"), zsh_completion()) << "completions/_ocib: run scripts/generate-cli.sh";
  EXPECT_EQ(read("completions/ocib.fish"), fish_completion()) << "completions/ocib.fish: run scripts/generate-cli.sh";
}

TEST(Drift, ManPages) {
  for (const auto& c : commands()) {
    if (c.hidden || c.name.find(' ') != std::string::npos) continue;
    std::string page = read("docs/man/ocib-" + c.name + ".1.scd");
    ASSERT_FALSE(page.empty()) << "no docs/man/ocib-" << c.name << ".1.scd";
    bool has_flags = !c.flags.empty();
    for (const auto& s : c.subcommands)
      if (const Command* sc = find_command(c.name + " " + s); sc && !sc->flags.empty()) has_flags = true;
    if (!has_flags) continue;
    EXPECT_NE(page.find(kBeginMarker), std::string::npos) << "ocib-" << c.name << ".1.scd has no generated OPTIONS";
    EXPECT_EQ(page, update_man_page(page, c)) << "docs/man/ocib-" << c.name << ".1.scd: run scripts/generate-cli.sh";
  }
}

TEST(Drift, Readme) {
  auto problems = check_readme(read("README.md"));
  for (const auto& p : problems) ADD_FAILURE() << p;
}

}  // namespace
}  // namespace ocib::cli
