#include <gtest/gtest.h>

#include <map>
#include <string>

#include "dockerfile/dockerfile.h"

namespace ocib::dockerfile {
namespace {

const std::map<std::string, std::string> kVars = {{"A", "alpha"},          {"EMPTY", ""},
                                                  {"TAG", "3.19"},         {"SRC", "src dir"},
                                                  {"P", "/usr/local/bin"}, {"F", "archive.tar.gz"}};

std::string ex(const std::string& s, char escape = '\\') {
  auto r = expand(s, kVars, escape);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().str());
  return r.ok() ? *r : "<error>";
}

std::string pw(const std::string& s, char escape = '\\') {
  auto r = process_word(s, kVars, escape);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().str());
  return r.ok() ? *r : "<error>";
}

TEST(Expand, SimpleAndBraced) {
  EXPECT_EQ(ex("$A"), "alpha");
  EXPECT_EQ(ex("${A}"), "alpha");
  EXPECT_EQ(ex("x${A}y"), "xalphay");
  EXPECT_EQ(ex("$A-b"), "alpha-b");
  EXPECT_EQ(ex("$UNSET"), "");
  EXPECT_EQ(ex("alpine:${TAG}"), "alpine:3.19");
  EXPECT_EQ(ex("/app/$A"), "/app/alpha");
  EXPECT_EQ(ex("$"), "$");
  EXPECT_EQ(ex("a$ b"), "a$ b");
  EXPECT_EQ(ex("no vars"), "no vars");
}

TEST(Expand, DefaultsAndAlternatives) {
  EXPECT_EQ(ex("${UNSET:-def}"), "def");
  EXPECT_EQ(ex("${EMPTY:-def}"), "def");
  EXPECT_EQ(ex("${A:-def}"), "alpha");
  EXPECT_EQ(ex("${UNSET-def}"), "def");
  EXPECT_EQ(ex("${EMPTY-def}"), "");
  EXPECT_EQ(ex("${A:+alt}"), "alt");
  EXPECT_EQ(ex("${EMPTY:+alt}"), "");
  EXPECT_EQ(ex("${EMPTY+alt}"), "alt");
  EXPECT_EQ(ex("${UNSET+alt}"), "");
  // The word is expanded itself.
  EXPECT_EQ(ex("${UNSET:-$A/x}"), "alpha/x");
  EXPECT_EQ(ex("${UNSET:-${TAG}}"), "3.19");
}

TEST(Expand, EscapesAndQuotes) {
  EXPECT_EQ(ex("\\$A"), "$A");
  EXPECT_EQ(ex("`$A", '`'), "$A");
  EXPECT_EQ(ex("\\$A", '`'), "\\alpha");
  EXPECT_EQ(ex("'$A'"), "'$A'");
  EXPECT_EQ(ex("\"$A\""), "\"alpha\"");
  EXPECT_EQ(ex("a\\ b"), "a\\ b");
  EXPECT_EQ(ex("\"x \\\" $A\""), "\"x \\\" alpha\"");
}

TEST(Expand, Patterns) {
  EXPECT_EQ(ex("${F#*.}"), "tar.gz");
  EXPECT_EQ(ex("${F##*.}"), "gz");
  EXPECT_EQ(ex("${F%.*}"), "archive.tar");
  EXPECT_EQ(ex("${F%%.*}"), "archive");
  EXPECT_EQ(ex("${P#/usr}"), "/local/bin");
  EXPECT_EQ(ex("${F/tar/zip}"), "archive.zip.gz");
  EXPECT_EQ(ex("${P//\\//_}"), "_usr_local_bin");
  EXPECT_EQ(ex("${F/nomatch/x}"), "archive.tar.gz");
}

TEST(Expand, Errors) {
  const std::map<std::string, std::string> vars;
  for (const char* bad :
       {"${", "${A", "${A:-x", "${}", "${:x}", "${A:#x}", "${A/x", "'abc", "\"abc", "${A!x}"}) {
    auto r = expand(bad, vars);
    EXPECT_FALSE(r.ok()) << bad;
  }
  auto r = expand("${", vars);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "failed to process \"${\": syntax error: missing '}'");
  auto q = expand("${UNSET?must be set}", vars);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message().find("UNSET: must be set"), std::string::npos);
}

TEST(ProcessWord, RemovesQuotes) {
  EXPECT_EQ(pw("\"$A b\""), "alpha b");
  EXPECT_EQ(pw("'$A b'"), "$A b");
  EXPECT_EQ(pw("\\$A"), "$A");
  EXPECT_EQ(pw("a\\ b"), "a b");
  EXPECT_EQ(pw("\"a\\\"b\""), "a\"b");
  EXPECT_EQ(pw("\"a\\nb\""), "a\\nb");
  EXPECT_EQ(pw("$SRC"), "src dir");
  EXPECT_EQ(pw("${UNSET:-\"x y\"}"), "x y");
  EXPECT_EQ(pw("C:`\\dir", '`'), "C:\\dir");
}

TEST(Unquote, NoExpansion) {
  auto r = unquote("\"$A x\"'y'\\ z");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "$A xy z");
  EXPECT_FALSE(unquote("\"open").ok());
}

// BuildKit's shell/wordsTest, the table ProcessWords is tested with (EXPOSE uses it).
TEST(Expand, ProcessWordsSplitsLikeBuildKit) {
  auto words = [](const std::string& s, const std::map<std::string, std::string>& vars) {
    auto r = process_words(s, vars);
    if (!r.ok()) return std::string("error");
    std::string out;
    for (const auto& w : *r) out += (out.empty() ? "" : ",") + w;
    return out;
  };
  std::map<std::string, std::string> v;
  EXPECT_EQ(words("hello", v), "hello");
  EXPECT_EQ(words("hello${hi}bye", v), "hellobye");
  v["hi"] = "hi";
  EXPECT_EQ(words("hello${hi}bye", v), "hellohibye");
  v["space"] = "abc  def";
  EXPECT_EQ(words("hello${space}bye", v), "helloabc,defbye");
  EXPECT_EQ(words("hello\"${space}\"bye", v), "helloabc  defbye");
  EXPECT_EQ(words("hello \"${space}\"bye", v), "hello,abc  defbye");
  v["leading"] = "  ab c";
  EXPECT_EQ(words("hello${leading}def", v), "hello,ab,cdef");
  EXPECT_EQ(words("hello\"${leading}\" def", v), "hello  ab c,def");
  EXPECT_EQ(words("hello${leading}", v), "hello,ab,c");
  v["trailing"] = "ab c   ";
  EXPECT_EQ(words("hello${trailing}", v), "helloab,c");
  EXPECT_EQ(words("hello${trailing}d", v), "helloab,c,d");
  EXPECT_EQ(words("hello\"${trailing}\"d", v), "helloab c   d");
  EXPECT_EQ(words("hel\"lo${trailing}\"", v), "helloab c   ");
  EXPECT_EQ(words("hello\" there  \"", v), "hello there  ");
  EXPECT_EQ(words("hello there     ", v), "hello,there");
  EXPECT_EQ(words("hello\\ there", v), "hello there");
  EXPECT_EQ(words("hello\" there", v), "error");
  EXPECT_EQ(words("hello\\\" there", v), "hello\",there");
  EXPECT_EQ(words("hello\"\\\\there\"", v), "hello\\there");
  EXPECT_EQ(words("hello\"\\there\"", v), "hello\\there");
  EXPECT_EQ(words("hello'\\\\there'", v), "hello\\\\there");
  EXPECT_EQ(words("hello'\\there'", v), "hello\\there");
  EXPECT_EQ(words("hello'$there'", v), "hello$there");
  EXPECT_EQ(words("\"\"", v), "");  // one empty word
  EXPECT_EQ(process_words("\"\"", v)->size(), 1u);
  EXPECT_EQ(process_words("$UNSET", v)->size(), 0u);
}

}  // namespace
}  // namespace ocib::dockerfile

namespace ocib::dockerfile {
namespace {

// BuildKit's ExpandRaw for heredoc bodies: quotes are text (expanded inside), escapes resolved.
TEST(ExpandRaw, HeredocBodiesAsBuildKit) {
  const std::map<std::string, std::string> vars{{"name", "world"}};
  auto r = [&](const std::string& s) {
    auto e = expand_raw(s, vars);
    return e.ok() ? *e : "error: " + e.error().message();
  };
  EXPECT_EQ(r("hello '${name}' \"$name\"\n"), "hello 'world' \"world\"\n");
  EXPECT_EQ(r("a\\\nb \\\\ c \\$name\n"), "a\nb \\ c $name\n");
  EXPECT_EQ(r("it's ${name}"), "it's world");  // a lone quote is no error
  EXPECT_EQ(r("end\\"), "end");                 // an escape at the very end is dropped
  EXPECT_EQ(r("${missing:-dflt} ${name:+set}"), "dflt set");
}

}  // namespace
}  // namespace ocib::dockerfile
